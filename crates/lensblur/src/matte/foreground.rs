//! Foreground colour estimation.
//!
//! Compositing `α·I` over a new background keeps a fringe of the old one in every partly
//! transparent pixel (`I = αF + (1−α)B` still contains `B`). We estimate F in the spirit of Germer
//! et al. 2020 ("Fast multi-level foreground estimation"): smooth F and B priors, then per pixel the
//! 2×2 least-squares problem
//! `min (αF + (1−α)B − I)² + λ(‖F − F̂‖² + ‖B − B̂‖²)`,
//! which is their per-level update. Instead of their iterated multi-level sweeps, the priors F̂ and
//! B̂ come from one pull-push (multi-level normalised convolution) fill of the sure-foreground and
//! sure-background colours at the working resolution — the same coarse-to-fine propagation, in
//! one pass — so the full-resolution work is a single closed-form step on the `0 < α < 1` pixels.

use rayon::prelude::*;

use super::refine::{box_mean, downsample_box, pull_push_where, sample2, work_factor, Axis};
use crate::buffer::{Plane, RgbPlanes};

/// At or above this alpha the pixel is treated as pure foreground and returned unchanged.
pub const OPAQUE: f32 = 0.98;
/// Prior weight: small, so the compositing equation holds almost exactly and the priors only pick
/// the split between F and B.
const LAMBDA: f32 = 0.01;

/// Estimates the foreground colour F (linear light) such that `image ≈ α·F + (1−α)·B`, so that
/// compositing `α·F` over a new background leaves no fringe of the old one. Where α ≥ [`OPAQUE`]
/// (and where α = 0) it returns the image itself; elsewhere F is finite and in [0, 1].
pub fn estimate_foreground(image_linear: &RgbPlanes, alpha: &Plane) -> RgbPlanes {
    let (w, h) = (image_linear.width, image_linear.height);
    if alpha.width != w || alpha.height != h || w == 0 || h == 0 {
        return image_linear.clone();
    }
    let partial = |a: f32| a > 0.0 && a < OPAQUE;
    if !alpha.data.par_iter().any(|&a| partial(a)) {
        return image_linear.clone();
    }
    // Priors at working resolution.
    let f = work_factor(w, h);
    let (ww, wh) = (w.div_ceil(f), h.div_ceil(f));
    let (img_w, a_w): (Vec<Vec<f32>>, Vec<f32>) = if f == 1 {
        (image_linear.c.to_vec(), alpha.data.clone())
    } else {
        let c: Vec<Vec<f32>> = image_linear
            .c
            .par_iter()
            .map(|c| downsample_box(c, w, h, f))
            .collect();
        (c, downsample_box(&alpha.data, w, h, f))
    };
    let clean = |v: f32| if v.is_finite() { v } else { 0.0 };
    let wf: Vec<f32> = a_w
        .iter()
        .map(|&a| if clean(a) >= OPAQUE { 1.0 } else { 0.0 })
        .collect();
    let wb: Vec<f32> = a_w
        .iter()
        .map(|&a| if clean(a) <= 0.02 { 1.0 } else { 0.0 })
        .collect();
    let chans: Vec<&[f32]> = img_w.iter().map(|c| c.as_slice()).collect();
    // The priors are read only at the bilinear corners of partial pixels: within one working
    // pixel of a block whose mean alpha is strictly between 0 and 1.
    let mixed: Vec<f32> = a_w
        .iter()
        .map(|&a| if a > 0.0 && a < 1.0 { 1.0 } else { 0.0 })
        .collect();
    let need: Vec<bool> = box_mean(&mixed, ww, wh, 1)
        .into_iter()
        .map(|v| v > 1e-6)
        .collect();
    let need = (f > 1).then_some(&need[..]);
    let (ff, bb) = rayon::join(
        || pull_push_where(&chans, &wf, ww, wh, need),
        || pull_push_where(&chans, &wb, ww, wh, need),
    );
    let has_f = wf.iter().any(|&v| v > 0.0);
    let has_b = wb.iter().any(|&v| v > 0.0);
    // The copy of the image is fused into the solve pass: one parallel pass over the output
    // (whose fresh, zeroed pages are first touched here, by every thread) instead of a serial
    // clone followed by a second full-resolution pass.
    let mut out = RgbPlanes {
        width: w,
        height: h,
        c: [
            vec![0.0f32; w * h],
            vec![0.0f32; w * h],
            vec![0.0f32; w * h],
        ],
    };
    let xs = Axis::table(w, f, ww);
    let [or, og, ob] = &mut out.c;
    or.par_chunks_mut(w)
        .zip(og.par_chunks_mut(w))
        .zip(ob.par_chunks_mut(w))
        .enumerate()
        .for_each(|(y, ((rr, rg), rb))| {
            let off = y * w;
            let src = [
                &image_linear.c[0][off..off + w],
                &image_linear.c[1][off..off + w],
                &image_linear.c[2][off..off + w],
            ];
            let mut rows = [rr, rg, rb];
            for (row, s) in rows.iter_mut().zip(&src) {
                row.copy_from_slice(s);
            }
            let arow = &alpha.data[off..off + w];
            if !arow.iter().any(|&a| partial(a)) {
                return;
            }
            let ay = Axis::table_at(y, f, wh);
            let (o0, o1) = (ay.i0 * ww, ay.i1 * ww);
            for (x, (&a, ax)) in arow.iter().zip(&xs).enumerate() {
                if !partial(a) {
                    continue;
                }
                let a1 = 1.0 - a;
                // Normal equations of the 2×2 problem (same matrix for every channel).
                let m00 = a * a + LAMBDA;
                let m01 = a * a1;
                let m11 = a1 * a1 + LAMBDA;
                let inv_det = 1.0 / (m00 * m11 - m01 * m01);
                for (c, row) in rows.iter_mut().enumerate() {
                    let iv = src[c][x];
                    let fp = if has_f {
                        sample2(&ff[c][o0..o0 + ww], &ff[c][o1..o1 + ww], ax, &ay)
                    } else {
                        iv
                    };
                    let bp = if has_b {
                        sample2(&bb[c][o0..o0 + ww], &bb[c][o1..o1 + ww], ax, &ay)
                    } else {
                        iv
                    };
                    let r0 = a * iv + LAMBDA * fp;
                    let r1 = a1 * iv + LAMBDA * bp;
                    let fv = (m11 * r0 - m01 * r1) * inv_det;
                    row[x] = if fv.is_finite() {
                        fv.clamp(0.0, 1.0)
                    } else {
                        iv
                    };
                }
            }
        });
    out
}
