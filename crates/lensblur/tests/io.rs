//! Integration tests for `lensblur::io`: round trips, EXIF orientation, metadata carry-over, real
//! photos, bad inputs and atomic writes.
//!
//! Outputs are re-read with independent readers where one exists (the `png` crate, `image`'s own
//! decode + `apply_orientation`, a hand-rolled JPEG segment walker) so the tests do not only check
//! `io` against itself.
//!
//! `cargo test --release -p lensblur --test io -- --ignored --nocapture` prints 12 MP timings.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::ImageDecoder;
use lensblur::buffer::{Plane, RgbPlanes};
use lensblur::io::{
    decode_bytes, decode_file, encode, encode_gray_png, format_from_path, write_atomic,
    DecodeOptions, EncodeOptions, Format, Metadata,
};
use lensblur::Error;

// ------------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------------

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn jpegs_in(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data_dir().join(dir))
        .unwrap_or_else(|e| panic!("shared data {dir} missing: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
        })
        .collect();
    v.sort();
    v
}

fn opts() -> DecodeOptions {
    DecodeOptions::default()
}

fn enc(format: Format) -> EncodeOptions {
    EncodeOptions::for_format(format)
}

/// Deterministic pseudo-random u8 stream (xorshift), so round trips see every value class.
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut s = seed.max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 24) as u8
        })
        .collect()
}

/// Planes whose samples are exactly k/255.
fn planes_u8(w: usize, h: usize, seed: u32) -> RgbPlanes {
    let px = noise(w * h * 3, seed);
    let f: Vec<f32> = px.iter().map(|&v| v as f32 / 255.0).collect();
    RgbPlanes::from_interleaved(w, h, &f)
}

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

fn interleaved_u8(p: &RgbPlanes) -> Vec<u8> {
    (0..p.len())
        .flat_map(|i| [0, 1, 2].map(|c| to_u8(p.c[c][i])))
        .collect()
}

fn is_decode(e: &Error) -> bool {
    matches!(e, Error::Decode(_))
}

/// A minimal TIFF/EXIF block: IFD0 with Make="Cam" and Orientation=`o`, then one padding byte
/// pattern after it so we can check that the rest of the block is carried verbatim.
fn exif_block(o: u16, big_endian: bool) -> Vec<u8> {
    let u16b = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u32b = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut b = Vec::new();
    b.extend_from_slice(if big_endian { b"MM\0*" } else { b"II*\0" });
    b.extend_from_slice(&u32b(8)); // IFD0 right after the header
    b.extend_from_slice(&u16b(2)); // two entries
                                   // Make (0x010F), ASCII (2), count 4, inline "Cam\0".
    b.extend_from_slice(&u16b(0x010F));
    b.extend_from_slice(&u16b(2));
    b.extend_from_slice(&u32b(4));
    b.extend_from_slice(b"Cam\0");
    // Orientation (0x0112), SHORT (3), count 1, value in the first two bytes.
    b.extend_from_slice(&u16b(0x0112));
    b.extend_from_slice(&u16b(3));
    b.extend_from_slice(&u32b(1));
    b.extend_from_slice(&u16b(o));
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&u32b(0)); // no next IFD
    b.extend_from_slice(b"trailing-bytes-kept");
    b
}

/// Orientation of a raw EXIF block according to the `image` crate (an independent parser).
fn oracle_orientation(exif: &[u8]) -> Option<u8> {
    image::metadata::Orientation::from_exif_chunk(exif).map(|o| o.to_exif())
}

/// A JPEG from the `image` crate's encoder with an APP1 Exif segment spliced in after SOI.
fn jpeg_with_exif(rgb: &[u8], w: u32, h: u32, exif: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut plain, 100)
        .encode(rgb, w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    let len = exif.len() + 6 + 2;
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1, (len >> 8) as u8, len as u8]);
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(exif);
    out.extend_from_slice(&plain[2..]);
    out
}

/// JPEG marker segments before the first SOS: (marker, payload).
fn jpeg_segments(jpeg: &[u8]) -> Vec<(u8, Vec<u8>)> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let mut pos = 2;
    let mut segs = Vec::new();
    loop {
        assert_eq!(jpeg[pos], 0xFF, "marker expected at {pos}");
        let m = jpeg[pos + 1];
        let len = u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]) as usize;
        segs.push((m, jpeg[pos + 4..pos + 2 + len].to_vec()));
        pos += 2 + len;
        if m == 0xDA {
            return segs;
        }
    }
}

/// Writes a PNG with the `png` crate (independent of `io::encode`).
fn png_bytes(
    w: u32,
    h: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    exif: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut info = png::Info::with_size(w, h);
    info.color_type = color;
    info.bit_depth = depth;
    info.exif_metadata = exif.map(|e| e.to_vec().into());
    let enc = png::Encoder::with_info(&mut out, info).unwrap();
    let mut wr = enc.write_header().unwrap();
    wr.write_image_data(data).unwrap();
    wr.finish().unwrap();
    out
}

/// Reads a PNG with the `png` crate: (info color, depth, raw bytes, icc, exif, xmp).
struct PngRead {
    color: png::ColorType,
    depth: png::BitDepth,
    data: Vec<u8>,
    icc: Option<Vec<u8>>,
    exif: Option<Vec<u8>>,
    xmp: Option<String>,
}

fn png_read(bytes: &[u8]) -> PngRead {
    let dec = png::Decoder::new(Cursor::new(bytes));
    let mut r = dec.read_info().unwrap();
    let mut data = vec![0; r.output_buffer_size().unwrap()];
    r.next_frame(&mut data).unwrap();
    r.finish().unwrap();
    let info = r.info();
    PngRead {
        color: info.color_type,
        depth: info.bit_depth,
        data,
        icc: info.icc_profile.as_ref().map(|c| c.to_vec()),
        exif: info.exif_metadata.as_ref().map(|c| c.to_vec()),
        xmp: info
            .utf8_text
            .iter()
            .find(|t| t.keyword == "XML:com.adobe.xmp")
            .map(|t| t.get_text().unwrap()),
    }
}

/// Upright test pattern: four 16×8 quadrants, red / green (top), blue / white (bottom).
const QW: u32 = 32;
const QH: u32 = 16;
const QUADS: [[u8; 3]; 4] = [[230, 20, 20], [20, 200, 20], [20, 20, 230], [240, 240, 240]];

fn quadrant_colour(x: u32, y: u32) -> [u8; 3] {
    QUADS[((y >= QH / 2) as usize) * 2 + (x >= QW / 2) as usize]
}

/// Where display pixel (x, y) is stored for EXIF orientation `o`, written from the EXIF spec's
/// wording ("row 0 is the visual top/bottom/left/right, column 0 is the visual left/…").
fn stored_pos(o: u16, x: u32, y: u32, sw: u32, sh: u32) -> (u32, u32) {
    match o {
        1 => (x, y),
        2 => (sw - 1 - x, y),          // row 0 top, col 0 right
        3 => (sw - 1 - x, sh - 1 - y), // row 0 bottom, col 0 right
        4 => (x, sh - 1 - y),          // row 0 bottom, col 0 left
        5 => (y, x),                   // row 0 left, col 0 top
        6 => (y, sh - 1 - x),          // row 0 right, col 0 top
        7 => (sw - 1 - y, sh - 1 - x), // row 0 right, col 0 bottom
        8 => (sw - 1 - y, x),          // row 0 left, col 0 bottom
        _ => unreachable!(),
    }
}

/// The quadrant pattern stored so that applying orientation `o` shows it upright.
fn stored_pattern(o: u16) -> (u32, u32, Vec<u8>) {
    let (sw, sh) = if o >= 5 { (QH, QW) } else { (QW, QH) };
    let mut buf = vec![0u8; (sw * sh * 3) as usize];
    for y in 0..QH {
        for x in 0..QW {
            let (sx, sy) = stored_pos(o, x, y, sw, sh);
            let i = ((sy * sw + sx) * 3) as usize;
            buf[i..i + 3].copy_from_slice(&quadrant_colour(x, y));
        }
    }
    (sw, sh, buf)
}

fn assert_upright_quadrants(rgb: &RgbPlanes, tol: i32, what: &str) {
    assert_eq!(
        (rgb.width, rgb.height),
        (QW as usize, QH as usize),
        "{what}: size"
    );
    // Quadrant centres, away from JPEG block edges and chroma bleeding.
    for (x, y) in [(4, 4), (27, 4), (4, 11), (27, 11), (8, 3), (24, 12)] {
        let want = quadrant_colour(x, y);
        let got = rgb.get(x as usize, y as usize).map(to_u8);
        for c in 0..3 {
            assert!(
                (got[c] as i32 - want[c] as i32).abs() <= tol,
                "{what}: pixel ({x},{y}) is {got:?}, want {want:?}"
            );
        }
    }
}

fn sample_meta() -> Metadata {
    Metadata {
        exif: Some(exif_block(1, false)),
        // Not a real profile: the container must carry bytes verbatim, not parse them.
        icc: Some(noise(3000, 7)),
        xmp: Some(
            br#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:format="image/jpeg"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>"#
                .to_vec(),
        ),
    }
}

// ------------------------------------------------------------------------------------------------
// Formats and names
// ------------------------------------------------------------------------------------------------

#[test]
fn format_from_path_is_case_insensitive() {
    let f = |p: &str| format_from_path(Path::new(p));
    assert_eq!(f("a.jpg"), Some(Format::Jpeg));
    assert_eq!(f("dir.png/a.JPEG"), Some(Format::Jpeg));
    assert_eq!(f("a.Jpg"), Some(Format::Jpeg));
    assert_eq!(f("a.PNG"), Some(Format::Png));
    assert_eq!(f("/x/y.WebP"), Some(Format::WebP));
    assert_eq!(f("a.gif"), None);
    assert_eq!(f("jpg"), None);
    assert_eq!(f("a."), None);
    assert_eq!(f("a.jpg.bak"), None);
    for fmt in Format::ALL {
        assert_eq!(Format::from_name(fmt.extension()), Some(fmt));
    }
}

// ------------------------------------------------------------------------------------------------
// Round trips
// ------------------------------------------------------------------------------------------------

#[test]
fn png8_round_trip_is_exact() {
    let src = planes_u8(37, 23, 1);
    let bytes = encode(&src, None, &Metadata::default(), &enc(Format::Png)).unwrap();
    let r = png_read(&bytes);
    assert_eq!(
        (r.color, r.depth),
        (png::ColorType::Rgb, png::BitDepth::Eight)
    );
    assert_eq!(
        r.data,
        interleaved_u8(&src),
        "independent reader sees other bytes"
    );
    let photo = decode_bytes(&bytes, &opts()).unwrap();
    assert_eq!(photo.format, Format::Png);
    assert_eq!(photo.bit_depth, 8);
    assert!(photo.alpha.is_none());
    assert_eq!(photo.rgb, src);
}

#[test]
fn encode_rounds_to_nearest_and_clamps() {
    let vals = [
        -0.5,
        0.0,
        0.4 / 255.0,
        0.6 / 255.0,
        0.5,
        100.49 / 255.0,
        100.51 / 255.0,
        1.0,
        7.0,
        f32::NAN,
    ];
    let want = [0u8, 0, 0, 1, 128, 100, 101, 255, 255, 0];
    let n = vals.len();
    let rgb = RgbPlanes {
        width: n,
        height: 1,
        c: [vals.to_vec(), vals.to_vec(), vals.to_vec()],
    };
    let r = png_read(&encode(&rgb, None, &Metadata::default(), &enc(Format::Png)).unwrap());
    let red: Vec<u8> = r.data.chunks(3).map(|p| p[0]).collect();
    assert_eq!(red, want);
    let g = png_read(&encode_gray_png(&Plane::from_vec(n, 1, vals.to_vec())).unwrap());
    assert_eq!(
        (g.color, g.depth),
        (png::ColorType::Grayscale, png::BitDepth::Eight)
    );
    assert_eq!(g.data, want);
}

#[test]
fn png16_round_trip_keeps_16_bits() {
    let (w, h) = (19, 11);
    let raw: Vec<u16> = noise(w * h * 3 * 2, 3)
        .chunks(2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .collect();
    let f: Vec<f32> = raw.iter().map(|&v| v as f32 / 65535.0).collect();
    let src = RgbPlanes::from_interleaved(w, h, &f);
    let opts16 = EncodeOptions {
        bit_depth: 16,
        ..enc(Format::Png)
    };
    let bytes = encode(&src, None, &Metadata::default(), &opts16).unwrap();
    let r = png_read(&bytes);
    assert_eq!(r.depth, png::BitDepth::Sixteen);
    let back: Vec<u16> = r
        .data
        .chunks(2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(back, raw, "16-bit samples must survive exactly");

    let photo = decode_bytes(&bytes, &opts()).unwrap();
    assert_eq!(photo.bit_depth, 16);
    for c in 0..3 {
        for (a, b) in photo.rgb.c[c].iter().zip(&src.c[c]) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
    // Values between 8-bit steps must not have been quantised to 8 bits.
    let fine = photo.rgb.c[0]
        .iter()
        .filter(|v| ((**v * 255.0) - (**v * 255.0).round()).abs() > 0.01)
        .count();
    assert!(
        fine > photo.rgb.len() / 2,
        "only {fine} samples off the 8-bit grid"
    );
}

#[test]
fn grey_and_grey_alpha_png_expand_to_three_planes() {
    let (w, h) = (13u32, 7u32);
    let n = (w * h) as usize;
    let grey = noise(n, 5);
    let photo = decode_bytes(
        &png_bytes(
            w,
            h,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &grey,
            None,
        ),
        &opts(),
    )
    .unwrap();
    assert!(photo.alpha.is_none());
    assert_eq!(photo.bit_depth, 8);
    let want: Vec<f32> = grey.iter().map(|&v| v as f32 / 255.0).collect();
    for c in 0..3 {
        assert_eq!(photo.rgb.c[c], want, "plane {c}");
    }

    let ga = noise(n * 2, 6);
    let photo = decode_bytes(
        &png_bytes(
            w,
            h,
            png::ColorType::GrayscaleAlpha,
            png::BitDepth::Eight,
            &ga,
            None,
        ),
        &opts(),
    )
    .unwrap();
    let l: Vec<f32> = ga.iter().step_by(2).map(|&v| v as f32 / 255.0).collect();
    let a: Vec<f32> = ga
        .iter()
        .skip(1)
        .step_by(2)
        .map(|&v| v as f32 / 255.0)
        .collect();
    assert_eq!(photo.rgb.c[1], l);
    assert_eq!(photo.alpha.unwrap().data, a);

    // 16-bit grey.
    let g16 = noise(n * 2, 8);
    let photo = decode_bytes(
        &png_bytes(
            w,
            h,
            png::ColorType::Grayscale,
            png::BitDepth::Sixteen,
            &g16,
            None,
        ),
        &opts(),
    )
    .unwrap();
    assert_eq!(photo.bit_depth, 16);
    let v0 = u16::from_be_bytes([g16[0], g16[1]]) as f32 / 65535.0;
    assert!((photo.rgb.c[2][0] - v0).abs() < 1e-6);
}

#[test]
fn palette_png_with_transparency_decodes_to_rgba() {
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, 2, 1);
    e.set_color(png::ColorType::Indexed);
    e.set_depth(png::BitDepth::Eight);
    e.set_palette(vec![255, 0, 0, 0, 0, 255]);
    e.set_trns(vec![255, 0]);
    let mut wr = e.write_header().unwrap();
    wr.write_image_data(&[0, 1]).unwrap();
    wr.finish().unwrap();
    let photo = decode_bytes(&out, &opts()).unwrap();
    assert_eq!(photo.rgb.get(0, 0), [1.0, 0.0, 0.0]);
    assert_eq!(photo.rgb.get(1, 0), [0.0, 0.0, 1.0]);
    assert_eq!(photo.alpha.unwrap().data, vec![1.0, 0.0]);
}

#[test]
fn rgba_png_round_trip() {
    let (w, h) = (21, 9);
    let src = planes_u8(w, h, 9);
    let a: Vec<f32> = noise(w * h, 10).iter().map(|&v| v as f32 / 255.0).collect();
    let alpha = Plane::from_vec(w, h, a);
    let bytes = encode(&src, Some(&alpha), &Metadata::default(), &enc(Format::Png)).unwrap();
    assert_eq!(png_read(&bytes).color, png::ColorType::Rgba);
    let photo = decode_bytes(&bytes, &opts()).unwrap();
    assert_eq!(photo.rgb, src);
    assert_eq!(photo.alpha.as_ref(), Some(&alpha));

    // 16-bit RGBA too.
    let o16 = EncodeOptions {
        bit_depth: 16,
        ..enc(Format::Png)
    };
    let bytes = encode(&src, Some(&alpha), &Metadata::default(), &o16).unwrap();
    let r = png_read(&bytes);
    assert_eq!(
        (r.color, r.depth),
        (png::ColorType::Rgba, png::BitDepth::Sixteen)
    );
    let photo = decode_bytes(&bytes, &opts()).unwrap();
    let back = photo.alpha.unwrap();
    assert!(back
        .data
        .iter()
        .zip(&alpha.data)
        .all(|(x, y)| (x - y).abs() < 1e-6));
}

#[test]
fn jpeg_round_trip_within_tolerance() {
    // A smooth image: JPEG's worst case is noise, which says nothing about our conversion.
    // q=92 uses 4:4:4 chroma, q=80 4:2:0; the odd size exercises partial blocks at the edges.
    for ((w, h), quality, mean_max) in [((96, 64), 92, 0.006), ((45, 31), 80, 0.012)] {
        let mut f = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                f.extend_from_slice(&[
                    x as f32 / w as f32,
                    y as f32 / h as f32,
                    0.5 + 0.4 * ((x + y) as f32 * 0.1).sin(),
                ]);
            }
        }
        let src = RgbPlanes::from_interleaved(w, h, &f);
        let o = EncodeOptions {
            quality,
            ..enc(Format::Jpeg)
        };
        let bytes = encode(&src, None, &Metadata::default(), &o).unwrap();
        assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF]);
        assert_eq!(&bytes[bytes.len() - 2..], &[0xFF, 0xD9]);
        let photo = decode_bytes(&bytes, &opts()).unwrap();
        assert_eq!((photo.format, photo.bit_depth), (Format::Jpeg, 8));
        assert_eq!((photo.rgb.width, photo.rgb.height), (w, h));
        for c in 0..3 {
            let (mut sum, mut bias, mut max) = (0.0f64, 0.0f64, 0.0f32);
            for (a, b) in photo.rgb.c[c].iter().zip(&src.c[c]) {
                let d = a - b;
                sum += d.abs() as f64;
                bias += d as f64;
                max = max.max(d.abs());
            }
            let (mean, bias) = (sum / (w * h) as f64, bias / (w * h) as f64);
            let what = format!("q{quality} {w}x{h} channel {c}");
            assert!(mean < mean_max, "{what}: mean abs error {mean}");
            assert!(bias.abs() < 0.004, "{what}: bias {bias}");
            assert!(max < 0.1, "{what}: max abs error {max}");
        }

        // Quality matters: q=10 is smaller.
        let low = EncodeOptions {
            quality: 10,
            ..enc(Format::Jpeg)
        };
        let low = encode(&src, None, &Metadata::default(), &low).unwrap();
        assert!(low.len() < bytes.len());
    }
}

#[test]
fn grey_jpeg_expands_to_three_planes() {
    let (w, h) = (40u32, 24u32);
    let grey: Vec<u8> = (0..w * h).map(|i| ((i % w) * 6) as u8).collect();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .encode(&grey, w, h, image::ExtendedColorType::L8)
        .unwrap();
    let photo = decode_bytes(&jpeg, &opts()).unwrap();
    assert!(photo.alpha.is_none());
    assert_eq!(photo.rgb.c[0], photo.rgb.c[1]);
    assert_eq!(photo.rgb.c[0], photo.rgb.c[2]);
    let oracle = image::load_from_memory(&jpeg)
        .unwrap()
        .to_luma8()
        .into_raw();
    let ours: Vec<u8> = photo.rgb.c[0].iter().map(|&v| to_u8(v)).collect();
    assert_eq!(ours, oracle);
}

#[test]
fn jpeg_chroma_subsampling_averages_blocks() {
    // Alternating red / blue columns: 4:2:0 must average each 2x2 block's chroma (purple on
    // average), not take the top-left pixel's (red everywhere, with the blue columns' luma).
    let (w, h) = (64, 32);
    let mut f = Vec::new();
    for _ in 0..h {
        for x in 0..w {
            f.extend_from_slice(if x % 2 == 0 {
                &[1.0, 0.0, 0.0]
            } else {
                &[0.0, 0.0, 1.0]
            });
        }
    }
    let src = RgbPlanes::from_interleaved(w, h, &f);
    for quality in [75, 95] {
        let o = EncodeOptions {
            quality,
            ..enc(Format::Jpeg)
        };
        let bytes = encode(&src, None, &Metadata::default(), &o).unwrap();
        let photo = decode_bytes(&bytes, &opts()).unwrap();
        let mean = |c: usize| photo.rgb.c[c].iter().sum::<f32>() / (w * h) as f32;
        let (r, b) = (mean(0), mean(2));
        assert!((r - b).abs() < 0.08, "q{quality}: mean red {r}, blue {b}");
        assert!((0.35..0.65).contains(&r), "q{quality}: mean red {r}");
    }
}

#[test]
fn webp_lossless_round_trip_is_exact() {
    let (w, h) = (33, 17);
    let src = planes_u8(w, h, 11);
    let bytes = encode(&src, None, &Metadata::default(), &enc(Format::WebP)).unwrap();
    assert_eq!(&bytes[8..12], b"WEBP");
    let photo = decode_bytes(&bytes, &opts()).unwrap();
    assert_eq!((photo.format, photo.bit_depth), (Format::WebP, 8));
    assert!(photo.alpha.is_none());
    assert_eq!(photo.rgb, src);

    // With alpha.
    let a: Vec<f32> = noise(w * h, 12).iter().map(|&v| v as f32 / 255.0).collect();
    let alpha = Plane::from_vec(w, h, a);
    let bytes = encode(&src, Some(&alpha), &Metadata::default(), &enc(Format::WebP)).unwrap();
    let photo = decode_bytes(&bytes, &opts()).unwrap();
    assert_eq!(photo.alpha.as_ref(), Some(&alpha));
    // Where alpha is 0 lossless WebP may drop colour; compare only visible pixels.
    for i in 0..w * h {
        if alpha.data[i] > 0.0 {
            for c in 0..3 {
                assert_eq!(photo.rgb.c[c][i], src.c[c][i]);
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Orientation
// ------------------------------------------------------------------------------------------------

#[test]
fn jpeg_exif_orientations_are_applied() {
    for big_endian in [false, true] {
        for o in 1..=8u16 {
            let what = format!("orientation {o}, big endian {big_endian}");
            let (sw, sh, stored) = stored_pattern(o);
            let jpeg = jpeg_with_exif(&stored, sw, sh, &exif_block(o, big_endian));

            // The file really is stored sideways for 5-8.
            let dec = image::codecs::jpeg::JpegDecoder::new(Cursor::new(&jpeg)).unwrap();
            assert_eq!(dec.dimensions(), (sw, sh));
            assert_eq!((sw == QH), o >= 5, "{what}");

            let photo = decode_bytes(&jpeg, &opts()).unwrap();
            assert_upright_quadrants(&photo.rgb, 40, &what);

            // Exactly what `image` produces with its own orientation code.
            let mut oracle = image::load_from_memory(&jpeg).unwrap();
            oracle.apply_orientation(image::metadata::Orientation::from_exif(o as u8).unwrap());
            let oracle = oracle.to_rgb8();
            assert_eq!(oracle.dimensions(), (QW, QH), "{what}");
            assert_eq!(interleaved_u8(&photo.rgb), oracle.into_raw(), "{what}");

            // Pixels are upright now, so the carried EXIF says so, the rest unchanged.
            assert_eq!(photo.meta.orientation(), Some(1), "{what}");
            let exif = photo.meta.exif.clone().unwrap();
            let mut want = exif_block(1, big_endian);
            assert_eq!(
                exif, want,
                "{what}: EXIF other than orientation must be verbatim"
            );

            // And after encoding it, an independent reader sees orientation 1.
            let out = encode(&photo.rgb, None, &photo.meta, &enc(Format::Jpeg)).unwrap();
            let mut dec = image::codecs::jpeg::JpegDecoder::new(Cursor::new(&out)).unwrap();
            let out_exif = dec.exif_metadata().unwrap().expect("EXIF written");
            assert_eq!(oracle_orientation(&out_exif), Some(1), "{what}");
            want.truncate(want.len());
            assert_eq!(out_exif, want);
            let again = decode_bytes(&out, &opts()).unwrap();
            assert_upright_quadrants(&again.rgb, 40, &format!("{what}, re-encoded"));
        }
    }
}

#[test]
fn png_exif_orientation_is_applied() {
    let (sw, sh, stored) = stored_pattern(6);
    let png = png_bytes(
        sw,
        sh,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &stored,
        Some(&exif_block(6, true)),
    );
    let photo = decode_bytes(&png, &opts()).unwrap();
    assert_upright_quadrants(&photo.rgb, 0, "PNG orientation 6");
    assert_eq!(photo.meta.orientation(), Some(1));
}

#[test]
fn encode_resets_orientation_in_every_format() {
    let src = planes_u8(16, 8, 13);
    for big_endian in [false, true] {
        let meta = Metadata {
            exif: Some(exif_block(6, big_endian)),
            ..Metadata::default()
        };
        for fmt in Format::ALL {
            let out = encode(&src, None, &meta, &enc(fmt)).unwrap();
            let photo = decode_bytes(&out, &opts()).unwrap();
            // Not rotated on the way back in: the tag was reset to 1.
            assert_eq!((photo.rgb.width, photo.rgb.height), (16, 8), "{fmt}");
            let exif = photo.meta.exif.unwrap();
            assert_eq!(oracle_orientation(&exif), Some(1), "{fmt}");
            assert_eq!(exif, exif_block(1, big_endian), "{fmt}");
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Metadata
// ------------------------------------------------------------------------------------------------

#[test]
fn metadata_survives_every_format() {
    let src = planes_u8(24, 16, 14);
    let meta = sample_meta();
    for fmt in Format::ALL {
        let out = encode(&src, None, &meta, &enc(fmt)).unwrap();
        let photo = decode_bytes(&out, &opts()).unwrap();
        assert_eq!(photo.meta, meta, "{fmt}");
    }
}

#[test]
fn jpeg_metadata_segments_are_well_formed() {
    let src = planes_u8(24, 16, 15);
    let mut meta = sample_meta();
    // Bigger than one APP2 segment: must be split into numbered ICC_PROFILE chunks.
    meta.icc = Some(noise(150_000, 16));
    let out = encode(&src, None, &meta, &enc(Format::Jpeg)).unwrap();
    let segs = jpeg_segments(&out);
    let icc: Vec<&Vec<u8>> = segs
        .iter()
        .filter(|(m, p)| *m == 0xE2 && p.starts_with(b"ICC_PROFILE\0"))
        .map(|(_, p)| p)
        .collect();
    assert_eq!(icc.len(), 3);
    for (i, p) in icc.iter().enumerate() {
        assert_eq!((p[12], p[13]), (i as u8 + 1, 3), "chunk numbering");
    }
    let joined: Vec<u8> = icc.iter().flat_map(|p| p[14..].to_vec()).collect();
    assert_eq!(Some(joined), meta.icc);
    let exif_at = segs
        .iter()
        .position(|(m, p)| *m == 0xE1 && p.starts_with(b"Exif\0\0"))
        .expect("Exif APP1");
    assert!(
        exif_at <= 1,
        "Exif APP1 must come first (after JFIF APP0 at most)"
    );
    assert!(segs.iter().any(|(m, p)| *m == 0xE1
        && p == &[
            b"http://ns.adobe.com/xap/1.0/\0".as_slice(),
            meta.xmp.as_deref().unwrap()
        ]
        .concat()));
    // The `image` crate (zune-jpeg) reads the same three blocks.
    let mut dec = image::codecs::jpeg::JpegDecoder::new(Cursor::new(&out)).unwrap();
    assert_eq!(dec.icc_profile().unwrap(), meta.icc);
    assert_eq!(dec.exif_metadata().unwrap(), meta.exif);
    assert_eq!(dec.xmp_metadata().unwrap(), meta.xmp);
    assert_eq!(decode_bytes(&out, &opts()).unwrap().meta, meta);
}

#[test]
fn png_metadata_chunks_are_standard() {
    let src = planes_u8(24, 16, 17);
    let meta = sample_meta();
    let out = encode(&src, None, &meta, &enc(Format::Png)).unwrap();
    let r = png_read(&out);
    assert_eq!(r.icc, meta.icc, "iCCP");
    assert_eq!(r.exif, meta.exif, "eXIf");
    assert_eq!(
        r.xmp.map(String::into_bytes),
        meta.xmp,
        "iTXt XML:com.adobe.xmp"
    );
}

#[test]
fn webp_metadata_uses_extended_format() {
    let src = planes_u8(24, 16, 18);
    let meta = sample_meta();
    let out = encode(&src, None, &meta, &enc(Format::WebP)).unwrap();
    assert_eq!(&out[12..16], b"VP8X");
    let mut dec = image::codecs::webp::WebPDecoder::new(Cursor::new(&out)).unwrap();
    assert_eq!(dec.icc_profile().unwrap(), meta.icc);
    assert_eq!(dec.exif_metadata().unwrap(), meta.exif);
    assert_eq!(dec.xmp_metadata().unwrap(), meta.xmp);
}

#[test]
fn real_photo_metadata_survives_jpeg_and_png() {
    // hubble_deep_field.jpg carries EXIF, an ICC profile and XMP.
    let path = data_dir().join("photos/hubble_deep_field.jpg");
    let photo = decode_file(&path, &opts()).unwrap();
    let m = &photo.meta;
    assert!(
        m.exif.is_some() && m.icc.is_some() && m.xmp.is_some(),
        "{m:?}"
    );
    assert!(m.icc.as_ref().unwrap().len() > 128);
    assert_eq!(
        &m.icc.as_ref().unwrap()[36..40],
        b"acsp",
        "ICC header signature"
    );
    assert!(String::from_utf8_lossy(m.xmp.as_ref().unwrap()).contains("x:xmpmeta"));
    for fmt in Format::ALL {
        let out = encode(&photo.rgb, None, m, &enc(fmt)).unwrap();
        assert_eq!(&decode_bytes(&out, &opts()).unwrap().meta, m, "{fmt}");
    }
}

// ------------------------------------------------------------------------------------------------
// Real photos
// ------------------------------------------------------------------------------------------------

#[test]
fn real_jpegs_decode() {
    let files: Vec<PathBuf> = ["portraits", "animals"]
        .iter()
        .flat_map(|d| jpegs_in(d))
        .collect();
    assert!(files.len() >= 25, "only {} photos found", files.len());
    for path in files {
        let photo = decode_file(&path, &opts()).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let (w, h) = (photo.rgb.width, photo.rgb.height);
        assert!(
            (300..=8000).contains(&w) && (300..=8000).contains(&h),
            "{path:?}: {w}x{h}"
        );
        // Same size as the header says (none of these photos carry a rotating orientation).
        let (hw, hh) = image::image_dimensions(&path).unwrap();
        assert_eq!((w, h), (hw as usize, hh as usize), "{path:?}");
        assert_eq!((photo.format, photo.bit_depth), (Format::Jpeg, 8));
        for c in 0..3 {
            let p = &photo.rgb.c[c];
            assert_eq!(p.len(), w * h);
            assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
            let mean = p.iter().sum::<f32>() / p.len() as f32;
            let var = p.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / p.len() as f32;
            assert!(
                var.sqrt() > 0.03,
                "{path:?}: channel {c} is flat (sd {})",
                var.sqrt()
            );
        }
        // Pixel-identical to the `image` crate's decode.
        let oracle = image::open(&path).unwrap().to_rgb8();
        assert_eq!(interleaved_u8(&photo.rgb), oracle.into_raw(), "{path:?}");
    }
}

// ------------------------------------------------------------------------------------------------
// Bad input
// ------------------------------------------------------------------------------------------------

#[test]
fn empty_file_is_a_decode_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.jpg");
    std::fs::write(&p, b"").unwrap();
    let e = decode_file(&p, &opts()).unwrap_err();
    assert!(is_decode(&e), "{e:?}");
    assert!(e.to_string().contains("empty"), "{e}");
}

#[test]
fn text_named_jpg_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.jpg");
    std::fs::write(&p, b"hello, this is not a photo\n").unwrap();
    let e = decode_file(&p, &opts()).unwrap_err();
    assert!(matches!(e, Error::UnsupportedFormat(_)), "{e:?}");
    assert!(
        e.to_string().contains("hello"),
        "message should show what was found: {e}"
    );
    let gif = decode_bytes(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", &opts()).unwrap_err();
    assert!(matches!(gif, Error::UnsupportedFormat(_)), "{gif:?}");
    let bin = decode_bytes(&[0u8, 1, 2, 3, 0xFF], &opts()).unwrap_err();
    assert!(matches!(bin, Error::UnsupportedFormat(_)), "{bin:?}");
}

#[test]
fn truncated_jpeg_is_reported() {
    let bytes = std::fs::read(data_dir().join("portraits/p_015cd10e.jpg")).unwrap();
    for cut in [bytes.len() / 2, bytes.len() - 2, 1000, 3] {
        let e = decode_bytes(&bytes[..cut], &opts()).unwrap_err();
        assert!(is_decode(&e), "cut at {cut}: {e:?}");
        if cut > 1000 {
            assert!(e.to_string().contains("truncated"), "cut at {cut}: {e}");
        }
    }
    // Trailing bytes after EOI (some cameras append data) are not truncation.
    let mut extra = bytes.clone();
    extra.extend_from_slice(b"\0\0trailer");
    assert!(decode_bytes(&extra, &opts()).is_ok());
}

#[test]
fn corrupt_bytes_never_panic() {
    let bytes = std::fs::read(data_dir().join("animals/sample1.jpg")).unwrap();
    let png = encode(
        &planes_u8(64, 64, 19),
        None,
        &sample_meta(),
        &enc(Format::Png),
    )
    .unwrap();
    let webp = encode(
        &planes_u8(64, 64, 20),
        None,
        &sample_meta(),
        &enc(Format::WebP),
    )
    .unwrap();
    for (name, src) in [("jpeg", &bytes), ("png", &png), ("webp", &webp)] {
        // Garbage over the body, keeping the magic, at several positions.
        for (k, at) in [12usize, 40, 200, src.len() / 3].into_iter().enumerate() {
            let mut b = src.clone();
            let end = (at + 64).min(b.len());
            b[at..end].copy_from_slice(&noise(end - at, 30 + k as u32));
            // Either a typed error or (if the damage hit only entropy data) a picture.
            let _ = decode_bytes(&b, &opts());
        }
        for cut in [8, 20, src.len() / 2] {
            assert!(
                decode_bytes(&src[..cut], &opts()).is_err(),
                "{name} cut at {cut}"
            );
        }
        // One byte short: JPEG loses its EOI (truncated); PNG only its IEND checksum and WebP
        // here a chunk padding byte, with complete pixels, so those may decode.
        let last = decode_bytes(&src[..src.len() - 1], &opts());
        if name == "jpeg" {
            assert!(last.is_err(), "jpeg cut before the last byte");
        }
    }
}

#[test]
fn truncated_png_is_reported() {
    let photo = decode_file(&data_dir().join("animals/sample1.jpg"), &opts()).unwrap();
    let png = encode(&photo.rgb, None, &Metadata::default(), &enc(Format::Png)).unwrap();
    let e = decode_bytes(&png[..png.len() / 2], &opts()).unwrap_err();
    assert!(is_decode(&e), "{e:?}");
    assert!(e.to_string().contains("truncated"), "{e}");
}

#[test]
fn missing_path_is_io_error_with_path() {
    let p = Path::new("/nonexistent/dir/photo.jpg");
    match decode_file(p, &opts()).unwrap_err() {
        Error::Io { path, source } => {
            assert_eq!(path, p);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        e => panic!("{e:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        decode_file(dir.path(), &opts()),
        Err(Error::Io { .. })
    ));
}

/// CRC-32 (PNG polynomial), for hand-built chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn huge_header_is_rejected_before_allocating() {
    // A PNG that claims 100000 x 100000 RGBA16 (80 GB) and has no pixel data at all: only a
    // header check can produce TooLarge here.
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[16, 6, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    match decode_bytes(&png, &opts()).unwrap_err() {
        Error::TooLarge {
            width,
            height,
            pixels,
            limit,
        } => {
            assert_eq!((width, height, pixels), (100_000, 100_000, 10_000_000_000));
            assert_eq!(limit, lensblur::io::DEFAULT_MAX_PIXELS);
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn max_pixels_applies_to_every_format() {
    let src = planes_u8(40, 30, 21);
    let tiny = DecodeOptions { max_pixels: 1199 };
    let exact = DecodeOptions { max_pixels: 1200 };
    for fmt in Format::ALL {
        let b = encode(&src, None, &Metadata::default(), &enc(fmt)).unwrap();
        assert!(
            matches!(
                decode_bytes(&b, &tiny),
                Err(Error::TooLarge {
                    pixels: 1200,
                    limit: 1199,
                    ..
                })
            ),
            "{fmt}"
        );
        assert!(decode_bytes(&b, &exact).is_ok(), "{fmt}");
    }
}

#[test]
fn bad_encode_options_are_typed_errors() {
    let src = planes_u8(8, 8, 22);
    let m = Metadata::default();
    let q0 = EncodeOptions {
        quality: 0,
        ..enc(Format::Jpeg)
    };
    assert!(matches!(
        encode(&src, None, &m, &q0),
        Err(Error::InvalidOption(_))
    ));
    let d12 = EncodeOptions {
        bit_depth: 12,
        ..enc(Format::Png)
    };
    assert!(matches!(
        encode(&src, None, &m, &d12),
        Err(Error::InvalidOption(_))
    ));
    let small_alpha = Plane::new(4, 4, 1.0);
    assert!(matches!(
        encode(&src, Some(&small_alpha), &m, &enc(Format::Png)),
        Err(Error::Encode(_))
    ));
    let mut broken = src.clone();
    broken.c[1].pop();
    assert!(matches!(
        encode(&broken, None, &m, &enc(Format::Png)),
        Err(Error::Encode(_))
    ));
    let empty = RgbPlanes::new(0, 5, 0.0);
    assert!(matches!(
        encode(&empty, None, &m, &enc(Format::WebP)),
        Err(Error::Encode(_))
    ));
    assert!(matches!(
        encode_gray_png(&Plane {
            width: 3,
            height: 3,
            data: vec![0.0; 4]
        }),
        Err(Error::Encode(_))
    ));
}

// ------------------------------------------------------------------------------------------------
// Atomic writes
// ------------------------------------------------------------------------------------------------

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn write_atomic_creates_refuses_and_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("out.jpg");
    write_atomic(&p, b"first", false).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"first");

    match write_atomic(&p, b"second", false).unwrap_err() {
        Error::WouldOverwrite { path, .. } => assert_eq!(path, p),
        e => panic!("{e:?}"),
    }
    assert_eq!(
        std::fs::read(&p).unwrap(),
        b"first",
        "refused write must not touch the file"
    );
    assert_eq!(entries(dir.path()), ["out.jpg"], "no temp file left");

    write_atomic(&p, b"third", true).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"third");
    assert_eq!(entries(dir.path()), ["out.jpg"]);
    // An ordinary file for its owner's group and others to read (umask permitting), not the
    // temp file's private 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o600, 0o600, "{mode:o}");
        assert!(mode & 0o044 != 0, "output is private: {mode:o}");
    }

    // A fresh file in a subdirectory, with empty contents.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    write_atomic(&sub.join("a.png"), b"", false).unwrap();
    assert_eq!(std::fs::read(sub.join("a.png")).unwrap(), b"");
}

#[test]
fn write_atomic_failures_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    // Parent is a file: even root cannot create a file under it.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let target = file.join("out.jpg");
    match write_atomic(&target, b"data", true).unwrap_err() {
        Error::Io { path, .. } => assert_eq!(path, file, "error names the directory"),
        e => panic!("{e:?}"),
    }
    // Parent does not exist.
    let missing = dir.path().join("no-such-dir");
    match write_atomic(&missing.join("out.jpg"), b"data", false).unwrap_err() {
        Error::Io { path, .. } => assert_eq!(path, missing),
        e => panic!("{e:?}"),
    }
    assert!(!missing.exists());
    // Target is an existing directory: the rename fails, the temp file is removed.
    let as_dir = dir.path().join("taken");
    std::fs::create_dir(&as_dir).unwrap();
    std::fs::write(as_dir.join("inner"), b"keep").unwrap();
    assert!(matches!(
        write_atomic(&as_dir, b"data", true),
        Err(Error::Io { .. })
    ));
    assert_eq!(
        entries(dir.path()),
        ["plain-file", "taken"],
        "no temp file left"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

// ------------------------------------------------------------------------------------------------
// Timings (ignored; run with --release --ignored --nocapture)
// ------------------------------------------------------------------------------------------------

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..n {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
        out = Some(r);
    }
    (best, out.unwrap())
}

#[test]
#[ignore = "timing report, run in release"]
fn timings_12mp() {
    let src = image::open(data_dir().join("portraits/p_015cd10e.jpg")).unwrap();
    let big = src.resize_exact(4000, 3000, image::imageops::FilterType::Triangle);
    let mut jpeg = Vec::new();
    big.to_rgb8()
        .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    // Upscaling leaves little high-frequency detail (a small, fast JPEG); tiling the original
    // keeps real detail, closer to a camera file's entropy-coded size.
    let tile = src.to_rgb8();
    let mut tiled = image::RgbImage::new(4000, 3000);
    for y in 0..3000 {
        for x in 0..4000 {
            tiled.put_pixel(x, y, *tile.get_pixel(x % tile.width(), y % tile.height()));
        }
    }
    let mut detailed = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut detailed, 92)
        .encode_image(&tiled)
        .unwrap();
    let threads = rayon::current_num_threads();
    println!(
        "12 MP (4000x3000), rayon threads: {threads}, input JPEG {} KB",
        jpeg.len() / 1024
    );

    let (t, photo) = best_of(5, || decode_bytes(&jpeg, &opts()).unwrap());
    println!("decode JPEG              {t:7.1} ms");
    let (t, _) = best_of(5, || {
        let dec = image::codecs::jpeg::JpegDecoder::new(Cursor::new(&jpeg)).unwrap();
        let mut buf = vec![0u8; dec.total_bytes() as usize];
        dec.read_image(&mut buf).unwrap();
        buf
    });
    println!("  of which zune-jpeg     {t:7.1} ms");
    let (t, _) = best_of(5, || decode_bytes(&detailed, &opts()).unwrap());
    println!(
        "decode JPEG, detailed    {t:7.1} ms  (tiled photo, {} KB)",
        detailed.len() / 1024
    );
    let m = Metadata::default();
    let (t, out) = best_of(3, || {
        encode(&photo.rgb, None, &m, &enc(Format::Jpeg)).unwrap()
    });
    println!(
        "encode JPEG q92          {t:7.1} ms  {:6} KB",
        out.len() / 1024
    );
    let q85 = EncodeOptions {
        quality: 85,
        ..enc(Format::Jpeg)
    };
    let (t, out) = best_of(3, || encode(&photo.rgb, None, &m, &q85).unwrap());
    println!(
        "encode JPEG q85 (4:2:0)  {t:7.1} ms  {:6} KB",
        out.len() / 1024
    );
    let (t, out) = best_of(3, || {
        encode(&photo.rgb, None, &m, &enc(Format::Png)).unwrap()
    });
    println!(
        "encode PNG 8-bit         {t:7.1} ms  {:6} KB",
        out.len() / 1024
    );
    let (t, png8) = (t, out);
    let (t2, _) = best_of(3, || decode_bytes(&png8, &opts()).unwrap());
    println!("decode PNG 8-bit         {t2:7.1} ms   (encode {t:.1})");
    let o16 = EncodeOptions {
        bit_depth: 16,
        ..enc(Format::Png)
    };
    let (t, out) = best_of(2, || encode(&photo.rgb, None, &m, &o16).unwrap());
    println!(
        "encode PNG 16-bit        {t:7.1} ms  {:6} KB",
        out.len() / 1024
    );
    let (t, out) = best_of(1, || {
        encode(&photo.rgb, None, &m, &enc(Format::WebP)).unwrap()
    });
    println!(
        "encode WebP lossless     {t:7.1} ms  {:6} KB",
        out.len() / 1024
    );

    // Orientation 6 (portrait phone photos): the transposing path.
    let mut rotated = Vec::new();
    let exif = exif_block(6, false);
    let len = exif.len() + 8;
    rotated.extend_from_slice(&jpeg[..2]);
    rotated.extend_from_slice(&[0xFF, 0xE1, (len >> 8) as u8, len as u8]);
    rotated.extend_from_slice(b"Exif\0\0");
    rotated.extend_from_slice(&exif);
    rotated.extend_from_slice(&jpeg[2..]);
    let (t, p) = best_of(5, || decode_bytes(&rotated, &opts()).unwrap());
    assert_eq!((p.rgb.width, p.rgb.height), (3000, 4000));
    println!("decode JPEG orientation 6 {t:6.1} ms");
}
