//! Closed-form matting (Levin, Lischinski, Weiss 2008) solved only on the unknown pixels.
//!
//! The matting Laplacian `L` (3×3 windows, colour line model) couples each pixel to its 5×5
//! neighbourhood. With known pixels fixed, the unknown alphas solve `L_uu α_u = −L_uk α_k`
//! (plus an optional weak prior `λ(α − α₀)²` that keeps the system positive definite and, in
//! `refine`, pulls toward the coarse matte). Rows are built once for the unknown pixels only and
//! the system is solved by Jacobi-preconditioned conjugate gradients, warm-started from `α₀`.

use rayon::prelude::*;

use super::guided::mul_sym3;

const NONE: u32 = u32::MAX;
/// Elements per parallel task in the CG vector operations.
const CG_CHUNK: usize = 4096;

/// Inputs of one band solve.
pub(crate) struct BandProblem<'a> {
    pub guide: [&'a [f32]; 3],
    pub w: usize,
    pub h: usize,
    /// Which pixels are unknown.
    pub unknown: &'a [bool],
    /// Known alpha (used where `!unknown`) and the initial guess / prior (where `unknown`).
    pub alpha0: &'a [f32],
    /// Weight of the prior pulling unknown pixels toward `alpha0`.
    pub prior: f32,
    /// Colour-covariance regulariser of the Laplacian.
    pub eps: f32,
    /// Optional data term `λ·c·(α − α̂)²` from colour sampling: (α̂, c, λ).
    pub data: Option<(&'a [f32], &'a [f32], f32)>,
    pub max_iter: usize,
    pub tol: f64,
}

/// One row of `L_uu`: 25 coefficients over the 5×5 neighbourhood and the unknown ids they hit.
#[derive(Clone, Copy)]
struct Row {
    c: [f32; 25],
    col: [u32; 25],
}

/// Returns alpha for the whole image: `alpha0` where known, the solution where unknown.
pub(crate) fn solve_band(pb: &BandProblem<'_>) -> Vec<f32> {
    let (w, h) = (pb.w, pb.h);
    let mut alpha = pb.alpha0.to_vec();
    if w < 3 || h < 3 {
        return alpha;
    }
    // Unknown ids.
    let mut id = vec![NONE; w * h];
    let mut list: Vec<u32> = Vec::new();
    for (i, &u) in pb.unknown.iter().enumerate() {
        if u {
            id[i] = list.len() as u32;
            list.push(i as u32);
        }
    }
    if list.is_empty() {
        return alpha;
    }
    // Window statistics for every interior window centre touching an unknown pixel.
    let mut wid = vec![NONE; w * h];
    let mut centres: Vec<u32> = Vec::new();
    for &p in &list {
        let (x, y) = (p as usize % w, p as usize / w);
        for cy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
            for cx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                if cx == 0 || cy == 0 || cx == w - 1 || cy == h - 1 {
                    continue;
                }
                let k = cy * w + cx;
                if wid[k] == NONE {
                    wid[k] = centres.len() as u32;
                    centres.push(k as u32);
                }
            }
        }
    }
    let [gr, gg, gb] = pb.guide;
    let eps_w = pb.eps as f64 / 9.0;
    // (μ, (Σ + ε/|w| U)⁻¹)
    let stats: Vec<([f32; 3], [f32; 6])> = centres
        .par_iter()
        .map(|&k| {
            // f64 and centred moments: with a small ε the covariance of a flat window is tiny and
            // f32 cancellation would make its inverse garbage.
            let k = k as usize;
            let mut px = [[0.0f64; 3]; 9];
            let mut mu = [0.0f64; 3];
            let mut n = 0;
            for dy in [-(w as isize), 0, w as isize] {
                for dx in [-1isize, 0, 1] {
                    let j = (k as isize + dy + dx) as usize;
                    px[n] = [gr[j] as f64, gg[j] as f64, gb[j] as f64];
                    for c in 0..3 {
                        mu[c] += px[n][c] / 9.0;
                    }
                    n += 1;
                }
            }
            let mut cov = [0.0f64; 6];
            for p in &px {
                let d = [p[0] - mu[0], p[1] - mu[1], p[2] - mu[2]];
                cov[0] += d[0] * d[0];
                cov[1] += d[0] * d[1];
                cov[2] += d[0] * d[2];
                cov[3] += d[1] * d[1];
                cov[4] += d[1] * d[2];
                cov[5] += d[2] * d[2];
            }
            let mut cov = cov.map(|v| v / 9.0);
            cov[0] += eps_w;
            cov[3] += eps_w;
            cov[5] += eps_w;
            (mu.map(|v| v as f32), inv_sym3_f64(cov))
        })
        .collect();

    // Rows of L_uu (plus prior on the diagonal) and the right-hand side.
    let rows_rhs: Vec<(Row, f32, f32)> = list
        .par_iter()
        .map(|&p| {
            let p = p as usize;
            let (x, y) = (p % w, p / w);
            let mut c = [0.0f32; 25];
            let ip = [gr[p], gg[p], gb[p]];
            for cy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for cx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let k = cy * w + cx;
                    let wi = wid[k];
                    if wi == NONE {
                        continue;
                    }
                    let (mu, inv) = &stats[wi as usize];
                    let di = [ip[0] - mu[0], ip[1] - mu[1], ip[2] - mu[2]];
                    let v = mul_sym3(inv, di);
                    for jy in cy - 1..=cy + 1 {
                        for jx in cx - 1..=cx + 1 {
                            let j = jy * w + jx;
                            let dj = [gr[j] - mu[0], gg[j] - mu[1], gb[j] - mu[2]];
                            let mut val = -(1.0 + v[0] * dj[0] + v[1] * dj[1] + v[2] * dj[2]) / 9.0;
                            if j == p {
                                val += 1.0;
                            }
                            let slot = (jy + 2 - y) * 5 + (jx + 2 - x);
                            c[slot] += val;
                        }
                    }
                }
            }
            let mut col = [NONE; 25];
            let mut rhs = pb.prior * pb.alpha0[p];
            for sy in 0..5 {
                for sx in 0..5 {
                    let slot = sy * 5 + sx;
                    if c[slot] == 0.0 {
                        continue;
                    }
                    let j = (y + sy - 2) * w + (x + sx - 2);
                    if id[j] == NONE {
                        rhs -= c[slot] * pb.alpha0[j];
                        c[slot] = 0.0;
                    } else {
                        col[slot] = id[j];
                    }
                }
            }
            c[12] += pb.prior;
            if let Some((ah, conf, lam)) = pb.data {
                let k = lam * conf[p];
                c[12] += k;
                rhs += k * ah[p];
            }
            let diag = c[12];
            (Row { c, col }, rhs, diag)
        })
        .collect();
    let n = list.len();
    let rows: Vec<Row> = rows_rhs.iter().map(|r| r.0).collect();
    let b: Vec<f32> = rows_rhs.iter().map(|r| r.1).collect();
    // Jacobi preconditioner; rows with no usable window get a unit diagonal and a zero row.
    let dinv: Vec<f32> = rows_rhs
        .iter()
        .map(|r| if r.2 > 1e-12 { 1.0 / r.2 } else { 0.0 })
        .collect();
    drop(rows_rhs);

    let mut x: Vec<f32> = list.iter().map(|&p| pb.alpha0[p as usize]).collect();
    let matvec = |x: &[f32], out: &mut [f32]| {
        out.par_iter_mut()
            .zip(rows.par_iter())
            .with_min_len(1024)
            .for_each(|(o, r)| {
                let mut s = 0.0f32;
                for k in 0..25 {
                    let j = r.col[k];
                    if j != NONE {
                        s += r.c[k] * x[j as usize];
                    }
                }
                *o = s;
            });
    };
    let dot = |a: &[f32], b: &[f32]| -> f64 {
        a.par_iter()
            .zip(b.par_iter())
            .with_min_len(CG_CHUNK)
            .map(|(&x, &y)| x as f64 * y as f64)
            .sum()
    };
    let mut ax = vec![0.0f32; n];
    matvec(&x, &mut ax);
    let mut r: Vec<f32> = b.iter().zip(&ax).map(|(b, a)| b - a).collect();
    let mut z: Vec<f32> = r.iter().zip(&dinv).map(|(r, d)| r * d).collect();
    let mut p = z.clone();
    let mut rz = dot(&r, &z);
    let bnorm = dot(&b, &b).sqrt().max(1e-12);
    let mut ap = ax;
    // ‖r‖² of the current residual; the update pass below computes it together with r·z.
    let mut rr = dot(&r, &r);
    let mut it = 0;
    while it < pb.max_iter {
        it += 1;
        if rr.sqrt() / bnorm < pb.tol {
            break;
        }
        matvec(&p, &mut ap);
        let pap = dot(&p, &ap);
        if pap <= 0.0 || !pap.is_finite() {
            break;
        }
        let a = (rz / pap) as f32;
        // One fused pass: x, r and z updated and both dot products accumulated (the vectors are
        // small, so separate passes cost more in scheduling and memory traffic than arithmetic).
        let (rz_new, rr_new) = x
            .par_chunks_mut(CG_CHUNK)
            .zip(r.par_chunks_mut(CG_CHUNK))
            .zip(z.par_chunks_mut(CG_CHUNK))
            .zip(p.par_chunks(CG_CHUNK).zip(ap.par_chunks(CG_CHUNK)))
            .zip(dinv.par_chunks(CG_CHUNK))
            .map(|((((x, r), z), (p, ap)), d)| {
                let (mut rz, mut rr) = (0.0f64, 0.0f64);
                for i in 0..x.len() {
                    x[i] += a * p[i];
                    r[i] -= a * ap[i];
                    z[i] = r[i] * d[i];
                    rz += r[i] as f64 * z[i] as f64;
                    rr += r[i] as f64 * r[i] as f64;
                }
                (rz, rr)
            })
            .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        rr = rr_new;
        let beta = (rz_new / rz.max(1e-300)) as f32;
        rz = rz_new;
        p.par_iter_mut()
            .zip(z.par_iter())
            .with_min_len(CG_CHUNK)
            .for_each(|(p, &z)| *p = z + beta * *p);
    }
    for (&p, &v) in list.iter().zip(&x) {
        alpha[p as usize] = if v.is_finite() {
            v.clamp(0.0, 1.0)
        } else {
            0.5
        };
    }
    alpha
}

fn inv_sym3_f64(s: [f64; 6]) -> [f32; 6] {
    let [a, b, c, d, e, f] = s;
    let c00 = d * f - e * e;
    let c01 = c * e - b * f;
    let c02 = b * e - c * d;
    let det = a * c00 + b * c01 + c * c02;
    let inv = if det.abs() > 1e-300 { 1.0 / det } else { 0.0 };
    let c11 = a * f - c * c;
    let c12 = b * c - a * e;
    let c22 = a * d - b * b;
    [c00, c01, c02, c11, c12, c22].map(|v| (v * inv) as f32)
}
