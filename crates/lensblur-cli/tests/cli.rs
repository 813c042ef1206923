//! The `lensblur` binary end to end: real photos, metadata, bad inputs, model install.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lensblur::io::{decode_file, DecodeOptions};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// A temp dir with its own model cache, fed from the shared mirror (no network).
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lensblur"));
        c.env("XDG_CACHE_HOME", self.path("cache"))
            .env("LENSBLUR_MODEL_MIRROR", shared().join("models"))
            .env_remove("LENSBLUR_LOG");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).output().expect("run lensblur");
        eprintln!(
            "$ lensblur {}\n-> {:?}\n{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Copies a shared photo into the temp dir (tests never write next to shared data).
    fn photo(&self, rel: &str) -> PathBuf {
        let src = shared().join("data").join(rel);
        let dst = self.path(src.file_name().and_then(|n| n.to_str()).expect("name"));
        std::fs::copy(&src, &dst).expect("copy photo");
        dst
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Inserts JPEG marker segments right after SOI (and after APP0/JFIF if present).
fn with_segments(jpeg: &[u8], segments: &[Vec<u8>]) -> Vec<u8> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let mut at = 2;
    if jpeg[2..4] == [0xFF, 0xE0] {
        at = 4 + u16::from_be_bytes([jpeg[4], jpeg[5]]) as usize;
    }
    let mut out = jpeg[..at].to_vec();
    for s in segments {
        out.extend_from_slice(s);
    }
    out.extend_from_slice(&jpeg[at..]);
    out
}

fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0xFF, marker];
    v.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// APP1 Exif with IFD0 = {Orientation, Make}.
fn exif_segment(orientation: u16) -> Vec<u8> {
    let mut t = b"Exif\0\0".to_vec();
    let tiff_start = t.len();
    t.extend_from_slice(b"II*\0");
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&2u16.to_le_bytes()); // two entries
                                              // Orientation: SHORT, count 1, value inline.
    t.extend_from_slice(&0x0112u16.to_le_bytes());
    t.extend_from_slice(&3u16.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&orientation.to_le_bytes());
    t.extend_from_slice(&[0, 0]);
    // Make: ASCII "LensTest\0" (9 bytes) at offset 38.
    t.extend_from_slice(&0x010Fu16.to_le_bytes());
    t.extend_from_slice(&2u16.to_le_bytes());
    t.extend_from_slice(&9u32.to_le_bytes());
    t.extend_from_slice(&38u32.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    assert_eq!(t.len() - tiff_start, 38);
    t.extend_from_slice(b"LensTest\0");
    segment(0xE1, &t)
}

/// A small but well-formed-looking ICC profile blob.
fn icc_profile() -> Vec<u8> {
    let mut p = vec![0u8; 300];
    p[..4].copy_from_slice(&300u32.to_be_bytes());
    p[12..16].copy_from_slice(b"mntr");
    p[16..20].copy_from_slice(b"RGB ");
    p[36..40].copy_from_slice(b"acsp");
    for (i, b) in p.iter_mut().enumerate().skip(128) {
        *b = (i * 7 % 251) as u8;
    }
    p
}

fn icc_segment(profile: &[u8]) -> Vec<u8> {
    let mut v = b"ICC_PROFILE\0".to_vec();
    v.extend_from_slice(&[1, 1]);
    v.extend_from_slice(profile);
    segment(0xE2, &v)
}

fn orientation_of(exif: &[u8]) -> Option<u16> {
    // Little- or big-endian TIFF, scan IFD0 for tag 0x0112.
    let le = exif.get(..2)? == b"II";
    let rd16 = |o: usize| -> Option<u16> {
        let b = [*exif.get(o)?, *exif.get(o + 1)?];
        Some(if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let rd32 = |o: usize| -> Option<u32> {
        let b = [
            *exif.get(o)?,
            *exif.get(o + 1)?,
            *exif.get(o + 2)?,
            *exif.get(o + 3)?,
        ];
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let ifd = rd32(4)? as usize;
    let n = rd16(ifd)? as usize;
    (0..n).find_map(|k| {
        let e = ifd + 2 + 12 * k;
        (rd16(e)? == 0x0112).then(|| rd16(e + 8)).flatten()
    })
}

#[test]
fn blur_writes_next_to_input_with_orientation_and_metadata() {
    let env = Env::new();
    let src = shared().join("data/portraits/p_0865636e.jpg");
    let bytes = std::fs::read(&src).expect("read");
    let original = decode_file(&src, &DecodeOptions::default()).expect("decode original");
    let (w, h) = (original.rgb.width, original.rgb.height);
    let profile = icc_profile();
    let rotated = with_segments(&bytes, &[exif_segment(6), icc_segment(&profile)]);
    let input = env.path("rotated.jpg");
    std::fs::write(&input, &rotated).expect("write");

    let out = env.run(&["blur", s(&input)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("installing"),
        "first use should say it installs the model"
    );
    let output = env.path("rotated.blur.jpg");
    let result = decode_file(&output, &DecodeOptions::default()).expect("decode output");
    // Orientation 6 = rotate 90° clockwise: the upright image is h × w.
    assert_eq!((result.rgb.width, result.rgb.height), (h, w));
    assert_eq!(
        result.meta.icc.as_deref(),
        Some(profile.as_slice()),
        "ICC lost"
    );
    let exif = result.meta.exif.as_deref().expect("EXIF lost");
    assert_eq!(
        orientation_of(exif),
        Some(1),
        "orientation must be reset to 1"
    );
    assert!(
        exif.windows(8).any(|w| w == b"LensTest"),
        "other EXIF fields lost"
    );
    // The input is untouched.
    assert_eq!(std::fs::read(&input).expect("read"), rotated);

    // A second run refuses to overwrite, a third with --overwrite replaces.
    let again = env.run(&["blur", s(&input)]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--overwrite"));
    let forced = env.run(&["blur", s(&input), "--overwrite", "-s", "60"]);
    assert!(forced.status.success());
}

#[test]
fn blur_to_png_at_strength_70_and_matte() {
    let env = Env::new();
    let input = env.photo("animals/sample1.jpg");
    let out_png = env.path("out.png");
    let out = env.run(&["blur", s(&input), "-o", s(&out_png), "--strength", "70"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let img = image::open(&out_png).expect("open png");
    let src = image::open(&input).expect("open jpg");
    assert_eq!((img.width(), img.height()), (src.width(), src.height()));
    assert_eq!(
        image::ImageFormat::from_path(&out_png).ok(),
        Some(image::ImageFormat::Png)
    );

    let matte = env.path("m.png");
    let out = env.run(&["matte", s(&input), "-o", s(&matte)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = image::open(&matte).expect("open matte");
    assert_eq!(m.color(), image::ColorType::L8, "matte must be 8-bit grey");
    assert_eq!((m.width(), m.height()), (src.width(), src.height()));
    let l = m.to_luma8();
    let fg = l.pixels().filter(|p| p[0] > 200).count() as f64 / l.len() as f64;
    assert!((0.05..0.9).contains(&fg), "implausible subject share {fg}");
}

#[test]
fn photo_without_subject_is_written_unblurred_unless_forced() {
    let env = Env::new();
    let input = env.photo("photos/hubble_deep_field.jpg");
    let out_png = env.path("out.png");
    let out = env.run(&["blur", s(&input), "-o", s(&out_png)]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("no clear subject"),
        "{}",
        stderr(&out)
    );
    let a = image::open(&input).expect("in").to_rgb8();
    let b = image::open(&out_png).expect("out").to_rgb8();
    assert_eq!(a, b, "unblurred output must equal the input pixels");
    let forced = env.path("forced.png");
    let out = env.run(&["blur", s(&input), "-o", s(&forced), "--force"]);
    assert!(out.status.success());
    let c = image::open(&forced).expect("forced").to_rgb8();
    assert_ne!(a, c, "--force must blur");
}

/// Each bad input: exit 1, a message naming the file, and no output left behind.
#[test]
fn bad_inputs_fail_cleanly() {
    let env = Env::new();
    let real = std::fs::read(shared().join("data/portraits/p_0865636e.jpg")).expect("read");
    let truncated = env.path("truncated.jpg");
    std::fs::write(&truncated, &real[..real.len() / 2]).expect("write");
    let empty = env.path("empty.jpg");
    std::fs::write(&empty, b"").expect("write");
    let text = env.path("text.jpg");
    std::fs::write(&text, b"this is not a photo, just text\n").expect("write");
    let tiny = env.path("tiny.png");
    image::RgbImage::from_pixel(1, 1, image::Rgb([9, 9, 9]))
        .save(&tiny)
        .expect("save");
    let missing = env.path("missing.jpg");

    for (input, expect) in [
        (&truncated, "truncat"),
        (&empty, "empty.jpg"),
        (&text, "text.jpg"),
        (&tiny, "too small"),
        (&missing, "missing.jpg"),
    ] {
        let out = env.run(&["blur", s(input), "-o", s(&env.path("out.jpg"))]);
        assert_eq!(out.status.code(), Some(1), "{}", input.display());
        let err = stderr(&out);
        assert!(err.contains(expect), "{}: {err}", input.display());
        assert!(!err.contains("panicked"), "{err}");
        assert!(!env.path("out.jpg").exists(), "partial output left behind");
    }

    // Over the pixel limit.
    let big = env.photo("animals/sample1.jpg");
    let out = env.run(&[
        "blur",
        s(&big),
        "--max-pixels",
        "1000",
        "-o",
        s(&env.path("o.jpg")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--max-pixels"), "{}", stderr(&out));
    assert!(!env.path("o.jpg").exists());

    // Unwritable output directory (a path under a regular file cannot exist, even for root).
    let blocker = env.path("blocker");
    std::fs::write(&blocker, b"x").expect("write");
    let target = blocker.join("out.jpg");
    let out = env.run(&["blur", s(&big), "-o", s(&target)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("blocker"), "{}", stderr(&out));
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .expect("ls")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");

    // Never overwrite the input.
    let before = std::fs::read(&big).expect("read");
    let out = env.run(&["blur", s(&big), "-o", s(&big)]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read(&big).expect("read"), before);
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    for args in [
        vec!["blur", "a.jpg", "--strength", "0"],
        vec!["blur", "a.jpg", "--strength", "abc"],
        vec!["blur"],
        vec!["blur", "a.jpg", "b.jpg", "-o", "single.jpg"],
        vec!["blur", "a.jpg", "-o", "out.gif"],
    ] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn models_list_install_path_from_mirror() {
    let env = Env::new();
    let dir = env.path("models");
    let list = env.run(&["models", "list", "--model-dir", s(&dir)]);
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        text.contains("u2netp") && text.contains("not installed"),
        "{text}"
    );

    let path = env.run(&["models", "path", "u2netp", "--model-dir", s(&dir)]);
    assert_eq!(
        path.status.code(),
        Some(1),
        "path of a missing model is an error"
    );

    // --no-install with an empty cache fails with a hint.
    let photo = env.photo("animals/sample1.jpg");
    let out = env.run(&["blur", s(&photo), "--model-dir", s(&dir), "--no-install"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("models install"), "{}", stderr(&out));

    let inst = env.run(&["models", "install", "--model-dir", s(&dir)]);
    assert!(inst.status.success(), "{}", stderr(&inst));
    let installed = dir.join("u2netp.onnx");
    assert!(installed.is_file());
    let path = env.run(&["models", "path", "u2netp", "--model-dir", s(&dir)]);
    assert!(path.status.success());
    assert_eq!(
        String::from_utf8_lossy(&path.stdout).trim(),
        installed.to_string_lossy()
    );
    let list = env.run(&["models", "list", "--model-dir", s(&dir)]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("installed"));

    // Warm cache: works with no mirror and no network.
    let out = env
        .cmd()
        .env_remove("LENSBLUR_MODEL_MIRROR")
        .args(["blur", s(&photo), "--model-dir", s(&dir), "--no-install"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));

    let unknown = env.run(&["models", "install", "no-such-model", "--model-dir", s(&dir)]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("no-such-model"));
}

#[test]
fn depth_map_changes_where_it_blurs_and_bad_maps_are_refused() {
    let env = Env::new();
    let photo = env.photo("depth/motorcycle_left.png");
    let disp = shared().join("data/depth/motorcycle_disp.npz");
    let (flat, deep) = (env.path("flat.png"), env.path("deep.png"));
    assert!(env
        .run(&[
            "blur",
            s(&photo),
            "-o",
            s(&flat),
            "-s",
            "70",
            "--grain",
            "off"
        ])
        .status
        .success());
    let out = env.run(&[
        "blur",
        s(&photo),
        "-o",
        s(&deep),
        "-s",
        "70",
        "--grain",
        "off",
        "--depth",
        s(&disp),
    ]);
    assert!(out.status.success());
    let (a, b) = (
        decode_file(&flat, &DecodeOptions::default()).expect("flat"),
        decode_file(&deep, &DecodeOptions::default()).expect("deep"),
    );
    // The floor just in front of the wheels (near the focal plane) keeps much more detail with depth
    // than with a flat background; detail = mean |horizontal difference| of a bottom strip.
    let detail = |p: &lensblur::io::Photo| {
        let (w, h) = (p.rgb.width, p.rgb.height);
        let g = &p.rgb.c[1];
        let mut sum = 0.0f64;
        for y in h * 82 / 100..h * 88 / 100 {
            for x in w / 10..w * 9 / 10 - 1 {
                sum += (g[y * w + x + 1] - g[y * w + x]).abs() as f64;
            }
        }
        sum
    };
    let (df, dd) = (detail(&a), detail(&b));
    assert!(
        dd > 1.15 * df,
        "floor detail with depth {dd:.1} vs flat {df:.1}"
    );
    // A map of another shape is a clear error that names the problem.
    let wrong = env.path("wrong.png");
    let img = image::GrayImage::from_pixel(100, 100, image::Luma([128]));
    img.save(&wrong).expect("save");
    let out = env.run(&[
        "blur",
        s(&photo),
        "-o",
        s(&env.path("x.png")),
        "--depth",
        s(&wrong),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("aspect"), "{}", stderr(&out));
    assert!(!env.path("x.png").exists());
}

/// Cells of the Markdown table row whose first cells are `key`.
fn row<'a>(table: &'a str, key: &[&str]) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.len() > key.len() && cells[..key.len()] == *key)
        .unwrap_or_else(|| panic!("no row {key:?} in\n{table}"))
}

#[test]
fn eval_prints_the_quality_table() {
    let env = Env::new();
    // A small data folder of links into the shared set: three crops, three pets.
    let data = env.path("data");
    for sub in ["matting", "pets/images", "pets/trimaps"] {
        std::fs::create_dir_all(data.join(sub)).expect("mkdir");
    }
    let link = |rel: &str| {
        std::os::unix::fs::symlink(shared().join("data").join(rel), data.join(rel)).expect("link")
    };
    for n in [0, 3, 7] {
        for part in ["image", "alpha", "trimap"] {
            link(&format!("matting/{n}_{part}.png"));
        }
    }
    for pet in ["Abyssinian_1", "Maine_Coon_203", "american_bulldog_136"] {
        link(&format!("pets/images/{pet}.jpg"));
        link(&format!("pets/trimaps/{pet}.png"));
    }
    assert!(env.run(&["models", "install"]).status.success());
    let out = env.run(&["eval", s(&data), "--model", "u2netp"]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{table}");
    let num = |cells: &[&str], i: usize| -> f64 {
        cells[i]
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("cell {i} of {cells:?}"))
    };
    // Refinement must beat plain upsampling of the coarse matte, on SAD and gradient error.
    let none = row(&table, &["coarse GT → none"]);
    let matting = row(&table, &["coarse GT → matting"]);
    assert!(
        num(&matting, 1) < 0.9 * num(&none, 1),
        "{none:?} {matting:?}"
    );
    assert!(
        num(&matting, 3) < 0.9 * num(&none, 3),
        "{none:?} {matting:?}"
    );
    // These three pets are found well (u2netp + matting measured 0.93–0.97 each).
    let pets = row(&table, &["u2netp", "matting"]);
    assert!(num(&pets, 2) > 0.9, "{pets:?}");
    assert!(num(&pets, 3) > 0.85, "{pets:?}");

    let empty = env.path("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let out = env.run(&["eval", s(&empty)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("matting/"), "{}", stderr(&out));
}

/// IoU of (matte > 0.5) against an Oxford-IIIT pet mask (0 background, 1/2 pet, 255 ignored).
fn pet_iou(matte: &Path, mask: &Path) -> f64 {
    let m = decode_file(matte, &DecodeOptions::default())
        .expect("matte")
        .rgb;
    let (w, h, mask) = lensblur::eval::load_mask(mask).expect("mask");
    assert_eq!((w, h), (m.width, m.height));
    lensblur::eval::iou(&m.plane(0), &mask)
}

#[test]
fn isnet_end_to_end_with_licence_notice_and_model_quality() {
    let env = Env::new();
    let tgz_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-models");
    assert!(
        tgz_dir
            .join("imgly-background-removal-data-1.4.5.tgz")
            .is_file(),
        "ISNet tarball missing: run scripts/install-test-deps.sh"
    );
    let dir = env.path("models");
    let with_tgz = |args: &[&str]| {
        let out = env
            .cmd()
            .env("LENSBLUR_MODEL_MIRROR", &tgz_dir)
            .args(args)
            .output()
            .expect("run");
        eprintln!("$ lensblur {}\n{}", args.join(" "), stderr(&out));
        out
    };

    // The list names every model with its licence, the upstream-only ones included.
    let list = env.run(&["models", "list", "--model-dir", s(&dir)]);
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    for (name, licence) in [
        ("u2netp", "Apache-2.0"),
        ("isnet", "AGPL-3.0"),
        ("u2net", "Apache-2.0"),
        ("isnet-general-use", "Apache-2.0"),
        ("birefnet-general-lite", "MIT"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{name} ")) && l.contains(licence)),
            "{name} {licence} not listed:\n{text}"
        );
    }

    // --model isnet installs it implicitly (from the tarball in the mirror), saying AGPL first.
    let photo = env.photo("pets/images/great_pyrenees_177.jpg");
    let matte = env.path("isnet.png");
    let out = with_tgz(&[
        "matte",
        s(&photo),
        "-o",
        s(&matte),
        "--model",
        "isnet",
        "--model-dir",
        s(&dir),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let notice = err.find("AGPL-3.0").expect("no AGPL notice");
    assert!(err.contains("@imgly/background-removal-data"), "{err}");
    assert!(
        notice < err.find("fetching").expect("no fetch line"),
        "{err}"
    );
    assert!(dir.join("isnet-imgly-fp16.onnx").is_file());
    // u2netp scores 0.53 on this white dog (model_compare, refined); ISNet 0.91.
    let mask = shared().join("data/pets/trimaps/great_pyrenees_177.png");
    let iou = pet_iou(&matte, &mask);
    assert!(iou > 0.88, "ISNet IoU {iou}");

    // best = the best installed model (isnet now), without a hint; same matte as --model isnet.
    let best = env.path("best.png");
    let out = with_tgz(&[
        "matte",
        s(&photo),
        "-o",
        s(&best),
        "--model-quality",
        "best",
        "--model-dir",
        s(&dir),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // No "install a better model" hint (the detector's own install note may appear: this mirror
    // holds only the tarball).
    assert!(!stderr(&out).contains("better matte"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&best).unwrap(),
        std::fs::read(&matte).unwrap()
    );

    // With nothing installed, best falls back to u2netp and names the model to install.
    let empty = env.path("empty-models");
    let out = env.run(&[
        "matte",
        s(&photo),
        "-o",
        s(&env.path("fallback.png")),
        "--model-quality",
        "best",
        "--model-dir",
        s(&empty),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("using u2netp") && stderr(&out).contains("models install isnet"),
        "{}",
        stderr(&out)
    );
    assert!(empty.join("u2netp.onnx").is_file());

    // --model and --model-quality together are a usage error.
    let out = env.run(&[
        "matte",
        s(&photo),
        "--model",
        "isnet",
        "--model-quality",
        "fast",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// `--runtime`: rten always works; ort works when built in and its library loads (CI: both), and
/// otherwise fails with what to do; auto falls back to rten on a bad library. `--timings` names the
/// runtime that ran.
#[test]
fn runtime_flag_picks_ort_or_says_what_is_missing() {
    let env = Env::new();
    let input = env.photo("animals/sample1.jpg");
    let rten_png = env.path("rten.png");
    let out = env.run(&[
        "matte",
        s(&input),
        "-o",
        s(&rten_png),
        "--runtime",
        "rten",
        "--timings",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("timings (rten)"), "{}", stderr(&out));

    let ort_png = env.path("ort.png");
    let ort_args = [
        "matte",
        s(&input),
        "-o",
        s(&ort_png),
        "--runtime",
        "ort",
        "--timings",
    ];
    if !lensblur::Runtime::Ort.compiled_in() {
        let out = env.run(&ort_args);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("--features ort"), "{}", stderr(&out));
        return;
    }

    // Built in: a file that is not ONNX Runtime is refused for `ort` and skipped by `auto`.
    let fake = env.path("libonnxruntime.so.1.99.0");
    std::fs::write(&fake, b"not a library").expect("write");
    let out = env
        .cmd()
        .args(ort_args)
        .env("ORT_DYLIB_PATH", &fake)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("pip install onnxruntime"),
        "{}",
        stderr(&out)
    );
    let auto_png = env.path("auto.png");
    let out = env
        .cmd()
        .args(["matte", s(&input), "-o", s(&auto_png), "--timings"])
        .env("ORT_DYLIB_PATH", &fake)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("timings (rten)"), "{}", stderr(&out));

    // With the real library (ORT_DYLIB_PATH from the environment, as scripts/test.sh sets it).
    let out = env.run(&ort_args);
    if !out.status.success() && std::env::var("LENSBLUR_REQUIRE_ORT").as_deref() != Ok("1") {
        eprintln!("ort part skipped: {}", stderr(&out));
        return;
    }
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("timings (ort)"), "{}", stderr(&out));
    let a = image::open(&rten_png).expect("rten matte").to_luma8();
    let b = image::open(&ort_png).expect("ort matte").to_luma8();
    let off = a
        .pixels()
        .zip(b.pixels())
        .filter(|(x, y)| x[0].abs_diff(y[0]) > 2)
        .count();
    assert!(
        off * 10_000 <= a.len(),
        "{off} of {} matte pixels differ by more than 2 levels",
        a.len()
    );
}
