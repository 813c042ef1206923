//! Times model inference alone, rten against ONNX Runtime, interleaved, at 1 and 2 threads:
//!
//! ```text
//! ORT_DYLIB_PATH=…/libonnxruntime.so.1.32.0 \
//!   cargo run --release -p lensblur --features ort --example model_time -- [RUNS] [ISNET.onnx]
//! ```
//!
//! u2netp (320²) from `../shared/models`; ISNet (1024², the imgly fp16 file, input `input`) only when
//! its path is given. Prints median and range of RUNS (default 5) runs after one warm-up. Without the
//! `ort` feature or library only the rten column is filled.
use std::path::{Path, PathBuf};
use std::time::Instant;

use lensblur::matte::{load_backend, MatteBackend, Runtime};
use lensblur::models::ModelSpec;

fn main() -> lensblur::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(5);
    let u2netp = lensblur::models::find("u2netp")?;
    let mut models: Vec<(&str, PathBuf, &ModelSpec)> = vec![(
        "u2netp 320²",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/models/u2netp.onnx"),
        u2netp,
    )];
    if let Some(isnet) = args.get(2) {
        models.push((
            "ISNet fp16 1024²",
            PathBuf::from(isnet),
            lensblur::models::find("isnet")?,
        ));
    }
    let ort_ok = Runtime::Ort.compiled_in();
    println!("| model | threads | rten ms (median, range) | ort ms (median, range) | rten / ort |");
    println!("|---|---|---|---|---|");
    for (label, path, spec) in &models {
        for threads in [1, 2] {
            let rten = load_backend(path, spec, Runtime::Rten, threads)?;
            let ort = if ort_ok {
                match load_backend(path, spec, Runtime::Ort, threads) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        eprintln!("ort: {e}");
                        None
                    }
                }
            } else {
                None
            };
            let input = vec![0.1f32; 3 * spec.input.size * spec.input.size];
            let mut backends: Vec<&dyn MatteBackend> = vec![rten.as_ref()];
            backends.extend(ort.as_deref());
            let mut times = vec![Vec::new(); backends.len()];
            for b in &backends {
                b.infer(input.clone())?; // warm-up
            }
            for _ in 0..runs {
                for (b, t) in backends.iter().zip(times.iter_mut()) {
                    let start = Instant::now();
                    b.infer(input.clone())?;
                    t.push(start.elapsed().as_secs_f64() * 1e3);
                }
            }
            let cell = |t: &mut Vec<f64>| -> (f64, String) {
                t.sort_by(f64::total_cmp);
                let med = t[t.len() / 2];
                (med, format!("{med:.0} ({:.0}–{:.0})", t[0], t[t.len() - 1]))
            };
            let (r_med, r) = cell(&mut times[0]);
            let (o, ratio) = match times.get_mut(1) {
                Some(t) => {
                    let (o_med, o) = cell(t);
                    (o, format!("{:.2}×", r_med / o_med))
                }
                None => ("–".into(), "–".into()),
            };
            println!("| {label} | {threads} | {r} | {o} | {ratio} |");
        }
    }
    Ok(())
}
