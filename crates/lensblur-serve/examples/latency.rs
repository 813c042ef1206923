//! Server-side latency of what the web app does, in process (no HTTP): analysis on upload, the
//! preview re-render per slider move (render + JPEG encode at ≤ 2 MP), and the full-resolution
//! download (render + JPEG encode). Real photos from `../shared/data`, one 2 MP as is and the same
//! photo upscaled to 12 MP. Strengths are interleaved; best and median of the repeats are printed.
//!
//! `cargo run --release -p lensblur-serve --example latency [REPEATS]`

use std::path::Path;
use std::time::{Duration, Instant};

use lensblur::io::{self, DecodeOptions, EncodeOptions, Format, Metadata, Photo};
use lensblur::matte::RtenBackend;
use lensblur::pipeline::{downscale_photo, fit_pixels};
use lensblur::{analyse, render, AnalyseOptions, Matter, RenderOptions};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn stats(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    let spec = lensblur::models::find("u2netp")?;
    let matter = Matter::new(Box::new(RtenBackend::load(
        &shared.join("models").join(spec.file),
        spec.input.clone(),
        0,
    )?));
    let base = io::decode_file(
        &shared.join("data/portraits/p_09ba26b4.jpg"),
        &DecodeOptions::default(),
    )?;
    let big = {
        let (w, h) = (base.rgb.width * 2366 / 1000, base.rgb.height * 2366 / 1000);
        Photo {
            rgb: lensblur::resample::resize_rgb(&base.rgb, w, h),
            ..base.clone()
        }
    };
    println!("threads: {}", rayon::current_num_threads());
    println!("| photo | stage | best ms | median ms |");
    println!("|---|---|---|---|");
    for photo in [&base, &big] {
        let (w, h) = (photo.rgb.width, photo.rgb.height);
        let label = format!("{w}×{h} ({:.1} MP)", (w * h) as f64 / 1e6);
        let mut t_an = Vec::new();
        let mut analysis = None;
        for _ in 0..reps.min(3) {
            let t = Instant::now();
            analysis = Some(analyse(photo, &matter, &AnalyseOptions::default())?);
            t_an.push(ms(t.elapsed()));
        }
        let analysis = analysis.ok_or("no analysis")?;
        let t = Instant::now();
        let (pw, ph) = fit_pixels(w, h, 2_000_000);
        let small_photo = downscale_photo(photo, pw, ph);
        let small = analysis.downscaled(pw, ph);
        let t_down = ms(t.elapsed());
        let jpeg = |q| EncodeOptions {
            quality: q,
            ..EncodeOptions::for_format(Format::Jpeg)
        };
        let (mut pr, mut pe, mut fr, mut fe) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            for strength in [10.0, 30.0, 50.0, 80.0, 100.0] {
                let opts = RenderOptions {
                    strength,
                    ..Default::default()
                };
                let t = Instant::now();
                let img = render(&small_photo, &small, &opts)?;
                pr.push(ms(t.elapsed()));
                let t = Instant::now();
                io::encode(&img, None, &Metadata::default(), &jpeg(85))?;
                pe.push(ms(t.elapsed()));
            }
            for strength in [30.0, 80.0] {
                let opts = RenderOptions {
                    strength,
                    ..Default::default()
                };
                let t = Instant::now();
                let img = render(photo, &analysis, &opts)?;
                fr.push(ms(t.elapsed()));
                let t = Instant::now();
                io::encode(&img, None, &photo.meta, &jpeg(92))?;
                fe.push(ms(t.elapsed()));
            }
        }
        let preview_total: Vec<f64> = pr.iter().zip(&pe).map(|(a, b)| a + b).collect();
        let full_total: Vec<f64> = fr.iter().zip(&fe).map(|(a, b)| a + b).collect();
        let rows: Vec<(String, Vec<f64>)> = vec![
            ("analysis (model + refine + foreground)".into(), t_an),
            (
                format!("preview setup (downscale to {pw}×{ph})"),
                vec![t_down],
            ),
            ("preview render".into(), pr),
            ("preview JPEG q85 encode".into(), pe),
            ("**preview re-render total**".into(), preview_total),
            ("full-res render".into(), fr),
            ("full-res JPEG q92 encode".into(), fe),
            ("**full-res download total**".into(), full_total),
        ];
        for (name, mut v) in rows {
            let (best, med) = stats(&mut v);
            println!("| {label} | {name} | {best:.0} | {med:.0} |");
        }
    }
    Ok(())
}
