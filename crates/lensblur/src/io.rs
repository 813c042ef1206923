//! Decoding and encoding photos: JPEG, PNG (8/16-bit, grey, RGBA), WebP.
//!
//! OWNER: io helper. Contract used by the rest of the crate is below; bodies to be written.

use std::path::Path;

use crate::buffer::{Plane, RgbPlanes};
use crate::error::Result;

/// Default pixel limit: 100 megapixels.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// Container format of an input or output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// JPEG (lossy, `quality` applies).
    Jpeg,
    /// PNG (lossless; 8- or 16-bit).
    Png,
    /// WebP (lossless output via the `image` crate encoder).
    WebP,
}

/// Metadata carried from input to output untouched, except EXIF orientation which is reset to 1
/// because the pixels are stored upright.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    /// Raw EXIF (TIFF header onward, without the `Exif\0\0` prefix).
    pub exif: Option<Vec<u8>>,
    /// ICC colour profile.
    pub icc: Option<Vec<u8>>,
    /// XMP packet (XML bytes).
    pub xmp: Option<Vec<u8>>,
}

/// A decoded photo, upright (EXIF orientation applied).
#[derive(Clone, Debug)]
pub struct Photo {
    /// Colour, sRGB-encoded, each sample in [0, 1]. Grey inputs are expanded to three equal planes.
    pub rgb: RgbPlanes,
    /// Source transparency in [0, 1], if the file had an alpha channel.
    pub alpha: Option<Plane>,
    /// Metadata to carry into the output.
    pub meta: Metadata,
    /// Container format of the source.
    pub format: Format,
    /// Bits per sample of the source (8 or 16).
    pub bit_depth: u8,
}

/// Decoding limits.
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// Reject images with more pixels than this before allocating them. Default: 100 MP.
    pub max_pixels: u64,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

/// Encoding settings.
#[derive(Clone, Debug)]
pub struct EncodeOptions {
    /// Output container.
    pub format: Format,
    /// JPEG quality 1–100. Default: 92.
    pub quality: u8,
    /// Bits per sample for PNG (8 or 16). Default: 8.
    pub bit_depth: u8,
}

/// Reads and decodes a file.
pub fn decode_file(path: &Path, opts: &DecodeOptions) -> Result<Photo> {
    let _ = (path, opts);
    todo!()
}

/// Decodes an in-memory file.
pub fn decode_bytes(bytes: &[u8], opts: &DecodeOptions) -> Result<Photo> {
    let _ = (bytes, opts);
    todo!()
}

/// Encodes sRGB planes (with optional alpha) plus metadata.
pub fn encode(
    rgb: &RgbPlanes,
    alpha: Option<&Plane>,
    meta: &Metadata,
    opts: &EncodeOptions,
) -> Result<Vec<u8>> {
    let _ = (rgb, alpha, meta, opts);
    todo!()
}

/// Encodes a single plane in [0, 1] as an 8-bit greyscale PNG (used for alpha mattes).
pub fn encode_gray_png(plane: &Plane) -> Result<Vec<u8>> {
    let _ = plane;
    todo!()
}

/// Picks the output format from a path's extension (`.jpg/.jpeg/.png/.webp`, case-insensitive).
pub fn format_from_path(path: &Path) -> Option<Format> {
    let _ = path;
    todo!()
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory, then rename. Refuses to
/// replace an existing file unless `overwrite`. No partial file is left behind on failure.
pub fn write_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    let _ = (path, bytes, overwrite);
    todo!()
}
