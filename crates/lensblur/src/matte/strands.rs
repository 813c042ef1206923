//! Whiskers and stray hairs that reach far beyond the matte's edge band.
//!
//! The matting band around the coarse edge is a few working pixels wide; a cat's whisker runs a
//! tenth of the frame out into the background and, left out of the matte, is blurred into a pale
//! streak. Strands are found as thin ridges by morphological top-hats (Serra 1982, "Image analysis
//! and mathematical morphology": the image minus its opening keeps bright structures narrower than
//! the structuring element; the closing minus the image, dark ones). Only ridge components that
//! touch the subject and have a long sparse part (a line through a window fills only a few percent
//! of it; background texture fills a third or more) are kept — and their alpha is the ridge height over the strand's own peak
//! height, the linear-blend model of a thin opaque fibre over the local background.

use std::collections::VecDeque;

use crate::buffer::{Plane, RgbPlanes};
use crate::matte::refine::box_mean;

/// Subject pixels (α at or above this) seed the strands.
const SUBJECT: f32 = 0.5;
/// How far strands may run from the subject, as a fraction of the photo's long side.
const REACH: f32 = 0.25;
/// Ridge height (sRGB units) for a pixel to be part of a strand.
const RIDGE: f32 = 0.06;
/// …and at least this share of its pixels must be line-like: whisker fans measured 0.3–0.8, a
/// shrub's texture touching a fleece 0.001, the outlined lettering of a poster 0.03.
const MIN_SPARSE_SHARE: f32 = 0.2;
/// A strand's line-like part must extend at least this many structuring-element half-widths.
const MIN_LENGTH: f32 = 8.0;
/// A ridge pixel is line-like ("sparse") when ridge pixels fill at most this share of the window
/// of ±4 elements around it: a line through the window fills a few percent, texture a third or more.
const MAX_DENSITY: f32 = 0.12;

/// Grey-level erosion (`max = false`) or dilation with a `k × k` square (`k` odd), separably,
/// clamped borders.
///
/// Each 1-D pass is van Herk's / Gil & Werman's algorithm (van Herk 1992, "A fast algorithm for
/// local minimum and maximum filters on rectangular and octagonal kernels"): the padded line is cut
/// into blocks of `k`, running extrema are taken forward and backward within each block, and every
/// window — which spans at most two blocks — is the extremum of one backward and one forward value.
/// Three comparisons per pixel whatever `k`; the naive window scan cost `k` and was most of the
/// strand search on large photos.
fn min_max(src: &[f32], w: usize, h: usize, k: usize, max: bool) -> Vec<f32> {
    use rayon::prelude::*;
    debug_assert!(k % 2 == 1 && src.len() == w * h);
    if w == 0 || h == 0 {
        return Vec::new();
    }
    let r = k / 2;
    // Padding with the identity makes the clamped window an ordinary one.
    let id = if max {
        f32::NEG_INFINITY
    } else {
        f32::INFINITY
    };
    let pick = move |a: f32, b: f32| if max { a.max(b) } else { a.min(b) };
    // Horizontal: one row at a time.
    let mut tmp = vec![0.0f32; w * h];
    tmp.par_chunks_mut(w).zip(src.par_chunks(w)).for_each_init(
        || (vec![0.0f32; w + 2 * r], vec![0.0f32; w + 2 * r]),
        |(fwd, bwd), (out, row)| {
            let at = |p: usize| {
                if p < r || p >= r + w {
                    id
                } else {
                    row[p - r]
                }
            };
            let m = w + 2 * r;
            for p in 0..m {
                fwd[p] = if p % k == 0 {
                    at(p)
                } else {
                    pick(fwd[p - 1], at(p))
                };
            }
            for p in (0..m).rev() {
                bwd[p] = if p % k == k - 1 || p == m - 1 {
                    at(p)
                } else {
                    pick(bwd[p + 1], at(p))
                };
            }
            for (x, o) in out.iter_mut().enumerate() {
                *o = pick(bwd[x], fwd[x + 2 * r]);
            }
        },
    );
    // Vertical: the same on whole rows at once (element-wise), so the inner loops run along
    // memory.
    let m = h + 2 * r;
    let row_at = |p: usize| (p >= r && p < r + h).then(|| &tmp[(p - r) * w..(p - r + 1) * w]);
    let mut fwd = vec![id; m * w];
    let mut bwd = vec![id; m * w];
    for p in 0..m {
        let (done, cur) = fwd.split_at_mut(p * w);
        let cur = &mut cur[..w];
        match (p % k == 0, row_at(p)) {
            (true, Some(row)) => cur.copy_from_slice(row),
            (true, None) => {}
            (false, Some(row)) => {
                let prev = &done[(p - 1) * w..];
                for ((c, &a), &b) in cur.iter_mut().zip(prev).zip(row) {
                    *c = pick(a, b);
                }
            }
            (false, None) => cur.copy_from_slice(&done[(p - 1) * w..]),
        }
    }
    for p in (0..m).rev() {
        let (cur, later) = bwd.split_at_mut((p + 1) * w);
        let cur = &mut cur[p * w..];
        match (p % k == k - 1 || p == m - 1, row_at(p)) {
            (true, Some(row)) => cur.copy_from_slice(row),
            (true, None) => {}
            (false, Some(row)) => {
                for ((c, &a), &b) in cur.iter_mut().zip(&later[..w]).zip(row) {
                    *c = pick(a, b);
                }
            }
            (false, None) => cur.copy_from_slice(&later[..w]),
        }
    }
    let mut out = vec![0.0f32; w * h];
    out.par_chunks_mut(w).enumerate().for_each(|(y, o)| {
        let b = &bwd[y * w..(y + 1) * w];
        let f = &fwd[(y + 2 * r) * w..(y + 2 * r + 1) * w];
        for ((o, &b), &f) in o.iter_mut().zip(b).zip(f) {
            *o = pick(b, f);
        }
    });
    out
}

/// Adds thin strands connected to the subject to `alpha` (full resolution, in place). Returns the
/// number of pixels whose alpha rose.
pub fn extend_strands(image: &RgbPlanes, alpha: &mut Plane) -> usize {
    let (w, h) = (image.width, image.height);
    if alpha.width != w || alpha.height != h || w < 16 || h < 16 {
        return 0;
    }
    // Region of interest: the subject's bounding box grown by the reach.
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        for x in 0..w {
            if alpha.data[y * w + x] >= SUBJECT {
                x0 = x0.min(x);
                x1 = x1.max(x + 1);
                y0 = y0.min(y);
                y1 = y1.max(y + 1);
            }
        }
    }
    if x1 <= x0 {
        return 0;
    }
    let long = w.max(h) as f32;
    let reach = (REACH * long) as usize;
    let (x0, y0) = (x0.saturating_sub(reach), y0.saturating_sub(reach));
    let (x1, y1) = ((x1 + reach).min(w), (y1 + reach).min(h));
    let (rw, rh) = (x1 - x0, y1 - y0);
    // Strands are a few pixels wide at any resolution: scale the element with the photo.
    let half = ((long / 600.0).round() as usize).max(2);
    let k = 2 * half + 1;

    let luma: Vec<f32> = (0..rw * rh)
        .map(|i| {
            let j = (y0 + i / rw) * w + x0 + i % rw;
            0.299 * image.c[0][j] + 0.587 * image.c[1][j] + 0.114 * image.c[2][j]
        })
        .collect();
    // The subject must not make ridges of its own edge: for the bright top-hat it counts as
    // infinitely bright (the opening keeps it, so nothing next to it stands out), for the dark one
    // as infinitely dark. Strands are measured against the background only.
    let subject: Vec<bool> = (0..rw * rh)
        .map(|i| alpha.data[(y0 + i / rw) * w + x0 + i % rw] >= SUBJECT)
        .collect();
    let masked = |v: f32| -> Vec<f32> {
        luma.iter()
            .zip(&subject)
            .map(|(&l, &s)| if s { v } else { l })
            .collect()
    };
    let (opened, closed) = rayon::join(
        || {
            let l = masked(1e3);
            min_max(&min_max(&l, rw, rh, k, false), rw, rh, k, true)
        },
        || {
            let l = masked(-1e3);
            min_max(&min_max(&l, rw, rh, k, true), rw, rh, k, false)
        },
    );
    let bright: Vec<f32> = luma.iter().zip(&opened).map(|(l, o)| l - o).collect();
    let dark: Vec<f32> = closed.iter().zip(&luma).map(|(c, l)| c - l).collect();
    // Within one element of the subject a strand's root is hidden by that masking (the edge
    // band's matting covers it): a strand counts as attached when it comes that close.
    let near: Vec<bool> = {
        let m: Vec<f32> = subject.iter().map(|&s| s as u8 as f32).collect();
        min_max(&m, rw, rh, 2 * k + 1, true)
            .into_iter()
            .map(|v| v > 0.5)
            .collect()
    };
    let a_at = |i: usize| alpha.data[(y0 + i / rw) * w + x0 + i % rw];
    let mut updates: Vec<(usize, f32)> = Vec::new();
    for ridge in [&bright, &dark] {
        let cand: Vec<bool> = (0..rw * rh)
            .map(|i| ridge[i] > RIDGE && !subject[i])
            .collect();
        let density = box_mean(
            &cand.iter().map(|&c| c as u8 as f32).collect::<Vec<_>>(),
            rw,
            rh,
            4 * k,
        );
        let mut seen = vec![false; rw * rh];
        let mut queue = VecDeque::new();
        let mut comp = Vec::new();
        for start in 0..rw * rh {
            if !cand[start] || seen[start] {
                continue;
            }
            comp.clear();
            seen[start] = true;
            queue.push_back(start);
            let mut touches = false;
            while let Some(i) = queue.pop_front() {
                comp.push(i);
                touches |= near[i];
                let (x, y) = (i % rw, i / rw);
                for dy in -1i64..=1 {
                    for dx in -1i64..=1 {
                        let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                        if nx < 0 || ny < 0 || nx >= rw as i64 || ny >= rh as i64 {
                            continue;
                        }
                        let n = ny as usize * rw + nx as usize;
                        if cand[n] && !seen[n] {
                            seen[n] = true;
                            queue.push_back(n);
                        }
                    }
                }
            }
            // Long enough counting only its sparse (line-like) pixels: a whisker fan keeps its
            // dense root in the fur, a texture patch has no long sparse part.
            let (mut sx0, mut sy0, mut sx1, mut sy1) = (rw, rh, 0, 0);
            let mut sparse = 0;
            for &i in comp.iter().filter(|&&i| density[i] <= MAX_DENSITY) {
                let (x, y) = (i % rw, i / rw);
                sx0 = sx0.min(x);
                sx1 = sx1.max(x);
                sy0 = sy0.min(y);
                sy1 = sy1.max(y);
                sparse += 1;
            }
            let sparse_extent = if sparse > 0 {
                (((sx1 - sx0 + 1).pow(2) + (sy1 - sy0 + 1).pow(2)) as f32).sqrt()
            } else {
                0.0
            };
            if !touches
                || sparse_extent < MIN_LENGTH * half as f32
                || (sparse as f32) < MIN_SPARSE_SHARE * comp.len() as f32
            {
                continue;
            }
            // The strand's own peak ridge height stands for an opaque fibre.
            let mut heights: Vec<f32> = comp.iter().map(|&i| ridge[i]).collect();
            heights.sort_by(f32::total_cmp);
            let peak = heights[(heights.len() * 9) / 10].max(RIDGE);
            // The strand and a one-pixel rim (its anti-aliased edge, below the ridge threshold).
            for &i in &comp {
                let (x, y) = (i % rw, i / rw);
                for ny in y.saturating_sub(1)..=(y + 1).min(rh - 1) {
                    for nx in x.saturating_sub(1)..=(x + 1).min(rw - 1) {
                        let n = ny * rw + nx;
                        let a = (ridge[n] / peak).clamp(0.0, 1.0);
                        if a > a_at(n) {
                            updates.push((n, a));
                        }
                    }
                }
            }
        }
    }
    let mut raised = 0;
    for (i, a) in updates {
        let j = (y0 + i / rw) * w + x0 + i % rw;
        if a > alpha.data[j] {
            alpha.data[j] = a;
            raised += 1;
        }
    }
    raised
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The windowed scan the fast filter must reproduce exactly.
    fn min_max_naive(src: &[f32], w: usize, h: usize, k: usize, max: bool) -> Vec<f32> {
        let r = k / 2;
        let mut out = vec![0.0; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut v = if max {
                    f32::NEG_INFINITY
                } else {
                    f32::INFINITY
                };
                for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
                    for xx in x.saturating_sub(r)..=(x + r).min(w - 1) {
                        let s = src[yy * w + xx];
                        v = if max { v.max(s) } else { v.min(s) };
                    }
                }
                out[y * w + x] = v;
            }
        }
        out
    }

    #[test]
    fn fast_min_max_equals_the_window_scan() {
        let mut seed = 12345u32;
        for (w, h) in [(1, 1), (1, 9), (7, 1), (13, 11), (40, 23)] {
            let src: Vec<f32> = (0..w * h)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 8) as f32 / (1u32 << 24) as f32
                })
                .collect();
            for k in [1, 3, 5, 9, 31] {
                for max in [false, true] {
                    assert_eq!(
                        min_max(&src, w, h, k, max),
                        min_max_naive(&src, w, h, k, max),
                        "{w}x{h} k={k} max={max}"
                    );
                }
            }
        }
    }

    /// A dark frame with a bright subject disc on the left; `strand` adds a 2-px bright line from
    /// the disc's edge to the right, `blob` a patch of bright 3-px checks touching the disc (texture:
    /// every check is a ridge, but together they are not thin).
    fn scene(strand: bool, blob: bool) -> (RgbPlanes, Plane) {
        let (w, h) = (400, 200);
        let mut img = RgbPlanes::new(w, h, 0.1);
        let mut alpha = Plane::new(w, h, 0.0);
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let inside =
                    ((x as f32 - 100.0).powi(2) + (y as f32 - 100.0).powi(2)).sqrt() < 60.0;
                if inside {
                    alpha.data[i] = 1.0;
                    (0..3).for_each(|c| img.c[c][i] = 0.6);
                }
                if strand && !inside && (99..101).contains(&y) && (100..250).contains(&x) {
                    (0..3).for_each(|c| img.c[c][i] = 0.9);
                }
                let checker = (x / 3 + y / 3) % 2 == 0;
                if blob && !inside && checker && (40..80).contains(&y) && (150..190).contains(&x) {
                    (0..3).for_each(|c| img.c[c][i] = 0.9);
                }
            }
        }
        (img, alpha)
    }

    #[test]
    fn thin_strands_join_the_matte_and_blobs_do_not() {
        let (img, mut alpha) = scene(true, true);
        let before = alpha.clone();
        let n = extend_strands(&img, &mut alpha);
        let w = img.width;
        // The line (2 px × 90 px) is now opaque along its length…
        for x in (165..250).step_by(7) {
            assert!(
                alpha.data[99 * w + x] > 0.9,
                "x {x}: {}",
                alpha.data[99 * w + x]
            );
            assert!(alpha.data[100 * w + x] > 0.9, "x {x}");
            assert!(alpha.data[95 * w + x] < 0.05, "x {x} above the strand");
        }
        // …beyond its end nothing changed, nor in the texture patch (too wide to be a strand).
        assert_eq!(alpha.data[99 * w + 270], 0.0);
        for y in 40..80 {
            for x in 150..190 {
                assert_eq!(alpha.data[y * w + x], before.data[y * w + x], "({x}, {y})");
            }
        }
        assert!((180..=400).contains(&n), "{n}");
        // The same line, detached from the subject, stays background.
        let (mut img2, mut alpha2) = scene(true, false);
        for y in 99..101 {
            for x in 160..170 {
                (0..3).for_each(|c| img2.c[c][y * w + x] = 0.1);
            }
        }
        assert_eq!(extend_strands(&img2, &mut alpha2), 0);
    }
}
