//! Matte quality against ground truth, behind `lensblur eval` and the matte tests.
//!
//! Metrics are those of the alpha-matting benchmark (Rhemann et al. 2009, "A perceptually motivated
//! online benchmark for image matting") as the Deep Image Matting test set reports them (Xu et al.
//! 2017): SAD and MSE on 8-bit-quantised alphas, and the gradient error — the squared difference of
//! gradient magnitudes after Gaussian-derivative filtering (σ = 1.4) — because SAD alone barely
//! notices a smeared hair edge while the gradient error does. Whole-photo subject masks (the
//! Oxford-IIIT pets) are scored by IoU of α > 0.5 with the boundary band ignored.
//!
//! Two experiments, kept apart because they answer different questions:
//! * [`refinement_table`]: the *refinement* stage on close-up crops with real alpha. A salient-object
//!   model run on a 320-px crop is meaningless, so the coarse input is the ground truth as a model
//!   would deliver it (¹⁄₈ scale plus its softness, [`coarsen`]); `solve_trimap` is given the crop's
//!   trimap. Model-independent.
//! * [`mask_row`]: a model plus a refinement on whole photos, IoU against real masks, with timings.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::buffer::{Plane, RgbPlanes};
use crate::error::{Error, Result};
use crate::io::{decode_file, DecodeOptions};
use crate::matte::refine::{refine, solve_trimap, RefineMethod, RefineOptions};
use crate::matte::{coarse_matte, MatteBackend};
use crate::resample::resize_plane;

/// A close-up crop with real alpha (`N_image.png`, `N_alpha.png`, `N_trimap.png`).
#[derive(Clone, Debug)]
pub struct MattingSample {
    /// Crop name (its number).
    pub name: String,
    /// The photo, sRGB in [0, 1].
    pub image: RgbPlanes,
    /// Ground-truth alpha in [0, 1].
    pub alpha: Plane,
    /// Trimap: 0 background, 0.5 unknown, 1 foreground.
    pub trimap: Plane,
}

/// A whole photo with a real subject mask.
#[derive(Clone, Debug)]
pub struct MaskSample {
    /// Photo name (file stem).
    pub name: String,
    /// The photo, sRGB in [0, 1].
    pub image: RgbPlanes,
    /// Per pixel: `Some(true)` subject, `Some(false)` background, `None` boundary band (ignored).
    pub mask: Vec<Option<bool>>,
}

/// A decoded mask or trimap as 8-bit values: the largest channel, because some are palette PNGs
/// whose classes are coloured (the Oxford-IIIT trimaps store dog as dark green, cat as dark red).
fn grey_u8(path: &Path) -> Result<(usize, usize, Vec<u8>)> {
    let photo = decode_file(path, &DecodeOptions::default())?;
    let p = &photo.rgb;
    let v = (0..p.width * p.height)
        .map(|i| {
            let m = p.c[0][i].max(p.c[1][i]).max(p.c[2][i]);
            (m * 255.0).round().clamp(0.0, 255.0) as u8
        })
        .collect();
    Ok((p.width, p.height, v))
}

fn same_size(path: &Path, image: &RgbPlanes, w: usize, h: usize) -> Result<()> {
    if (w, h) == (image.width, image.height) {
        Ok(())
    } else {
        Err(Error::Decode(format!(
            "{}: {w}x{h}, but its photo is {}x{}",
            path.display(),
            image.width,
            image.height
        )))
    }
}

/// Sorted file stems in `dir` with extension `ext`.
fn stems(dir: &Path, ext: &str) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(ext).map(str::to_string)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Loads every `N_image.png` with its `N_alpha.png` and `N_trimap.png` from `dir`.
pub fn load_matting_set(dir: &Path) -> Result<Vec<MattingSample>> {
    stems(dir, "_image.png")?
        .into_iter()
        .map(|name| {
            let image =
                decode_file(&dir.join(format!("{name}_image.png")), &Default::default())?.rgb;
            let ap = dir.join(format!("{name}_alpha.png"));
            let (w, h, a) = grey_u8(&ap)?;
            same_size(&ap, &image, w, h)?;
            let tp = dir.join(format!("{name}_trimap.png"));
            let (w, h, t) = grey_u8(&tp)?;
            same_size(&tp, &image, w, h)?;
            let alpha = Plane::from_vec(w, h, a.iter().map(|&v| v as f32 / 255.0).collect());
            let trimap = Plane::from_vec(
                w,
                h,
                t.iter()
                    .map(|&v| match v {
                        0 => 0.0,
                        255 => 1.0,
                        _ => 0.5,
                    })
                    .collect(),
            );
            Ok(MattingSample {
                name,
                image,
                alpha,
                trimap,
            })
        })
        .collect()
}

/// Reads one Oxford-IIIT trimap (0 background, 1 cat, 2 dog, 255 boundary band) as a subject
/// mask for [`iou`]: width, height and per pixel subject / background / ignored.
pub fn load_mask(path: &Path) -> Result<(usize, usize, Vec<Option<bool>>)> {
    let (w, h, m) = grey_u8(path)?;
    let mask = m
        .iter()
        .map(|&v| match v {
            255 => None,
            0 => Some(false),
            _ => Some(true),
        })
        .collect();
    Ok((w, h, mask))
}

/// Loads `images/X.jpg` with `trimaps/X.png` (Oxford-IIIT Pet convention: 0 background, 1 cat,
/// 2 dog, 255 boundary band).
pub fn load_mask_set(dir: &Path) -> Result<Vec<MaskSample>> {
    stems(&dir.join("images"), ".jpg")?
        .into_iter()
        .map(|name| {
            let image = decode_file(
                &dir.join("images").join(format!("{name}.jpg")),
                &Default::default(),
            )?
            .rgb;
            let mp = dir.join("trimaps").join(format!("{name}.png"));
            let (w, h, mask) = load_mask(&mp)?;
            same_size(&mp, &image, w, h)?;
            Ok(MaskSample { name, image, mask })
        })
        .collect()
}

fn quantise(a: f32) -> f64 {
    (a.clamp(0.0, 1.0) * 255.0).round() as f64 / 255.0
}

/// Sum of absolute differences ÷ 1000, alphas quantised to 8 bits (as stored files would be).
pub fn sad(alpha: &Plane, gt: &Plane) -> f64 {
    alpha
        .data
        .iter()
        .zip(&gt.data)
        .map(|(&a, &g)| (quantise(a) - g as f64).abs())
        .sum::<f64>()
        / 1000.0
}

/// Mean squared error over the trimap's unknown region (0 when it has none).
pub fn mse(alpha: &Plane, gt: &Plane, trimap: &Plane) -> f64 {
    let (mut se, mut n) = (0.0, 0usize);
    for ((&a, &g), &t) in alpha.data.iter().zip(&gt.data).zip(&trimap.data) {
        if t == 0.5 {
            let d = quantise(a) - g as f64;
            se += d * d;
            n += 1;
        }
    }
    se / n.max(1) as f64
}

/// The Deep Image Matting evaluation's Gaussian-derivative filter (its `gaussgradient.m`), σ = 1.4,
/// as separable factors: a 1-D Gaussian and its derivative over the half-size where the Gaussian
/// falls to 1 %, scaled so the 2-D kernel has unit L2 norm. Matching it keeps our gradient errors
/// comparable with published ones.
fn gauss_kernels() -> (Vec<f64>, Vec<f64>) {
    const SIGMA: f64 = 1.4;
    let sq2pi = (2.0 * std::f64::consts::PI).sqrt();
    let half = (SIGMA * (-2.0 * (sq2pi * SIGMA * 0.01).ln()).sqrt()).ceil() as i64;
    let gauss = |x: f64| (-x * x / (2.0 * SIGMA * SIGMA)).exp() / (SIGMA * sq2pi);
    let g: Vec<f64> = (-half..=half).map(|x| gauss(x as f64)).collect();
    let d: Vec<f64> = (-half..=half)
        .map(|x| -(x as f64) * gauss(x as f64) / (SIGMA * SIGMA))
        .collect();
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
    let scale = 1.0 / (norm(&g) * norm(&d));
    (g, d.iter().map(|v| v * scale).collect())
}

/// Separable correlation with clamped borders: `kx` along rows, then `ky` along columns.
fn sep_filter(src: &[f64], w: usize, h: usize, kx: &[f64], ky: &[f64]) -> Vec<f64> {
    let r = (kx.len() / 2) as i64;
    let clampi = |v: i64, n: usize| v.clamp(0, n as i64 - 1) as usize;
    let mut tmp = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            tmp[y * w + x] = kx
                .iter()
                .enumerate()
                .map(|(i, k)| k * src[y * w + clampi(x as i64 + i as i64 - r, w)])
                .sum();
        }
    }
    let mut out = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = ky
                .iter()
                .enumerate()
                .map(|(i, k)| k * tmp[clampi(y as i64 + i as i64 - r, h) * w + x])
                .sum();
        }
    }
    out
}

fn gradient_magnitude(a: &[f64], w: usize, h: usize) -> Vec<f64> {
    let (g, d) = gauss_kernels();
    let gx = sep_filter(a, w, h, &d, &g);
    let gy = sep_filter(a, w, h, &g, &d);
    gx.iter().zip(&gy).map(|(x, y)| x.hypot(*y)).collect()
}

/// Gradient error ÷ 1000 over the trimap's unknown region: Σ (|∇α| − |∇α_gt|)² with
/// Gaussian-derivative gradients (σ = 1.4).
pub fn gradient_error(alpha: &Plane, gt: &Plane, trimap: &Plane) -> f64 {
    let (w, h) = (alpha.width, alpha.height);
    let a: Vec<f64> = alpha.data.iter().map(|&v| quantise(v)).collect();
    let g: Vec<f64> = gt.data.iter().map(|&v| v as f64).collect();
    let (ga, gg) = (gradient_magnitude(&a, w, h), gradient_magnitude(&g, w, h));
    ga.iter()
        .zip(&gg)
        .zip(&trimap.data)
        .filter(|(_, &t)| t == 0.5)
        .map(|((a, g), _)| (a - g) * (a - g))
        .sum::<f64>()
        / 1000.0
}

/// IoU of `alpha > 0.5` against the mask, boundary band ignored.
pub fn iou(alpha: &Plane, mask: &[Option<bool>]) -> f64 {
    let (mut inter, mut union) = (0usize, 0usize);
    for (&a, m) in alpha.data.iter().zip(mask) {
        if let Some(g) = *m {
            let p = a > 0.5;
            inter += (p && g) as usize;
            union += (p || g) as usize;
        }
    }
    inter as f64 / union.max(1) as f64
}

/// Ground-truth alpha as a 320-px model would give it on a ~2.5 MP photo: `1/factor` scale, then a
/// 3×3 box blur (the model's own softness).
pub fn coarsen(gt: &Plane, factor: usize) -> Plane {
    let factor = factor.max(1);
    let c = resize_plane(gt, (gt.width / factor).max(1), (gt.height / factor).max(1));
    let (w, h) = (c.width, c.height);
    let mut out = c.clone();
    for y in 0..h {
        for x in 0..w {
            let (mut s, mut n) = (0.0, 0.0);
            for yy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for xx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    s += c.data[yy * w + xx];
                    n += 1.0;
                }
            }
            out.data[y * w + x] = s / n;
        }
    }
    out
}

/// Mean scores of one method over a set of crops.
#[derive(Clone, Debug)]
pub struct MattingRow {
    /// What produced the alpha.
    pub method: String,
    /// Mean SAD (÷1000) per crop.
    pub sad: f64,
    /// Mean MSE over the unknown region.
    pub mse: f64,
    /// Mean gradient error (÷1000).
    pub grad: f64,
    /// Time per megapixel of crop.
    pub ms_per_mp: f64,
}

/// The refinement methods the pipeline offers, with their command-line names.
pub const REFINE_METHODS: [(&str, RefineMethod); 3] = [
    ("none", RefineMethod::None),
    ("guided", RefineMethod::Guided),
    ("matting", RefineMethod::Matting),
];

/// Scores each refinement method from the coarsened ground truth, and the matting solver given the
/// crop's own trimap (its upper bound: a perfect trimap).
pub fn refinement_table(samples: &[MattingSample]) -> Vec<MattingRow> {
    let mp: f64 = samples
        .iter()
        .map(|s| (s.image.width * s.image.height) as f64 / 1e6)
        .sum();
    let mut rows = Vec::new();
    let mut score = |method: String, run: &dyn Fn(&MattingSample) -> Plane| {
        let (mut sad_t, mut mse_t, mut grad_t, mut time) = (0.0, 0.0, 0.0, Duration::ZERO);
        for s in samples {
            let t = Instant::now();
            let a = run(s);
            time += t.elapsed();
            sad_t += sad(&a, &s.alpha);
            mse_t += mse(&a, &s.alpha, &s.trimap);
            grad_t += gradient_error(&a, &s.alpha, &s.trimap);
        }
        let n = samples.len().max(1) as f64;
        rows.push(MattingRow {
            method,
            sad: sad_t / n,
            mse: mse_t / n,
            grad: grad_t / n,
            ms_per_mp: time.as_secs_f64() * 1e3 / mp.max(1e-9),
        });
    };
    for (name, method) in REFINE_METHODS {
        score(format!("coarse GT → {name}"), &|s| {
            refine(&s.image, &coarsen(&s.alpha, 8), &RefineOptions { method })
        });
    }
    score("trimap → solve_trimap".into(), &|s| {
        solve_trimap(&s.image, &s.trimap)
    });
    rows
}

/// A model with one refinement, over whole photos with masks.
#[derive(Clone, Debug)]
pub struct MaskRow {
    /// Mean IoU.
    pub mean_iou: f64,
    /// Worst photo's IoU and its name.
    pub worst: (f64, String),
    /// Refinement time per megapixel.
    pub refine_ms_per_mp: f64,
}

/// Runs `backend` once per photo and scores each refinement method; also returns the median model
/// time per photo (the model sees a fixed input size, so it costs the same at any resolution).
pub fn mask_rows(
    backend: &dyn MatteBackend,
    samples: &[MaskSample],
    methods: &[RefineMethod],
) -> Result<(Vec<MaskRow>, Duration)> {
    let mut model_times = Vec::with_capacity(samples.len());
    let mut per_method: Vec<(f64, (f64, String), Duration)> = methods
        .iter()
        .map(|_| (0.0, (f64::MAX, String::new()), Duration::ZERO))
        .collect();
    let mp: f64 = samples
        .iter()
        .map(|s| (s.image.width * s.image.height) as f64 / 1e6)
        .sum();
    for s in samples {
        let t = Instant::now();
        let coarse = coarse_matte(backend, &s.image)?;
        model_times.push(t.elapsed());
        for (acc, &method) in per_method.iter_mut().zip(methods) {
            let t = Instant::now();
            let a = refine(&s.image, &coarse.map, &RefineOptions { method });
            acc.2 += t.elapsed();
            let v = iou(&a, &s.mask);
            acc.0 += v;
            if v < acc.1 .0 {
                acc.1 = (v, s.name.clone());
            }
        }
    }
    model_times.sort();
    let median = model_times
        .get(model_times.len() / 2)
        .copied()
        .unwrap_or_default();
    let n = samples.len().max(1) as f64;
    let rows = per_method
        .into_iter()
        .map(|(sum, worst, time)| MaskRow {
            mean_iou: sum / n,
            worst,
            refine_ms_per_mp: time.as_secs_f64() * 1e3 / mp.max(1e-9),
        })
        .collect();
    Ok((rows, median))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize, slope: f32) -> Plane {
        Plane::from_vec(
            w,
            h,
            (0..w * h)
                .map(|i| ((i % w) as f32 * slope).clamp(0.0, 1.0))
                .collect(),
        )
    }

    #[test]
    fn metrics_on_known_cases() {
        let gt = ramp(40, 30, 0.02);
        let tri = Plane::new(40, 30, 0.5);
        // Only 8-bit quantisation separates the truth from itself.
        assert!(sad(&gt, &gt) < 0.003, "{}", sad(&gt, &gt));
        assert!(mse(&gt, &gt, &tri) < 1e-5);
        assert!(
            gradient_error(&gt, &gt, &tri) < 1e-3,
            "{}",
            gradient_error(&gt, &gt, &tri)
        );
        // A constant 0.1 offset: SAD = 0.1 per pixel, MSE = 0.01, gradients unchanged.
        let off = Plane::from_vec(40, 30, gt.data.iter().map(|v| v + 0.1).collect());
        let inside = Plane::from_vec(
            40,
            30,
            gt.data
                .iter()
                .map(|&v| (v <= 0.9) as u8 as f32 * 0.5)
                .collect(),
        );
        assert!(
            (mse(&off, &gt, &inside) - 0.01).abs() < 1e-4,
            "{}",
            mse(&off, &gt, &inside)
        );
        // The DIM filter reads a ramp of slope s as ≈ 9.7·s: the unnormalised kernel has unit ramp
        // response, its L2 norm is ‖g‖·‖d‖ ≈ 0.449 · 0.227 at σ = 1.4 (9.8 continuous; truncation at
        // 4 px trims it). So a flat alpha errs by (9.7·0.02)² per interior pixel.
        let flat = Plane::new(40, 30, 0.4);
        let mut interior = Plane::new(40, 30, 0.0);
        for y in 0..30 {
            for x in 10..30 {
                interior.data[y * 40 + x] = 0.5;
            }
        }
        let ge = gradient_error(&flat, &gt, &interior) * 1000.0;
        let expected = (9.7f64 * 0.02).powi(2) * 600.0;
        assert!(
            (ge - expected).abs() < 0.02 * expected,
            "{ge} vs {expected}"
        );
        // A sharper edge than the truth is a gradient error even where SAD is small.
        let step = Plane::from_vec(
            40,
            30,
            gt.data.iter().map(|&v| (v > 0.5) as u8 as f32).collect(),
        );
        assert!(gradient_error(&step, &gt, &tri) > 10.0 * gradient_error(&off, &gt, &tri));
    }

    #[test]
    fn iou_ignores_the_boundary_band() {
        let a = Plane::from_vec(4, 1, vec![1.0, 1.0, 0.0, 0.0]);
        let m = [Some(true), None, Some(true), Some(false)];
        assert!((iou(&a, &m) - 0.5).abs() < 1e-12);
        assert_eq!(iou(&Plane::new(2, 1, 0.0), &[Some(false), None]), 0.0);
    }
}
