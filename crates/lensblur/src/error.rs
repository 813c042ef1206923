//! One typed error for the whole library.
//!
//! Binaries add human context (which file, what to do); the library says *what* went wrong and keeps the
//! underlying cause reachable through [`std::error::Error::source`].

use std::path::PathBuf;

/// Library result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in lensblur.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a decodable image (truncated, corrupt, empty).
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// The file is not JPEG, PNG or WebP, or an output format is not supported.
    #[error("unsupported format: {0}")]
    UnsupportedFormat(String),
    /// The image exceeds the pixel limit (a guard against decompression bombs).
    #[error("image is {width}x{height} = {pixels} pixels, over the limit of {limit} pixels")]
    TooLarge {
        /// Width in pixels.
        width: u64,
        /// Height in pixels.
        height: u64,
        /// width × height.
        pixels: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The image is too small to process (e.g. 1×1).
    #[error("image is {width}x{height}, too small (at least {min}x{min} pixels needed)")]
    TooSmall {
        /// Width in pixels.
        width: u64,
        /// Height in pixels.
        height: u64,
        /// Minimum side length.
        min: u64,
    },
    /// Encoding the output failed.
    #[error("cannot encode image: {0}")]
    Encode(String),
    /// The output already exists and overwriting was not allowed, or output == input.
    #[error("{path}: {reason}")]
    WouldOverwrite {
        /// The output path.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// A model name that is not in the manifest.
    #[error("unknown model {0:?}")]
    UnknownModel(String),
    /// A model file failed to load or run.
    #[error("model {model}: {detail}")]
    Model {
        /// Model name or path.
        model: String,
        /// What failed.
        detail: String,
    },
    /// A model is not installed (and installing was not allowed).
    #[error("model {name} is not installed in {dir}")]
    ModelNotInstalled {
        /// Model name.
        name: String,
        /// The cache directory looked in.
        dir: PathBuf,
    },
    /// A downloaded or mirrored file does not have the pinned checksum (`kind:hex`).
    #[error("{what}: checksum mismatch (expected {expected}, got {actual})")]
    Checksum {
        /// Which file or source.
        what: String,
        /// The pinned hash.
        expected: String,
        /// The hash of the bytes received.
        actual: String,
    },
    /// Every source for a model failed; each attempt and its reason is listed.
    #[error("could not install model {name}; tried:{}", fmt_attempts(.attempts))]
    InstallFailed {
        /// Model name.
        name: String,
        /// (source description, reason) per attempt, in order.
        attempts: Vec<(String, String)>,
    },
    /// The model is known to compute wrong output in this runtime (e.g. rten on a quantised
    /// graph); another backend is needed.
    #[error("model {model} cannot run in {runtime}: {reason}")]
    UnsupportedRuntime {
        /// Model name.
        model: String,
        /// The runtime that refused it.
        runtime: String,
        /// Why, and what to use instead.
        reason: String,
    },
    /// The requested inference runtime is not compiled into this build (cargo feature off).
    #[error("runtime {runtime} is not compiled into this build")]
    RuntimeNotBuilt {
        /// The runtime's name (`ort`).
        runtime: &'static str,
    },
    /// The ONNX Runtime shared library could not be loaded (`ORT_DYLIB_PATH` unset, missing file,
    /// too old a version).
    #[error("ONNX Runtime library: {detail}")]
    OrtLibrary {
        /// What failed, with how to get the library.
        detail: String,
    },
    /// An option is out of range or inconsistent.
    #[error("invalid option: {0}")]
    InvalidOption(String),
}

fn fmt_attempts(attempts: &[(String, String)]) -> String {
    let mut s = String::new();
    for (src, why) in attempts {
        s.push_str("\n  - ");
        s.push_str(src);
        s.push_str(": ");
        s.push_str(why);
    }
    s
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
