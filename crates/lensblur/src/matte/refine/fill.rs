//! Pull-push (normalised convolution on a pyramid) fill: extends the colours of a weighted region
//! smoothly into the rest of the image, every pixel getting the colour of the nearest well-covered
//! area. Used for the local foreground / background colour models of the matting data term and
//! for foreground colour estimation.

use rayon::prelude::*;

/// One pyramid level: width, height, premultiplied channels, coverage.
type Level = (usize, usize, Vec<Vec<f32>>, Vec<f32>);

/// Fills `chans` (each `w × h`) from where `weight` (in [0, 1]) is high. Returns the filled
/// channels; pixels with weight 1 keep their value.
pub(crate) fn pull_push(chans: &[&[f32]], weight: &[f32], w: usize, h: usize) -> Vec<Vec<f32>> {
    pull_push_where(chans, weight, w, h, None)
}

/// [`pull_push`] whose finest level is only evaluated where `need` is set (0 elsewhere): the
/// finest push is the largest step, and callers often read the fill only near an edge.
pub(crate) fn pull_push_where(
    chans: &[&[f32]],
    weight: &[f32],
    w: usize,
    h: usize,
    need: Option<&[bool]>,
) -> Vec<Vec<f32>> {
    let nc = chans.len();
    // Level 0: premultiplied values and coverage.
    let mut levels: Vec<Level> = Vec::new();
    let pre: Vec<Vec<f32>> = chans
        .iter()
        .map(|c| c.iter().zip(weight).map(|(v, m)| v * m).collect())
        .collect();
    levels.push((w, h, pre, weight.to_vec()));
    // Pull: 2×2 averages of premultiplied values and weights.
    loop {
        let (lw, lh, v, m) = &levels[levels.len() - 1];
        if *lw <= 1 && *lh <= 1 {
            break;
        }
        let (nw, nh) = (lw.div_ceil(2), lh.div_ceil(2));
        let nv: Vec<Vec<f32>> = v
            .iter()
            .map(|p| super::downsample_box(p, *lw, *lh, 2))
            .collect();
        let nm = super::downsample_box(m, *lw, *lh, 2);
        levels.push((nw, nh, nv, nm));
    }
    // Push: from the top, normalise and blend with the upsampled coarser fill where coverage is low.
    let top = &levels[levels.len() - 1];
    let mut fill: Vec<Vec<f32>> = top
        .2
        .iter()
        .map(|p| {
            p.iter()
                .zip(&top.3)
                .map(|(v, m)| if *m > 1e-12 { v / m } else { 0.0 })
                .collect()
        })
        .collect();
    let (mut fw, mut fh) = (top.0, top.1);
    for l in (0..levels.len() - 1).rev() {
        let (lw, lh, v, m) = &levels[l];
        let (lw, lh) = (*lw, *lh);
        // Interpolation tables: no per-pixel divisions (the push is most of the fill's time).
        let xs = super::Axis::table(lw, 2, fw);
        let ys = super::Axis::table(lh, 2, fh);
        let mut out: Vec<Vec<f32>> = (0..nc).map(|_| vec![0.0f32; lw * lh]).collect();
        for (c, o) in out.iter_mut().enumerate() {
            let coarse = &fill[c];
            let vc = &v[c];
            o.par_chunks_mut(lw).enumerate().for_each(|(y, row)| {
                let ay = &ys[y];
                let r0 = &coarse[ay.i0 * fw..(ay.i0 + 1) * fw];
                let r1 = &coarse[ay.i1 * fw..(ay.i1 + 1) * fw];
                let mrow = &m[y * lw..(y + 1) * lw];
                let vrow = &vc[y * lw..(y + 1) * lw];
                let nrow = match need {
                    Some(n) if l == 0 => Some(&n[y * lw..(y + 1) * lw]),
                    _ => None,
                };
                if nrow.is_some_and(|n| !n.iter().any(|&v| v)) {
                    return;
                }
                for (x, (((ov, ax), &mi), &vi)) in
                    row.iter_mut().zip(&xs).zip(mrow).zip(vrow).enumerate()
                {
                    if nrow.is_some_and(|n| !n[x]) {
                        continue;
                    }
                    let up = super::sample2(r0, r1, ax, ay);
                    // Coverage boosted so a half-covered pixel already trusts its own colour.
                    let a = (mi * 4.0).min(1.0);
                    let own = if mi > 1e-12 { vi / mi } else { 0.0 };
                    *ov = a * own + (1.0 - a) * up;
                }
            });
        }
        fill = out;
        fw = lw;
        fh = lh;
    }
    fill
}
