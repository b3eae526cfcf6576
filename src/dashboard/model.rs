//! What the dashboard, `/metrics` and `report.html` know about a campaign, built from its typed
//! events, its op windows and its guardian samples, fed in order.
//!
//! One model serves all three, live or from a store: the live dashboard feeds it from the event
//! bus and by following the store; `stressctl dashboard ID` and the report feed it from the store
//! alone. So a chart in `report.html` is the chart the dashboard showed.
//!
//! Everything here only grows (counters) or is bounded (series buckets, the last
//! [`EVENT_RING`] events), so the model's memory does not grow with the campaign's length.

use super::series::{OpsColumns, OpsRow, OpsSeries, ResourceColumns, ResourceSeries, SampleRow};
use crate::breaker::RegistrySnapshot;
use crate::control::status::{GuardianStatus, OpsStatus, ResourceStatus, StatusDoc};
use crate::events::{Event, EventRecord};
use crate::guardian::Thresholds;
use crate::store::unix_ms;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events kept for a page that connects late (replayed on `GET /api/events`).
pub const EVENT_RING: usize = 1000;
/// Spans a breaker's timeline shows at most: a breaker that flaps every few hundred ms for a
/// night is drawn as slots of equal time, each in the worst state it was in.
pub const MAX_SPANS: usize = 1000;
/// The `browser` of ops that no browser ran (synthetic), in `/metrics`' labels.
pub const NO_BROWSER: &str = "none";
/// Upper bounds of the Prometheus latency histogram buckets, seconds.
pub const LATENCY_BOUNDS_S: [f64; 14] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The campaign as a whole.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Meta {
    /// Campaign id.
    pub id: String,
    /// Profile name.
    pub profile: String,
    /// Start, seconds since the epoch.
    pub started_s: f64,
    /// Planned duration of the phases, seconds (0 when unknown).
    pub planned_s: f64,
    /// Phases planned.
    pub phases_planned: u32,
    /// Whether the campaign ended (a `campaign_ended` event was seen).
    pub ended: bool,
    /// passed | failed | halted | emergency_stopped, once ended.
    pub outcome: Option<String>,
    /// Why it stopped early, if it did.
    pub stop_reason: Option<String>,
    /// When it ended, seconds since the epoch.
    pub ended_s: Option<f64>,
    /// `live` (a running stressctl) or `store` (read back from a campaign's store).
    pub source: String,
}

/// A phase, from its `phase_started` and `phase_ended` events.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PhaseView {
    /// 0-based.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Task kind.
    pub task: String,
    /// Sessions it ran.
    pub sessions: u32,
    /// Planned duration, seconds.
    pub planned_s: f64,
    /// Start, seconds since the epoch.
    pub started_s: f64,
    /// End, seconds since the epoch (None while it runs).
    pub ended_s: Option<f64>,
    /// running | completed | stopped | paused.
    pub status: String,
    /// Ops attempted (at its end).
    pub attempted: u64,
    /// Ops that succeeded.
    pub succeeded: u64,
    /// Ops that failed.
    pub failed: u64,
    /// Ops per second.
    pub throughput_ops_per_s: f64,
    /// p95 latency, ms.
    pub p95_ms: f64,
    /// Whether it met its criteria (None while it runs).
    pub passed: Option<bool>,
    /// A capacity phase's steps so far, in the order measured (empty for a load phase).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capacity: Vec<CapacityStepView>,
}

/// One measured step of a capacity search, from its `capacity_step` event.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CapacityStepView {
    /// The browser searched, when the phase spans several.
    pub browser: Option<String>,
    /// Sessions it ran.
    pub sessions: u32,
    /// Ops per second after its warm-up.
    pub ops_per_s: f64,
    /// The p95 its criteria judged, ms.
    pub p95_ms: f64,
    /// It met the phase's criteria.
    pub passed: bool,
    /// Why not.
    pub why: String,
}

/// One state of a breaker over a time span.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Span {
    /// Start, seconds since the epoch.
    pub from_s: f64,
    /// End (None: still in it).
    pub to_s: Option<f64>,
    /// closed | open | half_open | forced_open | disabled.
    pub state: &'static str,
}

/// The state names a breaker has (a span holds one of these, not a string of its own: a
/// flapping breaker's lane is long while the campaign runs).
fn state_name(s: &str) -> &'static str {
    use crate::breaker::BreakerState as S;
    [S::Closed, S::Open, S::HalfOpen, S::ForcedOpen, S::Disabled].into_iter().map(S::as_str).find(|n| *n == s).unwrap_or("unknown")
}

/// A breaker's states over time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Lane {
    /// `worker:<id>`, `browser:<name>`, `task:<kind>`, `hardware:<class>`.
    pub key: String,
    /// Consecutive spans, oldest first.
    pub spans: Vec<Span>,
    /// Transitions seen.
    pub transitions: u64,
    /// Operators' commands on this breaker (`stressctl breaker ...`), the newest
    /// [`MAX_MARKS`], oldest first: drawn on the lane with who asked and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<Mark>,
}

/// Commands a lane keeps at most (an operator's commands are few; a script's are capped).
pub const MAX_MARKS: usize = 64;

/// An operator's command on a breaker, on its lane.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mark {
    /// When, seconds since the epoch.
    pub at_s: f64,
    /// `open`, `close`, `reset`, `disable`.
    pub action: String,
    /// Who asked (uid), and why: the event's one line.
    pub text: String,
}

/// How bad a state is for a timeline slot that saw several.
fn severity(state: &str) -> u8 {
    match state {
        "open" => 4,
        "forced_open" => 3,
        "half_open" => 2,
        "disabled" => 1,
        _ => 0,
    }
}

impl Lane {
    /// The lane with at most [`MAX_SPANS`] spans between `t0` and `t1`: when it has more, time is
    /// cut into equal slots and each slot shows the worst state it saw (an open breaker is never
    /// hidden by downsampling), neighbouring equal slots merged.
    pub fn bounded(&self, t0: f64, t1: f64) -> Lane {
        if self.spans.len() <= MAX_SPANS || t1 <= t0 {
            return self.clone();
        }
        let w = (t1 - t0) / MAX_SPANS as f64;
        let mut slots: Vec<Option<&'static str>> = vec![None; MAX_SPANS];
        for sp in &self.spans {
            let end = sp.to_s.unwrap_or(t1);
            let a = (((sp.from_s - t0) / w).floor().max(0.0) as usize).min(MAX_SPANS - 1);
            let b = (((end - t0) / w).ceil().max(1.0) as usize).min(MAX_SPANS);
            for slot in &mut slots[a..b.max(a + 1)] {
                if slot.is_none_or(|s| severity(sp.state) > severity(s)) {
                    *slot = Some(sp.state);
                }
            }
        }
        let mut spans: Vec<Span> = Vec::new();
        for (i, slot) in slots.iter().enumerate() {
            let Some(state) = slot else { continue };
            let from_s = crate::fmt::round3(t0 + i as f64 * w);
            match spans.last_mut() {
                Some(last) if last.state == *state && last.to_s == Some(from_s) => {
                    last.to_s = Some(crate::fmt::round3(t0 + (i + 1) as f64 * w))
                }
                _ => spans.push(Span { from_s, to_s: Some(crate::fmt::round3(t0 + (i + 1) as f64 * w)), state }),
            }
        }
        if self.spans.last().is_some_and(|s| s.to_s.is_none()) {
            if let Some(last) = spans.last_mut() {
                last.to_s = None;
            }
        }
        Lane { key: self.key.clone(), spans, transitions: self.transitions, marks: self.marks.clone() }
    }
}

/// An event as JSON for pages: the stored `kind`/`data` pair plus `seq`, `at` (RFC 3339),
/// `corr`, `phase` and the one-line `message`.
pub fn event_json(seq: u64, rec: &EventRecord) -> String {
    let mut v = match serde_json::to_value(&rec.event) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    v.insert("seq".into(), seq.into());
    v.insert("at".into(), crate::fmt::rfc3339(rec.at).into());
    v.insert("corr".into(), rec.corr.clone().into());
    v.insert("phase".into(), rec.phase.map(Value::from).unwrap_or(Value::Null));
    v.insert("message".into(), rec.event.describe().into());
    Value::Object(v).to_string()
}

/// Recovery ladder results of one failure class and strategy.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RecoveryRow {
    /// Failure class.
    pub class: String,
    /// Rung tried.
    pub strategy: String,
    /// Walks that ended on this rung.
    pub attempts: u64,
    /// Of which recovered.
    pub succeeded: u64,
}

/// What the overview and breaker pages (and `report.html`) draw.
#[derive(Clone, Debug, Serialize)]
pub struct Overview {
    /// The campaign.
    pub campaign: Meta,
    /// Live status (the dashboard of a running campaign only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusDoc>,
    /// Phases, by index.
    pub phases: Vec<PhaseView>,
    /// Bucket width of the series, seconds.
    pub bucket_s: f64,
    /// Op series.
    pub ops: OpsColumns,
    /// Guardian series.
    pub resources: ResourceColumns,
    /// Breaker timelines.
    pub breakers: Vec<Lane>,
    /// Recovery results per class and strategy.
    pub recoveries: Vec<RecoveryRow>,
    /// The nodes watched through their node_exporters (`[[workers]] node_metrics`): state,
    /// figures, drains and series; absent when none is watched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<super::nodes::NodeView>,
    /// The latest time the data reaches, seconds since the epoch (open spans end here).
    pub now_s: f64,
}

/// An event as the dashboard sends it (Server-Sent Events `data:`), numbered for `Last-Event-ID`.
#[derive(Debug)]
pub struct SseItem {
    /// Sequence number, from 1.
    pub id: u64,
    /// `{"seq","at","corr","phase","kind","data","message"}`.
    pub json: String,
    /// `campaign_ended`: nothing follows.
    pub last: bool,
}

/// Op counts of one phase, task kind and worker (the Prometheus ops counters).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OpCount {
    /// Attempted.
    pub attempted: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Failed.
    pub failed: u64,
}

/// A Prometheus histogram of latencies: per-bucket counts (not cumulative), the `+Inf` bucket
/// last.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyBuckets {
    /// Counts per bound of [`LATENCY_BOUNDS_S`], then `+Inf`.
    pub counts: [u64; LATENCY_BOUNDS_S.len() + 1],
    /// Sum of the latencies, seconds.
    pub sum_s: f64,
    /// Ops.
    pub count: u64,
}

impl Default for LatencyBuckets {
    fn default() -> Self {
        LatencyBuckets { counts: [0; LATENCY_BOUNDS_S.len() + 1], sum_s: 0.0, count: 0 }
    }
}

impl LatencyBuckets {
    fn add(&mut self, h: &Histogram<u64>) {
        for v in h.iter_recorded() {
            let n = v.count_at_value();
            let s = v.value_iterated_to() as f64 / 1e6;
            let i = LATENCY_BOUNDS_S.iter().position(|b| s <= *b).unwrap_or(LATENCY_BOUNDS_S.len());
            self.counts[i] += n;
            self.sum_s += s * n as f64;
            self.count += n;
        }
    }
}

/// Guardian totals and the latest sample.
#[derive(Clone, Debug, Default)]
pub struct Guardian {
    /// Samples seen.
    pub samples: u64,
    /// Samples over a threshold.
    pub violating: u64,
    /// The latest sample.
    pub last: Option<SampleRow>,
    /// Thresholds in force for the latest sample.
    pub last_limits: Option<Thresholds>,
}

/// One op window, as the store has it.
pub struct WindowIn<'a> {
    /// Phase index.
    pub phase: u32,
    /// Worker id.
    pub worker: &'a str,
    /// Task kind.
    pub task: &'a str,
    /// The ops.
    pub ops: OpsRow<'a>,
    /// Ops that failed.
    pub failed: u64,
}

/// The guardian thresholds of each phase (and outside phases).
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// Per phase index.
    pub phases: Vec<Thresholds>,
    /// Outside phases.
    pub default: Option<Thresholds>,
}

impl Limits {
    /// The thresholds of `phase` (or outside phases).
    pub fn of(&self, phase: Option<u32>) -> Option<&Thresholds> {
        phase.and_then(|p| self.phases.get(p as usize)).or(self.default.as_ref())
    }
}

/// See the module doc.
pub struct Model {
    meta: Meta,
    phases: BTreeMap<u32, PhaseView>,
    ops: OpsSeries,
    resources: ResourceSeries,
    limits: Limits,
    lanes: BTreeMap<String, Lane>,
    recoveries: BTreeMap<(String, String), RecoveryRow>,
    recovery_outcomes: BTreeMap<(String, String, String), u64>,
    op_counts: BTreeMap<(u32, String, String), OpCount>,
    latency: BTreeMap<(u32, String, String), LatencyBuckets>,
    /// Worker id -> browser, from the `campaign_started` event.
    worker_browsers: BTreeMap<String, String>,
    event_counts: BTreeMap<&'static str, u64>,
    guardian: Guardian,
    nodes: super::nodes::Nodes,
    final_snapshot: Option<RegistrySnapshot>,
    latest_ms: i64,
    ring: VecDeque<Arc<SseItem>>,
    seq: u64,
    tx: broadcast::Sender<Arc<SseItem>>,
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

impl Model {
    /// An empty model of campaign `id`, with series buckets `bucket_ms` wide.
    pub fn new(id: &str, profile: &str, started_ms: i64, bucket_ms: i64, limits: Limits, source: &str) -> Model {
        Model {
            meta: Meta {
                id: id.to_string(),
                profile: profile.to_string(),
                started_s: secs(started_ms),
                source: source.to_string(),
                ..Meta::default()
            },
            phases: BTreeMap::new(),
            ops: OpsSeries::new(bucket_ms),
            resources: ResourceSeries::new(bucket_ms),
            limits,
            lanes: BTreeMap::new(),
            recoveries: BTreeMap::new(),
            recovery_outcomes: BTreeMap::new(),
            op_counts: BTreeMap::new(),
            latency: BTreeMap::new(),
            worker_browsers: BTreeMap::new(),
            event_counts: BTreeMap::new(),
            guardian: Guardian::default(),
            nodes: super::nodes::Nodes::default(),
            final_snapshot: None,
            latest_ms: started_ms,
            ring: VecDeque::new(),
            seq: 0,
            tx: broadcast::channel(crate::events::BUS_CAPACITY).0,
        }
    }

    /// The campaign.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Adds an event.
    pub fn on_event(&mut self, rec: &EventRecord) {
        let at = unix_ms(rec.at);
        self.latest_ms = self.latest_ms.max(at);
        *self.event_counts.entry(rec.event.kind()).or_insert(0) += 1;
        match &rec.event {
            Event::CampaignStarted { profile, phases, planned_ms, workers, .. } => {
                self.worker_browsers.extend(workers.iter().map(|w| (w.id.clone(), w.browser.clone())));
                self.meta.profile.clone_from(profile);
                self.meta.phases_planned = *phases;
                self.meta.planned_s = *planned_ms as f64 / 1000.0;
            }
            Event::PhaseStarted { name, total, sessions, duration_ms, task, .. } => {
                let idx = rec.phase.unwrap_or(0);
                let p = self.phases.entry(idx).or_insert_with(|| PhaseView { index: idx, started_s: secs(at), ..PhaseView::default() });
                p.name.clone_from(name);
                p.task.clone_from(task);
                p.sessions = *sessions;
                p.planned_s = *duration_ms as f64 / 1000.0;
                p.status = "running".into();
                p.ended_s = None;
                p.passed = None;
                self.meta.phases_planned = self.meta.phases_planned.max(*total);
            }
            Event::PhaseEnded { name, status, attempted, succeeded, failed, sessions, throughput_ops_per_s, p95_ms, passed, .. } => {
                let idx = rec.phase.unwrap_or(0);
                let p = self.phases.entry(idx).or_insert_with(|| PhaseView { index: idx, started_s: secs(at), ..PhaseView::default() });
                p.name.clone_from(name);
                p.status.clone_from(status);
                p.attempted = *attempted;
                p.succeeded = *succeeded;
                p.failed = *failed;
                p.sessions = *sessions;
                p.throughput_ops_per_s = *throughput_ops_per_s;
                p.p95_ms = *p95_ms;
                p.passed = Some(*passed);
                p.ended_s = Some(secs(at));
            }
            Event::CapacityStep { browser, sessions, ops_per_s, p95_ms, passed, failures, .. } => {
                let idx = rec.phase.unwrap_or(0);
                let p = self.phases.entry(idx).or_insert_with(|| PhaseView { index: idx, started_s: secs(at), ..PhaseView::default() });
                p.capacity.push(CapacityStepView {
                    browser: browser.clone(),
                    sessions: *sessions,
                    ops_per_s: *ops_per_s,
                    p95_ms: *p95_ms,
                    passed: *passed,
                    why: failures.join("; "),
                });
            }
            Event::BreakerCommand { action, keys, .. } => {
                let t = secs(at);
                let text = rec.event.describe();
                for key in keys {
                    let started = self.meta.started_s;
                    let lane = self.lanes.entry(key.clone()).or_insert_with(|| Lane {
                        key: key.clone(),
                        spans: vec![Span { from_s: started.min(t), to_s: None, state: "closed" }],
                        transitions: 0,
                        marks: Vec::new(),
                    });
                    if lane.marks.len() == MAX_MARKS {
                        lane.marks.remove(0);
                    }
                    lane.marks.push(Mark { at_s: t, action: action.clone(), text: text.clone() });
                }
            }
            Event::BreakerTransition { key, from, to, .. } => {
                let t = secs(at);
                let lane = self.lanes.entry(key.clone()).or_insert_with(|| Lane {
                    key: key.clone(),
                    spans: vec![Span { from_s: self.meta.started_s.min(t), to_s: None, state: state_name(from) }],
                    transitions: 0,
                    marks: Vec::new(),
                });
                if let Some(last) = lane.spans.last_mut() {
                    last.to_s = Some(t);
                }
                lane.spans.push(Span { from_s: t, to_s: None, state: state_name(to) });
                lane.transitions += 1;
                // memory stays bounded however long a breaker flaps: the past is coarsened
                if lane.spans.len() > 4 * MAX_SPANS {
                    *lane = lane.bounded(self.meta.started_s, t);
                }
            }
            Event::BreakerSnapshot(s) => self.final_snapshot = Some(s.clone()),
            Event::NodeSample { .. } => {
                // a node's samples are its chart's data, not news: every node every sampling
                // interval would push the other events out of the ring (and the page's list)
                self.nodes.on_event(secs(at), &rec.event);
                return;
            }
            Event::NodeDrained { .. } | Event::NodeReopened { .. } | Event::NodeUnwatched { .. } | Event::NodeWatched { .. } => {
                self.nodes.on_event(secs(at), &rec.event)
            }
            Event::RecoveryAttempted { class, strategy, outcome, .. } => {
                let key = (class.as_str().to_string(), strategy.clone());
                let row = self.recoveries.entry(key.clone()).or_insert_with(|| RecoveryRow {
                    class: key.0.clone(),
                    strategy: key.1.clone(),
                    ..RecoveryRow::default()
                });
                row.attempts += 1;
                if outcome == "succeeded" {
                    row.succeeded += 1;
                }
                *self.recovery_outcomes.entry((key.0, key.1, outcome.clone())).or_insert(0) += 1;
            }
            Event::CampaignEnded { outcome, stop_reason } => {
                self.meta.ended = true;
                self.meta.outcome = Some(outcome.clone());
                self.meta.stop_reason.clone_from(stop_reason);
                self.meta.ended_s = Some(secs(at));
                for lane in self.lanes.values_mut() {
                    if let Some(last) = lane.spans.last_mut() {
                        last.to_s.get_or_insert(secs(at));
                    }
                }
            }
            _ => {}
        }
        self.publish(rec);
    }

    /// Numbers the event, keeps it in the ring and sends it to the connected pages.
    fn publish(&mut self, rec: &EventRecord) {
        self.seq += 1;
        let last = matches!(rec.event, Event::CampaignEnded { .. });
        let item = Arc::new(SseItem { id: self.seq, json: event_json(self.seq, rec), last });
        if self.ring.len() == EVENT_RING {
            self.ring.pop_front();
        }
        self.ring.push_back(item.clone());
        // no page connected is fine
        let _ = self.tx.send(item);
    }

    /// The events kept after `after` (by sequence number), and a receiver of the ones to come:
    /// taken together, so a page sees every event once, in order.
    pub fn subscribe(&self, after: u64) -> (Vec<Arc<SseItem>>, broadcast::Receiver<Arc<SseItem>>) {
        (self.ring.iter().filter(|i| i.id > after).cloned().collect(), self.tx.subscribe())
    }

    /// The browser that ran a worker's ops: the worker's, as the `campaign_started` event named it;
    /// a Selenium Grid node's windows (`<worker>/<node>`) are its worker's; a worker it did not
    /// name ran Chromium (stores from before browsers were configurable); None for ops that no
    /// browser ran (synthetic).
    pub fn browser_of<'a>(&'a self, worker: &str) -> Option<&'a str> {
        if worker == "synthetic" {
            return None;
        }
        let own = self.worker_browsers.get(worker);
        let grid = || worker.split_once('/').and_then(|(w, _)| self.worker_browsers.get(w));
        Some(own.or_else(grid).map_or("chromium", String::as_str))
    }

    /// Adds an op window.
    pub fn on_window(&mut self, w: &WindowIn<'_>) {
        self.latest_ms = self.latest_ms.max(w.ops.end_ms);
        let browser = self.browser_of(w.worker).map(str::to_string);
        self.ops.add(&w.ops, browser.as_deref());
        let c = self.op_counts.entry((w.phase, w.task.to_string(), w.worker.to_string())).or_default();
        c.attempted += w.ops.attempted;
        c.succeeded += w.ops.succeeded;
        c.failed += w.failed;
        if let Some(h) = w.ops.hist {
            let key = (w.phase, w.task.to_string(), browser.unwrap_or_else(|| NO_BROWSER.to_string()));
            self.latency.entry(key).or_default().add(h);
        }
    }

    /// Adds a guardian sample.
    pub fn on_sample(&mut self, s: SampleRow) {
        self.latest_ms = self.latest_ms.max(s.at_ms);
        let limits = self.limits.of(s.phase).cloned();
        self.resources.add(&s, limits.as_ref());
        self.guardian.samples += 1;
        if s.violating {
            self.guardian.violating += 1;
        }
        self.guardian.last = Some(s);
        self.guardian.last_limits = limits;
    }

    /// Names a phase seen in the windows before its `phase_started` event (a resumed campaign's
    /// earlier phases).
    pub fn on_phase_row(&mut self, idx: u32, name: &str, task: &str, started_ms: i64) {
        self.phases.entry(idx).or_insert_with(|| PhaseView {
            index: idx,
            name: name.to_string(),
            task: task.to_string(),
            started_s: secs(started_ms),
            status: "running".into(),
            ..PhaseView::default()
        });
    }

    /// The data is complete (a report): every series bucket is closed.
    pub fn finish(&mut self) {
        self.ops.finish();
    }

    /// The overview, with `status` when live.
    pub fn overview(&self, status: Option<StatusDoc>) -> Overview {
        let now_s = secs(self.latest_ms);
        let end = self.meta.ended_s.unwrap_or(now_s);
        Overview {
            campaign: self.meta.clone(),
            status,
            phases: self.phases.values().cloned().collect(),
            bucket_s: self.ops.width() as f64 / 1000.0,
            ops: self.ops.columns(),
            resources: self.resources.columns(),
            breakers: self.lanes.values().map(|l| l.bounded(self.meta.started_s, end)).collect(),
            recoveries: self.recoveries.values().cloned().collect(),
            nodes: self.nodes.views(),
            now_s,
        }
    }

    /// A phase's name (its index as text when unknown).
    pub fn phase_name(&self, idx: u32) -> String {
        self.phases.get(&idx).map(|p| p.name.clone()).filter(|n| !n.is_empty()).unwrap_or_else(|| idx.to_string())
    }

    /// Ops per (phase, task kind, worker).
    pub fn op_counts(&self) -> &BTreeMap<(u32, String, String), OpCount> {
        &self.op_counts
    }

    /// Latency histograms per (phase, task kind, browser) ([`NO_BROWSER`] for synthetic ops).
    pub fn latency(&self) -> &BTreeMap<(u32, String, String), LatencyBuckets> {
        &self.latency
    }

    /// Recovery walks per (class, strategy, outcome).
    pub fn recovery_outcomes(&self) -> &BTreeMap<(String, String, String), u64> {
        &self.recovery_outcomes
    }

    /// Events per kind.
    pub fn event_counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.event_counts
    }

    /// The watched nodes.
    pub fn nodes(&self) -> &super::nodes::Nodes {
        &self.nodes
    }

    /// Guardian totals and the latest sample.
    pub fn guardian(&self) -> &Guardian {
        &self.guardian
    }

    /// The breaker snapshot written at the end of the campaign, once seen.
    pub fn final_snapshot(&self) -> Option<&RegistrySnapshot> {
        self.final_snapshot.as_ref()
    }

    /// The running phase (the last one started and not ended).
    pub fn running_phase(&self) -> Option<&PhaseView> {
        self.phases.values().next_back().filter(|p| p.ended_s.is_none())
    }

    /// A status document for a campaign that is not running here (read from its store, or
    /// ended): the shape of `stressctl status --json`, with state `ended` or `interrupted`.
    pub fn status_doc(&self) -> StatusDoc {
        let (mut attempted, mut succeeded, mut failed) = (0, 0, 0);
        for c in self.op_counts.values() {
            attempted += c.attempted;
            succeeded += c.succeeded;
            failed += c.failed;
        }
        let resources = self.guardian.last.as_ref().map(|s| ResourceStatus {
            cpu_percent: s.cpu,
            memory_percent: s.memory,
            disk_percent: s.disk,
            tree_rss_mb: s.tree_rss >> 20,
            tree_processes: 0,
            daemon_rss_mb: 0,
        });
        StatusDoc {
            campaign_id: self.meta.id.clone(),
            profile: self.meta.profile.clone(),
            pid: 0,
            state: if self.meta.ended { "ended" } else { "interrupted" }.into(),
            stop_reason: self.meta.stop_reason.clone(),
            uptime_s: ((self.latest_ms as f64 / 1000.0 - self.meta.started_s).max(0.0)) as u64,
            phase: None,
            ops: OpsStatus {
                attempted,
                succeeded,
                failed,
                success_rate: if attempted > 0 { (succeeded as f64 / attempted as f64 * 10000.0).round() / 10000.0 } else { 1.0 },
            },
            p95_ms: None,
            health: self.guardian.last.as_ref().map(|s| s.health.round()),
            resources,
            guardian: GuardianStatus {
                samples: self.guardian.samples,
                violations: self.event_counts.get("guardian_violation").copied().unwrap_or(0),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn rec(ms: u64, phase: Option<u32>, event: Event) -> EventRecord {
        EventRecord { at: UNIX_EPOCH + Duration::from_millis(ms), corr: "c".into(), phase, event }
    }

    fn transition(key: &str, from: &str, to: &str) -> Event {
        Event::BreakerTransition { key: key.into(), from: from.into(), to: to.into(), reason: "r".into() }
    }

    #[test]
    fn breaker_lanes_follow_the_transitions_and_close_at_the_end() {
        let mut m = Model::new("c", "quick", 1000, 1000, Limits::default(), "store");
        m.on_event(&rec(2000, Some(0), transition("worker:w1", "closed", "open")));
        m.on_event(&rec(5000, Some(0), transition("worker:w1", "open", "half_open")));
        m.on_event(&rec(9000, None, Event::CampaignEnded { outcome: "failed".into(), stop_reason: None }));
        let o = m.overview(None);
        let spans = &o.breakers[0].spans;
        let states: Vec<(&str, f64, Option<f64>)> = spans.iter().map(|s| (s.state, s.from_s, s.to_s)).collect();
        assert_eq!(states, vec![("closed", 1.0, Some(2.0)), ("open", 2.0, Some(5.0)), ("half_open", 5.0, Some(9.0))]);
        assert!(o.campaign.ended);
        assert_eq!(o.campaign.outcome.as_deref(), Some("failed"));
    }

    #[test]
    fn a_flapping_breaker_is_bounded_and_its_opens_stay_visible() {
        let mut m = Model::new("c", "quick", 0, 1000, Limits::default(), "store");
        // 5000 short opens over 5000 s
        for i in 0..5000u64 {
            m.on_event(&rec(i * 1000 + 100, None, transition("task:t", "closed", "open")));
            m.on_event(&rec(i * 1000 + 200, None, transition("task:t", "open", "closed")));
        }
        assert!(m.lanes["task:t"].spans.len() <= 4 * MAX_SPANS + 1, "kept bounded in memory: {}", m.lanes["task:t"].spans.len());
        let lane = &m.overview(None).breakers[0];
        assert_eq!(lane.transitions, 10_000);
        assert!(lane.spans.len() <= MAX_SPANS, "{}", lane.spans.len());
        assert!(lane.spans.iter().all(|s| s.state == "open"), "every slot saw an open");
    }

    #[test]
    fn a_late_subscriber_gets_the_ring_then_the_live_events_without_gap() {
        let mut m = Model::new("c", "quick", 0, 1000, Limits::default(), "live");
        m.on_event(&rec(1, None, Event::CampaignResumed { phase: 0 }));
        m.on_event(&rec(2, None, Event::DriverRestarted { worker: "w".into() }));
        let (replay, mut rx) = m.subscribe(1);
        assert_eq!(replay.iter().map(|i| i.id).collect::<Vec<_>>(), vec![2]);
        m.on_event(&rec(3, None, Event::DriverRestarted { worker: "w".into() }));
        let next = rx.try_recv().unwrap();
        assert_eq!(next.id, 3);
        let v: Value = serde_json::from_str(&next.json).unwrap();
        assert_eq!(v["kind"], "driver_restarted");
        assert_eq!(v["data"]["worker"], "w");
        assert_eq!(v["seq"], 3);
    }

    #[test]
    fn the_ring_is_bounded() {
        let mut m = Model::new("c", "quick", 0, 1000, Limits::default(), "live");
        for i in 0..(EVENT_RING as u64 + 10) {
            m.on_event(&rec(i, None, Event::DriverRestarted { worker: "w".into() }));
        }
        let (replay, _) = m.subscribe(0);
        assert_eq!(replay.len(), EVENT_RING);
        assert_eq!(replay[0].id, 11);
        let _ = SystemTime::now();
    }

    #[test]
    fn latency_buckets_count_every_op_once() {
        let mut h = crate::metrics::new_histogram();
        for ms in [1u64, 3, 40, 40, 2000] {
            crate::metrics::record_latency(&mut h, Duration::from_millis(ms));
        }
        let mut b = LatencyBuckets::default();
        b.add(&h);
        assert_eq!(b.count, 5);
        assert_eq!(b.counts.iter().sum::<u64>(), 5);
        // 40 ms lands in the 0.05 s bucket, 2 s in the 2.5 s one
        assert_eq!(b.counts[LATENCY_BOUNDS_S.iter().position(|x| *x == 0.05).unwrap()], 2);
        assert_eq!(b.counts[LATENCY_BOUNDS_S.iter().position(|x| *x == 2.5).unwrap()], 1);
        assert!((b.sum_s - 2.084).abs() < 0.01, "{}", b.sum_s);
    }

    #[test]
    fn the_overview_has_an_ops_series_per_browser_from_the_workers_of_campaign_started() {
        use crate::dashboard::series::OpsRow;
        use crate::events::WorkerInfo;
        let mut m = Model::new("c", "custom", 0, 1000, Limits::default(), "store");
        let worker = |id: &str, browser: &str| WorkerInfo {
            id: id.into(),
            browser: browser.into(),
            webgpu_adapter: "auto".into(),
            endpoint: "managed".into(),
        };
        m.on_event(&rec(
            0,
            None,
            Event::CampaignStarted {
                profile: "custom".into(),
                config_source: "c.toml".into(),
                phases: 1,
                planned_ms: 3000,
                pid: 1,
                pass_phase_ratio: None,
                pass_success_rate: None,
                faults: Vec::new(),
                workers: vec![worker("w-ff", "firefox"), worker("w-cr", "chromium")],
            },
        ));
        let mut slow = crate::metrics::new_histogram();
        crate::metrics::record_latency(&mut slow, Duration::from_millis(300));
        let mut fast = crate::metrics::new_histogram();
        crate::metrics::record_latency(&mut fast, Duration::from_millis(30));
        for s in 0..3i64 {
            let end = s * 1000 + 1000;
            for (worker, n, h) in [("w-ff", 2, &slow), ("w-cr", 6, &fast)] {
                m.on_window(&WindowIn {
                    phase: 0,
                    worker,
                    task: "webgpu",
                    ops: OpsRow { start_ms: end - 1000, end_ms: end, attempted: n, succeeded: n, hist: Some(h) },
                    failed: 0,
                });
            }
        }
        m.finish();
        let ops = m.overview(None).ops;
        let by: BTreeMap<&str, &crate::dashboard::series::BrowserColumns> =
            ops.by_browser.iter().map(|b| (b.browser.as_str(), b)).collect();
        assert_eq!(by.len(), 2);
        assert_eq!(by["firefox"].ops_per_s, vec![Some(2.0); 3]);
        assert_eq!(by["chromium"].ops_per_s, vec![Some(6.0); 3]);
        assert!(by["firefox"].p95_ms.iter().all(|p| p.is_some_and(|p| p >= 299.0)), "{:?}", by["firefox"]);
        assert!(by["chromium"].p95_ms.iter().all(|p| p.is_some_and(|p| p < 31.0)), "{:?}", by["chromium"]);
        assert_eq!(ops.ops_per_s, vec![Some(8.0); 3]);
        let v = serde_json::to_value(m.overview(None)).unwrap();
        assert_eq!(v["ops"]["by_browser"][1]["browser"], "firefox", "the API has it: {}", v["ops"]);
    }
}
