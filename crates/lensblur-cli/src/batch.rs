//! Batch mode of `lensblur blur`: many photos, one look, resumable, nothing lost.
//!
//! 1. **Plan** (`plan`): inputs are expanded ([`crate::inputs`]), each photo gets an output path
//!    (`--out-dir` mirrors the input tree below the directory or glob base given; `--name` is the
//!    file-name template) and a decision: to do, skipped (the output exists and `--overwrite` was not
//!    given, so a re-run resumes; or the file is itself an output of this batch), or failed (it would
//!    replace an input, or two inputs would write the same output).
//! 2. **Run** (`run_pipeline`): a staged pipeline on three threads joined by bounded channels,
//!    decode → analyse (model, refine, foreground) → render + encode + write, so the stages of
//!    neighbouring photos overlap (each stage also uses the shared rayon / rten pools inside). A
//!    token channel holding `--jobs` tokens bounds the photos in flight, so memory depends on
//!    `--jobs` and the photo size, never on the number of files. The model is loaded once, before
//!    the first photo. Every output goes through [`lensblur::io::write_atomic`] (temp file in the
//!    target folder + rename), so a killed run leaves whole outputs or none; the temp files are
//!    hidden (`.lensblur-*.tmp`) and never taken as inputs.
//! 3. **Report**: a progress bar (terminal) or periodic lines (logs), a summary with every failure
//!    and its reason, `--report FILE.json`, `--contact-sheet FILE`; exit 1 when any photo failed.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use lensblur::io::{self, DecodeOptions, EncodeOptions, Format, Photo};
use lensblur::{AnalyseOptions, Analysis, Error, Matter, RenderOptions};

use crate::cli::{BlurArgs, Cli};
use crate::contact_sheet::{ContactSheet, Thumb};
use crate::inputs::{self, Candidate};
use crate::report::{FileRecord, Report, Settings, Status, Timings, Totals};
use crate::UsageError;

/// Photos in flight when `--jobs` is 0: the next photo decodes and the last one encodes while the
/// model runs; more adds memory without adding cores (README, Batch).
pub const AUTO_JOBS: usize = 2;

/// True when `blur` should run as a batch: a batch option, several inputs, or a folder or glob.
pub fn wanted(args: &BlurArgs) -> bool {
    args.batch.any()
        || args.common.inputs.len() > 1
        || args
            .common
            .inputs
            .iter()
            .any(|p| p.is_dir() || (!p.exists() && p.to_str().is_some_and(inputs::is_glob)))
}

/// Output path and format of one photo.
type Target = (PathBuf, Format);

/// One planned photo.
struct Job {
    input: PathBuf,
    output: PathBuf,
    format: Format,
}

/// The plan: jobs to run and records for everything decided up front.
struct Plan {
    /// One record per input, in order; `todo` indexes into it.
    records: Vec<FileRecord>,
    /// (record index, job) for the photos to process.
    todo: Vec<(usize, Job)>,
    unsupported: Vec<PathBuf>,
    subdirs_skipped: usize,
}

/// Renders the `--name` template. Placeholders: `{stem}`, `{ext}`, `{in_ext}`, `{strength}`.
pub fn render_name(
    template: &str,
    input: &Path,
    ext: &str,
    strength: f32,
) -> Result<String, String> {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let in_ext = input
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("unclosed '{{' in --name {template:?}"));
        };
        let key = &rest[open + 1..open + close];
        match key {
            "stem" => out.push_str(&stem),
            "ext" => out.push_str(ext),
            "in_ext" => out.push_str(&in_ext),
            "strength" => out.push_str(&format!("{strength}")),
            _ => {
                return Err(format!(
                    "unknown placeholder {{{key}}} in --name; use {{stem}}, {{ext}}, {{in_ext}} or {{strength}}"
                ))
            }
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    if out.is_empty() || out == "." || out == ".." || out.contains(['/', '\\']) {
        return Err(format!(
            "--name {template:?} gives {out:?}, which is not a plain file name; use --out-dir for the folder"
        ));
    }
    Ok(out)
}

/// The output format: `--format`, else a literal extension in the template, else the input's.
fn output_format(args: &BlurArgs, input: &Path) -> Format {
    if let Some(f) = args.format {
        return crate::format_arg(f);
    }
    if !args.batch.name.contains("{ext}") {
        if let Some(f) = io::format_from_path(Path::new(&args.batch.name)) {
            return f;
        }
    }
    io::format_from_path(input).unwrap_or(Format::Jpeg)
}

/// A path made comparable without requiring it to exist: canonical parent + file name.
fn normalise(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    let parent = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match (parent.canonicalize(), p.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()),
    }
}

fn out_dir(args: &BlurArgs) -> Option<PathBuf> {
    args.batch
        .out_dir
        .clone()
        .or_else(|| args.common.output.clone().filter(|o| o.is_dir()))
}

fn plan(args: &BlurArgs) -> Plan {
    let out_dir = out_dir(args);
    let mut exclude: Vec<PathBuf> = Vec::new();
    exclude.extend(out_dir.iter().cloned());
    exclude.extend(args.batch.report.iter().cloned());
    exclude.extend(args.batch.contact_sheet.iter().cloned());
    let expanded = inputs::expand(&args.common.inputs, args.batch.recursive, &exclude);

    let mut records = Vec::new();
    for (path, why) in &expanded.missing {
        let mut r = FileRecord::new(path, None, Status::Failed);
        r.error = Some(format!("{}: {why}", path.display()));
        r.hint = Some("check the path; quote glob patterns so lensblur expands them".into());
        records.push(r);
    }
    // Outputs first, so "is this input an output of another input" can be answered.
    let mut planned: Vec<(Candidate, Result<Target, String>)> = Vec::new();
    for c in expanded.candidates {
        let format = output_format(args, &c.path);
        let out =
            render_name(&args.batch.name, &c.path, format.extension(), args.strength).map(|name| {
                let dir = match &out_dir {
                    Some(root) => {
                        let rel = c
                            .path
                            .parent()
                            .and_then(|p| p.strip_prefix(&c.base).ok())
                            .unwrap_or(Path::new(""));
                        root.join(rel)
                    }
                    None => c.path.parent().map(Path::to_path_buf).unwrap_or_default(),
                };
                (dir.join(name), format)
            });
        planned.push((c, out));
    }
    let inputs: HashSet<PathBuf> = planned.iter().map(|(c, _)| normalise(&c.path)).collect();
    let mut outputs: HashMap<PathBuf, PathBuf> = HashMap::new();
    for (c, out) in &planned {
        if let Ok((o, _)) = out {
            outputs
                .entry(normalise(o))
                .or_insert_with(|| c.path.clone());
        }
    }
    let mut taken: HashMap<PathBuf, PathBuf> = HashMap::new();
    let mut todo = Vec::new();
    for (c, out) in planned {
        let (output, format) = match out {
            Ok(o) => o,
            Err(e) => {
                let mut r = FileRecord::new(&c.path, None, Status::Failed);
                r.error = Some(e);
                records.push(r);
                continue;
            }
        };
        let key = normalise(&output);
        let me = normalise(&c.path);
        let mut r = FileRecord::new(&c.path, Some(&output), Status::Planned);
        if let Some(owner) = outputs.get(&me).filter(|o| normalise(o) != me) {
            r.status = Status::Skipped;
            r.reason = Some(format!("it is the output of {}", owner.display()));
            r.output = None;
        } else if inputs.contains(&key) {
            r.status = Status::Failed;
            r.error = Some(format!(
                "{}: the output {} would replace an input",
                c.path.display(),
                output.display()
            ));
            r.hint = Some("choose another --name or --out-dir".into());
        } else if let Some(first) = taken.get(&key) {
            r.status = Status::Failed;
            r.error = Some(format!(
                "{}: same output {} as {}",
                c.path.display(),
                output.display(),
                first.display()
            ));
            r.hint = Some("put {in_ext} in --name, or run the folders separately".into());
        } else {
            taken.insert(key, c.path.clone());
            if !args.common.overwrite && output.symlink_metadata().is_ok() {
                r.status = Status::Skipped;
                r.reason = Some("output exists (pass --overwrite to redo it)".into());
            } else {
                todo.push((
                    records.len(),
                    Job {
                        input: c.path.clone(),
                        output,
                        format,
                    },
                ));
            }
        }
        records.push(r);
    }
    Plan {
        records,
        todo,
        unsupported: expanded.unsupported,
        subdirs_skipped: expanded.subdirs_skipped,
    }
}

/// Usage checks that clap cannot express.
fn check_usage(args: &BlurArgs) -> anyhow::Result<()> {
    let b = &args.batch;
    if let Some(o) = args.common.output.as_ref().filter(|o| !o.is_dir()) {
        bail!(UsageError(format!(
            "-o {} names one file but this is a batch; use --out-dir DIR (or an existing directory for -o)",
            o.display()
        )));
    }
    if b.out_dir.is_some() && args.common.output.is_some() {
        bail!(UsageError(
            "give either -o DIR or --out-dir, not both".into()
        ));
    }
    if args.save_matte.is_some() {
        bail!(UsageError(
            "--save-matte takes one input only; use `lensblur matte` for many".into()
        ));
    }
    if args.depth.is_some() {
        bail!(UsageError(
            "--depth takes one photo only (a depth map belongs to one photo)".into()
        ));
    }
    render_name(&b.name, Path::new("x.jpg"), "jpg", args.strength).map_err(UsageError)?;
    if !b.name.contains("{ext}") && args.format.is_none() {
        if let Some(ext) = Path::new(&b.name).extension() {
            if io::format_from_path(Path::new(&b.name)).is_none() {
                bail!(UsageError(format!(
                    "--name ends in .{}, which lensblur cannot write; use .jpg, .png, .webp or {{ext}}",
                    ext.to_string_lossy()
                )));
            }
        }
    }
    if let Some(sheet) = &b.contact_sheet {
        if !matches!(
            io::format_from_path(sheet),
            Some(Format::Jpeg | Format::Png)
        ) {
            bail!(UsageError(format!(
                "--contact-sheet {}: use a .jpg or .png name",
                sheet.display()
            )));
        }
    }
    if let (Some(dir), false) = (&b.out_dir, b.dry_run) {
        if dir.exists() && !dir.is_dir() {
            bail!(UsageError(format!(
                "--out-dir {} is a file, not a folder",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Runs `lensblur blur` as a batch.
pub fn run(cli: &Cli, args: &BlurArgs) -> anyhow::Result<ExitCode> {
    check_usage(args)?;
    let started = Instant::now();
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let common = &args.common;
    let jobs = if args.batch.jobs == 0 {
        AUTO_JOBS
    } else {
        args.batch.jobs
    };
    let mut plan = plan(args);
    let quiet = cli.quiet;

    if !quiet && plan.subdirs_skipped > 0 && !args.batch.recursive {
        eprintln!(
            "lensblur: {} subfolder(s) not searched; pass --recursive to include them",
            plan.subdirs_skipped
        );
    }
    // The runtime the model ran on (the report's settings); none on a dry run.
    let mut runtime = None;
    if args.batch.dry_run {
        print_plan(&plan);
    } else if !plan.todo.is_empty() {
        if common.threads > 0 {
            // A second build (e.g. the pool is already set) is harmless: keep the first.
            let _ = rayon::ThreadPoolBuilder::new()
                .num_threads(common.threads)
                .build_global();
        }
        let opts = common.matte.analyse_options(common.threads);
        let matter = crate::load_matter(cli, &common.matte, &opts)?;
        runtime = Some(crate::runtime_name(&matter));
        let skipped = plan
            .records
            .iter()
            .filter(|r| r.status == Status::Skipped)
            .count();
        if !quiet {
            eprintln!(
                "lensblur: {} photo(s) to blur at strength {}{}{}, {jobs} in flight",
                plan.todo.len(),
                args.strength,
                if skipped > 0 {
                    format!(", {skipped} skipped (output exists)")
                } else {
                    String::new()
                },
                if plan.unsupported.is_empty() {
                    String::new()
                } else {
                    format!(", {} non-photo file(s) ignored", plan.unsupported.len())
                },
            );
        }
        let mut sheet = args
            .batch
            .contact_sheet
            .as_ref()
            .map(|_| ContactSheet::new());
        let todo = std::mem::take(&mut plan.todo);
        run_pipeline(
            cli,
            args,
            &opts,
            &matter,
            jobs,
            todo,
            &mut plan.records,
            sheet.as_mut(),
        );
        if let (Some(sheet), Some(path)) = (sheet, &args.batch.contact_sheet) {
            match sheet.write(path) {
                Ok(n) if !quiet => {
                    eprintln!(
                        "lensblur: contact sheet of {n} photo(s): {}",
                        path.display()
                    )
                }
                Ok(_) => {}
                Err(e) => eprintln!("lensblur: error: contact sheet: {e}"),
            }
        }
    }

    let totals = Totals::of(&plan.records, plan.unsupported.len());
    let elapsed = started.elapsed();
    print_summary(cli, args, &plan, &totals, elapsed);
    if let (Some(path), false) = (&args.batch.report, args.batch.dry_run) {
        let report = Report {
            report_version: 1,
            lensblur_version: env!("CARGO_PKG_VERSION"),
            started_unix_s: started_unix,
            elapsed_s: elapsed.as_secs_f64(),
            dry_run: args.batch.dry_run,
            settings: settings(args, jobs, runtime),
            totals: totals.clone(),
            files: plan.records,
            unsupported: plan
                .unsupported
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&report).context("cannot serialise the report")?;
        // The report describes this run: replacing the previous run's report is expected.
        io::write_atomic(path, &json, true)?;
    }
    Ok(if totals.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn settings(args: &BlurArgs, jobs: usize, runtime: Option<&str>) -> Settings {
    Settings {
        strength: args.strength,
        highlights: args.highlights,
        force: args.force,
        format: args.format.map(|f| crate::format_arg(f).to_string()),
        quality: args.quality,
        name: args.batch.name.clone(),
        out_dir: out_dir(args).map(|d| d.display().to_string()),
        overwrite: args.common.overwrite,
        jobs,
        threads: args.common.threads,
        model: args.common.matte.model.clone(),
        refine: format!("{:?}", args.common.matte.refine).to_lowercase(),
        runtime: runtime.map(str::to_string),
    }
}

/// `--dry-run`: one line per input on stdout (`write`, `skip`, `fail`).
fn print_plan(plan: &Plan) {
    for r in &plan.records {
        match r.status {
            Status::Planned => println!(
                "write {} -> {}",
                r.input,
                r.output.as_deref().unwrap_or("?")
            ),
            Status::Skipped => {
                println!("skip  {} ({})", r.input, r.reason.as_deref().unwrap_or(""))
            }
            Status::Failed => println!("fail  {}", r.error.as_deref().unwrap_or(&r.input)),
            Status::Done => {}
        }
    }
    for u in &plan.unsupported {
        println!("ignore {} (not a photo)", u.display());
    }
}

fn print_summary(cli: &Cli, args: &BlurArgs, plan: &Plan, t: &Totals, elapsed: Duration) {
    let failures: Vec<&FileRecord> = plan
        .records
        .iter()
        .filter(|r| r.status == Status::Failed)
        .collect();
    if !failures.is_empty() {
        eprintln!("lensblur: {} failed:", failures.len());
        for r in &failures {
            eprintln!("  {}", r.error.as_deref().unwrap_or(&r.input));
            if let Some(h) = &r.hint {
                eprintln!("    hint: {h}");
            }
        }
    }
    if cli.quiet {
        return;
    }
    let worked = t.done + t.failed;
    let rate = if elapsed.as_secs_f64() > 0.0 && worked > 0 {
        format!(
            ", {:.1} photos/min",
            worked as f64 / elapsed.as_secs_f64() * 60.0
        )
    } else {
        String::new()
    };
    let verb = if args.batch.dry_run {
        "would write"
    } else {
        "done"
    };
    let n = if args.batch.dry_run {
        t.planned
    } else {
        t.done
    };
    eprintln!(
        "lensblur: {n} {verb}, {} skipped, {} failed, {} non-photo file(s) ignored in {:.1} s{rate}",
        t.skipped,
        t.failed,
        t.unsupported,
        elapsed.as_secs_f64()
    );
    if args.common.timings && t.done > 0 {
        let done: Vec<&FileRecord> = plan
            .records
            .iter()
            .filter(|r| r.status == Status::Done)
            .collect();
        let mut parts = Vec::new();
        for (i, (name, _)) in Timings::default().stages().iter().enumerate() {
            let vals: Vec<f64> = done
                .iter()
                .filter_map(|r| r.timings_ms.stages()[i].1)
                .collect();
            if !vals.is_empty() {
                parts.push(format!(
                    "{name} {:.0}",
                    vals.iter().sum::<f64>() / vals.len() as f64
                ));
            }
        }
        eprintln!("  mean ms per photo: {}", parts.join(", "));
    }
}

/// A photo moving through the stages.
struct Item<'a> {
    idx: usize,
    job: &'a Job,
    rec: FileRecord,
    started: Instant,
    photo: Option<Photo>,
    analysis: Option<Analysis>,
}

impl Item<'_> {
    fn fail(&mut self, e: anyhow::Error) {
        self.rec.status = Status::Failed;
        self.rec.error = Some(crate::describe(&self.job.input, &e));
        self.rec.hint = e.downcast_ref::<Error>().and_then(crate::hint_for);
        self.photo = None;
        self.analysis = None;
    }

    fn ok(&self) -> bool {
        self.rec.status != Status::Failed
    }
}

/// Runs `f`, turning a panic into an error so one bad photo cannot end the batch.
fn guarded<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            bail!("internal error (panic: {msg}); please report it with this photo")
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_pipeline(
    cli: &Cli,
    args: &BlurArgs,
    opts: &AnalyseOptions,
    matter: &Matter,
    jobs: usize,
    todo: Vec<(usize, Job)>,
    records: &mut [FileRecord],
    mut sheet: Option<&mut ContactSheet>,
) {
    let decode_opts = DecodeOptions {
        max_pixels: args.common.max_pixels,
    };
    let render_opts = crate::render_options(args);
    let total = todo.len();
    let (tok_tx, tok_rx) = sync_channel::<()>(jobs);
    for _ in 0..jobs {
        let _ = tok_tx.send(());
    }
    let (dec_tx, dec_rx) = sync_channel::<Item>(1);
    let dec_rx = std::sync::Mutex::new(dec_rx);
    let (ana_tx, ana_rx) = sync_channel::<Item>(1);
    let (done_tx, done_rx) = sync_channel::<(Item, Option<Thumbs>)>(jobs);
    let want_thumbs = sheet.is_some();
    // With the default thread count every stage runs inside rten's pool (one thread per physical
    // core), so the image code's rayon work and the model share one set of threads: two pools side
    // by side oversubscribe the cores and made overlapping stages slower than running them in turn.
    let shared_pool = args.common.threads == 0;
    let mut progress = Progress::new(cli.quiet, total);

    std::thread::scope(|s| {
        let todo = &todo;
        // Decode: waits for a token (a free slot) before reading the next photo.
        s.spawn(move || {
            for (idx, job) in todo {
                if tok_rx.recv().is_err() {
                    break;
                }
                let mut item = Item {
                    idx: *idx,
                    job,
                    rec: FileRecord::new(&job.input, Some(&job.output), Status::Done),
                    started: Instant::now(),
                    photo: None,
                    analysis: None,
                };
                let t = Instant::now();
                match guarded(|| {
                    on_pool(shared_pool, || {
                        Ok(io::decode_file(&job.input, &decode_opts)?)
                    })
                }) {
                    Ok(p) => {
                        item.rec.timings_ms.set("decode", t.elapsed());
                        item.rec.width = Some(p.rgb.width);
                        item.rec.height = Some(p.rgb.height);
                        item.photo = Some(p);
                    }
                    Err(e) => item.fail(e),
                }
                if dec_tx.send(item).is_err() {
                    break;
                }
            }
        });
        // Analyse: the model, matte refinement and foreground colour. Two workers share the one
        // loaded model when three or more photos are in flight: two inferences side by side use
        // the cores better than one after another (u2netp scales ~1.6x from 1 to 2 threads).
        let dec_rx = &dec_rx;
        for _ in 0..analyse_workers(jobs) {
            let ana_tx = ana_tx.clone();
            s.spawn(move || loop {
                let next = match dec_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => break,
                };
                let Ok(mut item) = next else { break };
                if let Some(photo) = item.photo.as_ref().filter(|_| item.ok()) {
                    match guarded(|| {
                        on_pool(shared_pool, || Ok(lensblur::analyse(photo, matter, opts)?))
                    }) {
                        Ok(a) => {
                            for (stage, d) in &a.timings {
                                item.rec.timings_ms.set(stage, *d);
                            }
                            item.rec.matte_confidence = Some(a.confidence());
                            item.rec.no_subject = Some(a.no_subject());
                            item.analysis = Some(a);
                        }
                        Err(e) => item.fail(e),
                    }
                }
                if ana_tx.send(item).is_err() {
                    break;
                }
            });
        }
        drop(ana_tx);
        // Render, encode, write; then free the slot.
        s.spawn(move || {
            for mut item in ana_rx {
                let mut thumbs = None;
                if item.ok() {
                    match guarded(|| {
                        on_pool(shared_pool, || {
                            finish(&mut item, &render_opts, args, want_thumbs)
                        })
                    }) {
                        Ok(t) => thumbs = t,
                        Err(e) => item.fail(e),
                    }
                }
                item.rec.timings_ms.set("total", item.started.elapsed());
                item.photo = None;
                item.analysis = None;
                let _ = tok_tx.send(());
                if done_tx.send((item, thumbs)).is_err() {
                    break;
                }
            }
        });
        // Collect on this thread: progress, messages, records.
        for (item, thumbs) in done_rx {
            let rec = item.rec;
            progress.tick(&rec, args.force);
            if let (Some(sheet), Some(t)) = (sheet.as_deref_mut(), thumbs) {
                sheet.add(item.idx, &rec.input, t.before, t.after);
            }
            records[item.idx] = rec;
        }
    });
    progress.finish();
}

/// Runs `f` inside rten's thread pool when `shared` (its rayon work then stays on that pool).
fn on_pool<T: Send>(shared: bool, f: impl FnOnce() -> T + Send) -> T {
    if shared {
        rten::thread_pool().run(f)
    } else {
        f()
    }
}

/// Analyse workers for `jobs` photos in flight (see `run_pipeline`). `LENSBLUR_ANALYSE_WORKERS`
/// overrides it, for the batch benchmark.
fn analyse_workers(jobs: usize) -> usize {
    match std::env::var("LENSBLUR_ANALYSE_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) if n > 0 => n,
        _ if jobs >= 3 => 2,
        _ => 1,
    }
}

/// Before/after thumbnails for the contact sheet.
struct Thumbs {
    before: Thumb,
    after: Thumb,
}

fn finish(
    item: &mut Item<'_>,
    render_opts: &RenderOptions,
    args: &BlurArgs,
    want_thumbs: bool,
) -> anyhow::Result<Option<Thumbs>> {
    let (Some(photo), Some(analysis)) = (item.photo.as_ref(), item.analysis.as_ref()) else {
        bail!("internal error: a stage lost the photo");
    };
    let job = item.job;
    let t = Instant::now();
    let out = lensblur::render(photo, analysis, render_opts)?;
    item.rec.timings_ms.set("render", t.elapsed());
    let t = Instant::now();
    let bytes = io::encode(
        &out,
        photo.alpha.as_ref(),
        &photo.meta,
        &EncodeOptions::for_source(job.format, args.quality, photo),
    )?;
    item.rec.timings_ms.set("encode", t.elapsed());
    let t = Instant::now();
    if let Some(dir) = job.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    io::write_atomic(&job.output, &bytes, args.common.overwrite)?;
    item.rec.timings_ms.set("write", t.elapsed());
    Ok(want_thumbs.then(|| Thumbs {
        before: crate::contact_sheet::thumbnail(&photo.rgb),
        after: crate::contact_sheet::thumbnail(&out),
    }))
}

/// Progress: an indicatif bar on a terminal, a line every few seconds otherwise, nothing with -q.
struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    total: usize,
    count: usize,
    failed: usize,
    start: Instant,
    last_line: Instant,
}

/// How often a plain progress line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

impl Progress {
    fn new(quiet: bool, total: usize) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = (!quiet && tty).then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{bar:30}] {pos}/{len} photos  {rate}  eta {eta}  {msg}",
            ) {
                bar.set_style(
                    style
                        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.1} photos/min", s.per_sec() * 60.0);
                        })
                        .progress_chars("=> "),
                );
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            plain: !quiet && !tty,
            total,
            count: 0,
            failed: 0,
            start: Instant::now(),
            last_line: Instant::now(),
        }
    }

    fn tick(&mut self, rec: &FileRecord, force: bool) {
        self.count += 1;
        let note = match rec.status {
            Status::Failed => {
                self.failed += 1;
                Some(format!(
                    "lensblur: error: {}",
                    rec.error.as_deref().unwrap_or(&rec.input)
                ))
            }
            _ if rec.no_subject == Some(true) && !force => Some(format!(
                "lensblur: {}: no clear subject found (confidence {:.2}); written unblurred (use --force to blur anyway)",
                rec.input,
                rec.matte_confidence.unwrap_or(0.0)
            )),
            _ => None,
        };
        if let Some(bar) = &self.bar {
            if let Some(n) = &note {
                bar.println(n);
            }
            if self.failed > 0 {
                bar.set_message(format!("{} failed", self.failed));
            }
            bar.inc(1);
        } else if self.plain {
            if let Some(n) = &note {
                eprintln!("{n}");
            }
            if self.last_line.elapsed() >= PLAIN_EVERY || self.count == self.total {
                self.last_line = Instant::now();
                let secs = self.start.elapsed().as_secs_f64();
                let rate = self.count as f64 / secs.max(1e-9);
                let eta = (self.total - self.count) as f64 / rate.max(1e-9);
                eprintln!(
                    "lensblur: {}/{} photos, {} failed, {:.1} photos/min, eta {:.0} s",
                    self.count,
                    self.total,
                    self.failed,
                    rate * 60.0,
                    eta
                );
            }
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_template_placeholders() {
        let p = Path::new("shoot/IMG_01.JPG");
        assert_eq!(
            render_name("{stem}.blur.{ext}", p, "jpg", 28.0),
            Ok("IMG_01.blur.jpg".into())
        );
        assert_eq!(
            render_name("{stem}-{in_ext}-s{strength}.{ext}", p, "png", 28.5),
            Ok("IMG_01-JPG-s28.5.png".into())
        );
        assert!(render_name("{nope}.jpg", p, "jpg", 1.0).is_err());
        assert!(render_name("{stem", p, "jpg", 1.0).is_err());
        assert!(render_name("sub/{stem}.jpg", p, "jpg", 1.0).is_err());
        assert!(render_name("", p, "jpg", 1.0).is_err());
    }
}
