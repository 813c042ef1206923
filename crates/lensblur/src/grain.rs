//! Film/sensor grain for blurred areas.
//!
//! Blurring removes a photo's noise along with its detail, and a smooth background next to a noisy
//! subject reads as "plastic" — a telltale of synthetic blur. We estimate the photo's noise and add
//! matched grain where the blur removed it.
//!
//! **Estimation** after Immerkær 1996 ("Fast noise variance estimation", CVIU 64(2)): the operator
//! `N = [1 −2 1; −2 4 −2; 1 −2 1]` (the difference of two Laplacians) cancels locally linear image
//! structure, and for white Gaussian noise of std σ, `E|N∗I| = σ·√(2/π)·6`. Texture and edges also
//! respond, so the estimate is taken per 16×16 block and the image's noise is a low quantile of the block
//! estimates (the flattest quarter of the frame), skipping clipped blocks where noise is cut off.
//!
//! Estimated on R, G, B and luminance Y (sRGB-encoded, as the noise is seen), which separates noise
//! shared by the channels (luminance grain) from per-channel (chroma) noise: with
//! `n_c = s·z + i·z_c`, `σ_c² = s² + i²` and `σ_Y² = s² + q·i²` where `q = Σ w_c²` for the Rec. 709
//! weights. Demosaiced and JPEG-compressed photos mostly have luminance grain, and chroma speckle
//! on a smooth bokeh would look wrong.
//!
//! **Synthesis**: counter-based (a hash of pixel index and seed, so the result does not depend on
//! threading and a re-render is identical), near-Gaussian (sum of four uniform bytes, variance
//! matched), added in sRGB where the blur removed detail: weighted by `1 − α′` and by how much a disc of
//! the local radius averages the noise away.

use rayon::prelude::*;

use crate::buffer::RgbPlanes;

/// Block size for the local noise estimates.
const BLOCK: usize = 16;
/// Quantile of the block estimates taken as the image noise (flat blocks dominate the low end).
const QUANTILE: f64 = 0.25;
/// Rec. 709 luminance weights, applied to sRGB-encoded values for the estimate.
const W: [f32; 3] = [0.2126, 0.7152, 0.0722];

/// How much grain to add to blurred areas.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Grain {
    /// Match the photo's own noise (estimated at analysis). Default.
    #[default]
    Auto,
    /// No grain: blurred areas are smooth.
    Off,
    /// Luminance grain of this standard deviation in 8-bit levels (0–50), whatever the photo has.
    Levels(f32),
}

impl Grain {
    /// Parses `auto`, `off` or a number of 8-bit levels.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Grain::Auto),
            "off" | "none" | "0" => Ok(Grain::Off),
            v => match v.parse::<f32>() {
                Ok(x) if (0.0..=50.0).contains(&x) => Ok(Grain::Levels(x)),
                Ok(x) => Err(format!("grain {x} is outside 0-50 (8-bit levels)")),
                Err(_) => Err(format!(
                    "{s:?} is not auto, off or a number of 8-bit levels"
                )),
            },
        }
    }

    /// The noise to synthesise, given the photo's estimated noise.
    pub fn model(&self, estimated: &NoiseModel) -> NoiseModel {
        match *self {
            Grain::Auto => *estimated,
            Grain::Off => NoiseModel::default(),
            Grain::Levels(l) => NoiseModel::luminance_levels(l),
        }
    }
}

/// The photo's noise, as standard deviations of sRGB-encoded values in [0, 1].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NoiseModel {
    /// Per-channel std of the noise shared by all channels (luminance grain).
    pub shared: [f32; 3],
    /// Per-channel std of independent (chroma) noise.
    pub independent: [f32; 3],
}

impl NoiseModel {
    /// Total std per channel.
    pub fn sigma(&self) -> [f32; 3] {
        [0, 1, 2].map(|c| self.shared[c].hypot(self.independent[c]))
    }

    /// Mean std over the channels, in 8-bit levels (what a user reads).
    pub fn levels(&self) -> f32 {
        self.sigma().iter().sum::<f32>() / 3.0 * 255.0
    }

    /// A model with luminance grain of `levels` (8-bit) std and no chroma noise.
    pub fn luminance_levels(levels: f32) -> Self {
        let s = (levels.max(0.0) / 255.0).min(0.25);
        NoiseModel {
            shared: [s; 3],
            independent: [0.0; 3],
        }
    }

    /// The same model scaled by `k`.
    pub fn scaled(&self, k: f32) -> Self {
        NoiseModel {
            shared: self.shared.map(|s| s * k),
            independent: self.independent.map(|s| s * k),
        }
    }
}

/// Blocks measured per plane at most: the low quantile of a few thousand blocks spread evenly
/// over the frame is as stable as that of all of them (tested on real photos), and a 12 MP photo
/// has 47 000.
const MAX_BLOCKS: usize = 2500;

/// Immerkær noise std of one plane, robust to texture (see the module docs). `None` when no block
/// is usable (tiny or fully clipped images). Measures every `stride`-th block in each direction,
/// `stride` chosen so at most [`MAX_BLOCKS`] are measured. `px(i)` is the plane's value at index
/// `y·w + x`: only the measured blocks are read, so a derived plane (luminance) need not exist.
fn plane_sigma(w: usize, h: usize, px: impl Fn(usize) -> f32 + Sync) -> Option<f32> {
    let blocks = (w.saturating_sub(2) / BLOCK) * (h.saturating_sub(2) / BLOCK);
    let stride = (blocks as f64 / MAX_BLOCKS as f64).sqrt().ceil().max(1.0) as usize;
    plane_sigma_strided(w, h, stride, px)
}

fn plane_sigma_strided(
    w: usize,
    h: usize,
    stride: usize,
    px: impl Fn(usize) -> f32 + Sync,
) -> Option<f32> {
    if w < BLOCK + 2 || h < BLOCK + 2 {
        return None;
    }
    const T: usize = BLOCK + 2;
    let (bw, bh) = ((w - 2) / BLOCK, (h - 2) / BLOCK);
    let (sw, sh) = (bw.div_ceil(stride), bh.div_ceil(stride));
    let mut est: Vec<f32> = (0..sw * sh)
        .into_par_iter()
        .filter_map(|b| {
            let (bx, by) = ((b % sw) * stride, (b / sw) * stride);
            // The block with its one-pixel border, top-left at (bx·BLOCK, by·BLOCK).
            let (x0, y0) = (bx * BLOCK, by * BLOCK);
            let mut t = [0.0f32; T * T];
            for (ty, row) in t.chunks_exact_mut(T).enumerate() {
                let base = (y0 + ty) * w + x0;
                for (tx, v) in row.iter_mut().enumerate() {
                    *v = px(base + tx);
                }
            }
            let (mut acc, mut mean, mut clipped) = (0.0f32, 0.0f32, 0usize);
            for y in 1..=BLOCK {
                let r0 = &t[(y - 1) * T..];
                let r1 = &t[y * T..];
                let r2 = &t[(y + 1) * T..];
                for x in 1..=BLOCK {
                    let v = r1[x];
                    let n = (r0[x - 1] + r0[x + 1] + r2[x - 1] + r2[x + 1])
                        - 2.0 * (r0[x] + r2[x] + r1[x - 1] + r1[x + 1])
                        + 4.0 * v;
                    acc += n.abs();
                    mean += v;
                    if !(0.004..=0.996).contains(&v) {
                        clipped += 1;
                    }
                }
            }
            let n = (BLOCK * BLOCK) as f32;
            mean /= n;
            // Clipped or nearly clipped blocks have their noise cut off: not representative.
            if clipped * 8 > BLOCK * BLOCK || !(0.03..=0.97).contains(&mean) {
                return None;
            }
            Some(acc / n * (std::f32::consts::FRAC_PI_2).sqrt() / 6.0)
        })
        .collect();
    if est.is_empty() {
        return None;
    }
    let i = ((est.len() - 1) as f64 * QUANTILE).round() as usize;
    let (_, v, _) = est.select_nth_unstable_by(i, f32::total_cmp);
    Some(*v)
}

/// Estimates the noise of an sRGB-encoded photo (values in [0, 1]).
pub fn estimate_noise(srgb: &RgbPlanes) -> NoiseModel {
    let (w, h) = (srgb.width, srgb.height);
    let [r, g, b] = &srgb.c;
    let luma = |i: usize| W[0] * r[i] + W[1] * g[i] + W[2] * b[i];
    let sig_c = srgb.c.each_ref().map(|c| plane_sigma(w, h, |i| c[i]));
    let (Some(sy), [Some(sr), Some(sg), Some(sb)]) = (plane_sigma(w, h, luma), sig_c) else {
        return NoiseModel::default();
    };
    let sc = [sr, sg, sb];
    let mean2 = sc.iter().map(|s| s * s).sum::<f32>() / 3.0;
    let q: f32 = W.iter().map(|w| w * w).sum();
    // σ̄² = s² + i², σ_Y² = s² + q·i²  →  i² = (σ̄² − σ_Y²)/(1 − q).
    let i2 = ((mean2 - sy * sy) / (1.0 - q)).clamp(0.0, mean2);
    let s2 = mean2 - i2;
    let mean = mean2.sqrt();
    if mean <= 0.0 {
        return NoiseModel::default();
    }
    // Keep each channel's own level, split in the common shared/independent proportion.
    let (fs, fi) = ((s2 / mean2).sqrt(), (i2 / mean2).sqrt());
    NoiseModel {
        shared: sc.map(|s| s * fs),
        independent: sc.map(|s| s * fi),
    }
}

/// SplitMix64 finaliser: a strong 64-bit mix, used as a counter-based random generator.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Two near-Gaussian unit-variance samples from one hash: each is the sum of four uniform bytes
/// (Irwin–Hall, variance 4·(256² − 1)/12 in byte units), centred and scaled.
#[inline]
fn gauss2(h: u64) -> (f32, f32) {
    // std of a sum of four uniform bytes.
    const INV_STD: f32 = 1.0 / 147.79; // √(4·(256²−1)/12)
    let s = |v: u64| {
        ((v & 0xff) + ((v >> 8) & 0xff) + ((v >> 16) & 0xff) + ((v >> 24) & 0xff)) as f32 - 510.0
    };
    (s(h) * INV_STD, s(h >> 32) * INV_STD)
}

/// How much of the photo's own noise a blur of `radius` pixels removes, as the std fraction of
/// grain to add back: averaging over ≈ `1 + π r²` pixels leaves `1/√(1 + π r²)` of the noise, so
/// `√(1 − 1/(1 + π r²))` restores the total. 0 at r = 0, 0.87 at 1 px, 0.99 at 4 px.
#[inline]
pub fn restore_fraction(radius: f32) -> f32 {
    let a = 1.0 + std::f32::consts::PI * radius * radius;
    (1.0 - 1.0 / a).max(0.0).sqrt()
}

/// Adds grain from `model` to sRGB-encoded `img`, pixel `i` weighted by `weight(i)` in [0, 1]
/// (0 = untouched). Near black and white the grain fades (it would be clipped, shifting the mean).
/// `seed` makes the pattern reproducible.
pub fn add_grain<F>(img: &mut RgbPlanes, model: &NoiseModel, seed: u64, weight: F)
where
    F: Fn(usize) -> f32 + Sync,
{
    let w = img.width;
    if w == 0 || model.sigma().iter().all(|&s| s <= 0.0) {
        return;
    }
    let key = mix(seed ^ 0x6c62_7572_6772_6169);
    let inv_room = model.sigma().map(|s| 1.0 / (4.0 * s).max(1e-6));
    let [r, g, b] = &mut img.c;
    r.par_chunks_mut(w)
        .zip(g.par_chunks_mut(w))
        .zip(b.par_chunks_mut(w))
        .enumerate()
        .for_each(|(y, ((r, g), b))| {
            let base = y * w;
            for x in 0..w {
                let i = base + x;
                let wt = weight(i);
                if wt <= 0.0 {
                    continue;
                }
                let (z, zr) = gauss2(mix(key ^ (2 * i as u64)));
                let (zg, zb) = gauss2(mix(key ^ (2 * i as u64 + 1)));
                for (c, (v, zc)) in [(&mut r[x], zr), (&mut g[x], zg), (&mut b[x], zb)]
                    .into_iter()
                    .enumerate()
                {
                    let n = model.shared[c] * z + model.independent[c] * zc;
                    // Room to move before clipping: full grain from 4σ inside the range.
                    let room = (v.min(1.0 - *v) * inv_room[c]).clamp(0.0, 1.0);
                    *v += wt * room * n;
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Measuring a lattice of blocks instead of all of them must not move the estimate: real
    /// photos (portraits, wide scenes, the noisy deep-field shot) from the shared data, each plane.
    /// Measured: within 3 %; every 12th block would be off by up to 22 %.
    #[test]
    fn sampled_blocks_estimate_like_all_blocks() {
        let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
        let mut checked = 0;
        for rel in [
            "portraits/p_0865636e.jpg",
            "portraits/p_22fc0130.jpg",
            "scenes/1.jpg",
            "scenes/5.jpg",
            "photos/hubble_deep_field.jpg",
            "animals/sample1.jpg",
        ] {
            let path = data.join(rel);
            if !path.is_file() {
                continue;
            }
            let photo = crate::io::decode_file(&path, &Default::default()).expect("decodes");
            let (w, h) = (photo.rgb.width, photo.rgb.height);
            let blocks = ((w - 2) / BLOCK) * ((h - 2) / BLOCK);
            assert!(blocks > MAX_BLOCKS, "{rel} is too small to test sampling");
            for c in 0..3 {
                let p = &photo.rgb.c[c];
                let all = plane_sigma_strided(w, h, 1, |i| p[i]).expect("all blocks");
                let some = plane_sigma(w, h, |i| p[i]).expect("sampled blocks");
                let (a, b) = (all * 255.0, some * 255.0);
                assert!(
                    (a - b).abs() <= 0.05 * a + 0.01,
                    "{rel} channel {c}: {a:.3} levels from all blocks, {b:.3} sampled"
                );
            }
            checked += 1;
        }
        assert!(
            checked >= 4,
            "only {checked} photos found in {}",
            data.display()
        );
    }

    fn noisy(w: usize, h: usize, model: &NoiseModel, seed: u64) -> RgbPlanes {
        // A smooth gradient plus noise.
        let mut img = RgbPlanes::new(w, h, 0.0);
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                img.c[0][i] = 0.3 + 0.3 * x as f32 / w as f32;
                img.c[1][i] = 0.5;
                img.c[2][i] = 0.4 + 0.2 * y as f32 / h as f32;
            }
        }
        add_grain(&mut img, model, seed, |_| 1.0);
        img
    }

    #[test]
    fn estimates_luminance_and_chroma_noise() {
        let truth = NoiseModel {
            shared: [0.02, 0.02, 0.02],
            independent: [0.004, 0.004, 0.004],
        };
        let est = estimate_noise(&noisy(256, 256, &truth, 7));
        for c in 0..3 {
            let (t, e) = (truth.sigma()[c], est.sigma()[c]);
            assert!(
                (e / t - 1.0).abs() < 0.1,
                "sigma {c}: true {t}, estimated {e}"
            );
            assert!(est.shared[c] > 3.0 * est.independent[c], "{est:?}");
        }
        let chroma = NoiseModel {
            shared: [0.0; 3],
            independent: [0.015; 3],
        };
        let est = estimate_noise(&noisy(256, 256, &chroma, 9));
        for c in 0..3 {
            assert!(est.independent[c] > 2.0 * est.shared[c], "{est:?}");
        }
    }

    #[test]
    fn clean_image_has_no_noise_and_edges_do_not_count() {
        let mut img = RgbPlanes::new(128, 128, 0.5);
        // Hard edges and a smooth ramp in half the blocks: no noise at all.
        for y in 0..128 {
            for x in 0..128 {
                let v = if (x / 8 + y / 8) % 2 == 0 && x < 64 {
                    0.2
                } else {
                    0.3 + x as f32 / 512.0
                };
                for c in 0..3 {
                    img.c[c][y * 128 + x] = v;
                }
            }
        }
        assert!(estimate_noise(&img).levels() < 0.05);
    }

    #[test]
    fn grain_is_reproducible_and_weighted() {
        let m = NoiseModel::luminance_levels(3.0);
        let a = noisy(64, 64, &m, 1);
        assert_eq!(a, noisy(64, 64, &m, 1));
        assert_ne!(a, noisy(64, 64, &m, 2));
        let mut img = RgbPlanes::new(64, 64, 0.5);
        add_grain(&mut img, &m, 3, |i| if i % 64 < 32 { 0.0 } else { 1.0 });
        let (mut left, mut right) = (0.0f64, 0.0f64);
        for i in 0..64 * 64 {
            let d = (img.c[1][i] - 0.5) as f64;
            if i % 64 < 32 {
                left += d * d;
            } else {
                right += d * d;
            }
        }
        assert_eq!(left, 0.0);
        let std = (right / (32.0 * 64.0)).sqrt() * 255.0;
        assert!((std - 3.0).abs() < 0.3, "grain std {std} levels");
    }

    #[test]
    fn restore_fraction_is_monotone() {
        assert_eq!(restore_fraction(0.0), 0.0);
        let mut prev = 0.0;
        for i in 1..100 {
            let f = restore_fraction(i as f32 * 0.1);
            assert!(f > prev && f < 1.0);
            prev = f;
        }
    }
}
