//! # lensblur-serve
//!
//! The `lensblur serve` web app and HTTP API (axum). The page (embedded HTML/CSS/JS, no CDN) uploads
//! a photo once, which is analysed once ([`lensblur::analyse`]) and kept in an in-memory session;
//! every slider move then renders a ≤ 2 MP preview from a downscaled copy of the analysis
//! ([`lensblur::Analysis::downscaled`]), which matches the full-resolution result because strength
//! is resolution independent. The stateless API (`/v1/blur`, `/v1/matte`, `/v1/cutout`) does the
//! whole pipeline per request.
//!
//! CPU work never runs on the async runtime: heavy jobs go through a bounded queue
//! ([`jobs::Jobs`], 503 + `Retry-After` when full), preview renders through a small semaphore, both
//! on tokio's blocking pool. Limits: request body size, pixel count (checked from the header before
//! decoding), per-request timeout. Errors are JSON `{"error": code, "detail": text}`.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use lensblur::{AnalyseOptions, Matter};
//! let matter = Matter::from_installed(&AnalyseOptions::default())?;
//! lensblur_serve::run(lensblur_serve::Config::default(), matter)?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod jobs;
pub mod openapi;
pub mod params;
pub mod sessions;

mod handlers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use lensblur::{AnalyseOptions, Matter};
use tokio::sync::Semaphore;

use crate::jobs::Jobs;
use crate::sessions::Sessions;

/// Limits that protect the server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body in bytes. Default: 50 MiB.
    pub max_body_bytes: usize,
    /// Largest image in pixels (checked from the header before decoding). Default: 50 MP.
    pub max_pixels: u64,
    /// Heavy jobs (analysis, full-resolution render) running at once; each already uses every
    /// core. Default: 1.
    pub workers: usize,
    /// Heavy jobs allowed to wait; more are refused with 503. Default: 8.
    pub queue: usize,
    /// Per-request processing limit (waiting included); 504 past it. Default: 120 s.
    pub timeout: Duration,
    /// Memory bound of the session cache, bytes. Default: 2 GiB.
    pub cache_bytes: usize,
    /// Sessions unused this long are dropped. Default: 30 min.
    pub session_idle: Duration,
    /// Preview size bound in pixels. Default: 2 MP.
    pub preview_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 50 << 20,
            max_pixels: 50_000_000,
            workers: 1,
            queue: 8,
            timeout: Duration::from_secs(120),
            cache_bytes: 2 << 30,
            session_idle: Duration::from_secs(30 * 60),
            preview_pixels: 2_000_000,
        }
    }
}

/// Server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on. Default: 127.0.0.1:8080.
    pub addr: SocketAddr,
    /// Limits.
    pub limits: Limits,
    /// Analysis options (refinement method; the model is passed separately, already loaded).
    pub analyse: AnalyseOptions,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            limits: Limits::default(),
            analyse: AnalyseOptions::default(),
        }
    }
}

/// Shared state of one server.
#[derive(Debug)]
pub struct State {
    /// The loaded model.
    pub matter: Matter,
    /// Analysis options.
    pub analyse: AnalyseOptions,
    /// Limits.
    pub limits: Limits,
    /// Heavy-job queue.
    pub jobs: Jobs,
    /// Preview renders running at once (cheap, but CPU-bound: never more than the cores).
    pub previews: Arc<Semaphore>,
    /// Session cache.
    pub sessions: Sessions,
}

/// The state handlers share.
pub type AppState = Arc<State>;

impl State {
    /// State for `config` with an already-loaded model.
    pub fn new(config: &Config, matter: Matter) -> AppState {
        let l = &config.limits;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(State {
            matter,
            analyse: config.analyse.clone(),
            limits: l.clone(),
            jobs: Jobs::new(l.workers, l.queue),
            previews: Arc::new(Semaphore::new(cores)),
            sessions: Sessions::new(l.cache_bytes, l.session_idle),
        })
    }
}

/// Every route: (path, method, handler). The router and [`route_table`] are both built from this
/// one list, and a test checks the OpenAPI document against it.
fn routes() -> Vec<(&'static str, &'static str, MethodRouter<AppState>)> {
    use handlers as h;
    vec![
        ("/", "get", get(h::index)),
        ("/app.js", "get", get(h::app_js)),
        ("/app.css", "get", get(h::app_css)),
        ("/healthz", "get", get(h::healthz)),
        ("/openapi.json", "get", get(h::openapi)),
        ("/v1/blur", "post", post(h::blur)),
        ("/v1/matte", "post", post(h::matte)),
        ("/v1/cutout", "post", post(h::cutout)),
        ("/v1/sessions", "post", post(h::create_session)),
        ("/v1/sessions/{id}", "get", get(h::session_info)),
        (
            "/v1/sessions/{id}",
            "delete",
            axum::routing::delete(h::delete_session),
        ),
        ("/v1/sessions/{id}/preview", "get", get(h::preview)),
        ("/v1/sessions/{id}/original", "get", get(h::original)),
        ("/v1/sessions/{id}/matte", "get", get(h::matte_overlay)),
        ("/v1/sessions/{id}/download", "get", get(h::download)),
    ]
}

/// (path, lower-case method) of every route the server answers.
pub fn route_table() -> Vec<(String, String)> {
    routes()
        .into_iter()
        .map(|(p, m, _)| (p.to_string(), m.to_string()))
        .collect()
}

/// The router for `state`.
pub fn router(state: AppState) -> Router {
    let mut merged: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for (path, _, mr) in routes() {
        match merged.iter_mut().find(|(p, _)| *p == path) {
            Some((_, existing)) => {
                let prev = std::mem::take(existing);
                *existing = prev.merge(mr);
            }
            None => merged.push((path, mr)),
        }
    }
    let mut r = Router::new();
    for (path, mr) in merged {
        r = r.route(path, mr.fallback(handlers::method_not_allowed));
    }
    r.fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .with_state(state)
}

/// Serves on an already-bound listener until the future `shutdown` resolves.
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Idle sessions are dropped even when nobody calls in.
    let sweeper = {
        let state = state.clone();
        tokio::spawn(async move {
            let every = (state.limits.session_idle / 4)
                .clamp(Duration::from_secs(1), Duration::from_secs(60));
            loop {
                tokio::time::sleep(every).await;
                state.sessions.expire();
            }
        })
    };
    let out = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    sweeper.abort();
    out
}

/// Binds `config.addr` and serves until Ctrl-C.
pub async fn serve(config: Config, matter: Matter) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    tracing::info!("listening on http://{addr}/");
    eprintln!("lensblur: serving on http://{addr}/ (Ctrl-C to stop)");
    let state = State::new(&config, matter);
    serve_listener(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// [`serve`] on its own tokio runtime (for callers without one, like the CLI).
pub fn run(config: Config, matter: Matter) -> std::io::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(serve(config, matter))
}
