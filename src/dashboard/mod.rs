//! The dashboard: a small HTTP server (axum) that shows a campaign while it runs
//! (`launch --dashboard`) or from its store afterwards (`stressctl dashboard ID`).
//!
//! - [`model`] is what is known about the campaign (events, op windows, guardian samples), fed
//!   from the event bus and by following the store; [`series`] buckets the time series;
//!   [`source`] reads a store; [`metrics`] writes `/metrics`; [`http`] routes and guards;
//!   [`assets`] are the embedded pages and the vendored chart library.
//! - Loopback by default; any other address needs a bearer token ([`Listen::check`]).
//! - The server only reads: it never writes the store, never controls the campaign (stopping
//!   stays on the 0600 control socket) and serves no file from disk.
//! - The live dashboard runs on a thread and runtime of its own, not on the campaign's one
//!   runtime thread: a scrape or a page waits neither for the ops' work nor for the campaign's
//!   blocking steps (closing sessions, writing the reports: /metrics waited 5 s at a campaign's
//!   end when they shared it), and its work never delays an op. It stops when the campaign's
//!   runtime is dropped, as it did when it ran there. Store reads run on its blocking pool.
//!   Its threads run at a higher priority than the browsers (`confine::priority`): on a host the
//!   campaign saturates, an answer would otherwise wait behind every browser thread.

pub mod assets;
pub mod http;
pub mod metrics;
pub mod model;
pub mod nodes;
pub mod series;
pub mod source;

use crate::config::addr::{check_token, parse_addr};
use crate::events::EventBus;
use crate::progress::{BreakerFeed, StatusFeed};
use model::{Limits, Model};
use source::StoreFollower;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// How often the dashboard reads the new op windows and samples from the store.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A checked listen address and its token.
#[derive(Clone, Debug, PartialEq)]
pub struct Listen {
    /// Address to bind.
    pub addr: SocketAddr,
    /// Bearer token every request must carry.
    pub token: Option<String>,
}

impl Listen {
    /// Checks `addr` (`IP:PORT`, `[IPv6]:PORT` or `localhost:PORT`) and the token: a non-loopback
    /// address needs a token of at least [`MIN_TOKEN_CHARS`](crate::config::addr::MIN_TOKEN_CHARS) characters. The error is the line
    /// to print (bad usage: exit 2).
    pub fn check(addr: &str, token: Option<&str>) -> Result<Listen, String> {
        let addr = parse_addr(addr)?;
        let token = token.map(str::trim).filter(|t| !t.is_empty()).map(str::to_string);
        if let Some(t) = &token {
            check_token(t)?;
        }
        if !addr.ip().is_loopback() && token.is_none() {
            return Err(format!(
                "dashboard address {addr} is not loopback: anyone who can reach it could read the campaign; give --dashboard-token TOKEN (or STRESSCTL_DASHBOARD_TOKEN) and send it as `Authorization: Bearer TOKEN`, or listen on 127.0.0.1"
            ));
        }
        Ok(Listen { addr, token })
    }

    /// Binds the address now (before the campaign starts, so a port in use fails at once).
    pub fn bind(&self) -> Result<Bound, String> {
        let l = std::net::TcpListener::bind(self.addr)
            .map_err(|e| format!("cannot listen on {} for the dashboard: {e} (choose another address, e.g. 127.0.0.1:0)", self.addr))?;
        l.set_nonblocking(true).map_err(|e| format!("dashboard socket {}: {e}", self.addr))?;
        let local = l.local_addr().map_err(|e| format!("dashboard socket {}: {e}", self.addr))?;
        let hosts = if local.ip().is_loopback() {
            let p = local.port();
            vec![format!("127.0.0.1:{p}"), format!("localhost:{p}"), format!("[::1]:{p}"), local.to_string()]
        } else {
            Vec::new()
        };
        Ok(Bound { listener: l, local, access: http::Access::new(self.token.clone(), hosts)? })
    }
}

/// A bound dashboard socket, not serving yet.
pub struct Bound {
    listener: std::net::TcpListener,
    local: SocketAddr,
    access: http::Access,
}

impl Bound {
    /// The address it listens on (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The URL to print.
    pub fn url(&self) -> String {
        format!("http://{}/", self.local)
    }

    /// Serves `shared` until its `stop` (or the runtime ends).
    async fn serve(self, shared: Arc<http::Shared>) {
        let stop = shared.stop.clone();
        let listener = match tokio::net::TcpListener::from_std(self.listener) {
            Ok(l) => l,
            Err(e) => {
                crate::fmt::warn(&format!("stressctl: dashboard {}: {e}; the campaign goes on without it", self.local));
                return;
            }
        };
        let app = http::router(shared);
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await {
            crate::fmt::warn(&format!("stressctl: dashboard {} stopped: {e}; the campaign goes on without it", self.local));
        }
    }
}

/// What the live dashboard needs from `launch` besides the run's feeds.
pub struct LiveSetup {
    /// The bound socket.
    pub bound: Bound,
    /// The campaign's store (followed for op windows and samples).
    pub store: PathBuf,
    /// Guardian thresholds per phase, from the config in force.
    pub limits: Limits,
    /// Planned duration (chooses the bucket width).
    pub planned: Duration,
}

/// Starts the live dashboard of the run whose bus and feeds are given. Call it from
/// `Campaign::on_start` (inside the runtime, before the first event): the subscription is taken
/// here, so no event is missed.
pub fn start_live(setup: LiveSetup, bus: &EventBus, status: StatusFeed, breakers: BreakerFeed) {
    let mut rx = bus.subscribe();
    let follower = match StoreFollower::open(&setup.store).and_then(|f| f.campaign().map(|c| (f, c))) {
        Ok(x) => x,
        Err(e) => {
            crate::fmt::warn(&format!("stressctl: the dashboard cannot read the campaign's store: {e}; the campaign goes on without it"));
            return;
        }
    };
    let (mut follower, c) = follower;
    // Events already stored come from a previous process (a resume): read them from the store,
    // every later one from the bus.
    if let Err(e) = follower.limit_events_to_now() {
        crate::fmt::warn(&format!("stressctl: the dashboard cannot read the campaign's store: {e}; the campaign goes on without it"));
        return;
    }
    let width = series::bucket_width(setup.planned.as_millis().min(i64::MAX as u128) as i64);
    let model = Arc::new(Mutex::new(Model::new(&c.id, &c.profile, c.started_ms, width, setup.limits, "live")));
    let stop = CancellationToken::new();
    let shared = Arc::new(http::Shared {
        registry: metrics::registry(model.clone(), Some(breakers.clone())),
        model: model.clone(),
        status: Some(status),
        breakers: Some(breakers),
        access: setup.bound.access.clone(),
        stop: stop.clone(),
    });
    // the dashboard lives as long as the campaign's runtime: this task is dropped with it
    let guard = stop.clone().drop_guard();
    tokio::spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await
    });
    let follow = async move {
        let mut follower = Some(follower);
        // the stored events first, so the page's event numbers follow the store's order
        follower = poll(follower, &model, true).await;
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(rec) => model.lock().unwrap_or_else(|e| e.into_inner()).on_event(&rec),
                    Err(RecvError::Lagged(n)) => tracing::warn!(target: "stressctl::dashboard", "the dashboard missed {n} events (the pages show the rest)"),
                    Err(RecvError::Closed) => break,
                },
                _ = tick.tick() => {
                    follower = poll(follower, &model, false).await;
                }
            }
        }
    };
    let bound = setup.bound;
    let run = async move {
        let followed = tokio::spawn(follow);
        bound.serve(shared).await;
        followed.abort();
    };
    let started = std::thread::Builder::new().name("stressctl-dashboard".into()).spawn(move || {
        // ahead of the browsers on a saturated host (confine::priority); its store-reading
        // blocking threads too, since an answer may wait on them
        if let Err(e) = raise_priority() {
            tracing::warn!(target: "stressctl::dashboard", "{e}");
        }
        let on_start = || {
            let _ = raise_priority();
        };
        match tokio::runtime::Builder::new_current_thread().enable_all().on_thread_start(on_start).build() {
            Ok(rt) => rt.block_on(run),
            Err(e) => crate::fmt::warn(&format!("stressctl: the dashboard cannot start its runtime: {e}; the campaign goes on without it")),
        }
    });
    if let Err(e) = started {
        crate::fmt::warn(&format!("stressctl: the dashboard cannot start its thread: {e}; the campaign goes on without it"));
    }
}

/// Environment variable that sets the nice value of the dashboard's threads (-20..=19; default
/// [`crate::confine::priority::ORCHESTRATOR_NICE`]; any negative value also moves them into the
/// run's v1 orchestrator cgroup where there is one): `0` keeps them at the browsers' priority,
/// for a host whose policy forbids raising it, and for measuring what the raise buys
/// (`scripts/bench-dashboard.sh` compares both in one run).
pub const NICE_ENV: &str = "STRESSCTL_DASHBOARD_NICE";

/// Raises the calling thread to the dashboard's priority (see [`NICE_ENV`]).
fn raise_priority() -> Result<(), String> {
    let nice = match std::env::var(NICE_ENV) {
        Err(_) => crate::confine::priority::ORCHESTRATOR_NICE,
        Ok(v) => match v.trim().parse::<i32>() {
            Ok(n) if (-20..=19).contains(&n) => n,
            _ => return Err(bad_nice(&v)),
        },
    };
    crate::confine::raise_orchestrator_thread(nice)
}

/// The line logged for a [`NICE_ENV`] value that is not a nice value.
fn bad_nice(v: &str) -> String {
    let default = crate::confine::priority::ORCHESTRATOR_NICE;
    format!(
        "{NICE_ENV}={v:?} is not a nice value -20..19: the dashboard's threads keep their priority (unset it for the default {default})"
    )
}

/// One poll of the store on the blocking pool; the follower is handed back (None after an
/// error, which is logged once: the pages keep what they have).
async fn poll(follower: Option<StoreFollower>, model: &Arc<Mutex<Model>>, events: bool) -> Option<StoreFollower> {
    let mut f = follower?;
    let m = model.clone();
    let r = tokio::task::spawn_blocking(move || {
        let mut res = Ok(true);
        // a long store (a resume) is read in batches until nothing is left
        while matches!(res, Ok(true)) {
            res = f.poll(&m, events);
        }
        (f, res)
    })
    .await;
    match r {
        Ok((f, Ok(_))) => Some(f),
        Ok((_, Err(e))) => {
            tracing::warn!(target: "stressctl::dashboard", "the dashboard stopped reading the store: {e}");
            None
        }
        Err(e) => {
            tracing::warn!(target: "stressctl::dashboard", "the dashboard's store reader failed: {e}");
            None
        }
    }
}

/// Serves campaign `store`'s dashboard read-only until `stop`: a finished campaign as it ended,
/// an unfinished one as far as its store goes (followed while it grows).
pub async fn serve_store(bound: Bound, store: PathBuf, stop: CancellationToken) -> Result<(), crate::store::StoreError> {
    let f = StoreFollower::open(&store)?;
    let c = f.campaign()?;
    let limits = source::limits_of(&c.config_text);
    let (model, mut follower) = if c.ended {
        (f.read_all(Some(limits))?, None)
    } else {
        let planned =
            crate::config::Config::parse(&c.config_text, "stored config").map(|c| c.planned_duration().as_millis() as i64).unwrap_or(0);
        let width = series::bucket_width(f.span_ms(c.started_ms)?.max(planned));
        (Model::new(&c.id, &c.profile, c.started_ms, width, limits, "store"), Some(f))
    };
    let model = Arc::new(Mutex::new(model));
    let shared = Arc::new(http::Shared {
        registry: metrics::registry(model.clone(), None),
        model: model.clone(),
        status: None,
        breakers: None,
        access: bound.access.clone(),
        stop: stop.clone(),
    });
    let server = tokio::spawn(bound.serve(shared));
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    while follower.is_some() {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => follower = poll(follower, &model, true).await,
        }
    }
    let _ = server.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::addr::DEFAULT_ADDR;

    #[test]
    fn loopback_needs_no_token_and_anything_else_does() {
        assert_eq!(Listen::check(DEFAULT_ADDR, None).unwrap().addr.to_string(), "127.0.0.1:8080");
        assert!(Listen::check("[::1]:0", None).is_ok());
        assert_eq!(Listen::check("localhost:9", None).unwrap().addr.to_string(), "127.0.0.1:9");
        let e = Listen::check("0.0.0.0:8080", None).unwrap_err();
        assert!(e.contains("not loopback") && e.contains("--dashboard-token"), "{e}");
        assert!(Listen::check("0.0.0.0:8080", Some("0123456789abcdef")).is_ok());
        assert!(Listen::check("0.0.0.0:8080", Some("   ")).is_err(), "a blank token is no token");
        assert!(Listen::check("0.0.0.0:8080", Some("short")).unwrap_err().contains("at least 16"));
        assert!(Listen::check("nonsense", None).unwrap_err().contains("not IP:PORT"));
    }

    #[test]
    fn binding_port_zero_reports_the_real_port() {
        let b = Listen::check("127.0.0.1:0", None).unwrap().bind().unwrap();
        assert_ne!(b.local_addr().port(), 0);
        assert!(b.url().starts_with("http://127.0.0.1:"));
        assert!(b.access.hosts.contains(&format!("localhost:{}", b.local_addr().port())));
    }

    /// One `GET /metrics` with a plain socket: the status code and how long the answer took.
    fn scrape(addr: SocketAddr) -> (String, Duration) {
        use std::io::{Read, Write};
        let t = std::time::Instant::now();
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(c, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        (out.lines().next().unwrap_or_default().to_string(), t.elapsed())
    }

    #[test]
    fn metrics_answer_while_the_campaign_thread_is_blocked_and_the_server_ends_with_its_runtime() {
        use crate::store::{CampaignRecord, Store};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let rec = CampaignRecord::quick_for_test("c-thread", std::time::SystemTime::now(), dir.path());
        let store = Store::create(&path, &rec, &dir.path().join("events.jsonl")).unwrap();
        let bus = EventBus::new(store.clone());
        let bound = Listen::check("127.0.0.1:0", None).unwrap().bind().unwrap();
        let addr = bound.local_addr();
        let setup = LiveSetup { bound, store: path.clone(), limits: Limits::default(), planned: Duration::from_secs(60) };
        let (status, breakers): (StatusFeed, BreakerFeed) = (Arc::new(|| None), Arc::new(|| None));
        // the campaign's runtime: one thread, as `launch` builds it
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            start_live(setup, &bus, status, breakers);
            let scraper = std::thread::spawn(move || scrape(addr));
            // the campaign's one thread busy with blocking work (closing sessions, writing the
            // reports): the dashboard answers all the same
            std::thread::sleep(Duration::from_secs(3));
            let (line, took) = scraper.join().unwrap();
            assert!(line.contains(" 200 "), "{line}");
            assert!(took < Duration::from_millis(1500), "/metrics waited {took:?} for the campaign's thread");
        });
        drop(rt);
        // nothing outlives the run: the server stops with the campaign's runtime
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_ok() {
            assert!(std::time::Instant::now() < deadline, "the dashboard still listens after the campaign's runtime ended");
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(bus);
        store.close().unwrap();
    }
}
