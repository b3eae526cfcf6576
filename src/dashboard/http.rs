//! The dashboard's HTTP side (axum): two pages, their embedded scripts and styles, the JSON API,
//! the event stream and `/metrics`, behind one guard.
//!
//! The guard makes the server read-only and closed: only `GET`/`HEAD`; with a token, every
//! request must carry `Authorization: Bearer TOKEN` or the session cookie that `GET /login?token=`
//! sets for a browser, which cannot send a bearer header on page loads or with `EventSource`
//! (401 otherwise; both compared in constant time); without one (loopback only),
//! the `Host` header must name the loopback address, so a web page the operator visits cannot
//! read the dashboard through DNS rebinding. Every route is a fixed path answered from memory:
//! there is no file system path anywhere in a request's reach.

use super::assets;
use super::metrics;
use super::model::{Model, SseItem};
use crate::breaker::{AggregateCounts, RegistrySnapshot};
use crate::control::status::StatusDoc;
use crate::progress::{BreakerFeed, StatusFeed};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// The policy of [`Shared::guard`].
#[derive(Clone, Debug)]
pub struct Access {
    /// Required bearer token.
    pub token: Option<String>,
    /// `Host` values accepted when there is no token.
    pub hosts: Vec<String>,
    /// The session cookie's value, set by `/login` for a browser that gave the token: 32 random
    /// bytes of this server's own, so the token itself never sits in a cookie jar and a restart
    /// ends every session. None without a token.
    pub session: Option<String>,
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "stressctl_session";

impl Access {
    /// The policy for `token` (with a fresh session secret) or, without one, for the loopback
    /// `hosts`. Errors only when the kernel gives no random bytes.
    pub fn new(token: Option<String>, hosts: Vec<String>) -> Result<Access, String> {
        let session = match token {
            Some(_) => Some(random_hex(32)?),
            None => None,
        };
        Ok(Access { token, hosts, session })
    }
}

/// `n` random bytes from the kernel (`getrandom(2)`), as hex.
fn random_hex(n: usize) -> Result<String, String> {
    let mut buf = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        // SAFETY: the pointer and length describe the unfilled rest of `buf`, which outlives the call.
        let r = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), n - filled, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("no random bytes for the dashboard's session secret: {e}"));
        }
        filled += r as usize;
    }
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// What every handler reads.
pub struct Shared {
    /// The campaign.
    pub model: Arc<Mutex<Model>>,
    /// Live status (a running campaign only).
    pub status: Option<StatusFeed>,
    /// Live breakers (a running campaign only).
    pub breakers: Option<BreakerFeed>,
    /// `/metrics`.
    pub registry: Registry,
    /// Who may ask.
    pub access: Access,
    /// Cancelled when the server stops: event streams end then (a graceful shutdown waits for
    /// every connection, and an event stream would never end by itself).
    pub stop: tokio_util::sync::CancellationToken,
}

type St = State<Arc<Shared>>;

/// The router of a dashboard.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(|| async { page(assets::OVERVIEW_HTML) }))
        .route("/circuit-breakers", get(|| async { page(assets::BREAKERS_HTML) }))
        .route("/assets/dashboard.js", get(|| async { asset("text/javascript; charset=utf-8", assets::DASHBOARD_JS) }))
        .route("/assets/dashboard.css", get(|| async { asset("text/css; charset=utf-8", assets::DASHBOARD_CSS) }))
        .route("/assets/uPlot.iife.min.js", get(|| async { asset("text/javascript; charset=utf-8", assets::UPLOT_JS) }))
        .route("/assets/uPlot.min.css", get(|| async { asset("text/css; charset=utf-8", assets::UPLOT_CSS) }))
        .route("/assets/uPlot.LICENSE.txt", get(|| async { asset("text/plain; charset=utf-8", assets::UPLOT_LICENSE) }))
        .route("/login", get(login))
        .route("/api/status", get(api_status))
        .route("/api/circuit-breakers", get(api_breakers))
        .route("/api/overview", get(api_overview))
        .route("/api/events", get(api_events))
        .route("/metrics", get(api_metrics))
        .fallback(|| async { text(StatusCode::NOT_FOUND, "not found: this dashboard serves /, /circuit-breakers, /api/status, /api/circuit-breakers, /api/overview, /api/events and /metrics\n") })
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

fn text(code: StatusCode, body: &'static str) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn page(html: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn json<T: Serialize>(v: &T) -> Response {
    match serde_json::to_string(v) {
        Ok(s) => ([(header::CONTENT_TYPE, "application/json")], s).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode: {e}\n")).into_response(),
    }
}

/// Equal in time whatever the first differing byte (a token is compared).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `GET /login?token=TOKEN`: for a browser. The right token sets the session cookie (HttpOnly,
/// SameSite=Strict) and redirects to `/` (so the token leaves the address bar); a wrong or
/// missing one is a 401. Without a token there is nothing to log in to: a redirect to `/`.
async fn login(State(s): St, uri: axum::http::Uri) -> Response {
    let (Some(token), Some(session)) = (&s.access.token, &s.access.session) else {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    };
    let given = uri.query().unwrap_or("").split('&').find_map(|kv| kv.strip_prefix("token=")).map(percent_decode).unwrap_or_default();
    if !same(given.as_bytes(), token.as_bytes()) {
        return unauthorized();
    }
    let cookie = format!("{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/");
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `%XX` and `+` of a query value decoded (a token is printable ASCII; anything else stays as
/// written and simply does not match).
fn percent_decode(v: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16);
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unauthorized() -> Response {
    let mut r = text(
        StatusCode::UNAUTHORIZED,
        "401: this dashboard needs `Authorization: Bearer TOKEN` (the --dashboard-token it was started with); in a browser, open /login?token=TOKEN once\n",
    );
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"stressctl\""));
    r
}

/// Whether the request carries the session cookie `/login` set.
fn has_session(headers: &HeaderMap, session: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
        .any(|v| same(v.as_bytes(), session.as_bytes()))
}

/// Read-only, authenticated, loopback-named; security headers on every answer.
async fn guard(State(s): St, req: Request, next: Next) -> Response {
    let login = req.uri().path() == "/login";
    let refused = check(&s.access, req.method(), req.headers()).filter(|r| !(login && r.status() == StatusCode::UNAUTHORIZED));
    let mut resp = match refused {
        Some(r) => r,
        None => next.run(req).await,
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The refusal for a request the guard turns away, if it does.
fn check(access: &Access, method: &Method, headers: &HeaderMap) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "the dashboard is read-only (GET only); stop a campaign with `stressctl emergency-stop`\n",
        );
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Some(r);
    }
    match &access.token {
        Some(token) => {
            let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
            let bearer = given.is_some_and(|g| same(g.trim().as_bytes(), token.as_bytes()));
            if !bearer && !access.session.as_deref().is_some_and(|s| has_session(headers, s)) {
                return Some(unauthorized());
            }
        }
        None => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !access.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
                return Some(text(
                    StatusCode::FORBIDDEN,
                    "403: the Host header does not name this loopback dashboard (DNS rebinding guard); open it as http://127.0.0.1:PORT/\n",
                ));
            }
        }
    }
    None
}

impl Shared {
    fn status_doc(&self) -> StatusDoc {
        let live = self.status.as_ref().and_then(|f| f());
        let m = self.model.lock().unwrap_or_else(|e| e.into_inner());
        match live {
            Some(mut d) => {
                if m.meta().ended {
                    d.state = "ended".into();
                }
                d
            }
            None => {
                let mut d = m.status_doc();
                if self.status.is_some() {
                    // the run is over (its feed is gone): it ended here, whatever the store says yet
                    d.state = "ended".into();
                }
                d
            }
        }
    }

    fn breakers(&self) -> RegistrySnapshot {
        if let Some(s) = self.breakers.as_ref().and_then(|f| f()) {
            return s;
        }
        let m = self.model.lock().unwrap_or_else(|e| e.into_inner());
        m.final_snapshot().cloned().unwrap_or_else(|| RegistrySnapshot {
            aggregate: AggregateCounts { average_health: 100.0, ..AggregateCounts::default() },
            ..RegistrySnapshot::default()
        })
    }
}

async fn api_status(State(s): St) -> Response {
    json(&s.status_doc())
}

async fn api_breakers(State(s): St) -> Response {
    json(&s.breakers())
}

async fn api_overview(State(s): St) -> Response {
    let status = s.status.is_some().then(|| s.status_doc());
    let o = s.model.lock().unwrap_or_else(|e| e.into_inner()).overview(status);
    json(&o)
}

async fn api_metrics(State(s): St) -> Response {
    match metrics::encode(&s.registry) {
        Ok(body) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response(),
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the metrics\n"),
    }
}

fn sse_event(item: &SseItem) -> SseEvent {
    SseEvent::default().id(item.id.to_string()).data(item.json.as_str())
}

/// `GET /api/events`: the events kept (after `Last-Event-ID`), then every new one, as
/// Server-Sent Events (`id:` the sequence number, `data:` the event as JSON). A page that falls
/// more than the bus capacity behind gets an `event: lagged` with the number it missed.
async fn api_events(State(s): St, headers: HeaderMap) -> Response {
    let after = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
    let (replay, rx) = s.model.lock().unwrap_or_else(|e| e.into_inner()).subscribe(after);
    // the stream ends after `campaign_ended` (the last event there is), so the page's
    // connection closes cleanly instead of being cut when the process exits
    let state = (VecDeque::from(replay), rx, s.stop.clone(), false);
    let stream = futures_util::stream::unfold(state, |(mut replay, mut rx, stop, done)| async move {
        if done {
            return None;
        }
        let item = match replay.pop_front() {
            Some(item) => item,
            None => {
                let next = tokio::select! {
                    r = rx.recv() => r,
                    _ = stop.cancelled() => return None,
                };
                match next {
                    Ok(item) => item,
                    Err(RecvError::Lagged(n)) => {
                        return Some((
                            Ok::<_, Infallible>(SseEvent::default().event("lagged").data(n.to_string())),
                            (replay, rx, stop, false),
                        ))
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        };
        let last = item.last;
        Some((Ok(sse_event(&item)), (replay, rx, stop, last)))
    });
    let mut r = Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response();
    r.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(token: Option<&str>) -> Access {
        Access::new(token.map(str::to_string), vec!["127.0.0.1:8080".into(), "localhost:8080".into()]).unwrap()
    }

    #[test]
    fn the_session_cookie_is_accepted_like_the_bearer_and_only_the_right_one() {
        let a = access(Some("0123456789abcdef"));
        let session = a.session.clone().unwrap();
        assert_eq!(session.len(), 64);
        assert_ne!(Some(session.clone()), access(Some("0123456789abcdef")).session, "each server its own secret");
        let get = Method::GET;
        let with = |c: &str| check(&a, &get, &headers(&[("cookie", c)])).map(|r| r.status());
        assert_eq!(with(&format!("a=b; {SESSION_COOKIE}={session}")), None);
        assert_eq!(with(&format!("{SESSION_COOKIE}={}", &session[..63])), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(with(&format!("{SESSION_COOKIE}=0123456789abcdef")), Some(StatusCode::UNAUTHORIZED), "the token is not a session");
        assert_eq!(with(&format!("x{SESSION_COOKIE}={session}")), Some(StatusCode::UNAUTHORIZED));
        assert!(access(None).session.is_none());
        assert_eq!(percent_decode("ab%2Fc%3d+d%zz%4"), "ab/c= d%zz%4");
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_token_is_required_on_every_request_when_set() {
        let a = access(Some("0123456789abcdef"));
        let get = Method::GET;
        assert_eq!(check(&a, &get, &headers(&[])).map(|r| r.status()), Some(StatusCode::UNAUTHORIZED));
        let wrong = headers(&[("authorization", "Bearer 0123456789abcdeX")]);
        assert_eq!(check(&a, &get, &wrong).map(|r| r.status()), Some(StatusCode::UNAUTHORIZED));
        let right = headers(&[("authorization", "Bearer 0123456789abcdef")]);
        assert!(check(&a, &get, &right).is_none());
    }

    #[test]
    fn without_a_token_only_loopback_host_names_and_reads_pass() {
        let a = access(None);
        assert!(check(&a, &Method::GET, &headers(&[("host", "127.0.0.1:8080")])).is_none());
        assert!(check(&a, &Method::GET, &headers(&[("host", "LOCALHOST:8080")])).is_none());
        assert_eq!(check(&a, &Method::GET, &headers(&[("host", "evil.example:8080")])).map(|r| r.status()), Some(StatusCode::FORBIDDEN));
        assert_eq!(
            check(&a, &Method::POST, &headers(&[("host", "127.0.0.1:8080")])).map(|r| r.status()),
            Some(StatusCode::METHOD_NOT_ALLOWED)
        );
    }
}
