//! The nodes' guardian: every `sample_interval`, scrapes the Prometheus node_exporter of each
//! watched node (`[[workers]] node_metrics`), stores its figures (`node_sample` events: the
//! reports' per-node series), and drains a node that stays over its worker's limits: its breaker
//! forced open with the reason, so its sessions move to the other nodes or workers as for any
//! forced-open breaker; reset once it has been under the limits for the breaker recovery time.
//!
//! Why a task of its own beside the host's guardian: a scrape goes over the network and may hang
//! until its timeout; the host's guardian must never wait for it. Every scrape is bounded
//! ([`scrape_timeout`]) and all nodes are scraped at once, so one slow exporter delays no other.
//!
//! The campaign stops for nodes only when every worker is watched and every node is drained: no
//! node is left to carry the load.

use super::shared::RunShared;
use crate::breaker::ManualCommand;
use crate::config::{UnwatchedNode, WorkerConfig, NODE_HOST_PLACEHOLDER};
use crate::control::StopCause;
use crate::events::Event;
use crate::guardian::node::{distress_reason, parse, NodeJudge, NodeReading, NodeScrape, NodeVerdict};
use bytes::Bytes;
use http_body_util::Empty;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The most a scrape may take: node_exporter answers in milliseconds; one that takes seconds is
/// as good as unwatched. Never longer than the sampling interval, so scrapes do not pile up.
fn scrape_timeout(interval: Duration) -> Duration {
    interval.min(Duration::from_secs(2))
}

/// One node to scrape.
#[derive(Clone, Debug, PartialEq)]
struct Target {
    worker: String,
    /// A Grid node's stable name, or the worker id for a plain URL.
    node: String,
    url: String,
    /// The breaker a drain forces open: `worker:<worker>/<node>` on a Grid, `worker:<worker>`.
    key: String,
}

/// What the watcher remembers of one node between scrapes.
#[derive(Default)]
struct NodeState {
    prev: Option<(NodeScrape, Instant)>,
    judge: NodeJudge,
    failing: u32,
    unwatched: bool,
}

type Client =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Empty<Bytes>>;

fn client() -> Option<Client> {
    let https = hyper_rustls::HttpsConnectorBuilder::new().with_native_roots().ok()?.https_or_http().enable_http1().build();
    Some(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https))
}

/// `GET url`'s body as text, within `timeout`.
async fn fetch(client: &Client, url: &str, timeout: Duration) -> Result<String, String> {
    let fut = async {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        let resp = client.get(uri).await.map_err(|e| crate::fmt::error_chain(&e))?;
        let status = resp.status();
        let body = http_body_util::BodyExt::collect(resp.into_body()).await.map_err(|e| e.to_string())?.to_bytes();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {}", crate::fmt::fmt_duration(timeout))),
    }
}

/// The nodes of worker `w` to watch now: its Grid's nodes as the hub's last `/status` lists them
/// (filling `{host}` with each node URI's host), or the plain URL's one machine.
fn targets_of(run: &RunShared, w: &WorkerConfig) -> Vec<Target> {
    let Some(url) = &w.node_metrics else { return Vec::new() };
    if !url.contains(NODE_HOST_PLACEHOLDER) {
        return vec![Target { worker: w.id.clone(), node: w.id.clone(), url: url.clone(), key: format!("worker:{}", w.id) }];
    }
    let Some(st) = run.pool.as_ref().and_then(|p| p.grids.get(&w.id)).and_then(|g| g.last_status()) else { return Vec::new() };
    st.nodes
        .iter()
        .filter_map(|n| {
            let host = url::Url::parse(&n.uri).ok()?.host_str()?.to_string();
            Some(Target {
                worker: w.id.clone(),
                node: n.name.clone(),
                url: url.replace(NODE_HOST_PLACEHOLDER, &host),
                key: format!("worker:{}", crate::browser::grid::node_label(&w.id, &n.name)),
            })
        })
        .collect()
}

/// Runs until `stop` fires; does nothing when no worker has `node_metrics`.
pub(crate) async fn run(run: Arc<RunShared>, stop: CancellationToken) {
    let watched: Vec<WorkerConfig> = run.cfg.workers.iter().filter(|w| w.node_metrics.is_some()).cloned().collect();
    if watched.is_empty() {
        return;
    }
    let Some(client) = client() else {
        tracing::warn!(target: "stressctl::guardian", "no HTTP client for node_metrics (TLS roots could not be loaded): nodes are not watched");
        return;
    };
    let every_worker_watched = watched.len() == run.cfg.workers.len();
    let interval = run.cfg.safety.sample_interval;
    let timeout = scrape_timeout(interval);
    let recovery = run.cfg.breakers.worker.recovery_timeout;
    let mut states: HashMap<(String, String), NodeState> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopped_for_nodes = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let targets: Vec<(Target, &WorkerConfig)> =
            watched.iter().flat_map(|w| targets_of(&run, w).into_iter().map(move |t| (t, w))).collect();
        let scrapes = futures_util::future::join_all(targets.iter().map(|(t, _)| fetch(&client, &t.url, timeout)));
        let results = tokio::select! {
            _ = stop.cancelled() => break,
            r = scrapes => r,
        };
        let now = Instant::now();
        let phase = run.current_phase_idx();
        let base = run.cfg.phase_safety(phase.map(|p| p as usize).unwrap_or(usize::MAX));
        for ((t, w), result) in targets.iter().zip(results) {
            let safety = base.with_overrides(&w.safety);
            let thresholds = safety.thresholds();
            let state = states.entry((t.worker.clone(), t.node.clone())).or_default();
            let corr = format!("{}/node/{}/{}", run.id, t.worker, t.node);
            let scraped = result.and_then(|text| parse(&text));
            let bad = match scraped {
                Ok(scrape) => {
                    state.failing = 0;
                    if std::mem::take(&mut state.unwatched) {
                        run.event(&corr, phase, Event::NodeWatched { worker: t.worker.clone(), node: t.node.clone() });
                    }
                    let prev = state.prev.as_ref().map(|(s, at)| (s, now.duration_since(*at)));
                    let reading = NodeReading::between(prev.map(|p| p.0), &scrape, prev.map_or(Duration::ZERO, |p| p.1));
                    state.prev = Some((scrape, now));
                    run.event_unlogged(
                        &corr,
                        phase,
                        Event::NodeSample {
                            worker: t.worker.clone(),
                            node: t.node.clone(),
                            cpu: reading.cpu_percent.map(round1),
                            memory: round1(reading.memory_percent),
                            disk: reading.disk_percent.map(round1),
                            pressure: reading.pressure_percent.map(round1),
                        },
                    );
                    reading.violations(&thresholds).first().map(distress_reason)
                }
                Err(error) => {
                    state.prev = None;
                    state.failing += 1;
                    if state.failing >= thresholds.consecutive_violations.max(1) && !state.unwatched {
                        state.unwatched = true;
                        let action = match safety.unwatched_node {
                            UnwatchedNode::Drain => "drain",
                            UnwatchedNode::Warn => "warn",
                        };
                        run.event(
                            &corr,
                            phase,
                            Event::NodeUnwatched {
                                worker: t.worker.clone(),
                                node: t.node.clone(),
                                error: error.clone(),
                                action: action.into(),
                            },
                        );
                    }
                    match safety.unwatched_node {
                        UnwatchedNode::Drain => Some(format!("node_unwatched: its node_exporter does not answer ({error})")),
                        // no figures: nothing to judge, the node keeps its state
                        UnwatchedNode::Warn => continue,
                    }
                }
            };
            match state.judge.observe(bad, thresholds.consecutive_violations, recovery, now) {
                NodeVerdict::Keep => {}
                NodeVerdict::Drain(reason) => {
                    run.event(&corr, phase, Event::NodeDrained { worker: t.worker.clone(), node: t.node.clone(), reason: reason.clone() });
                    command(&run, &corr, phase, &t.key, ManualCommand::Open, reason);
                }
                NodeVerdict::Reopen(reason) => {
                    run.event(&corr, phase, Event::NodeReopened { worker: t.worker.clone(), node: t.node.clone(), reason: reason.clone() });
                    command(&run, &corr, phase, &t.key, ManualCommand::Reset, reason);
                }
            }
        }
        let all_drained = !targets.is_empty()
            && targets.iter().all(|(t, _)| states.get(&(t.worker.clone(), t.node.clone())).is_some_and(|s| s.judge.drained()));
        if every_worker_watched && all_drained && !stopped_for_nodes {
            stopped_for_nodes = true;
            run.stop.request(
                StopCause::Guardian,
                format!("node_distress: no node is left: all {} watched node(s) are drained", targets.len()),
                false,
            );
        }
    }
}

/// Forces `key` open or resets it, with `reason` on the transition (the breaker events and the
/// `breaker list` rows show it).
fn command(run: &RunShared, corr: &str, phase: Option<u32>, key: &str, cmd: ManualCommand, reason: String) {
    let ts = run.breakers.command(key, cmd, Instant::now(), reason).unwrap_or_default();
    run.transition_events(corr, phase, ts.into_iter().map(|t| (key.to_string(), t)).collect());
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_never_waits_longer_than_the_interval_or_two_seconds() {
        assert_eq!(scrape_timeout(Duration::from_millis(500)), Duration::from_millis(500));
        assert_eq!(scrape_timeout(Duration::from_secs(10)), Duration::from_secs(2));
    }
}
