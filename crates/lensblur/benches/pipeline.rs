//! File→file benchmark of the whole pipeline on a 12 MP photo (a real photo upscaled), printing
//! per-stage times and peak memory for strength 30 and 80 at 1 and 2 threads.
//!
//! `cargo bench -p lensblur --bench pipeline [-- --photo PATH --mp 12 --runs 3]`
//! Each configuration runs in a child process so peak memory (VmHWM) is its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use lensblur::buffer::RgbPlanes;
use lensblur::io::{self, DecodeOptions, EncodeOptions, Format};
use lensblur::matte::RtenBackend;
use lensblur::{analyse, render, AnalyseOptions, Matter, RenderOptions};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Upscales a real photo to about `mp` megapixels and writes it as a JPEG (q 92).
fn make_input(photo: &Path, mp: f64, out: &Path) {
    let p = io::decode_file(photo, &DecodeOptions::default()).expect("decode source photo");
    let scale = (mp * 1e6 / p.rgb.len() as f64).sqrt();
    let (w, h) = (
        (p.rgb.width as f64 * scale).round() as usize,
        (p.rgb.height as f64 * scale).round() as usize,
    );
    let big: RgbPlanes = lensblur::resample::resize_rgb(&p.rgb, w, h);
    let bytes = io::encode(
        &big,
        None,
        &p.meta,
        &EncodeOptions {
            format: Format::Jpeg,
            quality: 92,
            bit_depth: 8,
        },
    )
    .expect("encode");
    std::fs::write(out, bytes).expect("write input");
}

fn child(input: &Path, threads: usize, strength: f32, runs: usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    pool.install(|| {
        let spec = lensblur::models::find("u2netp").expect("manifest");
        let t = Instant::now();
        let backend = RtenBackend::load(
            &shared().join("models/u2netp.onnx"),
            spec.input.clone(),
            threads,
        )
        .expect("load model");
        let load_ms = t.elapsed().as_secs_f64() * 1e3;
        let matter = Matter::new(Box::new(backend));
        let out_path =
            std::env::temp_dir().join(format!("lensblur-bench-{threads}-{strength}.jpg"));
        let mut best: Option<Vec<(String, f64)>> = None;
        for _ in 0..runs {
            let mut st: Vec<(String, f64)> = Vec::new();
            let total = Instant::now();
            let t = Instant::now();
            let photo = io::decode_file(input, &DecodeOptions::default()).expect("decode");
            st.push(("decode".into(), t.elapsed().as_secs_f64() * 1e3));
            let analysis = analyse(&photo, &matter, &AnalyseOptions::default()).expect("analyse");
            for (n, d) in &analysis.timings {
                st.push((n.to_string(), d.as_secs_f64() * 1e3));
            }
            let t = Instant::now();
            let out = render(
                &photo,
                &analysis,
                &RenderOptions {
                    strength,
                    ..Default::default()
                },
            )
            .expect("render");
            st.push(("render".into(), t.elapsed().as_secs_f64() * 1e3));
            let t = Instant::now();
            let bytes = io::encode(
                &out,
                None,
                &photo.meta,
                &EncodeOptions {
                    format: Format::Jpeg,
                    quality: 92,
                    bit_depth: 8,
                },
            )
            .expect("encode");
            io::write_atomic(&out_path, &bytes, true).expect("write");
            st.push(("encode+write".into(), t.elapsed().as_secs_f64() * 1e3));
            st.push(("TOTAL".into(), total.elapsed().as_secs_f64() * 1e3));
            let better = best
                .as_ref()
                .map(|b| st.last().map(|x| x.1) < b.last().map(|x| x.1))
                .unwrap_or(true);
            if better {
                best = Some(st);
            }
        }
        let _ = std::fs::remove_file(&out_path);
        let st = best.unwrap_or_default();
        let cells: Vec<String> = st.iter().map(|(n, v)| format!("{n}={v:.0}")).collect();
        println!(
            "RESULT threads={threads} strength={strength} load={load_ms:.0} {} peak_mb={:.0}",
            cells.join(" "),
            peak_rss_mb()
        );
    });
}

fn main() {
    if let Some(input) = arg("--child") {
        let threads: usize = arg("--threads").and_then(|v| v.parse().ok()).unwrap_or(1);
        let strength: f32 = arg("--strength")
            .and_then(|v| v.parse().ok())
            .unwrap_or(30.0);
        let runs: usize = arg("--runs").and_then(|v| v.parse().ok()).unwrap_or(3);
        child(Path::new(&input), threads, strength, runs);
        return;
    }
    let photo = arg("--photo")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared().join("data/portraits/p_0865636e.jpg"));
    let mp: f64 = arg("--mp").and_then(|v| v.parse().ok()).unwrap_or(12.0);
    let runs = arg("--runs").unwrap_or_else(|| "3".into());
    let input = std::env::temp_dir().join(format!("lensblur-bench-input-{mp}mp.jpg"));
    make_input(&photo, mp, &input);
    let meta = io::decode_file(&input, &DecodeOptions::default()).expect("decode input");
    println!(
        "input: {} upscaled to {}x{} ({:.1} MP), JPEG q92; best of {runs} runs, ms",
        photo.display(),
        meta.rgb.width,
        meta.rgb.height,
        meta.rgb.len() as f64 / 1e6
    );
    let exe = std::env::current_exe().expect("current exe");
    for threads in [1usize, 2] {
        for strength in [30.0f32, 80.0] {
            let out = Command::new(&exe)
                .args([
                    "--child",
                    input.to_str().expect("utf-8"),
                    "--threads",
                    &threads.to_string(),
                    "--strength",
                    &strength.to_string(),
                    "--runs",
                    &runs,
                ])
                .env("RTEN_NUM_THREADS", threads.to_string())
                .output()
                .expect("run child");
            let text = String::from_utf8_lossy(&out.stdout);
            match text.lines().find(|l| l.starts_with("RESULT")) {
                Some(l) => println!("{}", &l[7..]),
                None => println!(
                    "threads={threads} strength={strength}: child failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        }
    }
    let _ = std::fs::remove_file(&input);
}
