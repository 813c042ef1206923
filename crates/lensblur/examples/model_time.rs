//! Times u2netp inference alone: `cargo run --release --example model_time -- [THREADS]`.
use std::time::Instant;

use lensblur::matte::{MatteBackend, RtenBackend};

fn main() -> lensblur::Result<()> {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let spec = lensblur::models::find("u2netp")?;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/models/u2netp.onnx");
    let b = RtenBackend::load(&path, spec.input.clone(), threads)?;
    let input = vec![0.1f32; 3 * 320 * 320];
    for _ in 0..5 {
        let t = Instant::now();
        b.infer(input.clone())?;
        println!(
            "{threads} thread(s): {:.0} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}
