//! Batch mode end to end (issue 4): resuming after a kill, bad files in a folder, mirroring,
//! name templates, dry runs, the JSON report, and the same look at 2 MP and 24 MP.
//! Real photos from ../shared/data are copied into a temp dir at test time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lensblur::io::{decode_file, DecodeOptions};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// A temp dir with its own model cache fed from the shared mirror (no network).
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lensblur"));
        c.current_dir(self.dir.path())
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("LENSBLUR_MODEL_MIRROR", shared().join("models"))
            .env_remove("LENSBLUR_LOG")
            .env_remove("LENSBLUR_ANALYSE_WORKERS");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).output().expect("run lensblur");
        eprintln!(
            "$ lensblur {}\n-> {:?}\n{}{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Copies a shared photo to `rel` inside the temp dir.
    fn photo(&self, shared_rel: &str, rel: &str) -> PathBuf {
        let dst = self.path(rel);
        if let Some(dir) = dst.parent() {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        std::fs::copy(shared().join("data").join(shared_rel), &dst).expect("copy photo");
        dst
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file under `dir`, relative, sorted (hidden ones included).
fn files(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    fn rec(root: &Path, d: &Path, v: &mut Vec<String>) {
        for e in std::fs::read_dir(d).expect("ls").flatten() {
            let p = e.path();
            if p.is_dir() {
                rec(root, &p, v);
            } else {
                v.push(
                    p.strip_prefix(root)
                        .expect("rel")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    if dir.is_dir() {
        rec(dir, dir, &mut v);
    }
    v.sort();
    v
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files(dir)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).expect("read");
            (f, bytes)
        })
        .collect()
}

fn decodes_fully(p: &Path) {
    let photo = decode_file(p, &DecodeOptions::default())
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", p.display()));
    assert!(photo.rgb.width > 0);
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read report")).expect("report is JSON")
}

const PETS: [&str; 8] = [
    "pets/images/Abyssinian_1.jpg",
    "pets/images/Bengal_185.jpg",
    "pets/images/British_Shorthair_102.jpg",
    "pets/images/British_Shorthair_104.jpg",
    "pets/images/British_Shorthair_106.jpg",
    "pets/images/British_Shorthair_108.jpg",
    "pets/images/Maine_Coon_203.jpg",
    "portraits/p_0865636e.jpg",
];

/// SIGKILL a batch right after its first output appears, then run it again: every output exists
/// exactly once and decodes fully, nothing was redone, the inputs are byte-identical, and a stale
/// temp file (what a kill during a write leaves) neither breaks the re-run nor becomes an output.
#[test]
fn killed_batch_resumes_without_loss_or_duplicates() {
    let env = Env::new();
    for (i, p) in PETS.iter().enumerate() {
        env.photo(p, &format!("in/{i:02}.jpg"));
    }
    let inputs = snapshot(&env.path("in"));
    let out_dir = env.path("out");

    let mut child = env
        .cmd()
        .args(["blur", "in", "--out-dir", "out", "-j", "1", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let outputs = files(&out_dir)
            .into_iter()
            .filter(|f| !f.starts_with('.'))
            .count();
        if outputs > 0 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    let after_kill: Vec<String> = files(&out_dir)
        .into_iter()
        .filter(|f| !f.starts_with('.'))
        .collect();
    assert!(!after_kill.is_empty(), "no output appeared within 120 s");
    assert!(
        after_kill.len() < PETS.len(),
        "the batch finished before the kill; the test needs more work per photo"
    );
    for f in &after_kill {
        decodes_fully(&out_dir.join(f));
    }
    let first_bytes = std::fs::read(out_dir.join(&after_kill[0])).expect("read");
    // What a kill during a write leaves: a hidden, truncated temp file.
    std::fs::write(
        out_dir.join(".lensblur-stale.tmp"),
        &first_bytes[..first_bytes.len() / 2],
    )
    .expect("write stale temp");

    let rerun = env.run(&["blur", "in", "--out-dir", "out", "--report", "r.json"]);
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    let expected: Vec<String> = (0..PETS.len())
        .map(|i| format!("{i:02}.blur.jpg"))
        .collect();
    let outputs: Vec<String> = files(&out_dir)
        .into_iter()
        .filter(|f| !f.starts_with('.'))
        .collect();
    assert_eq!(outputs, expected, "every output exactly once");
    for f in &outputs {
        decodes_fully(&out_dir.join(f));
    }
    assert_eq!(
        std::fs::read(out_dir.join(&after_kill[0])).expect("read"),
        first_bytes,
        "a finished output was redone"
    );
    let r = report(&env.path("r.json"));
    assert_eq!(r["totals"]["skipped"], after_kill.len());
    assert_eq!(r["totals"]["done"], PETS.len() - after_kill.len());
    assert_eq!(r["totals"]["failed"], 0);
    assert_eq!(snapshot(&env.path("in")), inputs, "inputs changed");
    // No temp file of the re-run is left behind (only the planted one).
    let hidden: Vec<String> = files(&out_dir)
        .into_iter()
        .filter(|f| f.starts_with('.'))
        .collect();
    assert_eq!(hidden, [".lensblur-stale.tmp"]);

    // A third run has nothing to do.
    let third = env.run(&["blur", "in", "--out-dir", "out"]);
    assert!(third.status.success());
    assert!(
        stderr(&third).contains(&format!("0 done, {} skipped", PETS.len())),
        "{}",
        stderr(&third)
    );
}

/// A folder with good photos, a truncated JPEG, an empty file, text named .jpg and a text file:
/// the good ones are done, the bad ones listed in the summary and the report, exit code 1; the
/// plain text file is ignored (counted), not an error.
#[test]
fn mixed_folder_good_done_bad_listed_report_fields() {
    let env = Env::new();
    env.photo(PETS[0], "in/a_good.jpg");
    env.photo(PETS[1], "in/b_good.jpg");
    let real = std::fs::read(shared().join("data").join(PETS[2])).expect("read");
    std::fs::write(env.path("in/c_truncated.jpg"), &real[..real.len() / 2]).expect("write");
    std::fs::write(env.path("in/d_empty.png"), b"").expect("write");
    std::fs::write(env.path("in/e_text.jpg"), b"not a photo at all\n").expect("write");
    std::fs::write(env.path("in/notes.txt"), b"shoot notes\n").expect("write");
    let inputs = snapshot(&env.path("in"));

    let out = env.run(&["blur", "in", "--out-dir", "out", "--report", "r.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for bad in ["c_truncated.jpg", "d_empty.png", "e_text.jpg"] {
        assert!(err.contains(bad), "{bad} not listed:\n{err}");
    }
    assert!(err.contains("3 failed"), "{err}");
    assert!(err.contains("1 non-photo"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        files(&env.path("out")),
        ["a_good.blur.jpg", "b_good.blur.jpg"]
    );
    assert_eq!(snapshot(&env.path("in")), inputs);

    let r = report(&env.path("r.json"));
    assert_eq!(r["totals"]["done"], 2);
    assert_eq!(r["totals"]["failed"], 3);
    assert_eq!(r["totals"]["unsupported"], 1);
    assert_eq!(r["settings"]["strength"], 30.0);
    assert_eq!(r["unsupported"][0], "in/notes.txt");
    let files = r["files"].as_array().expect("files");
    assert_eq!(files.len(), 5);
    let good = &files[0];
    assert_eq!(good["input"], "in/a_good.jpg");
    assert_eq!(good["output"], "out/a_good.blur.jpg");
    assert_eq!(good["status"], "done");
    let conf = good["matte_confidence"].as_f64().expect("confidence");
    assert!((0.0..=1.0).contains(&conf), "{conf}");
    assert!(good["width"].as_u64().expect("width") > 0);
    for stage in [
        "decode", "model", "refine", "render", "encode", "write", "total",
    ] {
        let ms = good["timings_ms"][stage].as_f64().unwrap_or(-1.0);
        assert!(ms >= 0.0, "timing {stage} missing: {good}");
    }
    let truncated = &files[2];
    assert_eq!(truncated["status"], "failed");
    assert!(
        truncated["error"]
            .as_str()
            .expect("error")
            .contains("truncated"),
        "{truncated}"
    );
    assert!(truncated["hint"].is_string());
    assert_eq!(files[3]["status"], "failed");
    assert_eq!(files[4]["status"], "failed");
}

/// `--recursive` mirrors the tree under --out-dir; a glob mirrors relative to its literal base;
/// `--name` renders its placeholders; without --recursive subfolders are left out (with a note).
#[test]
fn recursive_mirroring_globs_and_name_template() {
    let env = Env::new();
    env.photo(PETS[0], "shoot/a/x.jpg");
    env.photo(PETS[3], "shoot/b/c/y.jpg");
    env.photo(PETS[4], "shoot/z.jpg");
    // A PNG copy, to see {ext} follow each input and --format override it.
    let img = image::open(shared().join("data").join(PETS[5])).expect("open");
    img.save(env.path("shoot/b/w.png")).expect("save png");

    let out = env.run(&[
        "blur",
        "shoot",
        "-r",
        "--out-dir",
        "delivered",
        "--name",
        "{stem}_s{strength}_{in_ext}.{ext}",
        "-s",
        "20",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        files(&env.path("delivered")),
        [
            "a/x_s20_jpg.jpg",
            "b/c/y_s20_jpg.jpg",
            "b/w_s20_png.png",
            "z_s20_jpg.jpg"
        ]
    );
    for f in files(&env.path("delivered")) {
        decodes_fully(&env.path("delivered").join(f));
    }

    // Not recursive: only the top level, and a note about the subfolders.
    let flat = env.run(&["blur", "shoot", "--out-dir", "flat", "-f", "png"]);
    assert!(flat.status.success());
    assert_eq!(files(&env.path("flat")), ["z.blur.png"]);
    assert!(stderr(&flat).contains("--recursive"), "{}", stderr(&flat));

    // A quoted glob, expanded by lensblur, mirrored below its base `shoot`.
    let globbed = env.run(&["blur", "shoot/**/*.JPG", "--out-dir", "g", "--dry-run"]);
    assert!(globbed.status.success());
    let listing = String::from_utf8_lossy(&globbed.stdout).into_owned();
    for line in [
        "write shoot/a/x.jpg -> g/a/x.blur.jpg",
        "write shoot/b/c/y.jpg -> g/b/c/y.blur.jpg",
        "write shoot/z.jpg -> g/z.blur.jpg",
    ] {
        assert!(listing.contains(line), "{line:?} missing from\n{listing}");
    }
    assert!(!listing.contains("w.png"), "{listing}");

    // A bad template is a usage error.
    let bad = env.run(&["blur", "shoot", "--name", "{nope}.jpg"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// `--dry-run` lists what would be written and skipped and writes nothing at all.
#[test]
fn dry_run_writes_nothing() {
    let env = Env::new();
    env.photo(PETS[0], "in/a.jpg");
    env.photo(PETS[1], "in/b.jpg");
    std::fs::create_dir_all(env.path("out")).expect("mkdir");
    std::fs::write(env.path("out/b.blur.jpg"), b"already delivered").expect("write");
    let before = snapshot(env.dir.path());

    let out = env.run(&[
        "blur",
        "in",
        "--out-dir",
        "out",
        "--dry-run",
        "--report",
        "r.json",
        "--contact-sheet",
        "sheet.jpg",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listing.contains("write in/a.jpg -> out/a.blur.jpg"),
        "{listing}"
    );
    assert!(
        listing.contains("skip  in/b.jpg (output exists"),
        "{listing}"
    );
    assert_eq!(
        snapshot(env.dir.path()),
        before,
        "--dry-run wrote something"
    );
}

fn psnr(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let mse = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    10.0 * (255.0 * 255.0 / mse.max(1e-12)).log10()
}

/// The same strength gives the same look at 2 MP and at 24 MP: one real portrait resized to both
/// sizes, blurred in one batch, both outputs shrunk to 800 px wide and compared. The blur itself
/// is far bigger than the difference (each output is compared with its own input as a control).
#[test]
fn same_strength_same_look_at_2mp_and_24mp() {
    let env = Env::new();
    let src = image::open(shared().join("data/portraits/p_0865636e.jpg"))
        .expect("open")
        .to_rgb8();
    let (w, h) = (src.width(), src.height());
    std::fs::create_dir_all(env.path("in")).expect("mkdir");
    let size = |mp: f64| {
        let s = (mp * 1e6 / (w as f64 * h as f64)).sqrt();
        ((w as f64 * s).round() as u32, (h as f64 * s).round() as u32)
    };
    let (w2, h2) = size(2.0);
    let (w24, h24) = size(24.0);
    let small = image::imageops::resize(&src, w2, h2, image::imageops::FilterType::Triangle);
    let large = image::imageops::resize(&src, w24, h24, image::imageops::FilterType::Triangle);
    small.save(env.path("in/mp2.png")).expect("save");
    large.save(env.path("in/mp24.png")).expect("save");

    let out = env.run(&["blur", "in", "--out-dir", "out", "-s", "60", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shrink = |p: &str| {
        let img = image::open(env.path(p)).expect("open").to_rgb8();
        image::imageops::resize(
            &img,
            800,
            800 * h2 / w2,
            image::imageops::FilterType::Triangle,
        )
    };
    let (o2, o24) = (shrink("out/mp2.blur.png"), shrink("out/mp24.blur.png"));
    let (i2, i24) = (shrink("in/mp2.png"), shrink("in/mp24.png"));
    let same_look = psnr(&o2, &o24);
    let inputs_agree = psnr(&i2, &i24);
    let blur_2 = psnr(&i2, &o2);
    let blur_24 = psnr(&i24, &o24);
    eprintln!(
        "PSNR at 800 px: 2 MP vs 24 MP outputs {same_look:.1} dB (inputs {inputs_agree:.1} dB); \
         input vs output (the blur) {blur_2:.1} dB at 2 MP, {blur_24:.1} dB at 24 MP"
    );
    assert!(
        same_look > 42.0,
        "2 MP and 24 MP outputs differ: {same_look:.1} dB"
    );
    assert!(
        blur_2 < same_look - 8.0 && blur_24 < same_look - 8.0,
        "the blur must be far larger than the 2 MP / 24 MP difference"
    );
}
