//! One phase's report: its figures from the op windows and task info, its criteria judged on
//! them, and the sections built from its events and samples.

use super::browsers::{self, BrowserReport};
use super::capacity::{self, CapacityReport};
use super::criteria::{criteria_latency, evaluate_criteria, PhaseCriteria};
use super::degraded;
use super::guardian::phase_resources;
use super::model;
use super::numbers::{per_second, ratio, round3};
use super::phase_events::{not_run_unsupported, phase_events, ConsoleReport, TopError, Unsupported, ViolationRecord};
use super::trend::{phase_drift, DriftReport, DriftSettings};
use crate::metrics::{LatencySummary, Window};
use crate::recovery::FailureClass;
use crate::store::{PhaseInfo, ResourceAgg, StoreError, StoreReader};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Results of one task kind in a phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    /// Ops attempted.
    pub ops_attempted: u64,
    /// Ops that succeeded.
    pub ops_succeeded: u64,
    /// Ops that failed.
    pub ops_failed: u64,
    /// Ops whose result was verified (webgpu: against the CPU reference).
    pub verified: u64,
    /// Round-trip latency of this kind's ops (what the driver saw; for an op of a batch, its
    /// in-page time plus an equal share of the call's overhead).
    pub latency_ms: LatencySummary,
    /// In-page latency of this kind's ops (`performance.now()` around the workload), when the task
    /// measures it (webgpu, webnn, page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_page_latency_ms: Option<LatencySummary>,
    /// True for the `synthetic` task (no browser involved).
    pub synthetic: bool,
    /// Everything the task reported about itself (e.g. webgpu `adapter`), from the store's task info.
    /// A key that would collide with a field above is prefixed with `info_`.
    #[serde(flatten)]
    pub info: BTreeMap<String, Value>,
}

/// The report of one phase (also the content of `phase_NN_name.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// 0-based phase index.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Stress level.
    pub stress_level: String,
    /// Task kind the phase ran.
    pub task_kind: String,
    /// completed | stopped | running | interrupted.
    pub status: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339 (null while running or after a crash).
    pub ended_at: Option<String>,
    /// Sessions actually run.
    pub sessions: u32,
    /// Sessions planned.
    pub sessions_planned: u32,
    /// Time the phase ran, seconds.
    pub duration_s: f64,
    /// Planned duration, seconds.
    pub duration_planned_s: f64,
    /// Ops attempted.
    pub ops_attempted: u64,
    /// Ops that succeeded.
    pub ops_succeeded: u64,
    /// Ops that failed.
    pub ops_failed: u64,
    /// succeeded / attempted (0 when no ops).
    pub success_rate: f64,
    /// attempted / duration_s.
    pub throughput_ops_per_s: f64,
    /// Round-trip latency over all task kinds (see [`TaskReport::latency_ms`]).
    pub latency_ms: LatencySummary,
    /// In-page latency over all task kinds, when the tasks measure it; `criteria.max_p95_ms`
    /// applies to it then (`criteria.p95_basis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_page_latency_ms: Option<LatencySummary>,
    /// Criteria and result.
    pub criteria: PhaseCriteria,
    /// Of `ops_succeeded`, those that succeeded only under the recovery ladder's adjusted settings
    /// (a reduced `webgpu` matrix, a lighter model setting) and therefore do not count towards a
    /// pass: not in the criteria's success rate nor in the verdict's (0 with `[recovery]
    /// degraded_counts_as_pass = true`). `tasks.<kind>.degraded` says what they ran.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ops_succeeded_degraded: u64,
    /// Failed ops per failure class.
    pub errors_by_class: BTreeMap<String, u64>,
    /// Per task kind.
    pub tasks: BTreeMap<String, TaskReport>,
    /// Results per browser (the browser of the worker that ran the ops).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub browsers: BTreeMap<String, BrowserReport>,
    /// Phase notes (scaled down, delayed, resumed, …).
    pub notes: Vec<String>,
    /// Resource statistics.
    pub resources: ResourceAgg,
    /// Guardian violations during the phase.
    pub violations: Vec<ViolationRecord>,
    /// Most frequent failure messages (at most [`TOP_ERRORS`](super::TOP_ERRORS)).
    pub top_errors: Vec<TopError>,
    /// Faults injected in this phase, by kind.
    #[serde(default)]
    pub faults_injected: BTreeMap<String, u64>,
    /// Time the process was suspended or starved during this phase (clock gaps), ms: that time
    /// was not load.
    #[serde(default)]
    pub suspended_ms: u64,
    /// Trends of browser memory, in-page p95, GPU errors and failure rate; absent for a phase
    /// shorter than `[campaign] drift_min_phase`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftReport>,
    /// What the browsers' consoles said (errors, uncaught exceptions, WebGPU errors and device
    /// losses): a warning sign even where every op passed. Absent when nothing was logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_console: Option<ConsoleReport>,
    /// A capacity phase's answer: one search per browser it spans (or one over its placement),
    /// each with its steps (the curve of throughput and p95 against sessions). Its criteria are
    /// judged on it: the phase passes when the lowest count held. Empty for a load phase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capacity: Vec<CapacityReport>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Field names of [`TaskReport`]; task info keys equal to one of them are prefixed with `info_`.
const TASK_FIELDS: [&str; 7] =
    ["ops_attempted", "ops_succeeded", "ops_failed", "verified", "latency_ms", "in_page_latency_ms", "synthetic"];

/// The in-page summary of a window, None when no op of it was timed in the page.
fn in_page_of(w: &Window) -> Option<LatencySummary> {
    (!w.in_page.is_empty()).then(|| LatencySummary::of(&w.in_page))
}

fn task_report(kind: &str, w: Option<&Window>, info: Option<&BTreeMap<String, Value>>, browsers: &BTreeMap<String, String>) -> TaskReport {
    let mut out_info = BTreeMap::new();
    // per-browser keys (`adapter:firefox`) go to the phase's browsers section
    for (k, v) in info.into_iter().flatten().filter(|(k, _)| !k.contains(':')) {
        let key = if TASK_FIELDS.contains(&k.as_str()) { format!("info_{k}") } else { k.clone() };
        out_info.insert(key, v.clone());
    }
    let (attempted, succeeded, failed, verified, latency) = match w {
        Some(w) => (w.attempted, w.succeeded, w.failed, w.verified, LatencySummary::of(&w.hist)),
        None => (0, 0, 0, 0, LatencySummary::default()),
    };
    if kind == "model" {
        out_info = model::fold(&out_info, w, browsers);
    } else if kind == "webgpu" {
        out_info = degraded::fold_webgpu(out_info);
    }
    TaskReport {
        ops_attempted: attempted,
        ops_succeeded: succeeded,
        ops_failed: failed,
        verified,
        latency_ms: latency,
        in_page_latency_ms: w.and_then(in_page_of),
        synthetic: kind == "synthetic",
        info: out_info,
    }
}

/// What a phase's op windows and task info say: the figures its criteria judge and the
/// criteria's result. The phase report and the campaign verdict ([`super::verdict::campaign_verdict`])
/// both take them from here, so the two cannot disagree.
pub(super) struct PhaseFigures {
    /// The phase's windows merged over every task kind.
    pub(super) all: Window,
    /// Per task kind.
    pub(super) tasks: BTreeMap<String, TaskReport>,
    /// Round-trip latency over every task kind.
    pub(super) latency: LatencySummary,
    /// In-page latency over every task kind, when the tasks measured it.
    pub(super) in_page: Option<LatencySummary>,
    /// The criteria, judged on the figures above.
    pub(super) criteria: PhaseCriteria,
    /// The phase's task info, kept for its per-browser section.
    pub(super) task_info: BTreeMap<String, BTreeMap<String, Value>>,
    /// Worker id -> browser, kept for the per-browser section and the unsupported APIs.
    pub(super) worker_browsers: BTreeMap<String, String>,
    /// Successes under the ladder's adjusted settings that do not count towards a pass
    /// ([`PhaseReport::ops_succeeded_degraded`]).
    pub(super) degraded: u64,
    /// A capacity phase's searches (empty for a load phase).
    pub(super) capacity: Vec<CapacityReport>,
    /// The phase's trends (None: shorter than `drift_min_phase`), which the drift criteria judge.
    pub(super) drift: Option<DriftReport>,
}

/// Reads phase `p`'s op windows and task info (and the workers' browsers) and judges its criteria.
pub(super) fn phase_figures(r: &StoreReader, p: &PhaseInfo, settings: &DriftSettings) -> Result<PhaseFigures, StoreError> {
    let windows = r.phase_windows(p.idx)?;
    let task_info = r.task_info(p.idx)?;
    let mut all = Window::default();
    for w in windows.values() {
        all.merge(w);
    }
    let mut kinds: BTreeSet<&str> = windows.keys().map(String::as_str).collect();
    kinds.extend(task_info.keys().map(String::as_str));
    kinds.insert(p.task_kind.as_str());
    let worker_browsers = browsers::worker_browsers(r)?;
    let tasks: BTreeMap<String, TaskReport> =
        kinds.into_iter().map(|k| (k.to_string(), task_report(k, windows.get(k), task_info.get(k), &worker_browsers))).collect();

    let latency = LatencySummary::of(&all.hist);
    let unsupported_ops = all.errors.get(&FailureClass::ApiUnsupported).copied().unwrap_or(0);
    let in_page = in_page_of(&all);
    let (judged, basis) = criteria_latency(&latency, in_page.as_ref());
    // work under the ladder's adjusted settings is not a success of the configured task
    let left_out: Vec<(&str, u64)> =
        tasks.iter().map(|(k, t)| (k.as_str(), degraded::not_counted(k, &t.info))).filter(|(_, n)| *n > 0).collect();
    let degraded: u64 = left_out.iter().map(|(_, n)| n).sum();
    let mut criteria = evaluate_criteria(
        all.attempted,
        all.succeeded.saturating_sub(degraded),
        unsupported_ops,
        (judged.p95, basis),
        p.min_success_rate,
        p.max_p95_ms,
    );
    if all.attempted == 0 {
        // no op because every browser had refused the task earlier in the run: unsupported
        let reasons = not_run_unsupported(r, p.idx)?;
        if !reasons.is_empty() {
            criteria = criteria.not_run_unsupported(reasons);
        }
    }
    if degraded > 0 && !criteria.passed && !criteria.unsupported {
        criteria.failures.extend(left_out.iter().map(|(kind, n)| degraded::criteria_line(kind, *n)));
    }
    // a capacity phase is judged on its answer: each step met the criteria or not, and the phase
    // passes when the lowest count held (for every browser searched); its load rose step by step,
    // so it has no trend to judge
    let capacity = capacity::capacity_of(r, p.idx)?;
    if !capacity.is_empty() && !criteria.unsupported {
        criteria.failures = capacity.iter().filter(|c| c.max_sustainable.is_none()).map(|c| c.answer.clone()).collect();
        criteria.passed = criteria.failures.is_empty();
    }
    let drift = if capacity.is_empty() { phase_drift(r, p, settings)? } else { None };
    let limits = settings.limits_of(p.idx);
    let (failures, not_judged) = super::trend::judge(limits, drift.as_ref(), p.elapsed_ms, settings);
    let criteria = criteria.with_drift(limits, failures, not_judged);
    Ok(PhaseFigures { all, tasks, latency, in_page, criteria, task_info, worker_browsers, degraded, drift, capacity })
}

/// Builds one phase's report; api_unsupported failures are added to `unsupported`.
pub(super) fn build_phase(
    r: &StoreReader,
    p: &PhaseInfo,
    settings: &DriftSettings,
    unsupported: &mut BTreeSet<Unsupported>,
) -> Result<PhaseReport, StoreError> {
    let PhaseFigures { all, tasks, latency, in_page, criteria, task_info, worker_browsers, degraded, drift, capacity } =
        phase_figures(r, p, settings)?;
    let per_browser = browsers::breakdown(&r.phase_worker_windows(p.idx)?, &worker_browsers, &task_info);
    let errors_by_class: BTreeMap<String, u64> = all.errors.iter().map(|(c, n)| (c.as_str().to_string(), *n)).collect();
    let events = phase_events(r, p, &worker_browsers, unsupported)?;

    let mut notes = p.notes.clone();
    if events.suspended_ms > 0 {
        notes.push(format!(
            "the process was suspended or starved for {:.1}s during this phase (clock gap): that time was not load",
            events.suspended_ms as f64 / 1000.0
        ));
    }
    let browser_console =
        (all.console > 0 || !events.console_top.is_empty()).then_some(ConsoleReport { entries: all.console, top: events.console_top });

    let duration_s = round3(p.elapsed_ms as f64 / 1000.0);
    Ok(PhaseReport {
        index: p.idx,
        name: p.name.clone(),
        stress_level: p.stress_level.clone(),
        task_kind: p.task_kind.clone(),
        status: p.status.clone(),
        started_at: p.started_at.clone(),
        ended_at: p.ended_at.clone(),
        sessions: p.sessions,
        sessions_planned: p.sessions_planned,
        duration_s,
        duration_planned_s: round3(p.duration_planned_ms as f64 / 1000.0),
        ops_attempted: all.attempted,
        ops_succeeded: all.succeeded,
        ops_failed: all.failed,
        success_rate: round3(ratio(all.succeeded, all.attempted)),
        ops_succeeded_degraded: degraded,
        throughput_ops_per_s: per_second(all.attempted, duration_s),
        latency_ms: latency,
        in_page_latency_ms: in_page,
        criteria,
        errors_by_class,
        tasks,
        browsers: per_browser,
        notes,
        resources: phase_resources(r, p.idx)?,
        violations: events.violations,
        top_errors: events.top_errors,
        faults_injected: events.faults_injected,
        suspended_ms: events.suspended_ms,
        drift,
        browser_console,
        capacity,
    })
}

/// The report of phase `idx`, from the store (its status as stored, `running` included).
pub fn phase_report(r: &StoreReader, idx: u32) -> Result<PhaseReport, StoreError> {
    let phases = r.phases()?;
    let p = phases.iter().find(|p| p.idx == idx).ok_or_else(|| StoreError::Corrupt {
        path: r.path().to_path_buf(),
        detail: format!("no phase with index {idx} in the store"),
        reports: None,
    })?;
    build_phase(r, p, &DriftSettings::of(r)?, &mut BTreeSet::new())
}
