//! The per-node section of a campaign that ran on Selenium Grid workers: for each node, the
//! sessions placed on it, its ops, success rate and latency, its breaker's transitions and final
//! state, and the recoveries that moved work away from it. Built from the store only: windows are
//! labelled `<worker>/<node>` while a slot's session is on a node (worker ids cannot contain `/`),
//! sessions come from `grid_session_opened` events, moves from `recovery_attempted` events whose
//! strategy is `other_node`.

use super::{for_each_typed, ratio, round3, Breakers};
use crate::events::Event;
use crate::metrics::{LatencySummary, Window};
use crate::store::{StoreError, StoreReader};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The strategy name of a recovery that moved a slot's work from one Grid node to another.
pub const MOVE_STRATEGY: &str = "other_node";

/// One Grid node over the whole campaign.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GridNodeReport {
    /// Grid worker id.
    pub worker: String,
    /// Node name (its `stressctl:node` stereotype capability, or host:port).
    pub node: String,
    /// Sessions opened on it.
    pub sessions: u64,
    /// Ops attempted on it.
    pub ops_attempted: u64,
    /// Ops that succeeded.
    pub ops_succeeded: u64,
    /// succeeded / attempted (0 without ops).
    pub success_rate: f64,
    /// Latency of its ops.
    pub latency_ms: LatencySummary,
    /// Transitions of its breaker (`worker:<worker>/<node>`), as `from -> to (reason)`.
    pub breaker_transitions: Vec<String>,
    /// Its breaker's state at the end (null if the breaker was never made).
    pub breaker_final: Option<String>,
    /// Slots whose work moved from this node to another one after failures or its open breaker.
    pub moved_away: u64,
}

#[derive(Default)]
struct Acc {
    sessions: BTreeSet<String>,
    window: Window,
    moved_away: u64,
}

/// The per-node reports, by worker then node; empty when no Grid worker ran.
pub fn grid_nodes(r: &StoreReader, phases: u32, breakers: &Breakers) -> Result<Vec<GridNodeReport>, StoreError> {
    let mut acc: BTreeMap<(String, String), Acc> = BTreeMap::new();
    let split = |label: &str| label.split_once('/').map(|(w, n)| (w.to_string(), n.to_string()));
    for idx in 0..phases {
        for (label, w) in r.phase_windows_per_worker(idx)? {
            if let Some(k) = split(&label) {
                let a = acc.entry(k).or_default();
                a.window.attempted += w.attempted;
                a.window.succeeded += w.succeeded;
                a.window.failed += w.failed;
                let _ = a.window.hist.add(&w.hist);
            }
        }
    }
    for_each_typed(r, None, &["grid_session_opened", "recovery_attempted"], |_, ev| match ev {
        Event::GridSessionOpened { worker, node, session } => {
            acc.entry((worker, node)).or_default().sessions.insert(session);
        }
        Event::RecoveryAttempted { strategy, worker, .. } if strategy == MOVE_STRATEGY => {
            if let Some(k) = split(&worker) {
                acc.entry(k).or_default().moved_away += 1;
            }
        }
        _ => {}
    })?;
    let finals = breakers.final_snapshot.as_ref().map(|s| &s.workers);
    Ok(acc
        .into_iter()
        .map(|((worker, node), a)| {
            let label = format!("{worker}/{node}");
            let key = format!("worker:{label}");
            GridNodeReport {
                sessions: a.sessions.len() as u64,
                ops_attempted: a.window.attempted,
                ops_succeeded: a.window.succeeded,
                success_rate: round3(ratio(a.window.succeeded, a.window.attempted)),
                latency_ms: LatencySummary::of(&a.window.hist),
                breaker_transitions: breakers
                    .transitions
                    .iter()
                    .filter(|t| t.key == key)
                    .map(|t| {
                        format!("{} -> {}{}", t.from, t.to, if t.reason.is_empty() { String::new() } else { format!(" ({})", t.reason) })
                    })
                    .collect(),
                breaker_final: finals.and_then(|m| m.get(&label)).map(|m| m.state.as_str().to_string()),
                moved_away: a.moved_away,
                worker,
                node,
            }
        })
        .collect())
}

/// The summary's lines for the Grid nodes (none without a Grid worker).
pub fn summary_lines(nodes: &[GridNodeReport]) -> Vec<String> {
    if nodes.is_empty() {
        return Vec::new();
    }
    let mut out = vec![String::new(), "Selenium Grid nodes".to_string()];
    for n in nodes {
        out.push(format!(
            "  {}/{}: {} sessions, {} ops, {:.2}% ok, p50 {:.1} ms, p95 {:.1} ms, breaker {}, work moved away {}x",
            n.worker,
            n.node,
            n.sessions,
            n.ops_attempted,
            n.success_rate * 100.0,
            n.latency_ms.p50,
            n.latency_ms.p95,
            n.breaker_final.as_deref().unwrap_or("-"),
            n.moved_away
        ));
        for t in &n.breaker_transitions {
            out.push(format!("    - breaker {t}"));
        }
    }
    out
}
