//! Disc-aperture bokeh in linear light.
//!
//! OWNER: render helper.

use crate::buffer::RgbPlanes;

/// Blurs linear planes with an anti-aliased disc of `radius` pixels (fast path).
pub fn disc_blur(img: &RgbPlanes, radius: f32) -> RgbPlanes {
    let _ = (img, radius);
    todo!()
}
