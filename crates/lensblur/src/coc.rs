//! Circle of confusion: strength 1–100 → blur radius in pixels.
//!
//! OWNER: render helper.

/// Disc radius in pixels for `strength` (1–100) on a `width × height` image; a fraction of the
/// diagonal, so the look is resolution independent.
pub fn blur_radius_px(strength: f32, width: usize, height: usize) -> f32 {
    let _ = (strength, width, height);
    todo!()
}
