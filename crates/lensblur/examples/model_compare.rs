//! Matte models side by side on real ground truth: coarse-matte quality, refined quality and time.
//!
//! `cargo run --release -p lensblur --example model_compare -- NAME=FILE [NAME=FILE …]`
//!
//! NAME is a manifest entry (its input spec is used; the rten refusal of entries rten computes
//! wrongly is bypassed, so they can be measured), FILE the model file. For each model:
//! * pets (Oxford-IIIT, 13 whole photos): IoU of α > 0.5 against the mask, raw and after matting;
//! * matting crops (10 × 320², real alpha): SAD and MSE (unknown region) of the refined matte —
//!   a salient-object model on a close-up crop is a weak test (see shared/data/README.md);
//! * mean inference time (model only).
//!
//! `LB_DUMP=DIR` writes each model's raw output and the exact input tensor for the photos in
//! `photos/` as little-endian f32 files, to compare with onnxruntime (`scripts/` has no Python for
//! this; the report in the README names the numbers).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lensblur::buffer::{Plane, RgbPlanes};
use lensblur::matte::refine::{refine, RefineMethod, RefineOptions};
use lensblur::matte::{coarse_matte, preprocess, MatteBackend, RtenBackend};
use lensblur::models;

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

fn iou(a: &Plane, mask: &Plane) -> f64 {
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
}

/// (SAD, MSE over the trimap's unknown region) on 8-bit-quantised alphas.
fn sad_mse(a: &Plane, gt: &Plane, tri: &Plane) -> (f64, f64) {
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

fn write_f32(path: &Path, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("write dump");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: model_compare NAME=FILE [NAME=FILE …]");
        std::process::exit(2);
    }
    let refined = RefineOptions {
        method: RefineMethod::Matting,
    };
    println!("model | pets IoU raw | pets IoU matting | crops SAD | crops MSE | ms/inference");
    for arg in &args {
        let (name, file) = arg.split_once('=').expect("NAME=FILE");
        let spec = models::find(name).expect("manifest name");
        let backend = RtenBackend::load(Path::new(file), spec.input.clone(), 0).expect("load");
        let mut time = Duration::ZERO;
        let mut runs = 0u32;
        let mut run = |img: &RgbPlanes| {
            let t = Instant::now();
            let cm = coarse_matte(&backend, img).expect("infer");
            time += t.elapsed();
            runs += 1;
            cm
        };

        let pets = data().join("pets");
        let mut names: Vec<String> = std::fs::read_dir(pets.join("images"))
            .expect("pets")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().replace(".jpg", ""))
            .collect();
        names.sort();
        let (mut raw_iou, mut ref_iou) = (0.0, 0.0);
        for n in &names {
            let img = rgb(&pets.join("images").join(format!("{n}.jpg")));
            let mask = gray(&pets.join("trimaps").join(format!("{n}.png")));
            let cm = run(&img);
            let raw = refine(
                &img,
                &cm.map,
                &RefineOptions {
                    method: RefineMethod::None,
                },
            );
            let r = refine(&img, &cm.map, &refined);
            let (a, b) = (iou(&raw, &mask), iou(&r, &mask));
            eprintln!("{name} {n:28} {a:.4} {b:.4}");
            raw_iou += a;
            ref_iou += b;
        }
        let np = names.len() as f64;

        let crops = data().join("matting");
        let (mut sad, mut mse) = (0.0, 0.0);
        for i in 0..10 {
            let img = rgb(&crops.join(format!("{i}_image.png")));
            let gt = gray(&crops.join(format!("{i}_alpha.png")));
            let tri = gray(&crops.join(format!("{i}_trimap.png")));
            let cm = run(&img);
            let (s, m) = sad_mse(&refine(&img, &cm.map, &refined), &gt, &tri);
            eprintln!("{name} crop {i} SAD {s:.2} MSE {m:.4}");
            sad += s;
            mse += m;
        }

        if let Ok(dir) = std::env::var("LB_DUMP") {
            for photo in ["astronaut.png", "chelsea.png", "coffee.png"] {
                let img = rgb(&data().join("photos").join(photo));
                let input = preprocess(&img, backend.input_spec());
                write_f32(
                    &Path::new(&dir).join(format!("in_{name}_{photo}.f32")),
                    &input,
                );
                let out = backend.infer(input).expect("infer");
                write_f32(
                    &Path::new(&dir).join(format!("out_{name}_{photo}.f32")),
                    &out,
                );
            }
        }

        println!(
            "{name} | {:.4} | {:.4} | {:.2} | {:.4} | {:.0}",
            raw_iou / np,
            ref_iou / np,
            sad / 10.0,
            mse / 10.0,
            time.as_secs_f64() * 1000.0 / runs.max(1) as f64
        );
    }
}
