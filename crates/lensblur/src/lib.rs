//! # lensblur
//!
//! Subject-aware optical background blur. A photo goes through two stages:
//!
//! 1. [`analyse`] (expensive, once per photo): the subject matte — a salient-object model at its input
//!    size, refined at full resolution — the foreground colour and the photo's noise; optionally a
//!    depth map ([`Analysis::set_depth`]).
//! 2. [`render`] (cheap, per strength): a background plate with the subject filled in from its
//!    surroundings, aperture-shaped bokeh (disc or polygon, cat's eye, profiles) in linear light with
//!    highlight boost — depth-ordered with a per-pixel radius when there is depth — then
//!    `α·F + (1−α)·bokeh` and matched grain.
//!
//! Colour: inputs and outputs are sRGB-encoded; blurring and compositing happen in linear light.
//!
//! The model runs on the pure-Rust `rten`, or on ONNX Runtime (~2× faster) with the cargo feature `ort`
//! and its library in `ORT_DYLIB_PATH`; [`Runtime`] in [`AnalyseOptions`] chooses.
//!
//! ```no_run
//! use lensblur::{io, AnalyseOptions, Matter, RenderOptions};
//! # fn main() -> lensblur::Result<()> {
//! let photo = io::decode_file("portrait.jpg".as_ref(), &io::DecodeOptions::default())?;
//! let matter = Matter::from_installed(&AnalyseOptions::default())?;
//! let analysis = lensblur::analyse(&photo, &matter, &AnalyseOptions::default())?;
//! for strength in [15.0, 30.0, 80.0] {
//!     let out = lensblur::render(&photo, &analysis, &RenderOptions { strength, ..Default::default() })?;
//!     # let _ = out;
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bokeh;
pub mod buffer;
pub mod coc;
pub mod color;
pub mod composite;
pub mod depth;
pub mod error;
pub mod eval;
pub mod grain;
pub mod io;
pub mod matte;
pub mod models;
pub mod pipeline;
pub mod resample;

pub use error::{Error, Result};
pub use matte::Runtime;
pub use pipeline::{analyse, render, AnalyseOptions, Analysis, Matter, RenderOptions};
