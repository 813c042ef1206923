//! Separable, antialiased resampling of planes (triangle filter, "bilinear" in the sense of Pillow:
//! the filter support widens when downscaling so no detail aliases).

use rayon::prelude::*;

use crate::buffer::{Plane, RgbPlanes};

/// Per output index: first source index and the normalised weights.
struct Taps {
    start: Vec<usize>,
    len: usize,
    weights: Vec<f32>,
}

fn taps(src: usize, dst: usize) -> Taps {
    let scale = src as f64 / dst as f64;
    let support = scale.max(1.0); // triangle half-width in source pixels
    let len = (2.0 * support).ceil() as usize + 2;
    let mut start = Vec::with_capacity(dst);
    let mut weights = vec![0.0f32; dst * len];
    for o in 0..dst {
        let center = (o as f64 + 0.5) * scale;
        let lo = ((center - support).floor().max(0.0)) as usize;
        let lo = lo.min(src.saturating_sub(1));
        let w = &mut weights[o * len..(o + 1) * len];
        let mut sum = 0.0f64;
        for (k, wk) in w.iter_mut().enumerate() {
            let i = lo + k;
            if i >= src {
                break;
            }
            let d = ((i as f64 + 0.5) - center).abs() / support;
            let v = (1.0 - d).max(0.0);
            *wk = v as f32;
            sum += v;
        }
        if sum <= 0.0 {
            // Degenerate (can happen at the border): nearest sample.
            w.iter_mut().for_each(|v| *v = 0.0);
            let nearest = (center.floor() as usize).min(src - 1);
            w[nearest - lo] = 1.0;
        } else {
            w.iter_mut().for_each(|v| *v = (*v as f64 / sum) as f32);
        }
        start.push(lo);
    }
    Taps {
        start,
        len,
        weights,
    }
}

/// Box-average by an integer factor `f` (output `⌈w/f⌉ × ⌈h/f⌉`; partial blocks at the right and
/// bottom edges are averaged over the pixels they have). Reads each input pixel once, and is an
/// exact area average, so thin strands fade instead of aliasing.
pub fn downsample_box(src: &[f32], w: usize, h: usize, f: usize) -> Vec<f32> {
    let (ow, oh) = (w.div_ceil(f), h.div_ceil(f));
    let mut out = vec![0.0f32; ow * oh];
    out.par_chunks_mut(ow).enumerate().for_each(|(oy, orow)| {
        let y0 = oy * f;
        let y1 = (y0 + f).min(h);
        for y in y0..y1 {
            for (o, chunk) in orow.iter_mut().zip(src[y * w..(y + 1) * w].chunks(f)) {
                *o += chunk.iter().sum::<f32>();
            }
        }
        let ny = (y1 - y0) as f32;
        for (ox, o) in orow.iter_mut().enumerate() {
            let nx = (w.min((ox + 1) * f) - ox * f) as f32;
            *o /= nx * ny;
        }
    });
    out
}

/// Resizes a plane to `width × height` with an antialiased triangle filter.
pub fn resize_plane(src: &Plane, width: usize, height: usize) -> Plane {
    if src.width == width && src.height == height {
        return src.clone();
    }
    let tx = taps(src.width, width);
    let ty = taps(src.height, height);
    // Horizontal pass: src.height × width.
    let mut tmp = vec![0.0f32; src.height * width];
    tmp.par_chunks_mut(width).enumerate().for_each(|(y, out)| {
        let row = src.row(y);
        for (o, v) in out.iter_mut().enumerate() {
            let s = tx.start[o];
            let w = &tx.weights[o * tx.len..(o + 1) * tx.len];
            let n = tx.len.min(src.width - s);
            let mut acc = 0.0f32;
            for k in 0..n {
                acc += row[s + k] * w[k];
            }
            *v = acc;
        }
    });
    // Vertical pass.
    let mut out = vec![0.0f32; width * height];
    out.par_chunks_mut(width).enumerate().for_each(|(o, dst)| {
        let s = ty.start[o];
        let w = &ty.weights[o * ty.len..(o + 1) * ty.len];
        let n = ty.len.min(src.height - s);
        for (k, &wk) in w.iter().enumerate().take(n) {
            if wk == 0.0 {
                continue;
            }
            let row = &tmp[(s + k) * width..(s + k + 1) * width];
            for (d, &r) in dst.iter_mut().zip(row) {
                *d += r * wk;
            }
        }
    });
    Plane::from_vec(width, height, out)
}

/// Resizes all three planes.
pub fn resize_rgb(src: &RgbPlanes, width: usize, height: usize) -> RgbPlanes {
    let c = [0, 1, 2].map(|ch| {
        let p = Plane {
            width: src.width,
            height: src.height,
            data: src.c[ch].clone(),
        };
        resize_plane(&p, width, height).data
    });
    RgbPlanes { width, height, c }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_stays_constant_and_mean_is_kept() {
        let p = Plane::new(37, 23, 0.25);
        for (w, h) in [(10, 7), (80, 50), (37, 23), (1, 1)] {
            let r = resize_plane(&p, w, h);
            assert!(r.data.iter().all(|v| (v - 0.25).abs() < 1e-5));
        }
        let ramp = Plane::from_vec(64, 1, (0..64).map(|i| i as f32).collect());
        let r = resize_plane(&ramp, 16, 1);
        let mean: f32 = r.data.iter().sum::<f32>() / 16.0;
        assert!((mean - 31.5).abs() < 0.5, "mean {mean}");
    }
}
