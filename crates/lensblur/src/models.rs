//! Model manifest, install (download / PyPI wheel / local mirror), sha256-verified cache.
//!
//! OWNER: models helper. Contract used by the rest of the crate is below; bodies to be written.

use std::path::{Path, PathBuf};

use crate::error::Result;

/// Name of the default matte model.
pub const DEFAULT_MODEL: &str = "u2netp";

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

/// All known models.
pub fn manifest() -> &'static [ModelSpec] {
    todo!()
}

/// Looks up a model by name.
pub fn find(name: &str) -> Result<&'static ModelSpec> {
    let _ = name;
    todo!()
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

/// The on-disk model cache.
#[derive(Clone, Debug)]
pub struct ModelStore {
    /// Cache directory (`$XDG_CACHE_HOME/lensblur/models` by default).
    pub dir: PathBuf,
    /// Local mirror directory (from `LENSBLUR_MODEL_MIRROR` by default).
    pub mirror: Option<PathBuf>,
}

impl ModelStore {
    /// The default store: XDG cache dir, mirror from the environment.
    pub fn new(dir: Option<PathBuf>) -> Result<Self> {
        let _ = dir;
        todo!()
    }

    /// Where `spec` lives (whether or not installed).
    pub fn path(&self, spec: &ModelSpec) -> PathBuf {
        self.dir.join(spec.file)
    }

    /// True when the cached file exists with the right size and sha256.
    pub fn is_installed(&self, spec: &ModelSpec) -> bool {
        let _ = spec;
        todo!()
    }

    /// Installs `spec` (no-op when already installed and valid); returns its path.
    pub fn install(&self, spec: &ModelSpec, progress: &mut dyn Progress) -> Result<PathBuf> {
        let _ = (spec, progress);
        todo!()
    }
}

/// Hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let _ = path;
    todo!()
}
