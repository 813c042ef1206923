//! Every person and animal in the frame, not only the most salient one.
//!
//! A salient-object model (U²-Net) answers "what stands out?": in a group photo that is often one
//! person, and a man beside a striking sculpture can lose his jacket to it. An object detector
//! (YOLOX-nano, Ge et al. 2021, "YOLOX: Exceeding YOLO series in 2021", COCO classes) answers "where
//! are the people and animals?". We anchor on the detection the salient matte already holds, add
//! every person/animal of comparable size (a group), and wherever such a box is poorly covered by
//! the matte we run the matte model again on that box alone and merge the result — the model then
//! sees one person at a time, at a better resolution. Smaller figures (passers-by) stay background,
//! and photos whose subject is not a person or animal (products) are left as they are.

use std::path::Path;

use crate::buffer::{Plane, RgbPlanes};
use crate::error::{Error, Result};
use crate::matte::{coarse_matte, MatteBackend, Net, Runtime};
use crate::resample::resize_rgb;

/// YOLOX-nano input side.
const SIZE: usize = 416;
/// Letterbox padding value (YOLOX's preprocessing).
const PAD: f32 = 114.0;
/// Minimum score (objectness × class) for a detection.
const MIN_SCORE: f32 = 0.45;
/// IoU above which the weaker of two same-class boxes is suppressed.
const NMS_IOU: f32 = 0.5;
/// COCO class id of a person (the other subject classes are animals).
pub const PERSON: usize = 0;
/// COCO class ids that can be a photo's subject: person and the animals.
const SUBJECT_CLASSES: [usize; 11] = [0, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23];
/// A detection joins the subject when its box is at least this tall relative to the anchor's.
const GROUP_HEIGHT: f32 = 0.6;
/// The anchor must be at least this covered by the salient matte (mean coarse α in its box).
const ANCHOR_COVERAGE: f32 = 0.25;
/// Boxes covered less than this by the matte are matted again on their own.
const COMPLETE_BELOW: f32 = 0.45;
/// Box margin added on each side before re-matting, as a fraction of its size (hair, elbows).
const MARGIN: f32 = 0.12;

/// A detected box in photo pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// COCO class id (0 = person).
    pub class: usize,
    /// Objectness × class probability.
    pub score: f32,
    /// Left, top, right, bottom in photo pixels.
    pub bbox: [f32; 4],
}

impl Detection {
    fn area(&self) -> f32 {
        (self.bbox[2] - self.bbox[0]).max(0.0) * (self.bbox[3] - self.bbox[1]).max(0.0)
    }

    fn height(&self) -> f32 {
        self.bbox[3] - self.bbox[1]
    }

    fn iou(&self, o: &Detection) -> f32 {
        let ix = (self.bbox[2].min(o.bbox[2]) - self.bbox[0].max(o.bbox[0])).max(0.0);
        let iy = (self.bbox[3].min(o.bbox[3]) - self.bbox[1].max(o.bbox[1])).max(0.0);
        let inter = ix * iy;
        inter / (self.area() + o.area() - inter).max(1e-6)
    }
}

/// YOLOX-nano on `rten` or ONNX Runtime (whichever runs the matte model: ~14 ms a photo on one
/// core with ONNX Runtime, about four times that with `rten`).
#[derive(Debug)]
pub struct Detector {
    net: Net,
}

impl Detector {
    /// Loads the YOLOX-nano `.onnx` file (input `images`, output 1×3549×85) on `rten`.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_on(path, Runtime::Rten, 0)
    }

    /// Loads the file on `runtime` (see [`Net::load`]: pass the runtime the matte model actually
    /// got); `threads` as for the matte model.
    pub fn load_on(path: &Path, runtime: Runtime, threads: usize) -> Result<Self> {
        Ok(Detector {
            net: Net::load(path, runtime, "images", "", threads)?,
        })
    }

    /// The runtime it runs on.
    pub fn runtime(&self) -> Runtime {
        self.net.runtime()
    }

    /// People and animals in `image` (sRGB in [0, 1]), strongest first.
    pub fn detect(&self, image: &RgbPlanes) -> Result<Vec<Detection>> {
        let (w, h) = (image.width, image.height);
        let r = (SIZE as f32 / w as f32).min(SIZE as f32 / h as f32);
        let (rw, rh) = (
            ((w as f32 * r).round() as usize).clamp(1, SIZE),
            ((h as f32 * r).round() as usize).clamp(1, SIZE),
        );
        let small = resize_rgb(image, rw, rh);
        // BGR, 0–255, letterboxed top-left, padded with 114: YOLOX's own preprocessing.
        let mut input = vec![PAD; 3 * SIZE * SIZE];
        for (c, src) in [2usize, 1, 0].into_iter().enumerate() {
            let plane = &mut input[c * SIZE * SIZE..(c + 1) * SIZE * SIZE];
            for y in 0..rh {
                for x in 0..rw {
                    plane[y * SIZE + x] = small.c[src][y * rw + x] * 255.0;
                }
            }
        }
        let (shape, raw) = self.net.run(input, [1, 3, SIZE, SIZE])?;
        decode(&raw, r, w as f32, h as f32).ok_or_else(|| Error::Model {
            model: self.net.name().to_string(),
            detail: format!("output shape {shape:?}, expected 1×3549×85"),
        })
    }
}

/// Decodes YOLOX's raw grid output (strides 8, 16, 32) into subject-class boxes in photo pixels,
/// then per-class non-maximum suppression. `None` when the output has the wrong size.
fn decode(raw: &[f32], scale: f32, w: f32, h: f32) -> Option<Vec<Detection>> {
    const ROW: usize = 85;
    let grids: Vec<(usize, usize)> = [8, 16, 32].iter().map(|&s| (SIZE / s, s)).collect();
    let anchors: usize = grids.iter().map(|(g, _)| g * g).sum();
    if raw.len() != anchors * ROW {
        return None;
    }
    let mut found = Vec::new();
    let mut i = 0;
    for &(g, stride) in &grids {
        for gy in 0..g {
            for gx in 0..g {
                let a = &raw[i * ROW..(i + 1) * ROW];
                i += 1;
                let (class, p) = SUBJECT_CLASSES
                    .iter()
                    .map(|&c| (c, a[5 + c]))
                    .fold((0, f32::MIN), |b, c| if c.1 > b.1 { c } else { b });
                let score = a[4] * p;
                if score.is_nan() || score < MIN_SCORE {
                    continue;
                }
                let s = stride as f32;
                let (cx, cy) = ((a[0] + gx as f32) * s, (a[1] + gy as f32) * s);
                let (bw, bh) = (a[2].exp() * s, a[3].exp() * s);
                let bbox = [
                    ((cx - bw / 2.0) / scale).clamp(0.0, w),
                    ((cy - bh / 2.0) / scale).clamp(0.0, h),
                    ((cx + bw / 2.0) / scale).clamp(0.0, w),
                    ((cy + bh / 2.0) / scale).clamp(0.0, h),
                ];
                found.push(Detection { class, score, bbox });
            }
        }
    }
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in found {
        if d.area() > 0.0
            && !kept
                .iter()
                .any(|k| k.class == d.class && k.iou(&d) > NMS_IOU)
        {
            kept.push(d);
        }
    }
    Some(kept)
}

/// Mean of `map` (covering the whole photo) over a box given in photo pixels.
fn box_mean(map: &Plane, bbox: [f32; 4], w: usize, h: usize) -> f32 {
    let (sx, sy) = (map.width as f32 / w as f32, map.height as f32 / h as f32);
    let x0 = ((bbox[0] * sx).floor() as usize).min(map.width - 1);
    let x1 = ((bbox[2] * sx).ceil() as usize).clamp(x0 + 1, map.width);
    let y0 = ((bbox[1] * sy).floor() as usize).min(map.height - 1);
    let y1 = ((bbox[3] * sy).ceil() as usize).clamp(y0 + 1, map.height);
    let mut s = 0.0;
    for y in y0..y1 {
        s += map.data[y * map.width + x0..y * map.width + x1]
            .iter()
            .sum::<f32>();
    }
    s / ((x1 - x0) * (y1 - y0)) as f32
}

/// The detections that belong to the subject: the person/animal the salient matte holds best (the
/// anchor, first) and every other one at least [`GROUP_HEIGHT`] as tall. Empty when the matte holds
/// no person or animal (a product shot).
pub fn subject_group(map: &Plane, detections: &[Detection], w: usize, h: usize) -> Vec<Detection> {
    let anchor = detections
        .iter()
        .map(|d| (box_mean(map, d.bbox, w, h), d))
        .filter(|(c, _)| *c >= ANCHOR_COVERAGE)
        .max_by(|a, b| (a.0 * a.1.area()).total_cmp(&(b.0 * b.1.area())));
    let Some((_, anchor)) = anchor else {
        return Vec::new();
    };
    std::iter::once(anchor)
        .chain(
            detections
                .iter()
                .filter(|d| *d != anchor && d.height() >= GROUP_HEIGHT * anchor.height()),
        )
        .cloned()
        .collect()
}

/// Completes the coarse `map` (the salient model's output over the whole photo) with every
/// subject-group member it covers poorly: that box, with a margin, is matted on its own and merged
/// by maximum. Returns the subject group ([`subject_group`]) and how many boxes were re-matted.
pub fn complete_subjects(
    backend: &dyn MatteBackend,
    image: &RgbPlanes,
    map: &mut Plane,
    detections: &[Detection],
) -> Result<(Vec<Detection>, usize)> {
    let (w, h) = (image.width, image.height);
    let group = subject_group(map, detections, w, h);
    let mut done = 0;
    // The anchor is what the salient matte already holds best: matting it again alone gains
    // nothing (measured on a portrait whose dark jacket the model drops either way) and would
    // cost a model run on most single portraits.
    for d in group.iter().skip(1) {
        let coverage = box_mean(map, d.bbox, w, h);
        if coverage >= COMPLETE_BELOW {
            continue;
        }
        let (bw, bh) = (d.bbox[2] - d.bbox[0], d.bbox[3] - d.bbox[1]);
        let x0 = (d.bbox[0] - MARGIN * bw).max(0.0).floor() as usize;
        let y0 = (d.bbox[1] - MARGIN * bh).max(0.0).floor() as usize;
        let x1 = ((d.bbox[2] + MARGIN * bw).ceil() as usize).min(w);
        let y1 = ((d.bbox[3] + MARGIN * bh).ceil() as usize).min(h);
        // Too small to matte, or so large that the model would see nearly the same picture.
        if x1 < x0 + 16 || y1 < y0 + 16 || (x1 - x0) * (y1 - y0) * 10 > w * h * 6 {
            continue;
        }
        let crop = crop_rgb(image, x0, y0, x1, y1);
        let cm = coarse_matte(backend, &crop)?;
        if cm.no_subject() {
            continue;
        }
        tracing::debug!(
            class = d.class,
            score = d.score,
            coverage,
            "re-matting a subject the salient matte missed"
        );
        merge_max(map, &cm.map, [x0, y0, x1, y1], w, h);
        done += 1;
    }
    Ok((group, done))
}

fn crop_rgb(image: &RgbPlanes, x0: usize, y0: usize, x1: usize, y1: usize) -> RgbPlanes {
    let (cw, ch) = (x1 - x0, y1 - y0);
    let mut out = RgbPlanes::new(cw, ch, 0.0);
    for c in 0..3 {
        for y in 0..ch {
            let src = (y0 + y) * image.width + x0;
            out.c[c][y * cw..(y + 1) * cw].copy_from_slice(&image.c[c][src..src + cw]);
        }
    }
    out
}

/// `map = max(map, crop_map)` over the crop's box (photo pixels), sampling the crop's map bilinearly.
fn merge_max(map: &mut Plane, crop_map: &Plane, b: [usize; 4], w: usize, h: usize) {
    let (sx, sy) = (map.width as f32 / w as f32, map.height as f32 / h as f32);
    let (bw, bh) = ((b[2] - b[0]) as f32, (b[3] - b[1]) as f32);
    let mx0 = (b[0] as f32 * sx).ceil() as usize;
    let mx1 = ((b[2] as f32 * sx).floor() as usize).min(map.width);
    let my0 = (b[1] as f32 * sy).ceil() as usize;
    let my1 = ((b[3] as f32 * sy).floor() as usize).min(map.height);
    for my in my0..my1 {
        // Map pixel centre → photo → crop-map coordinates.
        let py = (my as f32 + 0.5) / sy - b[1] as f32;
        let cy = (py / bh * crop_map.height as f32 - 0.5).clamp(0.0, (crop_map.height - 1) as f32);
        for mx in mx0..mx1 {
            let px = (mx as f32 + 0.5) / sx - b[0] as f32;
            let cx =
                (px / bw * crop_map.width as f32 - 0.5).clamp(0.0, (crop_map.width - 1) as f32);
            let v = bilinear(crop_map, cx, cy);
            let m = &mut map.data[my * map.width + mx];
            *m = m.max(v);
        }
    }
}

fn bilinear(p: &Plane, x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(p.width - 1), (y0 + 1).min(p.height - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let at = |x: usize, y: usize| p.data[y * p.width + x];
    (at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx) * (1.0 - fy)
        + (at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx) * fy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class: usize, score: f32, bbox: [f32; 4]) -> Detection {
        Detection { class, score, bbox }
    }

    #[test]
    fn decode_places_boxes_and_suppresses_duplicates() {
        let mut raw = vec![0.0f32; 3549 * 85];
        // Stride-8 grid cell (10, 20): centre (10.5·8, 20.25·8) = (84, 162), 64×128 box, person.
        let i = 20 * 52 + 10;
        raw[i * 85..i * 85 + 6].copy_from_slice(&[0.5, 0.25, 8f32.ln(), 16f32.ln(), 0.9, 0.9]);
        // Its neighbour sees the same person slightly weaker: suppressed.
        let j = i + 1;
        raw[j * 85..j * 85 + 6].copy_from_slice(&[-0.5, 0.25, 8f32.ln(), 16f32.ln(), 0.8, 0.9]);
        // A confident "car" (class 2) is not a subject class.
        let k = 5 * 52 + 5;
        raw[k * 85 + 4] = 0.99;
        raw[k * 85 + 5 + 2] = 0.99;
        // Letterbox scale 0.5: photo coordinates are doubled.
        let d = decode(&raw, 0.5, 1000.0, 1000.0).expect("shape");
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].class, 0);
        assert!((d[0].score - 0.81).abs() < 1e-6);
        let want = [104.0, 196.0, 232.0, 452.0];
        for (a, b) in d[0].bbox.iter().zip(want) {
            assert!((a - b).abs() < 1e-3, "{:?}", d[0].bbox);
        }
        assert!(decode(&raw[..85], 0.5, 10.0, 10.0).is_none());
    }

    #[test]
    fn group_is_anchored_on_the_matte_and_ignores_small_figures() {
        // 100×100 photo, map at 10×10 holding the left person only.
        let mut map = Plane::new(10, 10, 0.0);
        for y in 2..10 {
            for x in 1..4 {
                map.data[y * 10 + x] = 1.0;
            }
        }
        let left = det(0, 0.9, [10.0, 20.0, 40.0, 100.0]);
        let right = det(0, 0.8, [60.0, 25.0, 90.0, 100.0]);
        let passer_by = det(0, 0.9, [45.0, 70.0, 52.0, 90.0]);
        let g = subject_group(&map, &[left.clone(), right.clone(), passer_by], 100, 100);
        assert_eq!(g, vec![left.clone(), right]);
        // Nothing person-like in the matte (a product shot): no group.
        let product = Plane::new(10, 10, 0.0);
        assert!(subject_group(&product, &[left], 100, 100).is_empty());
    }

    #[test]
    fn merge_takes_the_maximum_inside_the_box_only() {
        let mut map = Plane::new(10, 10, 0.2);
        let crop = Plane::new(4, 4, 0.9);
        merge_max(&mut map, &crop, [20, 30, 60, 70], 100, 100);
        for y in 0..10 {
            for x in 0..10 {
                let inside = (2..6).contains(&x) && (3..7).contains(&y);
                let v = map.data[y * 10 + x];
                assert_eq!(v, if inside { 0.9 } else { 0.2 }, "({x}, {y})");
            }
        }
    }
}
