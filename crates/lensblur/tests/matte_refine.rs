//! Matte refinement and foreground estimation against real ground truth (see
//! `shared/data/README.md`) and synthetic composites. Numbers are printed; run with `--nocapture`.

use std::path::{Path, PathBuf};

use lensblur::buffer::{Plane, RgbPlanes};
use lensblur::eval::{self, coarsen, sad, MattingSample};
use lensblur::matte::foreground::estimate_foreground;
use lensblur::matte::refine::{guided_filter, refine, solve_trimap, RefineMethod, RefineOptions};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn crops() -> Vec<MattingSample> {
    eval::load_matting_set(&data().join("matting")).expect("matting crops")
}

#[test]
fn solve_trimap_on_ground_truth_trimaps() {
    let (mut solved, mut trivial) = (0.0, 0.0);
    for (n, c) in crops().iter().enumerate() {
        let a = solve_trimap(&c.image, &c.trimap);
        assert!(a
            .data
            .iter()
            .all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
        let (s, t) = (sad(&a, &c.alpha), sad(&c.trimap, &c.alpha));
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
        let coarse = coarsen(&c.alpha, 8);
        let up = refine(
            &c.image,
            &coarse,
            &RefineOptions {
                method: RefineMethod::None,
            },
        );
        let gf = refine(
            &c.image,
            &coarse,
            &RefineOptions {
                method: RefineMethod::Guided,
            },
        );
        let mt = refine(&c.image, &coarse, &RefineOptions::default());
        let (su, sg, sm) = (sad(&up, &c.alpha), sad(&gf, &c.alpha), sad(&mt, &c.alpha));
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
    // Measured 16.7 vs 27.9 (0.60×; 16.6 with 150 solver iterations instead of 120).
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
    let spec = lensblur::models::find("u2netp").expect("manifest");
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/models")
        .join(spec.file);
    let backend = RtenBackend::load(&model, spec.input.clone(), 0).expect("model");
    let pets = eval::load_mask_set(&data().join("pets")).expect("pets");
    let (mut raw, mut refined) = (0.0, 0.0);
    for p in &pets {
        let cm = coarse_matte(&backend, &p.image).expect("inference");
        let r = eval::iou(
            &refine(
                &p.image,
                &cm.map,
                &RefineOptions {
                    method: RefineMethod::None,
                },
            ),
            &p.mask,
        );
        let m = eval::iou(
            &refine(&p.image, &cm.map, &RefineOptions::default()),
            &p.mask,
        );
        println!("{:28} raw {r:.4} refined {m:.4}", p.name);
        raw += r;
        refined += m;
    }
    let n = pets.len() as f64;
    let (raw, refined) = (raw / n, refined / n);
    println!("mean IoU: raw {raw:.4}, refined {refined:.4}");
    // Measured raw 0.9173, refined 0.9191 (0.9193 with 150 solver iterations instead of 120). The remaining error is semantic (a person taken as the
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
