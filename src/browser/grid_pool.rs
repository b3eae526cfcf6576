//! The pool's Grid side: sessions opened through a hub on a node whose breaker lets ops through,
//! and phase placement bounded by a Grid's free slots. Above both the pool and the Grid's own
//! types ([`super::grid`]), so neither has to know the other.

use super::grid::*;
use super::pool::{Pool, Worker};
use super::session::{self, Session};
use crate::breaker::BreakerRegistry;
use crate::config::{TaskSpec, WorkerEndpoint};
use crate::recovery::{FailureClass, OpError};
use serde_json::{json, Map};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Numbers the new-session requests of this process (their [`REQUEST_CAP`] tokens).
static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

impl Pool {
    /// Asks every remote worker's `/status` whether it is a Selenium Grid, and remembers the
    /// Grids. A worker that does not answer stays a plain remote worker: its sessions then fail
    /// and its breaker opens (never a hang: the probe has a timeout).
    pub async fn detect_grids(&self) {
        for w in &self.workers {
            let WorkerEndpoint::Remote(url) = &w.endpoint else { continue };
            match Grid::detect(&w.id, url).await {
                Ok(g) => {
                    tracing::info!(target: "stressctl::browser", worker = %w.id, url = %url, "worker is a Selenium Grid: breakers per node");
                    lock(&self.grids.0).insert(w.id.clone(), Arc::new(g));
                }
                Err(e) => tracing::debug!(target: "stressctl::browser", worker = %w.id, "not a Selenium Grid: {e}"),
            }
        }
    }

    /// Opens a session through the hub of Grid `g` (on node `target` when given), and learns its node.
    async fn open_on_grid(&self, w: &Worker, g: &Grid, page_url: &str, task: &TaskSpec, target: Option<&str>) -> Result<Session, OpError> {
        let ep = self.endpoint(w).await?;
        let mut extra = Map::new();
        if let Some(t) = target {
            extra.insert(NODE_CAP.into(), json!(t));
        }
        let token =
            format!("{}/{}/q{}", super::grid_status::run_tag(&self.profiles_dir), w.id, REQUEST_SEQ.fetch_add(1, Ordering::Relaxed));
        extra.insert(REQUEST_CAP.into(), json!(token));
        // counted as abandoned unless the request finishes (the future may be dropped by a stop)
        let pending = Abandoned(&g.abandoned);
        let launch = session::Launch { kind: w.browser, adapter: w.adapter_mode(), cfg: &self.cfg };
        let opened = session::open_with_caps(&ep, &w.id, &launch, &self.profiles_dir, page_url, task, extra, true).await;
        std::mem::forget(pending);
        let mut s = match opened {
            Ok(s) => s,
            Err(e) => {
                // given up (its timeout) or failed: a request still queued must not become a
                // browser after stressctl left it
                g.cancel_request(&token, &e.message).await;
                return Err(e);
            }
        };
        let id = match s.client.session_id().await {
            Ok(Some(id)) => id,
            _ => {
                s.discard().await;
                return Err(OpError::new(FailureClass::LaunchFailure, format!("the hub of worker {} gave a session without an id", w.id)));
            }
        };
        lock(&g.ours).insert(id.clone());
        let node = g.node_of(&id).await;
        tracing::debug!(target: "stressctl::browser", worker = %w.id, node = %node, session = %id, "grid session opened");
        s.grid = Some(GridPlace { session_id: id, node });
        Ok(s)
    }
}

impl Pool {
    /// Opens a session on node `node` of Grid worker `w` (by its `stressctl:node` capability),
    /// for `check`'s probe of each node. Err when `w` is not a Grid.
    pub async fn open_on_node(&self, w: &Worker, page_url: &str, task: &TaskSpec, node: &str) -> Result<Session, OpError> {
        let g = self
            .grids
            .get(&w.id)
            .ok_or_else(|| OpError::new(FailureClass::ConnectionFailure, format!("worker {} is not a Selenium Grid", w.id)))?;
        self.open_on_grid(w, &g, page_url, task, Some(node)).await
    }
}

/// A session for a slot on worker `w`: for a Grid, an idle one or a new one through the hub on a
/// node whose breaker is not open — targeted at a healthy node by its `stressctl:node` stereotype
/// from the first try while some node's breaker is open, and otherwise left to the hub; if the hub
/// places it on a node whose breaker is open (it has not noticed the node is bad), it is
/// discarded and the next one is targeted. For any other worker, the pool's [`Pool::session_for`].
pub async fn session_for(pool: &Pool, w: &Worker, breakers: &BreakerRegistry, page_url: &str, task: &TaskSpec) -> Result<Session, OpError> {
    let Some(g) = pool.grids.get(&w.id) else { return pool.session_for(w, page_url, task).await };
    let usable = |s: &Session| s.grid.as_ref().is_none_or(|p| node_usable(breakers, &w.id, &p.node, Instant::now()));
    if let Some(mut s) = pool.checkout(w).await {
        // on a node still usable, moved to the page its next task runs in
        if usable(&s) && s.show(page_url, task).await.is_ok() {
            return Ok(s);
        }
        pool.discard(s).await;
    }
    if g.avoids_every_node(breakers) {
        // every node is failed, down or drained: asking the hub would start a browser on one
        return Err(OpError::new(
            FailureClass::LaunchFailure,
            format!("every node of Grid worker {} has its breaker open (failed, down or drained): no session asked for", w.id),
        ));
    }
    let browser = stereotype_browser(w.browser.as_str());
    let mut target = if g.avoids_a_node(breakers) { g.target_avoiding(browser, breakers) } else { None };
    let mut placed_on = Vec::new();
    for _ in 0..PLACEMENT_TRIES {
        let s = pool.open_on_grid(w, &g, page_url, task, target.as_deref()).await?;
        if usable(&s) {
            return Ok(s);
        }
        placed_on.push(s.grid.as_ref().map(|p| p.node.clone()).unwrap_or_default());
        pool.discard(s).await;
        target = g.target_avoiding(browser, breakers);
    }
    Err(OpError::new(
        FailureClass::LaunchFailure,
        format!("the hub of worker {} placed new sessions only on nodes whose breaker is open ({})", w.id, placed_on.join(", ")),
    ))
}

/// Slots for a phase of `sessions` sessions over `placement` (worker indices, round robin): slots on
/// a Grid worker are capped at its free slots for the worker's browser. When a Grid has fewer free
/// slots than the phase asks of it and `wait` is not zero (`[grid] capacity_wait`), its `/status`
/// is asked again every second for up to `wait` (until `stop`), so that nodes an autoscaler adds —
/// or any node registering mid-campaign — are counted before the phase starts; then the phase runs
/// with what there is. Returns the worker index of each slot kept, and a note when the phase
/// waited (how long) or asked for more sessions than a Grid had.
pub async fn bound_placement(
    pool: Option<&Pool>,
    placement: &[usize],
    sessions: u32,
    wait: Duration,
    stop: &CancellationToken,
) -> (Vec<usize>, Option<String>) {
    let wanted: Vec<usize> = (0..sessions as usize).filter_map(|s| placement.get(s % placement.len().max(1)).copied()).collect();
    let Some(pool) = pool else { return (wanted, None) };
    let started = Instant::now();
    let mut caps = grid_caps(pool, &wanted).await;
    let short = |caps: &HashMap<usize, Option<u32>>| {
        caps.iter().any(|(ix, cap)| cap.is_some_and(|c| placement_count(placement, sessions, *ix) > c))
    };
    let mut notes = Vec::new();
    if !wait.is_zero() && short(&caps) {
        tracing::info!(target: "stressctl::browser", "fewer free Grid slots than the phase asks for: waiting up to {} for more", crate::fmt::fmt_duration(wait));
        let mut stopped = false;
        loop {
            let left = wait.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            tokio::select! {
                _ = stop.cancelled() => stopped = true,
                _ = tokio::time::sleep(left.min(Duration::from_secs(1))) => {}
            }
            if stopped {
                break;
            }
            caps = grid_caps(pool, &wanted).await;
            if !short(&caps) {
                break;
            }
        }
        let waited = started.elapsed();
        let outcome = if !short(&caps) {
            "enough slots became free"
        } else if stopped {
            "a stop came"
        } else {
            "ran with the slots there were"
        };
        tracing::info!(target: "stressctl::browser", waited_ms = waited.as_millis() as u64, "waited for free Grid slots: {outcome}");
        notes.push(format!(
            "waited {:.1}s (of [grid] capacity_wait {}) for free Grid slots: {outcome}",
            waited.as_secs_f64(),
            crate::fmt::fmt_duration(wait)
        ));
    }
    let mut used: HashMap<usize, u32> = HashMap::new();
    let mut kept = Vec::with_capacity(wanted.len());
    for ix in wanted {
        let n = used.entry(ix).or_insert(0);
        match caps.get(&ix).copied().flatten() {
            Some(cap) if *n >= cap => {}
            _ => {
                *n += 1;
                kept.push(ix);
            }
        }
    }
    let mut capped = Vec::new();
    for (ix, cap) in caps.iter().filter_map(|(ix, c)| c.map(|c| (*ix, c))) {
        let asked = placement_count(placement, sessions, ix);
        if asked > cap {
            let (id, browser) = pool.workers.get(ix).map(|w| (w.id.as_str(), w.browser.as_str())).unwrap_or(("?", "?"));
            capped.push(format!(
                "asked for {asked} sessions on Grid worker {id}, which had {cap} free {browser} slot(s): ran {}",
                used.get(&ix).copied().unwrap_or(0)
            ));
        }
    }
    capped.sort();
    notes.extend(capped);
    (kept, (!notes.is_empty()).then(|| notes.join("; ")))
}

/// The free slots of each Grid worker among `wanted` for its browser (None for a worker that is
/// not a Grid; 0 for a hub that does not answer).
async fn grid_caps(pool: &Pool, wanted: &[usize]) -> HashMap<usize, Option<u32>> {
    let mut caps: HashMap<usize, Option<u32>> = HashMap::new();
    for &ix in wanted {
        if let (std::collections::hash_map::Entry::Vacant(e), Some(w)) = (caps.entry(ix), pool.workers.get(ix)) {
            e.insert(match pool.grids.get(&w.id) {
                Some(g) => Some(g.capacity(w.browser.as_str()).await.unwrap_or(0)),
                None => None,
            });
        }
    }
    caps
}

fn placement_count(placement: &[usize], sessions: u32, ix: usize) -> u32 {
    (0..sessions as usize).filter(|s| placement.get(s % placement.len().max(1)) == Some(&ix)).count() as u32
}
