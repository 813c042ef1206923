//! `lensblur eval DATA`: the matte-quality table published in the README.
//!
//! DATA holds `matting/` (close-up crops with real alpha and trimaps) and `pets/` (whole photos with
//! real masks), laid out as in the project's shared data folder. Prints Markdown tables: the
//! refinement stage on the crops (model-independent), then every model × refinement on the pets,
//! with model time per photo and the whole analysis at 12 MP.

use std::time::Instant;

use anyhow::{bail, Context};
use lensblur::buffer::RgbPlanes;
use lensblur::eval::{self, MaskSample, REFINE_METHODS};
use lensblur::matte::coarse_matte;
use lensblur::matte::refine::{refine, RefineOptions};
use lensblur::models::{self, ModelStore};
use lensblur::resample::resize_rgb;
use lensblur::{AnalyseOptions, Matter};

use crate::cli::{Cli, EvalArgs};
use crate::UsageError;

/// Size of the upscaled photo used for the speed column, in megapixels.
const SPEED_MP: f64 = 12.0;

pub fn run(cli: &Cli, args: &EvalArgs) -> anyhow::Result<()> {
    let data = &args.data;
    let matting = data.join("matting");
    let pets = data.join("pets");
    if !matting.is_dir() && !pets.is_dir() {
        bail!(UsageError(format!(
            "{}: expected a folder holding matting/ (N_image.png, N_alpha.png, N_trimap.png) and/or \
             pets/ (images/X.jpg, trimaps/X.png), e.g. the project's ../shared/data",
            data.display()
        )));
    }
    let store = ModelStore::new(args.model_dir.clone()).context("cannot open the model cache")?;
    let names: Vec<String> = if args.model.is_empty() {
        models::manifest()
            .iter()
            .filter(|s| s.matte && s.rten != models::RtenSupport::Wrong && store.is_installed(s))
            .map(|s| s.name.to_string())
            .collect()
    } else {
        args.model.clone()
    };
    if names.is_empty() {
        bail!(UsageError(
            "no matte model is installed; run `lensblur models install`, or name one with --model"
                .into()
        ));
    }

    if matting.is_dir() {
        let samples = eval::load_matting_set(&matting)
            .with_context(|| format!("cannot read {}", matting.display()))?;
        println!(
            "### Refinement on {} matting crops (real alpha; input = ground truth at ⅛ scale, softened, as a 320-px model gives it)\n",
            samples.len()
        );
        println!("| refinement | SAD | MSE (unknown) | gradient | ms/MP |");
        println!("|---|---:|---:|---:|---:|");
        for r in eval::refinement_table(&samples) {
            println!(
                "| {} | {:.2} | {:.4} | {:.2} | {:.0} |",
                r.method, r.sad, r.mse, r.grad, r.ms_per_mp
            );
        }
        println!();
    }

    if pets.is_dir() {
        let samples = eval::load_mask_set(&pets)
            .with_context(|| format!("cannot read {}", pets.display()))?;
        let speed_photo = samples
            .iter()
            .max_by_key(|s| s.image.width * s.image.height)
            .map(upscale_to_speed_size);
        println!(
            "### Models on {} whole photos with real masks (Oxford-IIIT pets; IoU of α > 0.5, boundary band ignored)\n",
            samples.len()
        );
        println!("| model | refinement | mean IoU | worst IoU (photo) | model ms/photo | refine ms/MP | analysis at {SPEED_MP:.0} MP, s |");
        println!("|---|---|---:|---:|---:|---:|---:|");
        for name in &names {
            let opts = AnalyseOptions {
                model: name.clone(),
                model_dir: args.model_dir.clone(),
                threads: args.threads,
                ..Default::default()
            };
            let spec = models::find(name)?;
            if !store.is_installed(spec) {
                if !cli.quiet {
                    eprintln!("lensblur: {name} is not installed; skipped (`lensblur models install {name}`)");
                }
                continue;
            }
            let matter = Matter::from_installed(&opts)?;
            let methods: Vec<_> = REFINE_METHODS.iter().map(|(_, m)| *m).collect();
            let (rows, model_time) = eval::mask_rows(matter.backend(), &samples, &methods)?;
            let speed = speed_photo
                .as_ref()
                .map(|p| analysis_seconds(&matter, p))
                .transpose()?;
            for ((label, _), r) in REFINE_METHODS.iter().zip(&rows) {
                let total = speed
                    .as_ref()
                    .map(|(model, per_method)| {
                        let refine = per_method
                            .iter()
                            .find(|(l, _)| l == label)
                            .map_or(0.0, |(_, s)| *s);
                        format!("{:.2}", model + refine)
                    })
                    .unwrap_or_else(|| "–".into());
                println!(
                    "| {name} | {label} | {:.4} | {:.4} ({}) | {:.0} | {:.0} | {total} |",
                    r.mean_iou,
                    r.worst.0,
                    r.worst.1,
                    model_time.as_secs_f64() * 1e3,
                    r.refine_ms_per_mp,
                );
            }
        }
        println!();
    }
    Ok(())
}

/// The largest pet photo upscaled to about [`SPEED_MP`], for realistic per-photo timings.
fn upscale_to_speed_size(s: &MaskSample) -> RgbPlanes {
    let (w, h) = (s.image.width as f64, s.image.height as f64);
    let f = (SPEED_MP * 1e6 / (w * h)).sqrt();
    resize_rgb(&s.image, (w * f).round() as usize, (h * f).round() as usize)
}

/// Model seconds and refinement seconds per method on one large photo.
fn analysis_seconds(
    matter: &Matter,
    photo: &RgbPlanes,
) -> anyhow::Result<(f64, Vec<(&'static str, f64)>)> {
    let t = Instant::now();
    let coarse = coarse_matte(matter.backend(), photo)?;
    let model = t.elapsed().as_secs_f64();
    let per_method = REFINE_METHODS
        .iter()
        .map(|&(label, method)| {
            let t = Instant::now();
            let _ = refine(photo, &coarse.map, &RefineOptions { method });
            (label, t.elapsed().as_secs_f64())
        })
        .collect();
    Ok((model, per_method))
}
