//! Matte refinement and foreground estimation against real ground truth (see
//! `shared/data/README.md`) and synthetic composites. Numbers are printed; run with `--nocapture`.

use std::path::{Path, PathBuf};

use lensblur::buffer::{Plane, RgbPlanes};
use lensblur::matte::foreground::estimate_foreground;
use lensblur::matte::refine::{guided_filter, refine, solve_trimap, RefineMethod, RefineOptions};
use lensblur::resample::resize_plane;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn rgb(p: &Path) -> RgbPlanes {
    let im = image::open(p).expect("image").to_rgb32f();
    RgbPlanes::from_interleaved(im.width() as usize, im.height() as usize, im.as_raw())
}

fn gray(p: &Path) -> Plane {
    let im = image::open(p).expect("image").to_luma8();
    let (w, h) = (im.width() as usize, im.height() as usize);
    Plane::from_vec(w, h, im.as_raw().iter().map(|&v| v as f32).collect())
}

/// SAD (÷1000) on 8-bit-quantised alphas; `gt` in 0..255.
fn sad(a: &Plane, gt: &Plane) -> f64 {
    a.data
        .iter()
        .zip(&gt.data)
        .map(|(&a, &g)| ((a.clamp(0.0, 1.0) * 255.0).round() as f64 - g as f64).abs() / 255.0)
        .sum::<f64>()
        / 1000.0
}

/// GT alpha as a 320-px model would give it on a ~2.5 MP photo: 1/8 scale plus a 3×3 blur.
fn coarsen(gt01: &Plane) -> Plane {
    let c = resize_plane(gt01, gt01.width / 8, gt01.height / 8);
    let (w, h) = (c.width, c.height);
    let mut out = c.clone();
    for y in 0..h {
        for x in 0..w {
            let (mut s, mut n) = (0.0, 0.0);
            for yy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for xx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    s += c.data[yy * w + xx];
                    n += 1.0;
                }
            }
            out.data[y * w + x] = s / n;
        }
    }
    out
}

struct Crop {
    img: RgbPlanes,
    gt: Plane,
    gt01: Plane,
    tri01: Plane,
}

fn crops() -> Vec<Crop> {
    let d = data().join("matting");
    (0..10)
        .map(|n| {
            let img = rgb(&d.join(format!("{n}_image.png")));
            let gt = gray(&d.join(format!("{n}_alpha.png")));
            let tri = gray(&d.join(format!("{n}_trimap.png")));
            let gt01 = Plane::from_vec(
                gt.width,
                gt.height,
                gt.data.iter().map(|v| v / 255.0).collect(),
            );
            let tri01 = Plane::from_vec(
                tri.width,
                tri.height,
                tri.data
                    .iter()
                    .map(|&v| match v as u8 {
                        0 => 0.0,
                        255 => 1.0,
                        _ => 0.5,
                    })
                    .collect(),
            );
            Crop {
                img,
                gt,
                gt01,
                tri01,
            }
        })
        .collect()
}

#[test]
fn solve_trimap_on_ground_truth_trimaps() {
    let (mut solved, mut trivial) = (0.0, 0.0);
    for (n, c) in crops().iter().enumerate() {
        let a = solve_trimap(&c.img, &c.tri01);
        assert!(a
            .data
            .iter()
            .all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
        let (s, t) = (sad(&a, &c.gt), sad(&c.tri01, &c.gt));
        println!("crop {n}: solve_trimap SAD {s:.2}, trivial fill SAD {t:.2}");
        solved += s;
        trivial += t;
    }
    println!("total SAD: solve_trimap {solved:.1}, trivial {trivial:.1}");
    // Measured 45.3 (trivial 138.2).
    assert!(solved <= 55.0, "solve_trimap SAD {solved}");
    assert!(
        solved < 0.45 * trivial,
        "solve_trimap {solved} vs trivial {trivial}"
    );
}

#[test]
fn refine_beats_coarse_matte() {
    let (mut coarse_sad, mut refined_sad, mut guided_sad) = (0.0, 0.0, 0.0);
    let (mut coarse_all, mut refined_all) = (0.0, 0.0);
    for (n, c) in crops().iter().enumerate() {
        let coarse = coarsen(&c.gt01);
        let up = refine(
            &c.img,
            &coarse,
            &RefineOptions {
                method: RefineMethod::None,
            },
        );
        let gf = refine(
            &c.img,
            &coarse,
            &RefineOptions {
                method: RefineMethod::Guided,
            },
        );
        let mt = refine(&c.img, &coarse, &RefineOptions::default());
        let (su, sg, sm) = (sad(&up, &c.gt), sad(&gf, &c.gt), sad(&mt, &c.gt));
        println!("crop {n}: coarse {su:.2}, guided {sg:.2}, matting {sm:.2}");
        coarse_all += su;
        refined_all += sm;
        // Crop 9 is glass: transparency with refraction breaks every colour-line model, and no
        // refinement of a coarse matte recovers it; scored separately.
        if n != 9 {
            coarse_sad += su;
            refined_sad += sm;
            guided_sad += sg;
        }
    }
    println!(
        "crops 0-8 SAD: coarse {coarse_sad:.1}, guided {guided_sad:.1}, matting {refined_sad:.1}; \
         all: coarse {coarse_all:.1}, matting {refined_all:.1}"
    );
    // Measured 16.6 vs 27.9 (0.59×).
    assert!(
        refined_sad <= 0.7 * coarse_sad,
        "{refined_sad} vs {coarse_sad}"
    );
    assert!(
        refined_all < 0.85 * coarse_all,
        "{refined_all} vs {coarse_all}"
    );
}

#[test]
fn pets_end_to_end_iou() {
    use lensblur::matte::{coarse_matte, RtenBackend};
    use lensblur::models::InputSpec;
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/models/u2netp.onnx");
    let spec = InputSpec::rembg_u2net("input.1", 320);
    let backend = RtenBackend::load(&model, spec, 0).expect("model");
    let d = data().join("pets");
    let mut names: Vec<String> = std::fs::read_dir(d.join("images"))
        .expect("pets")
        .filter_map(|e| e.ok())
        .map(|e| {
            e.file_name()
                .to_string_lossy()
                .trim_end_matches(".jpg")
                .to_string()
        })
        .collect();
    names.sort();
    let iou = |a: &Plane, mask: &Plane| {
        let (mut i, mut u) = (0usize, 0usize);
        for (&av, &mv) in a.data.iter().zip(&mask.data) {
            if mv == 255.0 {
                continue;
            }
            let (p, g) = (av > 0.5, mv > 0.0);
            i += (p && g) as usize;
            u += (p || g) as usize;
        }
        i as f64 / u.max(1) as f64
    };
    let (mut raw, mut refined) = (0.0, 0.0);
    for name in &names {
        let img = rgb(&d.join("images").join(format!("{name}.jpg")));
        let mask = gray(&d.join("trimaps").join(format!("{name}.png")));
        let cm = coarse_matte(&backend, &img).expect("inference");
        let r = iou(
            &refine(
                &img,
                &cm.map,
                &RefineOptions {
                    method: RefineMethod::None,
                },
            ),
            &mask,
        );
        let m = iou(&refine(&img, &cm.map, &RefineOptions::default()), &mask);
        println!("{name:28} raw {r:.4} refined {m:.4}");
        raw += r;
        refined += m;
    }
    let n = names.len() as f64;
    let (raw, refined) = (raw / n, refined / n);
    println!("mean IoU: raw {raw:.4}, refined {refined:.4}");
    // Measured raw 0.9173, refined 0.9195. The remaining error is semantic (a person taken as the
    // subject, a missed body part), which no edge refinement can fix.
    const BOUND: f64 = 0.919;
    assert!(raw < BOUND, "raw {raw}");
    assert!(refined >= BOUND, "refined {refined}");
}

#[test]
fn foreground_removes_old_background() {
    let (w, h) = (96, 80);
    let mut alpha = Plane::new(w, h, 0.0);
    let mut truth = RgbPlanes::new(w, h, 0.0);
    let mut img = RgbPlanes::new(w, h, 0.0);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            // Soft disc plus hair-like stripes hanging out of it.
            let r = (((x as f32 - 40.0).powi(2) + (y as f32 - 40.0).powi(2)).sqrt() - 22.0) / 4.0;
            let mut a = (0.5 - r).clamp(0.0, 1.0);
            if x > 55 && x % 4 == 0 && (20..60).contains(&y) {
                a = a.max(0.6 * (1.0 - (x as f32 - 56.0) / 40.0).max(0.0));
            }
            alpha.data[i] = a;
            let f = [0.8, 0.55 + 0.1 * (y as f32 / h as f32), 0.3];
            let b = [0.05, 0.2 + 0.3 * (x as f32 / w as f32), 0.9];
            for c in 0..3 {
                truth.c[c][i] = f[c];
                img.c[c][i] = a * f[c] + (1.0 - a) * b[c];
            }
        }
    }
    let est = estimate_foreground(&img, &alpha);
    let (mut e_est, mut e_img, mut n) = (0.0f64, 0.0f64, 0usize);
    for i in 0..w * h {
        let a = alpha.data[i];
        for c in 0..3 {
            let v = est.c[c][i];
            assert!(v.is_finite());
            if a >= 0.98 {
                assert_eq!(v, img.c[c][i], "opaque pixel changed");
            }
            if a > 0.0 && a < 0.98 {
                e_est += (a * (v - truth.c[c][i])).abs() as f64;
                e_img += (a * (img.c[c][i] - truth.c[c][i])).abs() as f64;
                n += 1;
            }
        }
    }
    let (e_est, e_img) = (e_est / n as f64, e_img / n as f64);
    println!("mean |α(F̂−F)| {e_est:.4} vs |α(I−F)| {e_img:.4}");
    assert!(e_est < 0.3 * e_img, "{e_est} vs {e_img}");
}

#[test]
fn guided_filter_constant_and_edges() {
    let (w, h) = (50, 40);
    let mut guide = RgbPlanes::new(w, h, 0.0);
    for i in 0..w * h {
        guide.c[0][i] = (i % 7) as f32 / 7.0;
        guide.c[1][i] = (i % 11) as f32 / 11.0;
        guide.c[2][i] = (i % 3) as f32 / 3.0;
    }
    let flat = Plane::new(w, h, 0.4);
    let q = guided_filter(&guide, &flat, 4, 1e-3);
    assert!(
        q.data.iter().all(|v| (v - 0.4).abs() < 1e-4),
        "constant not kept"
    );
    // Guide = input: an edge in both survives (self-guided filtering is edge-preserving).
    let mut step = RgbPlanes::new(w, h, 0.0);
    let mut p = Plane::new(w, h, 0.0);
    for y in 0..h {
        for x in w / 2..w {
            let i = y * w + x;
            p.data[i] = 1.0;
            for c in 0..3 {
                step.c[c][i] = 1.0;
            }
        }
    }
    let q = guided_filter(&step, &p, 5, 1e-4);
    let err: f32 = q.data.iter().zip(&p.data).map(|(a, b)| (a - b).abs()).sum();
    println!("guided step error {err}");
    assert!(err < 1.0, "edge smeared: {err}");
}

#[test]
fn robust_to_odd_inputs() {
    for (w, h) in [(8, 8), (9, 500), (500, 9), (33, 17)] {
        let mut img = RgbPlanes::new(w, h, 0.0);
        for i in 0..w * h {
            img.c[0][i] = (i % 5) as f32 / 5.0;
            img.c[1][i] = (i % 9) as f32 / 9.0;
            img.c[2][i] = 0.5;
        }
        let mut half = Plane::new(20, 20, 0.0);
        for y in 0..20 {
            for x in 10..20 {
                half.data[y * 20 + x] = 1.0;
            }
        }
        let nan = Plane::from_vec(4, 4, vec![f32::NAN; 16]);
        for coarse in [
            Plane::new(320, 320, 0.0),
            Plane::new(320, 320, 1.0),
            half,
            nan,
            Plane::new(1, 1, 0.5),
        ] {
            for method in [
                RefineMethod::None,
                RefineMethod::Guided,
                RefineMethod::Matting,
            ] {
                let a = refine(&img, &coarse, &RefineOptions { method });
                assert_eq!((a.width, a.height), (w, h));
                let bad = a
                    .data
                    .iter()
                    .find(|v| !(v.is_finite() && (0.0..=1.0).contains(*v)));
                assert!(
                    bad.is_none(),
                    "{w}x{h} {method:?} coarse {}x{}: {bad:?}",
                    coarse.width,
                    coarse.height
                );
                let f = estimate_foreground(&img, &a);
                assert!(f.c.iter().all(|c| c.iter().all(|v| v.is_finite())));
            }
        }
        let zero = refine(&img, &Plane::new(320, 320, 0.0), &RefineOptions::default());
        assert!(zero.data.iter().all(|&v| v == 0.0));
        let one = refine(&img, &Plane::new(320, 320, 1.0), &RefineOptions::default());
        assert!(one.data.iter().all(|&v| v == 1.0));
        let tri = Plane::new(w, h, 0.5);
        let a = solve_trimap(&img, &tri);
        assert!(a.data.iter().all(|v| v.is_finite()));
    }
}
