//! Browser end-to-end: the real page in real headless Chromium (Playwright driving the system's
//! `/usr/bin/chromium`), against a real server: upload a photo, drag the slider and see the preview
//! change, before/after, matte, download — then decode the downloads here at full size.
//!
//! Needs `node`, Chromium and `e2e/node_modules` (`scripts/install-test-deps.sh` installs them).
//! Set `LENSBLUR_SKIP_BROWSER_TESTS=1` to skip; `LENSBLUR_E2E_OUT=DIR` keeps the screenshots.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use image::GenericImageView;

const PHOTO: &str = "portraits/p_0865636e.jpg";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn page_end_to_end_in_headless_chromium() {
    if std::env::var("LENSBLUR_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("skipped: LENSBLUR_SKIP_BROWSER_TESTS=1");
        return;
    }
    let chromium =
        std::env::var("LENSBLUR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let e2e = repo().join("e2e");
    let fix =
        "run scripts/install-test-deps.sh (or set LENSBLUR_SKIP_BROWSER_TESTS=1 to skip this test)";
    assert!(Path::new(&chromium).exists(), "{chromium} not found: {fix}");
    assert!(
        e2e.join("node_modules/playwright-core").is_dir(),
        "{} missing: {fix}",
        e2e.join("node_modules/playwright-core").display()
    );
    let out = match std::env::var_os("LENSBLUR_E2E_OUT") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("lensblur-e2e-{}", std::process::id())),
    };
    let _ = std::fs::remove_file(out.join("blur.png"));
    let _ = std::fs::remove_file(out.join("blur.jpg"));

    let server = Server::start(lensblur_serve::Limits::default());
    let photo_path = shared().join("data").join(PHOTO);
    let status = Command::new("node")
        .arg("run.mjs")
        .current_dir(&e2e)
        .env("LENSBLUR_URL", server.url("/"))
        .env("LENSBLUR_PHOTO", &photo_path)
        .env(
            "LENSBLUR_PHOTO_NO_SUBJECT",
            shared().join("data/photos/hubble_deep_field.jpg"),
        )
        .env("LENSBLUR_OUT", &out)
        .env("LENSBLUR_CHROMIUM", &chromium)
        .status()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): {fix}"));
    assert!(
        status.success(),
        "e2e/run.mjs failed ({status}); see its output above"
    );

    let (w, h) = decode(&photo(PHOTO)).dimensions();
    for file in ["blur.png", "blur.jpg"] {
        let bytes = std::fs::read(out.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            decode(&bytes).dimensions(),
            (w, h),
            "{file} is not full size"
        );
    }
    if std::env::var_os("LENSBLUR_E2E_OUT").is_none() {
        let _ = std::fs::remove_dir_all(&out);
    }
}
