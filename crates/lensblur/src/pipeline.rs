//! The two-stage pipeline: [`analyse`] once per photo, [`render`] per strength.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::bokeh::Aperture;
use crate::buffer::{Plane, RgbPlanes};
use crate::coc::{blur_radius_px, coc_map};
use crate::color::{planes_to_linear, planes_to_srgb_in_place};
use crate::composite::{render_linear, render_linear_depth, snap_alpha, RenderParams};
use crate::depth::{self, Focus};
use crate::error::{Error, Result};
use crate::grain::{add_grain, estimate_noise, restore_fraction, Grain, NoiseModel};
use crate::io::Photo;
use crate::matte::detect::{complete_subjects, Detector, PERSON};
use crate::matte::foreground::estimate_foreground;
use crate::matte::refine::{refine, RefineMethod, RefineOptions};
use crate::matte::strands::extend_strands;
use crate::matte::{coarse_matte, load_backend, CoarseMatte, MatteBackend, Runtime};
use crate::models::{self, ModelStore};
use crate::resample::{resize_plane, resize_rgb};

/// Smallest side we process; below this the model and filters are meaningless.
pub const MIN_SIDE: usize = 8;

/// Options for [`analyse`] and for loading the model with [`Matter::from_installed`].
#[derive(Clone, Debug)]
pub struct AnalyseOptions {
    /// Manifest name of the matte model. Default: `u2netp`.
    pub model: String,
    /// Model cache directory. Default: `$XDG_CACHE_HOME/lensblur/models`.
    pub model_dir: Option<PathBuf>,
    /// Inference threads (0 = all cores). Default: 0.
    pub threads: usize,
    /// Matte refinement method. Default: trimap + matting in the unknown band.
    pub refine: RefineMethod,
    /// Keep every person and animal of the subject's size sharp (group photos), using the
    /// detector model when it is installed. Default: true.
    pub all_subjects: bool,
    /// Inference runtime. Default: [`Runtime::Auto`] (ONNX Runtime when built in and loadable).
    pub runtime: Runtime,
}

impl Default for AnalyseOptions {
    fn default() -> Self {
        AnalyseOptions {
            model: models::DEFAULT_MODEL.to_string(),
            model_dir: None,
            threads: 0,
            refine: RefineMethod::default(),
            all_subjects: true,
            runtime: Runtime::default(),
        }
    }
}

/// A loaded matte model, built once and reused for every photo.
#[derive(Debug)]
pub struct Matter {
    backend: Box<dyn MatteBackend>,
    detector: Option<Detector>,
}

impl Matter {
    /// Wraps any backend (e.g. a fake in tests, or another runtime).
    pub fn new(backend: Box<dyn MatteBackend>) -> Self {
        Matter {
            backend,
            detector: None,
        }
    }

    /// Adds the person/animal detector that completes group photos (see [`crate::matte::detect`]).
    pub fn with_detector(mut self, detector: Detector) -> Self {
        self.detector = Some(detector);
        self
    }

    /// True when a detector is attached.
    pub fn has_detector(&self) -> bool {
        self.detector.is_some()
    }

    /// Loads `opts.model` from the cache; fails with [`Error::ModelNotInstalled`] if it is missing
    /// (callers that may download call [`ModelStore::install`] first).
    pub fn from_installed(opts: &AnalyseOptions) -> Result<Self> {
        let spec = models::find(&opts.model)?;
        if !spec.matte {
            return Err(Error::InvalidOption(format!(
                "{} is not a matte model (see `lensblur models list`)",
                spec.name
            )));
        }
        let store = ModelStore::new(opts.model_dir.clone())?;
        if !store.is_installed(spec) {
            return Err(Error::ModelNotInstalled {
                name: spec.name.to_string(),
                dir: store.dir.clone(),
            });
        }
        let backend = load_backend(&store.path(spec), spec, opts.runtime, opts.threads)?;
        let mut matter = Matter::new(backend);
        if opts.all_subjects {
            let det = models::find(models::DETECTOR_MODEL)?;
            if store.is_installed(det) {
                // On the runtime the matte model got (`Auto` is resolved by now).
                let runtime = matter.runtime().unwrap_or(Runtime::Rten);
                matter = matter.with_detector(Detector::load_on(
                    &store.path(det),
                    runtime,
                    opts.threads,
                )?);
            } else {
                tracing::warn!(
                    "{} is not installed: only the most salient subject is kept sharp \
                     (`lensblur models install {}`)",
                    det.name,
                    det.name
                );
            }
        }
        Ok(matter)
    }

    /// The backend.
    pub fn backend(&self) -> &dyn MatteBackend {
        self.backend.as_ref()
    }

    /// The runtime the model runs on (`None` for a custom backend).
    pub fn runtime(&self) -> Option<Runtime> {
        self.backend.runtime()
    }
}

/// Everything [`render`] needs that is expensive to compute: reuse it across strengths.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// Full-resolution refined alpha in [0, 1] (1 = subject).
    pub alpha: Plane,
    /// Estimated foreground colour, linear light.
    pub foreground: RgbPlanes,
    /// The photo in linear light (cached so renders skip the conversion).
    pub linear: RgbPlanes,
    /// The model's coarse output and confidence.
    pub coarse: CoarseMatte,
    /// The photo's noise (for matched grain).
    pub noise: NoiseModel,
    /// Depth, when one was attached with [`Analysis::set_depth`].
    pub depth: Option<DepthLayers>,
    /// Time spent per stage.
    pub timings: Vec<(&'static str, Duration)>,
}

/// A depth map fitted to the photo.
#[derive(Clone, Debug)]
pub struct DepthLayers {
    /// Disparity (larger = nearer), full resolution, holes filled.
    pub disparity: Plane,
    /// The background's disparity: under the subject and across its soft edge, filled from the
    /// surrounding background (see [`depth::background_disparity`]).
    pub background: Plane,
}

impl Analysis {
    /// True when the model found no subject (flat, low-confidence map).
    pub fn no_subject(&self) -> bool {
        self.coarse.no_subject()
    }

    /// Subject confidence in [0, 1].
    pub fn confidence(&self) -> f32 {
        self.coarse.confidence
    }

    /// Attaches a depth map (disparity-like, larger = nearer; any size with the photo's aspect
    /// ratio; NaN = unknown, see [`depth::load`]). Renders then blur by distance from the focal
    /// plane, depth-ordered.
    pub fn set_depth(&mut self, disparity: &Plane) -> Result<()> {
        let (w, h) = (self.alpha.width, self.alpha.height);
        let fitted = depth::fit(disparity, w, h)?;
        let background = depth::background_disparity(&fitted, &self.alpha);
        self.depth = Some(DepthLayers {
            disparity: fitted,
            background,
        });
        Ok(())
    }
}

/// Options for [`render`].
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// Blur strength 1–100, resolution independent: subtle 1–15, medium 20–35, strong 40–60,
    /// maximum 70–100 (≈ 85 mm f/1.2). Default: 30.
    pub strength: f32,
    /// Highlight boost 0–1: how strongly near-clipped lights bloom into bokeh balls. Default: 0.5.
    pub highlights: f32,
    /// Blur even when the model found no subject (the whole frame is then background-weighted by the
    /// low-confidence matte). Without it such a photo is returned unblurred. Default: false.
    pub force: bool,
    /// Grain added to blurred areas. Default: matched to the photo's noise.
    pub grain: Grain,
    /// Focal plane, used when the analysis has depth. Default: the subject.
    pub focus: Focus,
    /// Aperture: shape (disc, polygon), rotation, blade curvature, cat's eye, profile. Default: disc.
    pub aperture: Aperture,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            strength: 30.0,
            highlights: 0.5,
            force: false,
            grain: Grain::Auto,
            focus: Focus::Subject,
            aperture: Aperture::default(),
        }
    }
}

impl RenderOptions {
    /// Checks ranges; the one place options are validated.
    pub fn validate(&self) -> Result<()> {
        if !(1.0..=100.0).contains(&self.strength) {
            return Err(Error::InvalidOption(format!(
                "strength {} is outside 1–100",
                self.strength
            )));
        }
        if !(0.0..=1.0).contains(&self.highlights) {
            return Err(Error::InvalidOption(format!(
                "highlights {} is outside 0–1",
                self.highlights
            )));
        }
        if let Grain::Levels(l) = self.grain {
            if !(0.0..=50.0).contains(&l) {
                return Err(Error::InvalidOption(format!(
                    "grain {l} is outside 0–50 levels"
                )));
            }
        }
        if let Focus::Point { x, y } = self.focus {
            if !((0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y)) {
                return Err(Error::InvalidOption(format!(
                    "focus point ({x}, {y}) is outside the photo (fractions 0–1)"
                )));
            }
        }
        self.aperture.validate()?;
        Ok(())
    }
}

fn check_size(photo: &Photo) -> Result<()> {
    let (w, h) = (photo.rgb.width, photo.rgb.height);
    if w < MIN_SIDE || h < MIN_SIDE {
        return Err(Error::TooSmall {
            width: w as u64,
            height: h as u64,
            min: MIN_SIDE as u64,
        });
    }
    Ok(())
}

/// Finds the subject: model, full-resolution refinement, foreground colour.
pub fn analyse(photo: &Photo, matter: &Matter, opts: &AnalyseOptions) -> Result<Analysis> {
    check_size(photo)?;
    let mut timings = Vec::new();
    let t = Instant::now();
    // Linearising does not depend on the model: overlap it with inference.
    let (coarse, linear) = rayon::join(
        || coarse_matte(matter.backend(), &photo.rgb),
        || planes_to_linear(&photo.rgb),
    );
    let mut coarse = coarse?;
    timings.push(("model", t.elapsed()));

    // Whether the subject may have whiskers worth the strand search: not when it is people only
    // (nor when there is no detector to tell).
    let mut strands = false;
    if let Some(detector) = &matter.detector {
        if !coarse.no_subject() {
            let t = Instant::now();
            let found = detector.detect(&photo.rgb)?;
            let (group, n) =
                complete_subjects(matter.backend(), &photo.rgb, &mut coarse.map, &found)?;
            tracing::debug!(?group, rematted = n, "subjects");
            strands = !group.iter().any(|d| d.class == PERSON);
            timings.push(("subjects", t.elapsed()));
        }
    }

    let t = Instant::now();
    let mut alpha = refine(
        &photo.rgb,
        &coarse.map,
        &RefineOptions {
            method: opts.refine,
        },
    );
    // Not for people: the edge band already holds their hair, and straight lines at their feet (a
    // pier's planks) or round them (outlined lettering) would pass for strands. Animals the
    // detector does not know (rabbits, camels) and products keep it.
    if strands && opts.refine == RefineMethod::Matting {
        let n = extend_strands(&photo.rgb, &mut alpha);
        tracing::debug!(pixels = n, "strands added to the matte");
    }
    timings.push(("refine", t.elapsed()));

    let t = Instant::now();
    let (foreground, noise) = rayon::join(
        || estimate_foreground(&linear, &alpha),
        || estimate_noise(&photo.rgb),
    );
    timings.push(("foreground", t.elapsed()));
    Ok(Analysis {
        alpha,
        foreground,
        linear,
        coarse,
        noise,
        depth: None,
        timings,
    })
}

/// Renders the blurred photo (sRGB-encoded planes, same size as the input).
pub fn render(photo: &Photo, analysis: &Analysis, opts: &RenderOptions) -> Result<RgbPlanes> {
    opts.validate()?;
    check_size(photo)?;
    let (w, h) = (photo.rgb.width, photo.rgb.height);
    if analysis.alpha.width != w || analysis.alpha.height != h {
        return Err(Error::InvalidOption(format!(
            "analysis is {}x{} but the photo is {w}x{h}",
            analysis.alpha.width, analysis.alpha.height
        )));
    }
    if analysis.no_subject() && !opts.force {
        return Ok(photo.rgb.clone());
    }
    let params = RenderParams {
        radius: blur_radius_px(opts.strength, w, h),
        highlights: opts.highlights,
        aperture: opts.aperture.clone(),
    };
    let alpha = &analysis.alpha;
    let grain = opts.grain.model(&analysis.noise);
    // Grain goes where the blur removed the photo's own noise.
    let seed = (w as u64) << 32 | h as u64;
    let out = match &analysis.depth {
        None => {
            let mut out = render_linear(&analysis.linear, &analysis.foreground, alpha, &params);
            planes_to_srgb_in_place(&mut out);
            let keep = restore_fraction(params.radius);
            add_grain(&mut out, &grain, seed, |i| {
                (1.0 - snap_alpha(alpha.data[i])) * keep
            });
            out
        }
        Some(d) => {
            let focus = depth::focus_disparity(&d.disparity, alpha, opts.focus);
            let coc = coc_map(&d.background, focus, opts.strength);
            tracing::debug!(focus, "depth render: focal-plane disparity");
            let mut out =
                render_linear_depth(&analysis.linear, &analysis.foreground, alpha, &coc, &params);
            planes_to_srgb_in_place(&mut out);
            add_grain(&mut out, &grain, seed, |i| {
                (1.0 - snap_alpha(alpha.data[i])) * restore_fraction(coc.data[i].abs())
            });
            out
        }
    };
    Ok(out)
}

/// The size a `width × height` image is shrunk to so it has at most `max_pixels` pixels, keeping
/// its aspect ratio (each side rounded down, at least [`MIN_SIDE`]); unchanged when it already fits.
pub fn fit_pixels(width: usize, height: usize, max_pixels: u64) -> (usize, usize) {
    let n = width as u64 * height as u64;
    if n <= max_pixels || n == 0 {
        return (width, height);
    }
    let s = (max_pixels as f64 / n as f64).sqrt();
    let w = ((width as f64 * s).floor() as usize).clamp(MIN_SIDE.min(width), width);
    let h = ((height as f64 * s).floor() as usize).clamp(MIN_SIDE.min(height), height);
    (w, h)
}

/// A `width × height` copy of `photo` (colour and source alpha resampled with the antialiased
/// filter of [`crate::resample`]; metadata, format and bit depth kept). Used for previews.
pub fn downscale_photo(photo: &Photo, width: usize, height: usize) -> Photo {
    Photo {
        rgb: resize_rgb(&photo.rgb, width, height),
        alpha: photo.alpha.as_ref().map(|a| resize_plane(a, width, height)),
        meta: photo.meta.clone(),
        format: photo.format,
        bit_depth: photo.bit_depth,
    }
}

impl Analysis {
    /// A `width × height` copy of this analysis, for fast previews: [`render`] of the downscaled
    /// photo with it matches a downscaled full-resolution render, because strength is a fraction of
    /// the image diagonal (resolution independent). The linear photo and the foreground are resampled
    /// in linear light; the coarse model output is shared as is; timings are kept.
    pub fn downscaled(&self, width: usize, height: usize) -> Analysis {
        let (alpha, (foreground, linear)) = rayon::join(
            || resize_plane(&self.alpha, width, height),
            || {
                rayon::join(
                    || resize_rgb(&self.foreground, width, height),
                    || resize_rgb(&self.linear, width, height),
                )
            },
        );
        // White noise averaged over s² pixels keeps 1/s of its std: the preview's grain matches the
        // full render seen at the same size.
        let s = width as f32 / self.alpha.width.max(1) as f32;
        Analysis {
            alpha,
            foreground,
            linear,
            coarse: self.coarse.clone(),
            noise: self.noise.scaled(s.min(1.0)),
            depth: self.depth.as_ref().map(|d| DepthLayers {
                disparity: resize_plane(&d.disparity, width, height),
                background: resize_plane(&d.background, width, height),
            }),
            timings: self.timings.clone(),
        }
    }

    /// Bytes held by the full-resolution planes (alpha, foreground, linear photo, depth): what caching
    /// this analysis costs in memory.
    pub fn heap_bytes(&self) -> usize {
        let depth = self
            .depth
            .as_ref()
            .map_or(0, |d| d.disparity.len() + d.background.len());
        (self.alpha.data.len() + self.foreground.len() * 3 + self.linear.len() * 3 + depth)
            * std::mem::size_of::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_pixels_keeps_aspect_and_bound() {
        assert_eq!(fit_pixels(1000, 500, 2_000_000), (1000, 500));
        let (w, h) = fit_pixels(4000, 3000, 2_000_000);
        assert!(w as u64 * h as u64 <= 2_000_000, "{w}x{h}");
        assert!(w as u64 * h as u64 > 1_990_000, "{w}x{h} shrank too far");
        assert!((w as f64 / h as f64 - 4.0 / 3.0).abs() < 0.01);
        // A very thin image keeps at least MIN_SIDE on its short side.
        let (w, h) = fit_pixels(100_000, 10, 1000);
        assert_eq!(h, MIN_SIDE);
        assert!(w <= 100_000);
    }
}
