//! Request parameters, parsed in one place for every endpoint (multipart fields and query strings
//! alike), so a new render option is added here once: a field on [`RenderParams`], a line in
//! [`RenderParams::set`], a line in [`RenderParams::options`] and an entry in [`RENDER_FIELDS`]
//! (which the OpenAPI document is built from).

use lensblur::bokeh::{Aperture, Profile};
use lensblur::grain::Grain;
use lensblur::io::{EncodeOptions, Format, DEFAULT_QUALITY};
use lensblur::RenderOptions;

use crate::error::ApiError;

/// Describes one render parameter for the OpenAPI document.
#[derive(Debug, Clone, Copy)]
pub struct FieldDoc {
    /// Field / query parameter name.
    pub name: &'static str,
    /// OpenAPI type: `number`, `boolean`, `integer` or `string`.
    pub kind: &'static str,
    /// Inclusive range for numbers.
    pub range: Option<(f64, f64)>,
    /// Default, as JSON text.
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
}

/// The render parameters, mirroring [`lensblur::RenderOptions`].
pub const RENDER_FIELDS: &[FieldDoc] = &[
    FieldDoc {
        name: "strength",
        kind: "number",
        range: Some((1.0, 100.0)),
        default: "30",
        doc: "Blur strength, resolution independent: subtle 1-15, medium 20-35, strong 40-60, maximum 70-100.",
    },
    FieldDoc {
        name: "highlights",
        kind: "number",
        range: Some((0.0, 1.0)),
        default: "0.5",
        doc: "How strongly bright lights bloom into bokeh balls.",
    },
    FieldDoc {
        name: "force",
        kind: "boolean",
        range: None,
        default: "false",
        doc: "Blur even when no subject is found (otherwise the photo comes back unblurred).",
    },
    FieldDoc {
        name: "aperture",
        kind: "string",
        range: None,
        default: "\"disc\"",
        doc: "Bokeh shape: disc, pentagon, hexagon, heptagon, octagon, nonagon or blades:N (N = 3-12).",
    },
    FieldDoc {
        name: "aperture_rotation",
        kind: "number",
        range: Some((-360.0, 360.0)),
        default: "0",
        doc: "Polygon rotation in degrees, counter-clockwise (0 = a corner points up).",
    },
    FieldDoc {
        name: "aperture_curvature",
        kind: "number",
        range: Some((0.0, 1.0)),
        default: "0",
        doc: "Blade curvature: 0 = straight blades, 1 = round.",
    },
    FieldDoc {
        name: "cats_eye",
        kind: "number",
        range: Some((0.0, 1.0)),
        default: "0",
        doc: "Cat's-eye vignetting: bokeh balls squeezed into lemons toward the frame corners.",
    },
    FieldDoc {
        name: "bokeh_profile",
        kind: "string",
        range: None,
        default: "\"flat\"",
        doc: "Brightness across a bokeh ball: flat, smooth (soft rim) or bubble (bright rim).",
    },
    FieldDoc {
        name: "grain",
        kind: "string",
        range: None,
        default: "\"auto\"",
        doc: "Grain in blurred areas: auto (matched to the photo's noise), off, or a std dev in 8-bit levels (0-50).",
    },
];

/// The output parameters (`format`, `quality`).
pub const OUTPUT_FIELDS: &[FieldDoc] = &[
    FieldDoc {
        name: "format",
        kind: "string",
        range: None,
        default: "\"jpeg\"",
        doc:
            "Output format: jpeg, png or webp (lossless). /v1/blur defaults to the input's format.",
    },
    FieldDoc {
        name: "quality",
        kind: "integer",
        range: Some((1.0, 100.0)),
        default: "92",
        doc: "JPEG quality.",
    },
];

/// Render parameters as sent by a client; [`RenderParams::options`] turns them into the library's
/// options.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderParams {
    /// See [`RenderOptions::strength`].
    pub strength: f32,
    /// See [`RenderOptions::highlights`].
    pub highlights: f32,
    /// See [`RenderOptions::force`].
    pub force: bool,
    /// See [`RenderOptions::aperture`].
    pub aperture: Aperture,
    /// See [`RenderOptions::grain`].
    pub grain: Grain,
}

impl Default for RenderParams {
    fn default() -> Self {
        let d = RenderOptions::default();
        RenderParams {
            strength: d.strength,
            highlights: d.highlights,
            force: d.force,
            aperture: d.aperture,
            grain: d.grain,
        }
    }
}

/// Output parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputParams {
    /// Container; `None` = endpoint default.
    pub format: Option<Format>,
    /// JPEG quality 1–100; `None` = 92.
    pub quality: Option<u8>,
}

impl OutputParams {
    /// Encoder settings, with `default_format` when none was asked for.
    pub fn encode_options(&self, default_format: Format) -> EncodeOptions {
        EncodeOptions {
            format: self.format.unwrap_or(default_format),
            quality: self.quality.unwrap_or(DEFAULT_QUALITY),
            bit_depth: 8,
        }
    }
}

fn number(name: &str, value: &str, lo: f32, hi: f32) -> Result<f32, ApiError> {
    let v: f32 = value
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid(format!("{name} {value:?} is not a number")))?;
    if !v.is_finite() || v < lo || v > hi {
        return Err(ApiError::invalid(format!(
            "{name} {value} is outside {lo}-{hi}"
        )));
    }
    Ok(v)
}

fn boolean(name: &str, value: &str) -> Result<bool, ApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" | "" => Ok(false),
        _ => Err(ApiError::invalid(format!(
            "{name} {value:?} is not a boolean (true/false)"
        ))),
    }
}

impl RenderParams {
    /// Applies one named field. Returns `Ok(false)` when `name` is not a render parameter.
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, ApiError> {
        match name {
            "strength" => self.strength = number(name, value, 1.0, 100.0)?,
            "highlights" => self.highlights = number(name, value, 0.0, 1.0)?,
            "force" => self.force = boolean(name, value)?,
            "aperture" => {
                self.aperture.shape = Aperture::parse_shape(value.trim())
                    .map_err(|e| ApiError::invalid(e.to_string()))?
            }
            "aperture_rotation" => self.aperture.rotation_deg = number(name, value, -360.0, 360.0)?,
            "aperture_curvature" => self.aperture.curvature = number(name, value, 0.0, 1.0)?,
            "cats_eye" => self.aperture.cats_eye = number(name, value, 0.0, 1.0)?,
            "bokeh_profile" => {
                self.aperture.profile =
                    Profile::parse(value.trim()).map_err(|e| ApiError::invalid(e.to_string()))?
            }
            "grain" => self.grain = Grain::parse(value).map_err(ApiError::invalid)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The library's options.
    pub fn options(&self) -> RenderOptions {
        RenderOptions {
            strength: self.strength,
            highlights: self.highlights,
            force: self.force,
            aperture: self.aperture.clone(),
            grain: self.grain,
            ..Default::default()
        }
    }
}

impl OutputParams {
    /// Applies one named field. Returns `Ok(false)` when `name` is not an output parameter.
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, ApiError> {
        match name {
            "format" => {
                self.format = Some(Format::from_name(value.trim()).ok_or_else(|| {
                    ApiError::invalid(format!("format {value:?} is not jpeg, png or webp"))
                })?)
            }
            "quality" => self.quality = Some(number(name, value, 1.0, 100.0)?.round() as u8),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Everything a request may carry besides the image.
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// Render parameters.
    pub render: RenderParams,
    /// Output parameters.
    pub output: OutputParams,
}

impl Params {
    /// Parses `(name, value)` pairs; unknown names are rejected (so a typo such as `strenght` is an
    /// error, not a silently ignored option). `allow_output` is false for endpoints whose output
    /// format is fixed.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        allow_output: bool,
    ) -> Result<Params, ApiError> {
        let mut p = Params::default();
        for (name, value) in pairs {
            if p.render.set(name, value)? {
                continue;
            }
            if allow_output && p.output.set(name, value)? {
                continue;
            }
            if name == "_" {
                continue; // cache buster from the page
            }
            return Err(ApiError::invalid(format!("unknown parameter {name:?}")));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let p = Params::parse(
            [
                ("strength", "45"),
                ("highlights", "0.2"),
                ("force", "true"),
                ("format", "PNG"),
                ("quality", "80"),
            ],
            true,
        )
        .unwrap();
        assert_eq!(p.render.strength, 45.0);
        assert_eq!(p.render.highlights, 0.2);
        assert!(p.render.force);
        assert_eq!(p.output.format, Some(Format::Png));
        assert_eq!(p.output.quality, Some(80));
        for bad in [
            ("strength", "0"),
            ("strength", "101"),
            ("strength", "abc"),
            ("strength", "NaN"),
            ("highlights", "2"),
            ("force", "maybe"),
            ("format", "gif"),
            ("quality", "0"),
            ("strenght", "30"),
        ] {
            let e = Params::parse([bad], true).unwrap_err();
            assert_eq!(e.code, "invalid_parameter", "{bad:?}");
        }
        assert!(Params::parse([("format", "png")], false).is_err());
        // Every documented field is accepted with its default.
        for f in RENDER_FIELDS.iter().chain(OUTPUT_FIELDS) {
            let v = f.default.trim_matches('"');
            assert!(Params::parse([(f.name, v)], true).is_ok(), "{}", f.name);
        }
    }
}
