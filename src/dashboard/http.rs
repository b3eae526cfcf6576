//! The dashboard's HTTP side (axum): two pages, their embedded scripts and styles, the JSON API,
//! the event stream and `/metrics`, behind one guard.
//!
//! The guard makes the server read-only and closed: only `GET`/`HEAD`; with a token, every
//! request must carry `Authorization: Bearer TOKEN` (401 otherwise); without one (loopback only),
//! the `Host` header must name the loopback address, so a web page the operator visits cannot
//! read the dashboard through DNS rebinding. Every route is a fixed path answered from memory:
//! there is no file system path anywhere in a request's reach.

use super::assets;
use super::metrics;
use super::model::{Model, SseItem};
use crate::breaker::{AggregateCounts, RegistrySnapshot};
use crate::campaign::StatusDoc;
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

/// Read-only, authenticated, loopback-named; security headers on every answer.
async fn guard(State(s): St, req: Request, next: Next) -> Response {
    let mut resp = check(&s.access, req.method(), req.headers()).unwrap_or(next.run(req).await);
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
            if !given.is_some_and(|g| same(g.trim().as_bytes(), token.as_bytes())) {
                let mut r = text(
                    StatusCode::UNAUTHORIZED,
                    "401: this dashboard needs `Authorization: Bearer TOKEN` (the --dashboard-token it was started with)\n",
                );
                r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"stressctl\""));
                return Some(r);
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
        Access { token: token.map(str::to_string), hosts: vec!["127.0.0.1:8080".into(), "localhost:8080".into()] }
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
