use lensblur::buffer::RgbPlanes;
use lensblur::matte::{coarse_matte, RtenBackend};
use lensblur::models::InputSpec;
use std::path::Path;
fn main() {
    let spec = InputSpec {
        input_name: "input.1",
        size: 320,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
    let b = RtenBackend::load(Path::new("/work/shared/models/u2netp.onnx"), spec, 1).unwrap();
    let mut imgs: Vec<(String, RgbPlanes)> = vec![];
    for a in std::env::args().skip(1) {
        let im = image::open(&a).unwrap().to_rgb32f();
        imgs.push((
            a.clone(),
            RgbPlanes::from_interleaved(im.width() as usize, im.height() as usize, im.as_raw()),
        ));
    }
    // synthetic: flat grey, gradient, noise
    let (w, h) = (400usize, 300usize);
    let mut flat = RgbPlanes::new(w, h, 0.5);
    imgs.push(("flat".into(), flat.clone()));
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            flat.c[0][i] = x as f32 / w as f32;
            flat.c[1][i] = y as f32 / h as f32;
            flat.c[2][i] = 0.5;
        }
    }
    imgs.push(("gradient".into(), flat.clone()));
    let mut s = 12345u32;
    for c in 0..3 {
        for v in flat.c[c].iter_mut() {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            *v = (s % 1000) as f32 / 1000.0;
        }
    }
    imgs.push(("noise".into(), flat));
    for (n, im) in imgs {
        let t = std::time::Instant::now();
        let c = coarse_matte(&b, &im).unwrap();
        let raw_strong = 0;
        println!(
            "{n:60} conf {:.3} rawmax {:.3} cov {:.3} {:?} {raw_strong}",
            c.confidence,
            c.raw_max,
            c.coverage,
            t.elapsed()
        );
    }
}
