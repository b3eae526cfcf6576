//! Reports built from the store: one JSON file per phase (`phase_NN_name.json`),
//! `campaign_report.json`, `summary.txt`, `events.jsonl` (rebuilt from the stored events), and
//! the comparison of two campaigns.
//!
//! Everything here is a pure function of the store, so `stressctl report ID` rebuilds files that are
//! byte-identical to the ones the run wrote: no "now" timestamps, maps are `BTreeMap`s (sorted keys),
//! fields are struct fields (fixed order), every float is rounded to 3 decimals, and pass/fail
//! decisions are taken on exact counts (never on a rounded rate).

pub mod browsers;
mod compare;
pub mod grid; // grid hook
pub mod html;
mod latency;
mod model;
mod summary;
mod table;
#[cfg(test)]
mod tests;

pub use compare::{compare, render_comparison, Comparison, LatencyDelta, PhaseDelta, Tolerance};
pub use summary::render_summary;

use crate::breaker::RegistrySnapshot;
use crate::events::{Event, EventRecord};
use crate::metrics::{LatencySummary, Window};
use crate::recovery::FailureClass;
use crate::store::{EventInfo, PhaseInfo, ResourceAgg, StoreError, StoreReader};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// File name of the campaign report.
pub const CAMPAIGN_REPORT_FILE: &str = "campaign_report.json";
/// File name of the human-readable summary.
pub const SUMMARY_FILE: &str = "summary.txt";
/// File name of the event log (one JSON object per line, appended by the run, rebuilt by `report`).
pub const EVENTS_FILE: &str = "events.jsonl";
/// How many of the most frequent failure messages a phase report keeps.
pub const TOP_ERRORS: usize = 5;
/// Failure messages are cut to this many characters.
pub const MAX_MESSAGE_CHARS: usize = 200;
/// Outcome reported when the store has none (the run died or is still going).
pub const OUTCOME_INTERRUPTED: &str = "interrupted";

/// `pass_phase_ratio` used when the stored config cannot be parsed (the config default).
const DEFAULT_PASS_PHASE_RATIO: f64 = 0.70;
/// `pass_success_rate` used when the stored config cannot be parsed (the config default).
const DEFAULT_PASS_SUCCESS_RATE: f64 = 0.90;
/// Slack for comparing a ratio of counts with a configured fraction.
const EPS: f64 = 1e-9;

/// A phase's success criteria and whether it met them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseCriteria {
    /// Minimum success rate (0..=1).
    pub min_success_rate: f64,
    /// p95 latency must be below this, in ms.
    pub max_p95_ms: u64,
    /// Which latency `max_p95_ms` was judged on: `in_page` (the workload's own time, when the
    /// task measured it in the page) or `round_trip` (what the driver saw).
    #[serde(default = "round_trip")]
    pub p95_basis: String,
    /// Success rate >= minimum, p95 < maximum, and at least one op attempted.
    pub passed: bool,
    /// Every op found the API unsupported (`api_unsupported`): the phase neither passed nor
    /// failed, and the campaign verdict leaves it out.
    #[serde(default)]
    pub unsupported: bool,
    /// Why it did not pass, one sentence each (empty when passed).
    pub failures: Vec<String>,
}

fn round_trip() -> String {
    "round_trip".into()
}

/// The latency a phase's `max_p95` judges: in-page when the task measured it (the workload's own
/// time, without the driver's cost), else round trip. Returns the summary and its basis name.
pub(crate) fn criteria_latency<'a>(
    round_trip: &'a LatencySummary,
    in_page: Option<&'a LatencySummary>,
) -> (&'a LatencySummary, &'static str) {
    match in_page {
        Some(l) => (l, "in_page"),
        None => (round_trip, "round_trip"),
    }
}

impl PhaseCriteria {
    /// `passed`, `failed` or `unsupported`, for people.
    pub fn verdict(&self) -> &'static str {
        if self.unsupported {
            "unsupported"
        } else if self.passed {
            "passed"
        } else {
            "failed"
        }
    }
}

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

/// A guardian threshold violation (event `guardian_violation`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViolationRecord {
    /// RFC 3339.
    pub at: String,
    /// The metric (`cpu`, `memory`, `disk`, …).
    pub metric: String,
    /// The sampled value (null when the event did not carry one).
    pub value: Option<f64>,
    /// The threshold it crossed (null when the event did not carry one).
    pub threshold: Option<f64>,
}

/// A frequent failure message (from `op_failed` events).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopError {
    /// Failure class.
    pub class: String,
    /// The message, cut to [`MAX_MESSAGE_CHARS`] characters.
    pub message: String,
    /// How many ops failed with it.
    pub count: u64,
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
    /// Failed ops per failure class.
    pub errors_by_class: BTreeMap<String, u64>,
    /// Per task kind.
    pub tasks: BTreeMap<String, TaskReport>,
    /// Results per browser (the browser of the worker that ran the ops).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub browsers: BTreeMap<String, browsers::BrowserReport>,
    /// Phase notes (scaled down, delayed, resumed, …).
    pub notes: Vec<String>,
    /// Resource statistics.
    pub resources: ResourceAgg,
    /// Guardian violations during the phase.
    pub violations: Vec<ViolationRecord>,
    /// Most frequent failure messages (at most [`TOP_ERRORS`]).
    pub top_errors: Vec<TopError>,
    /// Faults injected in this phase, by kind.
    #[serde(default)]
    pub faults_injected: BTreeMap<String, u64>,
    /// Time the process was suspended or starved during this phase (clock gaps), ms: that time
    /// was not load.
    #[serde(default)]
    pub suspended_ms: u64,
    /// What the browsers' consoles said (errors, uncaught exceptions, WebGPU errors and device
    /// losses): a warning sign even where every op passed. Absent when nothing was logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_console: Option<ConsoleReport>,
}

/// A phase's browser console entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsoleReport {
    /// Entries counted, all of them (from the op windows).
    pub entries: u64,
    /// The most frequent texts (at most [`TOP_ERRORS`]), from the `op_failed` and `page_console`
    /// events: those are capped per session, so these counts are a sample of `entries`.
    pub top: Vec<ConsoleTop>,
}

/// One console text and how often it was seen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsoleTop {
    /// `source: text` (`console.error`, `uncaught`, `unhandled rejection`, `webgpu error`,
    /// `webgpu device lost`), cut to [`MAX_MESSAGE_CHARS`] characters.
    pub text: String,
    /// Times seen in the events.
    pub count: u64,
    /// Of those, on ops that failed.
    pub on_failed_ops: u64,
}

/// The campaign verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Enough phases passed and the overall success rate is high enough.
    pub passed: bool,
    /// Phases that met their criteria.
    pub phases_passed: u32,
    /// Phases run (started).
    pub phases_total: u32,
    /// All ops succeeded / attempted.
    pub overall_success_rate: f64,
    /// The `pass_phase_ratio` applied.
    pub required_phase_ratio: f64,
    /// The `pass_success_rate` applied.
    pub required_success_rate: f64,
    /// Phases the plan had (0 when the store does not say).
    #[serde(default)]
    pub phases_planned: u32,
    /// Every planned phase ran to its end: a run cut short is never a pass.
    #[serde(default = "yes")]
    pub plan_completed: bool,
    /// Why, one sentence per condition.
    pub reasons: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Sums over all phases.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Ops attempted.
    pub ops_attempted: u64,
    /// Ops that succeeded.
    pub ops_succeeded: u64,
    /// Ops that failed.
    pub ops_failed: u64,
    /// succeeded / attempted (0 when no ops).
    pub success_rate: f64,
    /// Sum of the phases' durations, seconds.
    pub duration_s: f64,
    /// attempted / duration_s.
    pub throughput_ops_per_s: f64,
}

/// A circuit breaker state change (event `breaker_transition`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BreakerTransition {
    /// RFC 3339.
    pub at: String,
    /// Correlation id.
    pub corr: String,
    /// Breaker key (`worker:<id>`, `browser:<name>`, `task:<kind>`).
    pub key: String,
    /// State before.
    pub from: String,
    /// State after.
    pub to: String,
    /// Why.
    pub reason: String,
}

/// Circuit breakers over the campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Breakers {
    /// The last `breaker_snapshot` (null when none).
    #[serde(rename = "final")]
    pub final_snapshot: Option<RegistrySnapshot>,
    /// Every transition, in order.
    pub transitions: Vec<BreakerTransition>,
}

/// Recovery attempts of one class, strategy or level.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecoveryStats {
    /// Attempts.
    pub attempts: u64,
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// succeeded / attempts.
    pub success_rate: f64,
    /// Mean `time_to_recover_ms` of the successful attempts that reported one (null when none did).
    pub mean_time_to_recover_ms: Option<f64>,
}

/// Recovery attempts over the campaign (events `recovery_attempted`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Recoveries {
    /// Attempts.
    pub attempts: u64,
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// Per failure class.
    pub by_class: BTreeMap<String, RecoveryStats>,
    /// Per strategy (retry, new_session, restart_driver, adjusted_settings, other_worker).
    pub by_strategy: BTreeMap<String, RecoveryStats>,
    /// Per ladder level ("1".."5").
    pub by_level: BTreeMap<String, RecoveryStats>,
}

/// An emergency stop (event `emergency_stop`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmergencyStop {
    /// RFC 3339.
    pub at: String,
    /// Why (names the metric, value and threshold).
    pub message: String,
    /// What stopped it: `interrupted`, `terminated`, `hangup`, `emergency_stop`, `guardian`,
    /// `store_failure`, `max_duration`.
    pub cause: String,
}

/// The resource guardian over the campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuardianSummary {
    /// Samples taken.
    pub samples: u64,
    /// Samples with at least one violation.
    pub violating_samples: u64,
    /// `guardian_violation` events.
    pub violations: u64,
    /// Emergency stops, in order.
    pub emergency_stops: Vec<EmergencyStop>,
}

/// A campaign interruption or resume (events `campaign_interrupted`, `campaign_resumed`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interruption {
    /// RFC 3339.
    pub at: String,
    /// `campaign_interrupted` or `campaign_resumed`.
    pub kind: String,
    /// Message.
    pub message: String,
}

/// An API that was unsupported (ops failed with class `api_unsupported`); never counted as a pass.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Unsupported {
    /// Phase name.
    pub phase: String,
    /// Phase index.
    pub phase_index: u32,
    /// Task kind.
    pub task_kind: String,
    /// The browser that said so (absent in reports of stores without worker browsers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    /// What the browser said.
    pub message: String,
}

/// The campaign report (`campaign_report.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignReport {
    /// Campaign id.
    pub campaign_id: String,
    /// Profile.
    pub profile: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339 (null when the campaign did not end).
    pub ended_at: Option<String>,
    /// ended_at - started_at, seconds (null when not ended).
    pub wall_time_s: Option<f64>,
    /// passed | failed | halted | emergency_stopped, or `interrupted` when the store has none.
    pub outcome: String,
    /// Why it stopped.
    pub stop_reason: Option<String>,
    /// Times resumed.
    pub resumes: u32,
    /// Where the config came from.
    pub config_source: String,
    /// Verdict from the phases.
    pub verdict: Verdict,
    /// Sums over phases.
    pub totals: Totals,
    /// Every phase started, by index.
    pub phases: Vec<PhaseReport>,
    /// Circuit breakers.
    pub breakers: Breakers,
    /// Recovery attempts.
    pub recoveries: Recoveries,
    /// Resource guardian.
    pub guardian: GuardianSummary,
    /// Interruptions and resumes.
    pub interruptions: Vec<Interruption>,
    /// Unsupported APIs.
    pub unsupported: Vec<Unsupported>,
    /// The faults the config planned, one line each (schedule, worker, phases).
    #[serde(default)]
    pub faults_planned: Vec<String>,
    /// How the campaign was confined (the reservation kept for the host, PID namespaces), as
    /// recorded when it started; null in stores from before confinement.
    #[serde(default)]
    pub confinement: Option<String>,
    /// grid hook: per Selenium Grid node (empty without a Grid worker).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grid_nodes: Vec<grid::GridNodeReport>,
    /// The store this report was built from (not written to the JSON): `report.html` reads its
    /// time series from it.
    #[serde(skip)]
    pub source_store: html::SourceStore,
}

pub(crate) use crate::fmt::round3;

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn per_second(ops: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        round3(ops as f64 / seconds)
    } else {
        0.0
    }
}

/// `succeeded / attempted` as a percentage with one decimal, floored, from exact integers: 99.95 %
/// shows as 99.9, never as 100.0 (which only all-succeeded shows). "-" when nothing was attempted.
pub(crate) fn pct_counts(succeeded: u64, attempted: u64) -> String {
    if attempted == 0 {
        return "-".into();
    }
    let tenths = (succeeded as u128 * 1000) / attempted as u128;
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// A configured fraction as a percentage: one decimal, two when needed (0.8995 -> "89.95").
pub(crate) fn pct_frac(f: f64) -> String {
    let s = format!("{:.2}", f * 100.0);
    match s.strip_suffix('0') {
        Some(t) => t.to_string(),
        None => s,
    }
}

/// Milliseconds for humans: "850.5 ms", "6.1 s".
pub(crate) fn fmt_ms(ms: f64) -> String {
    if ms < 1000.0 {
        trim_decimals(format!("{ms:.1}")) + " ms"
    } else {
        trim_decimals(format!("{:.3}", ms / 1000.0)) + " s"
    }
}

fn trim_decimals(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

pub(crate) use crate::fmt::cut;

/// Evaluates a phase's criteria on exact counts; `unsupported` ops are those that failed as
/// `api_unsupported`.
pub(crate) fn evaluate_criteria(
    attempted: u64,
    succeeded: u64,
    unsupported: u64,
    (p95_ms, p95_basis): (f64, &str),
    min_success_rate: f64,
    max_p95_ms: u64,
) -> PhaseCriteria {
    let p95_basis = p95_basis.to_string();
    let mut failures = Vec::new();
    if attempted > 0 && unsupported == attempted {
        failures.push(format!("all {attempted} ops found the API unsupported: the phase is reported as unsupported, not passed or failed"));
        return PhaseCriteria { min_success_rate, max_p95_ms, p95_basis, passed: false, unsupported: true, failures };
    }
    if attempted == 0 {
        failures.push("no ops were attempted".to_string());
    } else {
        if ratio(succeeded, attempted) + EPS < min_success_rate {
            failures.push(format!(
                "success rate {}% below {}% ({} of {} ops failed)",
                pct_counts(succeeded, attempted),
                pct_frac(min_success_rate),
                attempted - succeeded.min(attempted),
                attempted
            ));
        }
        if p95_ms >= max_p95_ms as f64 {
            let which = if p95_basis == "in_page" { "in-page p95" } else { "p95" };
            failures.push(format!("{which} {} not below the {} limit", fmt_ms(p95_ms), fmt_ms(max_p95_ms as f64)));
        }
    }
    PhaseCriteria { min_success_rate, max_p95_ms, p95_basis, passed: failures.is_empty(), unsupported: false, failures }
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

/// Builds one phase's report; api_unsupported failures are added to `unsupported`.
/// A phase's resource statistics, its host figures with the thresholds that judged them (from the
/// stored config).
fn phase_resources(r: &StoreReader, idx: u32) -> Result<ResourceAgg, StoreError> {
    let mut res = r.phase_resources(idx)?;
    if let Some(h) = res.host.as_mut() {
        let limits = crate::dashboard::source::limits_of(&r.campaign()?.config_text);
        h.cpu_limit = limits.of(Some(idx)).map(|t| t.cpu_percent);
        h.stall_limit = h.stall_max.map(|_| crate::guardian::PRESSURE_STALL_PERCENT);
    }
    Ok(res)
}

fn build_phase(r: &StoreReader, p: &PhaseInfo, unsupported: &mut BTreeSet<Unsupported>) -> Result<PhaseReport, StoreError> {
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
    let per_browser = browsers::breakdown(&r.phase_worker_windows(p.idx)?, &worker_browsers, &task_info);

    let latency = LatencySummary::of(&all.hist);
    let errors_by_class: BTreeMap<String, u64> = all.errors.iter().map(|(c, n)| (c.as_str().to_string(), *n)).collect();
    let unsupported_ops = all.errors.get(&FailureClass::ApiUnsupported).copied().unwrap_or(0);
    let in_page = in_page_of(&all);
    let (judged, basis) = criteria_latency(&latency, in_page.as_ref());
    // inferences under the ladder's adjusted settings are not successes of the configured task
    let degraded = tasks.get("model").map_or(0, |t| model::degraded_successes(&t.info));
    let mut criteria = evaluate_criteria(
        all.attempted,
        all.succeeded.saturating_sub(degraded),
        unsupported_ops,
        (judged.p95, basis),
        p.min_success_rate,
        p.max_p95_ms,
    );
    if degraded > 0 && !criteria.passed && !criteria.unsupported {
        criteria.failures.push(format!(
            "{degraded} inference(s) succeeded only under the recovery ladder's adjusted settings (degraded): not counted as successes"
        ));
    }

    let mut violations = Vec::new();
    let mut failures: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut faults_injected: BTreeMap<String, u64> = BTreeMap::new();
    let mut suspended_ms = 0u64;
    // console text -> (seen, on failed ops)
    let mut console: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut saw_console = |entries: &[String], failed: bool| {
        for t in entries {
            let c = console.entry(cut(t, MAX_MESSAGE_CHARS)).or_insert((0, 0));
            c.0 += 1;
            c.1 += u64::from(failed);
        }
    };
    for_each_typed(
        r,
        Some(p.idx),
        &["op_failed", "page_console", "guardian_violation", "fault_injected", "clock_gap"],
        |e, ev| match ev {
            Event::GuardianViolation { metric, value, threshold } => {
                violations.push(ViolationRecord { at: e.at, metric, value: finite(value), threshold: finite(threshold) })
            }
            Event::FaultInjected { fault, .. } => *faults_injected.entry(fault.as_str().to_string()).or_insert(0) += 1,
            Event::ClockGap { gap_ms, .. } => suspended_ms += gap_ms,
            Event::PageConsole { entries, .. } => saw_console(&entries, false),
            Event::OpFailed { class, message, task_kind, worker, console, .. } => {
                saw_console(&console, true);
                let message = cut(message.as_deref().unwrap_or(&e.message), MAX_MESSAGE_CHARS);
                if class == FailureClass::ApiUnsupported {
                    let task_kind = task_kind.unwrap_or_else(|| p.task_kind.clone());
                    let browser =
                        worker_browsers.get(&worker).cloned().or_else(|| (!worker_browsers.is_empty()).then(|| "chromium".into()));
                    unsupported.insert(Unsupported {
                        phase: p.name.clone(),
                        phase_index: p.idx,
                        task_kind,
                        browser,
                        message: message.clone(),
                    });
                }
                *failures.entry((class.as_str().to_string(), message)).or_insert(0) += 1;
            }
            _ => {}
        },
    )?;
    let mut notes = p.notes.clone();
    if suspended_ms > 0 {
        notes.push(format!(
            "the process was suspended or starved for {:.1}s during this phase (clock gap): that time was not load",
            suspended_ms as f64 / 1000.0
        ));
    }
    let mut top: Vec<TopError> = failures.into_iter().map(|((class, message), count)| TopError { class, message, count }).collect();
    // most frequent first; ties by message text, then class
    top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.message.cmp(&b.message)).then_with(|| a.class.cmp(&b.class)));
    top.truncate(TOP_ERRORS);
    let browser_console = (all.console > 0 || !console.is_empty()).then(|| {
        let mut top: Vec<ConsoleTop> =
            console.into_iter().map(|(text, (count, on_failed_ops))| ConsoleTop { text, count, on_failed_ops }).collect();
        top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.text.cmp(&b.text)));
        top.truncate(TOP_ERRORS);
        ConsoleReport { entries: all.console, top }
    });

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
        throughput_ops_per_s: per_second(all.attempted, duration_s),
        latency_ms: latency,
        in_page_latency_ms: in_page,
        criteria,
        errors_by_class,
        tasks,
        browsers: per_browser,
        notes,
        resources: phase_resources(r, p.idx)?,
        violations,
        top_errors: top,
        faults_injected,
        suspended_ms,
        browser_console,
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
    build_phase(r, p, &mut BTreeSet::new())
}

/// What the campaign recorded when it started: verdict thresholds, planned phases and faults.
struct Plan {
    pass_phase_ratio: f64,
    pass_success_rate: f64,
    phases: u32,
    faults: Vec<String>,
    note: Option<String>,
}

/// The plan from the first `campaign_started` event (a resumed campaign has one per run; the
/// first is the plan). A store without one (written before thresholds were recorded) gets the
/// default thresholds, said in the verdict.
fn plan(r: &StoreReader) -> Result<Plan, StoreError> {
    let mut first = None;
    for_each_typed(r, None, &["campaign_started"], |_, ev| {
        if let (None, Event::CampaignStarted { pass_phase_ratio, pass_success_rate, phases, faults, .. }) = (&first, ev) {
            first = Some((pass_phase_ratio, pass_success_rate, phases, faults));
        }
    })?;
    let (ratio, rate, phases, faults) = first.unwrap_or((None, None, 0, Vec::new()));
    let note = (ratio.is_none() || rate.is_none()).then(|| {
        "the store does not record the pass thresholds (written by an older stressctl); default thresholds were applied".to_string()
    });
    Ok(Plan {
        pass_phase_ratio: ratio.unwrap_or(DEFAULT_PASS_PHASE_RATIO),
        pass_success_rate: rate.unwrap_or(DEFAULT_PASS_SUCCESS_RATE),
        phases,
        faults,
        note,
    })
}

/// A campaign that did not run its whole plan is never a pass: the verdict says how many planned
/// phases ran to their end and why the run ended.
fn judge_plan(v: &mut Verdict, phases: &[PhaseReport], planned: u32, outcome: Option<&str>, stop_reason: Option<&str>) {
    v.phases_planned = planned;
    let completed = phases.iter().filter(|p| p.status == "completed").count() as u32;
    let cut_short = matches!(outcome, Some("emergency_stopped" | "halted"))
        || outcome.is_none() && !phases.is_empty() && phases.iter().any(|p| p.status != "completed");
    if completed >= planned && !cut_short {
        return;
    }
    v.plan_completed = false;
    v.passed = false;
    let why = match (outcome, stop_reason) {
        (_, Some(r)) => format!(": {r}"),
        (None, None) => ": the campaign process died (see `stressctl launch --resume`)".to_string(),
        _ => String::new(),
    };
    let ran = if planned > 0 {
        format!("{completed} of {planned} planned phases ran to their end")
    } else {
        format!("{completed} phases ran to their end")
    };
    v.reasons.insert(0, format!("the plan did not complete: {ran}{why}"));
}

/// The last `confinement` event's description (a resumed run records its own).
fn confinement(r: &StoreReader) -> Result<Option<String>, StoreError> {
    match r.last_event("confinement")? {
        Some(e) => match decode(&e).map_err(|err| corrupt_event(r, err))? {
            Event::Confinement { description, .. } => Ok(Some(description)),
            _ => Ok(None),
        },
        None => Ok(None),
    }
}

/// Calls `f` with each stored event of `kinds` (all phases when `phase` is None), in order and
/// decoded; an event that does not decode ends the report with a store error naming it, never a
/// report built around it.
fn for_each_typed(r: &StoreReader, phase: Option<u32>, kinds: &[&str], mut f: impl FnMut(EventInfo, Event)) -> Result<(), StoreError> {
    let mut bad = None;
    r.for_each_event(phase, kinds, |e| {
        if bad.is_some() {
            return;
        }
        match decode(&e) {
            Ok(ev) => f(e, ev),
            Err(err) => bad = Some(err),
        }
    })?;
    match bad {
        Some(err) => Err(corrupt_event(r, err)),
        None => Ok(()),
    }
}

/// Decodes a stored event into its typed form.
fn decode(e: &EventInfo) -> Result<Event, crate::events::DecodeError> {
    EventRecord::from_stored(e).map(|(_, ev)| ev)
}

fn corrupt_event(r: &StoreReader, e: crate::events::DecodeError) -> StoreError {
    r.corrupt(e.to_string())
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then(|| round3(v))
}

fn wall_time_s(started: &str, ended: Option<&str>) -> Option<f64> {
    let s = humantime::parse_rfc3339_weak(started).ok()?;
    let e = humantime::parse_rfc3339_weak(ended?).ok()?;
    e.duration_since(s).ok().map(|d| round3(d.as_secs_f64()))
}

#[derive(Default)]
struct StatsAcc {
    attempts: u64,
    succeeded: u64,
    ttr_sum: f64,
    ttr_n: u64,
}

impl StatsAcc {
    fn add(&mut self, ok: bool, ttr: Option<f64>) {
        self.attempts += 1;
        if ok {
            self.succeeded += 1;
            if let Some(t) = ttr {
                self.ttr_sum += t;
                self.ttr_n += 1;
            }
        }
    }
    fn done(&self) -> RecoveryStats {
        RecoveryStats {
            attempts: self.attempts,
            succeeded: self.succeeded,
            success_rate: round3(ratio(self.succeeded, self.attempts)),
            mean_time_to_recover_ms: (self.ttr_n > 0).then(|| round3(self.ttr_sum / self.ttr_n as f64)),
        }
    }
}

fn recoveries(r: &StoreReader) -> Result<Recoveries, StoreError> {
    let mut total = StatsAcc::default();
    let mut by_class: BTreeMap<String, StatsAcc> = BTreeMap::new();
    let mut by_strategy: BTreeMap<String, StatsAcc> = BTreeMap::new();
    let mut by_level: BTreeMap<String, StatsAcc> = BTreeMap::new();
    for_each_typed(r, None, &["recovery_attempted"], |_, ev| {
        if let Event::RecoveryAttempted { class, strategy, level, outcome, time_to_recover_ms, .. } = ev {
            let ok = outcome == "succeeded";
            let ttr = time_to_recover_ms.filter(|t| t.is_finite());
            let or_unknown = |s: String| if s.is_empty() { "unknown".to_string() } else { s };
            total.add(ok, ttr);
            by_class.entry(class.as_str().to_string()).or_default().add(ok, ttr);
            by_strategy.entry(or_unknown(strategy)).or_default().add(ok, ttr);
            by_level.entry(level.to_string()).or_default().add(ok, ttr);
        }
    })?;
    let done = |m: BTreeMap<String, StatsAcc>| m.into_iter().map(|(k, v)| (k, v.done())).collect();
    Ok(Recoveries {
        attempts: total.attempts,
        succeeded: total.succeeded,
        by_class: done(by_class),
        by_strategy: done(by_strategy),
        by_level: done(by_level),
    })
}

fn breakers(r: &StoreReader) -> Result<Breakers, StoreError> {
    let mut transitions = Vec::new();
    for_each_typed(r, None, &["breaker_transition"], |e, ev| {
        if let Event::BreakerTransition { key, from, to, reason } = ev {
            transitions.push(BreakerTransition { key, from, to, reason, at: e.at, corr: e.corr });
        }
    })?;
    let final_snapshot = match r.last_event("breaker_snapshot")? {
        Some(e) => match decode(&e).map_err(|err| corrupt_event(r, err))? {
            Event::BreakerSnapshot(s) => Some(s),
            _ => None,
        },
        None => None,
    };
    Ok(Breakers { final_snapshot, transitions })
}

fn guardian(r: &StoreReader) -> Result<GuardianSummary, StoreError> {
    let (samples, violating_samples) = r.sample_counts()?;
    let mut emergency_stops = Vec::new();
    for_each_typed(r, None, &["emergency_stop"], |e, ev| {
        if let Event::EmergencyStop { cause, reason } = ev {
            emergency_stops.push(EmergencyStop { at: e.at, message: reason, cause });
        }
    })?;
    Ok(GuardianSummary { samples, violating_samples, violations: r.count_events(None, "guardian_violation")?, emergency_stops })
}

/// The campaign report, from the store. A phase still marked `running` is reported as
/// `interrupted` (nothing runs while a report of the whole campaign is built).
pub fn campaign_report(r: &StoreReader) -> Result<CampaignReport, StoreError> {
    let c = r.campaign()?;
    let mut unsupported = BTreeSet::new();
    let mut phases = Vec::new();
    for p in r.phases()? {
        let mut pr = build_phase(r, &p, &mut unsupported)?;
        if pr.status == "running" {
            pr.status = "interrupted".into();
        }
        phases.push(pr);
    }
    let plan = plan(r)?;
    let mut v = verdict(&phases, plan.pass_phase_ratio, plan.pass_success_rate);
    v.reasons.extend(plan.note);
    judge_plan(&mut v, &phases, plan.phases.max(phases.len() as u32), c.outcome.as_deref(), c.stop_reason.as_deref());

    let attempted: u64 = phases.iter().map(|p| p.ops_attempted).sum();
    let succeeded: u64 = phases.iter().map(|p| p.ops_succeeded).sum();
    let failed: u64 = phases.iter().map(|p| p.ops_failed).sum();
    let duration_s = round3(phases.iter().map(|p| p.duration_s).sum());
    let totals = Totals {
        ops_attempted: attempted,
        ops_succeeded: succeeded,
        ops_failed: failed,
        success_rate: round3(ratio(succeeded, attempted)),
        duration_s,
        throughput_ops_per_s: per_second(attempted, duration_s),
    };

    let mut interruptions = Vec::new();
    r.for_each_event(None, &["campaign_interrupted", "campaign_resumed"], |e| {
        interruptions.push(Interruption { at: e.at, kind: e.kind, message: e.message })
    })?;

    let breakers = breakers(r)?;
    let grid_nodes = grid::grid_nodes(r, phases.len() as u32, &breakers)?; // grid hook
    Ok(CampaignReport {
        grid_nodes,
        wall_time_s: wall_time_s(&c.started_at, c.ended_at.as_deref()),
        campaign_id: c.id,
        profile: c.profile,
        started_at: c.started_at,
        ended_at: c.ended_at,
        outcome: c.outcome.unwrap_or_else(|| OUTCOME_INTERRUPTED.to_string()),
        stop_reason: c.stop_reason,
        resumes: c.resumes,
        config_source: c.config_source,
        verdict: v,
        totals,
        phases,
        breakers,
        recoveries: recoveries(r)?,
        guardian: guardian(r)?,
        interruptions,
        unsupported: unsupported.into_iter().collect(),
        faults_planned: plan.faults,
        confinement: confinement(r)?,
        source_store: html::SourceStore(Some(r.path().to_path_buf())),
    })
}

/// The campaign verdict from its phases (used by the runner to set the outcome): passed when at
/// least `pass_phase_ratio` of the phases pass and the overall success rate is at least
/// `pass_success_rate`. A campaign with no phase or no op never passes.
pub fn verdict(all_phases: &[PhaseReport], pass_phase_ratio: f64, pass_success_rate: f64) -> Verdict {
    // a phase whose every op was unsupported neither passes nor fails: it is left out
    let phases: Vec<&PhaseReport> = all_phases.iter().filter(|p| !p.criteria.unsupported).collect();
    let unsupported: Vec<&str> = all_phases.iter().filter(|p| p.criteria.unsupported).map(|p| p.name.as_str()).collect();
    let total = phases.len() as u32;
    let passed_n = phases.iter().filter(|p| p.criteria.passed).count() as u32;
    let attempted: u64 = phases.iter().map(|p| p.ops_attempted).sum();
    let succeeded: u64 = phases.iter().map(|p| p.ops_succeeded).sum();
    let overall = ratio(succeeded, attempted);
    let phases_ok = total > 0 && passed_n as f64 + EPS >= pass_phase_ratio * total as f64;
    let rate_ok = attempted > 0 && overall + EPS >= pass_success_rate;

    let mut reasons = Vec::new();
    if !unsupported.is_empty() {
        reasons.push(format!("unsupported (left out of the verdict): {}", unsupported.join(", ")));
    }
    if total == 0 {
        reasons.push(if unsupported.is_empty() { "no phase ran" } else { "no phase ran a supported task" }.to_string());
    } else {
        reasons.push(format!(
            "{passed_n} of {total} phases passed ({}%), {} the required {}%",
            pct_counts(passed_n as u64, total as u64),
            if phases_ok { "meeting" } else { "below" },
            pct_frac(pass_phase_ratio)
        ));
        let failing: Vec<&str> = phases.iter().filter(|p| !p.criteria.passed).map(|p| p.name.as_str()).collect();
        if !failing.is_empty() {
            reasons.push(format!("failing phases: {}", failing.join(", ")));
        }
    }
    if attempted == 0 {
        reasons.push("no ops were attempted".to_string());
    } else {
        reasons.push(format!(
            "overall success rate {}% ({succeeded} of {attempted} ops), {} the required {}%",
            pct_counts(succeeded, attempted),
            if rate_ok { "meeting" } else { "below" },
            pct_frac(pass_success_rate)
        ));
    }
    Verdict {
        passed: phases_ok && rate_ok,
        phases_passed: passed_n,
        phases_total: total,
        phases_planned: total,
        plan_completed: true,
        overall_success_rate: round3(overall),
        required_phase_ratio: pass_phase_ratio,
        required_success_rate: pass_success_rate,
        reasons,
    }
}

/// `phase_NN_name.json`: NN is `idx + 1` on two digits, the name reduced to `[A-Za-z0-9_-]`.
pub fn phase_file_name(idx: u32, name: &str) -> String {
    let mut clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    if clean.is_empty() {
        clean.push_str("phase");
    }
    format!("phase_{:02}_{clean}.json", u64::from(idx) + 1)
}

/// Writes `bytes` to `dir/name` atomically: a temporary file in the same directory, synced, renamed.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map(|_| path)
}

fn pretty<T: Serialize>(v: &T) -> std::io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(v).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Writes `phase_NN_name.json` (pretty JSON and a trailing newline) atomically; returns its path.
pub fn write_phase_report(dir: &Path, p: &PhaseReport) -> std::io::Result<PathBuf> {
    write_atomic(dir, &phase_file_name(p.index, &p.name), &pretty(p)?)
}

/// Writes `campaign_report.json`, `summary.txt`, `report.html` and every phase file from `c.phases` (so a rebuild
/// reproduces them), each atomically.
pub fn write_campaign_reports(dir: &Path, c: &CampaignReport) -> std::io::Result<()> {
    for p in &c.phases {
        write_phase_report(dir, p)?;
    }
    write_atomic(dir, CAMPAIGN_REPORT_FILE, &pretty(c)?)?;
    write_atomic(dir, SUMMARY_FILE, render_summary(c).as_bytes())?;
    html::write(dir, c)?;
    Ok(())
}

/// Why reports could not be rebuilt: the store (see [`StoreError::is_bad_input`] for the exit
/// code), or the reports directory.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The store could not be read, or is damaged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file could not be written.
    #[error("cannot write the reports to {}: {source}", dir.display())]
    Write {
        /// The reports directory.
        dir: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Writes `events.jsonl` from the store, byte-identical to the file the run appended (same line
/// for each stored event, see [`crate::store::event_jsonl_line`]), atomically: it is streamed to a
/// temporary file that replaces the old one only when every event was read and verified.
///
/// Never call it for a campaign that is running: its writer appends to the file it has open, which
/// the rename would replace.
pub fn write_events_jsonl(dir: &Path, r: &StoreReader) -> Result<PathBuf, RebuildError> {
    let werr = |source| RebuildError::Write { dir: dir.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(werr)?;
    let path = dir.join(EVENTS_FILE);
    let tmp = dir.join(format!(".{EVENTS_FILE}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut w = BufWriter::new(std::fs::File::create(&tmp).map_err(werr)?);
        let mut failed = None;
        r.for_each_event_line(|line| {
            if failed.is_none() {
                if let Err(e) = writeln!(w, "{line}") {
                    failed = Some(e);
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(werr(e));
        }
        let f = w.into_inner().map_err(|e| werr(e.into_error()))?;
        f.sync_all().map_err(werr)?;
        std::fs::rename(&tmp, &path).map_err(werr)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map(|_| path)
}

/// `stressctl report ID`: rebuilds every file of the campaign's reports directory from its store —
/// the phase files, `campaign_report.json`, `summary.txt` and `events.jsonl` — byte-identical to
/// the ones the run wrote. Everything is read (and verified) before the first file is replaced, so
/// a damaged store leaves the directory as it was.
pub fn rebuild_reports(r: &StoreReader, dir: &Path) -> Result<CampaignReport, RebuildError> {
    let c = campaign_report(r)?;
    write_events_jsonl(dir, r)?;
    write_campaign_reports(dir, &c).map_err(|source| RebuildError::Write { dir: dir.to_path_buf(), source })?;
    Ok(c)
}
