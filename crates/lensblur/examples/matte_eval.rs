//! Matte refinement quality and speed report.
//!
//! `cargo run --release -p lensblur --example matte_eval [quality|pets|speed|all]`
//!
//! * quality: the 10 matting crops (real alpha): SAD / MSE of the coarse input, the guided filter,
//!   band matting from a coarsened GT, and `solve_trimap` on the GT trimap;
//! * pets: u2netp + refinement, mean IoU vs the Oxford-IIIT masks;
//! * speed: refine + foreground at 1, 3 and 12 MP (an upscaled portrait).

use std::path::{Path, PathBuf};
use std::time::Instant;

use lensblur::buffer::{Plane, RgbPlanes};
use lensblur::color::planes_to_linear;
use lensblur::matte::foreground::estimate_foreground;
use lensblur::matte::refine::{refine, solve_trimap, RefineMethod, RefineOptions};
use lensblur::resample::{resize_plane, resize_rgb};

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

/// (SAD, MSE over unknown) on 8-bit-quantised alphas.
fn score(a: &Plane, gt: &Plane, tri: &Plane) -> (f64, f64) {
    let (mut sad, mut se, mut n) = (0.0f64, 0.0f64, 0usize);
    for i in 0..a.len() {
        let q = (a.data[i].clamp(0.0, 1.0) * 255.0).round() as f64 / 255.0;
        let g = gt.data[i] as f64 / 255.0;
        sad += (q - g).abs();
        if tri.data[i] == 128.0 {
            se += (q - g) * (q - g);
            n += 1;
        }
    }
    (sad / 1000.0, se / n.max(1) as f64)
}

/// GT alpha as a 320-px model would see it on a ~2.5 MP photo: 1/8 scale, then a 3×3 blur
/// (the model's own softness).
fn coarsen(gt: &Plane) -> Plane {
    let f: usize = std::env::var("LB_CF")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let c = resize_plane(gt, gt.width / f, gt.height / f);
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

fn quality() {
    let d = data().join("matting");
    let mut tot = [(0.0, 0.0); 5];
    println!("crop | coarse SAD/MSE | guided | matting(refine) | trivial trimap | solve_trimap");
    for n in 0..10 {
        let img = rgb(&d.join(format!("{n}_image.png")));
        let gt = gray(&d.join(format!("{n}_alpha.png")));
        let tri = gray(&d.join(format!("{n}_trimap.png")));
        let gt01 = Plane::from_vec(
            gt.width,
            gt.height,
            gt.data.iter().map(|v| v / 255.0).collect(),
        );
        // Coarse: GT at 1/6 scale (a 320-px model on a ~2 MP photo), as the model would give it.
        let coarse = coarsen(&gt01);
        let up = refine(
            &img,
            &coarse,
            &RefineOptions {
                method: RefineMethod::None,
            },
        );
        let gf = refine(
            &img,
            &coarse,
            &RefineOptions {
                method: RefineMethod::Guided,
            },
        );
        let t = Instant::now();
        let mt = refine(
            &img,
            &coarse,
            &RefineOptions {
                method: RefineMethod::Matting,
            },
        );
        let tm = t.elapsed();
        let tri01 = Plane::from_vec(
            tri.width,
            tri.height,
            tri.data
                .iter()
                .map(|&v| {
                    if v == 0.0 {
                        0.0
                    } else if v == 255.0 {
                        1.0
                    } else {
                        0.5
                    }
                })
                .collect(),
        );
        let t = Instant::now();
        let st = solve_trimap(&img, &tri01);
        let ts = t.elapsed();
        if let Ok(dir) = std::env::var("LB_DUMP") {
            for (nm, p) in [
                ("gt", &gt01),
                ("coarse", &up),
                ("guided", &gf),
                ("matting", &mt),
                ("solve", &st),
            ] {
                let buf: Vec<u8> = p
                    .data
                    .iter()
                    .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
                    .collect();
                image::GrayImage::from_raw(p.width as u32, p.height as u32, buf)
                    .expect("buf")
                    .save(format!("{dir}/{n}_{nm}.png"))
                    .expect("save");
            }
        }
        let s = [
            score(&up, &gt, &tri),
            score(&gf, &gt, &tri),
            score(&mt, &gt, &tri),
            score(&tri01, &gt, &tri),
            score(&st, &gt, &tri),
        ];
        for (t, s) in tot.iter_mut().zip(&s) {
            t.0 += s.0;
            t.1 += s.1;
        }
        println!(
            "{n} | {:.2}/{:.4} | {:.2}/{:.4} | {:.2}/{:.4} ({:.0} ms) | {:.2}/{:.4} | {:.2}/{:.4} ({:.0} ms)",
            s[0].0, s[0].1, s[1].0, s[1].1, s[2].0, s[2].1, tm.as_secs_f64() * 1e3, s[3].0, s[3].1, s[4].0, s[4].1, ts.as_secs_f64() * 1e3
        );
    }
    println!(
        "total SAD | {:.1} | {:.1} | {:.1} | {:.1} | {:.1}",
        tot[0].0, tot[1].0, tot[2].0, tot[3].0, tot[4].0
    );
    println!(
        "mean MSE | {:.4} | {:.4} | {:.4} | {:.4} | {:.4}",
        tot[0].1 / 10.0,
        tot[1].1 / 10.0,
        tot[2].1 / 10.0,
        tot[3].1 / 10.0,
        tot[4].1 / 10.0
    );
}

fn pets() {
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
    let methods = [
        RefineMethod::None,
        RefineMethod::Guided,
        RefineMethod::Matting,
    ];
    let mut tot = [0.0f64; 3];
    for name in &names {
        let img = rgb(&d.join("images").join(format!("{name}.jpg")));
        let mask = gray(&d.join("trimaps").join(format!("{name}.png")));
        let cm = coarse_matte(&backend, &img).expect("infer");
        if let Ok(dir) = std::env::var("LB_DUMP") {
            let m = &cm.map;
            let buf: Vec<u8> = m
                .data
                .iter()
                .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
                .collect();
            image::GrayImage::from_raw(m.width as u32, m.height as u32, buf)
                .expect("buf")
                .save(format!("{dir}/{name}_coarse.png"))
                .expect("save");
        }
        let mut line = format!("{name:28}");
        for (k, m) in methods.iter().enumerate() {
            let a = refine(&img, &cm.map, &RefineOptions { method: *m });
            let (mut i, mut u) = (0usize, 0usize);
            for (&av, &mv) in a.data.iter().zip(&mask.data) {
                if mv == 255.0 {
                    continue;
                }
                let p = av > 0.5;
                let g = mv > 0.0;
                i += (p && g) as usize;
                u += (p || g) as usize;
            }
            let iou = i as f64 / u.max(1) as f64;
            tot[k] += iou;
            line += &format!(" {iou:.4}");
        }
        println!("{line}");
    }
    let n = names.len() as f64;
    println!(
        "mean IoU: raw {:.4} guided {:.4} matting {:.4}",
        tot[0] / n,
        tot[1] / n,
        tot[2] / n
    );
}

fn speed() {
    let src = rgb(&data().join("portraits/p_015cd10e.jpg"));
    let coarse_src = {
        use lensblur::matte::{coarse_matte, RtenBackend};
        use lensblur::models::InputSpec;
        let model =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/models/u2netp.onnx");
        let spec = InputSpec::rembg_u2net("input.1", 320);
        let backend = RtenBackend::load(&model, spec, 0).expect("model");
        coarse_matte(&backend, &src).expect("infer").map
    };
    println!("threads: {}", rayon::current_num_threads());
    println!("MP | size | refine ms | foreground ms | total ms | checksums");
    for mp in [1.0f64, 3.0, 12.0] {
        let ar = src.width as f64 / src.height as f64;
        let h = ((mp * 1e6 / ar).sqrt()).round() as usize;
        let w = (h as f64 * ar).round() as usize;
        let img = resize_rgb(&src, w, h);
        let lin = planes_to_linear(&img);
        let mut best = (f64::MAX, f64::MAX);
        let mut sums = (0.0f64, 0.0f64);
        for _ in 0..3 {
            let t = Instant::now();
            let a = refine(&img, &coarse_src, &RefineOptions::default());
            let tr = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let f = estimate_foreground(&lin, &a);
            let tf = t.elapsed().as_secs_f64() * 1e3;
            // Checksums: an optimisation that should not change results must leave them equal.
            sums = (
                a.data.iter().map(|&v| v as f64).sum(),
                f.c.iter().flatten().map(|&v| v as f64).sum(),
            );
            best = (best.0.min(tr), best.1.min(tf));
        }
        println!(
            "{mp} | {w}x{h} | {:.0} | {:.0} | {:.0} | Σα {:.3} ΣF {:.3}",
            best.0,
            best.1,
            best.0 + best.1,
            sums.0,
            sums.1
        );
    }
}

fn main() {
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if what == "quality" || what == "all" {
        quality();
    }
    if what == "pets" || what == "all" {
        pets();
    }
    if what == "speed" || what == "all" {
        speed();
    }
}
