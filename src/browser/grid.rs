//! Selenium Grid 4 workers: a remote worker whose `GET /status` lists `value.nodes` is a Grid hub.
//!
//! Sessions are opened through the hub like on any WebDriver, but the node that serves each one is
//! learned from `/status` (the slot holding the session id), so breakers are kept per node
//! (`worker:<worker>/<node>`) besides the hub's own (`worker:<worker>`): one bad node does not close
//! the whole Grid. A node is named by its stereotype capability `stressctl:node` when it has one
//! (scripts/grid.sh sets it; a session can then be placed on that node on purpose), else by its URI's
//! `host:port` — both stable across node restarts, unlike the node's UUID.
//!
//! Every request to the hub has a timeout; stressctl never signals a Grid's processes. The session
//! ids it opened are remembered until discarded, and whatever is left of them when the pool shuts
//! down is deleted through the hub ([`GridSet::delete_leftovers`]), on every exit path.

use crate::breaker::{BreakerRegistry, BreakerState, Transition};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use super::grid_status::{parse_status, Availability, GridNode, GridSlot, GridStatus, NODE_CAP, REQUEST_CAP};

/// How long one request to a hub may take (`/status`, `DELETE /session`).
pub const HUB_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for the hub to finish sessions whose requests were given up.
const ABANDONED_WAIT: Duration = Duration::from_secs(20);
/// How long a given-up request whose session may still be created is watched for (longer than
/// any hub's default `--session-request-timeout`, 300 s).
const LATE_WATCH: Duration = Duration::from_secs(600);
/// How many new sessions the hub may place on unhealthy nodes before stressctl gives up the op.
pub(super) const PLACEMENT_TRIES: u32 = 4;

/// Where a Grid session runs: what the slot needs to gate ops on the node's breaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridPlace {
    /// WebDriver session id (the hub's `DELETE /session/<id>` target).
    pub session_id: String,
    /// Stable node name (see the module doc); `unknown` when `/status` did not list the session.
    pub node: String,
}

/// The worker label of ops on `node` of Grid worker `worker` (windows, events, breaker key after
/// the `worker:` prefix).
pub fn node_label(worker: &str, node: &str) -> String {
    format!("{worker}/{node}")
}

/// The node a label of Grid worker `worker` names ([`node_label`]'s inverse); None for the
/// worker's own label (ops with no node yet).
pub fn label_node<'a>(worker: &str, label: &'a str) -> Option<&'a str> {
    label.strip_prefix(worker)?.strip_prefix('/')
}

/// The WebDriver `browserName` a Grid stereotype has for stressctl's browser name.
pub fn stereotype_browser(browser: &str) -> &str {
    match browser {
        "chromium" | "chrome" => "chrome",
        other => other,
    }
}

/// One Grid worker's hub.
pub struct Grid {
    /// Worker id.
    pub worker: String,
    /// Hub URL (no trailing slash).
    pub url: String,
    /// Sessions stressctl opened and has not discarded yet: deleted through the hub at shutdown.
    pub(super) ours: Mutex<HashSet<String>>,
    /// Node breakers this Grid forced open because the node was not UP: reset only those.
    pub(super) forced: Mutex<HashSet<String>>,
    /// The last `/status` seen, for placement decisions between polls.
    pub(super) last: Mutex<Option<GridStatus>>,
    /// New-session requests given up while the hub was still creating them (a stop came): the
    /// hub may finish them later, under an id stressctl never learnt.
    pub(super) abandoned: std::sync::atomic::AtomicU32,
    /// The hub's registration secret (its internal routes, such as cancelling a queued request,
    /// ask for it; empty when it has none).
    pub(super) secret: Mutex<String>,
    /// Tokens ([`REQUEST_CAP`]) of requests given up that were no longer in the hub's queue (a
    /// node may be creating the session right now), since when: a session made from one is
    /// deleted as soon as a `/status` lists it.
    pub(super) late: Mutex<Vec<(String, Instant)>>,
}

impl Grid {
    /// Asks `url/status`; a Grid if it lists `value.nodes`. Err says why not (unreachable, not a
    /// WebDriver, a plain WebDriver endpoint).
    pub async fn detect(worker: &str, url: &str) -> Result<Grid, String> {
        let g = Grid {
            worker: worker.to_string(),
            url: url.trim_end_matches('/').to_string(),
            ours: Mutex::default(),
            forced: Mutex::default(),
            last: Mutex::default(),
            abandoned: Default::default(),
            secret: Mutex::default(),
            late: Mutex::default(),
        };
        g.status().await?;
        Ok(g)
    }

    /// `GET /status`, parsed (and remembered for placement).
    pub async fn status(&self) -> Result<GridStatus, String> {
        let url = format!("{}/status", self.url);
        let v = super::grid_status::get_json(&url, HUB_TIMEOUT).await?;
        let st = parse_status(&v).map_err(|e| format!("GET {url}: {e}"))?;
        *lock(&self.last) = Some(st.clone());
        self.delete_late(&st).await;
        Ok(st)
    }

    /// Deletes the sessions `st` lists that were made from requests stressctl gave up on (see
    /// [`Grid::late`]), and forgets tokens watched for longer than [`LATE_WATCH`].
    async fn delete_late(&self, st: &GridStatus) {
        let found: Vec<(String, String)> = {
            let mut late = lock(&self.late);
            late.retain(|(_, since)| since.elapsed() < LATE_WATCH);
            late.iter()
                .filter_map(|(t, _)| st.session_of_request(t).filter(|s| *s != "reserved").map(|s| (t.clone(), s.to_string())))
                .collect()
        };
        for (token, id) in found {
            lock(&self.late).retain(|(t, _)| *t != token);
            let url = format!("{}/session/{id}", self.url);
            match super::grid_status::delete(&url, HUB_TIMEOUT).await {
                Ok(()) => {
                    tracing::info!(target: "stressctl::browser", worker = %self.worker, session = %id, "a session created after stressctl gave its request up was deleted through the hub")
                }
                Err(e) => {
                    tracing::warn!(target: "stressctl::browser", worker = %self.worker, session = %id, "a session created after its request was given up could not be deleted: {e}")
                }
            }
        }
    }

    /// Cancels the new-session request with token `token` that stressctl gave up on (its
    /// timeout passed, or the request failed on stressctl's side), so no browser is created
    /// after stressctl left: if the hub still queues it, it is completed as failed through the
    /// hub's queue (`POST /se/grid/newsessionqueue/session/<request id>/failure`, with the
    /// registration secret) — the hub then also stops a session a node was creating from it.
    /// If it is not queued (a node may be creating it), the token is watched, and the session
    /// it becomes is deleted as soon as `/status` lists it. Returns whether the queue had it.
    pub async fn cancel_request(&self, token: &str, why: &str) -> bool {
        let url = format!("{}/se/grid/newsessionqueue/queue", self.url);
        let queued = match super::grid_status::get_json(&url, HUB_TIMEOUT).await {
            Ok(v) => super::grid_status::queued_requests(&v),
            Err(e) => {
                tracing::debug!(target: "stressctl::browser", worker = %self.worker, "cannot read the hub's queue: {e}");
                Vec::new()
            }
        };
        let secret = lock(&self.secret).clone();
        if let Some((_, id)) = queued.iter().find(|(t, _)| t == token) {
            let url = format!("{}/se/grid/newsessionqueue/session/{id}/failure", self.url);
            let msg = serde_json::Value::String(format!("stressctl gave the request up: {why}"));
            match super::grid_status::post_with_secret(&url, &msg, &secret, HUB_TIMEOUT).await {
                Ok(_) => {
                    tracing::info!(target: "stressctl::browser", worker = %self.worker, request = %id, "a given-up session request was cancelled in the hub's queue");
                    return true;
                }
                Err(e) => {
                    tracing::warn!(target: "stressctl::browser", worker = %self.worker, request = %id, "cannot cancel a given-up session request (is [grid] registration_secret_env set to the hub's secret?): {e}")
                }
            }
        }
        lock(&self.late).push((token.to_string(), Instant::now()));
        false
    }

    /// Cancels every request of run `run` still in the hub's queue (see [`Grid::cancel_request`]).
    async fn cancel_queued_of_run(&self, run: &str) {
        let url = format!("{}/se/grid/newsessionqueue/queue", self.url);
        let Ok(v) = super::grid_status::get_json(&url, HUB_TIMEOUT).await else { return };
        let prefix = format!("{run}/");
        let secret = lock(&self.secret).clone();
        for (_, id) in super::grid_status::queued_requests(&v).into_iter().filter(|(t, _)| t.starts_with(&prefix)) {
            let url = format!("{}/se/grid/newsessionqueue/session/{id}/failure", self.url);
            let msg = serde_json::Value::String("stressctl stopped".to_string());
            if let Err(e) = super::grid_status::post_with_secret(&url, &msg, &secret, HUB_TIMEOUT).await {
                tracing::warn!(target: "stressctl::browser", worker = %self.worker, request = %id, "cannot cancel a queued session request: {e}");
            }
        }
    }

    /// The last `/status` seen (the hub is polled once a second while a campaign runs): the
    /// nodes the guardian watches through their node_exporters, without asking the hub again.
    pub fn last_status(&self) -> Option<GridStatus> {
        lock(&self.last).clone()
    }

    /// The node serving `session_id`, asking `/status` (twice at most: a hub lists a session in its
    /// slot as soon as it answers the new-session request, but a busy one may lag).
    pub(super) async fn node_of(&self, session_id: &str) -> String {
        for i in 0..2 {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            if let Ok(st) = self.status().await {
                if let Some(n) = st.node_of_session(session_id) {
                    return n.name.clone();
                }
            }
        }
        "unknown".to_string()
    }

    /// Forgets a session that was discarded (the hub was asked to delete it).
    pub fn forget(&self, session_id: &str) {
        lock(&self.ours).remove(session_id);
    }

    /// Sessions stressctl opened and still holds.
    pub fn ours(&self) -> HashSet<String> {
        lock(&self.ours).clone()
    }

    /// Deletes through the hub every session stressctl opened and did not discard, and every
    /// session whose Chromium profile on its node is run `run`'s ([`super::grid_status::node_profile_dir`]: one whose
    /// new-session request was given up, after waiting, bounded, for the hub to finish creating
    /// it); returns how many the hub deleted. Bounded by [`HUB_TIMEOUT`] per request.
    pub async fn delete_leftovers(&self, run: &str) -> usize {
        let mut ours: HashSet<String> = lock(&self.ours).drain().collect();
        let abandoned = self.abandoned.swap(0, std::sync::atomic::Ordering::Relaxed) > 0;
        if abandoned {
            // a request still queued would become a browser after stressctl left
            self.cancel_queued_of_run(run).await;
        }
        let deadline = Instant::now() + ABANDONED_WAIT;
        loop {
            let Ok(st) = self.status().await else { break };
            let (marked, reserved) = st.sessions_of_run(run);
            ours.extend(marked);
            if !abandoned || !reserved || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let mut n = 0;
        for id in ours {
            let url = format!("{}/session/{id}", self.url);
            if super::grid_status::delete(&url, HUB_TIMEOUT).await.is_ok() {
                n += 1;
                tracing::info!(target: "stressctl::browser", worker = %self.worker, session = %id, "grid session deleted through the hub");
            }
        }
        n
    }

    /// Deletes through the hub what a dead run `run` (its [`run_tag`](super::grid_status::run_tag))
    /// left open: the sessions it recorded (`recorded`, its `grid_session_opened` ids) that the
    /// last `/status` still lists, and every session whose Chromium profile on its node is the
    /// run's (found even when the run died before recording the id). Nothing of the run listed:
    /// nothing is asked, so a launch after a crash long ago costs one `/status`. Something listed:
    /// a request the run had in flight when it died may still be being created under its profile,
    /// so reserved slots are waited for as at shutdown, bounded. Returns how many were deleted.
    pub async fn reap_run(&self, run: &str, recorded: &HashSet<String>) -> usize {
        let Some(st) = lock(&self.last).clone() else { return 0 };
        let (marked, _) = st.sessions_of_run(run);
        let listed: HashSet<String> =
            st.nodes.iter().flat_map(|n| &n.slots).filter_map(|s| s.session.clone()).filter(|id| recorded.contains(id)).collect();
        if listed.is_empty() && marked.is_empty() {
            return 0;
        }
        lock(&self.ours).extend(listed);
        self.abandoned.store(1, std::sync::atomic::Ordering::Relaxed);
        self.delete_leftovers(run).await
    }

    /// Free slots for `browser` on UP nodes, counting the sessions stressctl holds as free (its
    /// slots reuse them). From a fresh `/status`; None if the hub does not answer.
    pub async fn capacity(&self, browser: &str) -> Option<u32> {
        let st = self.status().await.ok()?;
        let ours = self.ours();
        Some(st.free_slots(stereotype_browser(browser), &ours))
    }

    /// Forces open the breakers of nodes that are not UP (DOWN, DRAINING, or gone from `/status`
    /// after being seen) and resets those it forced once their node is UP again. Returns the
    /// transitions, keyed by full breaker key.
    pub fn apply_availability(&self, st: &GridStatus, breakers: &BreakerRegistry, now: Instant) -> Vec<(String, Transition)> {
        let mut out = Vec::new();
        let mut forced = lock(&self.forced);
        let up: HashSet<&str> = st.nodes.iter().filter(|n| n.availability == Availability::Up).map(|n| n.name.as_str()).collect();
        for n in st.nodes.iter().filter(|n| n.availability != Availability::Up) {
            if forced.insert(n.name.clone()) {
                let key = format!("worker:{}", node_label(&self.worker, &n.name));
                tracing::warn!(target: "stressctl::browser", worker = %self.worker, node = %n.name, availability = ?n.availability, "grid node not UP: its breaker is forced open");
                out.extend(breakers.force_open(&key, now).unwrap_or_default().into_iter().map(|t| (key.clone(), t)));
            }
        }
        let back: Vec<String> = forced.iter().filter(|n| up.contains(n.as_str())).cloned().collect();
        for n in back {
            forced.remove(&n);
            let key = format!("worker:{}", node_label(&self.worker, &n));
            tracing::info!(target: "stressctl::browser", worker = %self.worker, node = %n, "grid node UP again: its breaker is reset");
            out.extend(breakers.reset(&key, now).unwrap_or_default().into_iter().map(|t| (key.clone(), t)));
        }
        out
    }

    /// The nodes a session for `browser` may be placed on, with their free slots for it (as the
    /// last status saw them): UP, targetable (has `stressctl:node`), with slots for `browser`, and
    /// a breaker that is not open.
    fn placeable(&self, browser: &str, breakers: &BreakerRegistry) -> Vec<(u32, String)> {
        let last = lock(&self.last);
        let now = Instant::now();
        let nodes = last.as_ref().map(|st| st.nodes.as_slice()).unwrap_or_default();
        nodes
            .iter()
            .filter(|n| n.availability == Availability::Up && n.targetable && node_usable(breakers, &self.worker, &n.name, now))
            .filter(|n| n.slots.iter().any(|s| s.browser == browser))
            .map(|n| (n.free_for(browser), n.name.clone()))
            .collect()
    }

    /// A node to place the next session on, while some node is avoided
    /// ([`Grid::avoids_a_node`]) or the hub placed one on a node whose breaker is open: the
    /// [placeable](Grid::placeable) one with the most free slots for `browser`, or one even if
    /// the last status showed none of its slots free (it is up to a
    /// second old: a session just closed there frees one, and the hub queues the request until
    /// one is free). Never the hub's own choice, which may be the node that is down.
    pub(super) fn target_avoiding(&self, browser: &str, breakers: &BreakerRegistry) -> Option<String> {
        self.placeable(browser, breakers).into_iter().max_by_key(|(free, _)| *free).map(|(_, n)| n)
    }

    /// Whether the hub's last status lists nodes and stressctl avoids every one of them (each
    /// breaker open: failed, DOWN, or drained for its resources): a new session could only land
    /// on a node that must get no more browsers, so none is asked for.
    pub(super) fn avoids_every_node(&self, breakers: &BreakerRegistry) -> bool {
        let last = lock(&self.last);
        let now = Instant::now();
        last.as_ref().is_some_and(|st| !st.nodes.is_empty() && st.nodes.iter().all(|n| !node_usable(breakers, &self.worker, &n.name, now)))
    }

    /// Whether a node the hub may still place sessions on is one stressctl avoids: its breaker
    /// is open (its sessions failed) though the hub's last status may not say it is down yet.
    /// Then a new session names a healthy node from its first try: left to the hub, the request
    /// can go to the dead node, fail, and count against the hub (the whole worker) instead.
    pub(super) fn avoids_a_node(&self, breakers: &BreakerRegistry) -> bool {
        let last = lock(&self.last);
        let now = Instant::now();
        last.as_ref().is_some_and(|st| st.nodes.iter().any(|n| !node_usable(breakers, &self.worker, &n.name, now)))
    }
}

/// Whether the breaker of `node` lets ops through (closed, half-open, disabled, or not made yet).
pub fn node_usable(breakers: &BreakerRegistry, worker: &str, node: &str, now: Instant) -> bool {
    !matches!(breakers.state(&format!("worker:{}", node_label(worker, node)), now), Some(BreakerState::Open | BreakerState::ForcedOpen))
}

/// The Grid workers of a pool, by worker id (filled once by
/// [`Pool::detect_grids`](super::pool::Pool::detect_grids)).
#[derive(Default)]
pub struct GridSet(pub(super) Mutex<HashMap<String, Arc<Grid>>>);

impl GridSet {
    /// The Grid of worker `id`, if it is one.
    pub fn get(&self, id: &str) -> Option<Arc<Grid>> {
        lock(&self.0).get(id).cloned()
    }

    /// Every Grid.
    pub fn all(&self) -> Vec<Arc<Grid>> {
        lock(&self.0).values().cloned().collect()
    }

    /// Gives every Grid the hubs' registration secret (`[grid] registration_secret_env`).
    pub fn set_secret(&self, secret: &str) {
        for g in self.all() {
            *lock(&g.secret) = secret.to_string();
        }
    }

    /// Forgets a discarded session of worker `worker` (see [`Grid::forget`]).
    pub fn forget(&self, worker: &str, place: Option<&GridPlace>) {
        if let Some(p) = place {
            if let Some(g) = self.get(worker) {
                g.forget(&p.session_id);
            }
        }
    }

    /// Deletes what is left of stressctl's sessions on every Grid (see [`Grid::delete_leftovers`]).
    pub async fn delete_leftovers(&self, profiles_dir: &std::path::Path) {
        for g in self.all() {
            let n = g.delete_leftovers(&super::grid_status::run_tag(profiles_dir)).await;
            if n > 0 {
                tracing::info!(target: "stressctl::browser", worker = %g.worker, "{n} grid session(s) left open were deleted through the hub");
            }
        }
    }
}

/// Polls the hub's `/status` every `period` until `cancel`, handing each answer to `apply` (which
/// forces node breakers open or resets them). A hub that does not answer is left to the sessions:
/// their failures open the hub's breaker.
pub async fn watch(g: Arc<Grid>, period: Duration, cancel: tokio_util::sync::CancellationToken, apply: impl Fn(&Grid, &GridStatus) + Send) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let st = tokio::select! {
            _ = cancel.cancelled() => return,
            r = g.status() => r,
        };
        match st {
            Ok(st) => apply(&g, &st),
            Err(e) => tracing::debug!(target: "stressctl::browser", worker = %g.worker, "grid /status: {e}"),
        }
    }
}

/// Counts a new-session request as abandoned when dropped before it finished.
pub(super) struct Abandoned<'a>(pub(super) &'a std::sync::atomic::AtomicU32);

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The nodes of the Grid at `url` that run on another machine (their URI's host is not
/// loopback), as `name (uri)`: their browsers cannot load a page served on this machine's
/// loopback. Empty when `url` is not a Grid (or does not answer) or every node is local.
pub async fn remote_nodes(url: &str) -> Vec<String> {
    let Ok(v) = super::grid_status::get_json(&format!("{}/status", url.trim_end_matches('/')), HUB_TIMEOUT).await else {
        return Vec::new();
    };
    let Ok(st) = parse_status(&v) else { return Vec::new() };
    st.nodes
        .iter()
        .filter(|n| crate::config::addr::remote_host(&n.uri).is_some_and(|h| !own_address(&h)))
        .map(|n| format!("{} ({})", n.name, n.uri))
        .collect()
}

/// Whether `host` is an IP address of this machine (a node on this machine that advertises its
/// LAN address): only an own address can be bound.
fn own_address(host: &str) -> bool {
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<std::net::IpAddr>().is_ok_and(|ip| std::net::UdpSocket::bind((ip, 0)).is_ok())
}

/// `stressctl check` on a Grid worker: None when `url` is not a Grid (the plain WebDriver probe
/// stands); else Ok with its nodes, slots per browser and versions, or Err when no UP node has a
/// slot for `browser`.
pub async fn check(url: &str, browser: &str) -> Option<Result<String, String>> {
    let v = super::grid_status::get_json(&format!("{}/status", url.trim_end_matches('/')), HUB_TIMEOUT).await.ok()?;
    let st = parse_status(&v).ok()?;
    let up = st.nodes.iter().filter(|n| n.availability == Availability::Up).count();
    let mut versions: Vec<&str> = st.nodes.iter().map(|n| n.version.as_str()).collect();
    versions.sort_unstable();
    versions.dedup();
    let want = stereotype_browser(browser);
    // name the UP nodes that cannot run the browser: a session would never land there
    let lacking: Vec<&str> = st
        .nodes
        .iter()
        .filter(|n| n.availability == Availability::Up && !n.slots.iter().any(|s| s.browser == want))
        .map(|n| n.name.as_str())
        .collect();
    let slots = st
        .nodes
        .iter()
        .filter(|n| n.availability == Availability::Up)
        .map(|n| n.slots.iter().filter(|s| s.browser == want).count())
        .sum::<usize>();
    let detail = format!(
        "Selenium Grid, {} node(s), {up} UP, slots: {}; version {}",
        st.nodes.len(),
        if st.slots_per_browser().is_empty() { "none".to_string() } else { st.slots_per_browser() },
        if versions.is_empty() { "?".to_string() } else { versions.join(", ") }
    );
    let detail =
        if lacking.is_empty() || slots == 0 { detail } else { format!("{detail}; node(s) without {want}: {}", lacking.join(", ")) };
    Some(if slots == 0 {
        Err(format!(
            "{detail}: no UP node has a slot for {want}{} (start nodes with it, e.g. scripts/grid.sh up)",
            if lacking.is_empty() { String::new() } else { format!(" ({} lack it)", lacking.join(", ")) }
        ))
    } else if !st.ready {
        Err(format!("{detail}: not ready ({})", st.message))
    } else {
        Ok(detail)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::BreakerConfig;
    use serde_json::json;
    use serde_json::Value;

    #[test]
    fn only_this_machines_addresses_are_its_own() {
        assert!(own_address("127.0.0.1"));
        assert!(!own_address("192.0.2.99"), "TEST-NET-1 is nobody's here");
        assert!(!own_address("node-1"), "a name is not resolved");
    }

    #[test]
    fn a_label_names_its_node_and_only_its_workers() {
        assert_eq!(label_node("grid", &node_label("grid", "node-1")), Some("node-1"));
        assert_eq!(label_node("grid", "grid"), None, "the worker's own label: no node yet");
        assert_eq!(label_node("grid", "grid2/node-1"), None, "another worker's label");
    }

    fn status(avail: &[(&str, &str)]) -> GridStatus {
        let nodes: Vec<Value> = avail
            .iter()
            .map(|(name, a)| {
                json!({"id": name, "uri": "http://127.0.0.1:1", "availability": a,
                       "slots": [{"stereotype": {"browserName": "chrome", NODE_CAP: name}, "session": null}]})
            })
            .collect();
        parse_status(&json!({"value": {"ready": true, "nodes": nodes}})).unwrap()
    }

    fn grid() -> Grid {
        Grid {
            worker: "grid".into(),
            url: "http://127.0.0.1:1".into(),
            ours: Mutex::default(),
            forced: Mutex::default(),
            last: Mutex::default(),
            abandoned: Default::default(),
            secret: Mutex::default(),
            late: Mutex::default(),
        }
    }

    #[test]
    fn a_node_not_up_has_its_breaker_forced_open_until_it_is_up_again() {
        let reg = BreakerRegistry::new(BreakerConfig::default(), BreakerConfig::default(), BreakerConfig::default());
        let g = grid();
        let now = Instant::now();
        assert!(g.apply_availability(&status(&[("n1", "UP"), ("n2", "UP")]), &reg, now).is_empty());
        let ts = g.apply_availability(&status(&[("n1", "DOWN"), ("n2", "DRAINING")]), &reg, now);
        let keys: Vec<&str> = ts.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["worker:grid/n1", "worker:grid/n2"]);
        assert_eq!(reg.state("worker:grid/n1", now), Some(BreakerState::ForcedOpen));
        assert!(!node_usable(&reg, "grid", "n1", now));
        // still down: nothing new; n1 back up: reset, n2 still draining: still forced
        assert!(g.apply_availability(&status(&[("n1", "DOWN"), ("n2", "DRAINING")]), &reg, now).is_empty());
        let ts = g.apply_availability(&status(&[("n1", "UP"), ("n2", "DRAINING")]), &reg, now);
        assert_eq!(ts.len(), 1, "{ts:?}");
        assert_eq!(reg.state("worker:grid/n1", now), Some(BreakerState::Closed));
        assert_eq!(reg.state("worker:grid/n2", now), Some(BreakerState::ForcedOpen));
        assert!(node_usable(&reg, "grid", "n1", now));
    }

    #[test]
    fn a_new_session_targets_the_up_node_with_a_closed_breaker_and_free_slots() {
        let reg = BreakerRegistry::new(BreakerConfig::default(), BreakerConfig::default(), BreakerConfig::default());
        let g = grid();
        *lock(&g.last) = Some(status(&[("n1", "UP"), ("n2", "UP"), ("n3", "DOWN")]));
        reg.force_open("worker:grid/n1", Instant::now());
        assert_eq!(g.target_avoiding("chrome", &reg).as_deref(), Some("n2"));
        reg.force_open("worker:grid/n2", Instant::now());
        assert_eq!(g.target_avoiding("chrome", &reg), None, "n3 is DOWN");
    }

    #[test]
    fn a_node_with_an_open_breaker_is_avoided_from_the_first_try() {
        let reg = BreakerRegistry::new(BreakerConfig::default(), BreakerConfig::default(), BreakerConfig::default());
        let g = grid();
        *lock(&g.last) = Some(status(&[("n1", "UP"), ("n2", "UP")]));
        assert!(!g.avoids_a_node(&reg), "every breaker closed: the hub places sessions");
        reg.force_open("worker:grid/n1", Instant::now());
        assert!(g.avoids_a_node(&reg), "n1 is still UP for the hub, but its breaker is open");
        assert!(!g.avoids_every_node(&reg), "n2 is usable");
        assert_eq!(g.target_avoiding("chrome", &reg).as_deref(), Some("n2"));
        assert_eq!(g.target_avoiding("firefox", &reg), None, "no node has a firefox slot");
        // the last status saw no free slot on n2: still n2, never the hub's choice
        *lock(&g.last) = Some(status(&[("n1", "UP"), ("n2", "UP"), ("n3", "UP")]));
        for n in lock(&g.last).as_mut().map(|st| st.nodes.iter_mut()).into_iter().flatten() {
            n.slots.iter_mut().for_each(|s| s.session = Some("another".into()));
        }
        reg.force_open("worker:grid/n3", Instant::now());
        assert_eq!(g.target_avoiding("chrome", &reg).as_deref(), Some("n2"));
        reg.force_open("worker:grid/n2", Instant::now());
        assert!(g.avoids_every_node(&reg), "every node's breaker is open (a drained node's too)");
        // with every breaker closed, a node with a free slot wins over a full one, whatever the order
        let closed = BreakerRegistry::new(BreakerConfig::default(), BreakerConfig::default(), BreakerConfig::default());
        for full in ["n1", "n2"] {
            *lock(&g.last) = Some(status(&[("n1", "UP"), ("n2", "UP")]));
            if let Some(n) = lock(&g.last).as_mut().and_then(|st| st.nodes.iter_mut().find(|n| n.name == full)) {
                n.slots.iter_mut().for_each(|s| s.session = Some("another".into()));
            }
            let free = if full == "n1" { "n2" } else { "n1" };
            assert_eq!(g.target_avoiding("chrome", &closed).as_deref(), Some(free));
        }
    }
}
