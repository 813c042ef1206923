//! ONNX Runtime backend (cargo feature `ort`): the same models, ~2× faster than `rten` on one core
//! (u2netp 320²: 283 ms against 625 ms, see `shared/RUNTIMES.md`).
//!
//! The runtime is not linked: `libonnxruntime.so.1.x` is opened at run time from `ORT_DYLIB_PATH`
//! (`ort`'s `load-dynamic`), so the build needs no C toolchain and downloads nothing. The library
//! comes from the PyPI wheel `onnxruntime` (`site-packages/onnxruntime/capi/`). It is opened once per
//! process, and only through [`library`]: `ort` itself would panic on a missing file at the first
//! API call, so no `ort` API is touched before the load has succeeded.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::session::Session;
use ort::value::TensorRef;

use super::{MatteBackend, Runtime};
use crate::error::{Error, Result};
use crate::models::InputSpec;

/// Environment variable naming the ONNX Runtime shared library.
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// How to get the library, for error messages.
const HOW_TO_GET: &str = "pip install onnxruntime, then set ORT_DYLIB_PATH to \
     …/site-packages/onnxruntime/capi/libonnxruntime.so.1.<n>";

/// The process's one ONNX Runtime: the loaded library and its environment, or why loading failed.
struct Loaded {
    path: PathBuf,
    env: ort::environment::Environment,
}

static LOADED: OnceLock<std::result::Result<Loaded, String>> = OnceLock::new();

/// Opens the ONNX Runtime library named by `ORT_DYLIB_PATH` (once per process; later calls return
/// the first outcome) and returns its path.
///
/// Fails with [`Error::OrtLibrary`] when the variable is unset, the file is missing or is not an
/// ONNX Runtime of at least the API level `ort` was built for.
pub fn library() -> Result<&'static Path> {
    loaded().map(|l| l.path.as_path())
}

fn loaded() -> Result<&'static Loaded> {
    LOADED
        .get_or_init(load)
        .as_ref()
        .map_err(|detail| Error::OrtLibrary {
            detail: detail.clone(),
        })
}

fn load() -> std::result::Result<Loaded, String> {
    let path = match std::env::var_os(DYLIB_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => return Err(format!("{DYLIB_ENV} is not set ({HOW_TO_GET})")),
    };
    // `init_from` would try a relative name next to the executable; say plainly when it is absent.
    if !path.is_file() {
        return Err(format!(
            "{DYLIB_ENV}={} does not name a file ({HOW_TO_GET})",
            path.display()
        ));
    }
    let builder = ort::init_from(&path)
        .map_err(|e| format!("{DYLIB_ENV}={}: {e} ({HOW_TO_GET})", path.display()))?;
    let env = builder
        .with_name("lensblur")
        .with_telemetry(false)
        .build()
        .map_err(|e| format!("{}: cannot create the environment: {e}", path.display()))?;
    tracing::debug!("ONNX Runtime loaded from {}", path.display());
    Ok(Loaded { path, env })
}

/// One ONNX Runtime session with a single float input and output, run under a lock
/// (`Session::run` needs `&mut`). The matte backend and the subject detector both use it.
pub struct OrtNet {
    name: String,
    session: Mutex<Session>,
    input: String,
    output: String,
}

impl std::fmt::Debug for OrtNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtNet")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl OrtNet {
    /// Loads `path` (opening the library first, see [`library`]); `input` / `output` name the
    /// tensors (empty: the first of each). `threads` = 0 lets ONNX Runtime use every core for one
    /// operator; operators run one after another (inter-op 1). The memory pattern is off: it
    /// pre-plans one arena per input shape, which cut ISNet's peak from 1.66 to 1.06 GB when
    /// disabled, at the same speed. Intra-op spinning is off: idle pool threads busy-wait for the
    /// next operator by default, taking the cores the image stages (rayon) run on beside the model
    /// in batch mode — off, a 20-photo batch took 15 % less CPU and 6 % less wall time.
    pub fn load(path: &Path, input: &str, output: &str, threads: usize) -> Result<Self> {
        let loaded = loaded()?;
        let name = path.display().to_string();
        let model_err = |detail: String| Error::Model {
            model: name.clone(),
            detail,
        };
        let opt_err = |e: ort::Error<_>| model_err(format!("session options: {e}"));
        let session = Session::builder(&loaded.env)
            .map_err(|e| model_err(format!("cannot create an ONNX Runtime session: {e}")))?
            .with_intra_threads(threads)
            .map_err(opt_err)?
            .with_inter_threads(1)
            .map_err(opt_err)?
            .with_memory_pattern(false)
            .map_err(opt_err)?
            .with_intra_op_spinning(false)
            .map_err(opt_err)?
            .commit_from_file(path)
            .map_err(|e| model_err(format!("cannot load: {e}")))?;
        let pick = |names: Vec<&str>, want: &str, what: &str| -> Result<String> {
            let found = if want.is_empty() {
                names.first().copied()
            } else {
                names.iter().copied().find(|n| *n == want)
            };
            found
                .map(str::to_string)
                .ok_or_else(|| model_err(format!("no {what} named {want:?}")))
        };
        let input = pick(
            session.inputs().iter().map(|i| i.name()).collect(),
            input,
            "input",
        )?;
        let output = pick(
            session.outputs().iter().map(|o| o.name()).collect(),
            output,
            "output",
        )?;
        Ok(OrtNet {
            name,
            session: Mutex::new(session),
            input,
            output,
        })
    }

    /// The model file, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the model on one `shape` tensor; returns the output's shape and values.
    pub fn run(&self, input: Vec<f32>, shape: [usize; 4]) -> Result<(Vec<usize>, Vec<f32>)> {
        let err = |detail: String| Error::Model {
            model: self.name.clone(),
            detail,
        };
        let tensor = TensorRef::from_array_view((shape, input.as_slice()))
            .map_err(|e| err(format!("input tensor: {e}")))?;
        // A poisoned lock only means another thread panicked mid-run; the session holds no state
        // between runs, so it is still usable.
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(|e| err(format!("inference failed: {e}")))?;
        let first = outputs
            .get(self.output.as_str())
            .ok_or_else(|| err(format!("model produced no output {:?}", self.output)))?;
        let (shape, data) = first
            .try_extract_tensor::<f32>()
            .map_err(|e| err(format!("unexpected output type: {e}")))?;
        let dims = shape.iter().map(|&d| d.max(0) as usize).collect();
        Ok((dims, data.to_vec()))
    }
}

/// ONNX Runtime matte backend: an [`OrtNet`] fed as its [`InputSpec`] says.
#[derive(Debug)]
pub struct OrtBackend {
    net: OrtNet,
    spec: InputSpec,
}

impl OrtBackend {
    /// Loads `path` (see [`OrtNet::load`]).
    pub fn load(path: &Path, spec: InputSpec, threads: usize) -> Result<Self> {
        let net = OrtNet::load(path, spec.input_name, spec.output_name, threads)?;
        Ok(OrtBackend { net, spec })
    }
}

impl MatteBackend for OrtBackend {
    fn name(&self) -> &str {
        self.net.name()
    }

    fn input_spec(&self) -> &InputSpec {
        &self.spec
    }

    fn runtime(&self) -> Option<Runtime> {
        Some(Runtime::Ort)
    }

    fn infer(&self, input: Vec<f32>) -> Result<Vec<f32>> {
        let s = self.spec.size;
        super::square_map(self.net.name(), s, self.net.run(input, [1, 3, s, s])?)
    }
}
