//! Circle of confusion: strength 1–100 → disc radius in pixels.
//!
//! Calibrated on the thin-lens circle of confusion (DESIGN.md, "Strength, resolution and optics"):
//! `c = f²·|S₂−S₁| / (N·S₂·(S₁−f))`. For an 85 mm lens at f/1.2 focused at S₁ = 2 m with the background
//! at infinity (S₂ → ∞) this is `c = f² / (N·(S₁−f)) = 85² / (1.2·1915) ≈ 3.14 mm`, 8.7 % of a 36 mm
//! full-frame width, or 7.27 % of the 43.3 mm diagonal of the 3:2 frame. Strength 100 is that disc.
//!
//! Every radius is a fraction of the image diagonal, so a strength looks the same on a 2 MP and a
//! 45 MP file.
//!
//! The curve is `fraction(t) = (t + t²) / 2` with `t = strength / 100`: half linear (physically, the
//! CoC is linear in the aperture diameter 1/N) and half quadratic, so it is slightly convex and the
//! subtle band gets finer steps. On a 12 MP (4000×3000, diagonal 5000 px) image:
//!
//! | strength | radius | ≈ f-number equivalent at 85 mm, 2 m |
//! |---------:|-------:|---------|
//! | 1   | 0.9 px  | barely visible at 100 % zoom |
//! | 15  | 15.6 px | subtle (≈ f/14) |
//! | 30  | 35 px   | medium, the default (≈ f/6) |
//! | 50  | 68 px   | strong (≈ f/3.2) |
//! | 80  | 131 px  | maximum band (≈ f/1.7) |
//! | 100 | 182 px  | f/1.2 |

/// Focal length of the calibration lens, mm.
const FOCAL_MM: f64 = 85.0;
/// f-number of the calibration lens at strength 100.
const F_NUMBER: f64 = 1.2;
/// Focus distance, mm.
const SUBJECT_MM: f64 = 2000.0;
/// Full-frame sensor, mm.
const FRAME_W_MM: f64 = 36.0;
const FRAME_H_MM: f64 = 24.0;

/// CoC diameter at strength 100 (background at infinity), in mm on a full-frame sensor.
pub fn calibration_coc_mm() -> f64 {
    FOCAL_MM * FOCAL_MM / (F_NUMBER * (SUBJECT_MM - FOCAL_MM))
}

/// Disc radius at strength 100 as a fraction of the image diagonal (≈ 0.0363).
pub fn max_radius_fraction() -> f64 {
    let diag = FRAME_W_MM.hypot(FRAME_H_MM);
    0.5 * calibration_coc_mm() / diag
}

/// Disc radius in pixels for `strength` (1–100) on a `width × height` image; a fraction of the
/// diagonal, so the look is resolution independent. Out-of-range strengths are clamped to 0–100
/// (NaN counts as 0, i.e. no blur).
pub fn blur_radius_px(strength: f32, width: usize, height: usize) -> f32 {
    let s = if strength.is_nan() {
        0.0
    } else {
        strength.clamp(0.0, 100.0) as f64
    };
    let t = s / 100.0;
    let fraction = 0.5 * (t + t * t) * max_radius_fraction();
    let diag = (width as f64).hypot(height as f64);
    (fraction * diag) as f32
}

/// Signed circle-of-confusion radius per pixel from a disparity map (larger = nearer), in pixels:
/// negative behind the focal plane, positive in front. Thin lens: the CoC is linear in the disparity
/// difference from the focal plane, `c = K·(d − d_focus)`. The scale `K` is set so the far end of the
/// scene (the 2nd percentile of disparity) gets the disc radius of `strength`, so strength keeps its
/// meaning with depth: the background at "infinity" blurs as much as with a flat background. When
/// the focus is nearer the far end than the near end (98th percentile), the near end gets that
/// radius instead.
/// Radii are capped at twice the strength's radius (very near objects would otherwise blur without
/// bound).
pub fn coc_map(
    disparity: &crate::buffer::Plane,
    focus: f32,
    strength: f32,
) -> crate::buffer::Plane {
    let (w, h) = (disparity.width, disparity.height);
    let r = blur_radius_px(strength, w, h);
    let far = crate::depth::quantile(&disparity.data, 0.02);
    let near = crate::depth::quantile(&disparity.data, 0.98);
    // The larger side sets the scale: focused near the back, the near end gets the radius.
    let span = (focus - far).max(near - focus);
    let k = if span > 0.0 && span.is_finite() {
        r / span
    } else {
        0.0
    };
    let cap = 2.0 * r;
    let data = disparity
        .data
        .iter()
        .map(|&d| {
            let c = k * (d - focus);
            if c.is_finite() {
                c.clamp(-cap, cap)
            } else {
                0.0
            }
        })
        .collect();
    crate::buffer::Plane::from_vec(w, h, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::Plane;

    #[test]
    fn coc_map_scales_to_the_far_end_and_handles_far_focus() {
        // Disparity ramp 10 (far) … 50 (near) over the rows of a 100×100 map.
        let d = Plane::from_vec(
            100,
            100,
            (0..10_000)
                .map(|i| 10.0 + 40.0 * (i / 100) as f32 / 99.0)
                .collect(),
        );
        let r = blur_radius_px(60.0, 100, 100);
        let c = coc_map(&d, 30.0, 60.0);
        assert!(
            (c.data[0] + r).abs() < 0.05 * r,
            "far end {} vs -{r}",
            c.data[0]
        );
        assert!(c.data[50 * 100].abs() < 0.02 * r);
        assert!(c.data[9_999] > 0.8 * r && c.data[9_999] <= 2.0 * r);
        // Focus on the far end: nothing is behind the focal plane; the near end gets the radius.
        let c = coc_map(&d, 10.0, 60.0);
        assert!(c.data.iter().all(|&v| v >= -1e-3));
        assert!((c.data[9_999] - r).abs() < 0.05 * r, "{}", c.data[9_999]);
    }
}
