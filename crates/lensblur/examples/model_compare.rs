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

use lensblur::buffer::RgbPlanes;
use lensblur::eval;
use lensblur::matte::refine::{refine, RefineMethod, RefineOptions};
use lensblur::matte::{coarse_matte, preprocess, MatteBackend, RtenBackend};
use lensblur::models;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
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

        let pets = eval::load_mask_set(&data().join("pets")).expect("pets");
        let (mut raw_iou, mut ref_iou) = (0.0, 0.0);
        for p in &pets {
            let cm = run(&p.image);
            let raw = refine(
                &p.image,
                &cm.map,
                &RefineOptions {
                    method: RefineMethod::None,
                },
            );
            let r = refine(&p.image, &cm.map, &refined);
            let (a, b) = (eval::iou(&raw, &p.mask), eval::iou(&r, &p.mask));
            eprintln!("{name} {:28} {a:.4} {b:.4}", p.name);
            raw_iou += a;
            ref_iou += b;
        }
        let np = pets.len() as f64;

        let crops = eval::load_matting_set(&data().join("matting")).expect("matting crops");
        let (mut sad, mut mse) = (0.0, 0.0);
        for c in &crops {
            let cm = run(&c.image);
            let a = refine(&c.image, &cm.map, &refined);
            let (s, m) = (eval::sad(&a, &c.alpha), eval::mse(&a, &c.alpha, &c.trimap));
            eprintln!("{name} crop {} SAD {s:.2} MSE {m:.4}", c.name);
            sad += s;
            mse += m;
        }
        let nc = crops.len().max(1) as f64;

        if let Ok(dir) = std::env::var("LB_DUMP") {
            for photo in ["astronaut.png", "chelsea.png", "coffee.png"] {
                let img = lensblur::io::decode_file(
                    &data().join("photos").join(photo),
                    &Default::default(),
                )
                .expect("photo")
                .rgb;
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
            sad / nc,
            mse / nc,
            time.as_secs_f64() * 1000.0 / runs.max(1) as f64
        );
    }
}
