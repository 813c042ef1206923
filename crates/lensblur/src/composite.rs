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
//! 3. **Bokeh** ([`crate::bokeh::blur`], any [`Aperture`]) at a reduced resolution: the working grid is the image
//!    downscaled by an integer factor `k` ([`working_factor`]: blur cost O(r·N/k³) kept within a
//!    budget, working radius ≥ [`MIN_WORKING_RADIUS`]). The result is upsampled bilinearly; the
//!    blurred plate is smooth enough that no blockiness survives (tested against the
//!    full-resolution reference).
//! 4. **Composite** `out = α′·F + (1 − α′)·bokeh`, fused with the upsampling. `α′` is α with its ends
//!    snapped: `[0.9, 0.98] → [0.9, 1]` and `[0.02, 0.1] → [0, 0.1]`, linear in between and identity
//!    elsewhere — continuous, so no visible steps, while α ≥ 0.98 gives exactly `F` (the subject is
//!    untouched) and matte noise ≤ 0.02 does not print sharp detail into the bokeh.

use rayon::prelude::*;

use crate::bokeh::{blur, Aperture};

mod layered;
use crate::buffer::{Plane, RgbPlanes};

/// Render parameters the pipeline passes down.
#[derive(Clone, Debug)]
pub struct RenderParams {
    /// Disc radius in full-resolution pixels.
    pub radius: f32,
    /// Highlight boost 0–1 (0 = none).
    pub highlights: f32,
    /// Aperture shape, cat's eye and profile.
    pub aperture: Aperture,
}

/// Smallest disc radius, in working pixels, the reduced-resolution path may use. Only small blurs
/// (r < ~15 px on 12 MP) get this close to it, where the disc's shape is barely visible anyway; the
/// full-resolution path (k = 1) is several times slower (it is bound by allocating and touching
/// full-resolution planes), so it is kept for r < 2·this.
pub const MIN_WORKING_RADIUS: f32 = 2.0;

/// Blur cost budget, in working pixels × working radius (the span gather is O(N·r)): ≈ 50–80 ms of
/// one core for the three channels. Larger images or radii get a larger `k`, smaller ones a finer
/// grid. The reduced path widens a disc's rim to ≈ 1.5·k px, so this trades time for crisp balls.
const WORK_BUDGET: f64 = 1.2e7;

/// Highlight gain at full boost: a clipped pixel becomes `1 + MAX_GAIN` times brighter.
const MAX_GAIN: f32 = 12.0;
/// Highlight boost starts at this max-channel value (linear; ≈ 0.91 sRGB).
const HIGHLIGHT_THRESHOLD: f32 = 0.8;
/// Matte value from which a pixel counts as fully subject for the plate.
const PLATE_ALPHA_CUT: f32 = 0.5;

/// Integer downscale factor for a blur of `radius` full-resolution pixels on a `width × height`
/// image: the smallest `k` whose blur cost `N·r / k³` fits [`WORK_BUDGET`], but never so large that
/// the working radius drops below [`MIN_WORKING_RADIUS`]. On 12 MP: strength 15 → k = 3 (working
/// radius 5.2), 30 → 4 (8.9), 50 → 5 (13.6), 80 → 6 (21.8), 100 → 6 (30.3) — big discs, where the
/// rim is most visible, also get the most working pixels across.
#[doc(hidden)]
pub fn working_factor(radius: f32, width: usize, height: usize) -> usize {
    if !(radius.is_finite() && radius >= 2.0 * MIN_WORKING_RADIUS) {
        return 1;
    }
    let n = (width * height) as f64;
    let k_cost = (n * radius as f64 / WORK_BUDGET).cbrt().ceil().max(1.0) as usize;
    let k_max = (radius / MIN_WORKING_RADIUS).floor().max(1.0) as usize;
    k_cost.min(k_max)
}

/// `α′`: the matte with both ends snapped, continuously (see the module docs). Written with
/// clamps and selects so the composite loop vectorises; NaN maps to 0.
#[inline]
pub fn snap_alpha(a: f32) -> f32 {
    let a = if a.is_nan() { 0.0 } else { a };
    let low = ((a - 0.02) * (0.1 / 0.08)).clamp(0.0, 0.1);
    let mid = a.clamp(0.1, 0.9) - 0.1;
    let high = ((a - 0.9) * (0.1 / 0.08)).clamp(0.0, 0.1);
    // Exactly 1 from 0.98 up (the sum of the three f32 pieces could round to 1 − ε).
    if a >= 0.98 {
        1.0
    } else {
        low + mid + high
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

    /// A colour boosted by the gain of its max channel (unchanged below the threshold).
    #[inline]
    fn boost(&self, c: [f32; 3]) -> [f32; 3] {
        let m = c[0].max(c[1]).max(c[2]);
        if self.enabled() && m > HIGHLIGHT_THRESHOLD {
            let g = self.gain(m);
            c.map(|v| v * g)
        } else {
            c
        }
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
    let k = working_factor(params.radius, image.width, image.height);
    render_linear_with_factor(image, foreground, alpha, params, k)
}

/// [`render_linear`] with an explicit working factor `k` (tests compare every `k` against the
/// full-resolution reference).
#[doc(hidden)]
pub fn render_linear_with_factor(
    image: &RgbPlanes,
    foreground: &RgbPlanes,
    alpha: &Plane,
    params: &RenderParams,
    k: usize,
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
    let k = k.clamp(1, w.max(h));
    let hl = Highlights::new(params.highlights);
    let plate = build_plate(image, foreground, alpha, k, &hl);
    let mut bokeh = blur(&plate, radius / k as f32, &params.aperture);
    if hl.enabled() {
        tone_map(&mut bokeh, &hl);
    }
    composite_upsampled(foreground, alpha, &bokeh, k)
}

/// Renders with a per-pixel signed circle-of-confusion map `coc` (full-resolution pixels, negative
/// behind the focal plane, positive in front), depth-ordered (layered scatter; see `composite/layered.rs`). `params.radius` is
/// not used (the map holds the radii). The aperture's shape and profile apply; its cat's eye does
/// not (one kernel per radius here, not per frame position).
///
/// # Panics
/// If the inputs differ in size (a programming error; the pipeline checks user input).
pub fn render_linear_depth(
    image: &RgbPlanes,
    foreground: &RgbPlanes,
    alpha: &Plane,
    coc: &Plane,
    params: &RenderParams,
) -> RgbPlanes {
    let (w, h) = (image.width, image.height);
    assert!(
        foreground.width == w
            && foreground.height == h
            && alpha.width == w
            && alpha.height == h
            && coc.width == w
            && coc.height == h,
        "render_linear_depth: input sizes differ"
    );
    layered::render_layered(image, foreground, alpha, coc, params.highlights, &|r| {
        params
            .aperture
            .kernel(r)
            .spans
            .iter()
            .map(|s| (s.dy, s.lo as f32, s.hi as f32, s.weight as f32))
            .collect()
    })
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
                    *o = f + (1.0 - snap_alpha(a)) * (b - f);
                }
            });
    }
    out
}

/// Plate weight of a matte value: 1 for background (α ≤ 0), falling as `(1 − α/0.5)²` to 0 from
/// `PLATE_ALPHA_CUT` up; 0 for NaN (no trusted background there).
#[inline]
fn plate_weight(a: f32) -> f32 {
    let x = (1.0 - a / PLATE_ALPHA_CUT).clamp(0.0, 1.0);
    if x.is_nan() {
        0.0
    } else {
        x * x
    }
}

/// The background colour behind pixel `px` with matte `a`: the compositing equation solved for B,
/// `(I − α·F)/(1 − α)`, clamped at 0; `I` itself where α ≤ 0. Only asked where α < 0.5 (the plate
/// weight is 0 above), so the division is safe.
#[inline]
fn background_colour(image: &RgbPlanes, fg: &RgbPlanes, a: f32, px: usize) -> [f32; 3] {
    let i = [image.c[0][px], image.c[1][px], image.c[2][px]];
    if a <= 0.0 {
        return i;
    }
    let inv = 1.0 / (1.0 - a);
    [0, 1, 2].map(|c| ((i[c] - a * fg.c[c][px]) * inv).max(0.0))
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
                    let ar = &alpha.data[y * w..(y + 1) * w];
                    for i in 0..ww {
                        let xs = i * k..((i + 1) * k).min(w);
                        let (mut r, mut g, mut b, mut wt) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
                        for x in xs {
                            let a = ar[x];
                            let wx = plate_weight(a);
                            if wx <= 0.0 {
                                continue;
                            }
                            let [br, bg, bb] = hl.boost(background_colour(image, fg, a, y * w + x));
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
    if k >= 2 {
        // At full resolution a 1 px margin is meaningless; at k ≥ 2 it is k pixels.
        erode_weight(&mut level);
    }
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
/// the subject are refilled from further out, a margin for slightly tight mattes. Separable.
fn erode_weight(l: &mut Level) {
    let (w, h) = (l.w, l.h);
    let src = &l.wt;
    let mut rows = vec![0.0f32; w * h];
    rows.par_chunks_mut(w)
        .zip(src.par_chunks(w))
        .for_each(|(o, s)| {
            for (x, o) in o.iter_mut().enumerate() {
                let lo = x.saturating_sub(1);
                let hi = (x + 2).min(w);
                *o = s[lo..hi].iter().fold(f32::INFINITY, |m, &v| m.min(v));
            }
        });
    let mut ero = vec![0.0f32; w * h];
    ero.par_chunks_mut(w).enumerate().for_each(|(y, o)| {
        let r0 = &rows[y.saturating_sub(1) * w..][..w];
        let r1 = &rows[y * w..][..w];
        let r2 = &rows[(y + 1).min(h - 1) * w..][..w];
        for (((o, &a), &b), &c) in o.iter_mut().zip(r0).zip(r1).zip(r2) {
            *o = a.min(b).min(c);
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
                    let i = base + x;
                    if l.wt[i] >= 1.0 {
                        *o = own[i]; // fully known: premultiplied = colour
                        continue;
                    }
                    let (x0, x1, fx) = tx[x];
                    let top = r0[x0] + fx * (r0[x1] - r0[x0]);
                    let bot = r1[x0] + fx * (r1[x1] - r1[x0]);
                    let up = top + fy * (bot - top);
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
    if u.is_nan() || u <= 0.0 {
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

/// Bilinear taps from the `k_dst` block grid onto the `k_src` block grid of an axis of `n` pixels
/// (`k_dst = 1`: every full-resolution position). Block `i` covers `[i·k, min((i+1)·k, n))`, so the
/// last block may be narrower and its centre is off the uniform grid; outside the first and last
/// centres the value is held.
fn grid_taps(n: usize, k_src: usize, k_dst: usize) -> Vec<(usize, usize, f32)> {
    let ns = n.div_ceil(k_src);
    let centre = |i: usize, k: usize| 0.5 * ((i * k) as f32 + ((i + 1) * k).min(n) as f32) - 0.5;
    let last = ns - 1;
    (0..n.div_ceil(k_dst))
        .map(|i| {
            let x = centre(i, k_dst);
            if x <= centre(0, k_src) {
                return (0, 0, 0.0);
            }
            // Blocks are uniform except the last: start from the uniform guess and correct.
            let mut j = (((x + 0.5) / k_src as f32 - 0.5).floor().max(0.0) as usize).min(last);
            while j > 0 && centre(j, k_src) > x {
                j -= 1;
            }
            while j < last && centre(j + 1, k_src) <= x {
                j += 1;
            }
            if j >= last {
                (last, last, 0.0)
            } else {
                let (c0, c1) = (centre(j, k_src), centre(j + 1, k_src));
                (j, j + 1, (x - c0) / (c1 - c0))
            }
        })
        .collect()
}

/// Bilinearly upsamples the working-resolution bokeh by `k` and composites `α′·F + (1−α′)·bokeh`,
/// in one pass over the full-resolution image.
fn composite_upsampled(fg: &RgbPlanes, alpha: &Plane, bokeh: &RgbPlanes, k: usize) -> RgbPlanes {
    let (w, h) = (fg.width, fg.height);
    let bw = bokeh.width;
    let tx = grid_taps(w, k, 1);
    let ty = grid_taps(h, k, 1);
    let mut out = RgbPlanes::new(w, h, 0.0);
    let [or, og, ob] = &mut out.c;
    or.par_chunks_mut(w)
        .zip(og.par_chunks_mut(w))
        .zip(ob.par_chunks_mut(w))
        .enumerate()
        .for_each_init(
            || (vec![0.0f32; 3 * bw], vec![0.0f32; 3 * w]),
            |bufs, (y, ((or, og), ob))| {
                let tmp = &mut bufs.0;
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
                let up = &mut bufs.1;
                // Horizontal interpolation to full width.
                for ch in 0..3 {
                    let t = &tmp[ch * bw..(ch + 1) * bw];
                    for (u, &(x0, x1, fx)) in up[ch * w..(ch + 1) * w].iter_mut().zip(&tx) {
                        *u = t[x0] + fx * (t[x1] - t[x0]);
                    }
                }
                let row = y * w..(y + 1) * w;
                let ar = &alpha.data[row.clone()];
                for (ch, out) in [or, og, ob].into_iter().enumerate() {
                    let f = &fg.c[ch][row.clone()];
                    let u = &up[ch * w..(ch + 1) * w];
                    // `f + (1 − α′)(bokeh − f)` is exactly `f` where α′ = 1.
                    for (((o, &f), &u), &a) in out.iter_mut().zip(f).zip(u).zip(ar) {
                        *o = f + (1.0 - snap_alpha(a)) * (u - f);
                    }
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
