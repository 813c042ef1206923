//! Depth maps: loading, fitting to the photo, and the focus plane.
//!
//! lensblur does not estimate depth itself (no permissively licensed monocular depth model could be
//! verified; see `../shared/models/MANIFEST.md`). A depth map comes from the user: a disparity or
//! inverse-depth image as phones embed in portrait photos and depth models output (larger = nearer),
//! or a metric depth map (`far_is_large`). It may be smaller than the photo and may have holes (NaN,
//! ±inf or, for images, nothing: every sample counts).
//!
//! Blur grows with distance from the focal plane: for a thin lens the circle of confusion is linear in
//! `|1/S − 1/S_focus|`, i.e. in disparity difference (DESIGN.md, "Strength, resolution and optics"), so
//! everything downstream works on disparity.

use std::path::Path;

use crate::buffer::Plane;
use crate::error::{Error, Result};
use crate::io::{decode_file, DecodeOptions};
use crate::matte::refine::pull_push;
use crate::resample::resize_plane;

/// Samples taken for a map's statistics (quantiles, the subject's median).
const SAMPLE_TARGET: usize = 1 << 20;

/// Largest depth array accepted from `.npy`/`.npz` files (samples), a guard like `max_pixels`.
const MAX_SAMPLES: usize = 200_000_000;

/// Which way the map's values run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DepthOrder {
    /// Disparity / inverse depth: larger values are nearer (phones, most depth networks).
    #[default]
    NearIsLarge,
    /// Distance: larger values are farther (metric depth, z-buffers). Converted to `1/z`.
    FarIsLarge,
}

/// Where to focus.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Focus {
    /// On the subject found by the matte (median disparity under α > 0.9). Default.
    #[default]
    Subject,
    /// On the point `(x, y)` given as fractions of width and height (0–1), e.g. a click.
    Point {
        /// Horizontal position, 0 = left edge, 1 = right edge.
        x: f32,
        /// Vertical position, 0 = top, 1 = bottom.
        y: f32,
    },
}

/// Loads a depth map: a grey image (PNG 8/16-bit, JPEG, WebP; the first channel), or a 2-D `.npy`
/// array or the first array of a `.npz` archive (float32/64, uint8/16). Non-finite samples become NaN
/// (unknown). The result is disparity-like: larger = nearer.
pub fn load(path: &Path, order: DepthOrder) -> Result<Plane> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let mut plane = match ext.as_deref() {
        Some("npy") => {
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            parse_npy(&bytes).map_err(|m| bad_depth(path, &m))?
        }
        Some("npz") => read_npz(path)?,
        _ => {
            let photo = decode_file(path, &DecodeOptions::default())?;
            let [r, ..] = photo.rgb.c;
            Plane::from_vec(photo.rgb.width, photo.rgb.height, r)
        }
    };
    if order == DepthOrder::FarIsLarge {
        for v in &mut plane.data {
            *v = if *v > 0.0 { 1.0 / *v } else { f32::NAN };
        }
    }
    for v in &mut plane.data {
        if !v.is_finite() {
            *v = f32::NAN;
        }
    }
    if plane.data.iter().all(|v| v.is_nan()) {
        return Err(bad_depth(path, "it has no finite samples"));
    }
    Ok(plane)
}

fn bad_depth(path: &Path, msg: &str) -> Error {
    Error::Decode(format!("{}: not a usable depth map: {msg}", path.display()))
}

fn read_npz(path: &Path) -> Result<Plane> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad_depth(path, &e.to_string()))?;
    let name = (0..zip.len())
        .filter_map(|i| zip.name_for_index(i).map(str::to_string))
        .find(|n| n.ends_with(".npy"))
        .ok_or_else(|| bad_depth(path, "the .npz archive holds no .npy array"))?;
    let mut entry = zip
        .by_name(&name)
        .map_err(|e| bad_depth(path, &e.to_string()))?;
    if entry.size() > (MAX_SAMPLES * 8 + 4096) as u64 {
        return Err(bad_depth(path, "the array is too large"));
    }
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(|e| Error::io(path, e))?;
    parse_npy(&bytes).map_err(|m| bad_depth(path, &m))
}

/// Parses a 2-D NumPy `.npy` array (format 1.0–3.0, C or Fortran order).
fn parse_npy(b: &[u8]) -> std::result::Result<Plane, String> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err("not a .npy file".into());
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = b
        .get(start..start + hlen)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated .npy header")?;
    let field = |key: &str| -> Option<&str> {
        let i = header.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = header[i..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = field("descr")
        .and_then(|r| r.strip_prefix('\''))
        .and_then(|r| r.split('\'').next())
        .ok_or("no dtype in the .npy header")?;
    let fortran = field("fortran_order").is_some_and(|r| r.starts_with("True"));
    let shape: Vec<usize> = field("shape")
        .and_then(|r| r.strip_prefix('('))
        .and_then(|r| r.split(')').next())
        .ok_or("no shape in the .npy header")?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| "bad shape in the .npy header")?;
    // Accept (h, w) and (h, w, 1) / (1, h, w).
    let (h, w) = match shape.as_slice() {
        [h, w] | [h, w, 1] | [1, h, w] => (*h, *w),
        _ => return Err(format!("expected a 2-D array, got shape {shape:?}")),
    };
    let n = w.checked_mul(h).filter(|&n| n <= MAX_SAMPLES && n > 0);
    let n = n.ok_or("array is empty or too large")?;
    let data = &b[start + hlen..];
    let little = !descr.starts_with('>');
    let kind = descr.trim_start_matches(['<', '>', '|', '=']);
    let size = match kind {
        "f4" | "i4" | "u4" => 4,
        "f8" => 8,
        "u2" | "i2" => 2,
        "u1" | "i1" | "b1" => 1,
        _ => return Err(format!("unsupported dtype {descr}")),
    };
    if data.len() < n * size {
        return Err("truncated .npy data".into());
    }
    let val = |i: usize| -> f32 {
        let s = &data[i * size..(i + 1) * size];
        let mut a = [0u8; 8];
        a[..size].copy_from_slice(s);
        if !little {
            a[..size].reverse();
        }
        match kind {
            "f4" => f32::from_le_bytes([a[0], a[1], a[2], a[3]]),
            "f8" => f64::from_le_bytes(a) as f32,
            "i4" => i32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f32,
            "u4" => u32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f32,
            "u2" => u16::from_le_bytes([a[0], a[1]]) as f32,
            "i2" => i16::from_le_bytes([a[0], a[1]]) as f32,
            "i1" => a[0] as i8 as f32,
            _ => a[0] as f32,
        }
    };
    let mut out = vec![0.0f32; n];
    for y in 0..h {
        for x in 0..w {
            let src = if fortran { x * h + y } else { y * w + x };
            out[y * w + x] = val(src);
        }
    }
    Ok(Plane::from_vec(w, h, out))
}

/// Fits a loaded map to a `width × height` photo: holes (NaN) filled from their surroundings
/// (pull-push), then resized. The aspect ratio must match within 2 % (a map of another photo, or a
/// rotated one, is an error rather than a silently distorted blur).
pub fn fit(depth: &Plane, width: usize, height: usize) -> Result<Plane> {
    let (dw, dh) = (depth.width as f64, depth.height as f64);
    let ratio = (dw / dh) / (width as f64 / height as f64);
    if !(0.98..=1.02).contains(&ratio) {
        return Err(Error::InvalidOption(format!(
            "the depth map is {}x{} but the photo is {width}x{height}: aspect ratios differ \
             (is it the depth of another photo, or rotated?)",
            depth.width, depth.height
        )));
    }
    let filled = fill_holes(depth);
    Ok(resize_plane(&filled, width, height))
}

/// Replaces NaN samples by a smooth fill from the known ones.
fn fill_holes(depth: &Plane) -> Plane {
    if !depth.data.iter().any(|v| v.is_nan()) {
        return depth.clone();
    }
    let known: Vec<f32> = depth
        .data
        .iter()
        .map(|v| if v.is_nan() { 0.0 } else { 1.0 })
        .collect();
    let vals: Vec<f32> = depth
        .data
        .iter()
        .map(|v| if v.is_nan() { 0.0 } else { *v })
        .collect();
    let mut filled = pull_push(&[&vals], &known, depth.width, depth.height);
    let data = filled.pop().unwrap_or_default();
    Plane::from_vec(depth.width, depth.height, data)
}

/// The background's disparity everywhere: inside the subject (α ≥ 0.5) and across its soft edge the
/// map is replaced by a fill from the surrounding background. Depth maps are blurry at object edges,
/// so a hair pixel's own depth is often the subject's, which would render the background seen through
/// the hair sharp (a crisp halo). Weights as the background plate's: `(1 − α/0.5)²`.
pub fn background_disparity(depth: &Plane, alpha: &Plane) -> Plane {
    let wt: Vec<f32> = alpha
        .data
        .iter()
        .map(|&a| {
            let x = (1.0 - a / 0.5).clamp(0.0, 1.0);
            if x.is_nan() {
                0.0
            } else {
                x * x * x * x
            }
        })
        .collect();
    if wt.iter().all(|&w| w >= 1.0) || wt.iter().all(|&w| w <= 0.0) {
        return depth.clone();
    }
    let mut filled = pull_push(&[&depth.data], &wt, depth.width, depth.height);
    let data = filled.pop().unwrap_or_default();
    Plane::from_vec(depth.width, depth.height, data)
}

/// Disparity of the focal plane. For [`Focus::Subject`]: the median under α > 0.9, falling back to
/// the frame centre when there is no subject. For a point: the median of a window of 1 % of the
/// diagonal around it (robust to a click on an edge).
pub fn focus_disparity(depth: &Plane, alpha: &Plane, focus: Focus) -> f32 {
    let (w, h) = (depth.width, depth.height);
    let point = |fx: f32, fy: f32| {
        let cx = (fx.clamp(0.0, 1.0) * w as f32) as usize;
        let cy = (fy.clamp(0.0, 1.0) * h as f32) as usize;
        let r = ((w as f32).hypot(h as f32) * 0.01).max(1.0) as usize;
        let mut v: Vec<f32> = Vec::new();
        for y in cy.saturating_sub(r)..(cy + r + 1).min(h) {
            for x in cx.saturating_sub(r)..(cx + r + 1).min(w) {
                v.push(depth.data[y * w + x]);
            }
        }
        median(&mut v)
    };
    match focus {
        Focus::Point { x, y } => point(x, y),
        Focus::Subject => {
            let step = (depth.data.len() / SAMPLE_TARGET).max(1);
            let mut v: Vec<f32> = depth
                .data
                .iter()
                .zip(&alpha.data)
                .step_by(step)
                .filter(|(_, &a)| a > 0.9)
                .map(|(&d, _)| d)
                .collect();
            if v.len() < 16 {
                point(0.5, 0.5)
            } else {
                median(&mut v)
            }
        }
    }
}

fn median(v: &mut [f32]) -> f32 {
    let v: &mut [f32] = v;
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f32::total_cmp);
    *m
}

/// Value at quantile `q` (0–1) of the finite samples.
///
/// Statistics of a smooth map: on large maps a regular subsample of ≈ 1 M samples is used (the
/// quantile of 12 M samples moves by well under a percent of the range, at a tenth of the cost).
pub(crate) fn quantile(data: &[f32], q: f64) -> f32 {
    let step = (data.len() / SAMPLE_TARGET).max(1);
    let mut v: Vec<f32> = data
        .iter()
        .step_by(step)
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    let (_, m, _) = v.select_nth_unstable_by(i, f32::total_cmp);
    *m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn parses_npy_dtypes_and_shapes() {
        let body: Vec<u8> = [1.0f32, 2.0, 3.0, f32::INFINITY, 5.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let p = parse_npy(&npy("<f4", "(2, 3)", &body)).unwrap();
        assert_eq!((p.width, p.height), (3, 2));
        assert_eq!(p.data[5], 6.0);
        assert!(p.data[3].is_infinite());
        let p = parse_npy(&npy("|u1", "(2, 2, 1)", &[1, 2, 3, 4])).unwrap();
        assert_eq!((p.width, p.height, p.data[3]), (2, 2, 4.0));
        let be: Vec<u8> = [7u16, 9].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(
            parse_npy(&npy(">u2", "(1, 2)", &be)).unwrap().data,
            [7.0, 9.0]
        );
        assert!(parse_npy(&npy("<f4", "(2, 3)", &body[..8])).is_err());
        assert!(parse_npy(&npy("<c8", "(1, 1)", &[0; 8])).is_err());
        assert!(parse_npy(&npy("<f4", "(2, 2, 2)", &[0; 32])).is_err());
        assert!(parse_npy(b"not numpy at all").is_err());
    }

    #[test]
    fn holes_fill_and_background_ignores_subject() {
        let mut d = Plane::new(32, 32, 1.0);
        d.data[5 * 32 + 5] = f32::NAN;
        let f = fill_holes(&d);
        assert!((f.data[5 * 32 + 5] - 1.0).abs() < 1e-6);
        // Subject square at disparity 10 on a background at 2.
        let mut alpha = Plane::new(32, 32, 0.0);
        for y in 8..24 {
            for x in 8..24 {
                d.data[y * 32 + x] = 10.0;
                alpha.data[y * 32 + x] = 1.0;
            }
        }
        d.data[5 * 32 + 5] = 2.0;
        for v in d.data.iter_mut() {
            if *v == 1.0 {
                *v = 2.0;
            }
        }
        let bg = background_disparity(&d, &alpha);
        assert!((bg.data[16 * 32 + 16] - 2.0).abs() < 1e-4);
        assert_eq!(focus_disparity(&d, &alpha, Focus::Subject), 10.0);
        assert_eq!(
            focus_disparity(&d, &alpha, Focus::Point { x: 0.05, y: 0.05 }),
            2.0
        );
    }

    #[test]
    fn fit_checks_aspect_ratio() {
        let d = Plane::new(40, 30, 1.0);
        assert_eq!(fit(&d, 400, 300).unwrap().width, 400);
        assert!(fit(&d, 300, 400).is_err());
    }
}
