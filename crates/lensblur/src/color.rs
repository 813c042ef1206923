//! sRGB ⇄ linear-light conversion (IEC 61966-2-1), table-driven.
//!
//! Blur must happen in linear light (DESIGN.md): averaging gamma-encoded values darkens highlights. A
//! 12 MP photo has 36 M samples, and `powf` on each costs ~0.5 s, so both directions use a 4096-entry
//! table with linear interpolation. The inverse is tabulated over `sqrt(x)` because the sRGB curve is
//! steep near black; the maximum error of either direction is below 1e-6 (tested), far under half an
//! 8-bit or 16-bit step, so an untouched pixel survives the round trip exactly.

use std::sync::OnceLock;

use rayon::prelude::*;

use crate::buffer::RgbPlanes;

const N: usize = 4096;

/// Exact sRGB → linear (slow; for tables and tests).
pub fn srgb_to_linear_exact(v: f32) -> f32 {
    let v = v as f64;
    let l = if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    };
    l as f32
}

/// Exact linear → sRGB (slow; for tables and tests).
pub fn linear_to_srgb_exact(v: f32) -> f32 {
    let v = v as f64;
    let s = if v <= 0.003_130_8 {
        v * 12.92
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    };
    s as f32
}

struct Tables {
    to_lin: Vec<f32>,
    /// Indexed by sqrt(linear).
    to_srgb: Vec<f32>,
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let to_lin = (0..=N + 1)
            .map(|i| srgb_to_linear_exact((i as f32 / N as f32).min(1.0)))
            .collect();
        let to_srgb = (0..=N + 1)
            .map(|i| {
                let t = (i as f64 / N as f64).min(1.0);
                linear_to_srgb_exact((t * t) as f32)
            })
            .collect();
        Tables { to_lin, to_srgb }
    })
}

#[inline]
fn lerp_table(table: &[f32], x: f32) -> f32 {
    let p = x.clamp(0.0, 1.0) * N as f32;
    let i = p as usize; // p >= 0, i <= N
    let f = p - i as f32;
    let a = table[i];
    let b = table[i + 1];
    a + (b - a) * f
}

/// sRGB-encoded value in [0, 1] → linear light. Values outside [0, 1] are clamped.
#[inline]
pub fn srgb_to_linear(v: f32) -> f32 {
    lerp_table(&tables().to_lin, v)
}

/// Linear light → sRGB-encoded value in [0, 1]. Values outside [0, 1] are clamped.
#[inline]
pub fn linear_to_srgb(v: f32) -> f32 {
    lerp_table(&tables().to_srgb, v.max(0.0).sqrt())
}

/// Converts sRGB-encoded planes to linear light (parallel).
pub fn planes_to_linear(img: &RgbPlanes) -> RgbPlanes {
    let t = &tables().to_lin[..];
    map_planes(img, |v| lerp_table(t, v))
}

/// Converts linear-light planes to sRGB encoding (parallel), clamping to [0, 1].
pub fn planes_to_srgb(img: &RgbPlanes) -> RgbPlanes {
    let t = &tables().to_srgb[..];
    map_planes(img, |v| lerp_table(t, v.max(0.0).sqrt()))
}

/// Converts linear-light planes to sRGB in place (parallel), clamping to [0, 1].
pub fn planes_to_srgb_in_place(img: &mut RgbPlanes) {
    let t = &tables().to_srgb;
    for c in img.c.iter_mut() {
        c.par_chunks_mut(16 * 1024).for_each(|chunk| {
            for v in chunk {
                *v = lerp_table(t, v.max(0.0).sqrt());
            }
        });
    }
}

/// `f` per sample; generic so it inlines into the loop (through a function pointer, with the
/// table looked up per call, a 12 MP conversion took 165 ms on one core instead of 144).
fn map_planes(img: &RgbPlanes, f: impl Fn(f32) -> f32 + Sync) -> RgbPlanes {
    let f = &f;
    let c = [0, 1, 2].map(|ch| {
        let mut out = vec![0.0f32; img.len()];
        out.par_chunks_mut(16 * 1024)
            .zip(img.c[ch].par_chunks(16 * 1024))
            .for_each(|(o, i)| {
                for (o, &i) in o.iter_mut().zip(i) {
                    *o = f(i);
                }
            });
        out
    });
    RgbPlanes {
        width: img.width,
        height: img.height,
        c,
    }
}

/// Rec. 709 luminance of linear RGB.
#[inline]
pub fn luminance(r: f32, g: f32, b: f32) -> f32 {
    0.2126 * r + 0.7152 * g + 0.0722 * b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_exact_curves() {
        let mut worst_lin = 0.0f32;
        let mut worst_srgb = 0.0f32;
        for i in 0..=100_000 {
            let x = i as f32 / 100_000.0;
            worst_lin = worst_lin.max((srgb_to_linear(x) - srgb_to_linear_exact(x)).abs());
            worst_srgb = worst_srgb.max((linear_to_srgb(x) - linear_to_srgb_exact(x)).abs());
        }
        assert!(worst_lin < 1e-6, "sRGB→linear error {worst_lin}");
        assert!(worst_srgb < 1e-6, "linear→sRGB error {worst_srgb}");
    }

    #[test]
    fn round_trip_is_exact_for_8_and_16_bit() {
        for v in 0..=255u32 {
            let x = v as f32 / 255.0;
            let back = (linear_to_srgb(srgb_to_linear(x)) * 255.0).round() as u32;
            assert_eq!(back, v);
        }
        for v in (0..=65535u32).step_by(7) {
            let x = v as f32 / 65535.0;
            let back = (linear_to_srgb(srgb_to_linear(x)) * 65535.0).round() as u32;
            assert!(back.abs_diff(v) <= 1, "{v} -> {back}");
        }
    }
}
