//! Background plate, bokeh and compositing.
//!
//! [`render_linear`] runs, all in linear light:
//!
//! 1. **Plate** (one fused full-resolution pass, written at the working resolution): each pixel's
//!    background colour `B = (I − α·F) / (1 − α)` (the compositing equation solved for B; equals `I`
//!    where α = 0) is weighted by `w = (1 − α/0.5)²` — zero from α = 0.5 up, so semi-transparent hair
//!    counts as subject — after a highlight boost, and box-averaged into the working grid as
//!    premultiplied sums. The weight is eroded by one working pixel (a safety margin against mattes a
//!    little too tight), then holes are filled by **pull–push** (Gortler et al. 1996, "The Lumigraph";
//!    the push-pull pyramid): a weighted pyramid is built by 2×2 sums, then each level is completed
//!    from the bilinearly upsampled level above. No subject colour enters the plate, so none can bleed
//!    into the bokeh (no halo).
//! 2. **Highlights**: near-clipped pixels (max channel above 0.8) are scaled up by a smooth gain, up
//!    to `1 + 12·highlights` at 1.0, so small lights bloom into bright bokeh balls; after blurring the
//!    exact inverse of that curve is applied (with a soft shoulder above it). A flat region therefore
//!    comes back unchanged, while light spread thin by the blur keeps its boosted energy — no hard clip.
//! 3. **Bokeh** ([`crate::bokeh::disc_blur`]) at a reduced resolution: the working grid is the image
//!    downscaled by an integer factor `k` chosen so the working radius is ≥ [`MIN_WORKING_RADIUS`];
//!    cost is then O(r·N/k³) instead of O(r·N). The result is upsampled bilinearly; a disc blur of
//!    ≥ 8 px is smooth enough that no blockiness survives (tested against the full-resolution
//!    reference).
//! 4. **Composite** `out = α′·F + (1 − α′)·bokeh`, fused with the upsampling. `α′` is α with its ends
//!    snapped: `[0.9, 0.98] → [0.9, 1]` and `[0.02, 0.1] → [0, 0.1]`, linear in between and identity
//!    elsewhere — continuous, so no visible steps, while α ≥ 0.98 gives exactly `F` (the subject is
//!    untouched) and matte noise ≤ 0.02 does not print sharp detail into the bokeh.

use rayon::prelude::*;

use crate::bokeh::disc_blur;
use crate::buffer::{Plane, RgbPlanes};

/// Render parameters the pipeline passes down.
#[derive(Clone, Debug)]
pub struct RenderParams {
    /// Disc radius in full-resolution pixels.
    pub radius: f32,
    /// Highlight boost 0–1 (0 = none).
    pub highlights: f32,
}

/// Smallest disc radius, in working pixels, the reduced-resolution path may use. Below ~8 px the
/// disc's 1 px anti-aliased rim becomes a visibly soft `k` px rim after upsampling.
pub const MIN_WORKING_RADIUS: f32 = 8.0;

/// Highlight gain at full boost: a clipped pixel becomes `1 + MAX_GAIN` times brighter.
const MAX_GAIN: f32 = 12.0;
/// Highlight boost starts at this max-channel value (linear; ≈ 0.91 sRGB).
const HIGHLIGHT_THRESHOLD: f32 = 0.8;
/// Matte value from which a pixel counts as fully subject for the plate.
const PLATE_ALPHA_CUT: f32 = 0.5;

/// Integer downscale factor used for a blur of `radius` full-resolution pixels.
#[doc(hidden)]
pub fn working_factor(radius: f32) -> usize {
    if !(radius.is_finite() && radius >= 2.0 * MIN_WORKING_RADIUS) {
        1
    } else {
        (radius / MIN_WORKING_RADIUS).floor().max(1.0) as usize
    }
}

/// `α′`: the matte with both ends snapped, continuously (see the module docs).
#[inline]
fn snap_alpha(a: f32) -> f32 {
    if !(a > 0.02) {
        0.0 // also NaN
    } else if a < 0.1 {
        (a - 0.02) * (0.1 / 0.08)
    } else if a <= 0.9 {
        a
    } else if a < 0.98 {
        0.9 + (a - 0.9) * (0.1 / 0.08)
    } else {
        1.0
    }
}

/// The highlight boost curve and its inverse.
struct Highlights {
    /// `highlights · MAX_GAIN`.
    hk: f32,
    /// Inverse of `m ↦ m·gain(m)` on `[t, b(1)]`, sampled uniformly.
    inv_lut: Vec<f32>,
    /// `b(1) = 1 + hk`.
    b1: f32,
}

impl Highlights {
    const LUT: usize = 2048;
    /// Shoulder height above 1 that blur-piled highlights may reach before clamping.
    const SHOULDER: f32 = 0.02;

    fn new(highlights: f32) -> Self {
        let h = if highlights.is_finite() {
            highlights.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let hk = h * MAX_GAIN;
        let mut s = Highlights {
            hk,
            inv_lut: Vec::new(),
            b1: 1.0 + hk,
        };
        if hk > 0.0 {
            // Invert the monotone b(m) = m·gain(m) on [t, 1] by bisection, once per render.
            let t = HIGHLIGHT_THRESHOLD as f64;
            let b1 = s.b1 as f64;
            s.inv_lut = (0..=Self::LUT)
                .map(|i| {
                    let v = t + (b1 - t) * i as f64 / Self::LUT as f64;
                    let (mut lo, mut hi) = (t, 1.0f64);
                    for _ in 0..50 {
                        let mid = 0.5 * (lo + hi);
                        if mid * s.gain(mid as f32) as f64 > v {
                            hi = mid;
                        } else {
                            lo = mid;
                        }
                    }
                    (0.5 * (lo + hi)) as f32
                })
                .collect();
        }
        s
    }

    fn enabled(&self) -> bool {
        self.hk > 0.0
    }

    /// `1 + hk·smoothstep((m − t)/(1 − t))`: C¹, 1 below the threshold.
    #[inline]
    fn gain(&self, m: f32) -> f32 {
        let x = ((m - HIGHLIGHT_THRESHOLD) / (1.0 - HIGHLIGHT_THRESHOLD)).clamp(0.0, 1.0);
        1.0 + self.hk * x * x * (3.0 - 2.0 * x)
    }

    /// Maps a blurred boosted value (max channel) back to display range: the inverse of `m·gain(m)`
    /// up to `b(1)`, then an exponential shoulder that approaches `1 + SHOULDER`.
    #[inline]
    fn tone(&self, v: f32) -> f32 {
        let t = HIGHLIGHT_THRESHOLD;
        if v <= t {
            v
        } else if v < self.b1 {
            let p = (v - t) / (self.b1 - t) * Self::LUT as f32;
            let i = (p as usize).min(Self::LUT - 1);
            let f = p - i as f32;
            self.inv_lut[i] + f * (self.inv_lut[i + 1] - self.inv_lut[i])
        } else {
            // Slope 1/b'(1) = 1/b1 at the join, so the curve is C¹.
            let e = Self::SHOULDER;
            1.0 + e * (1.0 - (-(v - self.b1) / (e * self.b1)).exp())
        }
    }
}

/// Renders the final linear image: background plate with the subject filled from its surroundings,
/// disc bokeh with highlight boost, then `α·F + (1−α)·bokeh`.
/// `image`: linear photo; `foreground`: linear F; `alpha`: matte in [0, 1]; all the same size.
///
/// # Panics
/// If the three inputs differ in size (a programming error; the pipeline checks user input).
pub fn render_linear(
    image: &RgbPlanes,
    foreground: &RgbPlanes,
    alpha: &Plane,
    params: &RenderParams,
) -> RgbPlanes {
    let (w, h) = (image.width, image.height);
    assert!(
        foreground.width == w && foreground.height == h && alpha.width == w && alpha.height == h,
        "render_linear: image, foreground and alpha sizes differ"
    );
    let radius = if params.radius.is_finite() {
        params.radius.max(0.0)
    } else {
        0.0
    };
    if radius < 0.5 || w == 0 || h == 0 {
        // A sub-pixel disc is the identity: composite the photo itself.
        return composite_full(image, foreground, alpha);
    }
    let hl = Highlights::new(params.highlights);
    let k = working_factor(radius);
    let plate = build_plate(image, foreground, alpha, k, &hl);
    let mut bokeh = disc_blur(&plate, radius / k as f32);
    if hl.enabled() {
        tone_map(&mut bokeh, &hl);
    }
    composite_upsampled(foreground, alpha, &bokeh, k)
}

/// `α′·F + (1−α′)·B` with a full-resolution `B`.
fn composite_full(b: &RgbPlanes, f: &RgbPlanes, alpha: &Plane) -> RgbPlanes {
    let mut out = RgbPlanes::new(b.width, b.height, 0.0);
    for ch in 0..3 {
        out.c[ch]
            .par_chunks_mut(16 * 1024)
            .zip(b.c[ch].par_chunks(16 * 1024))
            .zip(f.c[ch].par_chunks(16 * 1024))
            .zip(alpha.data.par_chunks(16 * 1024))
            .for_each(|(((o, b), f), a)| {
                for (((o, &b), &f), &a) in o.iter_mut().zip(b).zip(f).zip(a) {
                    let a = snap_alpha(a);
                    *o = if a >= 1.0 { f } else { a * f + (1.0 - a) * b };
                }
            });
    }
    out
}

/// Plate weight of a matte value: 1 for background, 0 from `PLATE_ALPHA_CUT` up.
#[inline]
fn plate_weight(a: f32) -> f32 {
    let x = (1.0 - a / PLATE_ALPHA_CUT).clamp(0.0, 1.0);
    x * x // NaN clamps to NaN; callers guard below
}

/// Builds the filled background plate at `1/k` resolution (see the module docs).
fn build_plate(
    image: &RgbPlanes,
    fg: &RgbPlanes,
    alpha: &Plane,
    k: usize,
    hl: &Highlights,
) -> RgbPlanes {
    let (w, h) = (image.width, image.height);
    let (ww, wh) = (w.div_ceil(k), h.div_ceil(k));
    let n = ww * wh;
    // Premultiplied colour sums and weight sums per working pixel: [r, g, b, w] planes.
    let mut sums = [
        vec![0.0f32; n],
        vec![0.0f32; n],
        vec![0.0f32; n],
        vec![0.0f32; n],
    ];
    {
        let [sr, sg, sb, sw] = &mut sums;
        sr.par_chunks_mut(ww)
            .zip(sg.par_chunks_mut(ww))
            .zip(sb.par_chunks_mut(ww))
            .zip(sw.par_chunks_mut(ww))
            .enumerate()
            .for_each(|(j, (((or, og), ob), ow))| {
                let y0 = j * k;
                let y1 = (y0 + k).min(h);
                for y in y0..y1 {
                    let row = y * w..(y + 1) * w;
                    let (ir, ig, ib) = (
                        &image.c[0][row.clone()],
                        &image.c[1][row.clone()],
                        &image.c[2][row.clone()],
                    );
                    let (fr, fgr, fb) = (
                        &fg.c[0][row.clone()],
                        &fg.c[1][row.clone()],
                        &fg.c[2][row.clone()],
                    );
                    let ar = &alpha.data[row];
                    for i in 0..ww {
                        let xs = i * k..((i + 1) * k).min(w);
                        let (mut r, mut g, mut b, mut wt) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
                        for x in xs {
                            let a = ar[x];
                            let wx = plate_weight(a);
                            if !(wx > 0.0) {
                                continue;
                            }
                            // Background colour from the compositing equation (a < 0.5 here).
                            let (mut br, mut bg, mut bb) = if a > 0.0 {
                                let inv = 1.0 / (1.0 - a);
                                (
                                    ((ir[x] - a * fr[x]) * inv).max(0.0),
                                    ((ig[x] - a * fgr[x]) * inv).max(0.0),
                                    ((ib[x] - a * fb[x]) * inv).max(0.0),
                                )
                            } else {
                                (ir[x], ig[x], ib[x])
                            };
                            if hl.enabled() {
                                let gn = hl.gain(br.max(bg).max(bb));
                                br *= gn;
                                bg *= gn;
                                bb *= gn;
                            }
                            r += wx * br;
                            g += wx * bg;
                            b += wx * bb;
                            wt += wx;
                        }
                        or[i] += r;
                        og[i] += g;
                        ob[i] += b;
                        ow[i] += wt;
                    }
                }
                // Block sums → means (edge blocks hold fewer pixels).
                let bh = (y1 - y0) as f32;
                for i in 0..ww {
                    let bw = (((i + 1) * k).min(w) - i * k) as f32;
                    let inv = 1.0 / (bw * bh);
                    or[i] *= inv;
                    og[i] *= inv;
                    ob[i] *= inv;
                    ow[i] *= inv;
                }
            });
    }
    let [pr, pg, pb, pw] = sums;
    let mut level = Level {
        w: ww,
        h: wh,
        wt: pw,
        c: [pr, pg, pb],
    };
    erode_weight(&mut level);
    let c = pull_push(level);
    RgbPlanes {
        width: ww,
        height: wh,
        c,
    }
}

/// One pyramid level: weights in [0, 1] and premultiplied colours.
struct Level {
    w: usize,
    h: usize,
    wt: Vec<f32>,
    c: [Vec<f32>; 3],
}

/// Replaces the weight by its 3×3 minimum (colour rescaled to stay premultiplied): pixels next to
/// the subject are refilled from further out, a margin for slightly tight mattes.
fn erode_weight(l: &mut Level) {
    let (w, h) = (l.w, l.h);
    let src = &l.wt;
    let mut ero = vec![0.0f32; w * h];
    ero.par_chunks_mut(w).enumerate().for_each(|(y, out)| {
        let ys = y.saturating_sub(1)..(y + 2).min(h);
        for (x, o) in out.iter_mut().enumerate() {
            let xs = x.saturating_sub(1)..(x + 2).min(w);
            let mut m = f32::INFINITY;
            for yy in ys.clone() {
                for &v in &src[yy * w + xs.start..yy * w + xs.end] {
                    m = m.min(v);
                }
            }
            *o = m;
        }
    });
    for c in l.c.iter_mut() {
        c.par_chunks_mut(w)
            .zip(ero.par_chunks(w))
            .zip(src.par_chunks(w))
            .for_each(|((c, e), s)| {
                for ((c, &e), &s) in c.iter_mut().zip(e).zip(s) {
                    *c = if s > 0.0 { *c * (e / s) } else { 0.0 };
                }
            });
    }
    l.wt = ero;
}

/// Pull–push hole filling; returns un-premultiplied colours, defined everywhere.
fn pull_push(base: Level) -> [Vec<f32>; 3] {
    // Pull: 2×2 sums, weight clamped to 1 (Gortler et al.), until 1×1.
    let mut levels = vec![base];
    loop {
        let l = &levels[levels.len() - 1];
        if l.w <= 1 && l.h <= 1 {
            break;
        }
        let (nw, nh) = (l.w.div_ceil(2), l.h.div_ceil(2));
        let mut wt = vec![0.0f32; nw * nh];
        let mut c = [
            vec![0.0f32; nw * nh],
            vec![0.0f32; nw * nh],
            vec![0.0f32; nw * nh],
        ];
        {
            let [c0, c1, c2] = &mut c;
            wt.par_chunks_mut(nw)
                .zip(c0.par_chunks_mut(nw))
                .zip(c1.par_chunks_mut(nw))
                .zip(c2.par_chunks_mut(nw))
                .enumerate()
                .for_each(|(y, (((ow, o0), o1), o2))| {
                    for x in 0..nw {
                        let mut s = [0.0f32; 4];
                        for yy in 2 * y..(2 * y + 2).min(l.h) {
                            for xx in 2 * x..(2 * x + 2).min(l.w) {
                                let i = yy * l.w + xx;
                                s[0] += l.wt[i];
                                s[1] += l.c[0][i];
                                s[2] += l.c[1][i];
                                s[3] += l.c[2][i];
                            }
                        }
                        let nwt = s[0].min(1.0);
                        let scale = if s[0] > 0.0 { nwt / s[0] } else { 0.0 };
                        ow[x] = nwt;
                        o0[x] = s[1] * scale;
                        o1[x] = s[2] * scale;
                        o2[x] = s[3] * scale;
                    }
                });
        }
        levels.push(Level {
            w: nw,
            h: nh,
            wt,
            c,
        });
    }
    // Push: the coarsest level's colour, then each finer level completes itself from the level above.
    let top = levels.pop().expect("pyramid has at least one level");
    let mut filled: [Vec<f32>; 3] = top.c.map(|c| {
        c.iter()
            .zip(&top.wt)
            .map(|(&c, &w)| if w > 0.0 { c / w } else { 0.0 })
            .collect()
    });
    let (mut pw, mut ph) = (top.w, top.h);
    while let Some(l) = levels.pop() {
        let (tx, ty) = (upsample2_taps(l.w, pw), upsample2_taps(l.h, ph));
        let mut next = [
            vec![0.0f32; l.w * l.h],
            vec![0.0f32; l.w * l.h],
            vec![0.0f32; l.w * l.h],
        ];
        for (ch, out) in next.iter_mut().enumerate() {
            let parent = &filled[ch];
            let own = &l.c[ch];
            out.par_chunks_mut(l.w).enumerate().for_each(|(y, o)| {
                let (y0, y1, fy) = ty[y];
                let r0 = &parent[y0 * pw..(y0 + 1) * pw];
                let r1 = &parent[y1 * pw..(y1 + 1) * pw];
                let base = y * l.w;
                for (x, o) in o.iter_mut().enumerate() {
                    let (x0, x1, fx) = tx[x];
                    let top = r0[x0] + fx * (r0[x1] - r0[x0]);
                    let bot = r1[x0] + fx * (r1[x1] - r1[x0]);
                    let up = top + fy * (bot - top);
                    let i = base + x;
                    *o = own[i] + (1.0 - l.wt[i]) * up;
                }
            });
        }
        filled = next;
        pw = l.w;
        ph = l.h;
    }
    filled
}

/// Bilinear taps for upsampling `parent` samples onto `n ≈ 2·parent` children (centres aligned).
fn upsample2_taps(n: usize, parent: usize) -> Vec<(usize, usize, f32)> {
    (0..n)
        .map(|x| bilinear_tap((x as f32 + 0.5) / 2.0 - 0.5, parent))
        .collect()
}

/// Two neighbouring indices and the fraction for a continuous coordinate, clamped to `[0, n)`.
#[inline]
fn bilinear_tap(u: f32, n: usize) -> (usize, usize, f32) {
    let last = n.saturating_sub(1);
    if !(u > 0.0) {
        return (0, 0, 0.0);
    }
    let i = u.floor() as usize;
    if i >= last {
        return (last, last, 0.0);
    }
    (i, i + 1, u - i as f32)
}

/// Applies the inverse highlight curve on the max channel, scaling all three (keeps hue).
fn tone_map(img: &mut RgbPlanes, hl: &Highlights) {
    let w = img.width;
    let [r, g, b] = &mut img.c;
    r.par_chunks_mut(w)
        .zip(g.par_chunks_mut(w))
        .zip(b.par_chunks_mut(w))
        .for_each(|((r, g), b)| {
            for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
                let m = r.max(*g).max(*b);
                if m > HIGHLIGHT_THRESHOLD {
                    let s = hl.tone(m) / m;
                    *r *= s;
                    *g *= s;
                    *b *= s;
                }
            }
        });
}

/// Bilinear taps from `n` full-resolution positions onto the `nb` block centres of a `k`× box
/// downscale. Block `i` covers `[i·k, min((i+1)·k, n))`, so the last block may be narrower and its
/// centre is not on the uniform grid; outside the first and last centres the value is held.
fn block_taps(n: usize, k: usize, nb: usize) -> Vec<(usize, usize, f32)> {
    let centre = |i: usize| 0.5 * ((i * k) as f32 + ((i + 1) * k).min(n) as f32) - 0.5;
    let last = nb.saturating_sub(1);
    let mut i = 0usize;
    (0..n)
        .map(|x| {
            let xf = x as f32;
            while i < last && centre(i + 1) <= xf {
                i += 1;
            }
            if i >= last || xf <= centre(0) {
                let j = if xf <= centre(0) { 0 } else { last };
                (j, j, 0.0)
            } else {
                let (c0, c1) = (centre(i), centre(i + 1));
                (i, i + 1, (xf - c0) / (c1 - c0))
            }
        })
        .collect()
}

/// Bilinearly upsamples the working-resolution bokeh by `k` and composites `α′·F + (1−α′)·bokeh`,
/// in one pass over the full-resolution image.
fn composite_upsampled(fg: &RgbPlanes, alpha: &Plane, bokeh: &RgbPlanes, k: usize) -> RgbPlanes {
    let (w, h) = (fg.width, fg.height);
    let (bw, bh) = (bokeh.width, bokeh.height);
    let tx = block_taps(w, k, bw);
    let ty = block_taps(h, k, bh);
    let mut out = RgbPlanes::new(w, h, 0.0);
    let [or, og, ob] = &mut out.c;
    or.par_chunks_mut(w)
        .zip(og.par_chunks_mut(w))
        .zip(ob.par_chunks_mut(w))
        .enumerate()
        .for_each_init(
            || vec![0.0f32; 3 * bw],
            |tmp, (y, ((or, og), ob))| {
                let (y0, y1, fy) = ty[y];
                // Vertical interpolation of the two working rows, once per output row.
                for ch in 0..3 {
                    let src = &bokeh.c[ch];
                    let r0 = &src[y0 * bw..(y0 + 1) * bw];
                    let r1 = &src[y1 * bw..(y1 + 1) * bw];
                    for ((t, &a), &b) in tmp[ch * bw..(ch + 1) * bw].iter_mut().zip(r0).zip(r1) {
                        *t = a + fy * (b - a);
                    }
                }
                let (t0, rest) = tmp.split_at(bw);
                let (t1, t2) = rest.split_at(bw);
                let row = y * w..(y + 1) * w;
                let ar = &alpha.data[row.clone()];
                let (fr, fgr, fb) = (&fg.c[0][row.clone()], &fg.c[1][row.clone()], &fg.c[2][row]);
                for x in 0..w {
                    let a = snap_alpha(ar[x]);
                    if a >= 1.0 {
                        or[x] = fr[x];
                        og[x] = fgr[x];
                        ob[x] = fb[x];
                        continue;
                    }
                    let (x0, x1, fx) = tx[x];
                    let br = t0[x0] + fx * (t0[x1] - t0[x0]);
                    let bg = t1[x0] + fx * (t1[x1] - t1[x0]);
                    let bb = t2[x0] + fx * (t2[x1] - t2[x0]);
                    let ia = 1.0 - a;
                    or[x] = a * fr[x] + ia * br;
                    og[x] = a * fgr[x] + ia * bg;
                    ob[x] = a * fb[x] + ia * bb;
                }
            },
        );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snap_alpha_is_continuous_and_monotone() {
        let mut prev = snap_alpha(0.0);
        for i in 1..=10_000 {
            let a = i as f32 / 10_000.0;
            let s = snap_alpha(a);
            assert!(s >= prev && s - prev < 2e-4, "a={a}");
            prev = s;
        }
        assert_eq!(snap_alpha(0.985), 1.0);
        assert_eq!(snap_alpha(0.01), 0.0);
        assert_eq!(snap_alpha(0.5), 0.5);
    }

    #[test]
    fn tone_inverts_boost() {
        let hl = Highlights::new(1.0);
        for i in 0..=100 {
            let m = i as f32 / 100.0;
            let back = hl.tone(m * hl.gain(m));
            assert!((back - m).abs() < 1e-4, "m={m} back={back}");
        }
        assert!(hl.tone(1e6) <= 1.0 + Highlights::SHOULDER);
    }
}
