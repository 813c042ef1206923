//! Box filter and the colour guided filter (He, Sun, Tang 2013), plus the "fast guided filter"
//! form (He & Sun 2015) where the linear coefficients are computed at a low resolution and applied
//! to the full-resolution guide, which makes it a joint (edge-aware) upsampler.

use rayon::prelude::*;

/// Rows per parallel task in the vertical pass; the running sum is restarted per block, which also
/// bounds f32 drift of the sliding sum.
const ROW_BLOCK: usize = 32;

/// Mean over the (2r+1)² window around every pixel, the window clipped at the borders and
/// normalised by the number of pixels actually inside (He's `N` normalisation).
pub(crate) fn box_mean(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    debug_assert_eq!(src.len(), w * h);
    if w == 0 || h == 0 {
        return Vec::new();
    }
    // Horizontal pass: sliding sum per row (f64 accumulator: exact enough, cheap when scalar).
    let mut tmp = vec![0.0f32; w * h];
    tmp.par_chunks_mut(w)
        .zip(src.par_chunks(w))
        .for_each(|(out, row)| {
            let mut acc = 0.0f64;
            for &v in &row[..(r + 1).min(w)] {
                acc += v as f64;
            }
            for (x, o) in out.iter_mut().enumerate() {
                let lo = x.saturating_sub(r);
                let hi = (x + r).min(w - 1);
                *o = (acc / (hi - lo + 1) as f64) as f32;
                if x + r + 1 < w {
                    acc += row[x + r + 1] as f64;
                }
                if x >= r {
                    acc -= row[x - r] as f64;
                }
            }
        });
    // Vertical pass: sliding sum of whole rows (vectorises), restarted every ROW_BLOCK rows.
    let mut out = vec![0.0f32; w * h];
    out.par_chunks_mut(w * ROW_BLOCK)
        .enumerate()
        .for_each(|(bi, block)| {
            let y0 = bi * ROW_BLOCK;
            let mut acc = vec![0.0f32; w];
            let lo0 = y0.saturating_sub(r);
            let hi0 = (y0 + r).min(h - 1);
            for y in lo0..=hi0 {
                for (a, &v) in acc.iter_mut().zip(&tmp[y * w..(y + 1) * w]) {
                    *a += v;
                }
            }
            for (dy, orow) in block.chunks_mut(w).enumerate() {
                let y = y0 + dy;
                let lo = y.saturating_sub(r);
                let hi = (y + r).min(h - 1);
                let inv = 1.0 / (hi - lo + 1) as f32;
                for (o, &a) in orow.iter_mut().zip(&acc) {
                    *o = a * inv;
                }
                if y + r + 1 < h {
                    let add = &tmp[(y + r + 1) * w..(y + r + 2) * w];
                    for (a, &v) in acc.iter_mut().zip(add) {
                        *a += v;
                    }
                }
                if y >= r {
                    let sub = &tmp[(y - r) * w..(y - r + 1) * w];
                    for (a, &v) in acc.iter_mut().zip(sub) {
                        *a -= v;
                    }
                }
            }
        });
    out
}

/// Box-averaged linear coefficients of the guided filter: `q = a·I + b` per pixel.
pub(crate) struct GuidedCoeffs {
    pub a: [Vec<f32>; 3],
    pub b: Vec<f32>,
}

/// Colour guided filter coefficients (He et al. 2013, eq. 14 and the averaging step of eq. 8).
/// `eps` is the regulariser on the local colour covariance: larger = smoother.
pub(crate) fn guided_coeffs(
    guide: [&[f32]; 3],
    p: &[f32],
    w: usize,
    h: usize,
    r: usize,
    eps: f32,
) -> GuidedCoeffs {
    let n = w * h;
    let [ir, ig, ib] = guide;
    // Products to average: I (3), p, I·p (3), I Iᵀ (6).
    let mut prods: Vec<Vec<f32>> = (0..13).map(|_| vec![0.0f32; n]).collect();
    {
        let (first, rest) = prods.split_at_mut(7);
        let [pr, pg, pb, pp, prp, pgp, pbp] = first else {
            unreachable!()
        };
        let [rr, rg, rb, gg, gb, bb] = rest else {
            unreachable!()
        };
        pr.copy_from_slice(ir);
        pg.copy_from_slice(ig);
        pb.copy_from_slice(ib);
        pp.copy_from_slice(p);
        for i in 0..n {
            let (r_, g_, b_, v) = (ir[i], ig[i], ib[i], p[i]);
            prp[i] = r_ * v;
            pgp[i] = g_ * v;
            pbp[i] = b_ * v;
            rr[i] = r_ * r_;
            rg[i] = r_ * g_;
            rb[i] = r_ * b_;
            gg[i] = g_ * g_;
            gb[i] = g_ * b_;
            bb[i] = b_ * b_;
        }
    }
    let m: Vec<Vec<f32>> = prods.par_iter().map(|v| box_mean(v, w, h, r)).collect();
    drop(prods);
    let mut a = [vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]];
    let mut b = vec![0.0f32; n];
    {
        let [a0, a1, a2] = &mut a;
        a0.par_iter_mut()
            .zip(a1.par_iter_mut())
            .zip(a2.par_iter_mut().zip(b.par_iter_mut()))
            .enumerate()
            .for_each(|(i, ((o0, o1), (o2, ob)))| {
                let mu = [m[0][i], m[1][i], m[2][i]];
                let mp = m[3][i];
                let cov_ip = [
                    m[4][i] - mu[0] * mp,
                    m[5][i] - mu[1] * mp,
                    m[6][i] - mu[2] * mp,
                ];
                let s = [
                    m[7][i] - mu[0] * mu[0] + eps,
                    m[8][i] - mu[0] * mu[1],
                    m[9][i] - mu[0] * mu[2],
                    m[10][i] - mu[1] * mu[1] + eps,
                    m[11][i] - mu[1] * mu[2],
                    m[12][i] - mu[2] * mu[2] + eps,
                ];
                let inv = inv_sym3(s);
                let av = mul_sym3(&inv, cov_ip);
                *o0 = av[0];
                *o1 = av[1];
                *o2 = av[2];
                *ob = mp - av[0] * mu[0] - av[1] * mu[1] - av[2] * mu[2];
            });
    }
    let out: Vec<Vec<f32>> = [&a[0], &a[1], &a[2], &b]
        .par_iter()
        .map(|v| box_mean(v, w, h, r))
        .collect();
    let mut it = out.into_iter();
    let (a0, a1, a2, b) = match (it.next(), it.next(), it.next(), it.next()) {
        (Some(a0), Some(a1), Some(a2), Some(b)) => (a0, a1, a2, b),
        _ => unreachable!(),
    };
    GuidedCoeffs { a: [a0, a1, a2], b }
}

/// [`guided_coeffs`] evaluated only where `need` is set (zero elsewhere). The joint upsampler reads
/// the coefficients only near the matte's edge (a few percent of the working image), so direct
/// window sums there beat 17 full-image box filters.
pub(crate) fn guided_coeffs_masked(
    guide: [&[f32]; 3],
    p: &[f32],
    w: usize,
    h: usize,
    r: usize,
    eps: f32,
    need: &[bool],
) -> GuidedCoeffs {
    let n = w * h;
    // Window centres whose per-window coefficients the averaging step reads.
    let seed: Vec<f32> = need.iter().map(|&v| if v { 1.0 } else { 0.0 }).collect();
    let win: Vec<bool> = box_mean(&seed, w, h, r)
        .into_iter()
        .map(|v| v > 1e-6)
        .collect();
    let [ir, ig, ib] = guide;
    // Per-window (a, b) at the needed centres.
    let mut ab = vec![[0.0f32; 4]; n];
    ab.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        let (y0, y1) = (y.saturating_sub(r), (y + r).min(h - 1));
        for (x, o) in row.iter_mut().enumerate() {
            if !win[y * w + x] {
                continue;
            }
            let (x0, x1) = (x.saturating_sub(r), (x + r).min(w - 1));
            let mut m = [0.0f32; 13];
            for yy in y0..=y1 {
                for j in yy * w + x0..=yy * w + x1 {
                    let (r_, g_, b_, v) = (ir[j], ig[j], ib[j], p[j]);
                    m[0] += r_;
                    m[1] += g_;
                    m[2] += b_;
                    m[3] += v;
                    m[4] += r_ * v;
                    m[5] += g_ * v;
                    m[6] += b_ * v;
                    m[7] += r_ * r_;
                    m[8] += r_ * g_;
                    m[9] += r_ * b_;
                    m[10] += g_ * g_;
                    m[11] += g_ * b_;
                    m[12] += b_ * b_;
                }
            }
            let inv_n = 1.0 / ((y1 - y0 + 1) * (x1 - x0 + 1)) as f32;
            let m = m.map(|v| v * inv_n);
            let mu = [m[0], m[1], m[2]];
            let mp = m[3];
            let cov_ip = [m[4] - mu[0] * mp, m[5] - mu[1] * mp, m[6] - mu[2] * mp];
            let s = [
                m[7] - mu[0] * mu[0] + eps,
                m[8] - mu[0] * mu[1],
                m[9] - mu[0] * mu[2],
                m[10] - mu[1] * mu[1] + eps,
                m[11] - mu[1] * mu[2],
                m[12] - mu[2] * mu[2] + eps,
            ];
            let av = mul_sym3(&inv_sym3(s), cov_ip);
            *o = [
                av[0],
                av[1],
                av[2],
                mp - av[0] * mu[0] - av[1] * mu[1] - av[2] * mu[2],
            ];
        }
    });
    // Average over each needed pixel's window.
    let mut a = [vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]];
    let mut b = vec![0.0f32; n];
    {
        let [a0, a1, a2] = &mut a;
        a0.par_chunks_mut(w)
            .zip(a1.par_chunks_mut(w))
            .zip(a2.par_chunks_mut(w).zip(b.par_chunks_mut(w)))
            .enumerate()
            .for_each(|(y, ((o0, o1), (o2, ob)))| {
                let (y0, y1) = (y.saturating_sub(r), (y + r).min(h - 1));
                for x in 0..w {
                    if !need[y * w + x] {
                        continue;
                    }
                    let (x0, x1) = (x.saturating_sub(r), (x + r).min(w - 1));
                    let mut acc = [0.0f32; 4];
                    for yy in y0..=y1 {
                        for c in &ab[yy * w + x0..=yy * w + x1] {
                            for k in 0..4 {
                                acc[k] += c[k];
                            }
                        }
                    }
                    let inv_n = 1.0 / ((y1 - y0 + 1) * (x1 - x0 + 1)) as f32;
                    o0[x] = acc[0] * inv_n;
                    o1[x] = acc[1] * inv_n;
                    o2[x] = acc[2] * inv_n;
                    ob[x] = acc[3] * inv_n;
                }
            });
    }
    GuidedCoeffs { a, b }
}

/// Colour guided filter: edge-preserving smoothing of `p` following the edges of `guide`.
pub(crate) fn guided_filter(
    guide: [&[f32]; 3],
    p: &[f32],
    w: usize,
    h: usize,
    r: usize,
    eps: f32,
) -> Vec<f32> {
    let c = guided_coeffs(guide, p, w, h, r, eps);
    let mut q = vec![0.0f32; w * h];
    q.par_iter_mut().enumerate().for_each(|(i, q)| {
        *q = c.a[0][i] * guide[0][i] + c.a[1][i] * guide[1][i] + c.a[2][i] * guide[2][i] + c.b[i];
    });
    q
}

/// Inverse of a symmetric 3×3 matrix given as (xx, xy, xz, yy, yz, zz).
#[inline]
pub(crate) fn inv_sym3(s: [f32; 6]) -> [f32; 6] {
    let [a, b, c, d, e, f] = s.map(|v| v as f64);
    let c00 = d * f - e * e;
    let c01 = c * e - b * f;
    let c02 = b * e - c * d;
    let det = a * c00 + b * c01 + c * c02;
    let inv = if det.abs() > 1e-30 { 1.0 / det } else { 0.0 };
    let c11 = a * f - c * c;
    let c12 = b * c - a * e;
    let c22 = a * d - b * b;
    [c00, c01, c02, c11, c12, c22].map(|v| (v * inv) as f32)
}

#[inline]
pub(crate) fn mul_sym3(m: &[f32; 6], v: [f32; 3]) -> [f32; 3] {
    [
        m[0] * v[0] + m[1] * v[1] + m[2] * v[2],
        m[1] * v[0] + m[3] * v[1] + m[4] * v[2],
        m[2] * v[0] + m[4] * v[1] + m[5] * v[2],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_mean_matches_brute_force() {
        let (w, h, r) = (37, 71, 4);
        let src: Vec<f32> = (0..w * h)
            .map(|i| ((i * 7919) % 101) as f32 / 100.0)
            .collect();
        let fast = box_mean(&src, w, h, r);
        for y in 0..h {
            for x in 0..w {
                let (mut s, mut n) = (0.0, 0.0);
                for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
                    for xx in x.saturating_sub(r)..=(x + r).min(w - 1) {
                        s += src[yy * w + xx];
                        n += 1.0;
                    }
                }
                assert!((fast[y * w + x] - s / n).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn masked_coeffs_match_full_where_needed() {
        let (w, h, r) = (41, 29, 1);
        let g: Vec<Vec<f32>> = (0..3)
            .map(|c| {
                (0..w * h)
                    .map(|i| ((i * (31 + c) + c) % 97) as f32 / 97.0)
                    .collect()
            })
            .collect();
        let p: Vec<f32> = (0..w * h).map(|i| ((i * 13) % 7) as f32 / 7.0).collect();
        let need: Vec<bool> = (0..w * h).map(|i| (i / w + i % w) % 5 == 0).collect();
        let guide = [&g[0][..], &g[1][..], &g[2][..]];
        let full = guided_coeffs(guide, &p, w, h, r, 1e-2);
        let masked = guided_coeffs_masked(guide, &p, w, h, r, 1e-2, &need);
        for i in (0..w * h).filter(|&i| need[i]) {
            for (f, m) in full
                .a
                .iter()
                .chain([&full.b])
                .zip(masked.a.iter().chain([&masked.b]))
            {
                assert!((f[i] - m[i]).abs() < 1e-3, "{i}: {} vs {}", f[i], m[i]);
            }
        }
    }

    #[test]
    fn guided_filter_keeps_constant_and_edges() {
        let (w, h) = (40, 30);
        // Constant input: output equals it, whatever the guide.
        let g: Vec<f32> = (0..w * h).map(|i| (i % 13) as f32 / 13.0).collect();
        let p = vec![0.3f32; w * h];
        let q = guided_filter([&g, &g, &g], &p, w, h, 3, 1e-3);
        assert!(q.iter().all(|v| (v - 0.3).abs() < 1e-4));
        // A step in both guide and input survives (edge preservation), unlike a box blur.
        let step: Vec<f32> = (0..w * h)
            .map(|i| if i % w >= w / 2 { 1.0 } else { 0.0 })
            .collect();
        let q = guided_filter([&step, &step, &step], &step, w, h, 4, 1e-4);
        let err: f32 = q.iter().zip(&step).map(|(a, b)| (a - b).abs()).sum::<f32>();
        let blur = box_mean(&step, w, h, 4);
        let berr: f32 = blur
            .iter()
            .zip(&step)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>();
        assert!(err < 0.05 * berr, "guided {err} vs box {berr}");
    }
}
