//! Aperture shapes and their anti-aliased span kernels.
//!
//! Every shape is convex — a disc, or the intersection of `n` blade constraints (half-planes for
//! straight blades, large discs for curved ones), optionally clipped by two displaced discs for the
//! cat's eye — so each horizontal line meets it in one interval `[lo(y), hi(y)]`. A kernel row
//! (strip `[dy−½, dy+½]`) is cut into sub-rows where the outline runs sideways by more than ~⅔ px;
//! each sub-row becomes one span `[L, R]` whose width is the sub-row's exact area divided by its
//! height and whose centre is the area's horizontal centroid (both integrated numerically: 12
//! midpoint samples per piece between the corners' heights, exact for straight blades; discs use the
//! closed-form area integral). Kernel totals match the shape's area to ≤ 5e-5 (relative, measured
//! over 3–12 blades, curvature 0–1, r 0.8–60), and each pixel's weight is within 0.07 of the peak
//! weight of its exact pixel/shape intersection area (measured; rows with a steep rim are where the
//! box spans err). Kernels below r = 8 px get denser sub-rows, since each pixel matters more there.
//!
//! Radial profiles are sums of nested, scaled copies of the shape with (possibly negative) weights.

use std::f64::consts::PI;

use super::disc::DiscKernel;
use crate::error::{Error, Result};

/// Outline of the aperture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shape {
    /// A circle (the default: a lens stopped wide open, or with rounded blades).
    #[default]
    Disc,
    /// A regular polygon from `n` diaphragm blades, `n` in [`Shape::MIN_BLADES`]`..=`[`Shape::MAX_BLADES`].
    Blades(u8),
}

impl Shape {
    /// Fewest blades accepted.
    pub const MIN_BLADES: u8 = 3;
    /// Most blades accepted (beyond that a polygon is indistinguishable from a disc at bokeh sizes).
    pub const MAX_BLADES: u8 = 12;
}

/// Brightness profile across the bokeh ball (what spherical aberration does to out-of-focus light).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// Uniform (an ideal, aberration-free lens).
    #[default]
    Flat,
    /// Brightest in the centre, falling to ~¼ at the rim (over-corrected lenses, apodisation filters).
    Smooth,
    /// Bright rim around a dimmer centre, the "soap bubble" look (under-corrected lenses, Trioplan).
    Bubble,
}

impl Profile {
    /// Parses a CLI name: `flat`, `smooth`, `bubble`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "flat" => Ok(Profile::Flat),
            "smooth" => Ok(Profile::Smooth),
            "bubble" => Ok(Profile::Bubble),
            _ => Err(Error::InvalidOption(format!(
                "bokeh profile {s:?}: expected flat, smooth or bubble"
            ))),
        }
    }

    /// The profile as nested copies of the shape: `(scale, weight)`, the weight function being
    /// `Σ weight · 1[p / scale ∈ shape]`. Few terms keep the cost ≤ ~3× a flat kernel; the price is
    /// visible terraces (steps of ¼ of the peak) on very large balls.
    fn terms(self) -> &'static [(f64, f64)] {
        match self {
            Profile::Flat => &[(1.0, 1.0)],
            // 1 inside 0.4, then 0.75, 0.5, 0.25 at the rim.
            Profile::Smooth => &[(1.0, 0.25), (0.8, 0.25), (0.6, 0.25), (0.4, 0.25)],
            // 0.45 inside 0.8, 0.7 in [0.8, 0.9], 1 in the outer tenth.
            Profile::Bubble => &[(1.0, 1.0), (0.9, -0.3), (0.8, -0.25)],
        }
    }
}

/// The lens aperture: shape, orientation, blade curvature, cat's eye and profile.
///
/// Size: a blur `radius` r always means the shape's area is π r² (before the cat's eye clips it), so a
/// hexagon, a curved 9-blade polygon and a disc of the same radius spread light over the same area and
/// look the same size; changing the curvature does not change the size. Orientation (as seen on
/// screen, for a point of light): at `rotation_deg` 0 a blade *vertex* points straight up; positive
/// angles turn the shape counter-clockwise.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Aperture {
    /// Outline.
    pub shape: Shape,
    /// Rotation in degrees, counter-clockwise on screen (0 = a vertex points up).
    pub rotation_deg: f32,
    /// Blade curvature 0–1: 0 = straight blades, 1 = the blades form a circle. In between, each blade
    /// is a circular arc through its two vertices with curvature `curvature / R_c` (`R_c` the vertex
    /// radius), i.e. the arcs bend continuously from straight lines to the circumscribed circle.
    pub curvature: f32,
    /// Cat's eye 0–1 (0 = off): mechanical vignetting of fast lenses. Off-centre, the kernel is clipped
    /// by two discs of the aperture's vertex radius displaced along the radial direction by
    /// `±CATS_EYE_MAX · cats_eye · d · R_c`, `d` the distance from the frame centre as a fraction of
    /// the half-diagonal: a lemon whose long axis is tangential, growing with distance from the centre.
    /// See [`CATS_EYE_MAX`] for the shape at the corners.
    pub cats_eye: f32,
    /// Brightness profile across the ball.
    pub profile: Profile,
}

/// At `cats_eye` = 1 and a frame corner, each clip disc is displaced by this fraction of the vertex
/// radius: the ball keeps `1 − 0.6 = 0.4` of its radial half-extent and `√(1 − 0.36) = 0.8` of its
/// tangential one (a 1:2 lemon, as wide-open f/1.4 lenses show in the corners).
pub const CATS_EYE_MAX: f64 = 0.6;

impl Aperture {
    /// Parses a CLI shape name: `disc` (or `circle`), `triangle`, `square`, `pentagon`, `hexagon`,
    /// `heptagon`, `octagon`, `nonagon`, `decagon`, or `blades:N` (N in 3–12).
    pub fn parse_shape(s: &str) -> Result<Shape> {
        let t = s.trim().to_ascii_lowercase();
        let n = match t.as_str() {
            "disc" | "disk" | "circle" => return Ok(Shape::Disc),
            "triangle" => 3,
            "square" => 4,
            "pentagon" => 5,
            "hexagon" => 6,
            "heptagon" => 7,
            "octagon" => 8,
            "nonagon" => 9,
            "decagon" => 10,
            _ => match t.strip_prefix("blades:").map(|n| n.trim().parse::<u8>()) {
                Some(Ok(n)) => n,
                _ => {
                    return Err(Error::InvalidOption(format!(
                        "aperture {s:?}: expected disc, pentagon, hexagon, heptagon, octagon, \
                         nonagon or blades:N (N = {}–{})",
                        Shape::MIN_BLADES,
                        Shape::MAX_BLADES
                    )))
                }
            },
        };
        let shape = Shape::Blades(n);
        check_blades(shape)?;
        Ok(shape)
    }

    /// Checks ranges: blade count, finite rotation, curvature and cat's eye in 0–1.
    pub fn validate(&self) -> Result<()> {
        check_blades(self.shape)?;
        if !self.rotation_deg.is_finite() {
            return Err(Error::InvalidOption(format!(
                "aperture rotation {} is not a finite angle",
                self.rotation_deg
            )));
        }
        if !(0.0..=1.0).contains(&self.curvature) {
            return Err(Error::InvalidOption(format!(
                "aperture curvature {} is outside 0–1",
                self.curvature
            )));
        }
        if !(0.0..=1.0).contains(&self.cats_eye) {
            return Err(Error::InvalidOption(format!(
                "cat's eye {} is outside 0–1",
                self.cats_eye
            )));
        }
        Ok(())
    }

    /// True when the kernel is the same everywhere (no cat's eye).
    pub fn is_uniform(&self) -> bool {
        self.cats() == 0.0
    }

    /// Vertex radius `R_c` (circumradius) for blur radius `radius`: the shape's area is `π·radius²`.
    pub fn vertex_radius(&self, radius: f32) -> f64 {
        let r = sanitize(radius);
        match self.shape {
            Shape::Disc => r,
            Shape::Blades(n) => r * (PI / unit_area(n as f64, self.curv())).sqrt(),
        }
    }

    /// The scatter kernel (a point of light at the origin lands on these pixels) at the frame centre.
    pub fn kernel(&self, radius: f32) -> Kernel {
        self.kernel_at(radius, [0.0, 0.0])
    }

    /// The scatter kernel at frame position `pos`: offset from the frame centre divided by the
    /// half-diagonal (so `|pos|` = 1 at the corners); only the cat's eye depends on it.
    pub fn kernel_at(&self, radius: f32, pos: [f64; 2]) -> Kernel {
        let r = sanitize(radius);
        let mut spans = Vec::new();
        if r < 0.5 {
            // Area under one pixel: the normalised kernel is a delta.
            spans.push(Span {
                dy: 0,
                lo: -0.5,
                hi: 0.5,
                weight: 1.0,
            });
            return Kernel { spans };
        }
        let outline = self.outline(r, pos);
        for &(scale, wt) in self.profile.terms() {
            match &outline {
                None => {
                    // Plain disc: the closed-form kernel.
                    let (per_px, max) = subrow_density(r * scale);
                    for s in DiscKernel::with_density((r * scale) as f32, per_px, max).spans {
                        spans.push(Span {
                            dy: s.dy as i32,
                            lo: -s.half,
                            hi: s.half,
                            weight: wt * s.weight,
                        });
                    }
                }
                Some(o) => o.add_spans(scale, wt, &mut spans),
            }
        }
        Kernel { spans }
    }

    /// Exact scatter weights `(dx, dy, w)`: `w` = Σ profile weight × area of the pixel square
    /// `[dx±½] × [dy±½]` inside the scaled shape, integrated with 64 sample lines per pixel row
    /// (independent of the span decomposition). O(r²); for reference renderers in tests.
    #[doc(hidden)]
    pub fn exact_taps(&self, radius: f32, pos: [f64; 2]) -> Vec<(i64, i64, f64)> {
        let r = sanitize(radius);
        if r < 0.5 {
            return vec![(0, 0, 1.0)];
        }
        let outline = self.outline(r, pos).unwrap_or_else(|| Outline::disc(r));
        let reach = (outline.extent() + 1.5).ceil() as i64;
        let (w, h) = (2 * reach as usize + 1, 2 * reach as usize + 1);
        let mut grid = vec![0.0f64; w * h];
        const M: usize = 64;
        for &(scale, wt) in self.profile.terms() {
            for dy in -reach..=reach {
                for j in 0..M {
                    let y = dy as f64 - 0.5 + (j as f64 + 0.5) / M as f64;
                    let (lo, hi) = outline.interval(y / scale);
                    let (lo, hi) = (lo * scale, hi * scale);
                    if hi <= lo {
                        continue;
                    }
                    let row = &mut grid[((dy + reach) as usize) * w..][..w];
                    let x0 = (lo.round() as i64).max(-reach);
                    let x1 = (hi.round() as i64).min(reach);
                    for dx in x0..=x1 {
                        let c = (hi.min(dx as f64 + 0.5) - lo.max(dx as f64 - 0.5)).max(0.0);
                        row[(dx + reach) as usize] += wt * c / M as f64;
                    }
                }
            }
        }
        let mut taps = Vec::new();
        for dy in -reach..=reach {
            for dx in -reach..=reach {
                let v = grid[((dy + reach) as usize) * w + (dx + reach) as usize];
                if v != 0.0 {
                    taps.push((dx, dy, v));
                }
            }
        }
        taps
    }

    fn curv(&self) -> f64 {
        if self.curvature.is_finite() {
            self.curvature.clamp(0.0, 1.0) as f64
        } else {
            0.0
        }
    }

    /// The cat's eye strength, clamped to 0–1 (NaN → 0).
    pub(crate) fn cats(&self) -> f64 {
        if self.cats_eye.is_finite() {
            self.cats_eye.clamp(0.0, 1.0) as f64
        } else {
            0.0
        }
    }

    /// The outline for blur radius `r` at frame position `pos`; `None` for a plain disc (closed form).
    fn outline(&self, r: f64, pos: [f64; 2]) -> Option<Outline> {
        let rc = self.vertex_radius(r as f32);
        let mut o = match self.shape {
            Shape::Disc => Outline::disc(rc),
            Shape::Blades(n) => {
                let n = n.clamp(Shape::MIN_BLADES, Shape::MAX_BLADES) as f64;
                let rot = (self.rotation_deg as f64).to_radians();
                let rot = if rot.is_finite() { rot } else { 0.0 };
                let c = self.curv();
                let half = PI / n;
                let a = rc * half.cos(); // apothem
                let hh = rc * half.sin(); // half blade length
                let cons = (0..n as usize)
                    .map(|k| {
                        // Blade normal between vertices k and k+1; vertex 0 at math angle 90° + rot
                        // (up on screen). Screen y points down, so a math angle β is (cos β, −sin β).
                        let beta = PI / 2.0 + rot + 2.0 * PI * k as f64 / n + half;
                        let (nx, ny) = (beta.cos(), -beta.sin());
                        if c < 1e-6 {
                            Con::Half { nx, ny, a }
                        } else {
                            // Arc of radius ρ = R_c / c through both vertices, bulging outward.
                            let rho = rc / c;
                            let d = (rho * rho - hh * hh).max(0.0).sqrt() - a;
                            Con::Disc {
                                cx: -d * nx,
                                cy: -d * ny,
                                r: rho,
                            }
                        }
                    })
                    .collect();
                let breaks = (0..n as usize)
                    .map(|k| -rc * (PI / 2.0 + rot + 2.0 * PI * k as f64 / n).sin())
                    .collect();
                Outline {
                    cons,
                    ymin: -rc,
                    ymax: rc,
                    breaks,
                }
            }
        };
        let dist = (pos[0] * pos[0] + pos[1] * pos[1]).sqrt();
        let delta = CATS_EYE_MAX * self.cats() * dist.min(1.5) * rc;
        if delta > 1e-9 {
            let (ux, uy) = (pos[0] / dist, pos[1] / dist);
            for s in [-1.0, 1.0] {
                o.cons.push(Con::Disc {
                    cx: s * delta * ux,
                    cy: s * delta * uy,
                    r: rc,
                });
            }
        } else if self.shape == Shape::Disc {
            return None;
        }
        o.fit_extent();
        Some(o)
    }
}

fn check_blades(shape: Shape) -> Result<()> {
    match shape {
        Shape::Blades(n) if !(Shape::MIN_BLADES..=Shape::MAX_BLADES).contains(&n) => {
            Err(Error::InvalidOption(format!(
                "{n} aperture blades: expected {}–{}",
                Shape::MIN_BLADES,
                Shape::MAX_BLADES
            )))
        }
        _ => Ok(()),
    }
}

fn sanitize(radius: f32) -> f64 {
    if radius.is_finite() && radius > 0.0 {
        radius as f64
    } else {
        0.0
    }
}

/// Area of the `n`-blade shape with vertex radius 1 and blade curvature `c`: the polygon plus `n`
/// circular segments of radius `1/c` on chords of half-length `sin(π/n)`.
fn unit_area(n: f64, c: f64) -> f64 {
    let h = (PI / n).sin();
    let poly = 0.5 * n * (2.0 * PI / n).sin();
    if c < 1e-6 {
        return poly;
    }
    let rho = 1.0 / c;
    let seg = rho * rho * (h / rho).min(1.0).asin() - h * (rho * rho - h * h).max(0.0).sqrt();
    poly + n * seg
}

/// One convex constraint of an outline.
#[derive(Clone, Copy, Debug)]
enum Con {
    /// `nx·x + ny·y ≤ a`.
    Half { nx: f64, ny: f64, a: f64 },
    /// Inside the disc.
    Disc { cx: f64, cy: f64, r: f64 },
}

/// A convex outline as an intersection of constraints, with its vertical extent.
#[derive(Clone, Debug)]
struct Outline {
    cons: Vec<Con>,
    ymin: f64,
    ymax: f64,
    /// Heights of the corners: the integrals are split there (lo/hi have kinks).
    breaks: Vec<f64>,
}

/// Sub-rows per pixel of sideways run, and the cap per row, for a shape of radius `r`: 1.5 and 8
/// from r = 8 px up (as the disc kernel: worst coverage error ≈ 0.1 px²), denser below, where
/// each pixel carries a larger share of the kernel and the extra spans cost nothing.
fn subrow_density(r: f64) -> (f64, usize) {
    if r >= 8.0 {
        (1.5, 8)
    } else {
        (1.5 * 8.0 / r.max(0.5), 16)
    }
}
/// Midpoint samples per sub-row for the area and centroid integrals.
const SAMPLES: usize = 12;

impl Outline {
    fn disc(r: f64) -> Self {
        Outline {
            cons: vec![Con::Disc {
                cx: 0.0,
                cy: 0.0,
                r,
            }],
            ymin: -r,
            ymax: r,
            breaks: Vec::new(),
        }
    }

    /// The interval `[lo, hi]` of the horizontal line at `y` inside the outline (`hi ≤ lo`: empty).
    #[inline]
    fn interval(&self, y: f64) -> (f64, f64) {
        let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
        for c in &self.cons {
            match *c {
                Con::Half { nx, ny, a } => {
                    let rhs = a - ny * y;
                    if nx.abs() < 1e-12 {
                        if rhs < 0.0 {
                            return (0.0, 0.0);
                        }
                    } else if nx > 0.0 {
                        hi = hi.min(rhs / nx);
                    } else {
                        lo = lo.max(rhs / nx);
                    }
                }
                Con::Disc { cx, cy, r } => {
                    let d = y - cy;
                    let q = r * r - d * d;
                    if q <= 0.0 {
                        return (0.0, 0.0);
                    }
                    let s = q.sqrt();
                    lo = lo.max(cx - s);
                    hi = hi.min(cx + s);
                }
            }
        }
        (lo, hi)
    }

    fn nonempty(&self, y: f64) -> bool {
        let (lo, hi) = self.interval(y);
        hi > lo
    }

    /// Largest |coordinate| reached (for sizing reference grids).
    fn extent(&self) -> f64 {
        let mut e = self.ymin.abs().max(self.ymax.abs());
        let steps = 64;
        for i in 0..=steps {
            let y = self.ymin + (self.ymax - self.ymin) * i as f64 / steps as f64;
            let (lo, hi) = self.interval(y);
            if hi > lo {
                e = e.max(lo.abs()).max(hi.abs());
            }
        }
        e + 1.0
    }

    /// Tightens `[ymin, ymax]` by bisection (the origin is inside; the outline is convex).
    fn fit_extent(&mut self) {
        let (mut a, mut b) = (self.ymin.min(-1e-9), 0.0);
        for _ in 0..60 {
            let m = 0.5 * (a + b);
            if self.nonempty(m) {
                b = m;
            } else {
                a = m;
            }
        }
        let ymin = a;
        let (mut a, mut b) = (0.0, self.ymax.max(1e-9));
        for _ in 0..60 {
            let m = 0.5 * (a + b);
            if self.nonempty(m) {
                a = m;
            } else {
                b = m;
            }
        }
        self.ymin = ymin;
        self.ymax = b;
    }

    /// Appends the spans of the outline scaled by `scale`, with weight `wt`.
    fn add_spans(&self, scale: f64, wt: f64, spans: &mut Vec<Span>) {
        let (ymin, ymax) = (self.ymin * scale, self.ymax * scale);
        let iv = |y: f64| {
            let (lo, hi) = self.interval(y / scale);
            (lo * scale, hi * scale)
        };
        let row0 = (ymin + 0.5).floor() as i64;
        let row1 = (ymax - 0.5).ceil() as i64;
        for dy in row0..=row1 {
            let a = (dy as f64 - 0.5).max(ymin);
            let b = (dy as f64 + 0.5).min(ymax);
            if b <= a {
                continue;
            }
            // Sideways run of the outline inside the strip (total variation of lo and hi).
            let probes = 8;
            let (mut run_lo, mut run_hi) = (0.0f64, 0.0f64);
            let mut prev: Option<(f64, f64)> = None;
            for i in 0..=probes {
                let y = a + (b - a) * (i as f64 + 0.5) / (probes + 1) as f64;
                let (lo, hi) = iv(y);
                if hi > lo {
                    if let Some((pl, ph)) = prev {
                        run_lo += (lo - pl).abs();
                        run_hi += (hi - ph).abs();
                    }
                    prev = Some((lo, hi));
                }
            }
            let run = run_lo.max(run_hi);
            let (per_px, max) = subrow_density(0.5 * (ymax - ymin));
            let n = ((per_px * run).ceil() as usize).clamp(1, max);
            let step = (b - a) / n as f64;
            for j in 0..n {
                let sa = a + j as f64 * step;
                let sb = sa + step;
                // Split at the corners inside the sub-row: between them lo and hi are smooth
                // (linear for straight blades, where the midpoint rule is exact).
                let mut cuts: Vec<f64> = self
                    .breaks
                    .iter()
                    .map(|&y| y * scale)
                    .filter(|&y| y > sa && y < sb)
                    .collect();
                cuts.sort_by(f64::total_cmp);
                let (mut area, mut mom) = (0.0f64, 0.0f64);
                let mut pa = sa;
                for pb in cuts.into_iter().chain([sb]) {
                    let len = pb - pa;
                    for i in 0..SAMPLES {
                        let y = pa + len * (i as f64 + 0.5) / SAMPLES as f64;
                        let (lo, hi) = iv(y);
                        if hi > lo {
                            area += (hi - lo) * len;
                            mom += 0.5 * (hi * hi - lo * lo) * len;
                        }
                    }
                    pa = pb;
                }
                if area <= 0.0 {
                    continue;
                }
                let width = area / (SAMPLES as f64 * step);
                let centre = mom / area;
                spans.push(Span {
                    dy: dy as i32,
                    lo: centre - 0.5 * width,
                    hi: centre + 0.5 * width,
                    weight: wt * step,
                });
            }
        }
    }
}

/// One horizontal span of a kernel: the pixel at `(dx, dy)` gets `weight ×` the length of
/// `[dx−½, dx+½] ∩ [lo, hi]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    /// Row offset (screen: positive is down).
    pub dy: i32,
    /// Left end, pixels (fractional).
    pub lo: f64,
    /// Right end.
    pub hi: f64,
    /// Weight: the sub-row height times the profile weight.
    pub weight: f64,
}

/// A kernel as weighted horizontal spans, in scatter orientation: a point of light at the origin
/// lands on pixel `(dx, dy)` with [`Kernel::weight`]`(dx, dy)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// The spans, by row.
    pub spans: Vec<Span>,
}

impl Kernel {
    /// Sum of all weights (= the shape's area `π r²` for a flat profile without cat's eye).
    pub fn total(&self) -> f64 {
        self.spans.iter().map(|s| s.weight * (s.hi - s.lo)).sum()
    }

    /// Weight of the pixel at offset `(dx, dy)`.
    pub fn weight(&self, dx: i64, dy: i64) -> f64 {
        self.spans
            .iter()
            .filter(|s| s.dy as i64 == dy)
            .map(|s| {
                let lo = (dx as f64 - 0.5).max(s.lo);
                let hi = (dx as f64 + 0.5).min(s.hi);
                s.weight * (hi - lo).max(0.0)
            })
            .sum()
    }

    /// Largest |dx| or |dy| with non-zero weight.
    pub fn reach(&self) -> i64 {
        self.spans
            .iter()
            .map(|s| {
                (s.dy.unsigned_abs() as i64)
                    .max((s.lo.abs() + 0.5).ceil() as i64)
                    .max((s.hi.abs() + 0.5).ceil() as i64)
            })
            .max()
            .unwrap_or(0)
    }

    /// The mirrored kernel `K(−d)`: what a gather uses so that it scatters `K`.
    pub fn mirrored(&self) -> Kernel {
        Kernel {
            spans: self
                .spans
                .iter()
                .map(|s| Span {
                    dy: -s.dy,
                    lo: -s.hi,
                    hi: -s.lo,
                    weight: s.weight,
                })
                .collect(),
        }
    }
}
