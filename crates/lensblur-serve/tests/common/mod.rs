//! Test harness: a real server on 127.0.0.1:0 (own tokio runtime, real u2netp from the shared
//! mirror) and a tiny blocking HTTP client with multipart bodies.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use lensblur::matte::RtenBackend;
use lensblur::Matter;
use lensblur_serve::{Config, Limits, State};

pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

pub fn photo(rel: &str) -> Vec<u8> {
    let p = shared().join("data").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn matter() -> Matter {
    let spec = lensblur::models::find("u2netp").expect("u2netp in manifest");
    let path = shared().join("models").join(spec.file);
    let backend = RtenBackend::load(&path, spec.input.clone(), 0).expect("load u2netp");
    Matter::new(Box::new(backend))
}

/// A running server; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(limits: Limits) -> Server {
        let config = Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            limits,
            ..Config::default()
        };
        let state = State::new(&config, matter());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(config.addr)
                    .await
                    .expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send");
                lensblur_serve::serve_listener(listener, state, async {
                    let _ = stop_rx.await;
                })
                .await
                .expect("serve");
            });
        });
        let addr = addr_rx.recv().expect("server address");
        Server {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A response: status, headers we care about, body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub server_timing: Option<String>,
    pub disposition: Option<String>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        })
    }

    /// Asserts a JSON error with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status,
            status,
            "{:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert!(
            self.content_type.starts_with("application/json"),
            "{}",
            self.content_type
        );
        let j = self.json();
        assert_eq!(j["error"], code, "{j}");
        assert!(
            j["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "no detail: {j}"
        );
    }
}

fn read(resp: ureq::Response) -> Resp {
    let status = resp.status();
    let content_type = resp.header("content-type").unwrap_or("").to_string();
    let retry_after = resp.header("retry-after").map(str::to_string);
    let server_timing = resp.header("server-timing").map(str::to_string);
    let disposition = resp.header("content-disposition").map(str::to_string);
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("read body");
    Resp {
        status,
        content_type,
        retry_after,
        server_timing,
        disposition,
        body,
    }
}

/// An HTTP answer of any status, or the transport error when there was none.
fn settle(r: Result<ureq::Response, ureq::Error>) -> Result<Resp, String> {
    match r {
        Ok(resp) => Ok(read(resp)),
        Err(ureq::Error::Status(_, resp)) => Ok(read(resp)),
        Err(e) => Err(e.to_string()),
    }
}

fn finish(r: Result<ureq::Response, ureq::Error>) -> Resp {
    settle(r).unwrap_or_else(|e| panic!("transport error: {e}"))
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(300))
        .build()
}

pub fn get(url: &str) -> Resp {
    finish(agent().get(url).call())
}

pub fn request(method: &str, url: &str, content_type: Option<&str>, body: &[u8]) -> Resp {
    try_request(method, url, content_type, body).unwrap_or_else(|e| panic!("transport error: {e}"))
}

/// Like [`request`], but a transport error (no HTTP answer at all) is returned, not a failure.
pub fn try_request(
    method: &str,
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Resp, String> {
    let mut req = agent().request(method, url);
    if let Some(ct) = content_type {
        req = req.set("Content-Type", ct);
    }
    settle(req.send_bytes(body))
}

pub const BOUNDARY: &str = "lensblur-test-boundary-7MA4YWxkTrZu0gW";

/// A multipart/form-data body; `image` (if any) first, then text fields.
pub fn multipart(image: Option<&[u8]>, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    if let Some(img) = image {
        b.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"photo\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(img);
        b.extend_from_slice(b"\r\n");
    }
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

pub fn post_form(url: &str, image: Option<&[u8]>, fields: &[(&str, &str)]) -> Resp {
    request(
        "POST",
        url,
        Some(&format!("multipart/form-data; boundary={BOUNDARY}")),
        &multipart(image, fields),
    )
}

/// Like [`post_form`], but a transport error is returned instead of failing the test: a server that
/// refuses an oversized body may answer and hang up before the client has finished sending it, and
/// the client then sees a broken pipe or a reset instead of the answer.
pub fn try_post_form(
    url: &str,
    image: Option<&[u8]>,
    fields: &[(&str, &str)],
) -> Result<Resp, String> {
    try_request(
        "POST",
        url,
        Some(&format!("multipart/form-data; boundary={BOUNDARY}")),
        &multipart(image, fields),
    )
}

pub fn decode(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes).expect("response decodes as an image")
}
