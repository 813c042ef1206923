//! Aperture kernels and the uniform-radius span gather against an exact, slow reference renderer
//! (per-pixel kernel scatter with exact pixel/shape intersection areas). Run with `--nocapture` to
//! see the measured numbers.

use std::f64::consts::PI;

use lensblur::bokeh::{blur, blur_planes, Aperture, Profile, Shape};
use lensblur::buffer::RgbPlanes;
use lensblur::Error;

/// Deterministic xorshift noise in [0, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn psnr(a: &RgbPlanes, b: &RgbPlanes) -> f64 {
    let mut se = 0.0f64;
    let mut n = 0usize;
    for ch in 0..3 {
        for (x, y) in a.c[ch].iter().zip(&b.c[ch]) {
            se += ((x - y) as f64).powi(2);
            n += 1;
        }
    }
    let mse = se / n as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (1.0 / mse).log10()
    }
}

fn from_fn(w: usize, h: usize, f: impl Fn(usize, usize) -> [f32; 3]) -> RgbPlanes {
    let mut img = RgbPlanes::new(w, h, 0.0);
    for y in 0..h {
        for x in 0..w {
            let v = f(x, y);
            for (ch, &v) in v.iter().enumerate() {
                img.c[ch][y * w + x] = v;
            }
        }
    }
    img
}

/// Synthetic scenes: points of light (also at the borders), edges, gradients, random texture.
fn scenes(w: usize, h: usize) -> Vec<(&'static str, RgbPlanes)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let noise: Vec<[f32; 3]> = (0..w * h)
        .map(|_| [rng.next(), rng.next(), rng.next()])
        .collect();
    vec![
        (
            "points",
            from_fn(w, h, |x, y| {
                let on = (x % 17 == 5 && y % 13 == 7)
                    || (x == 0 && y == 2)
                    || (x == w - 1 && y == h / 2);
                if on {
                    [1.0, 0.9, 0.6]
                } else {
                    [0.02, 0.03, 0.05]
                }
            }),
        ),
        (
            "edges",
            from_fn(w, h, |x, y| {
                [
                    if x > w / 3 { 0.8 } else { 0.1 },
                    if (x + 2 * y) % 24 < 12 { 0.9 } else { 0.05 },
                    if y < h / 2 { 0.7 } else { 0.2 },
                ]
            }),
        ),
        (
            "gradient",
            from_fn(w, h, |x, y| {
                [
                    x as f32 / w as f32,
                    y as f32 / h as f32,
                    ((x + y) as f32 / (w + h) as f32).powi(2),
                ]
            }),
        ),
        ("noise", from_fn(w, h, |x, y| noise[y * w + x])),
    ]
}

/// Frame position of pixel `(x, y)` as the library defines it for the cat's eye.
fn frame_pos(x: usize, y: usize, w: usize, h: usize) -> [f64; 2] {
    let hd = 0.5 * ((w * w + h * h) as f64).sqrt();
    [
        (x as f64 - 0.5 * (w as f64 - 1.0)) / hd,
        (y as f64 - 0.5 * (h as f64 - 1.0)) / hd,
    ]
}

/// Exact reference: every output pixel `q` is `Σ_p K_q(q − p)·I(p) / Σ_p K_q(q − p)` over in-image
/// `p`, with `K_q` the exact scatter kernel at `q`'s frame position (pixel/shape intersection areas).
fn reference(img: &RgbPlanes, r: f32, ap: &Aperture) -> RgbPlanes {
    let (w, h) = (img.width as i64, img.height as i64);
    let mut out = RgbPlanes::new(img.width, img.height, 0.0);
    let uniform = ap.is_uniform();
    let centre_taps = ap.exact_taps(r, [0.0, 0.0]);
    for y in 0..h {
        for x in 0..w {
            let local;
            let taps = if uniform {
                &centre_taps
            } else {
                local = ap.exact_taps(r, frame_pos(x as usize, y as usize, img.width, img.height));
                &local
            };
            let (mut s, mut ws) = ([0.0f64; 3], 0.0f64);
            // Light from p = q − d reaches q with weight K(d).
            for &(dx, dy, wt) in taps {
                let (px, py) = (x - dx, y - dy);
                if px < 0 || py < 0 || px >= w || py >= h {
                    continue;
                }
                let i = (py * w + px) as usize;
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

fn polygon(n: u8, rotation_deg: f32, curvature: f32) -> Aperture {
    Aperture {
        shape: Shape::Blades(n),
        rotation_deg,
        curvature,
        ..Default::default()
    }
}

/// The apertures the reference tests sweep.
fn apertures() -> Vec<(String, Aperture)> {
    let mut v = vec![("disc".to_string(), Aperture::default())];
    for (n, rot, c) in [
        (5u8, 0.0f32, 0.0f32),
        (6, 0.0, 0.0),
        (6, 13.0, 0.5),
        (9, 0.0, 0.5),
        (9, -40.0, 1.0),
        (5, 200.0, 0.3),
        (3, 10.0, 0.0),
    ] {
        v.push((format!("{n} blades rot {rot} curv {c}"), polygon(n, rot, c)));
    }
    for profile in [Profile::Smooth, Profile::Bubble] {
        v.push((
            format!("disc {profile:?}"),
            Aperture {
                profile,
                ..Default::default()
            },
        ));
        v.push((
            format!("hexagon {profile:?}"),
            Aperture {
                profile,
                ..polygon(6, 0.0, 0.0)
            },
        ));
    }
    v
}

#[test]
fn kernel_weights_sum_to_the_shape_area() {
    let mut worst = 0.0f64;
    for (name, ap) in apertures()
        .into_iter()
        .filter(|(_, a)| a.profile == Profile::Flat)
    {
        for r in [0.8f32, 2.0, 3.7, 9.0, 24.5, 60.0] {
            let total = ap.kernel(r).total();
            let area = PI * (r as f64).powi(2);
            let e = (total / area - 1.0).abs();
            worst = worst.max(e);
            assert!(
                e < 1e-4,
                "{name} r={r}: kernel total {total} vs area {area}"
            );
        }
    }
    println!("worst relative error of kernel totals vs π r²: {worst:.2e}");
    // Curvature 1 is the circumscribed circle itself.
    let ap = polygon(7, 5.0, 1.0);
    assert!((ap.vertex_radius(10.0) - 10.0).abs() < 1e-9);
    // Straight hexagon: area (3√3/2) R² = π r².
    let rc = polygon(6, 0.0, 0.0).vertex_radius(10.0);
    assert!((1.5 * 3f64.sqrt() * rc * rc - PI * 100.0).abs() < 1e-9);
}

#[test]
fn kernel_weights_match_exact_pixel_coverage() {
    for (name, ap) in apertures() {
        for r in [2.5f32, 6.3, 15.0] {
            let k = ap.kernel(r);
            let exact = ap.exact_taps(r, [0.0, 0.0]);
            let peak = exact.iter().map(|t| t.2).fold(0.0, f64::max);
            let reach = k.reach().max(
                exact
                    .iter()
                    .map(|t| t.0.abs().max(t.1.abs()))
                    .max()
                    .unwrap_or(0),
            );
            let mut grid = std::collections::HashMap::new();
            for &(dx, dy, w) in &exact {
                grid.insert((dx, dy), w);
            }
            let mut worst = 0.0f64;
            for dy in -reach..=reach {
                for dx in -reach..=reach {
                    let e = (k.weight(dx, dy) - grid.get(&(dx, dy)).copied().unwrap_or(0.0)).abs();
                    worst = worst.max(e / peak);
                }
            }
            println!(
                "{name:>28} r={r:>4}: {} spans, worst pixel error {worst:.3} of the peak",
                k.spans.len()
            );
            assert!(worst < 0.15, "{name} r={r}: worst pixel error {worst}");
        }
    }
}

#[test]
fn fast_blur_matches_exact_reference() {
    let (w, h) = (61, 47);
    let mut worst = f64::INFINITY;
    for (name, ap) in apertures() {
        for r in [1.3f32, 4.0, 9.3, 17.0] {
            for (scene, img) in scenes(w, h) {
                let p = psnr(&blur(&img, r, &ap), &reference(&img, r, &ap));
                worst = worst.min(p);
                if p < 50.0 {
                    println!("{name:>28} r={r:>4} {scene:>8}: PSNR {p:.1} dB");
                }
            }
        }
    }
    println!("worst PSNR fast vs exact reference: {worst:.1} dB");
    assert!(worst >= 40.0, "worst PSNR {worst:.1} dB");
}

#[test]
fn cats_eye_matches_per_pixel_reference_without_seams() {
    let (w, h) = (72, 54);
    let mut worst = f64::INFINITY;
    for (name, ap) in [
        ("disc", Aperture::default()),
        ("hexagon", polygon(6, 0.0, 0.0)),
        ("9 blades curved", polygon(9, 0.0, 0.6)),
    ] {
        for cats_eye in [0.5f32, 1.0] {
            let ap = Aperture {
                cats_eye,
                ..ap.clone()
            };
            // 22 px: node outlines 1 px apart (the largest spacing).
            for r in [3.0f32, 8.5, 22.0] {
                if r > 10.0 && cats_eye < 1.0 {
                    continue;
                }
                for (scene, img) in scenes(w, h) {
                    let fast = blur(&img, r, &ap);
                    let slow = reference(&img, r, &ap);
                    let p = psnr(&fast, &slow);
                    let max_err = (0..3)
                        .flat_map(|c| fast.c[c].iter().zip(&slow.c[c]).map(|(a, b)| (a - b).abs()))
                        .fold(0.0f32, f32::max);
                    println!("cat's eye {cats_eye} {name:>16} r={r:>4} {scene:>8}: PSNR {p:.1} dB, max error {max_err:.4}");
                    worst = worst.min(p);
                    // A seam between node kernels would be a local jump much larger than this.
                    assert!(max_err < 0.03, "{name} r={r} {scene}: max error {max_err}");
                }
            }
        }
    }
    println!("worst PSNR cat's eye fast vs per-pixel reference: {worst:.1} dB");
    assert!(worst >= 40.0, "worst PSNR {worst:.1} dB");
}

#[test]
fn flat_image_stays_flat_at_borders() {
    let img = RgbPlanes::new(53, 41, 0.37);
    for (name, ap) in apertures().into_iter().chain([(
        "cat's eye".to_string(),
        Aperture {
            cats_eye: 1.0,
            ..polygon(5, 0.0, 0.2)
        },
    )]) {
        for r in [2.0f32, 11.0, 60.0] {
            let out = blur(&img, r, &ap);
            let worst = out
                .c
                .iter()
                .flatten()
                .map(|v| (v - 0.37).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 2e-5, "{name} r={r}: flat image changed by {worst}");
        }
    }
}

#[test]
fn blur_planes_handles_any_number_of_planes() {
    let (w, h) = (40, 30);
    let mut rng = Rng(7);
    let planes: Vec<Vec<f32>> = (0..5)
        .map(|_| (0..w * h).map(|_| rng.next()).collect())
        .collect();
    let refs: Vec<&[f32]> = planes.iter().map(Vec::as_slice).collect();
    let ap = Aperture {
        cats_eye: 0.8,
        ..polygon(7, 3.0, 0.3)
    };
    let all = blur_planes(&refs, w, h, 6.0, &ap);
    assert_eq!(all.len(), 5);
    for (i, p) in refs.iter().enumerate() {
        let one = blur_planes(&[p], w, h, 6.0, &ap);
        assert_eq!(one[0], all[i], "plane {i}");
    }
    assert_eq!(
        blur_planes(&refs, w, h, 0.3, &ap),
        planes,
        "sub-pixel radius is the identity"
    );
}

/// Renders a single bright pixel in the middle of an `s × s` frame; returns the plane.
fn point_light(s: usize, r: f32, ap: &Aperture) -> Vec<f32> {
    let mut p = vec![0.0f32; s * s];
    p[(s / 2) * s + s / 2] = 1.0;
    blur_planes(&[&p], s, s, r, ap).remove(0)
}

/// Boundary radius of a point-light render along screen angle `theta` (0 = right, π/2 = up), by
/// marching outward to where the value drops below half the centre value.
fn boundary(img: &[f32], s: usize, theta: f64) -> f64 {
    let c = (s / 2) as f64;
    let centre = img[(s / 2) * s + s / 2];
    let mut t = 0.0;
    while t < c - 1.0 {
        let (x, y) = (c + t * theta.cos(), c - t * theta.sin());
        // Bilinear sample.
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
        let at = |x: usize, y: usize| img[y * s + x];
        let v = (1.0 - fy) * ((1.0 - fx) * at(x0, y0) + fx * at(x0 + 1, y0))
            + fy * ((1.0 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
        if v < 0.5 * centre {
            return t;
        }
        t += 0.05;
    }
    t
}

/// Directions (screen angle, degrees) of the corners: local maxima of the boundary radius.
fn corners(img: &[f32], s: usize) -> Vec<f64> {
    let n = 720;
    let rho: Vec<f64> = (0..n)
        .map(|i| boundary(img, s, 2.0 * PI * i as f64 / n as f64))
        .collect();
    let (lo, hi) = rho
        .iter()
        .fold((f64::MAX, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let win = 12;
    (0..n)
        .filter(|&i| {
            let v = rho[i];
            v > lo + 0.5 * (hi - lo)
                && (1..=win).all(|d| v >= rho[(i + d) % n] && v > rho[(i + n - d) % n])
        })
        .map(|i| 360.0 * i as f64 / n as f64)
        .collect()
}

#[test]
fn point_light_renders_the_shape_with_its_orientation() {
    let s = 161;
    let r = 50.0;
    for n in [5u8, 6, 7, 9] {
        for rot in [0.0f32, 10.0, -25.0] {
            let img = point_light(s, r, &polygon(n, rot, 0.0));
            let found = corners(&img, s);
            println!("{n} blades rot {rot}: corners at {found:?}");
            assert_eq!(
                found.len(),
                n as usize,
                "{n} blades rot {rot}: corners {found:?}"
            );
            // A corner points up (90°) turned counter-clockwise by `rot`.
            let want = (90.0 + rot as f64).rem_euclid(360.0);
            let nearest = found
                .iter()
                .map(|&a| ((a - want + 540.0).rem_euclid(360.0) - 180.0).abs())
                .fold(f64::MAX, f64::min);
            assert!(
                nearest < 2.0,
                "{n} blades rot {rot}: no corner near {want}°: {found:?}"
            );
        }
    }
    // Pentagon, vertex up: the vertex reaches further than the flat side below (R vs R cos 36°).
    let img = point_light(s, r, &polygon(5, 0.0, 0.0));
    let (up, down) = (boundary(&img, s, PI / 2.0), boundary(&img, s, -PI / 2.0));
    let rc = polygon(5, 0.0, 0.0).vertex_radius(r);
    println!("pentagon: up {up:.2}, down {down:.2}, R_c {rc:.2}");
    assert!((up - rc).abs() < 1.0 && (down - rc * (PI / 5.0).cos()).abs() < 1.0);
    // Hexagon, vertex up: flat sides left and right.
    let img = point_light(s, r, &polygon(6, 0.0, 0.0));
    let (up, left) = (boundary(&img, s, PI / 2.0), boundary(&img, s, PI));
    assert!(left < up - 0.1 * up, "hexagon up {up} left {left}");
    // Rotating by a full blade angle gives the same kernel.
    let a = polygon(6, 7.0, 0.3).kernel(20.0);
    let b = polygon(6, 67.0, 0.3).kernel(20.0);
    assert!((a.total() - b.total()).abs() < 1e-9);
    for dy in -25..=25 {
        for dx in -25..=25 {
            assert!((a.weight(dx, dy) - b.weight(dx, dy)).abs() < 0.02);
        }
    }
}

#[test]
fn curvature_one_is_a_disc_and_size_is_continuous() {
    let r = 18.0;
    let disc = Aperture::default().kernel(r);
    let disc_exact = Aperture::default().exact_taps(r, [0.0, 0.0]);
    for n in [5u8, 6, 9] {
        let ap = polygon(n, 11.0, 1.0);
        let round = ap.kernel(r);
        let mut worst = 0.0f64;
        for dy in -20..=20 {
            for dx in -20..=20 {
                worst = worst.max((round.weight(dx, dy) - disc.weight(dx, dy)).abs());
            }
        }
        // The exact shapes are the same disc; the span kernels differ only by their (independent)
        // anti-aliasing approximations, each within ~0.1 of a pixel's area.
        let exact = ap.exact_taps(r, [0.0, 0.0]);
        let worst_exact = exact
            .iter()
            .zip(&disc_exact)
            .map(|(a, b)| {
                assert_eq!((a.0, a.1), (b.0, b.1));
                (a.2 - b.2).abs()
            })
            .fold(0.0f64, f64::max);
        println!(
            "{n} blades curvature 1 vs disc: worst pixel difference {worst:.4} (kernels), \
             {worst_exact:.1e} (exact shapes)"
        );
        assert!(
            worst < 0.1 && worst_exact < 1e-3,
            "{n} blades: {worst}, {worst_exact}"
        );
        // The vertex radius falls smoothly from the polygon's to r as curvature grows.
        let mut prev = polygon(n, 0.0, 0.0).vertex_radius(r);
        for i in 1..=20 {
            let rc = polygon(n, 0.0, i as f32 / 20.0).vertex_radius(r);
            assert!(rc <= prev && rc >= r as f64 - 1e-9 && prev - rc < 0.1 * r as f64);
            prev = rc;
        }
    }
}

/// Second moments of an exact kernel along unit direction `u` and its perpendicular.
fn moments(taps: &[(i64, i64, f64)], u: [f64; 2]) -> (f64, f64) {
    let total: f64 = taps.iter().map(|t| t.2).sum();
    let (mut mu, mut mt) = (0.0, 0.0);
    for &(dx, dy, w) in taps {
        let a = dx as f64 * u[0] + dy as f64 * u[1];
        let b = -(dx as f64) * u[1] + dy as f64 * u[0];
        mu += w * a * a;
        mt += w * b * b;
    }
    ((mu / total).sqrt(), (mt / total).sqrt())
}

#[test]
fn cats_eye_is_plain_at_the_centre_and_a_tangential_lemon_at_the_corners() {
    for base in [
        Aperture::default(),
        polygon(6, 0.0, 0.0),
        polygon(9, 0.0, 0.7),
    ] {
        let ce = Aperture {
            cats_eye: 1.0,
            ..base.clone()
        };
        assert_eq!(ce.kernel_at(12.0, [0.0, 0.0]), base.kernel(12.0));
        let corner = [0.8, 0.6]; // |pos| = 1: the corner of a 4:3 frame
        let (radial, tangential) = moments(&ce.exact_taps(20.0, corner), corner);
        let (r0, t0) = moments(&base.exact_taps(20.0, corner), corner);
        println!(
            "{:?}: corner radial/tangential spread {radial:.2}/{tangential:.2} (plain {r0:.2}/{t0:.2})",
            base.shape
        );
        assert!(
            radial < 0.6 * tangential,
            "radial {radial} tangential {tangential}"
        );
        // Halfway out it is clipped less than in the corner.
        let (rh, th) = moments(&ce.exact_taps(20.0, [0.4, 0.3]), corner);
        assert!(rh / th > radial / tangential && rh / th < r0 / t0);
        // Symmetric about the light: the kernel's centroid stays at the origin.
        let taps = ce.exact_taps(20.0, corner);
        let tot: f64 = taps.iter().map(|t| t.2).sum();
        let cx: f64 = taps.iter().map(|t| t.0 as f64 * t.2).sum::<f64>() / tot;
        let cy: f64 = taps.iter().map(|t| t.1 as f64 * t.2).sum::<f64>() / tot;
        assert!(cx.abs() < 0.3 && cy.abs() < 0.3, "centroid {cx}, {cy}");
    }
}

#[test]
fn bubble_rim_is_brighter_than_centre_and_smooth_the_opposite() {
    // Frame ≥ 4r + 1: output pixels within the ball must not see the border (renormalisation).
    let s = 171;
    let r = 40.0;
    for shape in [Shape::Disc, Shape::Blades(6)] {
        let mean_at = |profile: Profile, a: f64, b: f64| {
            let img = point_light(
                s,
                r,
                &Aperture {
                    shape,
                    profile,
                    ..Default::default()
                },
            );
            let c = (s / 2) as f64;
            let (mut sum, mut n) = (0.0f64, 0usize);
            for y in 0..s {
                for x in 0..s {
                    let d = ((x as f64 - c).powi(2) + (y as f64 - c).powi(2)).sqrt() / r as f64;
                    if d >= a && d < b {
                        sum += img[y * s + x] as f64;
                        n += 1;
                    }
                }
            }
            sum / n as f64
        };
        // The rim band: inside every shape of radius r (the hexagon's inradius is 0.95 r).
        let bubble = (
            mean_at(Profile::Bubble, 0.0, 0.5),
            mean_at(Profile::Bubble, 0.85, 0.93),
        );
        let smooth = (
            mean_at(Profile::Smooth, 0.0, 0.3),
            mean_at(Profile::Smooth, 0.85, 0.93),
        );
        let flat = (
            mean_at(Profile::Flat, 0.0, 0.5),
            mean_at(Profile::Flat, 0.85, 0.93),
        );
        println!("{shape:?}: centre/rim bubble {bubble:?}, smooth {smooth:?}, flat {flat:?}");
        assert!(bubble.1 > 1.5 * bubble.0);
        assert!(smooth.0 > 2.0 * smooth.1);
        assert!((flat.1 / flat.0 - 1.0).abs() < 0.02);
    }
}

#[test]
fn parses_shapes_and_validates() {
    assert_eq!(Aperture::parse_shape("disc").ok(), Some(Shape::Disc));
    for (s, n) in [
        ("pentagon", 5),
        ("Hexagon", 6),
        ("heptagon", 7),
        ("octagon", 8),
        ("nonagon", 9),
        ("blades:11", 11),
        ("blades:3", 3),
    ] {
        assert_eq!(Aperture::parse_shape(s).ok(), Some(Shape::Blades(n)), "{s}");
    }
    for bad in [
        "",
        "star",
        "blades:",
        "blades:2",
        "blades:13",
        "blades:x",
        "hexagons",
    ] {
        assert!(
            matches!(Aperture::parse_shape(bad), Err(Error::InvalidOption(_))),
            "{bad:?} accepted"
        );
    }
    assert!(Aperture::default().validate().is_ok());
    for bad in [
        Aperture {
            curvature: 1.5,
            ..Default::default()
        },
        Aperture {
            cats_eye: -0.1,
            ..Default::default()
        },
        Aperture {
            rotation_deg: f32::NAN,
            ..Default::default()
        },
        Aperture {
            shape: Shape::Blades(2),
            ..Default::default()
        },
        Aperture {
            curvature: f32::NAN,
            ..Default::default()
        },
    ] {
        assert!(
            matches!(bad.validate(), Err(Error::InvalidOption(_))),
            "{bad:?} accepted"
        );
    }
    assert!(matches!(Profile::parse("bubble"), Ok(Profile::Bubble)));
    assert!(Profile::parse("round").is_err());
}
