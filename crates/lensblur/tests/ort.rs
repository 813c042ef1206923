//! The ONNX Runtime backend against the default `rten` one: same u2netp, same real photos from
//! `../shared/data`, same numbers within float noise. Needs the library in `ORT_DYLIB_PATH`
//! (`scripts/test.sh` fetches it); without it each test prints a skip line, or fails when
//! `LENSBLUR_REQUIRE_ORT=1` (CI) so a missing library cannot pass unnoticed.
#![cfg(feature = "ort")]

use std::path::{Path, PathBuf};

use lensblur::io::{decode_file, DecodeOptions, Photo};
use lensblur::matte::ort::OrtBackend;
use lensblur::matte::{load_backend, preprocess, MatteBackend, RtenBackend, Runtime};
use lensblur::models::ModelSpec;
use lensblur::{analyse, AnalyseOptions, Matter};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn u2netp() -> (&'static ModelSpec, PathBuf) {
    let spec = lensblur::models::find("u2netp").expect("u2netp in manifest");
    (spec, shared().join("models").join(spec.file))
}

/// True when the library is loaded; otherwise prints why and skips, or panics under
/// `LENSBLUR_REQUIRE_ORT=1`.
fn ort_available(test: &str) -> bool {
    match lensblur::matte::ort::library() {
        Ok(_) => true,
        Err(e) if std::env::var("LENSBLUR_REQUIRE_ORT").as_deref() == Ok("1") => {
            panic!("LENSBLUR_REQUIRE_ORT=1 but ONNX Runtime is unavailable: {e}")
        }
        Err(e) => {
            eprintln!("{test}: skipped, {e}");
            false
        }
    }
}

fn photo(rel: &str) -> Photo {
    decode_file(&shared().join("data").join(rel), &DecodeOptions::default())
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A portrait, an animal, a product and a frame with no subject (the model's output is then low and
/// flat, where relative errors would show first).
const PHOTOS: &[&str] = &[
    "portraits/p_0865636e.jpg",
    "portraits/p_22fc0130.jpg",
    "animals/sample1.jpg",
    "photos/coffee.png",
    "photos/hubble_deep_field.jpg",
];

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn raw_model_output_matches_rten() {
    if !ort_available("raw_model_output_matches_rten") {
        return;
    }
    let (spec, path) = u2netp();
    let rten = RtenBackend::load(&path, spec.input.clone(), 0).expect("rten loads u2netp");
    let ort = OrtBackend::load(&path, spec.input.clone(), 0).expect("ort loads u2netp");
    assert_eq!(ort.runtime(), Some(Runtime::Ort));
    let mut subjects = 0;
    for rel in PHOTOS {
        let input = preprocess(&photo(rel).rgb, &spec.input);
        let a = rten.infer(input.clone()).expect("rten runs");
        let b = ort.infer(input).expect("ort runs");
        let d = max_abs_diff(&a, &b);
        let peak = b.iter().copied().fold(f32::MIN, f32::max);
        eprintln!("{rel}: max |Δ| = {d:.2e}, peak {peak:.3}");
        assert!(d <= 1e-3, "{rel}: rten and ort differ by {d}");
        if peak > 0.9 {
            subjects += 1;
        }
    }
    // The comparison means something only if the maps are real mattes, not all zeros.
    assert!(subjects >= 4, "only {subjects} photos gave a confident map");
}

#[test]
fn final_alpha_matches_rten() {
    if !ort_available("final_alpha_matches_rten") {
        return;
    }
    let (spec, path) = u2netp();
    let rten = Matter::new(Box::new(
        RtenBackend::load(&path, spec.input.clone(), 0).expect("rten loads u2netp"),
    ));
    let ort = Matter::new(Box::new(
        OrtBackend::load(&path, spec.input.clone(), 0).expect("ort loads u2netp"),
    ));
    let opts = AnalyseOptions::default();
    for rel in &PHOTOS[..4] {
        let p = photo(rel);
        let a = analyse(&p, &rten, &opts).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let b = analyse(&p, &ort, &opts).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(a.no_subject(), b.no_subject(), "{rel}");
        assert!((a.confidence() - b.confidence()).abs() <= 1e-3, "{rel}");
        let n = a.alpha.data.len() as f64;
        let mean = a
            .alpha
            .data
            .iter()
            .zip(&b.alpha.data)
            .map(|(x, y)| f64::from((x - y).abs()))
            .sum::<f64>()
            / n;
        let far = a
            .alpha
            .data
            .iter()
            .zip(&b.alpha.data)
            .filter(|(x, y)| (*x - *y).abs() > 0.02)
            .count() as f64
            / n;
        let max = max_abs_diff(&a.alpha.data, &b.alpha.data);
        eprintln!("{rel}: alpha mean |Δ| = {mean:.2e}, max {max:.3}, share > 0.02: {far:.2e}");
        assert!(mean <= 1e-5, "{rel}: mean alpha difference {mean}");
        assert!(
            far <= 1e-5,
            "{rel}: {far} of the pixels differ by more than 0.02"
        );
        assert!(max <= 0.05, "{rel}: alpha differs by up to {max}");
    }
}

#[test]
fn auto_picks_ort_when_the_library_loads() {
    if !ort_available("auto_picks_ort_when_the_library_loads") {
        return;
    }
    let (spec, path) = u2netp();
    let auto = load_backend(&path, spec, Runtime::Auto, 1).expect("auto loads");
    assert_eq!(auto.runtime(), Some(Runtime::Ort));
    let rten = load_backend(&path, spec, Runtime::Rten, 1).expect("rten loads");
    assert_eq!(rten.runtime(), Some(Runtime::Rten));
}

#[test]
fn a_broken_model_file_is_a_typed_error() {
    if !ort_available("a_broken_model_file_is_a_typed_error") {
        return;
    }
    let (spec, _) = u2netp();
    let dir = std::env::temp_dir().join(format!("lensblur-ort-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("truncated.onnx");
    std::fs::write(&bad, b"\x08\x07not a model").expect("write");
    let err = OrtBackend::load(&bad, spec.input.clone(), 1).expect_err("garbage must not load");
    assert!(
        matches!(err, lensblur::Error::Model { .. }),
        "unexpected error {err:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn detector_finds_the_same_boxes_as_on_rten() {
    if !ort_available("detector_finds_the_same_boxes_as_on_rten") {
        return;
    }
    use lensblur::matte::detect::Detector;
    let path = shared().join("models/yolox_nano.onnx");
    let on_ort = Detector::load_on(&path, Runtime::Ort, 1).expect("ort loads the detector");
    assert_eq!(on_ort.runtime(), Runtime::Ort);
    let on_rten = Detector::load_on(&path, Runtime::Rten, 1).expect("rten loads the detector");
    assert_eq!(on_rten.runtime(), Runtime::Rten);
    let mut found = 0;
    for rel in [
        "portraits/p_71bcce3a.jpg",
        "animals/sample1.jpg",
        "photos/astronaut.png",
    ] {
        let p = photo(rel);
        let a = on_ort.detect(&p.rgb).expect("ort detects");
        let b = on_rten.detect(&p.rgb).expect("rten detects");
        assert_eq!(a.len(), b.len(), "{rel}: {a:?} vs {b:?}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.class, y.class, "{rel}");
            assert!((x.score - y.score).abs() < 1e-3, "{rel}: {x:?} vs {y:?}");
            for (u, v) in x.bbox.iter().zip(&y.bbox) {
                assert!((u - v).abs() < 0.5, "{rel}: {x:?} vs {y:?}");
            }
        }
        found += usize::from(!a.is_empty());
    }
    // The man, the cat and the astronaut are there to be found: an empty answer must not pass.
    assert!(found >= 2, "only {found} detections");
}
