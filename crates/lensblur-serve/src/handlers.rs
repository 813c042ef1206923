//! Request handlers. Each does its CPU work in a blocking task (heavy jobs via [`crate::jobs`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lensblur::buffer::{Plane, RgbPlanes};
use lensblur::color::planes_to_srgb;
use lensblur::io::{self, DecodeOptions, EncodeOptions, Format, Metadata, Photo};
use lensblur::pipeline::{downscale_photo, fit_pixels};
use lensblur::Analysis;
use serde_json::json;

use crate::error::ApiError;
use crate::params::Params;
use crate::sessions::Session;
use crate::AppState;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

/// JPEG quality of previews: small and fast, visually clean at screen size.
const PREVIEW_QUALITY: u8 = 85;

fn asset(body: &'static str, mime: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub async fn index() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8")
}

pub async fn app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

pub async fn app_css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {method} {}; see /openapi.json", uri.path()),
    )
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not accept {method}; see /openapi.json", uri.path()),
    )
}

pub async fn healthz(State(st): State<AppState>) -> Json<serde_json::Value> {
    let (sessions, bytes, evicted) = st.sessions.stats();
    Json(json!({
        "status": "ok",
        "model": st.analyse.model,
        "runtime": st.matter.runtime().map(|r| r.as_str()),
        "jobs": st.jobs.admitted(),
        "sessions": sessions,
        "session_bytes": bytes,
        "session_bytes_max": st.sessions.max_bytes(),
        "sessions_evicted": evicted,
    }))
}

pub async fn openapi(State(st): State<AppState>) -> Json<serde_json::Value> {
    Json(crate::openapi::document(&st.limits))
}

// ---------------------------------------------------------------------------------------------
// Uploads
// ---------------------------------------------------------------------------------------------

fn multipart_error(e: MultipartError) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            "body_too_large",
            format!("the request body is too large ({})", e.body_text()),
        )
    } else {
        ApiError::new(status, "bad_multipart", e.body_text())
    }
}

/// Reads a multipart upload: the `image` field's bytes and every other field as text.
async fn read_upload(
    mp: Result<Multipart, MultipartRejection>,
) -> Result<(Vec<u8>, Vec<(String, String)>), ApiError> {
    let mut mp = mp.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_multipart",
            format!(
                "{}; send multipart/form-data with the photo in a field named \"image\"",
                e.body_text()
            ),
        )
    })?;
    let mut image = None;
    let mut fields = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "image" {
            image = Some(field.bytes().await.map_err(multipart_error)?.to_vec());
        } else {
            let text = field.text().await.map_err(multipart_error)?;
            fields.push((name, text));
        }
    }
    let image = image.ok_or_else(|| ApiError::missing("image"))?;
    if image.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_image",
            "the \"image\" field is empty",
        ));
    }
    Ok((image, fields))
}

fn parse_fields(fields: &[(String, String)], allow_output: bool) -> Result<Params, ApiError> {
    Params::parse(
        fields.iter().map(|(a, b)| (a.as_str(), b.as_str())),
        allow_output,
    )
}

fn reject_fields(fields: &[(String, String)]) -> Result<(), ApiError> {
    match fields.first() {
        Some((name, _)) => Err(ApiError::invalid(format!(
            "unknown parameter {name:?} (this endpoint takes only \"image\")"
        ))),
        None => Ok(()),
    }
}

/// Decode + analyse; runs inside a heavy job.
fn decode_and_analyse(
    st: &AppState,
    bytes: &[u8],
    timings: &mut Vec<(&'static str, Duration)>,
) -> Result<(Photo, Analysis), ApiError> {
    let t = Instant::now();
    let photo = io::decode_bytes(
        bytes,
        &DecodeOptions {
            max_pixels: st.limits.max_pixels,
        },
    )?;
    timings.push(("decode", t.elapsed()));
    let analysis = lensblur::analyse(&photo, &st.matter, &st.analyse)?;
    timings.extend(analysis.timings.iter().cloned());
    Ok((photo, analysis))
}

fn server_timing(timings: &[(&'static str, Duration)]) -> String {
    timings
        .iter()
        .map(|(n, d)| format!("{n};dur={:.1}", d.as_secs_f64() * 1e3))
        .collect::<Vec<_>>()
        .join(", ")
}

fn image_response(
    bytes: Vec<u8>,
    format: Format,
    timings: &[(&'static str, Duration)],
    extra: &[(&'static str, String)],
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.mime_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&server_timing(timings)) {
        headers.insert(HeaderName::from_static("server-timing"), v);
    }
    for (k, v) in extra {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(*k), HeaderValue::from_str(v)) {
            headers.insert(k, v);
        }
    }
    (headers, bytes).into_response()
}

fn subject_headers(a: &Analysis) -> Vec<(&'static str, String)> {
    vec![
        (
            "x-lensblur-subject",
            if a.no_subject() { "none" } else { "found" }.to_string(),
        ),
        ("x-lensblur-confidence", format!("{:.3}", a.confidence())),
    ]
}

/// PNG output is 16-bit when the source was (like the CLI); everything else 8-bit.
fn encode_options(params: &Params, photo: &Photo) -> EncodeOptions {
    let enc = params.output.encode_options(photo.format);
    EncodeOptions::for_source(enc.format, enc.quality, photo)
}

// ---------------------------------------------------------------------------------------------
// Stateless API
// ---------------------------------------------------------------------------------------------

pub async fn blur(
    State(st): State<AppState>,
    mp: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let (bytes, fields) = read_upload(mp).await?;
    let params = parse_fields(&fields, true)?;
    let job = st.clone();
    let (out, format, timings, extra) = st
        .jobs
        .run(st.limits.timeout, move || {
            let mut timings = Vec::new();
            let (photo, analysis) = decode_and_analyse(&job, &bytes, &mut timings)?;
            let t = Instant::now();
            let img = lensblur::render(&photo, &analysis, &params.render.options())?;
            timings.push(("render", t.elapsed()));
            let enc = encode_options(&params, &photo);
            let t = Instant::now();
            let out = io::encode(&img, photo.alpha.as_ref(), &photo.meta, &enc)?;
            timings.push(("encode", t.elapsed()));
            Ok((out, enc.format, timings, subject_headers(&analysis)))
        })
        .await?;
    Ok(image_response(out, format, &timings, &extra))
}

pub async fn matte(
    State(st): State<AppState>,
    mp: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let (bytes, fields) = read_upload(mp).await?;
    reject_fields(&fields)?;
    let job = st.clone();
    let (out, timings, extra) = st
        .jobs
        .run(st.limits.timeout, move || {
            let mut timings = Vec::new();
            let (_, analysis) = decode_and_analyse(&job, &bytes, &mut timings)?;
            let out = io::encode_gray_png(&analysis.alpha)?;
            Ok((out, timings, subject_headers(&analysis)))
        })
        .await?;
    Ok(image_response(out, Format::Png, &timings, &extra))
}

/// The subject alone: estimated foreground colour (no old background fringing the hair) with the
/// matte as alpha, times the source's own alpha if it had one.
fn cutout_rgba(photo: &Photo, analysis: &Analysis) -> (RgbPlanes, Plane) {
    let rgb = planes_to_srgb(&analysis.foreground);
    let mut alpha = analysis.alpha.clone();
    if let Some(src) = &photo.alpha {
        for (a, s) in alpha.data.iter_mut().zip(&src.data) {
            *a *= s;
        }
    }
    (rgb, alpha)
}

pub async fn cutout(
    State(st): State<AppState>,
    mp: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let (bytes, fields) = read_upload(mp).await?;
    reject_fields(&fields)?;
    let job = st.clone();
    let (out, timings, extra) = st
        .jobs
        .run(st.limits.timeout, move || {
            let mut timings = Vec::new();
            let (photo, analysis) = decode_and_analyse(&job, &bytes, &mut timings)?;
            let (rgb, alpha) = cutout_rgba(&photo, &analysis);
            let out = io::encode(
                &rgb,
                Some(&alpha),
                &photo.meta,
                &EncodeOptions::for_format(Format::Png),
            )?;
            Ok((out, timings, subject_headers(&analysis)))
        })
        .await?;
    Ok(image_response(out, Format::Png, &timings, &extra))
}

// ---------------------------------------------------------------------------------------------
// Sessions (the page)
// ---------------------------------------------------------------------------------------------

fn session_json(s: &Session, timings: &[(&'static str, Duration)]) -> serde_json::Value {
    let ms: serde_json::Map<String, serde_json::Value> = timings
        .iter()
        .map(|(n, d)| {
            (
                (*n).to_string(),
                json!((d.as_secs_f64() * 1e4).round() / 10.0),
            )
        })
        .collect();
    json!({
        "id": s.id,
        "width": s.photo.rgb.width,
        "height": s.photo.rgb.height,
        "preview_width": s.preview_photo.rgb.width,
        "preview_height": s.preview_photo.rgb.height,
        "format": s.photo.format.extension(),
        "subject": !s.analysis.no_subject(),
        "confidence": s.analysis.confidence(),
        "bytes": s.bytes,
        "timings_ms": ms,
    })
}

fn unknown_session(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_session",
        format!("session {id:?} is unknown or has expired; upload the photo again"),
    )
}

fn session(st: &AppState, id: &str) -> Result<Arc<Session>, ApiError> {
    st.sessions.get(id).ok_or_else(|| unknown_session(id))
}

pub async fn create_session(
    State(st): State<AppState>,
    mp: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let (bytes, fields) = read_upload(mp).await?;
    reject_fields(&fields)?;
    let job = st.clone();
    let (session, timings) = st
        .jobs
        .run(st.limits.timeout, move || {
            let mut timings = Vec::new();
            let (photo, analysis) = decode_and_analyse(&job, &bytes, &mut timings)?;
            let t = Instant::now();
            let (pw, ph) = fit_pixels(photo.rgb.width, photo.rgb.height, job.limits.preview_pixels);
            let preview_photo = downscale_photo(&photo, pw, ph);
            let preview = analysis.downscaled(pw, ph);
            timings.push(("preview", t.elapsed()));
            let bytes = Session::estimate_bytes(&photo, &analysis, &preview_photo, &preview);
            let session = Session {
                id: job.sessions.new_id(),
                photo,
                analysis,
                preview_photo,
                preview,
                bytes,
            };
            let session = job.sessions.insert(session).map_err(|e| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large_for_cache",
                    format!(
                        "the analysed photo needs {} MB, more than the session cache's {} MB; \
                         use a smaller photo or start the server with a larger --cache-mb",
                        e.bytes >> 20,
                        e.max >> 20
                    ),
                )
            })?;
            Ok((session, timings))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(session_json(&session, &timings))))
}

pub async fn session_info(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let s = session(&st, &id)?;
    Ok(Json(session_json(&s, &[])))
}

pub async fn delete_session(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if st.sessions.remove(&id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(unknown_session(&id))
    }
}

type QueryPairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

fn query_params(q: QueryPairs, allow_output: bool) -> Result<Params, ApiError> {
    let Query(pairs) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    parse_fields(&pairs, allow_output)
}

/// Runs cheap per-session work (preview-size render or encode) on the blocking pool, at most one
/// per core at once.
async fn light<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let timeout = st.limits.timeout;
    let permit = tokio::time::timeout(timeout, st.previews.clone().acquire_owned())
        .await
        .map_err(|_| ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", "server busy"))?
        .map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
    .map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
}

/// Only the ICC profile travels with previews (so colours show right); EXIF/XMP stay for the download.
fn preview_meta(photo: &Photo) -> Metadata {
    Metadata {
        icc: photo.meta.icc.clone(),
        ..Metadata::default()
    }
}

pub async fn preview(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let params = query_params(q, false)?;
    let s = session(&st, &id)?;
    let (out, timings) = light(&st, move || {
        let t = Instant::now();
        let img = lensblur::render(&s.preview_photo, &s.preview, &params.render.options())?;
        let render = t.elapsed();
        let t = Instant::now();
        let out = io::encode(
            &img,
            None,
            &preview_meta(&s.preview_photo),
            &EncodeOptions {
                quality: PREVIEW_QUALITY,
                ..EncodeOptions::for_format(Format::Jpeg)
            },
        )?;
        Ok((out, [("render", render), ("encode", t.elapsed())]))
    })
    .await?;
    Ok(image_response(out, Format::Jpeg, &timings, &[]))
}

pub async fn original(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = session(&st, &id)?;
    let out = light(&st, move || {
        Ok(io::encode(
            &s.preview_photo.rgb,
            None,
            &preview_meta(&s.preview_photo),
            &EncodeOptions {
                quality: PREVIEW_QUALITY,
                ..EncodeOptions::for_format(Format::Jpeg)
            },
        )?)
    })
    .await?;
    Ok(image_response(out, Format::Jpeg, &[], &[]))
}

/// The preview-size matte as a tint: a translucent colour over the subject, transparent elsewhere.
pub async fn matte_overlay(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = session(&st, &id)?;
    let out = light(&st, move || {
        let a = &s.preview.alpha;
        let tint = RgbPlanes {
            width: a.width,
            height: a.height,
            c: [
                vec![1.0; a.data.len()],
                vec![0.2; a.data.len()],
                vec![0.45; a.data.len()],
            ],
        };
        let alpha = Plane::from_vec(a.width, a.height, a.data.iter().map(|v| 0.55 * v).collect());
        Ok(io::encode(
            &tint,
            Some(&alpha),
            &Metadata::default(),
            &EncodeOptions::for_format(Format::Png),
        )?)
    })
    .await?;
    Ok(image_response(out, Format::Png, &[], &[]))
}

pub async fn download(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let mut params = query_params(q, true)?;
    if params.output.format.is_none() {
        params.output.format = Some(Format::Jpeg);
    }
    let s = session(&st, &id)?;
    let (out, format, timings) = st
        .jobs
        .run(st.limits.timeout, move || {
            let t = Instant::now();
            let img = lensblur::render(&s.photo, &s.analysis, &params.render.options())?;
            let render = t.elapsed();
            let enc = encode_options(&params, &s.photo);
            let t = Instant::now();
            let out = io::encode(&img, s.photo.alpha.as_ref(), &s.photo.meta, &enc)?;
            Ok((
                out,
                enc.format,
                [("render", render), ("encode", t.elapsed())],
            ))
        })
        .await?;
    let name = format!(
        "attachment; filename=\"lensblur-{}.{}\"",
        id.get(..8).unwrap_or(&id),
        format.extension()
    );
    Ok(image_response(
        out,
        format,
        &timings,
        &[("content-disposition", name)],
    ))
}
