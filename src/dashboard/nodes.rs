//! The watched nodes (`[[workers]] node_metrics`) on the dashboard: per node, where it stands
//! now (watched, drained or unwatched, and why), its latest and peak figures, its drains, and a
//! bounded series of its CPU and memory — built from the `node_*` events, so the live page and
//! `stressctl dashboard ID` (which reads them back from the store) draw the same view.
//!
//! Why bounded by coarsening rather than by dropping the oldest points: the question over coffee
//! is "did a node run hot at 3 a.m.?", so the whole night stays on the chart, in ever wider
//! buckets, and each bucket keeps the highest value it saw (a peak is never averaged away).

use crate::events::Event;
use serde::Serialize;
use std::collections::BTreeMap;

/// Points a node's series keeps at most: past it, neighbouring points are merged in pairs.
pub const MAX_NODE_POINTS: usize = 600;
/// Drains a node keeps (the newest); `drains_total` counts all of them.
pub const MAX_NODE_DRAINS: usize = 64;

/// A node's CPU and memory over time, as columns a chart draws directly.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NodeSeries {
    /// Bucket starts, seconds since the epoch.
    pub t: Vec<f64>,
    /// Highest CPU busy in the bucket, percent (null: no reading yet, e.g. the first scrape).
    pub cpu: Vec<Option<f64>>,
    /// Highest memory in use in the bucket, percent.
    pub memory: Vec<Option<f64>>,
    /// Highest memory/io stall in the bucket, percent (null where the node has no PSI).
    pub pressure: Vec<Option<f64>>,
    /// Samples merged into each point (1 until the series was coarsened).
    #[serde(skip)]
    n: Vec<u32>,
    /// Samples a point takes before the next one starts (doubles at each coarsening).
    #[serde(skip)]
    stride: u32,
}

/// The higher of two readings, either of which may be missing (a first scrape has no CPU figure,
/// a node without PSI no stall): the report's peaks use it too.
pub fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

impl NodeSeries {
    fn push(&mut self, t: f64, cpu: Option<f64>, memory: f64, pressure: Option<f64>) {
        let stride = self.stride.max(1);
        if let Some(last) = self.n.last_mut().filter(|n| **n < stride) {
            *last += 1;
            let i = self.t.len() - 1;
            self.cpu[i] = max_opt(self.cpu[i], cpu);
            self.memory[i] = max_opt(self.memory[i], Some(memory));
            self.pressure[i] = max_opt(self.pressure[i], pressure);
            return;
        }
        self.t.push(t);
        self.cpu.push(cpu);
        self.memory.push(Some(memory));
        self.pressure.push(pressure);
        self.n.push(1);
        if self.t.len() > MAX_NODE_POINTS {
            self.coarsen();
        }
    }

    /// Merges neighbouring points in pairs (each keeping its earlier start and the higher
    /// values) and doubles the samples a point takes.
    fn coarsen(&mut self) {
        let pairs = self.t.len().div_ceil(2);
        for i in 0..pairs {
            let (a, b) = (2 * i, 2 * i + 1);
            self.t[i] = self.t[a];
            self.n[i] = self.n[a];
            self.cpu[i] = self.cpu[a];
            self.memory[i] = self.memory[a];
            self.pressure[i] = self.pressure[a];
            if b < self.t.len() {
                self.n[i] += self.n[b];
                self.cpu[i] = max_opt(self.cpu[i], self.cpu[b]);
                self.memory[i] = max_opt(self.memory[i], self.memory[b]);
                self.pressure[i] = max_opt(self.pressure[i], self.pressure[b]);
            }
        }
        for v in [&mut self.cpu, &mut self.memory, &mut self.pressure] {
            v.truncate(pairs);
        }
        self.t.truncate(pairs);
        self.n.truncate(pairs);
        self.stride = self.stride.max(1) * 2;
    }
}

/// One drain of a node, as the page lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeDrainView {
    /// When, seconds since the epoch.
    pub at_s: f64,
    /// `node_distress: memory 93 % > 90 %`, or `node_unwatched: ...`.
    pub reason: String,
    /// When it was given work again (None: still drained).
    pub reopened_s: Option<f64>,
}

/// One watched node.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NodeView {
    /// Worker id.
    pub worker: String,
    /// The node's name (a Grid node's stable name; the worker id for a plain URL).
    pub node: String,
    /// `watched` (getting work), `drained` (its breaker forced open) or `unwatched` (its
    /// exporter stopped answering and `[safety] unwatched_node = "warn"` left it working).
    pub state: String,
    /// Why it is drained or unwatched now.
    pub why: Option<String>,
    /// Scrapes that answered.
    pub samples: u64,
    /// The latest answer, seconds since the epoch.
    pub last_s: Option<f64>,
    /// Latest CPU busy, percent.
    pub cpu: Option<f64>,
    /// Latest memory in use, percent.
    pub memory: Option<f64>,
    /// Latest root filesystem used, percent.
    pub disk: Option<f64>,
    /// Latest memory/io stall, percent.
    pub pressure: Option<f64>,
    /// Peak CPU busy, percent.
    pub cpu_max: Option<f64>,
    /// Peak memory in use, percent.
    pub memory_max: Option<f64>,
    /// Drains so far.
    pub drains_total: u64,
    /// The newest [`MAX_NODE_DRAINS`] drains, oldest first.
    pub drains: Vec<NodeDrainView>,
    /// Times its exporter stopped answering.
    pub unwatched_total: u64,
    /// CPU and memory over the campaign.
    pub series: NodeSeries,
}

/// The watched nodes, by worker then node.
#[derive(Debug, Default)]
pub struct Nodes {
    by_key: BTreeMap<(String, String), NodeView>,
}

impl Nodes {
    fn entry(&mut self, worker: &str, node: &str) -> &mut NodeView {
        self.by_key.entry((worker.to_string(), node.to_string())).or_insert_with(|| NodeView {
            worker: worker.to_string(),
            node: node.to_string(),
            state: "watched".into(),
            ..NodeView::default()
        })
    }

    /// Takes a `node_*` event at `at_s` (others are ignored).
    pub fn on_event(&mut self, at_s: f64, ev: &Event) {
        match ev {
            Event::NodeSample { worker, node, cpu, memory, disk, pressure } => {
                let n = self.entry(worker, node);
                n.samples += 1;
                n.last_s = Some(at_s);
                (n.cpu, n.memory, n.disk, n.pressure) = (*cpu, Some(*memory), *disk, *pressure);
                n.cpu_max = max_opt(n.cpu_max, *cpu);
                n.memory_max = max_opt(n.memory_max, Some(*memory));
                n.series.push(at_s, *cpu, *memory, *pressure);
            }
            Event::NodeDrained { worker, node, reason } => {
                let n = self.entry(worker, node);
                n.state = "drained".into();
                n.why = Some(reason.clone());
                n.drains_total += 1;
                if n.drains.len() == MAX_NODE_DRAINS {
                    n.drains.remove(0);
                }
                n.drains.push(NodeDrainView { at_s, reason: reason.clone(), reopened_s: None });
            }
            Event::NodeReopened { worker, node, .. } => {
                let n = self.entry(worker, node);
                n.state = "watched".into();
                n.why = None;
                if let Some(d) = n.drains.last_mut().filter(|d| d.reopened_s.is_none()) {
                    d.reopened_s = Some(at_s);
                }
            }
            Event::NodeUnwatched { worker, node, error, action } => {
                let n = self.entry(worker, node);
                n.unwatched_total += 1;
                // a drain for it follows as its own event; "warn" leaves the node working
                if n.state != "drained" {
                    n.state = "unwatched".into();
                    n.why = Some(format!("node_exporter: {error} ({action})"));
                }
            }
            Event::NodeWatched { worker, node } => {
                let n = self.entry(worker, node);
                if n.state == "unwatched" {
                    n.state = "watched".into();
                    n.why = None;
                }
            }
            _ => {}
        }
    }

    /// The nodes, by worker then node.
    pub fn views(&self) -> Vec<NodeView> {
        self.by_key.values().cloned().collect()
    }

    /// The nodes, by worker then node, without copying.
    pub fn iter(&self) -> impl Iterator<Item = &NodeView> {
        self.by_key.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(memory: f64) -> Event {
        Event::NodeSample { worker: "grid".into(), node: "n1".into(), cpu: Some(memory / 2.0), memory, disk: Some(10.0), pressure: None }
    }

    #[test]
    fn a_nights_samples_stay_bounded_and_keep_their_peak() {
        let mut nodes = Nodes::default();
        // 8 hours at a 2 s interval, one spike in the middle
        let n = 8 * 3600 / 2;
        for i in 0..n {
            let mem = if i == n / 2 { 97.0 } else { 40.0 + (i % 7) as f64 };
            nodes.on_event(1000.0 + 2.0 * i as f64, &sample(mem));
        }
        let v = &nodes.views()[0];
        assert_eq!(v.samples, n as u64);
        assert!(v.series.t.len() <= MAX_NODE_POINTS && v.series.t.len() > MAX_NODE_POINTS / 2, "{}", v.series.t.len());
        assert_eq!(v.series.memory.iter().flatten().copied().fold(0.0, f64::max), 97.0, "the spike survives coarsening");
        assert_eq!(v.memory_max, Some(97.0));
        assert!(v.series.t.windows(2).all(|w| w[0] < w[1]), "points stay in time order");
        assert_eq!(v.series.t[0], 1000.0);
        assert_eq!(v.series.n.iter().map(|n| u64::from(*n)).sum::<u64>(), n as u64, "every sample is in one point");
    }

    #[test]
    fn drains_reopen_and_unwatched_exporters_set_the_state() {
        let mut nodes = Nodes::default();
        nodes.on_event(1.0, &sample(50.0));
        let drained = Event::NodeDrained { worker: "grid".into(), node: "n1".into(), reason: "node_distress: memory 93 % > 90 %".into() };
        nodes.on_event(2.0, &drained);
        let v = &nodes.views()[0];
        assert_eq!((v.state.as_str(), v.why.as_deref()), ("drained", Some("node_distress: memory 93 % > 90 %")));
        nodes.on_event(3.0, &Event::NodeReopened { worker: "grid".into(), node: "n1".into(), reason: "under limits".into() });
        let v = &nodes.views()[0];
        assert_eq!((v.state.as_str(), v.drains_total), ("watched", 1));
        assert_eq!(v.drains[0], NodeDrainView { at_s: 2.0, reason: "node_distress: memory 93 % > 90 %".into(), reopened_s: Some(3.0) });
        let gone =
            Event::NodeUnwatched { worker: "grid".into(), node: "n1".into(), error: "connection refused".into(), action: "warn".into() };
        nodes.on_event(4.0, &gone);
        let v = &nodes.views()[0];
        assert_eq!(v.state, "unwatched");
        assert!(v.why.as_deref().is_some_and(|w| w.contains("connection refused") && w.contains("warn")));
        nodes.on_event(5.0, &Event::NodeWatched { worker: "grid".into(), node: "n1".into() });
        assert_eq!(nodes.views()[0].state, "watched");
        for i in 0..(MAX_NODE_DRAINS + 5) {
            nodes.on_event(10.0 + i as f64, &drained);
        }
        let v = &nodes.views()[0];
        assert_eq!((v.drains.len(), v.drains_total), (MAX_NODE_DRAINS, MAX_NODE_DRAINS as u64 + 6));
    }
}
