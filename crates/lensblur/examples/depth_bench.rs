//! Variable-radius (depth) render benchmark on a real photo with real disparity, upscaled.
//!
//! ```text
//! cargo run --release -p lensblur --example depth_bench [-- MEGAPIXELS [OUT.png]]
//! ```
//! Uses the Middlebury motorcycle (`../shared/data/depth/`): photo and ground-truth disparity,
//! upscaled to ~12 MP (default); the matte comes from u2netp (`../shared/models/u2netp.onnx`). Prints
//! the render-stage time (best of 3) at several strengths, uniform vs depth, in one run.
//!
//! `DEPTH_ONLY=N` renders only the depth path, N times (`STRENGTH`, default 50), and prints the best
//! wall and CPU time (for profilers, and for comparing binaries on a busy machine). With `OUT.png`
//! the table is skipped and a strength-60 render is written (`NO_GRAIN=1` without grain;
//! `DUMP_COL=X` prints the circle of confusion and matte down column X around the focal plane of
//! the motorcycle's floor at 12 MP).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lensblur::io::{decode_file, DecodeOptions, Photo};
use lensblur::matte::RtenBackend;
use lensblur::resample::resize_rgb;
use lensblur::{analyse, render, AnalyseOptions, Matter, RenderOptions};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn best_of(n: usize, mut f: impl FnMut()) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..n {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed());
    }
    best
}

/// User + system CPU time of this process (Linux `/proc/self/stat`, clock ticks of 10 ms); 0 where
/// unavailable.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `RUST_LOG=lensblur=debug` prints per-slice timings of the depth renderer.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mp: f64 = args.first().and_then(|v| v.parse().ok()).unwrap_or(12.0);
    let dir = shared().join("data/depth");
    let small = decode_file(&dir.join("motorcycle_left.png"), &DecodeOptions::default())?;
    let disp = lensblur::depth::load(
        &dir.join("motorcycle_disp.npz"),
        lensblur::depth::DepthOrder::NearIsLarge,
    )?;
    let s = (mp * 1e6 / (small.rgb.width * small.rgb.height) as f64).sqrt();
    let (w, h) = (
        (small.rgb.width as f64 * s) as usize,
        (small.rgb.height as f64 * s) as usize,
    );
    let photo = Photo {
        rgb: resize_rgb(&small.rgb, w, h),
        ..small
    };
    let spec = lensblur::models::find("u2netp")?;
    let backend = RtenBackend::load(&shared().join("models/u2netp.onnx"), spec.input.clone(), 0)?;
    let matter = Matter::new(Box::new(backend));
    let mut analysis = analyse(&photo, &matter, &AnalyseOptions::default())?;
    let flat = analysis.clone();
    let t = Instant::now();
    analysis.set_depth(&disp)?;
    println!(
        "{w}x{h} ({:.1} MP), {} threads; set_depth {:.0} ms",
        (w * h) as f64 / 1e6,
        rayon::current_num_threads(),
        t.elapsed().as_secs_f64() * 1e3
    );
    if std::env::var_os("DEPTH_ONLY").is_some() && args.get(1).is_none() {
        // For profilers: depth renders only, at `STRENGTH` (default 50).
        let strength = std::env::var("STRENGTH")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50.0);
        let opts = RenderOptions {
            strength,
            ..Default::default()
        };
        // `DEPTH_ONLY=N` renders N times (default 3), so a profile is mostly the render.
        let n = std::env::var("DEPTH_ONLY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3);
        // CPU time as well: on a busy machine it varies less than the wall clock.
        let mut cpu = f64::MAX;
        let d = best_of(n, || {
            let c0 = cpu_seconds();
            render(&photo, &analysis, &opts).expect("render");
            cpu = cpu.min(cpu_seconds() - c0);
        });
        println!(
            "depth render, strength {strength}: {:.0} ms wall, {:.0} ms CPU (best of {n})",
            d.as_secs_f64() * 1e3,
            cpu * 1e3
        );
        return Ok(());
    }
    if args.get(1).is_none() {
        println!(
            "| strength | uniform, no grain (ms) | uniform (ms) | depth (ms) | depth / uniform |"
        );
        println!("|---:|---:|---:|---:|---:|");
        for strength in [30.0f32, 50.0, 100.0] {
            let opts = RenderOptions {
                strength,
                ..Default::default()
            };
            let off = RenderOptions {
                grain: lensblur::grain::Grain::Off,
                ..opts.clone()
            };
            let u0 = best_of(3, || {
                render(&photo, &flat, &off).expect("render");
            });
            let u = best_of(3, || {
                render(&photo, &flat, &opts).expect("render");
            });
            let d = best_of(3, || {
                render(&photo, &analysis, &opts).expect("render");
            });
            println!(
                "| {strength} | {:.0} | {:.0} | {:.0} | {:.2} |",
                u0.as_secs_f64() * 1e3,
                u.as_secs_f64() * 1e3,
                d.as_secs_f64() * 1e3,
                d.as_secs_f64() / u.as_secs_f64()
            );
        }
    }
    if let Some(out) = args.get(1) {
        let opts = RenderOptions {
            strength: 60.0,
            grain: if std::env::var_os("NO_GRAIN").is_some() {
                lensblur::grain::Grain::Off
            } else {
                Default::default()
            },
            ..Default::default()
        };
        if let (Some(d), Ok(col)) = (&analysis.depth, std::env::var("DUMP_COL")) {
            let col: usize = col.parse()?;
            let focus = lensblur::depth::focus_disparity(&d.disparity, &analysis.alpha, opts.focus);
            let coc = lensblur::coc::coc_map(&d.background, focus, opts.strength);
            for y in 2595..2625 {
                let i = y * w + col;
                println!(
                    "{y} coc {:.3} alpha {:.4}",
                    coc.data[i], analysis.alpha.data[i]
                );
            }
        }
        let img = render(&photo, &analysis, &opts)?;
        let bytes = lensblur::io::encode(
            &img,
            None,
            &photo.meta,
            &lensblur::io::EncodeOptions {
                format: lensblur::io::Format::Png,
                quality: 92,
                bit_depth: 8,
            },
        )?;
        std::fs::write(out, bytes)?;
    }
    Ok(())
}
