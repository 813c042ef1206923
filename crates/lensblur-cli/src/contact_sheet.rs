//! `--contact-sheet FILE`: a grid of before/after thumbnails with file names, for checking a whole
//! delivery at a glance (was the subject found, is the blur the same everywhere).
//!
//! Thumbnails are made while the full-size photo is still in memory (an exact box shrink, then the
//! library's antialiased resize) and kept as 8-bit RGB, ~100 KB per photo, so the sheet costs
//! memory proportional to the number of photos; it is opt-in for that reason. Labels use a built-in
//! 5×7 bitmap font (upper case, digits, `._-/`), so no font file is needed.

use std::collections::BTreeMap;
use std::path::Path;

use lensblur::buffer::RgbPlanes;
use lensblur::io::{self, EncodeOptions, Format, Metadata};
use lensblur::resample::{downsample_box, resize_rgb};

/// Long side of each thumbnail, pixels.
pub const THUMB: usize = 200;
/// Pairs per row.
const COLUMNS: usize = 4;
const GAP: usize = 8;
const LABEL: usize = 14;

/// An 8-bit RGB thumbnail.
pub struct Thumb {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

/// Shrinks sRGB planes to fit THUMB×THUMB (aspect kept).
pub fn thumbnail(src: &RgbPlanes) -> Thumb {
    let (w, h) = (src.width, src.height);
    let scale = THUMB as f64 / w.max(h) as f64;
    let tw = ((w as f64 * scale).round() as usize).clamp(1, THUMB);
    let th = ((h as f64 * scale).round() as usize).clamp(1, THUMB);
    let f = (w / (2 * tw)).min(h / (2 * th)).max(1);
    let small = if f > 1 {
        let (sw, sh) = (w.div_ceil(f), h.div_ceil(f));
        RgbPlanes {
            width: sw,
            height: sh,
            c: [0, 1, 2].map(|ch| downsample_box(&src.c[ch], w, h, f)),
        }
    } else {
        src.clone()
    };
    let t = resize_rgb(&small, tw, th);
    let mut rgb = Vec::with_capacity(tw * th * 3);
    for i in 0..tw * th {
        for ch in 0..3 {
            rgb.push((t.c[ch][i].clamp(0.0, 1.0) * 255.0).round() as u8);
        }
    }
    Thumb {
        width: tw,
        height: th,
        rgb,
    }
}

/// Collects thumbnails (in input order, whatever order they finish in) and draws the sheet.
#[derive(Default)]
pub struct ContactSheet {
    cells: BTreeMap<usize, (String, Thumb, Thumb)>,
}

impl ContactSheet {
    /// An empty sheet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds photo number `idx` (its position in the batch) with its label.
    pub fn add(&mut self, idx: usize, label: &str, before: Thumb, after: Thumb) {
        self.cells.insert(idx, (label.to_string(), before, after));
    }

    /// Draws the grid and writes it (JPEG or PNG from the extension), replacing an old sheet.
    /// Returns the number of photos on it.
    pub fn write(&self, path: &Path) -> lensblur::Result<usize> {
        let n = self.cells.len();
        let cols = COLUMNS.min(n.max(1));
        let rows = n.div_ceil(cols).max(1);
        let cell_w = 2 * THUMB + GAP;
        let cell_h = THUMB + LABEL;
        let (w, h) = (cols * (cell_w + GAP) + GAP, rows * (cell_h + GAP) + GAP);
        let mut canvas = Canvas::new(w, h, [40, 40, 40]);
        for (k, (label, before, after)) in self.cells.values().enumerate() {
            let x0 = GAP + (k % cols) * (cell_w + GAP);
            let y0 = GAP + (k / cols) * (cell_h + GAP);
            // Centre each thumbnail in its square.
            canvas.blit(
                before,
                x0 + (THUMB - before.width) / 2,
                y0 + (THUMB - before.height) / 2,
            );
            canvas.blit(
                after,
                x0 + THUMB + GAP + (THUMB - after.width) / 2,
                y0 + (THUMB - after.height) / 2,
            );
            let max_chars = cell_w / 6;
            let text: String = if label.chars().count() > max_chars {
                let tail: String = label.chars().rev().take(max_chars - 3).collect();
                format!("...{}", tail.chars().rev().collect::<String>())
            } else {
                label.to_string()
            };
            canvas.text(&text, x0, y0 + THUMB + 4, [230, 230, 230]);
        }
        let format = io::format_from_path(path).unwrap_or(Format::Jpeg);
        let planes = canvas.to_planes();
        let bytes = io::encode(
            &planes,
            None,
            &Metadata::default(),
            &EncodeOptions {
                format,
                quality: 90,
                bit_depth: 8,
            },
        )?;
        io::write_atomic(path, &bytes, true)?;
        Ok(n)
    }
}

struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize, fill: [u8; 3]) -> Self {
        Canvas {
            width,
            height,
            rgb: fill.repeat(width * height),
        }
    }

    fn blit(&mut self, t: &Thumb, x0: usize, y0: usize) {
        for y in 0..t.height.min(self.height.saturating_sub(y0)) {
            let n = t.width.min(self.width.saturating_sub(x0));
            let dst = ((y0 + y) * self.width + x0) * 3;
            let src = y * t.width * 3;
            self.rgb[dst..dst + n * 3].copy_from_slice(&t.rgb[src..src + n * 3]);
        }
    }

    fn text(&mut self, s: &str, x0: usize, y0: usize, colour: [u8; 3]) {
        for (i, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        let (x, y) = (x0 + i * 6 + col, y0 + row);
                        if x < self.width && y < self.height {
                            let at = (y * self.width + x) * 3;
                            self.rgb[at..at + 3].copy_from_slice(&colour);
                        }
                    }
                }
            }
        }
    }

    fn to_planes(&self) -> RgbPlanes {
        let mut p = RgbPlanes::new(self.width, self.height, 0.0);
        for (i, px) in self.rgb.chunks_exact(3).enumerate() {
            for (plane, &v) in p.c.iter_mut().zip(px) {
                plane[i] = v as f32 / 255.0;
            }
        }
        p
    }
}

/// The classic 5×7 dot-matrix shapes; lower case is drawn as upper case, anything else as `?`.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F],
        '/' => [0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10],
        ' ' => [0x00; 7],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
    }
}
