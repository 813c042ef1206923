//! Render-stage benchmark and look-at tool.
//!
//! ```text
//! cargo run --release -p lensblur --example render_bench            # timing tables (12 MP)
//! cargo run --release -p lensblur --example render_bench -- look IN.jpg OUT.png STRENGTH \
//!     [MATTE] [HIGHLIGHTS] [CROP]
//! ```
//! `LOOK_K=n` forces the working factor. `MATTE`: `none` (all background), `ellipse` (centred, soft edge), `trimap:PATH` (Oxford-IIIT pets:
//! 1 = subject, 2 = background, 3 = border → 0.5) or `alpha:PATH` (grey alpha PNG). `CROP`: `x,y,w,h`.

use std::path::Path;
use std::time::{Duration, Instant};

use lensblur::bokeh::{blur, Aperture, Profile, Shape};
use lensblur::buffer::{Plane, RgbPlanes};
use lensblur::coc::blur_radius_px;
use lensblur::color::{planes_to_linear, planes_to_srgb};
use lensblur::composite::{render_linear, render_linear_with_factor, working_factor, RenderParams};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> AnyResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("look") {
        return look(&args[1..]);
    }
    bench()
}

fn time_it<F: FnMut()>(mut f: F, reps: usize) -> Duration {
    f(); // warm-up: page faults, thread start
    let mut best = Duration::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed());
    }
    best
}

/// The apertures the benchmark compares (name, aperture).
fn bench_apertures() -> Vec<(&'static str, Aperture)> {
    let poly = |n: u8, curvature: f32| Aperture {
        shape: Shape::Blades(n),
        curvature,
        ..Default::default()
    };
    vec![
        ("disc", Aperture::default()),
        ("hexagon", poly(6, 0.0)),
        ("9 blades, curvature 0.5", poly(9, 0.5)),
        (
            "disc, cat's eye 1",
            Aperture {
                cats_eye: 1.0,
                ..Default::default()
            },
        ),
        (
            "hexagon, cat's eye 1",
            Aperture {
                cats_eye: 1.0,
                ..poly(6, 0.0)
            },
        ),
        (
            "disc, bubble",
            Aperture {
                profile: Profile::Bubble,
                ..Default::default()
            },
        ),
    ]
}

fn bench() -> AnyResult<()> {
    let pools: Vec<rayon::ThreadPool> = [1, 2]
        .iter()
        .map(|&n| rayon::ThreadPoolBuilder::new().num_threads(n).build())
        .collect::<Result<_, _>>()?;
    // A real photo (street lights, foliage) upscaled to 12 MP, with a soft elliptical subject.
    let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/scenes/1.jpg");
    let src = load_linear(&photo.to_string_lossy())?;
    let (w, h) = (4330usize, 2771usize);
    let img = lensblur::resample::resize_rgb(&src, w, h);
    let alpha = load_matte("ellipse", w, h)?;
    let reps = 3;
    println!(
        "render_linear on {} upscaled to {w}x{h} ({:.1} MP), 2 threads, best of {reps} (interleaved); \
         ratio = time / disc time at the same strength",
        photo.display(),
        (w * h) as f64 / 1e6
    );
    println!("| aperture | strength | radius px | k | working r | spans | 2 threads | ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let aps = bench_apertures();
    for strength in [50.0f32, 100.0] {
        let radius = blur_radius_px(strength, w, h);
        let k = working_factor(radius, w, h);
        let mut best = vec![Duration::MAX; aps.len()];
        for _ in 0..=reps {
            for (b, (_, ap)) in best.iter_mut().zip(&aps) {
                let params = RenderParams {
                    radius,
                    highlights: 0.5,
                    aperture: ap.clone(),
                };
                let t = Instant::now();
                pools[1]
                    .install(|| std::hint::black_box(render_linear(&img, &img, &alpha, &params)));
                *b = (*b).min(t.elapsed());
            }
        }
        for ((name, ap), t) in aps.iter().zip(&best) {
            println!(
                "| {name} | {strength} | {radius:.1} | {k} | {:.1} | {} | {:.0} ms | {:.2} |",
                radius / k as f32,
                ap.kernel(radius / k as f32).spans.len(),
                t.as_secs_f64() * 1e3,
                t.as_secs_f64() / best[0].as_secs_f64()
            );
        }
    }

    // The blur alone at full resolution: cost grows linearly with r, not with r².
    let (sw, sh) = (1600usize, 1200usize);
    let small = lensblur::resample::resize_rgb(&img, sw, sh);
    println!("\nblur alone at full resolution on {sw}x{sh} (1.9 MP, 3 planes), best of {reps}");
    println!("| aperture | radius | spans | 1 thread | 2 threads | ns / px / span (1 thr) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, ap) in aps.iter().take(3) {
        for r in [8.0f32, 16.0, 32.0, 64.0] {
            let spans = ap.kernel(r).spans.len();
            let times: Vec<Duration> = pools
                .iter()
                .map(|p| {
                    p.install(|| {
                        time_it(
                            || {
                                std::hint::black_box(blur(&small, r, ap));
                            },
                            reps,
                        )
                    })
                })
                .collect();
            println!(
                "| {name} | {r} | {spans} | {:.0} ms | {:.0} ms | {:.2} |",
                times[0].as_secs_f64() * 1e3,
                times[1].as_secs_f64() * 1e3,
                times[0].as_secs_f64() * 1e9 / (sw * sh * 3 * spans) as f64
            );
        }
    }
    Ok(())
}

fn load_linear(path: &str) -> AnyResult<RgbPlanes> {
    let img = image::open(path)?.to_rgb32f();
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok(planes_to_linear(&RgbPlanes::from_interleaved(
        w,
        h,
        img.as_raw(),
    )))
}

fn load_matte(spec: &str, w: usize, h: usize) -> AnyResult<Plane> {
    if spec == "none" {
        return Ok(Plane::new(w, h, 0.0));
    }
    if spec == "ellipse" {
        let mut a = Plane::new(w, h, 0.0);
        for y in 0..h {
            for x in 0..w {
                let dx = (x as f32 - 0.5 * w as f32) / (0.22 * w as f32);
                let dy = (y as f32 - 0.55 * h as f32) / (0.38 * h as f32);
                let d = (dx * dx + dy * dy).sqrt();
                a.data[y * w + x] = ((1.0 - d) * 60.0).clamp(0.0, 1.0);
            }
        }
        return Ok(a);
    }
    let (kind, path) = spec
        .split_once(':')
        .ok_or("matte: none|ellipse|trimap:P|alpha:P")?;
    let m = image::open(path)?;
    if (m.width() as usize, m.height() as usize) != (w, h) {
        return Err(format!("matte is {}x{}, image {w}x{h}", m.width(), m.height()).into());
    }
    let data = if kind == "trimap" {
        // Oxford-IIIT pet trimaps are paletted 1/2/3 with the VOC palette: index 1 (128,0,0) =
        // subject, 2 (0,128,0) = background, 3 (128,128,0) = border.
        m.to_rgb8()
            .pixels()
            .map(|p| match (p[0] > 0, p[1] > 0) {
                (true, false) => 1.0,
                (true, true) => 0.5,
                _ => 0.0,
            })
            .collect()
    } else {
        m.to_luma8()
            .as_raw()
            .iter()
            .map(|&v| v as f32 / 255.0)
            .collect()
    };
    Ok(Plane::from_vec(w, h, data))
}

/// `LOOK_APERTURE=SHAPE[,ROTATION[,CURVATURE[,CATS_EYE[,PROFILE]]]]`, e.g. `blades:9,0,0.5,0,flat`.
fn look_aperture() -> AnyResult<Aperture> {
    let Ok(spec) = std::env::var("LOOK_APERTURE") else {
        return Ok(Aperture::default());
    };
    let f: Vec<&str> = spec.split(',').collect();
    let num = |i: usize| f.get(i).map_or(Ok(0.0), |s| s.parse::<f32>());
    let ap = Aperture {
        shape: Aperture::parse_shape(f[0])?,
        rotation_deg: num(1)?,
        curvature: num(2)?,
        cats_eye: num(3)?,
        profile: f.get(4).map_or(Ok(Profile::Flat), |p| Profile::parse(p))?,
    };
    ap.validate()?;
    Ok(ap)
}

/// `WxH`: a black frame with a grid of single-pixel lights of a few colours (sRGB-linear ≤ 1).
fn light_grid(size: &str) -> AnyResult<RgbPlanes> {
    let (w, h) = size.split_once('x').ok_or("grid:WxH")?;
    let (w, h): (usize, usize) = (w.parse()?, h.parse()?);
    let mut img = RgbPlanes::new(w, h, 0.0);
    let step = (w.max(h) / 12).max(8);
    for (n, y) in (step / 2..h).step_by(step).enumerate() {
        for (m, x) in (step / 2..w).step_by(step).enumerate() {
            let c = [[1.0, 1.0, 1.0], [1.0, 0.6, 0.2], [0.3, 0.6, 1.0]][(n + m) % 3];
            for (ch, v) in c.iter().enumerate() {
                img.c[ch][y * w + x] = *v;
            }
        }
    }
    Ok(img)
}

fn look(args: &[String]) -> AnyResult<()> {
    let [input, output, strength, rest @ ..] = args else {
        return Err("look IN OUT STRENGTH [MATTE] [HIGHLIGHTS] [CROP]".into());
    };
    let lin = match input.strip_prefix("grid:") {
        Some(size) => light_grid(size)?,
        None => load_linear(input)?,
    };
    let (w, h) = (lin.width, lin.height);
    let aperture = look_aperture()?;
    let alpha = load_matte(rest.first().map_or("ellipse", String::as_str), w, h)?;
    let highlights: f32 = rest.get(1).map_or(Ok(0.5), |s| s.parse())?;
    let radius = blur_radius_px(strength.parse()?, w, h);
    // LOOK_K forces the working factor (to compare the reduced-resolution path by eye).
    let k = match std::env::var("LOOK_K") {
        Ok(v) => v.parse()?,
        Err(_) => working_factor(radius, w, h),
    };
    let t = Instant::now();
    let out = if input.starts_with("grid:") {
        // Point lights: the raw aperture blur at full resolution, radius = STRENGTH pixels, scaled
        // so that a flat ball shows at 0.8.
        let r: f32 = strength.parse()?;
        let mut out = blur(&lin, r, &aperture);
        let gain = 0.8 * std::f32::consts::PI * r * r;
        for v in out.c.iter_mut().flatten() {
            *v *= gain;
        }
        out
    } else {
        render_linear_with_factor(
            &lin,
            &lin,
            &alpha,
            &RenderParams {
                radius,
                highlights,
                aperture,
            },
            k,
        )
    };
    eprintln!(
        "{w}x{h}: radius {radius:.1} px (k = {k}), {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let srgb = planes_to_srgb(&out);
    let (cx, cy, cw, ch) = match rest.get(2) {
        Some(c) => {
            let v: Vec<usize> = c.split(',').map(str::parse).collect::<Result<_, _>>()?;
            let [x, y, cw, ch] = v[..] else {
                return Err("crop: x,y,w,h".into());
            };
            (x, y, cw.min(w - x), ch.min(h - y))
        }
        None => (0, 0, w, h),
    };
    let mut buf = image::RgbImage::new(cw as u32, ch as u32);
    for y in 0..ch {
        for x in 0..cw {
            let p = srgb.get(cx + x, cy + y);
            buf.put_pixel(
                x as u32,
                y as u32,
                image::Rgb(p.map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8)),
            );
        }
    }
    buf.save(output)?;
    Ok(())
}
