//! The depth-ordered variable-radius renderer against an exact, slow reference: every scene pixel
//! (hidden ones included: the scenes are built from whole layers) scatters its anti-aliased disc with
//! its own radius, composited with premultiplied `over` in depth order, far to near, then normalised by
//! the accumulated coverage. The fast path sees only what a camera sees — the flattened image, the
//! matte and the per-pixel circle of confusion — so where it must extrapolate hidden content the
//! bound is looser; each test states its bound and prints the measured PSNR.
#![allow(clippy::needless_range_loop)] // index loops read closest to the maths in reference code

use lensblur::bokeh::DiscKernel;
use lensblur::buffer::{Plane, RgbPlanes};
use lensblur::composite::{render_linear, render_linear_depth, RenderParams};

/// A scene layer: premultiplied colour, coverage, signed radius (negative = behind focus), order.
struct Layer {
    rgb: RgbPlanes,
    a: Plane,
    coc: f32,
}

/// Exact depth-ordered scatter of all layer pixels (O(N·r²)): pixels at the same depth (one scene
/// layer, or one row of a receding plane) scatter additively; depths composite with `over`, far first.
fn reference(layers: &[Layer], coc_of_pixel: Option<&Plane>) -> RgbPlanes {
    let (w, h) = (layers[0].rgb.width, layers[0].rgb.height);
    let mut acc = [
        vec![0.0f64; w * h],
        vec![0.0f64; w * h],
        vec![0.0f64; w * h],
    ];
    let mut cov = vec![0.0f64; w * h];
    // Sources sorted by signed coc (farther = more negative first).
    let mut src: Vec<(f32, usize, usize)> = Vec::new();
    for (li, l) in layers.iter().enumerate() {
        for i in 0..w * h {
            if l.a.data[i] > 0.0 {
                let c = coc_of_pixel.map_or(l.coc, |p| p.data[i]);
                src.push((c, li, i));
            }
        }
    }
    src.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut start = 0;
    while start < src.len() {
        let c = src[start].0;
        let end = start + src[start..].iter().take_while(|s| s.0 == c).count();
        // Exact pixel weights of the disc of this depth's radius.
        let r = c.abs();
        let k = DiscKernel::new(r);
        let total = k.total().max(1e-12);
        let reach = k.reach as i64 + 1;
        let mut taps = Vec::new();
        for dy in -reach..=reach {
            for dx in -(r as i64 + 2)..=(r as i64 + 2) {
                let wt = if r < 0.5 {
                    f64::from(u8::from(dx == 0 && dy == 0))
                } else {
                    k.weight(dx, dy) / total
                };
                if wt > 0.0 {
                    taps.push((dx, dy, wt));
                }
            }
        }
        let mut lc = [
            vec![0.0f64; w * h],
            vec![0.0f64; w * h],
            vec![0.0f64; w * h],
        ];
        let mut la = vec![0.0f64; w * h];
        for &(_, li, i) in &src[start..end] {
            let l = &layers[li];
            let a = l.a.data[i] as f64;
            let (x, y) = ((i % w) as i64, (i / w) as i64);
            for &(dx, dy, wt) in &taps {
                let (xx, yy) = (x + dx, y + dy);
                if xx < 0 || yy < 0 || xx >= w as i64 || yy >= h as i64 {
                    continue;
                }
                let o = yy as usize * w + xx as usize;
                for ch in 0..3 {
                    lc[ch][o] += wt * l.rgb.c[ch][i] as f64;
                }
                la[o] += wt * a;
            }
        }
        for o in 0..w * h {
            let t = 1.0 - la[o].min(1.0);
            for ch in 0..3 {
                acc[ch][o] = lc[ch][o] + t * acc[ch][o];
            }
            cov[o] = la[o].min(1.0) + t * cov[o];
        }
        start = end;
    }
    let mut out = RgbPlanes::new(w, h, 0.0);
    for ch in 0..3 {
        for i in 0..w * h {
            out.c[ch][i] = if cov[i] > 0.0 {
                (acc[ch][i] / cov[i]) as f32
            } else {
                0.0
            };
        }
    }
    out
}

/// What the camera sees: layers flattened near over far, and the per-pixel coc of the visible one.
fn flatten(layers: &[Layer]) -> (RgbPlanes, Plane) {
    let (w, h) = (layers[0].rgb.width, layers[0].rgb.height);
    let mut img = RgbPlanes::new(w, h, 0.0);
    let mut coc = Plane::new(w, h, 0.0);
    let mut order: Vec<usize> = (0..layers.len()).collect();
    order.sort_by(|&a, &b| layers[a].coc.total_cmp(&layers[b].coc));
    for &li in &order {
        let l = &layers[li];
        for i in 0..w * h {
            let a = l.a.data[i];
            if a <= 0.0 {
                continue;
            }
            for ch in 0..3 {
                img.c[ch][i] = l.rgb.c[ch][i] + (1.0 - a) * img.c[ch][i];
            }
            if a >= 0.5 {
                coc.data[i] = l.coc;
            }
        }
    }
    (img, coc)
}

fn psnr(a: &RgbPlanes, b: &RgbPlanes, margin: usize) -> f64 {
    let (w, h) = (a.width, a.height);
    let mut se = 0.0f64;
    let mut n = 0usize;
    for y in margin..h - margin {
        for x in margin..w - margin {
            let i = y * w + x;
            for ch in 0..3 {
                let d = (a.c[ch][i] - b.c[ch][i]) as f64;
                se += d * d;
                n += 1;
            }
        }
    }
    10.0 * (1.0 / (se / n as f64).max(1e-20)).log10()
}

/// Deterministic texture in [0, 1].
fn noise(x: usize, y: usize, seed: u64) -> f32 {
    let mut z = (x as u64) << 32 ^ y as u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
}

fn layer(w: usize, h: usize, coc: f32, f: impl Fn(usize, usize) -> Option<[f32; 3]>) -> Layer {
    let mut rgb = RgbPlanes::new(w, h, 0.0);
    let mut a = Plane::new(w, h, 0.0);
    for y in 0..h {
        for x in 0..w {
            if let Some(c) = f(x, y) {
                let i = y * w + x;
                for ch in 0..3 {
                    rgb.c[ch][i] = c[ch];
                }
                a.data[i] = 1.0;
            }
        }
    }
    Layer { rgb, a, coc }
}

fn params() -> RenderParams {
    RenderParams {
        radius: 0.0,
        highlights: 0.0,
        aperture: Default::default(),
    }
}

fn fast(layers: &[Layer]) -> RgbPlanes {
    let (img, coc) = flatten(layers);
    let (w, h) = (img.width, img.height);
    let alpha = Plane::new(w, h, 0.0);
    render_linear_depth(&img, &img, &alpha, &coc, &params())
}

#[test]
fn points_of_light_on_one_plane_match_the_reference() {
    let (w, h) = (96, 80);
    let l = layer(w, h, -6.0, |x, y| {
        let v = if noise(x, y, 1) > 0.985 { 1.0 } else { 0.05 };
        Some([v, v * 0.8, 0.1 + 0.2 * (x as f32 / w as f32)])
    });
    let want = reference(std::slice::from_ref(&l), None);
    let got = fast(std::slice::from_ref(&l));
    let p = psnr(&want, &got, 0);
    println!("points of light, r = 6: {p:.1} dB");
    assert!(p >= 40.0, "{p:.1} dB");
}

#[test]
fn one_plane_matches_the_uniform_renderer() {
    use lensblur::bokeh::{Aperture, Profile, Shape};
    let (w, h) = (120, 90);
    let l = layer(w, h, -9.0, |x, y| {
        let v = if noise(x, y, 3) > 0.99 {
            1.0
        } else {
            noise(x / 3, y / 3, 5) * 0.3
        };
        Some([v, 1.0 - v, (x + y) as f32 / 210.0])
    });
    let (img, coc) = flatten(std::slice::from_ref(&l));
    let alpha = Plane::new(w, h, 0.0);
    let apertures = [
        Aperture::default(),
        Aperture {
            shape: Shape::Blades(6),
            rotation_deg: 15.0,
            ..Default::default()
        },
        Aperture {
            shape: Shape::Blades(9),
            curvature: 0.5,
            profile: Profile::Bubble,
            ..Default::default()
        },
    ];
    for aperture in apertures {
        let p = RenderParams {
            radius: 9.0,
            highlights: 0.0,
            aperture,
        };
        let layered = render_linear_depth(&img, &img, &alpha, &coc, &p);
        let uniform = render_linear(&img, &img, &alpha, &p);
        let db = psnr(&layered, &uniform, 0);
        println!(
            "layered vs uniform, r = 9, {:?}: {db:.1} dB",
            p.aperture.shape
        );
        assert!(db >= 40.0, "{:?}: {db:.1} dB", p.aperture);
    }
}

#[test]
fn occluding_layers_match_the_reference() {
    // Far textured wall (r = 8), a mid object (r = 3) and a near bar (r = 5, in front of the focal
    // plane) over a sharp in-focus square: occlusion in both directions.
    let (w, h) = (112, 96);
    let far = layer(w, h, -8.0, |x, y| {
        let v = 0.2 + 0.6 * noise(x / 4, y / 4, 2);
        Some([v, 0.5 * v, 0.3])
    });
    let mid = layer(w, h, -3.0, |x, y| {
        let (dx, dy) = (x as f32 - 35.0, y as f32 - 40.0);
        (dx * dx + dy * dy < 18.0 * 18.0).then_some([0.9, 0.8, 0.2])
    });
    let focus = layer(w, h, 0.0, |x, y| {
        ((60..90).contains(&x) && (30..70).contains(&y)).then_some([0.1, 0.3, 0.9])
    });
    let near = layer(w, h, 5.0, |x, _| {
        ((70..78).contains(&x)).then_some([0.95, 0.95, 0.95])
    });
    let scene = [far, mid, focus, near];
    let want = reference(&scene, None);
    let got = fast(&scene);
    let p = psnr(&want, &got, 0);
    println!("occluding layers: {p:.1} dB");
    if let Ok(dir) = std::env::var("LENSBLUR_DUMP") {
        let (img, _) = flatten(&scene);
        for (name, im) in [("want", &want), ("got", &got), ("input", &img)] {
            let mut buf = image::RgbImage::new(w as u32, h as u32);
            for (i, px) in buf.pixels_mut().enumerate() {
                *px =
                    image::Rgb([0, 1, 2].map(|c| {
                        (lensblur::color::linear_to_srgb(im.c[c][i]) * 255.0).round() as u8
                    }));
            }
            buf.save(format!("{dir}/occl_{name}.png")).unwrap();
        }
    }
    // Hidden texture behind the mid object and the bar can only be extrapolated.
    assert!(p >= 30.0, "{p:.1} dB");
    // The in-focus square stays sharp away from the near bar: exact there.
    for y in 40..60 {
        for x in 62..64 {
            let i = y * w + x;
            assert!(
                (got.c[2][i] - 0.9).abs() < 0.02,
                "({x},{y}) {}",
                got.c[2][i]
            );
        }
    }
}

#[test]
fn ground_plane_has_no_seams_between_slices() {
    // A receding floor: radius grows smoothly from 0.3 px (bottom) to 14 px (top), crossing three
    // slice boundaries. Flat colour with a gentle gradient: any slice seam shows as a step.
    let (w, h) = (80, 160);
    let mut img = RgbPlanes::new(w, h, 0.0);
    let mut coc = Plane::new(w, h, 0.0);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let t = y as f32 / (h - 1) as f32;
            img.c[0][i] = 0.2 + 0.3 * t;
            img.c[1][i] = 0.4;
            img.c[2][i] = 0.6 - 0.2 * t;
            coc.data[i] = -(0.3 + 13.7 * (1.0 - t));
        }
    }
    let alpha = Plane::new(w, h, 0.0);
    let out = render_linear_depth(&img, &img, &alpha, &coc, &params());
    // Away from the top/bottom borders the result must follow the linear ramp closely, with no step
    // between neighbouring rows bigger than the ramp's own slope allows.
    let slope = 0.3 / (h - 1) as f32;
    for y in 20..h - 20 {
        let i = y * w + w / 2;
        let want = 0.2 + 0.3 * y as f32 / (h - 1) as f32;
        assert!(
            (out.c[0][i] - want).abs() < 0.01,
            "row {y}: {} vs {want}",
            out.c[0][i]
        );
        let step = out.c[0][i + w] - out.c[0][i];
        assert!(
            step.abs() < 3.0 * slope,
            "row {y}: step {step}, slope {slope}"
        );
        assert!((out.c[1][i] - 0.4).abs() < 2e-3, "row {y}: {}", out.c[1][i]);
    }
    // And against the exact per-pixel scatter of the same continuous surface.
    let l = Layer {
        rgb: img.clone(),
        a: Plane::new(w, h, 1.0),
        coc: 0.0,
    };
    let want = reference(std::slice::from_ref(&l), Some(&coc));
    let p = psnr(&want, &out, 0);
    println!("ground plane: {p:.1} dB");
    assert!(p >= 40.0, "{p:.1} dB");
}

#[test]
fn near_blur_covers_the_sharp_subject_partially() {
    // A near out-of-focus bar in front of a sharp subject (given by the matte): the bar's blur must
    // spread over the subject (partial occlusion), while far from the bar the subject is untouched.
    let (w, h) = (100, 60);
    let mut img = RgbPlanes::new(w, h, 0.2);
    let mut alpha = Plane::new(w, h, 0.0);
    let mut coc = Plane::new(w, h, -6.0);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if (20..80).contains(&x) {
                alpha.data[i] = 1.0;
                coc.data[i] = 0.0;
                img.c[0][i] = 0.0;
                img.c[1][i] = 0.0;
                img.c[2][i] = 0.0;
            }
            if (48..52).contains(&x) {
                alpha.data[i] = 0.0; // the bar is not subject
                coc.data[i] = 6.0;
                for ch in 0..3 {
                    img.c[ch][i] = 1.0;
                }
            }
        }
    }
    let out = render_linear_depth(&img, &img, &alpha, &coc, &params());
    let at = |x: usize| out.c[0][30 * w + x];
    // Bar light spills over the subject 3–5 px from the bar...
    assert!(at(44) > 0.05, "no partial occlusion: {}", at(44));
    assert!(at(56) > 0.05, "no partial occlusion: {}", at(56));
    // ...but not 10 px away, where the subject stays exactly black.
    assert_eq!(at(30), 0.0);
    assert_eq!(at(70), 0.0);
}

#[test]
fn focal_plane_crossing_is_seamless() {
    // Flat colour; the circle of confusion crosses the focal plane across the rows (−3 … +3 px):
    // far slice, in-focus rows, near slice. A flat input must come back flat. (Neighbouring rows
    // with different radii overlap to more than full coverage; composited raw, that printed a
    // ±6 % line pattern into the near slice — seen on the motorcycle's floor.)
    let (w, h) = (64, 120);
    let img = RgbPlanes::new(w, h, 0.4);
    let mut coc = Plane::new(w, h, 0.0);
    for y in 0..h {
        for x in 0..w {
            coc.data[y * w + x] = -3.0 + 6.0 * y as f32 / (h - 1) as f32;
        }
    }
    let alpha = Plane::new(w, h, 0.0);
    let out = render_linear_depth(&img, &img, &alpha, &coc, &params());
    let mut worst = (0.0f32, 0usize);
    for y in 10..h - 10 {
        let v = out.c[0][y * w + w / 2];
        if (v - 0.4).abs() > worst.0 {
            worst = ((v - 0.4).abs(), y);
        }
    }
    println!(
        "focal-plane crossing: worst |error| {:.5} at row {}",
        worst.0, worst.1
    );
    assert!(worst.0 < 1e-3, "row {}: {}", worst.1, worst.0);
}

#[test]
fn focal_plane_crossing_has_no_line_at_working_resolution() {
    // Large enough that the ±1 slices run on a half-resolution grid next to the full-resolution
    // in-focus rows (as on a 12 MP photo), and the circle of confusion grows slowly across the rows
    // (0.065 px per row, as on the motorcycle's floor). The top of the frame is dark and far: what the
    // far slices extend behind everything. The near slice's first row sits in a grid block shared
    // with an in-focus row; its upsampled coverage there is partial, and what showed under it was the
    // dark far extension — a one-row dark line. The surface is one colour per column in the crossing
    // region, so every row there must come back with the input's row mean.
    let (w, h) = (2000, 1700);
    let y0 = 850.3;
    let mut img = RgbPlanes::new(w, h, 0.0);
    let mut coc = Plane::new(w, h, 0.0);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let far = y < 300;
            coc.data[i] = if far {
                -12.0
            } else {
                ((y as f32 - y0) * 0.065).clamp(-3.5, 3.5)
            };
            let v = if far {
                0.05
            } else {
                0.3 + 0.4 * noise(x, 0, 3)
            };
            for ch in 0..3 {
                img.c[ch][i] = v;
            }
        }
    }
    let want: f32 = img.c[0][1000 * w..1001 * w].iter().sum::<f32>() / w as f32;
    let alpha = Plane::new(w, h, 0.0);
    let out = render_linear_depth(&img, &img, &alpha, &coc, &params());
    let mean = |y: usize| out.c[0][y * w..(y + 1) * w].iter().sum::<f32>() / w as f32 - want;
    // The in-focus rows and the first rows of either side (|c| < 1): the line was here.
    let rows: Vec<usize> = (700..1000)
        .filter(|&y| coc.data[y * w].abs() < 1.0)
        .collect();
    let mut worst = (0.0f32, 0usize);
    for &y in &rows {
        let e = mean(y).abs().max((mean(y + 1) - mean(y)).abs());
        if e > worst.0 {
            worst = (e, y);
        }
    }
    println!(
        "focal-plane crossing at half resolution: worst row-mean error or step {:.5} at row {} \
         (coc {:.2}; rows {}..={})",
        worst.0,
        worst.1,
        coc.data[worst.1 * w],
        rows[0],
        rows[rows.len() - 1]
    );
    assert!(worst.0 < 1e-3, "row {}: {}", worst.1, worst.0);
}
