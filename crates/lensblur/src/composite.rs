//! Background plate, bokeh and compositing.
//!
//! OWNER: render helper.

use crate::buffer::{Plane, RgbPlanes};

/// Render parameters the pipeline passes down.
#[derive(Clone, Debug)]
pub struct RenderParams {
    /// Disc radius in full-resolution pixels.
    pub radius: f32,
    /// Highlight boost 0–1 (0 = none).
    pub highlights: f32,
}

/// Renders the final linear image: background plate with the subject filled from its surroundings,
/// disc bokeh with highlight boost, then `α·F + (1−α)·bokeh`.
/// `image`: linear photo; `foreground`: linear F; `alpha`: matte in [0, 1]; all the same size.
pub fn render_linear(
    image: &RgbPlanes,
    foreground: &RgbPlanes,
    alpha: &Plane,
    params: &RenderParams,
) -> RgbPlanes {
    let _ = (image, foreground, alpha, params);
    todo!()
}
