//! Disc-aperture bokeh in linear light.
//!
//! Algorithm: *row-span gather with row prefix sums* (the gather form of the span scatter in
//! DESIGN.md "Making it fast"; the same decomposition as Kawase-free "summed-area" disc filters, e.g.
//! McIntosh, Riecke & DiPaola 2012 for polygons). A disc is a stack of horizontal spans, one per kernel
//! row; with a prefix sum `P` of each image row, the sum over a span is `P[right] − P[left]`, so one
//! output pixel costs O(r) reads (2r + 1 rows × 4 reads), not O(r²), and the inner loop runs over
//! contiguous slices and vectorises.
//!
//! The kernel is anti-aliased by exact area: row `dy` covers the strip `[dy−½, dy+½]`, and its span
//! gets half-width `H = (area of the disc inside the strip) / 2`; the pixels at the span ends get
//! fractional weight (box-coverage of `[−H, H]`). Row sums are therefore exact disc areas, so a point
//! of light becomes a flat disc whose rim falls from full to zero within ~1 px, also at the top and
//! bottom of the disc (where a naive "row centre inside the circle" span would stair-step). Sampling the
//! piecewise-linear prefix sum at a fractional position gives that coverage for free.
//!
//! Borders: the kernel is renormalised by its in-image weight (computed analytically), so borders are
//! neither darkened nor filled with mirrored content.

use rayon::prelude::*;

use crate::buffer::RgbPlanes;

/// An anti-aliased disc kernel described by one span half-width per row.
#[derive(Clone, Debug)]
pub struct DiscKernel {
    /// Disc radius in pixels.
    pub radius: f32,
    /// Rows reach `dy ∈ [−reach, reach]`.
    pub reach: usize,
    /// Span half-width for `dy = i − reach`; `2·H` is the disc area inside the row's strip.
    half: Vec<f64>,
}

/// `∫ 2·√(R²−y²) dy` antiderivative (area of the disc below `y`, up to a constant).
fn disc_area_below(y: f64, r: f64) -> f64 {
    let y = y.clamp(-r, r);
    y * (r * r - y * y).max(0.0).sqrt() + r * r * (y / r).clamp(-1.0, 1.0).asin()
}

impl DiscKernel {
    /// Kernel for a disc of `radius` pixels (negative or NaN → 0, which is the identity).
    pub fn new(radius: f32) -> Self {
        let r = if radius.is_finite() && radius > 0.0 {
            radius as f64
        } else {
            0.0
        };
        // Row dy intersects the open disc when |dy| − ½ < r.
        let reach = ((r + 0.5).ceil() as usize).saturating_sub(1);
        let half = (-(reach as i64)..=reach as i64)
            .map(|dy| {
                if r == 0.0 {
                    return if dy == 0 { 0.5 } else { 0.0 };
                }
                let a = disc_area_below(dy as f64 + 0.5, r) - disc_area_below(dy as f64 - 0.5, r);
                0.5 * a
            })
            .collect();
        DiscKernel {
            radius: r as f32,
            reach,
            half,
        }
    }

    /// Span half-width of row `dy` (0 outside the kernel).
    pub fn half_width(&self, dy: i64) -> f64 {
        let i = dy + self.reach as i64;
        if i < 0 || i as usize >= self.half.len() {
            0.0
        } else {
            self.half[i as usize]
        }
    }

    /// Weight of the pixel at offset `(dx, dy)`: coverage of `[dx−½, dx+½]` by the row's span.
    pub fn weight(&self, dx: i64, dy: i64) -> f64 {
        let h = self.half_width(dy);
        let lo = (dx as f64 - 0.5).max(-h);
        let hi = (dx as f64 + 0.5).min(h);
        (hi - lo).max(0.0)
    }

    /// Sum of all weights (≈ π r²).
    pub fn total(&self) -> f64 {
        self.half.iter().map(|h| 2.0 * h).sum()
    }
}

/// Blurs linear planes with an anti-aliased disc of `radius` pixels (fast path, O(r) per pixel).
/// Radii below 0.5 px are the identity.
pub fn disc_blur(img: &RgbPlanes, radius: f32) -> RgbPlanes {
    let k = DiscKernel::new(radius);
    if k.reach == 0 {
        // A disc smaller than a pixel lies within the centre pixel: the normalised kernel is a delta.
        return img.clone();
    }
    let c = [0, 1, 2].map(|ch| blur_plane(&img.c[ch], img.width, img.height, &k));
    RgbPlanes {
        width: img.width,
        height: img.height,
        c,
    }
}

/// Row prefix sums: row `y` of the result holds `W + 1` values, `P[0] = 0`, `P[i+1] = P[i] + v[i]`.
/// Accumulated in f64 so long rows do not drift; stored in f32 (the span differences only need
/// ~1e-7 relative precision of the row total).
fn row_prefix(src: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut p = vec![0.0f32; (w + 1) * h];
    p.par_chunks_mut(w + 1)
        .zip(src.par_chunks(w))
        .for_each(|(p, v)| {
            let mut acc = 0.0f64;
            p[0] = 0.0;
            for (o, &x) in p[1..].iter_mut().zip(v) {
                acc += x as f64;
                *o = acc as f32;
            }
        });
    p
}

/// `∫₀ᵗ v`, with `v` piecewise constant (pixel `i` covers `[i, i+1)`), `t` clamped to `[0, W]`.
#[inline]
fn integral(p: &[f32], v: &[f32], t: f64) -> f64 {
    let w = v.len();
    let t = t.clamp(0.0, w as f64);
    let i = (t.floor() as usize).min(w);
    let f = t - i as f64;
    if i >= w {
        p[w] as f64
    } else {
        p[i] as f64 + f * v[i] as f64
    }
}

/// Blurs one plane with the kernel; output normalised by the in-image kernel weight.
fn blur_plane(src: &[f32], w: usize, h: usize, k: &DiscKernel) -> Vec<f32> {
    let prefix = row_prefix(src, w, h);
    let reach = k.reach as i64;
    let mut out = vec![0.0f32; w * h];
    out.par_chunks_mut(w).enumerate().for_each_init(
        || vec![0.0f64; w],
        |corr, (y, acc)| {
            // `corr[x]`: in-image weight minus the interior weight, non-zero near the left and
            // right borders only.
            corr.iter_mut().for_each(|c| *c = 0.0);
            let mut interior_weight = 0.0f64;
            let mut touched_lo = 0usize; // corr[..touched_lo] and corr[touched_hi..] may be set
            let mut touched_hi = w;
            for dy in -reach..=reach {
                let yy = y as i64 + dy;
                if yy < 0 || yy >= h as i64 {
                    continue;
                }
                let hw = k.half_width(dy);
                if hw <= 0.0 {
                    continue;
                }
                let yy = yy as usize;
                let p = &prefix[yy * (w + 1)..(yy + 1) * (w + 1)];
                let v = &src[yy * w..(yy + 1) * w];
                interior_weight += 2.0 * hw;
                // Span sum = S(x + ½ + H) − S(x + ½ − H), S the piecewise-linear integral.
                let hi_off = hw + 0.5; // ≥ 0.5
                let lo_off = 0.5 - hw; // ≤ 0.5
                let m1 = hi_off.floor() as i64;
                let g1 = (hi_off - m1 as f64) as f32;
                let m0 = lo_off.floor() as i64; // ≤ 0
                let g0 = (lo_off - m0 as f64) as f32;
                // Interior: x + m0 ≥ 0 and x + m1 ≤ W − 1 (all four reads in range).
                let x_lo = (-m0).max(0);
                let x_hi = w as i64 - 1 - m1; // inclusive
                let (x_lo, x_hi) = if x_hi >= x_lo {
                    (x_lo as usize, x_hi as usize)
                } else {
                    (w, w.saturating_sub(1)) // empty interior
                };
                if x_lo <= x_hi {
                    let n = x_hi - x_lo + 1;
                    let i1 = (x_lo as i64 + m1) as usize;
                    let i0 = (x_lo as i64 + m0) as usize;
                    let p1 = &p[i1..i1 + n];
                    let v1 = &v[i1..i1 + n];
                    let p0 = &p[i0..i0 + n];
                    let v0 = &v[i0..i0 + n];
                    let a = &mut acc[x_lo..x_lo + n];
                    for ((((a, &p1), &v1), &p0), &v0) in
                        a.iter_mut().zip(p1).zip(v1).zip(p0).zip(v0)
                    {
                        *a += (p1 - p0) + (g1 * v1 - g0 * v0);
                    }
                }
                // Borders: clamped integral, and record the weight deficit.
                let border = (0..x_lo.min(w)).chain((x_hi + 1).max(x_lo.min(w))..w);
                for x in border {
                    let t1 = x as f64 + hi_off;
                    let t0 = x as f64 + lo_off;
                    acc[x] += (integral(p, v, t1) - integral(p, v, t0)) as f32;
                    let inside = t1.min(w as f64) - t0.max(0.0);
                    corr[x] += inside.max(0.0) - 2.0 * hw;
                }
                touched_lo = touched_lo.max(x_lo.min(w));
                touched_hi = touched_hi.min(x_hi + 1);
            }
            if interior_weight <= 0.0 {
                return;
            }
            let inv = (1.0 / interior_weight) as f32;
            let mid_end = touched_hi.max(touched_lo);
            for a in &mut acc[touched_lo..mid_end] {
                *a *= inv;
            }
            for x in (0..touched_lo).chain(mid_end..w) {
                let wsum = interior_weight + corr[x];
                acc[x] = if wsum > 1e-12 {
                    (acc[x] as f64 / wsum) as f32
                } else {
                    0.0
                };
            }
        },
    );
    out
}

/// Slow exact reference: per-pixel 2-D convolution with the same kernel, renormalised by the
/// in-image weight. O(r²) per pixel; for tests only.
#[doc(hidden)]
pub fn reference_disc_blur(img: &RgbPlanes, radius: f32) -> RgbPlanes {
    let k = DiscKernel::new(radius);
    let (w, h) = (img.width as i64, img.height as i64);
    let reach = k.reach as i64;
    let mut out = RgbPlanes::new(img.width, img.height, 0.0);
    // Precompute the kernel taps.
    let mut taps = Vec::new();
    for dy in -reach..=reach {
        let hw = k.half_width(dy);
        let rx = (hw + 0.5).ceil() as i64;
        for dx in -rx..=rx {
            let wt = k.weight(dx, dy);
            if wt > 0.0 {
                taps.push((dx, dy, wt));
            }
        }
    }
    for y in 0..h {
        for x in 0..w {
            let mut s = [0.0f64; 3];
            let mut ws = 0.0f64;
            for &(dx, dy, wt) in &taps {
                let (xx, yy) = (x + dx, y + dy);
                if xx < 0 || yy < 0 || xx >= w || yy >= h {
                    continue;
                }
                let i = (yy * w + xx) as usize;
                for (c, s) in s.iter_mut().enumerate() {
                    *s += wt * img.c[c][i] as f64;
                }
                ws += wt;
            }
            let i = (y * w + x) as usize;
            for (c, s) in s.iter().enumerate() {
                out.c[c][i] = if ws > 0.0 { (s / ws) as f32 } else { 0.0 };
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_rows_sum_to_disc_area() {
        for r in [0.3f32, 1.0, 2.5, 7.3, 20.0] {
            let k = DiscKernel::new(r);
            let area = std::f64::consts::PI * (r as f64).powi(2);
            assert!((k.total() - area).abs() < 1e-9 * area.max(1.0), "r={r}");
        }
    }
}
