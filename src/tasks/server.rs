//! The HTTP server that serves the embedded test page (and the `model` task's files) to the
//! browsers.
//!
//! It binds `[server] listen` (by default `127.0.0.1:0`: loopback, a free port) and serves a fixed
//! set of files, nothing taken from the request. Because a server that browsers on other machines
//! can reach is also reachable by anyone else on their network, every path lives under a random
//! prefix of 128 bits drawn for each run (`http://HOST:PORT/<prefix>/`, on loopback too: one
//! behaviour everywhere): a request that does not know it gets 404, as does any method but `GET`
//! and `HEAD` (404 rather than 405, so that nothing tells a prober that a path exists). The prefix
//! is a secret of the run: it is in the page URL handed to the browsers and nowhere else — never
//! logged, stored or reported; [`PageServer::url`] holds it and [`ServeStats`] leaves it out.
//!
//! The page itself is `no-store`; everything it loads (`webnn.js`, the model module,
//! onnxruntime-web, the models) is served under a content-hashed path with
//! `Cache-Control: public, max-age=31536000, immutable`, so a browser fetches each at most once
//! for as long as its profile lives. [`ServeStats`] counts the bytes and requests per file, which
//! the campaign records per phase (`served`).

use super::model::ServedFiles;
use crate::config::addr;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The embedded test page (WebGPU matmul, WebNN detection, fault hooks).
pub const INDEX_HTML: &str = include_str!("../../assets/index.html");
/// The WebNN graph, its reference and its check (loaded by the page; also tested with node).
pub const WEBNN_JS: &str = include_str!("../../assets/webnn.js");

/// The cache header of every content-hashed file: its URL changes with its content, so a browser
/// may keep it for good.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Where the server listens and what URL the browsers are given.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The address to bind.
    pub listen: SocketAddr,
    /// The base URL to advertise (ends with `/`); None: derived from the bound address.
    pub advertise: Option<url::Url>,
    /// A remote worker's `host:port`: when `listen` is an unspecified address (`0.0.0.0`), the
    /// advertised host is this machine's address on the route to it.
    pub toward: Option<String>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions { listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), advertise: None, toward: None }
    }
}

impl ServeOptions {
    /// The options `[server]` of `cfg` gives (validated there, so a parse failure falls back to
    /// the loopback default).
    pub fn for_config(cfg: &crate::config::Config) -> ServeOptions {
        let d = ServeOptions::default();
        let listen = cfg.server.listen.as_deref().and_then(|l| addr::parse_server_listen(l).ok()).unwrap_or(d.listen);
        let advertise = cfg.server.advertise.as_deref().and_then(|a| addr::parse_server_advertise(a).ok());
        let toward = cfg.workers.iter().find_map(|w| match &w.endpoint {
            crate::config::WorkerEndpoint::Remote(u) => {
                addr::remote_host(u)?;
                let u = url::Url::parse(u).ok()?;
                Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?))
            }
            crate::config::WorkerEndpoint::Managed => None,
        });
        ServeOptions { listen, advertise, toward }
    }
}

/// Bytes and requests served, per file (its path after the prefix, e.g.
/// `a/1c0ffee02a3b/ort-wasm-simd-threaded.wasm`), and requests refused with 404.
#[derive(Default, Debug)]
pub struct ServeStats {
    files: Mutex<BTreeMap<String, (u64, u64)>>,
    /// Requests served per client address: where the browsers that loaded the page run (a node's
    /// address, or loopback for this machine's).
    clients: Mutex<BTreeMap<String, u64>>,
    rejected: AtomicU64,
}

impl ServeStats {
    fn served(&self, path: &str, bytes: u64, client: std::net::IpAddr) {
        let mut f = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let e = f.entry(path.to_string()).or_default();
        e.0 += bytes;
        e.1 += 1;
        drop(f);
        *self.clients.lock().unwrap_or_else(|e| e.into_inner()).entry(client.to_string()).or_default() += 1;
    }

    /// What was served since the last call, as the `served` record of a phase:
    /// `{requests, bytes, rejected, files: {path: {requests, bytes}}, clients: {address:
    /// requests}}`; None when nothing was asked for.
    pub fn take(&self) -> Option<Value> {
        let files = std::mem::take(&mut *self.files.lock().unwrap_or_else(|e| e.into_inner()));
        let clients = std::mem::take(&mut *self.clients.lock().unwrap_or_else(|e| e.into_inner()));
        let rejected = self.rejected.swap(0, Ordering::Relaxed);
        if files.is_empty() && rejected == 0 {
            return None;
        }
        let (bytes, requests) = files.values().fold((0, 0), |(b, r), (fb, fr)| (b + fb, r + fr));
        let per: serde_json::Map<String, Value> = files.into_iter().map(|(k, (b, r))| (k, json!({"requests": r, "bytes": b}))).collect();
        Some(json!({"requests": requests, "bytes": bytes, "rejected": rejected, "files": per, "clients": clients}))
    }
}

/// A running page server.
pub struct PageServer {
    addr: SocketAddr,
    url: String,
    stats: Arc<ServeStats>,
    stop: CancellationToken,
}

/// What one server serves: the routes below its prefix.
struct Site {
    prefix: String,
    index: Bytes,
    webnn_path: String,
    files: ServedFiles,
    stats: Arc<ServeStats>,
}

/// 128 random bits from the kernel, hex: the run's path prefix.
fn random_prefix() -> std::io::Result<String> {
    let mut buf = [0u8; 16];
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: the pointer and length describe the unfilled rest of `buf`.
        let n = unsafe { libc::getrandom(buf[got..].as_mut_ptr().cast(), buf.len() - got, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
            continue;
        }
        got += n as usize;
    }
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// This machine's address on the route to `host_port` (no packet is sent: a UDP socket is only
/// connected), for an unspecified listen address.
fn local_ip_toward(host_port: &str) -> Option<IpAddr> {
    use std::net::ToSocketAddrs;
    let target = host_port.to_socket_addrs().ok()?.next()?;
    let any: SocketAddr = if target.is_ipv4() { "0.0.0.0:0".parse().ok()? } else { "[::]:0".parse().ok()? };
    let s = std::net::UdpSocket::bind(any).ok()?;
    s.connect(target).ok()?;
    Some(s.local_addr().ok()?.ip())
}

/// The base URL browsers are given for a server bound at `bound` (ends with `/`, no prefix).
fn base_url(bound: SocketAddr, opts: &ServeOptions) -> String {
    if let Some(a) = &opts.advertise {
        return a.to_string();
    }
    let ip = if bound.ip().is_unspecified() {
        opts.toward.as_deref().and_then(local_ip_toward).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    } else {
        bound.ip()
    };
    format!("http://{}/", SocketAddr::new(ip, bound.port()))
}

impl PageServer {
    /// Binds 127.0.0.1 on a free port and serves on `tracker` until `stop` (or the server is
    /// dropped): the run waits for the accept loop and every connection before it ends.
    pub async fn start(stop: CancellationToken, tracker: &TaskTracker) -> std::io::Result<PageServer> {
        PageServer::start_with(stop, tracker, ServedFiles::default(), &ServeOptions::default()).await
    }

    /// [`PageServer::start`], also serving the `model` task's files (only those, by exact path).
    pub async fn start_serving(stop: CancellationToken, tracker: &TaskTracker, files: ServedFiles) -> std::io::Result<PageServer> {
        PageServer::start_with(stop, tracker, files, &ServeOptions::default()).await
    }

    /// [`PageServer::start_serving`] on the address and URL of `opts` (`[server]`).
    pub async fn start_with(
        stop: CancellationToken,
        tracker: &TaskTracker,
        files: ServedFiles,
        opts: &ServeOptions,
    ) -> std::io::Result<PageServer> {
        let stats = Arc::new(ServeStats::default());
        let webnn_path = format!("webnn.{}.js", super::model::content_hash([WEBNN_JS.as_bytes()]));
        let index = INDEX_HTML.replacen("<script src=\"webnn.js\"></script>", &format!("<script src=\"{webnn_path}\"></script>"), 1);
        let site = Arc::new(Site { prefix: random_prefix()?, index: Bytes::from(index), webnn_path, files, stats: stats.clone() });
        let listener = tokio::net::TcpListener::bind(opts.listen).await?;
        let addr = listener.local_addr()?;
        let url = format!("{}{}/", base_url(addr, opts), site.prefix);
        let token = stop.clone();
        let conns = tracker.clone();
        tracker.spawn(async move {
            let mut backoff = Duration::ZERO;
            loop {
                let accepted = tokio::select! {
                    _ = token.cancelled() => break,
                    a = listener.accept() => a,
                };
                let (stream, peer) = match accepted {
                    Ok((stream, peer)) => {
                        backoff = Duration::ZERO;
                        (stream, peer.ip())
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
                let site = site.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let site = site.clone();
                        async move { serve(req, &site, peer).await }
                    });
                    let conn = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = conn_stop.cancelled() => {}
                    }
                });
            }
        });
        // the address only: the URL carries the prefix, which is never logged
        tracing::info!(target: "stressctl::tasks", %addr, "test page server listening");
        Ok(PageServer { addr, url, stats, stop })
    }

    /// The page URL browsers are given, prefix included, e.g.
    /// `http://127.0.0.1:43123/6f1e…c2/`. A secret of the run: pass it to browsers, never to a
    /// log, the store or a report.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The bound address (no prefix: safe to log).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether only this machine can reach it (bound to a loopback address).
    pub fn loopback_only(&self) -> bool {
        self.addr.ip().is_loopback()
    }

    /// Bytes and requests served so far.
    pub fn stats(&self) -> Arc<ServeStats> {
        self.stats.clone()
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

type Answer = (StatusCode, &'static str, Bytes, &'static str);

fn not_found() -> Answer {
    (StatusCode::NOT_FOUND, "text/plain", Bytes::from_static(b"not found\n"), "no-store")
}

async fn serve(req: Request<hyper::body::Incoming>, site: &Site, peer: std::net::IpAddr) -> Result<Response<Full<Bytes>>, Infallible> {
    let head = req.method() == Method::HEAD;
    let path = if matches!(*req.method(), Method::GET | Method::HEAD) {
        req.uri().path().strip_prefix('/').and_then(|p| p.strip_prefix(site.prefix.as_str())).and_then(|p| p.strip_prefix('/'))
    } else {
        None
    };
    let (status, ctype, body, cache) = match path {
        None => not_found(),
        Some("" | "index.html") => (StatusCode::OK, "text/html; charset=utf-8", site.index.clone(), "no-store"),
        Some(p) if p == site.webnn_path => {
            (StatusCode::OK, "text/javascript; charset=utf-8", Bytes::from_static(WEBNN_JS.as_bytes()), IMMUTABLE)
        }
        Some("favicon.ico") => (StatusCode::NO_CONTENT, "text/plain", Bytes::new(), "no-store"),
        // the model task's files: exact configured paths only
        Some(p) => match site.files.get(p).await {
            Some(Ok((body, ctype))) => (StatusCode::OK, ctype, body, IMMUTABLE),
            Some(Err(why)) => (StatusCode::NOT_FOUND, "text/plain", Bytes::from(why), "no-store"),
            None => not_found(),
        },
    };
    match path {
        Some(p) if status.is_success() => {
            let label = if p.is_empty() { "index.html" } else { p };
            site.stats.served(label, if head { 0 } else { body.len() as u64 }, peer);
        }
        _ => {
            site.stats.rejected.fetch_add(1, Ordering::Relaxed);
        }
    }
    let len = body.len();
    let mut resp = Response::new(Full::new(if head { Bytes::new() } else { body }));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    if head {
        resp.headers_mut().insert(hyper::header::CONTENT_LENGTH, hyper::header::HeaderValue::from(len));
    }
    resp.headers_mut().insert(hyper::header::CACHE_CONTROL, hyper::header::HeaderValue::from_static(cache));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One raw HTTP/1.1 request; returns (status, headers+body text).
    async fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (code, text)
    }

    #[tokio::test]
    async fn only_get_and_head_under_the_prefix_are_answered() {
        let tracker = TaskTracker::new();
        let s = PageServer::start(CancellationToken::new(), &tracker).await.unwrap();
        let url = s.url();
        let prefix = url.trim_end_matches('/').rsplit('/').next().unwrap().to_string();
        assert_eq!(prefix.len(), 32, "128 bits in hex: {url}");
        assert!(prefix.chars().all(|c| c.is_ascii_hexdigit()));
        let other = PageServer::start(CancellationToken::new(), &tracker).await.unwrap();
        assert_ne!(other.url().rsplit('/').nth(1), Some(prefix.as_str()), "a new prefix per server");
        let a = s.local_addr();
        let (code, page) = request(a, "GET", &format!("/{prefix}/")).await;
        assert_eq!(code, 200, "{page}");
        assert!(page.contains("cache-control: no-store"), "{page}");
        let webnn = page.split("<script src=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_string();
        assert!(webnn.starts_with("webnn.") && webnn.ends_with(".js") && webnn.len() > 12, "{webnn}");
        let (code, js) = request(a, "GET", &format!("/{prefix}/{webnn}")).await;
        assert_eq!(code, 200);
        assert!(js.contains(IMMUTABLE), "{js}");
        let (code, head) = request(a, "HEAD", &format!("/{prefix}/{webnn}")).await;
        assert_eq!(code, 200);
        assert!(head.contains(&format!("content-length: {}", WEBNN_JS.len())), "{head}");
        for (method, path) in [
            ("GET", "/".to_string()),
            ("GET", "/index.html".to_string()),
            ("GET", format!("/{webnn}")),
            ("GET", format!("/{}/", &prefix[..31])),
            ("GET", format!("/{prefix}x/")),
            ("GET", format!("/{prefix}/nothing")),
            ("POST", format!("/{prefix}/")),
            ("PUT", format!("/{prefix}/{webnn}")),
            ("DELETE", format!("/{prefix}/")),
            ("OPTIONS", format!("/{prefix}/")),
        ] {
            let (code, text) = request(a, method, &path).await;
            assert_eq!(code, 404, "{method} {path}: {text}");
        }
        let stats = s.stats().take().unwrap();
        assert_eq!(stats["rejected"], 10, "{stats}");
        assert_eq!(stats["files"][&webnn]["requests"], 2, "GET and HEAD: {stats}");
        assert_eq!(stats["files"][&webnn]["bytes"], WEBNN_JS.len(), "HEAD sends no body: {stats}");
        assert_eq!(stats["files"]["index.html"]["requests"], 1);
        assert!(!stats.to_string().contains(&prefix), "the prefix stays out of the figures: {stats}");
        assert!(s.stats().take().is_none(), "take() starts over");
    }

    #[test]
    fn the_advertised_url_comes_from_advertise_or_the_bound_address() {
        let bound: SocketAddr = "192.0.2.7:8099".parse().unwrap();
        assert_eq!(base_url(bound, &ServeOptions::default()), "http://192.0.2.7:8099/");
        let adv = ServeOptions { advertise: Some(addr::parse_server_advertise("http://lab.example:80/st").unwrap()), ..Default::default() };
        assert_eq!(base_url(bound, &adv), "http://lab.example/st/");
        // unspecified: this machine's address on the route to the worker (loopback here)
        let any: SocketAddr = "0.0.0.0:8099".parse().unwrap();
        let toward = ServeOptions { toward: Some("127.0.0.1:4444".into()), ..Default::default() };
        assert_eq!(base_url(any, &toward), "http://127.0.0.1:8099/");
        assert_eq!(base_url("[::1]:5".parse().unwrap(), &ServeOptions::default()), "http://[::1]:5/");
    }
}
