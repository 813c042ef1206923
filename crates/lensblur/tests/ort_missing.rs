//! A bad `ORT_DYLIB_PATH` is a typed error, never a panic, and `Runtime::Auto` falls back to rten.
//! Its own test binary: ONNX Runtime is loaded once per process, so this process must see the bad
//! path first (one test, the variable set before any `ort` call).
#![cfg(feature = "ort")]

use std::path::Path;

use lensblur::matte::{load_backend, Runtime};
use lensblur::Error;

#[test]
fn a_file_that_is_not_onnxruntime_is_a_typed_error_and_auto_falls_back() {
    let dir = std::env::temp_dir().join(format!("lensblur-ort-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // Exists, so the dynamic loader itself is asked (and fails) rather than our existence check.
    let fake = dir.join("libonnxruntime.so.1.99.0");
    std::fs::write(&fake, b"not a shared library").expect("write");
    // SAFETY: the only test in this binary, run before anything reads the environment.
    std::env::set_var("ORT_DYLIB_PATH", &fake);

    let err = lensblur::matte::ort::library().expect_err("a text file is not a library");
    let text = err.to_string();
    assert!(matches!(err, Error::OrtLibrary { .. }), "{err:?}");
    assert!(text.contains("pip install onnxruntime"), "{text}");
    assert!(text.contains(&fake.display().to_string()), "{text}");

    let spec = lensblur::models::find("u2netp").expect("u2netp in manifest");
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/models")
        .join(spec.file);
    let explicit = load_backend(&model, spec, Runtime::Ort, 1)
        .expect_err("explicit ort without a library must fail");
    assert!(matches!(explicit, Error::OrtLibrary { .. }), "{explicit:?}");
    let auto = load_backend(&model, spec, Runtime::Auto, 1).expect("auto falls back to rten");
    assert_eq!(auto.runtime(), Some(Runtime::Rten));

    let _ = std::fs::remove_dir_all(&dir);
}
