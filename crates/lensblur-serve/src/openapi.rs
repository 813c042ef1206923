//! The OpenAPI 3.1 document served at `/openapi.json`, written by hand; its parameters come from
//! [`crate::params`] so they cannot drift, and a test checks its paths and methods against the
//! router's table ([`crate::route_table`]) and the live server.

use serde_json::{json, Map, Value};

use crate::params::{FieldDoc, OUTPUT_FIELDS, RENDER_FIELDS};
use crate::Limits;

fn schema(f: &FieldDoc) -> Value {
    let mut s = json!({ "type": f.kind, "description": f.doc });
    if let Ok(d) = serde_json::from_str::<Value>(f.default) {
        s["default"] = d;
    }
    if let Some((lo, hi)) = f.range {
        s["minimum"] = json!(lo);
        s["maximum"] = json!(hi);
    }
    if f.name == "format" {
        s["enum"] = json!(["jpeg", "png", "webp"]);
    }
    s
}

fn query_params(fields: &[&FieldDoc]) -> Vec<Value> {
    fields
        .iter()
        .map(|f| json!({ "name": f.name, "in": "query", "required": false, "schema": schema(f) }))
        .collect()
}

fn multipart(fields: &[&FieldDoc]) -> Value {
    let mut props = Map::new();
    props.insert(
        "image".into(),
        json!({ "type": "string", "format": "binary", "description": "The photo: JPEG, PNG or WebP." }),
    );
    for f in fields {
        props.insert(f.name.into(), schema(f));
    }
    json!({
        "required": true,
        "content": { "multipart/form-data": { "schema": {
            "type": "object", "required": ["image"], "properties": props
        }}}
    })
}

fn image_response(mimes: &[&str], what: &str) -> Value {
    let content: Map<String, Value> = mimes
        .iter()
        .map(|m| {
            (
                (*m).to_string(),
                json!({ "schema": { "type": "string", "format": "binary" } }),
            )
        })
        .collect();
    json!({ "description": what, "content": content })
}

fn errors(codes: &[&str]) -> Map<String, Value> {
    codes
        .iter()
        .map(|c| {
            (
                (*c).to_string(),
                json!({ "description": "Error", "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/Error" } } } }),
            )
        })
        .collect()
}

fn op(summary: &str, ok: (&str, Value), errs: &[&str]) -> Value {
    let mut responses = errors(errs);
    responses.insert(ok.0.into(), ok.1);
    json!({ "summary": summary, "responses": responses })
}

fn id_param() -> Value {
    json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } })
}

/// The document.
pub fn document(limits: &Limits) -> Value {
    let render: Vec<&FieldDoc> = RENDER_FIELDS.iter().collect();
    let all: Vec<&FieldDoc> = RENDER_FIELDS.iter().chain(OUTPUT_FIELDS).collect();
    let upload_errs = ["400", "413", "415", "422", "503", "504"];
    let page = |s: &str, mime: &str| json!({ "get": op(s, ("200", json!({ "description": "Asset", "content": { mime: {} } })), &[]) });

    let mut blur = op(
        "Blur the background of one photo (analysis + render in one request).",
        (
            "200",
            image_response(
                &["image/jpeg", "image/png", "image/webp"],
                "The blurred photo, metadata kept",
            ),
        ),
        &upload_errs,
    );
    blur["requestBody"] = multipart(&all);
    let mut matte = op(
        "The refined full-resolution alpha matte.",
        (
            "200",
            image_response(&["image/png"], "8-bit grey PNG, white = subject"),
        ),
        &upload_errs,
    );
    matte["requestBody"] = multipart(&[]);
    let mut cutout = op(
        "The subject alone: estimated foreground colour with the matte as alpha.",
        ("200", image_response(&["image/png"], "RGBA PNG")),
        &upload_errs,
    );
    cutout["requestBody"] = multipart(&[]);
    let mut create = op(
        "Upload and analyse a photo once; returns a session id for previews and downloads.",
        (
            "201",
            json!({ "description": "Session", "content": { "application/json": {
                "schema": { "$ref": "#/components/schemas/Session" } } } }),
        ),
        &upload_errs,
    );
    create["requestBody"] = multipart(&[]);

    let session_get = |summary: &str, ok: (&str, Value), extra: Vec<Value>| {
        let mut o = op(summary, ok, &["400", "404", "503", "504"]);
        let mut params = vec![id_param()];
        params.extend(extra);
        o["parameters"] = json!(params);
        o
    };

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "lensblur",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "Subject-aware optical background blur. Limits: body {} MiB, {} pixels, \
                 {} analysis at a time with {} waiting (503 + Retry-After beyond), {} s per request.",
                limits.max_body_bytes >> 20, limits.max_pixels, limits.workers, limits.queue,
                limits.timeout.as_secs()
            ),
        },
        "paths": {
            "/": page("The web app.", "text/html"),
            "/app.js": page("The web app's script.", "text/javascript"),
            "/app.css": page("The web app's style sheet.", "text/css"),
            "/healthz": { "get": op("Liveness and cache statistics.", ("200", json!({ "description": "OK",
                "content": { "application/json": {} } })), &[]) },
            "/openapi.json": { "get": op("This document.", ("200", json!({ "description": "OpenAPI 3.1",
                "content": { "application/json": {} } })), &[]) },
            "/v1/blur": { "post": blur },
            "/v1/matte": { "post": matte },
            "/v1/cutout": { "post": cutout },
            "/v1/sessions": { "post": create },
            "/v1/sessions/{id}": {
                "get": session_get("Session info.", ("200", json!({ "description": "Session",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Session" } } } })), vec![]),
                "delete": session_get("Forget a session.", ("204", json!({ "description": "Deleted" })), vec![]),
            },
            "/v1/sessions/{id}/preview": { "get": session_get(
                "Render the preview-size photo (≤ 2 MP) with these parameters; JPEG.",
                ("200", image_response(&["image/jpeg"], "Preview; Server-Timing gives render and encode ms")),
                query_params(&render)) },
            "/v1/sessions/{id}/original": { "get": session_get(
                "The unblurred photo at preview size; JPEG.",
                ("200", image_response(&["image/jpeg"], "Preview-size original")), vec![]) },
            "/v1/sessions/{id}/matte": { "get": session_get(
                "The matte at preview size as a translucent tint over the subject; RGBA PNG.",
                ("200", image_response(&["image/png"], "Overlay")), vec![]) },
            "/v1/sessions/{id}/download": { "get": session_get(
                "Render at full resolution with metadata kept (attachment).",
                ("200", image_response(&["image/jpeg", "image/png", "image/webp"], "Full-resolution result")),
                query_params(&all)) },
        },
        "components": { "schemas": {
            "Error": { "type": "object", "required": ["error", "detail"], "properties": {
                "error": { "type": "string", "description": "Stable code: invalid_parameter, missing_field, bad_multipart, bad_image, unsupported_format, too_many_pixels, body_too_large, too_small, too_large_for_cache, unknown_session, queue_full, timeout, not_found, method_not_allowed, internal." },
                "detail": { "type": "string" } } },
            "Session": { "type": "object", "properties": {
                "id": { "type": "string" }, "width": { "type": "integer" }, "height": { "type": "integer" },
                "preview_width": { "type": "integer" }, "preview_height": { "type": "integer" },
                "format": { "type": "string" }, "subject": { "type": "boolean" },
                "confidence": { "type": "number" }, "bytes": { "type": "integer" },
                "timings_ms": { "type": "object", "additionalProperties": { "type": "number" } } } },
        }},
    })
}
