//! Times model inference alone:
//! `cargo run --release --example model_time -- [THREADS] [NAME=FILE …]` (default: u2netp from the
//! shared mirror). Several models are run interleaved, round by round, so machine load hits all alike.
use std::path::PathBuf;
use std::time::Instant;

use lensblur::matte::{MatteBackend, RtenBackend};

fn main() -> lensblur::Result<()> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(1);
    let mut named: Vec<(String, PathBuf)> = args
        .filter_map(|a| {
            a.split_once('=')
                .map(|(n, f)| (n.to_string(), PathBuf::from(f)))
        })
        .collect();
    if named.is_empty() {
        named.push((
            "u2netp".into(),
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/models/u2netp.onnx"),
        ));
    }
    let mut backends = Vec::new();
    for (name, path) in &named {
        let spec = lensblur::models::find(name)?;
        let b = RtenBackend::load(path, spec.input.clone(), threads)?;
        let s = spec.input.size;
        backends.push((name.clone(), b, vec![0.1f32; 3 * s * s]));
    }
    for _ in 0..5 {
        for (name, b, input) in &backends {
            let t = Instant::now();
            b.infer(input.clone())?;
            println!(
                "{name} {threads} thread(s): {:.0} ms",
                t.elapsed().as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}
