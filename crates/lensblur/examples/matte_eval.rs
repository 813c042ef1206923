//! Matte refinement speed: refine + foreground at 1, 3 and 12 MP (an upscaled portrait).
//!
//! `cargo run --release -p lensblur --example matte_eval`
//!
//! Quality against ground truth is `lensblur eval ../shared/data` (the README's table).

use std::path::{Path, PathBuf};
use std::time::Instant;

use lensblur::buffer::RgbPlanes;
use lensblur::color::planes_to_linear;
use lensblur::matte::foreground::estimate_foreground;
use lensblur::matte::refine::{refine, RefineOptions};
use lensblur::resample::resize_rgb;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn rgb(p: &Path) -> RgbPlanes {
    let im = image::open(p).expect("image").to_rgb32f();
    RgbPlanes::from_interleaved(im.width() as usize, im.height() as usize, im.as_raw())
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
    speed();
}
