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
    /// `$LENSBLUR_MODEL_MIRROR/<file>` (or an explicitly configured mirror directory).
    Mirror,
}

/// Short human description, used in progress labels and in [`Error::InstallFailed`] attempts.
impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Url(url) => f.write_str(url),
            Source::PyPiWheel { requirement, .. } => write!(f, "pypi {requirement}"),
            Source::Mirror => f.write_str("mirror"),
        }
    }
}

/// How to feed a model (documented from running it).
#[derive(Clone, Debug)]
pub struct InputSpec {
    /// Input tensor name.
    pub input_name: &'static str,
    /// Square input side in pixels (NCHW, RGB).
    pub size: usize,
    /// Per-channel mean subtracted after scaling to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel std divided by.
    pub std: [f32; 3],
}

/// One manifest entry, compiled into the binary.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    /// Short name used on the command line.
    pub name: &'static str,
    /// File name in the cache.
    pub file: &'static str,
    /// Exact size in bytes.
    pub size: u64,
    /// Lower-case hex sha256.
    pub sha256: &'static str,
    /// Licence of the weights.
    pub licence: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Input spec.
    pub input: InputSpec,
    /// Sources, tried in order.
    pub sources: &'static [Source],
}

impl ModelSpec {
    /// True for the model the pipeline uses when none is named ([`DEFAULT_MODEL`]).
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_MODEL
    }
}

const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

// Sizes and hashes are from `shared/models/MANIFEST.md`; the integration tests check them against the
// mirror copies, so a typo here fails CI rather than every user's install.
static MANIFEST: [ModelSpec; 3] = [
    ModelSpec {
        name: "u2netp",
        file: "u2netp.onnx",
        size: 4_574_861,
        sha256: "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
        licence: "Apache-2.0",
        description: "U²-Net-p salient object detection (people, pets, products); 320×320 RGB, \
                      ImageNet-normalised; the default matte model",
        input: InputSpec {
            input_name: "input.1",
            size: 320,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        },
        sources: &[
            Source::Url("https://github.com/danielgatis/rembg/releases/download/v0.0.0/u2netp.onnx"),
            Source::PyPiWheel {
                requirement: "storyloom-engine==2.3.3",
                member: "storyloom/models/u2netp.onnx",
            },
            Source::Mirror,
        ],
    },
    ModelSpec {
        name: "yolox_nano",
        file: "yolox_nano.onnx",
        size: 3_660_092,
        sha256: "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14",
        licence: "Apache-2.0",
        // The input spec cannot express this model's feed, hence the description.
        description: "YOLOX-nano COCO 80-class detector (Megvii); input `images` 1×3×416×416 BGR \
                      0–255, letterboxed with 114, no normalisation; output 1×3549×85. Copy from \
                      Kazuhito00/Image-Processing-Node-Editor; finds the people and animals that \
                      keep a group photo sharp",
        input: InputSpec {
            input_name: "images",
            size: 416,
            mean: [0.0; 3],
            std: [1.0; 3],
        },
        // The copy the shared MANIFEST pins (Megvii's own release asset is not verified to be
        // byte-identical).
        sources: &[
            Source::Url(
                "https://raw.githubusercontent.com/Kazuhito00/Image-Processing-Node-Editor/main/node/deep_learning_node/object_detection/YOLOX/model/yolox_nano.onnx",
            ),
            Source::Mirror,
        ],
    },
    ModelSpec {
        name: "selfie_segmentation",
        file: "selfie_segmentation.onnx",
        size: 447_596,
        sha256: "1511ab5564cb0ae179cba9bcad6ad931003ccc71656f11fd270967023678c6a5",
        licence: "Apache-2.0",
        // NHWC is not expressible in `InputSpec` (which assumes NCHW), hence the description.
        description: "MediaPipe selfie segmentation, persons only; input `input_1:0` NHWC \
                      1×256×256×3 RGB in [0,1] (not NCHW); output `activation_10` 1×256×256×1. \
                      ONNX conversion from royshil/obs-backgroundremoval; not used by the pipeline yet",
        input: InputSpec {
            input_name: "input_1:0",
            size: 256,
            mean: [0.0; 3],
            std: [1.0; 3],
        },
        sources: &[Source::Mirror],
    },
];

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
        if meta.len() != spec.size {
            return ModelState::Invalid;
        }
        let stamp = Stamp::of(spec, &meta);
        if stamp.is_some() && read_stamp(&self.stamp_path(spec)) == stamp {
            return ModelState::Installed;
        }
        match sha256_file(&path) {
            Ok(actual) if actual.eq_ignore_ascii_case(spec.sha256) => {
                self.write_stamp(spec);
                ModelState::Installed
            }
            Ok(actual) => {
                tracing::warn!(
                    "{}: sha256 mismatch (expected {}, got {actual})",
                    path.display(),
                    spec.sha256
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
            Source::Mirror => {
                let dir = self
                    .mirror
                    .as_ref()
                    .ok_or_else(|| Attempt::Failed(format!("{MIRROR_ENV} not set")))?;
                let path = dir.join(spec.file);
                let mut file = File::open(&path)
                    .map_err(|e| Attempt::Failed(format!("{}: {e}", path.display())))?;
                let total = file.metadata().ok().map(|m| m.len());
                self.store_verified(spec, label, &mut file, total, progress)
            }
        }
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

    /// Streams `reader` into a temp file next to the destination while hashing, checks exact size
    /// and sha256, then renames it into place. On any failure the temp file is deleted (on drop).
    fn store_verified(
        &self,
        spec: &ModelSpec,
        label: &str,
        reader: &mut dyn Read,
        total: Option<u64>,
        progress: &mut dyn Progress,
    ) -> std::result::Result<(), Attempt> {
        if let Some(n) = total.filter(|&n| n != spec.size) {
            return Err(Attempt::Failed(format!(
                "size is {n} bytes, expected {}",
                spec.size
            )));
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", spec.file))
            .suffix(".part")
            .tempfile_in(&self.dir)
            .map_err(|e| Attempt::Fatal(Error::io(&self.dir, e)))?;
        progress.start(label, total.or(Some(spec.size)));
        let copied = copy_hashing(reader, tmp.as_file_mut(), spec.size, progress);
        progress.finish();
        let (len, actual) = copied.map_err(|e| match e {
            CopyError::Read(e) => Attempt::Failed(format!("read failed: {e}")),
            CopyError::TooLong => {
                Attempt::Failed(format!("more than the expected {} bytes", spec.size))
            }
            CopyError::Write(e) => Attempt::Fatal(Error::io(tmp.path(), e)),
        })?;
        if len != spec.size {
            return Err(Attempt::Failed(format!(
                "got {len} bytes, expected {}",
                spec.size
            )));
        }
        if !actual.eq_ignore_ascii_case(spec.sha256) {
            let e = Error::Checksum {
                what: spec.file.to_string(),
                expected: spec.sha256.to_string(),
                actual,
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
/// the byte count and hex sha256.
fn copy_hashing(
    reader: &mut dyn Read,
    out: &mut File,
    limit: u64,
    progress: &mut dyn Progress,
) -> std::result::Result<(u64, String), CopyError> {
    let mut hasher = Sha256::new();
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

/// Hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(|e| Error::io(path, e))?;
    Ok(hex(&hasher.finalize()))
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
            sha256: spec.sha256.to_ascii_lowercase(),
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
    let mut child = Command::new(pip[0])
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
    let deadline = Instant::now() + PIP_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "pip download timed out after {} s",
                    PIP_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for pip: {e}")),
        }
    };
    if !status.success() {
        let stderr = fs::read_to_string(&log_path).unwrap_or_default();
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output");
        return Err(format!("pip download failed ({status}): {}", last.trim()));
    }
    let wheels: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    match wheels.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err("pip download produced no wheel".to_string()),
        _ => Err(format!(
            "pip download produced {} wheels, expected one",
            wheels.len()
        )),
    }
}
