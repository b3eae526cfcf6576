//! What happened during a campaign, as one typed stream.
//!
//! The runner, the session slots and the guardian emit [`Event`]s; each is written to the store
//! (and so to `events.jsonl`) and published on a broadcast channel that the terminal renderer
//! (and, next, a live dashboard) subscribe to. The reports read the same events back from the
//! store with [`EventRecord::from_stored`], so writer and reader share one definition instead of
//! agreeing on JSON key names in several files.
//!
//! In the store an event is a row `(at, kind, corr, phase_idx, message, data)`: `kind` is the
//! serde tag, `data` the serde content (the variant's fields), `message` the one line
//! [`Event::describe`] renders: the same `kind`/`data` pair as a line of `events.jsonl`.

use crate::breaker::RegistrySnapshot;
use crate::config::FaultKind;
use crate::recovery::FailureClass;
use crate::store::{EventInfo, EventRow, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::broadcast;

/// Everything the campaign reports about itself, one variant per kind of happening.
///
/// Field names are the stored JSON keys: renaming one is a store format change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Event {
    /// The run began (a fresh campaign, not a resume).
    CampaignStarted {
        /// Profile name (`quick`, `overnight`, `custom`).
        profile: String,
        /// Where the config came from.
        config_source: String,
        /// Planned phases.
        phases: u32,
        /// Planned duration of all phases, ms.
        #[serde(default)]
        planned_ms: u64,
        /// The daemon's pid (for people matching logs to processes).
        pid: u32,
        /// `pass_phase_ratio` in force: the report's verdict uses it without re-reading the
        /// config.
        #[serde(default)]
        pass_phase_ratio: Option<f64>,
        /// `pass_success_rate` in force.
        #[serde(default)]
        pass_success_rate: Option<f64>,
        /// The planned faults, one line each.
        #[serde(default)]
        faults: Vec<String>,
        /// The workers: the report groups their results by browser without re-reading the
        /// config (absent in stores written before browsers were configurable: all Chromium).
        #[serde(default)]
        workers: Vec<WorkerInfo>,
    },
    /// A previous process of this campaign died; `launch --resume` picked it up.
    CampaignInterrupted {
        /// Phase index the resume starts at.
        phase: u32,
        /// How far that phase had run, ms.
        elapsed_ms: u64,
        /// What the resume does, for people.
        #[serde(default)]
        note: String,
    },
    /// The campaign continues after an interruption.
    CampaignResumed {
        /// Phase index it resumes at.
        phase: u32,
    },
    /// A phase's clock started.
    PhaseStarted {
        /// Phase name.
        #[serde(default)]
        name: String,
        /// Phases planned in all (to render "3/8").
        #[serde(default)]
        total: u32,
        /// Sessions it really runs (after health gating).
        sessions: u32,
        /// Sessions the config asked for.
        #[serde(default)]
        sessions_planned: u32,
        /// Planned duration, ms.
        duration_ms: u64,
        /// Task kind.
        task: String,
    },
    /// Health gating delayed or scaled a phase down before it started.
    PhaseAdjusted {
        /// What was done and why, for people.
        #[serde(default)]
        note: String,
        /// How long the phase waited for health to recover, ms.
        #[serde(default)]
        delayed_ms: Option<u64>,
        /// Sessions planned, when it was scaled down.
        #[serde(default)]
        sessions_planned: Option<u32>,
        /// Sessions it runs with, when it was scaled down.
        #[serde(default)]
        sessions: Option<u32>,
        /// Health when the decision was taken.
        health: f64,
    },
    /// A phase ended (completed, stopped, or paused by the guardian).
    PhaseEnded {
        /// Phase name.
        #[serde(default)]
        name: String,
        /// `completed`, `stopped` or `paused`.
        #[serde(default)]
        status: String,
        /// Ops attempted, succeeded and failed (abandoned ops included as failed).
        attempted: u64,
        /// Ops that succeeded.
        succeeded: u64,
        /// Ops that failed.
        failed: u64,
        /// Phase time, ms (a resumed phase includes its time before the interruption).
        elapsed_ms: u64,
        /// Sessions it really ran.
        #[serde(default)]
        sessions: u32,
        /// Phases planned in all.
        #[serde(default)]
        total: u32,
        /// Ops per second over the phase.
        #[serde(default)]
        throughput_ops_per_s: f64,
        /// p95 latency, ms.
        #[serde(default)]
        p95_ms: f64,
        /// Whether it met its criteria.
        #[serde(default)]
        passed: bool,
        /// Every op found its API unsupported: neither passed nor failed.
        #[serde(default)]
        unsupported: bool,
    },
    /// One op failed. Capped per slot (every failure is still counted in the windows).
    OpFailed {
        /// Failure class.
        class: FailureClass,
        /// The error, as the task or driver said it.
        #[serde(default)]
        message: Option<String>,
        /// Worker id.
        #[serde(default)]
        worker: String,
        /// Session label, when one was open.
        #[serde(default)]
        session: Option<String>,
        /// Failures not written as events since the last one (event cap).
        #[serde(default)]
        suppressed_before: u64,
        /// Task kind, when it differs from the phase's.
        #[serde(default)]
        task_kind: Option<String>,
        /// What the browser's console said during the op (errors, uncaught exceptions, WebGPU
        /// errors and device loss), `source: text` each, cut short: often the real cause.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        console: Vec<String>,
    },
    /// The page logged console errors or uncaught exceptions during ops that still succeeded (a
    /// WebGPU validation error the op survived, a failing script beside the workload). Capped per
    /// slot like `op_failed`; the exact count is in the windows.
    PageConsole {
        /// Worker id.
        worker: String,
        /// Session label.
        #[serde(default)]
        session: Option<String>,
        /// Entries during the op.
        count: u64,
        /// The first few, `source: text`, cut short.
        entries: Vec<String>,
    },
    /// A circuit breaker changed state.
    BreakerTransition {
        /// `worker:<id>`, `browser:<name>`, `task:<kind>` or `hardware:<class>`.
        key: String,
        /// State left.
        from: String,
        /// State entered.
        to: String,
        /// Why, for people.
        reason: String,
    },
    /// An operator commanded breakers of the running campaign (`stressctl breaker
    /// open|close|reset|disable`). The transitions it caused follow as `breaker_transition`
    /// events whose reason names the command.
    BreakerCommand {
        /// `open`, `close`, `reset` or `disable`.
        action: String,
        /// The scopes as typed (keys or globs such as `worker:grid/*`).
        scopes: Vec<String>,
        /// The breakers they named.
        keys: Vec<String>,
        /// Why, as the operator gave it (empty when none was given).
        reason: String,
        /// Who asked: the uid of the process on the other end of the control socket.
        uid: Option<u32>,
    },
    /// A notification (`[[notify]]`) was delivered, given up on, or dropped from a full queue.
    Notification {
        /// The receiver, scheme and host only (a webhook's path is often its secret).
        target: String,
        /// What it was about: `halted`, `emergency_stop`, `guardian_trip`, `verdict`, `breaker_open`.
        event: String,
        /// Attempts made (0: dropped from a full queue).
        attempts: u32,
        /// Why it was not delivered (None: delivered).
        #[serde(default)]
        error: Option<String>,
    },
    /// The campaign runs with settings `launch --tuned-from` took from earlier campaigns' stores
    /// (written once, at the start): nothing is tuned without the reports saying so.
    ConfigTuned {
        /// The campaigns tuned from.
        from: Vec<String>,
        /// Each setting the overlay changed (or would have, had the config not overridden it).
        settings: Vec<TunedSetting>,
    },
    /// Every breaker's state and counters (written at the end of a campaign).
    BreakerSnapshot(RegistrySnapshot),
    /// One walk of the recovery ladder ended (recovered or gave up).
    RecoveryAttempted {
        /// The failure it recovered from.
        class: FailureClass,
        /// The rung that was tried (`retry`, `new_session`, …).
        strategy: String,
        /// The rung's level, 1–5.
        level: u8,
        /// `succeeded` or `failed`.
        outcome: String,
        /// Worker id.
        #[serde(default)]
        worker: String,
        /// Failure to next success, ms (successful recoveries).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_to_recover_ms: Option<f64>,
    },
    /// A guardian sample was over a threshold.
    GuardianViolation {
        /// Which metric (`cpu`, `memory`, `disk`, …).
        metric: String,
        /// Its value, percent.
        value: f64,
        /// The threshold, percent.
        threshold: f64,
    },
    /// A browser's process tree went over `max_browser_rss`: its session is recycled.
    BrowserRssExceeded {
        /// The browser's pid.
        pid: u32,
        /// Its tree RSS, MiB.
        rss_mb: u64,
        /// The cap, MiB.
        cap_mb: u64,
    },
    /// A session was recycled because its browser was over the RSS cap.
    BrowserRecycled {
        /// Session label.
        session: String,
    },
    /// The recovery ladder restarted a worker's driver.
    DriverRestarted {
        /// Worker id.
        worker: String,
    },
    /// A session was opened through a Selenium Grid hub and placed on a node (grid hook: the
    /// per-node report counts sessions from these).
    GridSessionOpened {
        /// Grid worker id.
        worker: String,
        /// The node's stable name.
        node: String,
        /// WebDriver session id.
        session: String,
    },
    /// One scrape of a watched node's node_exporter (`[[workers]] node_metrics`): the per-node
    /// resource series of the reports. Stored, not logged (one per node per sample).
    NodeSample {
        /// Worker id.
        worker: String,
        /// The node's name (a Grid node's stable name; the worker id for a plain URL).
        node: String,
        /// CPU busy, percent (absent on a node's first scrape).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cpu: Option<f64>,
        /// Memory in use, percent.
        memory: f64,
        /// Root filesystem used, percent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disk: Option<f64>,
        /// Memory/io full stall, percent of the time (where the node has PSI).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pressure: Option<f64>,
    },
    /// A watched node was drained: its breaker forced open, its sessions moved elsewhere.
    NodeDrained {
        /// Worker id.
        worker: String,
        /// The node's name.
        node: String,
        /// Why: `node_distress: memory 93 % > 90 %`, or `node_unwatched: ...`.
        reason: String,
    },
    /// A drained node was under its limits for the recovery time: its breaker is reset.
    NodeReopened {
        /// Worker id.
        worker: String,
        /// The node's name.
        node: String,
        /// Why.
        reason: String,
    },
    /// A watched node's exporter stopped answering (`consecutive_violations` scrapes in a row).
    NodeUnwatched {
        /// Worker id.
        worker: String,
        /// The node's name.
        node: String,
        /// What the last scrape got.
        error: String,
        /// `drain` or `warn` (`[safety] unwatched_node`).
        action: String,
    },
    /// A node's exporter that had stopped answering answers again.
    NodeWatched {
        /// Worker id.
        worker: String,
        /// The node's name.
        node: String,
    },
    /// A configured fault was carried out.
    FaultInjected {
        /// Which fault (stored as `kind` inside `data`, as before events were typed).
        #[serde(rename = "kind")]
        fault: FaultKind,
        /// Worker the op ran on.
        worker: String,
        /// Whether the driver stays dead (`kill_driver`).
        #[serde(default)]
        permanent: bool,
        /// What exactly was done, e.g. the pid killed.
        #[serde(default)]
        detail: String,
    },
    /// The guardian tripped and the campaign pauses to cool down.
    AutoRecoveryStarted {
        /// The trip's reason.
        reason: String,
        /// Cooldown, ms.
        cooldown_ms: u64,
        /// Which auto-recovery this is, 1-based.
        attempt: u32,
    },
    /// Health recovered after a cooldown: the phase runs again.
    AutoRecoveryResumed {
        /// Health after the cooldown.
        health: f64,
        /// Phase that re-runs.
        #[serde(default)]
        phase_name: String,
    },
    /// The night's baseline, taken before the first phase (not with `launch --no-baseline`, not
    /// on a resume): the idle host and one session's ops, what the report compares the last
    /// phase against.
    Baseline(BaselineInfo),
    /// How the campaign's browsers and drivers are confined (reservation for the host, PID
    /// namespaces), recorded once at the start: the report shows the reservation in force.
    Confinement {
        /// One line for people.
        description: String,
        /// Whether a cgroup caps the campaign.
        confined: bool,
        /// `safety.reserve_percent` in force (when confined).
        #[serde(default)]
        reserve_percent: Option<u32>,
        /// The campaign's CPU cap, percent of all cores.
        #[serde(default)]
        cpu_cap_percent: Option<f64>,
        /// The campaign's memory cap, bytes.
        #[serde(default)]
        memory_cap_bytes: Option<u64>,
        /// How it is enforced, or why it is not.
        #[serde(default)]
        mechanism: String,
        /// Whether drivers run in their own PID namespaces (die with stressctl).
        pid_namespaces: bool,
    },
    /// The wall clock jumped: the process was suspended (SIGSTOP, laptop sleep) or starved.
    ClockGap {
        /// How much later than scheduled the runner woke up, ms.
        gap_ms: u64,
        /// What noticed it (`guardian`, `phase`).
        observer: String,
    },
    /// A browser answered "unsupported" to a task often enough in a row that it is not asked
    /// again for it this run; or a phase was not run on it because of that (`remembered`).
    TaskUnsupported {
        /// The task (`webnn`, `model/webnn`, ...).
        task: String,
        /// The browser.
        browser: String,
        /// What it answered, in its own words.
        message: String,
        /// Unsupported answers in a row that decided it (0 when `remembered`).
        #[serde(default)]
        answers: u32,
        /// Said in an earlier phase: this phase sent it no op.
        #[serde(default)]
        remembered: bool,
    },
    /// A capacity search began, for one browser (`browser`) or over the phase's placement
    /// (None); several when the phase spans several browsers, one after another.
    CapacitySearch {
        /// The browser searched, when the phase spans several.
        #[serde(default)]
        browser: Option<String>,
        /// The lowest count tried (the phase's `sessions`).
        min: u32,
        /// The highest count tried.
        max: u32,
        /// Sessions added per rising step (0 doubles).
        step: u32,
        /// Time of one step, ms.
        step_ms: u64,
        /// Unmeasured start of each step, ms.
        warmup_ms: u64,
    },
    /// One step of a capacity search, measured after its warm-up and judged by the phase's
    /// criteria. The report's capacity section is built from these alone.
    CapacityStep {
        /// The browser searched (see [`Event::CapacitySearch`]).
        #[serde(default)]
        browser: Option<String>,
        /// Sessions the step ran.
        sessions: u32,
        /// Ops attempted in the measured part.
        attempted: u64,
        /// Ops that succeeded in it.
        succeeded: u64,
        /// The p95 its criteria judged, ms.
        p95_ms: f64,
        /// `in_page` or `round_trip`.
        p95_basis: String,
        /// Ops per second in the measured part.
        ops_per_s: f64,
        /// Length of the measured part, ms.
        measured_ms: u64,
        /// It met the phase's criteria.
        passed: bool,
        /// Why not, one sentence each.
        #[serde(default)]
        failures: Vec<String>,
        /// Its verdict was settled before its end (a failure beyond what the whole step could
        /// absorb, or a pass with most of its allowance unused half-way), so it was ended early.
        #[serde(default)]
        settled_early: bool,
    },
    /// Too many phases failed in a row.
    CampaignHalted {
        /// The failing phases' names.
        phases: Vec<String>,
    },
    /// A stop was requested (operator, signal, guardian, store, time cap).
    EmergencyStop {
        /// What stopped it (`interrupted`, `guardian`, …).
        cause: String,
        /// One line for people.
        reason: String,
    },
    /// The campaign ended.
    CampaignEnded {
        /// `passed`, `failed`, `halted`, `emergency_stopped`.
        outcome: String,
        /// Why it stopped early, if it did.
        stop_reason: Option<String>,
    },
}

impl Event {
    /// The serde tag: the `kind` column of the store.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::CampaignStarted { .. } => "campaign_started",
            Event::CampaignInterrupted { .. } => "campaign_interrupted",
            Event::CampaignResumed { .. } => "campaign_resumed",
            Event::PhaseStarted { .. } => "phase_started",
            Event::PhaseAdjusted { .. } => "phase_adjusted",
            Event::PhaseEnded { .. } => "phase_ended",
            Event::OpFailed { .. } => "op_failed",
            Event::PageConsole { .. } => "page_console",
            Event::BreakerTransition { .. } => "breaker_transition",
            Event::BreakerCommand { .. } => "breaker_command",
            Event::Notification { .. } => "notification",
            Event::ConfigTuned { .. } => "config_tuned",
            Event::BreakerSnapshot(_) => "breaker_snapshot",
            Event::RecoveryAttempted { .. } => "recovery_attempted",
            Event::GuardianViolation { .. } => "guardian_violation",
            Event::BrowserRssExceeded { .. } => "browser_rss_exceeded",
            Event::BrowserRecycled { .. } => "browser_recycled",
            Event::DriverRestarted { .. } => "driver_restarted",
            Event::GridSessionOpened { .. } => "grid_session_opened",
            Event::NodeSample { .. } => "node_sample",
            Event::NodeDrained { .. } => "node_drained",
            Event::NodeReopened { .. } => "node_reopened",
            Event::NodeUnwatched { .. } => "node_unwatched",
            Event::NodeWatched { .. } => "node_watched",
            Event::FaultInjected { .. } => "fault_injected",
            Event::AutoRecoveryStarted { .. } => "auto_recovery_started",
            Event::AutoRecoveryResumed { .. } => "auto_recovery_resumed",
            Event::Baseline(_) => "baseline",
            Event::Confinement { .. } => "confinement",
            Event::ClockGap { .. } => "clock_gap",
            Event::TaskUnsupported { .. } => "task_unsupported",
            Event::CapacitySearch { .. } => "capacity_search",
            Event::CapacityStep { .. } => "capacity_step",
            Event::CampaignHalted { .. } => "campaign_halted",
            Event::EmergencyStop { .. } => "emergency_stop",
            Event::CampaignEnded { .. } => "campaign_ended",
        }
    }

    /// One line for people: the store's `message` column, the log line, the terminal.
    pub fn describe(&self) -> String {
        let secs = |ms: u64| crate::fmt::fmt_duration(std::time::Duration::from_millis(ms));
        match self {
            Event::CampaignStarted { profile, phases, planned_ms, .. } => {
                format!("campaign ({profile}) started: {phases} phases, planned {}", secs(*planned_ms))
            }
            Event::CampaignInterrupted { note, .. } => format!("the campaign process died; {note}"),
            Event::CampaignResumed { phase } => format!("campaign resumed at phase {}", phase + 1),
            Event::PhaseStarted { name, total, sessions, duration_ms, task, .. } => {
                format!("phase {name} ({total} planned) started: {sessions} sessions, {}, task {task}", secs(*duration_ms))
            }
            Event::PhaseAdjusted { note, .. } => note.clone(),
            Event::PhaseEnded { name, status, attempted, succeeded, failed, elapsed_ms, .. } => {
                format!("phase {name} {status}: {attempted} ops, {succeeded} ok, {failed} failed in {:.1}s", *elapsed_ms as f64 / 1000.0)
            }
            Event::OpFailed { class, message, console, .. } => match console.first() {
                Some(c) => format!("{class}: {} (console: {c})", message.as_deref().unwrap_or("")),
                None => format!("{class}: {}", message.as_deref().unwrap_or("")),
            },
            Event::PageConsole { count, entries, .. } => {
                format!(
                    "the page logged {count} console error(s) during an op that succeeded: {}",
                    entries.first().map_or("", String::as_str)
                )
            }
            Event::BreakerTransition { key, from, to, reason } => format!("breaker {key}: {from} -> {to}: {reason}"),
            Event::BreakerCommand { action, keys, reason, uid, .. } => {
                let who = uid.map_or_else(|| "an operator".to_string(), |u| format!("uid {u}"));
                let why = if reason.is_empty() { String::new() } else { format!(": {reason}") };
                format!("breaker {action} by {who} on {}{why}", keys.join(", "))
            }
            Event::Notification { target, event, attempts, error } => match error {
                None => format!("notification {event} delivered to {target} ({attempts} attempt(s))"),
                Some(e) => format!("notification {event} to {target} failed after {attempts} attempt(s): {e}"),
            },
            Event::ConfigTuned { from, settings } => {
                let list: Vec<String> = settings.iter().map(|t| format!("{} {} -> {}", t.key, t.old, t.new)).collect();
                format!("settings tuned from {}: {}", from.join(", "), if list.is_empty() { "none".to_string() } else { list.join(", ") })
            }
            Event::BreakerSnapshot(_) => "breaker states at the end of the campaign".into(),
            Event::RecoveryAttempted { class, strategy, outcome, .. } => format!("recovery from {class} by {strategy} {outcome}"),
            Event::GuardianViolation { metric, value, threshold } if metric.ends_with("_free") => {
                format!("{metric} {value:.0} MiB under the {threshold:.0} MiB minimum")
            }
            Event::GuardianViolation { metric, value, threshold } => format!("{metric} {value:.1}% over the {threshold}% threshold"),
            Event::BrowserRssExceeded { pid, rss_mb, cap_mb } => {
                format!("browser pid {pid} uses {rss_mb} MiB, over the {cap_mb} MiB cap: recycling its session")
            }
            Event::BrowserRecycled { session } => format!("session {session} recycled: browser over max_browser_rss"),
            Event::DriverRestarted { worker } => format!("driver of worker {worker} restarted"),
            Event::GridSessionOpened { worker, node, session } => format!("session {session} of Grid worker {worker} on node {node}"),
            Event::NodeSample { worker, node, cpu, memory, disk, pressure } => {
                let opt = |v: &Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
                format!("node {worker}/{node}: cpu {} mem {memory:.1} disk {} stall {}", opt(cpu), opt(disk), opt(pressure))
            }
            Event::NodeDrained { worker, node, reason } => format!("node {worker}/{node} drained: {reason}"),
            Event::NodeReopened { worker, node, reason } => format!("node {worker}/{node} reopened: {reason}"),
            Event::NodeUnwatched { worker, node, error, action } => {
                format!("node {worker}/{node} unwatched: its node_exporter does not answer ({error}); unwatched_node = {action}")
            }
            Event::NodeWatched { worker, node } => format!("node {worker}/{node} watched again: its node_exporter answers"),
            Event::FaultInjected { fault, detail, .. } => {
                if detail.is_empty() {
                    format!("fault {} injected", fault.as_str())
                } else {
                    detail.clone()
                }
            }
            Event::AutoRecoveryStarted { reason, cooldown_ms, attempt } => {
                format!("{reason}: cooling down {} (auto-recovery {attempt})", secs(*cooldown_ms))
            }
            Event::AutoRecoveryResumed { health, phase_name } => format!("health {health:.0} after cooldown: resuming phase {phase_name}"),
            Event::Baseline(b) => b.describe(),
            Event::Confinement { description, .. } => description.clone(),
            Event::ClockGap { gap_ms, observer } => format!(
                "the clock jumped {:.1}s ahead ({observer}): the process was suspended or starved; that time is not load",
                *gap_ms as f64 / 1000.0
            ),
            Event::TaskUnsupported { task, browser, message, answers, remembered: false } => {
                format!("{browser} answered unsupported to the {task} task {answers} times in a row: not asked again this run ({message})")
            }
            Event::TaskUnsupported { task, browser, message, remembered: true, .. } => {
                format!("{browser} not asked for the {task} task: unsupported earlier in this run ({message})")
            }
            Event::CapacitySearch { browser, min, max, step, step_ms, warmup_ms } => format!(
                "capacity search{}: {min}..{max} sessions, {}, steps of {} ({} warm-up)",
                browser.as_ref().map(|b| format!(" on {b}")).unwrap_or_default(),
                if *step == 0 { "doubling".to_string() } else { format!("+{step} per step") },
                secs(*step_ms),
                secs(*warmup_ms)
            ),
            Event::CapacityStep {
                browser,
                sessions,
                attempted,
                succeeded,
                p95_ms,
                p95_basis,
                ops_per_s,
                passed,
                failures,
                settled_early,
                ..
            } => {
                let on = browser.as_ref().map(|b| format!(" on {b}")).unwrap_or_default();
                let which = if p95_basis == "in_page" { "in-page p95" } else { "p95" };
                let rate = if *attempted > 0 { *succeeded as f64 * 100.0 / *attempted as f64 } else { 0.0 };
                let verdict = if *passed { "hold".to_string() } else { format!("fail ({})", failures.join("; ")) };
                let early = if *settled_early { ", ended early: its verdict was settled" } else { "" };
                let plural = if *sessions == 1 { "session" } else { "sessions" };
                format!("capacity step{on}: {sessions} {plural} {verdict}: {attempted} ops, success {rate:.1}%, {which} {p95_ms:.1} ms, {ops_per_s:.1} ops/s{early}")
            }
            Event::CampaignHalted { phases } => format!("{} phases failed in a row ({})", phases.len(), phases.join(", ")),
            Event::EmergencyStop { reason, .. } => reason.clone(),
            Event::CampaignEnded { outcome, stop_reason } => match stop_reason {
                Some(r) => format!("campaign {outcome} ({r})"),
                None => format!("campaign {outcome}"),
            },
        }
    }
}

/// What the baseline measured ([`Event::Baseline`]): the host at rest, then one session running
/// the first phase's task as a phase runs it (in batches for the page tasks).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BaselineInfo {
    /// Idle guardian samples taken (one second apart).
    pub idle_samples: u32,
    /// Mean CPU in use over them, percent.
    pub cpu_percent: f64,
    /// Mean memory in use, percent.
    pub memory_percent: f64,
    /// Memory available at the last idle sample, MiB.
    pub memory_available_mb: u64,
    /// Total memory, MiB (what turns the phases' memory percentages into MiB left).
    pub memory_total_mb: u64,
    /// Free space on the output dir's filesystem, MiB.
    pub disk_available_mb: u64,
    /// Health score of the idle host (no ops yet).
    pub health: f64,
    /// The task kind the single session ran (the first phase's).
    pub task: String,
    /// Single-session ops run.
    pub ops: u32,
    /// Of which succeeded.
    pub succeeded: u32,
    /// Wall time of the ops (session start left out), ms.
    pub elapsed_ms: u64,
    /// Ops per second of the one session.
    pub ops_per_s: f64,
    /// Round-trip latency of the successful ops, ms.
    pub p50_ms: f64,
    /// 95th percentile of the same.
    pub p95_ms: f64,
    /// Why the single-session part did not run or stopped short, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl BaselineInfo {
    /// One line: `baseline: idle cpu 3.1%, memory 22.0% (18211 MiB available), disk 71234 MiB
    /// free; 1 session of webgpu: 20/20 ops ok, 14.2 ops/s, p95 80.1 ms`.
    pub fn describe(&self) -> String {
        let mut line = format!(
            "baseline: idle cpu {:.1}%, memory {:.1}% ({} MiB available), disk {} MiB free; 1 session of {}: {}/{} ops ok, {:.1} ops/s, p95 {:.1} ms",
            self.cpu_percent,
            self.memory_percent,
            self.memory_available_mb,
            self.disk_available_mb,
            self.task,
            self.succeeded,
            self.ops,
            self.ops_per_s,
            self.p95_ms
        );
        if let Some(n) = &self.note {
            line.push_str(&format!(" ({n})"));
        }
        line
    }
}

/// One setting `launch --tuned-from` changed: the effective value without the tuned overlay and
/// with it, and the measurement behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TunedSetting {
    /// The effective config's dotted key (`browser.op_timeout`, `breaker.worker.recovery_timeout`).
    pub key: String,
    /// Its value without the overlay, as TOML.
    pub old: String,
    /// Its value with the overlay, as TOML (the same as `old` when the tuned value equals it).
    pub new: String,
    /// The measurement it came from (the overlay's comment).
    pub source: String,
}

/// A worker as the campaign started it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Its id (`worker:<id>` breaker key).
    pub id: String,
    /// The browser it runs (`chromium`, `firefox`).
    pub browser: String,
    /// Its `webgpu_adapter` choice (`software`, `hardware`, `auto`).
    pub webgpu_adapter: String,
    /// `managed`, or its WebDriver URL.
    pub endpoint: String,
}

/// An event with where and when it happened.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    /// Wall-clock time.
    pub at: SystemTime,
    /// Correlation id: `<campaign-id>/<phase>/<worker>/<slot>-<op-seq>`, as far as it applies.
    pub corr: String,
    /// Phase index, when it belongs to one.
    pub phase: Option<u32>,
    /// What happened.
    pub event: Event,
}

/// An event row that does not decode (written by another version, or damaged).
#[derive(Debug, thiserror::Error)]
#[error("event {kind} at {at} does not decode: {source}")]
pub struct DecodeError {
    /// Its kind column.
    pub kind: String,
    /// Its timestamp column.
    pub at: String,
    /// Why.
    #[source]
    pub source: serde_json::Error,
}

impl EventRecord {
    /// The store row: `kind` column, rendered message, and the fields as `data`.
    pub fn to_row(&self) -> EventRow {
        let data = match serde_json::to_value(&self.event) {
            Ok(Value::Object(mut m)) => m.remove("data").unwrap_or(Value::Null),
            _ => Value::Null,
        };
        EventRow {
            at: self.at,
            kind: self.event.kind(),
            corr: self.corr.clone(),
            phase_idx: self.phase,
            message: self.event.describe(),
            data,
        }
    }

    /// Decodes a stored row back into the event that was written.
    pub fn from_stored(e: &EventInfo) -> Result<(String, Event), DecodeError> {
        serde_json::from_value(serde_json::json!({"kind": e.kind, "data": e.data}))
            .map(|ev| (e.at.clone(), ev))
            .map_err(|source| DecodeError { kind: e.kind.clone(), at: e.at.clone(), source })
    }
}

/// How many events a slow subscriber may fall behind before it misses some (it is told how many).
pub const BUS_CAPACITY: usize = 4096;

/// Where events go: the store (durable, the reports' source) and live subscribers.
#[derive(Clone)]
pub struct EventBus {
    store: Store,
    tx: broadcast::Sender<Arc<EventRecord>>,
}

impl EventBus {
    /// A bus that writes to `store`.
    pub fn new(store: Store) -> EventBus {
        EventBus { store, tx: broadcast::channel(BUS_CAPACITY).0 }
    }

    /// Records an event now.
    pub fn emit(&self, corr: impl Into<String>, phase: Option<u32>, event: Event) {
        let rec = EventRecord { at: SystemTime::now(), corr: corr.into(), phase, event };
        self.store.event(rec.to_row());
        // no subscriber is fine: the store has it
        let _ = self.tx.send(Arc::new(rec));
    }

    /// A live feed of the events emitted from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EventRecord>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::{AggregateCounts, RegistrySnapshot};

    fn all_events() -> Vec<Event> {
        vec![
            Event::CampaignStarted {
                profile: "quick".into(),
                config_source: "embedded".into(),
                phases: 8,
                planned_ms: 120_000,
                pid: 42,
                pass_phase_ratio: Some(0.7),
                pass_success_rate: Some(0.9),
                faults: vec!["kill_driver every 20s".into()],
                workers: vec![WorkerInfo {
                    id: "ff".into(),
                    browser: "firefox".into(),
                    webgpu_adapter: "software".into(),
                    endpoint: "managed".into(),
                }],
            },
            Event::CampaignInterrupted { phase: 2, elapsed_ms: 1500, note: "continued".into() },
            Event::CampaignResumed { phase: 2 },
            Event::PhaseStarted {
                name: "warmup".into(),
                total: 8,
                sessions: 2,
                sessions_planned: 4,
                duration_ms: 10_000,
                task: "webgpu".into(),
            },
            Event::PhaseAdjusted {
                note: "scaled".into(),
                delayed_ms: Some(10),
                sessions_planned: Some(4),
                sessions: Some(2),
                health: 55.0,
            },
            Event::PhaseEnded {
                name: "warmup".into(),
                status: "completed".into(),
                attempted: 10,
                succeeded: 9,
                failed: 1,
                elapsed_ms: 10_001,
                sessions: 2,
                total: 8,
                throughput_ops_per_s: 0.9,
                p95_ms: 120.5,
                passed: true,
                unsupported: false,
            },
            Event::OpFailed {
                class: FailureClass::Timeout,
                message: Some("op timed out".into()),
                worker: "w1".into(),
                session: None,
                suppressed_before: 3,
                task_kind: None,
                console: vec!["webgpu error: Buffer usage is invalid".into()],
            },
            Event::PageConsole {
                worker: "w1".into(),
                session: Some("w1-s1".into()),
                count: 2,
                entries: vec!["console.error: boom".into(), "uncaught: Error: late".into()],
            },
            Event::BreakerTransition { key: "worker:w1".into(), from: "closed".into(), to: "open".into(), reason: "5 failures".into() },
            Event::BreakerCommand {
                action: "open".into(),
                scopes: vec!["worker:grid/*".into()],
                keys: vec!["worker:grid/n1".into()],
                reason: "node maintenance".into(),
                uid: Some(1000),
            },
            Event::Notification {
                target: "http://127.0.0.1:9000".into(),
                event: "verdict".into(),
                attempts: 4,
                error: Some("answered 500 Internal Server Error".into()),
            },
            Event::ConfigTuned {
                from: vec!["20261205T101010Z-ab12".into()],
                settings: vec![TunedSetting {
                    key: "browser.op_timeout".into(),
                    old: "\"30s\"".into(),
                    new: "\"6s\"".into(),
                    source: "in-page p99.9 120 ms over 900 ops".into(),
                }],
            },
            Event::BreakerSnapshot(RegistrySnapshot {
                aggregate: AggregateCounts { total: 1, closed: 1, ..Default::default() },
                ..Default::default()
            }),
            Event::RecoveryAttempted {
                class: FailureClass::Crash,
                strategy: "new_session".into(),
                level: 2,
                outcome: "succeeded".into(),
                worker: "w1".into(),
                time_to_recover_ms: Some(812.5),
            },
            Event::GuardianViolation { metric: "cpu".into(), value: 97.5, threshold: 95.0 },
            Event::BrowserRssExceeded { pid: 7, rss_mb: 900, cap_mb: 800 },
            Event::BrowserRecycled { session: "w1#3".into() },
            Event::DriverRestarted { worker: "w1".into() },
            Event::GridSessionOpened { worker: "grid".into(), node: "node-1".into(), session: "abc".into() },
            Event::NodeSample { worker: "grid".into(), node: "n1".into(), cpu: Some(12.5), memory: 93.0, disk: None, pressure: Some(1.0) },
            Event::NodeDrained { worker: "grid".into(), node: "n1".into(), reason: "node_distress: memory 93 % > 90 %".into() },
            Event::NodeReopened { worker: "grid".into(), node: "n1".into(), reason: "node_recovered: under the limits for 30s".into() },
            Event::NodeUnwatched { worker: "grid".into(), node: "n1".into(), error: "connection refused".into(), action: "drain".into() },
            Event::NodeWatched { worker: "grid".into(), node: "n1".into() },
            Event::FaultInjected {
                fault: FaultKind::KillDriver,
                worker: "w1".into(),
                permanent: true,
                detail: "SIGKILL chromedriver pid 9".into(),
            },
            Event::AutoRecoveryStarted { reason: "guardian: cpu".into(), cooldown_ms: 30_000, attempt: 1 },
            Event::AutoRecoveryResumed { health: 80.0, phase_name: "high".into() },
            Event::Baseline(BaselineInfo {
                idle_samples: 2,
                cpu_percent: 3.5,
                memory_percent: 20.0,
                memory_available_mb: 8000,
                memory_total_mb: 10000,
                disk_available_mb: 5000,
                health: 100.0,
                task: "webgpu".into(),
                ops: 10,
                succeeded: 10,
                elapsed_ms: 800,
                ops_per_s: 12.5,
                p50_ms: 70.0,
                p95_ms: 90.0,
                note: None,
            }),
            Event::ClockGap { gap_ms: 10_200, observer: "guardian".into() },
            Event::Confinement {
                description: "reserve 20%".into(),
                confined: true,
                reserve_percent: Some(20),
                cpu_cap_percent: Some(80.0),
                memory_cap_bytes: Some(1 << 30),
                mechanism: "cgroup v2 cpu.max".into(),
                pid_namespaces: true,
            },
            Event::TaskUnsupported {
                task: "webnn".into(),
                browser: "chromium".into(),
                message: "NotSupportedError: WebNN is not supported on this platform".into(),
                answers: 3,
                remembered: false,
            },
            Event::CapacitySearch { browser: Some("chromium".into()), min: 1, max: 8, step: 0, step_ms: 20_000, warmup_ms: 5_000 },
            Event::CapacityStep {
                browser: None,
                sessions: 4,
                attempted: 120,
                succeeded: 119,
                p95_ms: 41.5,
                p95_basis: "in_page".into(),
                ops_per_s: 8.0,
                measured_ms: 15_000,
                passed: false,
                failures: vec!["success rate 99.2% below 99.5%".into()],
                settled_early: true,
            },
            Event::CampaignHalted { phases: vec!["a".into(), "b".into()] },
            Event::EmergencyStop { cause: "guardian".into(), reason: "memory 91%".into() },
            Event::CampaignEnded { outcome: "passed".into(), stop_reason: None },
        ]
    }

    #[test]
    fn every_event_round_trips_through_its_store_row() {
        for ev in all_events() {
            let rec = EventRecord { at: SystemTime::UNIX_EPOCH, corr: "c/p".into(), phase: Some(1), event: ev.clone() };
            let row = rec.to_row();
            assert_eq!(row.kind, ev.kind());
            assert!(row.data.is_object(), "data holds the fields: {}", row.data);
            let info = EventInfo {
                at: "2026-11-25T00:00:00.000Z".into(),
                kind: row.kind.to_string(),
                corr: row.corr.clone(),
                phase_idx: row.phase_idx,
                message: row.message.clone(),
                data: row.data.clone(),
            };
            let (_, back) = EventRecord::from_stored(&info).unwrap();
            assert_eq!(back, ev);
        }
    }

    #[test]
    fn kind_matches_the_serde_tag() {
        for ev in all_events() {
            let v = serde_json::to_value(&ev).unwrap();
            assert_eq!(v["kind"], ev.kind());
        }
    }

    #[test]
    fn a_fault_keeps_its_stored_kind_key() {
        let ev = Event::FaultInjected { fault: FaultKind::KillDriver, worker: "w1".into(), permanent: true, detail: String::new() };
        let row = EventRecord { at: SystemTime::UNIX_EPOCH, corr: String::new(), phase: None, event: ev }.to_row();
        assert_eq!(row.kind, "fault_injected");
        assert_eq!(row.data["kind"], "kill_driver");
    }

    #[test]
    fn a_row_of_the_wrong_shape_is_an_error_not_a_default() {
        let info = EventInfo {
            at: "t".into(),
            kind: "guardian_violation".into(),
            corr: String::new(),
            phase_idx: None,
            message: String::new(),
            data: serde_json::json!({"metric": "cpu", "value": "high"}),
        };
        let e = EventRecord::from_stored(&info).unwrap_err();
        assert!(e.to_string().contains("guardian_violation"), "{e}");
    }

    #[tokio::test]
    async fn subscribers_see_events_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::create(
            &dir.path().join("s.sqlite"),
            &crate::store::CampaignRecord {
                id: "t".into(),
                profile: "quick".into(),
                config_source: "test".into(),
                config_text: String::new(),
                started_at: SystemTime::now(),
                output_dir: dir.path().to_path_buf(),
            },
            &dir.path().join("events.jsonl"),
        )
        .unwrap();
        let bus = EventBus::new(store.clone());
        let mut rx = bus.subscribe();
        bus.emit("c", Some(0), Event::CampaignResumed { phase: 0 });
        bus.emit("c", Some(0), Event::DriverRestarted { worker: "w".into() });
        assert_eq!(rx.recv().await.unwrap().event.kind(), "campaign_resumed");
        assert_eq!(rx.recv().await.unwrap().event.kind(), "driver_restarted");
        store.close().unwrap();
    }
}
