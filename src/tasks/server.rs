//! The loopback HTTP server that serves the embedded test page to the browsers.
//!
//! It binds `127.0.0.1` on a free port (never another interface), serves a fixed set of embedded
//! assets and nothing else, and stops when its cancellation token fires.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// The embedded test page (WebGPU matmul, WebNN detection, fault hooks).
pub const INDEX_HTML: &str = include_str!("../../assets/index.html");

/// A running page server.
pub struct PageServer {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl PageServer {
    /// Binds 127.0.0.1 on a free port and starts serving on the current runtime.
    pub async fn start() -> std::io::Result<PageServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = token.cancelled() => break,
                    a = listener.accept() => a,
                };
                let Ok((stream, _)) = accepted else { continue };
                let conn_stop = token.clone();
                tokio::spawn(async move {
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), hyper::service::service_fn(serve));
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

async fn serve(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, ctype, body): (StatusCode, &str, &'static str) = match req.uri().path() {
        "/" | "/index.html" => (StatusCode::OK, "text/html; charset=utf-8", INDEX_HTML),
        "/favicon.ico" => (StatusCode::NO_CONTENT, "text/plain", ""),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp.headers_mut().insert(hyper::header::CACHE_CONTROL, hyper::header::HeaderValue::from_static("no-store"));
    Ok(resp)
}
