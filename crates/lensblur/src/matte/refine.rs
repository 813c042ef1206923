//! Full-resolution matte refinement.
//!
//! OWNER: matte helper. Contract below; bodies to be written.

use crate::buffer::{Plane, RgbPlanes};

/// How to refine the coarse model output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RefineMethod {
    /// Plain upsampling (for comparison only).
    None,
    /// Guided filter only.
    Guided,
    /// Trimap + alpha matting in the unknown band (default).
    #[default]
    Matting,
}

/// Refinement settings.
#[derive(Clone, Debug, Default)]
pub struct RefineOptions {
    /// Method.
    pub method: RefineMethod,
}

/// Refines `coarse` (alpha in [0, 1] at any resolution, e.g. the model's 320×320) to the full
/// resolution of `image` (sRGB-encoded planes). Returns alpha in [0, 1], `image`-sized.
pub fn refine(image: &RgbPlanes, coarse: &Plane, opts: &RefineOptions) -> Plane {
    let _ = (image, coarse, opts);
    todo!()
}

/// Solves alpha given an explicit trimap (0 = background, 0.5 = unknown, 1 = foreground), same size
/// as `image`. Used by `refine` and by the tests on ground-truth trimaps.
pub fn solve_trimap(image: &RgbPlanes, trimap: &Plane) -> Plane {
    let _ = (image, trimap);
    todo!()
}
