//! The per-file record of a batch and the `--report FILE.json` document built from it.

use std::path::Path;

use serde::Serialize;

/// What happened to one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Written.
    Done,
    /// Not processed on purpose (output exists, or the file is itself an output of this batch).
    Skipped,
    /// Tried and failed, or could not be tried (missing, would overwrite an input, name collision).
    Failed,
    /// `--dry-run`: would be written.
    Planned,
}

/// Milliseconds per stage; absent stages were not reached.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refine: Option<f64>,
    /// The person/animal detector and any re-matting it asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subjects: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreground: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub render: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encode: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write: Option<f64>,
    /// Wall time from the start of decoding to the end of writing, waits between stages included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
}

impl Timings {
    /// Stores a stage time under its library name (`model`, `refine`, …); unknown names are ignored.
    pub fn set(&mut self, stage: &str, d: std::time::Duration) {
        let ms = Some(d.as_secs_f64() * 1e3);
        match stage {
            "decode" => self.decode = ms,
            "model" => self.model = ms,
            "refine" => self.refine = ms,
            "subjects" => self.subjects = ms,
            "foreground" => self.foreground = ms,
            "render" => self.render = ms,
            "encode" => self.encode = ms,
            "write" => self.write = ms,
            "total" => self.total = ms,
            _ => {}
        }
    }

    /// (name, ms) of the stages that ran, in pipeline order.
    pub fn stages(&self) -> [(&'static str, Option<f64>); 9] {
        [
            ("decode", self.decode),
            ("model", self.model),
            ("subjects", self.subjects),
            ("refine", self.refine),
            ("foreground", self.foreground),
            ("render", self.render),
            ("encode", self.encode),
            ("write", self.write),
            ("total", self.total),
        ]
    }
}

/// One input's line in the report.
#[derive(Debug, Clone, Serialize)]
pub struct FileRecord {
    /// The input path as found.
    pub input: String,
    /// Where the output goes (or would go); absent when none could be chosen.
    pub output: Option<String>,
    /// Outcome.
    pub status: Status,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why it failed (one line, names the problem).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the user can do about the failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Pixel size after EXIF orientation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<usize>,
    /// Subject confidence from the model in [0, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matte_confidence: Option<f32>,
    /// True when no clear subject was found (the photo was written unblurred unless `--force`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_subject: Option<bool>,
    /// Stage timings in milliseconds.
    pub timings_ms: Timings,
}

impl FileRecord {
    /// A record for `input` with nothing decided yet.
    pub fn new(input: &Path, output: Option<&Path>, status: Status) -> Self {
        FileRecord {
            input: input.display().to_string(),
            output: output.map(|o| o.display().to_string()),
            status,
            reason: None,
            error: None,
            hint: None,
            width: None,
            height: None,
            matte_confidence: None,
            no_subject: None,
            timings_ms: Timings::default(),
        }
    }
}

/// Counts per outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub done: usize,
    pub skipped: usize,
    pub failed: usize,
    pub planned: usize,
    /// Files found in folders or by globs that are not photos (ignored).
    pub unsupported: usize,
}

impl Totals {
    /// Counts `files`.
    pub fn of(files: &[FileRecord], unsupported: usize) -> Self {
        let count = |s| files.iter().filter(|f| f.status == s).count();
        Totals {
            done: count(Status::Done),
            skipped: count(Status::Skipped),
            failed: count(Status::Failed),
            planned: count(Status::Planned),
            unsupported,
        }
    }
}

/// The settings every photo of the batch was rendered with (the "same look" promise).
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub strength: f32,
    pub highlights: f32,
    pub force: bool,
    pub format: Option<String>,
    pub quality: u8,
    pub name: String,
    pub out_dir: Option<String>,
    pub overwrite: bool,
    pub jobs: usize,
    pub threads: usize,
    pub model: String,
    pub refine: String,
    /// The model runtime used (`rten`, `ort`).
    pub runtime: Option<String>,
}

/// The whole `--report` document.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Format version of this document.
    pub report_version: u32,
    /// `lensblur` version that wrote it.
    pub lensblur_version: &'static str,
    /// Seconds since the Unix epoch when the batch started.
    pub started_unix_s: u64,
    /// Wall time of the whole batch.
    pub elapsed_s: f64,
    pub dry_run: bool,
    pub settings: Settings,
    pub totals: Totals,
    /// One entry per photo, in input order.
    pub files: Vec<FileRecord>,
    /// Ignored non-photo files.
    pub unsupported: Vec<String>,
}
