//! `lensblur`: a thin command-line front end over the `lensblur` library.

mod batch;
mod cli;
mod contact_sheet;
mod eval;
mod inputs;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use lensblur::io::{self, DecodeOptions, EncodeOptions, Format};
use lensblur::matte::refine::RefineMethod;
use lensblur::models::{self, ModelStore, Progress};
use lensblur::{AnalyseOptions, Error, Matter, RenderOptions};

use cli::{
    BlurArgs, Cli, Command, CommonArgs, FormatArg, ModelArgs, ModelQuality, ModelsAction,
    RefineArg, ServeArgs,
};

fn main() -> ExitCode {
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(cli.quiet, cli.verbose);
    if let Err(e) = resolve_model_quality(&mut cli) {
        eprintln!("lensblur: error: {}", message(&e));
        return ExitCode::from(1);
    }
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("lensblur: error: {}", message(&e));
            if let Some(hint) = e.downcast_ref::<Error>().and_then(hint_for) {
                eprintln!("  hint: {hint}");
            }
            match e.downcast_ref::<UsageError>() {
                Some(_) => ExitCode::from(2),
                None => ExitCode::from(1),
            }
        }
    }
}

/// A mistake in how the command was called (exit code 2), found after clap's own checks.
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn init_logging(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LENSBLUR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// The error text: a library error already names its cause, so its chain is not repeated.
fn message(e: &anyhow::Error) -> String {
    match e.downcast_ref::<Error>() {
        Some(lib) => lib.to_string(),
        None => format!("{e:#}"),
    }
}

/// `input: message`, without repeating the path when the error is about the input itself.
fn describe(input: &Path, e: &anyhow::Error) -> String {
    let text = message(e);
    let shown = input.display().to_string();
    if text.starts_with(&shown) {
        text
    } else {
        format!("{shown}: {text}")
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// What the user can do about a library error.
fn hint_for(e: &Error) -> Option<String> {
    Some(match e {
        Error::TooLarge { pixels, .. } => format!(
            "if you trust this file, raise the limit: --max-pixels {}",
            pixels
        ),
        Error::TooSmall { .. } => "the photo is too small to find a subject in".into(),
        Error::Decode(_) => "the file is damaged, truncated or not an image; re-export it".into(),
        Error::UnsupportedFormat(_) => "lensblur reads and writes JPEG, PNG and WebP".into(),
        Error::WouldOverwrite { .. } => {
            "pass --overwrite to replace it, or choose another output with -o".into()
        }
        Error::ModelNotInstalled { name, .. } => format!(
            "run `lensblur models install {name}`, or set LENSBLUR_MODEL_MIRROR to a directory holding it"
        ),
        Error::InstallFailed { .. } | Error::Checksum { .. } => {
            "check the network, or set LENSBLUR_MODEL_MIRROR to a directory holding verified model files"
                .into()
        }
        Error::UnknownModel(_) => "see `lensblur models list`".into(),
        Error::UnsupportedRuntime { .. } => {
            "pick another model with --model (e.g. isnet instead of isnet-quint8)".into()
        }
        Error::RuntimeNotBuilt { runtime } => format!(
            "rebuild with `--features {runtime}` (cargo install lensblur-cli --features {runtime}), \
             or use --runtime rten"
        ),
        Error::OrtLibrary { .. } => "use --runtime rten (or auto), or point ORT_DYLIB_PATH at \
             …/site-packages/onnxruntime/capi/libonnxruntime.so.1.<n> from `pip install onnxruntime`"
            .into(),
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            "check the permissions of that path".into()
        }
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            "check the path (does the file or its directory exist?)".into()
        }
        _ => return None,
    })
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Blur(args) if batch::wanted(args) => batch::run(cli, args),
        Command::Blur(args) => run_photos(cli, &args.common, Job::Blur(args)),
        Command::Matte(args) => run_photos(cli, &args.common, Job::Matte),
        Command::Serve(args) => run_serve(cli, args),
        Command::Eval(args) => eval::run(cli, args).map(|()| ExitCode::SUCCESS),
        Command::Models { action, model_dir } => run_models(cli, action, model_dir.clone()),
    }
}

/// Turns `--model-quality` into a model name in place, so every command reads `--model` alone.
/// `best` picks the best installed model and says which one would be better to install.
fn resolve_model_quality(cli: &mut Cli) -> anyhow::Result<()> {
    let quiet = cli.quiet;
    let matte = match &mut cli.command {
        Command::Blur(b) => &mut b.common.matte,
        Command::Matte(m) => &mut m.common.matte,
        Command::Serve(s) => &mut s.matte,
        Command::Models { .. } | Command::Eval(_) => return Ok(()),
    };
    let (model, quality, dir) = (&mut matte.model, matte.model_quality, &matte.model_dir);
    match quality {
        None => {}
        Some(ModelQuality::Fast) => *model = models::FAST_MODEL.to_string(),
        Some(ModelQuality::Best) => {
            let store = ModelStore::new(dir.clone()).context("cannot open the model cache")?;
            let (best, better) = models::best_installed(&store);
            *model = best.name.to_string();
            if let (Some(better), false) = (better, quiet) {
                eprintln!(
                    "lensblur: using {} (best installed); `lensblur models install {}` gives a \
                     better matte ({}, {:.0} MB)",
                    best.name,
                    better.name,
                    better.licence,
                    better.size_or_zero() as f64 / 1e6
                );
            }
        }
    }
    Ok(())
}

/// Prints the licence notice of a model whose licence asks more than the default's (AGPL), before
/// anything is downloaded.
fn print_licence_notice(spec: &models::ModelSpec) {
    if let Some(notice) = spec.licence_notice {
        eprintln!("lensblur: licence of {}: {notice}", spec.name);
    }
}

fn run_serve(cli: &Cli, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    if args.threads > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(args.threads)
            .build_global()
            .context("cannot set up the thread pool")?;
    }
    let opts = args.matte.analyse_options(args.threads);
    let matter = load_matter(cli, &args.matte, &opts)?;
    let config = lensblur_serve::Config {
        addr: std::net::SocketAddr::new(args.bind, args.port),
        limits: lensblur_serve::Limits {
            max_body_bytes: args.max_upload_mb.saturating_mul(1 << 20),
            max_pixels: args.max_pixels,
            workers: args.workers as usize,
            queue: args.queue,
            timeout: Duration::from_secs(args.timeout),
            cache_bytes: args.cache_mb.saturating_mul(1 << 20),
            session_idle: Duration::from_secs(args.idle_minutes * 60),
            ..Default::default()
        },
        analyse: opts,
    };
    let addr = config.addr;
    lensblur_serve::run(config, matter).with_context(|| {
        format!("cannot serve on {addr} (is the port in use? try --port with another number)")
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Clone, Copy)]
enum Job<'a> {
    Blur(&'a BlurArgs),
    Matte,
}

fn run_models(
    cli: &Cli,
    action: &ModelsAction,
    model_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let store = ModelStore::new(model_dir).context("cannot open the model cache")?;
    match action {
        ModelsAction::List => {
            println!("cache: {}", store.dir.display());
            for spec in models::manifest() {
                let state = if store.is_installed(spec) {
                    "installed"
                } else {
                    "not installed"
                };
                let default = if spec.name == models::DEFAULT_MODEL {
                    " (default)"
                } else {
                    ""
                };
                let size = match spec.size {
                    Some(n) => format!("{:>6.1} MB", n as f64 / 1e6),
                    None => format!("{:>9}", "? MB"),
                };
                println!(
                    "{:<22} {size}  {:<14} {:<14} {}{}",
                    spec.name, spec.licence, state, spec.description, default
                );
            }
        }
        ModelsAction::Install { name } => {
            let spec = models::find(name)?;
            if store.is_installed(spec) {
                if !cli.quiet {
                    eprintln!("{} is already installed", spec.name);
                }
            } else {
                // The licence notice is printed even with -q: installing means accepting it.
                print_licence_notice(spec);
                if !cli.quiet {
                    let size = spec.size.map_or("size unknown".to_string(), |n| {
                        format!("{:.1} MB", n as f64 / 1e6)
                    });
                    eprintln!(
                        "installing {} ({size}, licence {}) into {}",
                        spec.name,
                        spec.licence,
                        store.dir.display()
                    );
                }
            }
            let path = store.install(spec, &mut BarProgress::new(cli.quiet))?;
            println!("{}", path.display());
        }
        ModelsAction::Path { name } => {
            let spec = models::find(name)?;
            println!("{}", store.path(spec).display());
            if !store.is_installed(spec) {
                eprintln!("lensblur: {} is not installed yet", spec.name);
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Draws an indicatif bar on a terminal; silent otherwise.
struct BarProgress {
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl BarProgress {
    fn new(quiet: bool) -> Self {
        BarProgress { quiet, bar: None }
    }
}

impl Progress for BarProgress {
    fn start(&mut self, source: &str, total: Option<u64>) {
        if self.quiet {
            return;
        }
        eprintln!("fetching from {source}");
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        if let Ok(style) = ProgressStyle::with_template(
            "  [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        self.bar = Some(bar);
    }

    fn advance(&mut self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn refine_method(arg: RefineArg) -> RefineMethod {
    match arg {
        RefineArg::None => RefineMethod::None,
        RefineArg::Guided => RefineMethod::Guided,
        RefineArg::Matting => RefineMethod::Matting,
    }
}

impl ModelArgs {
    /// The analysis options these arguments ask for, with `threads` inference threads.
    fn analyse_options(&self, threads: usize) -> AnalyseOptions {
        AnalyseOptions {
            model: self.model.clone(),
            model_dir: self.model_dir.clone(),
            threads,
            refine: refine_method(self.refine),
            all_subjects: !self.one_subject,
            runtime: self.runtime.into(),
        }
    }
}

/// Loads the matte model, installing it first (and saying so) when it is missing.
fn load_matter(cli: &Cli, matte: &ModelArgs, opts: &AnalyseOptions) -> anyhow::Result<Matter> {
    load_model(
        cli,
        &matte.model,
        matte.model_dir.clone(),
        matte.no_install,
        opts,
    )
}

fn load_model(
    cli: &Cli,
    model: &str,
    model_dir: Option<PathBuf>,
    no_install: bool,
    opts: &AnalyseOptions,
) -> anyhow::Result<Matter> {
    let store = ModelStore::new(model_dir).context("cannot open the model cache")?;
    let mut wanted = vec![models::find(model)?];
    if opts.all_subjects {
        wanted.push(models::find(models::DETECTOR_MODEL)?);
    }
    for spec in wanted {
        if store.is_installed(spec) || no_install {
            continue;
        }
        print_licence_notice(spec);
        if !cli.quiet {
            eprintln!(
                "lensblur: model {} is not installed yet; installing it once into {}",
                spec.name,
                store.dir.display()
            );
        }
        let installed = store.install(spec, &mut BarProgress::new(cli.quiet));
        match installed {
            Ok(_) => {}
            // The detector only completes group photos: without it the job still runs.
            Err(e) if spec.name == models::DETECTOR_MODEL => {
                if !cli.quiet {
                    eprintln!(
                        "lensblur: warning: {e}; only the most salient subject will be kept sharp"
                    );
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Matter::from_installed(opts)?)
}

/// The runtime a loaded model runs on, for timings and reports.
fn runtime_name(m: &Matter) -> &'static str {
    m.runtime().map_or("custom", |r| r.as_str())
}

/// The render options of `blur`, shared by single-photo and batch mode so both give the same look.
fn render_options(b: &BlurArgs) -> RenderOptions {
    RenderOptions {
        strength: b.strength,
        highlights: b.highlights,
        force: b.force,
        grain: b.grain,
        focus: match b.focus {
            Some((x, y)) => lensblur::depth::Focus::Point { x, y },
            None => lensblur::depth::Focus::Subject,
        },
        aperture: b.aperture(),
    }
}

fn format_arg(f: FormatArg) -> Format {
    match f {
        FormatArg::Jpeg => Format::Jpeg,
        FormatArg::Png => Format::Png,
        FormatArg::Webp => Format::WebP,
    }
}

/// Decides the output path for `input`. `suffix` is `blur` or `alpha`.
fn output_path(
    common: &CommonArgs,
    input: &Path,
    suffix: &str,
    ext: &str,
) -> anyhow::Result<PathBuf> {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let name = format!("{stem}.{suffix}.{ext}");
    Ok(match &common.output {
        Some(o) if o.is_dir() => o.join(name),
        Some(o) => o.clone(),
        None => input.with_file_name(name),
    })
}

/// Output format: explicit flag, then the output's extension, then the input's format.
fn choose_format(
    flag: Option<FormatArg>,
    output: Option<&Path>,
    input: Option<Format>,
) -> anyhow::Result<Option<Format>> {
    if let Some(f) = flag {
        return Ok(Some(format_arg(f)));
    }
    if let Some(o) = output.filter(|o| !o.is_dir()) {
        match io::format_from_path(o) {
            Some(f) => return Ok(Some(f)),
            None => bail!(UsageError(format!(
                "{}: cannot tell the output format from its extension; use .jpg, .png or .webp, or --format",
                o.display()
            ))),
        }
    }
    Ok(input)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn run_photos(cli: &Cli, common: &CommonArgs, job: Job<'_>) -> anyhow::Result<ExitCode> {
    if common.inputs.len() > 1 && common.output.as_ref().is_some_and(|o| !o.is_dir()) {
        bail!(UsageError(
            "-o names one file but several inputs were given; pass an existing directory to -o, or omit it"
                .into()
        ));
    }
    if let Job::Blur(b) = job {
        if b.save_matte.is_some() && common.inputs.len() > 1 {
            bail!(UsageError("--save-matte takes one input only".into()));
        }
        if b.depth.is_some() && common.inputs.len() > 1 {
            bail!(UsageError(
                "--depth takes one input only (a depth map belongs to one photo)".into()
            ));
        }
        // Reject a bad -o extension before any work.
        choose_format(b.format, common.output.as_deref(), Some(Format::Jpeg))?;
    }
    if common.threads > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(common.threads)
            .build_global()
            .context("cannot set up the thread pool")?;
    }
    let opts = common.matte.analyse_options(common.threads);
    let mut matter = None;
    let mut failed = 0usize;
    for input in &common.inputs {
        if let Err(e) = process_one(cli, common, job, input, &opts, &mut matter) {
            failed += 1;
            eprintln!("lensblur: error: {}", describe(input, &e));
            if let Some(hint) = e.downcast_ref::<Error>().and_then(hint_for) {
                eprintln!("  hint: {hint}");
            }
            if e.downcast_ref::<Error>().is_some_and(|e| {
                matches!(
                    e,
                    Error::ModelNotInstalled { .. }
                        | Error::InstallFailed { .. }
                        | Error::UnknownModel(_)
                        | Error::RuntimeNotBuilt { .. }
                        | Error::OrtLibrary { .. }
                )
            }) {
                // Nothing else can succeed without a model.
                return Ok(ExitCode::from(1));
            }
        }
    }
    if failed > 0 {
        if common.inputs.len() > 1 {
            eprintln!(
                "lensblur: {failed} of {} photos failed",
                common.inputs.len()
            );
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn process_one(
    cli: &Cli,
    common: &CommonArgs,
    job: Job<'_>,
    input: &Path,
    opts: &AnalyseOptions,
    matter: &mut Option<Matter>,
) -> anyhow::Result<()> {
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    // Pick the output first so an existing file is refused before any work.
    let (out_path, out_format) = match job {
        Job::Blur(b) => {
            let in_format = io::format_from_path(input);
            let fmt = choose_format(b.format, common.output.as_deref(), in_format)?
                .unwrap_or(Format::Jpeg);
            (output_path(common, input, "blur", fmt.extension())?, fmt)
        }
        Job::Matte => (output_path(common, input, "alpha", "png")?, Format::Png),
    };
    if same_file(&out_path, input) && !common.overwrite {
        return Err(Error::WouldOverwrite {
            path: out_path,
            reason: "the output would replace the input".into(),
        }
        .into());
    }
    // Fail before the expensive work when the output directory is missing.
    if let Some(dir) = out_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(Error::io(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "directory does not exist"),
            )
            .into());
        }
    }
    if out_path.exists() && !common.overwrite {
        return Err(Error::WouldOverwrite {
            path: out_path,
            reason: "already exists".into(),
        }
        .into());
    }

    let t = Instant::now();
    let photo = io::decode_file(
        input,
        &DecodeOptions {
            max_pixels: common.max_pixels,
        },
    )?;
    timings.push(("decode", t.elapsed()));

    if matter.is_none() {
        let t = Instant::now();
        *matter = Some(load_matter(cli, &common.matte, opts)?);
        timings.push(("load model", t.elapsed()));
    }
    let Some(m) = matter.as_ref() else {
        bail!("model not loaded");
    };
    let mut analysis = lensblur::analyse(&photo, m, opts)?;
    timings.extend(analysis.timings.iter().cloned());
    if let Job::Blur(BlurArgs {
        depth: Some(dp), ..
    }) = job
    {
        let order = match job {
            Job::Blur(b) if b.depth_far_large => lensblur::depth::DepthOrder::FarIsLarge,
            _ => lensblur::depth::DepthOrder::NearIsLarge,
        };
        let t = Instant::now();
        let map = lensblur::depth::load(dp, order)?;
        analysis.set_depth(&map)?;
        timings.push(("depth", t.elapsed()));
    }

    let bytes = match job {
        Job::Matte => {
            if analysis.no_subject() && !cli.quiet {
                eprintln!(
                    "lensblur: {}: no clear subject found (confidence {:.2}); the matte is unreliable",
                    input.display(),
                    analysis.confidence()
                );
            }
            let t = Instant::now();
            let bytes = io::encode_gray_png(&analysis.alpha)?;
            timings.push(("encode", t.elapsed()));
            bytes
        }
        Job::Blur(b) => {
            if analysis.no_subject() && !cli.quiet {
                if b.force {
                    eprintln!(
                        "lensblur: {}: no clear subject found (confidence {:.2}); blurring anyway (--force)",
                        input.display(),
                        analysis.confidence()
                    );
                } else {
                    eprintln!(
                        "lensblur: {}: no clear subject found (confidence {:.2}); writing it unblurred (use --force to blur anyway)",
                        input.display(),
                        analysis.confidence()
                    );
                }
            }
            if let Some(mp) = &b.save_matte {
                let png = io::encode_gray_png(&analysis.alpha)?;
                io::write_atomic(mp, &png, common.overwrite)?;
            }
            let t = Instant::now();
            let out = lensblur::render(&photo, &analysis, &render_options(b))?;
            timings.push(("render", t.elapsed()));
            let t = Instant::now();
            let bytes = io::encode(
                &out,
                photo.alpha.as_ref(),
                &photo.meta,
                &EncodeOptions::for_source(out_format, b.quality, &photo),
            )?;
            timings.push(("encode", t.elapsed()));
            bytes
        }
    };
    let t = Instant::now();
    io::write_atomic(&out_path, &bytes, common.overwrite)?;
    timings.push(("write", t.elapsed()));
    if !cli.quiet {
        eprintln!("{} -> {}", input.display(), out_path.display());
    }
    if common.timings {
        let total: Duration = timings.iter().map(|(_, d)| *d).sum();
        let parts: Vec<String> = timings
            .iter()
            .map(|(n, d)| format!("{n} {:.0} ms", d.as_secs_f64() * 1e3))
            .collect();
        eprintln!(
            "  timings ({}): {} | total {:.0} ms",
            runtime_name(m),
            parts.join(", "),
            total.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
