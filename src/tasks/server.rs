//! The loopback HTTP server that serves the embedded test page to the browsers.
//!
//! It binds `127.0.0.1` on a free port (never another interface), serves a fixed set of embedded
//! assets and nothing else, and stops when its cancellation token fires.

use super::model::ServedFiles;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The embedded test page (WebGPU matmul, WebNN detection, fault hooks).
pub const INDEX_HTML: &str = include_str!("../../assets/index.html");
/// The WebNN graph, its reference and its check (loaded by the page; also tested with node).
pub const WEBNN_JS: &str = include_str!("../../assets/webnn.js");

/// A running page server.
pub struct PageServer {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl PageServer {
    /// Binds 127.0.0.1 on a free port and serves on `tracker` until `stop` (or the server is
    /// dropped): the run waits for the accept loop and every connection before it ends.
    pub async fn start(stop: CancellationToken, tracker: &TaskTracker) -> std::io::Result<PageServer> {
        PageServer::start_serving(stop, tracker, ServedFiles::default()).await
    }

    /// [`PageServer::start`], also serving the `model` task's files (only those, by exact path).
    pub async fn start_serving(stop: CancellationToken, tracker: &TaskTracker, files: ServedFiles) -> std::io::Result<PageServer> {
        let files = Arc::new(files);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let token = stop.clone();
        let conns = tracker.clone();
        tracker.spawn(async move {
            let mut backoff = Duration::ZERO;
            loop {
                let accepted = tokio::select! {
                    _ = token.cancelled() => break,
                    a = listener.accept() => a,
                };
                let stream = match accepted {
                    Ok((stream, _)) => {
                        backoff = Duration::ZERO;
                        stream
                    }
                    Err(e) => {
                        // out of descriptors (or similar): wait instead of spinning on the error
                        backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                        tracing::warn!(target: "stressctl::tasks", "page server accept: {e}; retrying in {backoff:?}");
                        tokio::select! {
                            _ = token.cancelled() => break,
                            _ = tokio::time::sleep(backoff) => continue,
                        }
                    }
                };
                let conn_stop = token.clone();
                let files = files.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let files = files.clone();
                        async move { serve(req, &files).await }
                    });
                    let conn = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = conn_stop.cancelled() => {}
                    }
                });
            }
        });
        tracing::debug!(target: "stressctl::tasks", %addr, "test page server listening");
        Ok(PageServer { addr, stop })
    }

    /// The page URL, e.g. `http://127.0.0.1:43123/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops accepting and closes open connections.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(req: Request<hyper::body::Incoming>, files: &ServedFiles) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, ctype, body): (StatusCode, &str, Bytes) = match req.uri().path() {
        "/" | "/index.html" => (StatusCode::OK, "text/html; charset=utf-8", Bytes::from_static(INDEX_HTML.as_bytes())),
        "/webnn.js" => (StatusCode::OK, "text/javascript; charset=utf-8", Bytes::from_static(WEBNN_JS.as_bytes())),
        "/favicon.ico" => (StatusCode::NO_CONTENT, "text/plain", Bytes::new()),
        // the model task's files: exact configured paths only, GET only
        path => match files.get(path).await {
            Some(_) if req.method() != hyper::Method::GET => {
                (StatusCode::METHOD_NOT_ALLOWED, "text/plain", Bytes::from_static(b"GET only\n"))
            }
            Some(Ok((body, ctype))) => (StatusCode::OK, ctype, body),
            Some(Err(why)) => (StatusCode::NOT_FOUND, "text/plain", Bytes::from(why)),
            None => (StatusCode::NOT_FOUND, "text/plain", Bytes::from_static(b"not found\n")),
        },
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp.headers_mut().insert(hyper::header::CACHE_CONTROL, hyper::header::HeaderValue::from_static("no-store"));
    Ok(resp)
}
