//! Planar `f32` image buffers shared by every stage.
//!
//! Planar (one `Vec<f32>` per channel) rather than interleaved because the hot loops — box and span
//! filters, prefix sums, guided filters — run along rows of one channel and vectorise best that way.

/// One channel of `f32` samples, row-major, `width * height` long.
#[derive(Clone, Debug, PartialEq)]
pub struct Plane {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major samples.
    pub data: Vec<f32>,
}

impl Plane {
    /// A plane filled with `value`.
    pub fn new(width: usize, height: usize, value: f32) -> Self {
        Plane {
            width,
            height,
            data: vec![value; width * height],
        }
    }

    /// Wraps existing samples. Panics if the length does not match (a programming error).
    pub fn from_vec(width: usize, height: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), width * height, "plane size mismatch");
        Plane {
            width,
            height,
            data,
        }
    }

    /// The sample at (x, y).
    #[inline]
    pub fn get(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.width + x]
    }

    /// Row `y`.
    #[inline]
    pub fn row(&self, y: usize) -> &[f32] {
        &self.data[y * self.width..(y + 1) * self.width]
    }

    /// Row `y`, mutable.
    #[inline]
    pub fn row_mut(&mut self, y: usize) -> &mut [f32] {
        &mut self.data[y * self.width..(y + 1) * self.width]
    }

    /// Number of pixels.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the plane has no pixels.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Three planes (R, G, B) of equal size. Whether values are sRGB-encoded or linear is stated by
/// whoever produces or consumes one.
#[derive(Clone, Debug, PartialEq)]
pub struct RgbPlanes {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// R, G, B planes, each row-major `width * height`.
    pub c: [Vec<f32>; 3],
}

impl RgbPlanes {
    /// Planes filled with `value`.
    pub fn new(width: usize, height: usize, value: f32) -> Self {
        let n = width * height;
        RgbPlanes {
            width,
            height,
            c: [vec![value; n], vec![value; n], vec![value; n]],
        }
    }

    /// Builds planes from interleaved RGB samples (`len == 3 * width * height`).
    pub fn from_interleaved(width: usize, height: usize, rgb: &[f32]) -> Self {
        assert_eq!(rgb.len(), 3 * width * height, "interleaved size mismatch");
        let mut out = RgbPlanes::new(width, height, 0.0);
        let [r, g, b] = &mut out.c;
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            r[i] = px[0];
            g[i] = px[1];
            b[i] = px[2];
        }
        out
    }

    /// The pixel at (x, y) as `[r, g, b]`.
    #[inline]
    pub fn get(&self, x: usize, y: usize) -> [f32; 3] {
        let i = y * self.width + x;
        [self.c[0][i], self.c[1][i], self.c[2][i]]
    }

    /// Number of pixels per plane.
    pub fn len(&self) -> usize {
        self.width * self.height
    }

    /// True when there are no pixels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A single channel as a [`Plane`] (copied).
    pub fn plane(&self, ch: usize) -> Plane {
        Plane::from_vec(self.width, self.height, self.c[ch].clone())
    }
}
