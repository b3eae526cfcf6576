//! The watched nodes (`[[workers]] node_metrics`) in the reports: per node, its resource series as
//! its node_exporter reported them (`node_sample` events), their peaks, and its drains — when,
//! why, and when it was given work again — and the times its exporter stopped answering. Built
//! from the store's events only, so `stressctl report` rebuilds it.

use super::typed_events::for_each_typed;
use crate::dashboard::nodes::max_opt as max;
use crate::events::Event;
use crate::store::{StoreError, StoreReader};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most points of a node's series the JSON report keeps: a night at a 2 s interval is
/// tens of thousands of samples; the peaks are computed over all of them.
pub const MAX_SERIES_POINTS: usize = 240;

/// One point of a node's series.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodePoint {
    /// RFC 3339.
    pub at: String,
    /// CPU busy, percent (null on a node's first scrape).
    pub cpu: Option<f64>,
    /// Memory in use, percent.
    pub memory: f64,
    /// Root filesystem used, percent.
    pub disk: Option<f64>,
    /// Memory/io full stall, percent.
    pub pressure: Option<f64>,
}

/// A drain of a node: from `node_drained` to `node_reopened` (null while it stayed drained to
/// the end).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeDrain {
    /// RFC 3339.
    pub at: String,
    /// `node_distress: memory 93 % > 90 %` or `node_unwatched: ...`.
    pub reason: String,
    /// When it was reopened.
    pub reopened_at: Option<String>,
    /// Why it was reopened.
    pub reopen_reason: Option<String>,
}

/// One watched node over the campaign.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    /// Worker id.
    pub worker: String,
    /// The node's name (a Grid node's stable name; the worker id for a plain URL).
    pub node: String,
    /// Scrapes that answered.
    pub samples: u64,
    /// Peak CPU busy, percent.
    pub cpu_max: Option<f64>,
    /// Peak memory in use, percent.
    pub memory_max: Option<f64>,
    /// Peak root filesystem used, percent.
    pub disk_max: Option<f64>,
    /// Peak stall, percent.
    pub pressure_max: Option<f64>,
    /// Its drains, in order.
    pub drains: Vec<NodeDrain>,
    /// Times its exporter stopped answering (`node_unwatched`), as `at: error (action)`.
    pub unwatched: Vec<String>,
    /// The series, evenly thinned to at most [`MAX_SERIES_POINTS`].
    pub series: Vec<NodePoint>,
}

/// The watched nodes, by worker then node; empty when none was watched.
pub fn nodes(r: &StoreReader) -> Result<Vec<NodeReport>, StoreError> {
    let mut acc: BTreeMap<(String, String), NodeReport> = BTreeMap::new();
    for_each_typed(r, None, &["node_sample", "node_drained", "node_reopened", "node_unwatched"], |e, ev| match ev {
        Event::NodeSample { worker, node, cpu, memory, disk, pressure } => {
            let n = node_of(&mut acc, worker, node);
            n.samples += 1;
            n.cpu_max = max(n.cpu_max, cpu);
            n.memory_max = max(n.memory_max, Some(memory));
            n.disk_max = max(n.disk_max, disk);
            n.pressure_max = max(n.pressure_max, pressure);
            n.series.push(NodePoint { at: e.at, cpu, memory, disk, pressure });
        }
        Event::NodeDrained { worker, node, reason } => {
            let n = node_of(&mut acc, worker, node);
            n.drains.push(NodeDrain { at: e.at, reason, reopened_at: None, reopen_reason: None });
        }
        Event::NodeReopened { worker, node, reason } => {
            let n = node_of(&mut acc, worker, node);
            if let Some(d) = n.drains.iter_mut().rev().find(|d| d.reopened_at.is_none()) {
                d.reopened_at = Some(e.at);
                d.reopen_reason = Some(reason);
            }
        }
        Event::NodeUnwatched { worker, node, error, action } => {
            let n = node_of(&mut acc, worker, node);
            n.unwatched.push(format!("{}: {error} ({action})", e.at));
        }
        _ => {}
    })?;
    Ok(acc
        .into_values()
        .map(|mut n| {
            n.series = thin(std::mem::take(&mut n.series), MAX_SERIES_POINTS);
            n
        })
        .collect())
}

fn node_of(acc: &mut BTreeMap<(String, String), NodeReport>, worker: String, node: String) -> &mut NodeReport {
    acc.entry((worker.clone(), node.clone())).or_insert_with(|| NodeReport { worker, node, ..NodeReport::default() })
}

/// Every k-th point so that at most `max` remain, the last one always kept.
fn thin<T: Clone>(v: Vec<T>, max: usize) -> Vec<T> {
    if v.len() <= max || max < 2 {
        return v;
    }
    let step = v.len().div_ceil(max - 1);
    let last = v.last().cloned();
    let mut out: Vec<T> = v.into_iter().step_by(step).collect();
    out.extend(last);
    out
}

/// The summary's lines for the watched nodes (none when no node was watched).
pub fn summary_lines(nodes: &[NodeReport]) -> Vec<String> {
    if nodes.is_empty() {
        return Vec::new();
    }
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}%"));
    let mut out = vec![String::new(), "Watched nodes (node_exporter; peaks over the campaign)".to_string()];
    for n in nodes {
        out.push(format!(
            "  {}/{}: {} samples, cpu max {}, memory max {}, disk max {}, stall max {}, drained {}x",
            n.worker,
            n.node,
            n.samples,
            opt(n.cpu_max),
            opt(n.memory_max),
            opt(n.disk_max),
            opt(n.pressure_max),
            n.drains.len()
        ));
        for d in &n.drains {
            let back = match (&d.reopened_at, &d.reopen_reason) {
                (Some(at), Some(why)) => format!("; reopened {at} ({why})"),
                _ => "; drained to the end".to_string(),
            };
            out.push(format!("    - drained {}: {}{back}", d.at, d.reason));
        }
        for u in &n.unwatched {
            out.push(format!("    - exporter not answering {u}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_series_is_thinned_keeping_its_ends() {
        let v: Vec<u32> = (0..1000).collect();
        let t = thin(v, 240);
        assert!(t.len() <= 241, "{}", t.len());
        assert_eq!(t.first(), Some(&0));
        assert_eq!(t.last(), Some(&999));
        assert_eq!(thin(vec![1, 2, 3], 240), [1, 2, 3]);
    }

    #[test]
    fn summary_names_each_drain_with_its_reason() {
        let n = NodeReport {
            worker: "grid".into(),
            node: "n1".into(),
            samples: 3,
            memory_max: Some(93.0),
            drains: vec![NodeDrain {
                at: "t1".into(),
                reason: "node_distress: memory 93 % > 90 %".into(),
                reopened_at: Some("t2".into()),
                reopen_reason: Some("node_recovered: under the limits for 30s".into()),
            }],
            ..NodeReport::default()
        };
        let lines = summary_lines(&[n]);
        assert!(
            lines[2].contains("grid/n1: 3 samples") && lines[2].contains("memory max 93.0%") && lines[2].contains("drained 1x"),
            "{lines:?}"
        );
        assert_eq!(lines[3], "    - drained t1: node_distress: memory 93 % > 90 %; reopened t2 (node_recovered: under the limits for 30s)");
        assert!(summary_lines(&[]).is_empty());
    }
}
