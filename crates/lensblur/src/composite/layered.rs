//! Depth-ordered, variable-radius bokeh.
//!
//! Algorithm: **layered scatter with occlusion-aware layer extension**, after Kraus & Strengert 2007
//! ("Depth-of-Field Rendering by Pyramidal Image Processing", Eurographics: sub-images by depth,
//! disoccluded pixels filled by pyramid interpolation, composited back to front) and the depth-ordered
//! disc scatter of Wadhwa et al. 2018 ("Synthetic Depth-of-Field with a Single-Camera Mobile Phone").
//!
//! 1. Every background pixel has a signed circle-of-confusion radius `c` (negative = behind the focal
//!    plane). Pixels are sorted into **slices** by `|c|` in octaves (`[0.5, 1)`, `[1, 2)`, `[2, 4)`, …)
//!    on each side of the focal plane, plus an in-focus slice `|c| < 0.5`. Depth order between slices
//!    is respected; within a slice (a factor of two in radius) contributions simply add.
//! 2. A slice is **extended behind what occludes it**: at a pixel covered by nearer content (the
//!    subject, nearer slices) the slice's colour, coverage and radius are extrapolated by pull-push
//!    from its own pixels, with coverage extrapolated against the pixels known *not* to hold it
//!    (farther content seen there). So the farthest slice covers the whole frame, a nearer slice fades
//!    out behind an occluder the way it fades out around it, and a blurred occluder reveals plausible
//!    content at its soft edge — no dark or bright fringes at slice borders, no subject colour in the
//!    background (the subject is never a source for background slices).
//! 3. Each slice is **scattered** with its own per-pixel radius, at a working resolution chosen for
//!    the slice's radius range, by row spans: a kernel row adds the value at its left end and subtracts
//!    it past the right end of a difference buffer (with fractional ends for an anti-aliased rim), and a
//!    prefix sum along each row turns those into the kernel's coverage — O(r) per source pixel, not
//!    O(r²). Premultiplied colour and coverage are scattered together.
//! 4. Slices are composited **back to front** with premultiplied `over`: far slices, the in-focus slice,
//!    the subject (`α′·F` over the background, exactly as the uniform path), then near slices, which blur
//!    over the subject (partial occlusion). Coverage lost past the frame border is renormalised.

use rayon::prelude::*;

use super::{
    background_colour, grid_taps, plate_weight, snap_alpha, working_factor, Highlights,
    HIGHLIGHT_THRESHOLD,
};
use crate::buffer::{Plane, RgbPlanes};
use crate::matte::refine::{box_mean, pull_push_where, sample2, Axis};

/// Radius below which ordering between depths is invisible: one slice covers `[0.5, SMALL)`.
const SMALL: f32 = 4.0;

/// Slice index: 0 = in focus (`|c| < 0.5`); ±1 for `|c| ∈ [0.5, 4)`; ±j for octaves
/// `[4·2^(j−2), 4·2^(j−1))` above that; negative on the far side.
#[inline]
fn slice_of(c: f32) -> i8 {
    let a = c.abs();
    if a.is_nan() || a < 0.5 {
        return 0;
    }
    let j = if a < SMALL {
        1
    } else {
        ((a / SMALL).log2().floor() as i32 + 2).clamp(2, 100) as i8
    };
    if c < 0.0 {
        -j
    } else {
        j
    }
}

/// Radius range `[lo, hi)` of slice `s ≠ 0`.
fn slice_range(s: i8) -> (f32, f32) {
    match s.unsigned_abs() as i32 {
        0 | 1 => (0.5, SMALL),
        j => (SMALL * 2f32.powi(j - 2), SMALL * 2f32.powi(j - 1)),
    }
}

/// A scatter kernel for one radius: weighted row spans `[lo, hi]` (pixel centres at integers),
/// weights normalised so the kernel integrates to 1, held as difference-buffer edges sorted by `dy`.
struct Kernel {
    reach: i32,
    /// Index of the first span of row `dy` is `first[dy + reach]`; `first[2·reach + 1]` = len.
    first: Vec<usize>,
    /// The spans as difference-buffer edges, relative to the source pixel.
    edges: Vec<Edge>,
}

/// A span's two ends on the difference buffer, precomputed per kernel so the scatter loop does no
/// rounding: pixel `i` covers `[i − ½, i + ½]`, so an end at `pos` falls in pixel `⌊pos + ½⌋`, which
/// gets the covered fraction `1 − f` of the weight and the next pixel `f`. Source pixels sit at
/// integers, so the split is the same for every source pixel.
struct Edge {
    dy: i32,
    lo: i32,
    lo_w: [f32; 2],
    hi: i32,
    /// Negative: the span ends here.
    hi_w: [f32; 2],
}

impl Edge {
    fn new(dy: i32, lo: f32, hi: f32, wt: f32) -> Self {
        let split = |pos: f32, wt: f32| {
            let u = pos as f64 + 0.5;
            let i = u.floor();
            let f = (u - i) as f32;
            (i as i32, [(1.0 - f) * wt, f * wt])
        };
        let (lo, lo_w) = split(lo, wt);
        let (hi, hi_w) = split(hi, -wt);
        Edge {
            dy,
            lo,
            lo_w,
            hi,
            hi_w,
        }
    }
}

impl Kernel {
    fn new(radius: f32, shape: &dyn Fn(f32) -> Vec<(i32, f32, f32, f32)>) -> Self {
        let mut spans = shape(radius);
        spans.sort_by_key(|s| s.0);
        let total: f64 = spans
            .iter()
            .map(|s| ((s.2 - s.1) as f64 * s.3 as f64).max(0.0))
            .sum();
        let inv = if total > 0.0 {
            (1.0 / total) as f32
        } else {
            1.0
        };
        for s in &mut spans {
            s.3 *= inv;
        }
        let reach = spans.iter().map(|s| s.0.abs()).max().unwrap_or(0);
        let mut first = vec![0usize; (2 * reach + 2) as usize];
        let mut i = 0;
        for (row, f) in first.iter_mut().enumerate() {
            let dy = row as i32 - reach;
            while i < spans.len() && spans[i].0 < dy {
                i += 1;
            }
            *f = i;
        }
        let edges = spans
            .iter()
            .map(|&(dy, lo, hi, wt)| Edge::new(dy, lo, hi, wt))
            .collect();
        Kernel {
            reach,
            first,
            edges,
        }
    }
}

/// The disc's spans (anti-aliased by exact area, see [`crate::bokeh::DiscKernel`]).
#[cfg(test)]
fn disc_spans(radius: f32) -> Vec<(i32, f32, f32, f32)> {
    crate::bokeh::DiscKernel::new(radius)
        .spans
        .iter()
        .map(|s| (s.dy as i32, -s.half as f32, s.half as f32, s.weight as f32))
        .collect()
}

/// Radius quantisation of the kernel cache, in working pixels.
const RADIUS_STEP: f32 = 1.0 / 8.0;

/// Adds `v` (4 channels) to the difference row at an edge: pixel `i0` gets `g[0]·v`, the next
/// `g[1]·v` (the weights are the kernel weight split by the covered fraction, see [`Edge`]). An
/// edge left of the row lands on pixel 0; one past its end is dropped.
#[inline]
fn add_edge(d: &mut [f32], w: usize, i0: i64, g: [f32; 2], v: &[f32; 4]) {
    if i0 >= 0 && i0 < w as i64 {
        let a = i0 as usize * 4;
        let (da, db) = d[a..a + 8].split_at_mut(4);
        for c in 0..4 {
            da[c] += g[0] * v[c];
            db[c] += g[1] * v[c];
        }
    } else if i0 < 0 {
        for c in 0..4 {
            d[c] += (g[0] + g[1]) * v[c];
        }
    }
}

/// Reused full-size buffers: slices are rendered one after another, and handing big buffers back to
/// the OS between them (then faulting fresh zeroed pages in) cost about a third of the render.
/// Slices go from coarse grids to fine ones, so a buffer sized for the last slice would be too small
/// for the next: every buffer is allocated once with the largest size any slice asks for.
#[derive(Default)]
struct Pool {
    free: Vec<Vec<f32>>,
    sums: Vec<[f32; 6]>,
    /// Capacity of new buffers, in samples.
    cap: usize,
}

impl Pool {
    /// A zeroed buffer of `n` samples.
    fn get(&mut self, n: usize) -> Vec<f32> {
        let mut v = self
            .free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.cap.max(n)));
        v.clear();
        v.resize(n, 0.0);
        v
    }

    fn put(&mut self, v: Vec<f32>) {
        self.free.push(v);
    }
}

/// Grid factor of slice `s ≠ 0` on a `w × h` image: the grid for the slice's middle radius (the
/// working radius stays ≥ 2 px at its low end). The smallest slice (0.5–4 px) takes its grid from
/// its upper radius: on large images it then runs at half resolution, where a 0.5 px disc renders
/// like a 1 px one — invisible at 12 MP, and the full-resolution passes of this slice were a third
/// of the render (its edge next to in-focus rows needs care, see the final pass).
fn slice_k(s: i8, w: usize, h: usize) -> usize {
    let (rlo, rhi) = slice_range(s);
    if s.unsigned_abs() == 1 {
        working_factor(rhi, w, h)
    } else {
        working_factor((rlo * rhi).sqrt(), w, h).min(((rlo / 2.0) as usize).max(1))
    }
}

/// Scatters premultiplied `(p[0..3], a)` with per-pixel radius `rad` (working px) over a `w × h`
/// grid. Returns `[r, g, b, a]` planes.
#[allow(clippy::too_many_arguments)]
fn scatter(
    p: &[Vec<f32>; 3],
    a: &[f32],
    rad: &[f32],
    w: usize,
    h: usize,
    range: (f32, f32),
    shape: &(dyn Fn(f32) -> Vec<(i32, f32, f32, f32)> + Sync),
    pool: &mut Pool,
) -> [Vec<f32>; 4] {
    let q0 = (range.0 / RADIUS_STEP).floor() as usize;
    let q1 = (range.1 / RADIUS_STEP).ceil() as usize;
    let kernels: Vec<Kernel> = (q0..=q1)
        .into_par_iter()
        .map(|q| Kernel::new(q as f32 * RADIUS_STEP, shape))
        .collect();
    let reach = kernels.iter().map(|k| k.reach).max().unwrap_or(0) as usize;
    let threads = rayon::current_num_threads().max(1);
    let band = h.div_ceil(4 * threads).max(8);
    let stride = (w + 1) * 4;
    let mut out = [
        pool.get(w * h),
        pool.get(w * h),
        pool.get(w * h),
        pool.get(w * h),
    ];
    let mut diff_all = pool.get(h * stride);
    let [o0, o1, o2, o3] = &mut out;
    o0.par_chunks_mut(band * w)
        .zip(o1.par_chunks_mut(band * w))
        .zip(o2.par_chunks_mut(band * w))
        .zip(o3.par_chunks_mut(band * w))
        .zip(diff_all.par_chunks_mut(band * stride))
        .enumerate()
        .for_each(|(bi, ((((o0, o1), o2), o3), diff))| {
            let b0 = bi * band;
            let b1 = (b0 + band).min(h);
            let s0 = b0.saturating_sub(reach);
            let s1 = (b1 + reach).min(h);
            for y in s0..s1 {
                for x in 0..w {
                    let i = y * w + x;
                    let cov = a[i];
                    if cov <= 1e-7 {
                        continue;
                    }
                    let q = ((rad[i] / RADIUS_STEP + 0.5) as usize).clamp(q0, q1);
                    let k = &kernels[q - q0];
                    let v = [p[0][i], p[1][i], p[2][i], cov];
                    // Rows of this band the kernel reaches.
                    let dy0 = (b0 as i64 - y as i64).max(-(k.reach as i64)) as i32;
                    let dy1 = ((b1 as i64 - 1 - y as i64).min(k.reach as i64)) as i32;
                    if dy0 > dy1 {
                        continue;
                    }
                    let (sa, sb) = (
                        k.first[(dy0 + k.reach) as usize],
                        k.first[(dy1 + k.reach + 1) as usize],
                    );
                    let xi = x as i64;
                    for e in &k.edges[sa..sb] {
                        let row = (y as i64 + e.dy as i64) as usize - b0;
                        let d = &mut diff[row * stride..(row + 1) * stride];
                        add_edge(d, w, xi + e.lo as i64, e.lo_w, &v);
                        add_edge(d, w, xi + e.hi as i64, e.hi_w, &v);
                    }
                }
            }
            // Prefix sums along each row turn edges into coverage.
            for row in 0..b1 - b0 {
                let d = &diff[row * stride..(row + 1) * stride];
                let mut acc = [0.0f64; 4];
                for x in 0..w {
                    for c in 0..4 {
                        acc[c] += d[x * 4 + c] as f64;
                    }
                    let o = row * w + x;
                    if acc[3].abs() < 1e-6 {
                        // Cancelled edges leave rounding residue, not coverage.
                        continue;
                    }
                    o0[o] = acc[0] as f32;
                    o1[o] = acc[1] as f32;
                    o2[o] = acc[2] as f32;
                    o3[o] = acc[3] as f32;
                }
            }
        });
    pool.put(diff_all);
    out
}

/// One rendered slice at its working resolution: premultiplied colour and coverage.
struct Layer {
    k: usize,
    w: usize,
    /// First row of the `k` grid the layer holds (layers may cover a band of rows only).
    y0: usize,
    /// Rows held.
    h: usize,
    c: [Vec<f32>; 4],
}

/// Builds, extends and scatters slice `s` (see the module docs, steps 2–3).
#[allow(clippy::too_many_arguments)]
fn render_slice(
    s: i8,
    image: &RgbPlanes,
    fg: &RgbPlanes,
    alpha: &Plane,
    coc: &Plane,
    map: &[i8],
    hl: &Highlights,
    reach: Option<f32>,
    member_rows: (usize, usize),
    shape: &(dyn Fn(f32) -> Vec<(i32, f32, f32, f32)> + Sync),
    pool: &mut Pool,
) -> Option<Layer> {
    let (w, h) = (image.width, image.height);
    let (rlo, rhi) = slice_range(s);
    let k = slice_k(s, w, h);
    // Only the rows the slice can reach: its own rows, the extension's reach and its blur.
    let (j0, j1) = match reach {
        None => (0, h.div_ceil(k)),
        Some(r) => {
            let margin = (r + rhi).ceil() as usize + 2 * k;
            (
                member_rows.0.saturating_sub(margin) / k,
                (member_rows.1 + margin + 1).min(h).div_ceil(k),
            )
        }
    };
    let (ww, wh) = (w.div_ceil(k), j1 - j0);
    let boost = hl.enabled();
    let ta = std::time::Instant::now();
    // Block sums: member weight M, known-absent weight N, M·B (3), M·|c|.
    let mut sums = std::mem::take(&mut pool.sums);
    sums.clear();
    sums.reserve(pool.cap / 4);
    sums.resize(ww * wh, [0.0; 6]);
    sums.par_chunks_mut(ww).enumerate().for_each(|(j, out)| {
        let y0 = (j0 + j) * k;
        let y1 = (y0 + k).min(h);
        for y in y0..y1 {
            let row = y * w;
            for (i, o) in out.iter_mut().enumerate() {
                for x in i * k..((i + 1) * k).min(w) {
                    let px = row + x;
                    let a = alpha.data[px];
                    let sx = map[px];
                    if a == 0.0 && sx != s {
                        // Plain background of another slice (most pixels): weight 1, no subject.
                        if sx < s {
                            o[1] += 1.0;
                        }
                        continue;
                    }
                    let wb = plate_weight(a);
                    // The subject (weight 1 − wb) sits at the focal plane: behind near slices.
                    if s > 0 {
                        o[1] += 1.0 - wb;
                    }
                    if wb <= 0.0 {
                        continue;
                    }
                    if sx == s {
                        let [br, bg, bb] = hl.boost(background_colour(image, fg, a, px));
                        o[0] += wb;
                        o[2] += wb * br;
                        o[3] += wb * bg;
                        o[4] += wb * bb;
                        o[5] += wb * coc.data[px].abs();
                    } else if sx < s {
                        o[1] += wb; // farther content is seen here: the slice is absent
                    }
                }
            }
        }
        let bh = (y1 - y0) as f32;
        for (i, o) in out.iter_mut().enumerate() {
            let bw = (((i + 1) * k).min(w) - i * k) as f32;
            let inv = 1.0 / (bw * bh);
            for v in o.iter_mut() {
                *v *= inv;
            }
        }
    });
    if !sums.iter().any(|o| o[0] > 0.0) {
        pool.sums = sums;
        return None;
    }
    let t0 = std::time::Instant::now();
    let n = ww * wh;
    // The extension is smooth: extrapolate on a grid of at least 4 px, sample it bilinearly.
    let f = 4usize.div_ceil(k).max(1);
    let (cw, chh) = (ww.div_ceil(f), wh.div_ceil(f));
    // Coarse block means of the six sums, straight from the fine grid (one coarse row per task).
    let coarse_rows: Vec<Vec<[f32; 6]>> = (0..chh)
        .into_par_iter()
        .map(|cy| {
            let mut row = vec![[0.0f32; 6]; cw];
            let fy0 = cy * f;
            let fy1 = (fy0 + f).min(wh);
            for fy in fy0..fy1 {
                for (fx, o) in sums[fy * ww..(fy + 1) * ww].iter().enumerate() {
                    let r = &mut row[fx / f];
                    for c in 0..6 {
                        r[c] += o[c];
                    }
                }
            }
            let ny = (fy1 - fy0) as f32;
            for (cx, r) in row.iter_mut().enumerate() {
                let nx = (((cx + 1) * f).min(ww) - cx * f) as f32;
                let inv = 1.0 / (nx * ny);
                for v in r.iter_mut() {
                    *v *= inv;
                }
            }
            row
        })
        .collect();
    let coarse: Vec<Vec<f32>> = (0..6)
        .map(|c| coarse_rows.iter().flatten().map(|r| r[c]).collect())
        .collect();
    let m: Vec<f32> = coarse[0].iter().map(|v| v.min(1.0)).collect();
    let known: Vec<f32> = coarse[0]
        .iter()
        .zip(&coarse[1])
        .map(|(a, b)| (a + b).min(1.0))
        .collect();
    let own = |c: usize| -> Vec<f32> {
        coarse[c]
            .iter()
            .zip(&coarse[0])
            .map(|(v, m)| if *m > 0.0 { v / m } else { 0.0 })
            .collect()
    };
    let (cr, cg, cb, cr_rad) = (own(2), own(3), own(4), own(5));
    let frac: Vec<f32> = coarse[0]
        .iter()
        .zip(&coarse[1])
        .map(|(a, b)| if a + b > 0.0 { a / (a + b) } else { 0.0 })
        .collect();
    // Only extend where it can show: within `reach` of the slice's own pixels (its own blur, or a
    // blurred occluder's soft edge, reveals no further); everywhere for the farthest slice.
    let need: Option<Vec<bool>> = reach.map(|r| {
        let rk = (r / (k * f) as f32).ceil() as usize + 1;
        box_mean(&m, cw, chh, rk).iter().map(|&v| v > 0.0).collect()
    });
    let need = need.as_deref();
    let (col, cov) = rayon::join(
        || pull_push_where(&[&cr, &cg, &cb, &cr_rad], &m, cw, chh, need),
        || pull_push_where(&[&frac], &known, cw, chh, need),
    );
    // Extended slice: own content plus the unknown (occluded) part times the extrapolated coverage.
    let mut pre = [pool.get(n), pool.get(n), pool.get(n)];
    let mut a = pool.get(n);
    let mut rad = pool.get(n);
    let kf = k as f32;
    let xs = Axis::table(ww, f, cw);
    let ys = Axis::table(wh, f, chh);
    {
        let [p0, p1, p2] = &mut pre;
        p0.par_chunks_mut(ww)
            .zip(p1.par_chunks_mut(ww))
            .zip(p2.par_chunks_mut(ww))
            .zip(a.par_chunks_mut(ww))
            .zip(rad.par_chunks_mut(ww))
            .enumerate()
            .for_each(|(y, ((((p0, p1), p2), a), rad))| {
                let ay = &ys[y];
                let (r0, r1) = (ay.i0 * cw..(ay.i0 + 1) * cw, ay.i1 * cw..(ay.i1 + 1) * cw);
                for x in 0..ww {
                    let ax = &xs[x];
                    if need.is_some_and(|nd| !nd[ay.nearest() * cw + ax.nearest()]) {
                        continue;
                    }
                    let o = &sums[y * ww + x];
                    let at = |c: &[f32]| sample2(&c[r0.clone()], &c[r1.clone()], ax, ay);
                    let unknown = (1.0 - o[0] - o[1]).max(0.0);
                    let ext = if unknown > 0.0 {
                        unknown * at(&cov[0]).clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                    if ext > 0.0 {
                        p0[x] = o[2] + ext * at(&col[0]);
                        p1[x] = o[3] + ext * at(&col[1]);
                        p2[x] = o[4] + ext * at(&col[2]);
                    } else {
                        p0[x] = o[2];
                        p1[x] = o[3];
                        p2[x] = o[4];
                    }
                    a[x] = o[0] + ext;
                    let r = if o[0] > 0.0 { o[5] / o[0] } else { at(&col[3]) };
                    rad[x] = r.clamp(rlo, rhi) / kf;
                }
            });
    }
    let t1 = std::time::Instant::now();
    let mut c = scatter(&pre, &a, &rad, ww, wh, (rlo / kf, rhi / kf), shape, pool);
    pool.sums = sums;
    let active = a.iter().filter(|&&v| v > 1e-7).count() as f64 / n as f64;
    for v in pre.into_iter().chain([a, rad]) {
        pool.put(v);
    }
    tracing::debug!(
        slice = s,
        k,
        active,
        sums_ms = (t0 - ta).as_secs_f64() * 1e3,
        fill_ms = (t1 - t0).as_secs_f64() * 1e3,
        scatter_ms = t1.elapsed().as_secs_f64() * 1e3,
        "depth slice"
    );
    if boost {
        let [r, g, b, cov] = &mut c;
        for i in 0..n {
            if cov[i] <= 0.0 {
                continue;
            }
            let inv = 1.0 / cov[i];
            let mx = r[i].max(g[i]).max(b[i]) * inv;
            if mx > HIGHLIGHT_THRESHOLD {
                let sc = hl.tone(mx) / mx;
                r[i] *= sc;
                g[i] *= sc;
                b[i] *= sc;
            }
        }
    }
    Some(Layer {
        k,
        w: ww,
        y0: j0,
        h: wh,
        c,
    })
}

/// `acc ← layer over acc`, both premultiplied, `acc` on the `k_acc` grid: colour planes, plus
/// coverage when `acc` has a fourth plane (an opaque accumulator may omit it).
fn over(acc: &mut [Vec<f32>], k_acc: usize, layer: &Layer, w: usize, h: usize) {
    let aw = w.div_ceil(k_acc);
    let tx = grid_taps(w, layer.k, k_acc);
    let ty = grid_taps(h, layer.k, k_acc);
    let lw = layer.w;
    let (colour, coverage) = acc.split_at_mut(3.min(acc.len()));
    let [a0, a1, a2] = colour else {
        return;
    };
    let a3_iter = match coverage.first_mut() {
        Some(c) => rayon::iter::Either::Left(c.par_chunks_mut(aw).map(Some)),
        None => rayon::iter::Either::Right(
            (0..h.div_ceil(k_acc))
                .into_par_iter()
                .map(|_| None::<&mut [f32]>),
        ),
    };
    a0.par_chunks_mut(aw)
        .zip(a1.par_chunks_mut(aw))
        .zip(a2.par_chunks_mut(aw))
        .zip(a3_iter)
        .enumerate()
        .for_each_init(Vec::new, |tmp, (y, (((a0, a1), a2), mut a3))| {
            let (y0, y1, fy) = ty[y];
            // Rows outside the layer's band hold nothing (premultiplied zeros).
            let local = |r: usize| r.checked_sub(layer.y0).filter(|&r| r < layer.h);
            let (l0, l1) = (local(y0), local(y1));
            if l0.is_none() && l1.is_none() {
                return;
            }
            if layer.k == k_acc {
                // Same grid: no interpolation.
                let Some(l) = l0 else { return };
                let r = l * lw..(l + 1) * lw;
                let (c0, c1, c2, c3) = (
                    &layer.c[0][r.clone()],
                    &layer.c[1][r.clone()],
                    &layer.c[2][r.clone()],
                    &layer.c[3][r],
                );
                for x in 0..aw {
                    let la = c3[x];
                    if la <= 0.0 {
                        continue;
                    }
                    // Scattered radii that vary from pixel to pixel overlap to more than full
                    // coverage: that is full coverage by the slice's mean colour.
                    let (g, la) = if la > 1.0 { (1.0 / la, 1.0) } else { (1.0, la) };
                    let t = 1.0 - la;
                    a0[x] = g * c0[x] + t * a0[x];
                    a1[x] = g * c1[x] + t * a1[x];
                    a2[x] = g * c2[x] + t * a2[x];
                    if let Some(a3) = a3.as_deref_mut() {
                        a3[x] = la + t * a3[x];
                    }
                }
                return;
            }
            // Different grids: the layer's two rows blended vertically once (coverage first: a
            // row it does not reach is skipped), then each output pixel interpolates across.
            tmp.resize(4 * lw, 0.0);
            let (t012, t3) = tmp.split_at_mut(3 * lw);
            let vlerp = |c: &[f32], t: &mut [f32]| {
                let row = |l: Option<usize>| l.map(|l| &c[l * lw..(l + 1) * lw]);
                match (row(l0), row(l1)) {
                    (Some(r0), Some(r1)) => {
                        for ((t, &a), &b) in t.iter_mut().zip(r0).zip(r1) {
                            *t = a + fy * (b - a);
                        }
                    }
                    (Some(r0), None) => {
                        for (t, &a) in t.iter_mut().zip(r0) {
                            *t = a - fy * a;
                        }
                    }
                    (None, Some(r1)) => {
                        for (t, &b) in t.iter_mut().zip(r1) {
                            *t = fy * b;
                        }
                    }
                    (None, None) => t.fill(0.0),
                }
            };
            vlerp(&layer.c[3], t3);
            if !t3.iter().any(|&v| v > 0.0) {
                return;
            }
            for (ch, t) in t012.chunks_exact_mut(lw).enumerate() {
                vlerp(&layer.c[ch], t);
            }
            let (t0, rest) = t012.split_at(lw);
            let (t1, t2) = rest.split_at(lw);
            for x in 0..aw {
                let (x0, x1, fx) = tx[x];
                let la = t3[x0] + fx * (t3[x1] - t3[x0]);
                if la <= 0.0 {
                    continue;
                }
                let (g, la) = if la > 1.0 { (1.0 / la, 1.0) } else { (1.0, la) };
                let t = 1.0 - la;
                a0[x] = g * (t0[x0] + fx * (t0[x1] - t0[x0])) + t * a0[x];
                a1[x] = g * (t1[x0] + fx * (t1[x1] - t1[x0])) + t * a1[x];
                a2[x] = g * (t2[x0] + fx * (t2[x1] - t2[x0])) + t * a2[x];
                if let Some(a3) = a3.as_deref_mut() {
                    a3[x] = la + t * a3[x];
                }
            }
        });
}

/// Moves an accumulator from the `k_from` grid to the `k_to` grid (bilinear).
fn regrid(
    acc: [Vec<f32>; 4],
    k_from: usize,
    k_to: usize,
    w: usize,
    h: usize,
    pool: &mut Pool,
) -> [Vec<f32>; 4] {
    if k_from == k_to {
        return acc;
    }
    let n = w.div_ceil(k_to) * h.div_ceil(k_to);
    let mut out = [pool.get(n), pool.get(n), pool.get(n), pool.get(n)];
    let layer = Layer {
        k: k_from,
        w: w.div_ceil(k_from),
        y0: 0,
        h: h.div_ceil(k_from),
        c: acc,
    };
    // `over` onto an empty accumulator is a plain resample where the layer has coverage.
    over(&mut out, k_to, &layer, w, h);
    for v in layer.c {
        pool.put(v);
    }
    out
}

/// Renders with a per-pixel signed circle of confusion `coc` (full-resolution pixels; negative =
/// behind the focal plane, positive = in front). `shape` gives a kernel's row spans for a radius.
pub(crate) fn render_layered(
    image: &RgbPlanes,
    fg: &RgbPlanes,
    alpha: &Plane,
    coc: &Plane,
    highlights: f32,
    shape: &(dyn Fn(f32) -> Vec<(i32, f32, f32, f32)> + Sync),
) -> RgbPlanes {
    let (w, h) = (image.width, image.height);
    let hl = Highlights::new(highlights);
    let map: Vec<i8> = coc.data.par_iter().map(|&c| slice_of(c)).collect();
    // First and last row holding each slice.
    let member_rows: Vec<(usize, usize)> = map
        .par_chunks(w.max(1))
        .enumerate()
        .fold(
            || vec![(usize::MAX, 0usize); 256],
            |mut acc, (y, row)| {
                for &s in row {
                    let e = &mut acc[(s as i16 + 128) as usize];
                    e.0 = e.0.min(y);
                    e.1 = e.1.max(y);
                }
                acc
            },
        )
        .reduce(
            || vec![(usize::MAX, 0usize); 256],
            |a, b| {
                a.iter()
                    .zip(&b)
                    .map(|(a, b)| (a.0.min(b.0), a.1.max(b.1)))
                    .collect()
            },
        );
    let present: Vec<bool> = member_rows.iter().map(|r| r.0 != usize::MAX).collect();
    let slices: Vec<i8> = (-128i16..=127)
        .filter(|&s| s != 0 && present[(s + 128) as usize])
        .map(|s| s as i8)
        .collect();
    let near_max = slices
        .iter()
        .filter(|&&s| s > 0)
        .map(|&s| slice_range(s).1)
        .fold(0.0f32, f32::max);
    let farthest = slices.first().copied().filter(|&s| s < 0);
    // Largest buffer any slice asks for: the scatter's difference buffer of the finest grid.
    let cap = slices
        .iter()
        .map(|&s| {
            let k = slice_k(s, w, h);
            h.div_ceil(k) * (w.div_ceil(k) + 1) * 4
        })
        .max()
        .unwrap_or(0);
    let mut pool = Pool {
        cap,
        ..Default::default()
    };
    let render = |s: i8, pool: &mut Pool| {
        // How far behind nearer content this slice can show (see `render_slice`).
        let reach = if Some(s) == farthest {
            None
        } else if s < 0 {
            Some(2.0 * slice_range(s).1)
        } else {
            Some(slice_range(s).1 + near_max)
        };
        let rows = member_rows[(s as i16 + 128) as usize];
        render_slice(
            s, image, fg, alpha, coc, &map, &hl, reach, rows, shape, pool,
        )
    };
    // Far slices, farthest first, composited on the grid of the latest (finest so far) slice.
    let mut acc: Option<(usize, [Vec<f32>; 4])> = None;
    for &s in slices.iter().filter(|&&s| s < 0) {
        let Some(layer) = render(s, &mut pool) else {
            continue;
        };
        let (k_acc, mut a) = match acc.take() {
            None => {
                let n = w.div_ceil(layer.k) * h.div_ceil(layer.k);
                (
                    layer.k,
                    [pool.get(n), pool.get(n), pool.get(n), pool.get(n)],
                )
            }
            Some((k_acc, a)) if layer.k < k_acc => {
                (layer.k, regrid(a, k_acc, layer.k, w, h, &mut pool))
            }
            Some(x) => x,
        };
        over(&mut a, k_acc, &layer, w, h);
        for v in layer.c {
            pool.put(v);
        }
        acc = Some((k_acc, a));
    }
    let tb = std::time::Instant::now();
    // The far accumulator stays on its grid; each output row interpolates it on the fly.
    let (k_acc, bg) = match acc {
        Some(x) => x,
        None => (
            1,
            [
                vec![0.0f32; w * h],
                vec![0.0f32; w * h],
                vec![0.0f32; w * h],
                vec![0.0f32; w * h],
            ],
        ),
    };
    let aw = w.div_ceil(k_acc);
    // Grid factor of the ±1 slices.
    let k1 = slice_k(1, w, h);
    let k1f = k1 as f32;
    let tx = grid_taps(w, k_acc, 1);
    let ty = grid_taps(h, k_acc, 1);
    // In-focus background, renormalisation, subject.
    let mut out = RgbPlanes::new(w, h, 0.0);
    {
        let [or, og, ob] = &mut out.c;
        or.par_chunks_mut(w)
            .zip(og.par_chunks_mut(w))
            .zip(ob.par_chunks_mut(w))
            .enumerate()
            .for_each_init(
                || (vec![0.0f32; aw], vec![[0.0f32; 4]; w]),
                |(tmp, row), (y, ((or, og), ob))| {
                    let (y0, y1, fy) = ty[y];
                    for (ch, plane) in bg.iter().enumerate() {
                        let r0 = &plane[y0 * aw..(y0 + 1) * aw];
                        let r1 = &plane[y1 * aw..(y1 + 1) * aw];
                        for ((t, &a), &b) in tmp.iter_mut().zip(r0).zip(r1) {
                            *t = a + fy * (b - a);
                        }
                        for (px, &(x0, x1, fx)) in row.iter_mut().zip(&tx) {
                            px[ch] = tmp[x0] + fx * (tmp[x1] - tmp[x0]);
                        }
                    }
                    for x in 0..w {
                        let i = y * w + x;
                        let a = alpha.data[i];
                        let [c0, c1, c2, mut cov] = row[x];
                        let mut c = [c0, c1, c2];
                        // Sharp background: its own colour, weighted like the plate. Also under
                        // the smallest near radii when that slice runs on a coarser grid: there the
                        // near slice's upsampled coverage is partial at its edge next to in-focus
                        // rows (a grid block holds both), and what would show through is whatever
                        // the far slices extended behind it — a dark or bright line along the focal
                        // plane. At full resolution a disc that small covers its own pixel.
                        let own = match map[i] {
                            0 => 1.0,
                            1 if k1 > 1 => ((k1f - coc.data[i]) / (k1f - 0.5)).clamp(0.0, 1.0),
                            _ => 0.0,
                        };
                        if own > 0.0 {
                            let wb = own * plate_weight(a);
                            if wb > 0.0 {
                                let t = 1.0 - wb;
                                let b = background_colour(image, fg, a, i);
                                for (c, b) in c.iter_mut().zip(b) {
                                    *c = wb * b + t * *c;
                                }
                                cov = wb + t * cov;
                            }
                        }
                        let inv = if cov > 1e-6 { 1.0 / cov } else { 0.0 };
                        let sa = snap_alpha(a);
                        for (ch, o) in [&mut or[x], &mut og[x], &mut ob[x]].into_iter().enumerate()
                        {
                            let b = c[ch] * inv;
                            let f = fg.c[ch][i];
                            *o = f + (1.0 - sa) * (b - f);
                        }
                    }
                },
            );
    }
    drop(bg);
    tracing::debug!(
        ms = tb.elapsed().as_secs_f64() * 1e3,
        "depth: in-focus slice and subject"
    );
    // Near slices blur over everything behind them.
    for s in slices.iter().filter(|&&s| s > 0) {
        if let Some(layer) = render(*s, &mut pool) {
            over(&mut out.c, 1, &layer, w, h);
            for v in layer.c {
                pool.put(v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_octaves() {
        assert_eq!(slice_of(0.0), 0);
        assert_eq!(slice_of(0.49), 0);
        assert_eq!(slice_of(0.5), 1);
        assert_eq!(slice_of(-3.99), -1);
        assert_eq!(slice_of(4.0), 2);
        assert_eq!(slice_of(-15.9), -3);
        assert_eq!(slice_of(16.0), 4);
        assert_eq!(slice_of(f32::NAN), 0);
        for s in [1i8, 2, 5, -3] {
            let (lo, hi) = slice_range(s);
            assert_eq!(slice_of(lo * s.signum() as f32), s);
            assert_eq!(slice_of(hi * 0.999 * s.signum() as f32), s);
        }
    }

    #[test]
    fn scatter_of_a_point_is_the_kernel_and_conserves_energy() {
        let (w, h) = (41usize, 41usize);
        let mut p = [
            vec![0.0f32; w * h],
            vec![0.0f32; w * h],
            vec![0.0f32; w * h],
        ];
        let mut a = vec![0.0f32; w * h];
        p[0][20 * w + 20] = 2.0;
        a[20 * w + 20] = 1.0;
        let rad = vec![6.3f32; w * h];
        let out = scatter(
            &p,
            &a,
            &rad,
            w,
            h,
            (4.0, 8.0),
            &disc_spans,
            &mut Pool::default(),
        );
        let total: f32 = out[3].iter().sum();
        assert!((total - 1.0).abs() < 1e-4, "{total}");
        let k = crate::bokeh::DiscKernel::new(6.25);
        let area = k.total() as f32;
        for dy in -8i64..=8 {
            for dx in -8i64..=8 {
                let i = ((20 + dy) as usize) * w + (20 + dx) as usize;
                let want = k.weight(dx, dy) as f32 / area;
                assert!(
                    (out[3][i] - want).abs() < 1e-5,
                    "({dx},{dy}) {} vs {want}",
                    out[3][i]
                );
                assert!((out[0][i] - 2.0 * want).abs() < 2e-5);
            }
        }
    }
}
