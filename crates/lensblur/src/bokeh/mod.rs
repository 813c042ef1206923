//! Aperture-shaped bokeh in linear light.
//!
//! Algorithm: *row-span gather with row prefix sums* (the gather form of the span scatter in
//! DESIGN.md "Making it fast"; the polygon-as-spans decomposition of McIntosh, Riecke & DiPaola 2012,
//! "Efficiently simulating the bokeh of polygonal apertures in a post-process depth of field
//! shader"). A convex aperture is a stack of horizontal spans `[lo, hi]` (see [`aperture`] for how
//! they are cut and anti-aliased); with a prefix sum `P` of each image row, the sum over a span is
//! `P[right] − P[left]` (fractional ends read the piecewise-linear integral, which gives box coverage
//! for free), so one output pixel costs O(r) reads, not O(r²), and the inner loop runs over contiguous
//! slices and vectorises.
//!
//! Scatter semantics: a single bright pixel renders as the aperture's shape in its documented
//! orientation; the gather therefore uses the mirrored kernel `K(−d)` (it matters for odd blade
//! counts and rotated shapes).
//!
//! Borders: each output is normalised by the in-image kernel weight (computed analytically), so
//! borders are neither darkened nor filled with mirrored content.
//!
//! Cat's eye: the kernel depends on the frame position. Kernels are built on a grid of nodes spaced
//! so that neighbouring nodes' outlines differ by ≤ 1 px (less on small kernels), and each output pixel gathers with the
//! bilinear blend of its four nodes' kernels (numerators and weights blended, then divided). Box
//! coverage is linear in an edge's position within a pixel, so the blend is close to the exact
//! per-pixel kernel and the kernel varies continuously: no seams. It costs 4 gathers per pixel.

pub mod aperture;
pub mod disc;

use rayon::prelude::*;

pub use aperture::{Aperture, Kernel, Profile, Shape, Span, CATS_EYE_MAX};
pub use disc::{reference_disc_blur, DiscKernel};

use crate::buffer::RgbPlanes;

/// Blurs linear RGB planes with the aperture at blur radius `radius` pixels (area `π r²`; see
/// [`Aperture`]). Radii below 0.5 px are the identity.
pub fn blur(img: &RgbPlanes, radius: f32, aperture: &Aperture) -> RgbPlanes {
    let planes: Vec<&[f32]> = img.c.iter().map(Vec::as_slice).collect();
    let mut out = blur_planes(&planes, img.width, img.height, radius, aperture).into_iter();
    let mut next = || out.next().unwrap_or_default();
    RgbPlanes {
        width: img.width,
        height: img.height,
        c: [next(), next(), next()],
    }
}

/// Blurs linear planes with a disc of `radius` pixels (the default [`Aperture`]).
pub fn disc_blur(img: &RgbPlanes, radius: f32) -> RgbPlanes {
    blur(img, radius, &Aperture::default())
}

/// Blurs any number of `width × height` planes (e.g. premultiplied RGB and coverage) with the same
/// kernel; each output pixel is normalised by the kernel weight that falls inside the image.
///
/// # Panics
/// If a plane's length is not `width · height` (a programming error).
pub fn blur_planes(
    planes: &[&[f32]],
    width: usize,
    height: usize,
    radius: f32,
    aperture: &Aperture,
) -> Vec<Vec<f32>> {
    let (w, h) = (width, height);
    for p in planes {
        assert_eq!(
            p.len(),
            w * h,
            "blur_planes: plane size differs from width × height"
        );
    }
    let r = if radius.is_finite() { radius } else { 0.0 };
    if r < 0.5 || w == 0 || h == 0 || planes.is_empty() {
        return planes.iter().map(|p| p.to_vec()).collect();
    }
    let prefixes: Vec<Vec<f32>> = planes.iter().map(|p| row_prefix(p, w, h)).collect();
    let prepared: Vec<Prepared> = planes
        .iter()
        .zip(&prefixes)
        .map(|(&src, prefix)| Prepared { src, prefix })
        .collect();
    let np = planes.len();
    let mut outs = vec![vec![0.0f32; w * h]; np];
    if aperture.is_uniform() {
        // One plane at a time: the 2r + 1 prefix rows a row reads stay in cache.
        let gk = GatherKernel::new(&aperture.kernel(r).mirrored());
        for (out, plane) in outs.iter_mut().zip(prepared.chunks(1)) {
            out.par_chunks_mut(w).enumerate().for_each_init(
                || Scratch::new(1, w),
                |sc, (y, o)| {
                    gather_row(&gk, y, 0, w, w, h, plane, &mut sc.num, &mut sc.den);
                    normalise(o, &sc.num[0][..w], &sc.den[..w]);
                },
            );
        }
    } else {
        // Row `y` of every output plane, so rows can be filled in parallel; all planes per row
        // share the node blending.
        let mut rows: Vec<Vec<&mut [f32]>> = (0..h).map(|_| Vec::with_capacity(np)).collect();
        for o in outs.iter_mut() {
            for (row, chunk) in rows.iter_mut().zip(o.chunks_mut(w)) {
                row.push(chunk);
            }
        }
        let grid = NodeGrid::new(aperture, r, w, h);
        rows.into_par_iter().enumerate().for_each_init(
            || (Scratch::new(np, w), Scratch::new(np, w)),
            |(acc, sc), (y, mut out_rows)| {
                grid.gather_row(y, w, h, &prepared, acc, sc);
                for (o, num) in out_rows.iter_mut().zip(&acc.num) {
                    normalise(o, &num[..w], &acc.den[..w]);
                }
            },
        );
    }
    outs
}

/// `o = num / den` (0 where no kernel weight falls inside the image).
fn normalise(o: &mut [f32], num: &[f32], den: &[f64]) {
    for ((o, &n), &d) in o.iter_mut().zip(num).zip(den) {
        *o = if d > 1e-12 {
            (n as f64 / d) as f32
        } else {
            0.0
        };
    }
}

/// A source plane and its row prefix sums.
struct Prepared<'a> {
    src: &'a [f32],
    prefix: &'a [f32],
}

/// Per-thread row buffers: one numerator per plane and the shared kernel weight.
struct Scratch {
    num: Vec<Vec<f32>>,
    den: Vec<f64>,
}

impl Scratch {
    fn new(np: usize, w: usize) -> Self {
        Scratch {
            num: vec![vec![0.0; w]; np],
            den: vec![0.0; w],
        }
    }
}

/// A gather span with its read offsets precomputed: the span sum at `x` is
/// `S(x + hi_off) − S(x + lo_off)`, `S` the piecewise-linear row integral.
#[derive(Clone, Copy, Debug)]
struct GSpan {
    dy: i64,
    lo_off: f64,
    hi_off: f64,
    /// `floor(lo_off)`, `frac(lo_off)`, same for `hi_off`.
    m0: i64,
    g0: f32,
    m1: i64,
    g1: f32,
    /// Weight (f32 for the vector loop, f64 for the weight sums).
    wf: f32,
    wd: f64,
    len: f64,
}

/// A kernel in gather orientation, ready for [`gather_row`].
#[derive(Clone, Debug)]
struct GatherKernel {
    spans: Vec<GSpan>,
}

impl GatherKernel {
    fn new(k: &Kernel) -> Self {
        let spans = k
            .spans
            .iter()
            .filter(|s| s.hi > s.lo && s.weight != 0.0)
            .map(|s| {
                let lo_off = s.lo + 0.5;
                let hi_off = s.hi + 0.5;
                let m0 = lo_off.floor();
                let m1 = hi_off.floor();
                GSpan {
                    dy: s.dy as i64,
                    lo_off,
                    hi_off,
                    m0: m0 as i64,
                    g0: (lo_off - m0) as f32,
                    m1: m1 as i64,
                    g1: (hi_off - m1) as f32,
                    wf: s.weight as f32,
                    wd: s.weight,
                    len: s.hi - s.lo,
                }
            })
            .collect();
        GatherKernel { spans }
    }
}

/// `[lo, hi)`: the part of `[x0, x1)` where all four reads of the span are inside the row.
#[inline]
fn interior(s: &GSpan, w: usize, x0: usize, x1: usize) -> (usize, usize) {
    let lo = (-s.m0).max(0).clamp(x0 as i64, x1 as i64);
    let hi = (w as i64 - s.m1).clamp(lo, x1 as i64);
    (lo as usize, hi as usize)
}

/// Gathers output row `y`, pixels `[x0, x1)`: un-normalised sums into `num[plane][..x1 − x0]` and
/// the in-image kernel weight into `den[..x1 − x0]`.
#[allow(clippy::too_many_arguments)]
fn gather_row(
    k: &GatherKernel,
    y: usize,
    x0: usize,
    x1: usize,
    w: usize,
    h: usize,
    planes: &[Prepared],
    num: &mut [Vec<f32>],
    den: &mut [f64],
) {
    let n = x1 - x0;
    let den = &mut den[..n];
    den.fill(0.0);
    let mut row_weight = 0.0f64;
    for s in &k.spans {
        let yy = y as i64 + s.dy;
        if yy < 0 || yy >= h as i64 {
            continue;
        }
        row_weight += s.wd * s.len;
        let (ilo, ihi) = interior(s, w, x0, x1);
        // Near the left and right borders part of the span falls outside: record the deficit.
        for x in (x0..ilo).chain(ihi..x1) {
            let t1 = x as f64 + s.hi_off;
            let t0 = x as f64 + s.lo_off;
            let inside = (t1.min(w as f64) - t0.max(0.0)).max(0.0);
            den[x - x0] += s.wd * (inside - s.len);
        }
    }
    for d in den.iter_mut() {
        *d += row_weight;
    }
    for (p, num) in planes.iter().zip(num.iter_mut()) {
        let acc = &mut num[..n];
        acc.fill(0.0);
        for s in &k.spans {
            let yy = y as i64 + s.dy;
            if yy < 0 || yy >= h as i64 {
                continue;
            }
            let yy = yy as usize;
            let pr = &p.prefix[yy * (w + 1)..(yy + 1) * (w + 1)];
            let v = &p.src[yy * w..(yy + 1) * w];
            let (ilo, ihi) = interior(s, w, x0, x1);
            if ilo < ihi {
                let len = ihi - ilo;
                let i1 = (ilo as i64 + s.m1) as usize;
                let i0 = (ilo as i64 + s.m0) as usize;
                let (p1, v1) = (&pr[i1..i1 + len], &v[i1..i1 + len]);
                let (p0, v0) = (&pr[i0..i0 + len], &v[i0..i0 + len]);
                let (g0, g1, wf) = (s.g0, s.g1, s.wf);
                let a = &mut acc[ilo - x0..ihi - x0];
                for ((((a, &p1), &v1), &p0), &v0) in a.iter_mut().zip(p1).zip(v1).zip(p0).zip(v0) {
                    *a += wf * ((p1 - p0) + (g1 * v1 - g0 * v0));
                }
            }
            for x in (x0..ilo).chain(ihi..x1) {
                let t1 = x as f64 + s.hi_off;
                let t0 = x as f64 + s.lo_off;
                acc[x - x0] += (s.wd * (integral(pr, v, t1) - integral(pr, v, t0))) as f32;
            }
        }
    }
}

/// Kernels on a grid of nodes for a position-dependent (cat's eye) aperture.
struct NodeGrid {
    /// Node spacing in pixels.
    step: usize,
    /// Nodes per row (node `i` sits at `x = i·step`).
    nx: usize,
    kernels: Vec<GatherKernel>,
}

impl NodeGrid {
    /// Largest change of the clip discs' displacement between neighbouring nodes, as a fraction
    /// of the vertex radius, and its bounds in pixels: 1 px on large kernels (the blend of two rims
    /// 1 px apart is the rim in between, box coverage being linear in the edge position), less on
    /// small ones, where a pixel is a larger share of the kernel.
    const NODE_SHIFT: (f64, f64, f64) = (0.05, 0.25, 1.0);
    /// Cap on the number of node kernels (memory and build time on huge images).
    const MAX_NODES: usize = 16_384;

    fn new(ap: &Aperture, r: f32, w: usize, h: usize) -> Self {
        let half_diag = 0.5 * ((w * w + h * h) as f64).sqrt();
        let rc = ap.vertex_radius(r);
        let slope = CATS_EYE_MAX * ap.cats() * rc / half_diag.max(1.0);
        let (frac, min, max) = Self::NODE_SHIFT;
        let shift = (frac * rc).clamp(min, max);
        let mut step = ((shift / slope.max(1e-9)).floor() as usize).clamp(2, 4096);
        let count = |s: usize| ((w - 1).div_ceil(s) + 1) * ((h - 1).div_ceil(s) + 1);
        while count(step) > Self::MAX_NODES {
            step += 1;
        }
        let nx = (w - 1).div_ceil(step) + 1;
        let ny = (h - 1).div_ceil(step) + 1;
        let (cx, cy) = (0.5 * (w as f64 - 1.0), 0.5 * (h as f64 - 1.0));
        let kernels = (0..nx * ny)
            .into_par_iter()
            .map(|k| {
                let (i, j) = (k % nx, k / nx);
                let pos = [
                    ((i * step) as f64 - cx) / half_diag,
                    ((j * step) as f64 - cy) / half_diag,
                ];
                GatherKernel::new(&ap.kernel_at(r, pos).mirrored())
            })
            .collect();
        NodeGrid { step, nx, kernels }
    }

    /// Row `y` gathered with the bilinear blend of the node kernels, into `acc`.
    fn gather_row(
        &self,
        y: usize,
        w: usize,
        h: usize,
        planes: &[Prepared],
        acc: &mut Scratch,
        sc: &mut Scratch,
    ) {
        let t = self.step;
        for a in acc.num.iter_mut() {
            a.fill(0.0);
        }
        acc.den.fill(0.0);
        let j0 = y / t;
        let fy = (y % t) as f64 / t as f64;
        for (j, wy) in [(j0, 1.0 - fy), (j0 + 1, fy)] {
            if wy <= 0.0 {
                continue;
            }
            for i in 0..self.nx {
                let centre = i * t;
                let xa = centre.saturating_sub(t - 1);
                let xb = (centre + t).min(w);
                if xa >= xb {
                    continue;
                }
                let k = &self.kernels[j * self.nx + i];
                gather_row(k, y, xa, xb, w, h, planes, &mut sc.num, &mut sc.den);
                let n = xb - xa;
                for x in xa..xb {
                    let wx = 1.0 - (x as f64 - centre as f64).abs() / t as f64;
                    acc.den[x] += wx * wy * sc.den[x - xa];
                }
                for (a, s) in acc.num.iter_mut().zip(&sc.num) {
                    for (x, &v) in (xa..xb).zip(&s[..n]) {
                        let wx = 1.0 - (x as f64 - centre as f64).abs() / t as f64;
                        a[x] += (wx * wy) as f32 * v;
                    }
                }
            }
        }
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
