//! Render stage: disc bokeh vs the exact reference, kernel shape, energy, halo, subject integrity,
//! strength calibration and highlights. Run with `--nocapture` to see the measured numbers.

use lensblur::bokeh::{disc_blur, reference_disc_blur, DiscKernel};
use lensblur::buffer::{Plane, RgbPlanes};
use lensblur::coc::{blur_radius_px, max_radius_fraction};
use lensblur::composite::{render_linear, render_linear_with_factor, working_factor, RenderParams};

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

/// Named synthetic test images: points of light, edges, gradients, noise, and a mix.
fn synthetic(w: usize, h: usize) -> Vec<(&'static str, RgbPlanes)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let noise: Vec<[f32; 3]> = (0..w * h)
        .map(|_| [rng.next(), rng.next(), rng.next()])
        .collect();
    let points = from_fn(w, h, |x, y| {
        let on = (x % 23 == 5 && y % 19 == 7) || (x == 1 && y == 2) || (x == w - 1 && y == h / 2);
        if on {
            [1.0, 0.9, 0.6]
        } else {
            [0.02, 0.03, 0.05]
        }
    });
    let edges = from_fn(w, h, |x, y| {
        let a = if x > w / 3 { 0.8 } else { 0.1 };
        let b = if (x + 2 * y) % 40 < 20 { 0.9 } else { 0.05 };
        let c = if y < h / 2 { 0.7 } else { 0.2 };
        [a, b, c]
    });
    let gradient = from_fn(w, h, |x, y| {
        [
            x as f32 / w as f32,
            y as f32 / h as f32,
            ((x + y) as f32 / (w + h) as f32).powi(2),
        ]
    });
    let noisy = from_fn(w, h, |x, y| noise[y * w + x]);
    let mix = from_fn(w, h, |x, y| {
        let n = noise[y * w + x];
        let e = if (x / 17 + y / 13) % 2 == 0 {
            0.6
        } else {
            0.15
        };
        let p = if x % 31 == 3 && y % 29 == 11 {
            1.0
        } else {
            0.0
        };
        [
            (0.5 * e + 0.3 * n[0] + p).min(1.0),
            (0.4 * e + 0.2 * n[1] + p).min(1.0),
            (0.3 * e + 0.1 * n[2] + p).min(1.0),
        ]
    });
    vec![
        ("points", points),
        ("edges", edges),
        ("gradient", gradient),
        ("noise", noisy),
        ("mix", mix),
    ]
}

#[test]
fn fast_disc_blur_matches_reference() {
    let (w, h) = (97, 71);
    let mut worst = f64::INFINITY;
    for (name, img) in synthetic(w, h) {
        for r in [0.3f32, 0.7, 1.0, 1.5, 2.5, 3.3, 6.0, 8.75, 13.2, 24.0] {
            let fast = disc_blur(&img, r);
            let slow = reference_disc_blur(&img, r);
            let p = psnr(&fast, &slow);
            println!("disc_blur vs reference: {name:>8} r={r:>5}: PSNR {p:.1} dB");
            worst = worst.min(p);
        }
    }
    println!("worst PSNR fast vs reference: {worst:.1} dB");
    // Measured ≈ 120+ dB (only f32 rounding differs); 60 dB leaves a wide margin.
    assert!(worst >= 60.0, "worst PSNR {worst:.1} dB");
}

#[test]
fn reduced_resolution_path_matches_full_resolution_reference() {
    // With α = 0 and no highlights, render_linear is exactly the reduced-resolution bokeh path
    // (box-downscale by k, blur at r/k, bilinear upsample). The (r, k) pairs give the working radii
    // that 12 MP photos get (see `working_factor`): strength 15 → 5.2, 30 → 8.9, 80 → 21.8; and
    // smaller ones (down to 3.9) for margin.
    let mut results = Vec::new();
    let cases: [(usize, usize, f32, usize); 5] = [
        (240, 180, 15.7, 4),
        (240, 180, 35.4, 5),
        (240, 180, 47.5, 4),
        (200, 150, 60.0, 3),
        (150, 120, 90.0, 5),
    ];
    for (w, h, r, k) in cases {
        let alpha = Plane::new(w, h, 0.0);
        for (name, img) in synthetic(w, h) {
            let fast = render_linear_with_factor(
                &img,
                &img,
                &alpha,
                &RenderParams {
                    radius: r,
                    highlights: 0.0,
                    aperture: Default::default(),
                },
                k,
            );
            let slow = reference_disc_blur(&img, r);
            let p = psnr(&fast, &slow);
            println!(
                "reduced path vs full-res reference: {name:>8} {w}x{h} r={r} k={k} (working r {:.1}): PSNR {p:.1} dB",
                r / k as f32
            );
            results.push(p);
        }
    }
    let worst = results.iter().copied().fold(f64::INFINITY, f64::min);
    println!("worst PSNR reduced path vs reference: {worst:.1} dB");
    assert!(worst >= 40.0, "worst PSNR {worst:.1} dB");
}

#[test]
fn kernel_is_an_antialiased_disc() {
    // Each weight against the exact area of the pixel square inside the disc (64×64 supersampled).
    for r in [2.3f32, 5.0, 8.6, 12.0, 16.7] {
        let k = DiscKernel::new(r);
        let reach = k.reach as i64 + 1;
        let (mut worst, mut se, mut n) = (0.0f64, 0.0f64, 0usize);
        for dy in -reach..=reach {
            for dx in -reach..=reach {
                let mut inside = 0;
                for j in 0..64 {
                    for i in 0..64 {
                        let x = dx as f64 - 0.5 + (i as f64 + 0.5) / 64.0;
                        let y = dy as f64 - 0.5 + (j as f64 + 0.5) / 64.0;
                        inside += (x * x + y * y <= (r * r) as f64) as usize;
                    }
                }
                let e = (k.weight(dx, dy) - inside as f64 / 4096.0).abs();
                worst = worst.max(e);
                se += e * e;
                n += 1;
            }
        }
        let spans = k.spans.len();
        println!(
            "kernel r={r}: {spans} spans for {} rows, worst coverage error {worst:.3}, rms {:.4}",
            2 * k.reach + 1,
            (se / n as f64).sqrt()
        );
        assert!(worst < 0.15, "r={r}: worst coverage error {worst}");
    }
}

#[test]
fn point_blurs_into_flat_disc_with_sharp_rim() {
    let (w, h) = (81, 81);
    let mut img = RgbPlanes::new(w, h, 0.0);
    for ch in 0..3 {
        img.c[ch][40 * w + 40] = 1.0;
    }
    let r = 20.0f32;
    let out = disc_blur(&img, r);
    let centre = out.c[0][40 * w + 40];
    let area = std::f32::consts::PI * r * r;
    println!(
        "point → disc r={r}: centre {centre:.6}, 1/(πr²) {:.6}",
        1.0 / area
    );
    // Horizontal, vertical and diagonal profiles.
    let mut profile = String::new();
    for d in 0..=23 {
        let hz = out.c[0][40 * w + 40 + d] / centre;
        let vt = out.c[0][(40 + d) * w + 40] / centre;
        profile.push_str(&format!(" {d}:{hz:.2}/{vt:.2}"));
        if (d as f32) <= r - 1.0 {
            assert!(
                (hz - 1.0).abs() < 0.01 && (vt - 1.0).abs() < 0.01,
                "not flat at {d}"
            );
        }
        if (d as f32) >= r + 1.0 {
            assert!(hz < 1e-6 && vt < 1e-6, "not zero outside at {d}");
        }
    }
    println!("profile (horizontal/vertical, relative to centre):{profile}");
    // Diagonal: the rim falls from ~1 to ~0 within 2 px around r.
    for d in 0..=20usize {
        let dist = (2.0f32).sqrt() * d as f32;
        let v = out.c[0][(40 + d) * w + 40 + d] / centre;
        if dist <= r - 1.0 {
            assert!((v - 1.0).abs() < 0.01, "diag not flat at {dist}");
        } else if dist >= r + 1.0 {
            assert!(v < 1e-6, "diag not zero at {dist}");
        }
    }
    assert!((centre * area - 1.0).abs() < 0.01, "centre {centre}");
    // A Gaussian of the same energy would have its centre far above the mean and no plateau.
}

/// 10 %–90 % width of the falling rim along a row profile (relative to the plateau at `x0`).
fn rim_width(row: &[f32], x0: usize) -> f32 {
    let top = row[x0];
    let cross = |level: f32| {
        let mut x = x0;
        while x + 1 < row.len() && row[x + 1] > level * top {
            x += 1;
        }
        // Linear interpolation between x and x + 1.
        let (a, b) = (row[x], row.get(x + 1).copied().unwrap_or(0.0));
        x as f32 + (a - level * top) / (a - b).max(1e-12)
    };
    cross(0.1) - cross(0.9)
}

#[test]
fn reduced_path_keeps_bokeh_rims_sharp() {
    // A single light through the reduced-resolution path: the disc's rim (10–90 %) widens from
    // ~1 px to about k px. The (r, k) pairs are what 12 MP gets at strength 15, 30, 50, 80.
    for (r, k) in [(15.7f32, 3usize), (35.4, 4), (68.1, 5), (130.8, 6)] {
        let n = (2.0 * r) as usize + 8 * k + 16;
        let c = n / 2;
        let mut img = RgbPlanes::new(n, n, 0.0);
        for ch in 0..3 {
            img.c[ch][c * n + c] = 1.0;
        }
        let params = RenderParams {
            radius: r,
            highlights: 0.0,
            aperture: Default::default(),
        };
        let alpha = Plane::new(n, n, 0.0);
        let fast = render_linear_with_factor(&img, &img, &alpha, &params, k);
        let exact = disc_blur(&img, r);
        let row = |p: &RgbPlanes| p.c[1][c * n..(c + 1) * n].to_vec();
        let (wf, we) = (rim_width(&row(&fast), c), rim_width(&row(&exact), c));
        let plateau = fast.c[1][c * n + c] / exact.c[1][c * n + c];
        println!(
            "rim r={r} k={k}: 10-90% rim width {wf:.1} px (full-res {we:.1} px) = {:.1}% of r; plateau {plateau:.3}",
            100.0 * wf / r
        );
        assert!(wf <= 1.6 * k as f32 + 1.0, "rim too soft: {wf}");
        assert!((plateau - 1.0).abs() < 0.05, "plateau {plateau}");
    }
}

#[test]
fn energy_preserved_and_borders_not_darkened() {
    let (w, h) = (220, 190);
    // Flat border: content only in the middle, more than 2r + 1 away from the frame edges (so no
    // kernel that sees content is clipped by the border): the blur then conserves the total.
    let img = from_fn(w, h, |x, y| {
        let inner = (65..155).contains(&x) && (65..125).contains(&y);
        let v = if inner { rng_val(x, y) } else { 0.3 };
        [v, 0.5 * v, 0.3]
    });
    for r in [4.0f32, 12.5, 30.0] {
        let out = disc_blur(&img, r);
        for ch in 0..3 {
            let m_in: f64 = img.c[ch].iter().map(|&v| v as f64).sum::<f64>() / (w * h) as f64;
            let m_out: f64 = out.c[ch].iter().map(|&v| v as f64).sum::<f64>() / (w * h) as f64;
            println!("energy r={r} ch={ch}: mean in {m_in:.5} out {m_out:.5}");
            assert!((m_in - m_out).abs() < 1e-4 * m_in, "r={r} ch={ch}");
        }
    }
    // Constant image: every pixel, borders and corners included, stays the constant.
    let flat = RgbPlanes::new(w, h, 0.5);
    for r in [3.0f32, 17.0, 60.0] {
        let out = disc_blur(&flat, r);
        let worst = out
            .c
            .iter()
            .flatten()
            .map(|v| (v - 0.5).abs())
            .fold(0.0f32, f32::max);
        println!("constant image r={r}: worst deviation {worst:.2e}");
        assert!(worst < 1e-4, "r={r} worst {worst}");
        // Same through the full render path (reduced resolution, plate fill).
        let out = render_linear(
            &flat,
            &flat,
            &Plane::new(w, h, 0.0),
            &RenderParams {
                radius: r,
                highlights: 0.5,
                aperture: Default::default(),
            },
        );
        let worst = out
            .c
            .iter()
            .flatten()
            .map(|v| (v - 0.5).abs())
            .fold(0.0f32, f32::max);
        println!("render_linear constant r={r}: worst deviation {worst:.2e}");
        assert!(worst < 1e-4, "render r={r} worst {worst}");
    }
}

fn rng_val(x: usize, y: usize) -> f32 {
    let mut r = Rng((x as u64 * 7919 + y as u64 * 104_729) | 1);
    r.next();
    r.next()
}

/// A red subject disc (soft 3 px edge) on a green/blue textured background.
fn halo_scene(w: usize, h: usize, cx: f32, cy: f32, rs: f32) -> (RgbPlanes, RgbPlanes, Plane) {
    let mut alpha = Plane::new(w, h, 0.0);
    let mut img = RgbPlanes::new(w, h, 0.0);
    let mut fg = RgbPlanes::new(w, h, 0.0);
    for y in 0..h {
        for x in 0..w {
            let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
            let a = ((rs - d) / 3.0 + 0.5).clamp(0.0, 1.0);
            let t = rng_val(x, y);
            let stripes = if (x / 6 + y / 9) % 2 == 0 { 1.0 } else { 0.4 };
            let bgc = [
                0.03,
                0.35 * stripes + 0.2 * t,
                0.5 - 0.2 * stripes + 0.1 * t,
            ];
            let fgc = [0.9, 0.05, 0.04];
            let i = y * w + x;
            alpha.data[i] = a;
            for ch in 0..3 {
                fg.c[ch][i] = fgc[ch];
                img.c[ch][i] = a * fgc[ch] + (1.0 - a) * bgc[ch];
            }
        }
    }
    (img, fg, alpha)
}

/// Mean red in the ring `[rs + 3, rs + 3 + width]` around the subject.
fn ring_red(img: &RgbPlanes, cx: f32, cy: f32, r0: f32, r1: f32) -> f64 {
    let (mut s, mut n) = (0.0f64, 0usize);
    for y in 0..img.height {
        for x in 0..img.width {
            let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
            if d >= r0 && d < r1 {
                s += img.c[0][y * img.width + x] as f64;
                n += 1;
            }
        }
    }
    s / n as f64
}

#[test]
fn no_halo_around_subject() {
    let (w, h) = (260, 200);
    let (cx, cy, rs) = (130.0, 100.0, 45.0);
    let (img, fg, alpha) = halo_scene(w, h, cx, cy, rs);
    let bg_red = 0.03;
    for r in [6.0f32, 15.0, 40.0] {
        let params = RenderParams {
            radius: r,
            highlights: 0.0,
            aperture: Default::default(),
        };
        let out = render_linear(&img, &fg, &alpha, &params);
        // Naive: blur everything, then composite the same way.
        let blurred = disc_blur(&img, r);
        let mut naive = RgbPlanes::new(w, h, 0.0);
        for i in 0..w * h {
            let a = alpha.data[i];
            for ch in 0..3 {
                naive.c[ch][i] = a * fg.c[ch][i] + (1.0 - a) * blurred.c[ch][i];
            }
        }
        let (r0, r1) = (rs + 2.0, rs + 2.0 + r.min(20.0));
        let ours = ring_red(&out, cx, cy, r0, r1) - bg_red;
        let theirs = ring_red(&naive, cx, cy, r0, r1) - bg_red;
        println!(
            "halo r={r}: excess red in ring {r0}..{r1}: ours {ours:.4}, naive blur-everything {theirs:.4}"
        );
        assert!(ours.abs() < 0.01, "halo {ours}");
        assert!(theirs > 0.05, "naive version should show a halo ({theirs})");
    }
}

#[test]
fn subject_pixels_unchanged() {
    let (w, h) = (200, 160);
    let (img, _, alpha) = halo_scene(w, h, 100.0, 80.0, 40.0);
    // F = image (what a foreground estimator returns where α ≈ 1).
    for r in [0.3f32, 5.0, 25.0, 70.0] {
        for hl in [0.0f32, 1.0] {
            let out = render_linear(
                &img,
                &img,
                &alpha,
                &RenderParams {
                    radius: r,
                    highlights: hl,
                    aperture: Default::default(),
                },
            );
            let mut n = 0;
            for i in 0..w * h {
                if alpha.data[i] >= 0.98 {
                    n += 1;
                    for ch in 0..3 {
                        assert_eq!(out.c[ch][i], img.c[ch][i], "r={r} pixel {i}");
                    }
                }
            }
            assert!(n > 1000);
        }
    }
}

#[test]
fn strength_mapping_is_monotone_resolution_independent_and_calibrated() {
    let sizes = [(1732usize, 1155usize), (4000, 3000), (6000, 4000)];
    for &(w, h) in &sizes {
        let diag = (w as f32).hypot(h as f32);
        let mut prev = 0.0f32;
        for s in 1..=100 {
            let r = blur_radius_px(s as f32, w, h);
            assert!(r > prev, "not increasing at {s} for {w}x{h}");
            prev = r;
        }
        let line: Vec<String> = [1.0f32, 15.0, 30.0, 50.0, 80.0, 100.0]
            .iter()
            .map(|&s| format!("{s}:{:.1}px", blur_radius_px(s, w, h)))
            .collect();
        println!("{w}x{h} (diag {diag:.0}): {}", line.join(" "));
    }
    // Same fraction of the diagonal at 2 MP and 24 MP.
    for s in [1.0f32, 15.0, 30.0, 60.0, 100.0] {
        let f2 = blur_radius_px(s, 1732, 1155) / (1732f32).hypot(1155.0);
        let f24 = blur_radius_px(s, 6000, 4000) / (6000f32).hypot(4000.0);
        assert!(
            (f2 - f24).abs() < 1e-6 * f2.max(1e-6) + 1e-9,
            "s={s}: {f2} vs {f24}"
        );
    }
    // Strength 100 ≈ 85 mm f/1.2 at 2 m: CoC diameter ≈ 8.7 % of the width of a 3:2 frame.
    let d = 2.0 * blur_radius_px(100.0, 6000, 4000) / 6000.0;
    println!(
        "strength 100: CoC diameter {:.2} % of width (max radius fraction of diagonal {:.4})",
        d * 100.0,
        max_radius_fraction()
    );
    assert!((d - 0.087).abs() < 0.002, "diameter fraction {d}");
    for s in [5.0f32, 15.0, 30.0, 50.0, 80.0, 100.0] {
        let r = blur_radius_px(s, 4000, 3000);
        let k = working_factor(r, 4000, 3000);
        println!(
            "12 MP strength {s}: radius {r:.1} px, working factor {k}, working radius {:.1}",
            r / k as f32
        );
    }
    // Strength 1 is barely visible: about a pixel of radius on 12 MP.
    let r1 = blur_radius_px(1.0, 4000, 3000);
    assert!(r1 > 0.5 && r1 < 2.0, "strength 1 → {r1}");
}

#[test]
fn highlights_bloom_into_brighter_discs_and_stay_in_range() {
    let (w, h) = (120, 120);
    let mut img = RgbPlanes::new(w, h, 0.02);
    for y in 58..61 {
        for x in 58..61 {
            for ch in 0..3 {
                img.c[ch][y * w + x] = 1.0;
            }
        }
    }
    // A large flat bright area (0.9, below clipping): must come back unchanged.
    for y in 0..30 {
        for x in 0..w {
            for ch in 0..3 {
                img.c[ch][y * w + x] = 0.9;
            }
        }
    }
    let alpha = Plane::new(w, h, 0.0);
    let render = |hl: f32| {
        render_linear(
            &img,
            &img,
            &alpha,
            &RenderParams {
                radius: 12.0,
                highlights: hl,
                aperture: Default::default(),
            },
        )
    };
    let off = render(0.0);
    let on = render(1.0);
    let c = 59 * w + 59;
    let edge = 59 * w + 59 + 9; // inside the disc, near the rim
    let bg = 100 * w + 20;
    println!(
        "highlights: disc centre {:.4} → {:.4}, near rim {:.4} → {:.4}, background {:.4} → {:.4}",
        off.c[1][c], on.c[1][c], off.c[1][edge], on.c[1][edge], off.c[1][bg], on.c[1][bg]
    );
    assert!(on.c[1][c] > 3.0 * off.c[1][c], "boosted disc not brighter");
    assert!(
        on.c[1][edge] - on.c[1][bg] > 3.0 * (off.c[1][edge] - off.c[1][bg]),
        "disc not more visible"
    );
    for v in on.c.iter().flatten() {
        assert!(v.is_finite() && *v >= 0.0 && *v <= 1.02, "out of range {v}");
    }
    let flat = on.c[0][5 * w + 60];
    println!("flat 0.9 area after boost+tone-map: {flat:.5}");
    assert!(
        (flat - 0.9).abs() < 1e-3,
        "flat bright area changed: {flat}"
    );
    // Many clipped lights piled up by the blur: soft-clipped, never above the shoulder.
    let hot = RgbPlanes::new(64, 64, 1.0);
    let out = render_linear(
        &hot,
        &hot,
        &Plane::new(64, 64, 0.0),
        &RenderParams {
            radius: 10.0,
            highlights: 1.0,
            aperture: Default::default(),
        },
    );
    let max = out.c.iter().flatten().fold(0.0f32, |m, &v| m.max(v));
    println!("all-clipped image after boost+tone-map: max {max:.4}");
    assert!((0.99..=1.02).contains(&max), "max {max}");
}

#[test]
fn tiny_radius_is_identity_and_kernel_is_normalised() {
    let (w, h) = (50, 40);
    let img = synthetic(w, h).remove(4).1;
    let out = render_linear(
        &img,
        &img,
        &Plane::new(w, h, 0.0),
        &RenderParams {
            radius: 0.3,
            highlights: 1.0,
            aperture: Default::default(),
        },
    );
    assert_eq!(out, img);
    assert_eq!(disc_blur(&img, 0.4), img);
    let k = DiscKernel::new(9.5);
    assert!((k.total() - std::f64::consts::PI * 90.25).abs() < 1e-9);
}
