//! Render-stage benchmark and look-at tool.
//!
//! ```text
//! cargo run --release -p lensblur --example render_bench            # timing tables (12 MP)
//! cargo run --release -p lensblur --example render_bench -- look IN.jpg OUT.png STRENGTH \
//!     [MATTE] [HIGHLIGHTS] [CROP]
//! ```
//! `LOOK_K=n` forces the working factor. `MATTE`: `none` (all background), `ellipse` (centred, soft edge), `trimap:PATH` (Oxford-IIIT pets:
//! 1 = subject, 2 = background, 3 = border → 0.5) or `alpha:PATH` (grey alpha PNG). `CROP`: `x,y,w,h`.

use std::time::{Duration, Instant};

use lensblur::bokeh::disc_blur;
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

/// A 12 MP test scene: smooth gradients, texture, scattered small lights; a soft elliptical subject.
fn scene(w: usize, h: usize) -> (RgbPlanes, Plane) {
    let mut img = RgbPlanes::new(w, h, 0.0);
    let mut alpha = Plane::new(w, h, 0.0);
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    for y in 0..h {
        for x in 0..w {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let n = (s >> 40) as f32 / (1u64 << 24) as f32;
            let i = y * w + x;
            let light = (x % 97 < 3 && y % 89 < 3) as u8 as f32;
            img.c[0][i] = (0.3 * x as f32 / w as f32 + 0.2 * n + light).min(1.0);
            img.c[1][i] = (0.4 * y as f32 / h as f32 + 0.1 * n + light).min(1.0);
            img.c[2][i] = (0.2 + 0.1 * n + light).min(1.0);
            let dx = (x as f32 - 0.5 * w as f32) / (0.2 * w as f32);
            let dy = (y as f32 - 0.55 * h as f32) / (0.35 * h as f32);
            let d = (dx * dx + dy * dy).sqrt();
            alpha.data[i] = ((1.0 - d) * 40.0).clamp(0.0, 1.0);
        }
    }
    (img, alpha)
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

fn bench() -> AnyResult<()> {
    let (w, h) = (4000usize, 3000usize);
    let (img, alpha) = scene(w, h);
    println!("render_linear on {w}x{h} (12 MP), best of 3; F = image, elliptical soft matte");
    println!("| strength | radius px | k | working px | working r | 1 thread | 2 threads |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let pools: Vec<rayon::ThreadPool> = [1, 2]
        .iter()
        .map(|&n| rayon::ThreadPoolBuilder::new().num_threads(n).build())
        .collect::<Result<_, _>>()?;
    for strength in [5.0f32, 15.0, 30.0, 50.0, 80.0, 100.0] {
        let radius = blur_radius_px(strength, w, h);
        let k = working_factor(radius, w, h);
        let params = RenderParams {
            radius,
            highlights: 0.5,
            aperture: Default::default(),
        };
        let times: Vec<Duration> = pools
            .iter()
            .map(|p| {
                p.install(|| {
                    time_it(
                        || {
                            std::hint::black_box(render_linear(&img, &img, &alpha, &params));
                        },
                        3,
                    )
                })
            })
            .collect();
        println!(
            "| {strength} | {radius:.1} | {k} | {}x{} | {:.1} | {:.0} ms | {:.0} ms |",
            w.div_ceil(k),
            h.div_ceil(k),
            radius / k as f32,
            times[0].as_secs_f64() * 1e3,
            times[1].as_secs_f64() * 1e3
        );
    }

    // Raw disc_blur at full resolution: cost grows linearly with r, not with r².
    let (sw, sh) = (1600usize, 1200usize);
    let small = lensblur::resample::resize_rgb(&img, sw, sh);
    println!("\ndisc_blur alone at full resolution on {sw}x{sh} (1.9 MP), best of 3");
    println!("| radius | spans | 1 thread | 2 threads | ns / px / span (1 thr) |");
    println!("|---:|---:|---:|---:|---:|");
    for r in [4.0f32, 8.0, 16.0, 32.0, 64.0] {
        let spans = lensblur::bokeh::DiscKernel::new(r).spans.len();
        let times: Vec<Duration> = pools
            .iter()
            .map(|p| {
                p.install(|| {
                    time_it(
                        || {
                            std::hint::black_box(disc_blur(&small, r));
                        },
                        3,
                    )
                })
            })
            .collect();
        println!(
            "| {r} | {spans} | {:.0} ms | {:.0} ms | {:.2} |",
            times[0].as_secs_f64() * 1e3,
            times[1].as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e9 / (sw * sh * 3 * spans) as f64
        );
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

fn look(args: &[String]) -> AnyResult<()> {
    let [input, output, strength, rest @ ..] = args else {
        return Err("look IN OUT STRENGTH [MATTE] [HIGHLIGHTS] [CROP]".into());
    };
    let lin = load_linear(input)?;
    let (w, h) = (lin.width, lin.height);
    let alpha = load_matte(rest.first().map_or("ellipse", String::as_str), w, h)?;
    let highlights: f32 = rest.get(1).map_or(Ok(0.5), |s| s.parse())?;
    let radius = blur_radius_px(strength.parse()?, w, h);
    // LOOK_K forces the working factor (to compare the reduced-resolution path by eye).
    let k = match std::env::var("LOOK_K") {
        Ok(v) => v.parse()?,
        Err(_) => working_factor(radius, w, h),
    };
    let t = Instant::now();
    let out =
        render_linear_with_factor(&lin, &lin, &alpha, &RenderParams { radius, highlights, aperture: Default::default() }, k);
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
