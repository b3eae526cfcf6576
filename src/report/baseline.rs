//! The night's baseline in the report: what `launch` measured before the first phase (the idle
//! host, one session's ops) and the last phase that ran set against it — throughput per session
//! and p95 at equal sessions, and the memory left.

use super::numbers::round3;
use super::phase::PhaseReport;
use super::typed_events::for_each_typed;
use crate::events::{BaselineInfo, Event};
use crate::store::{StoreError, StoreReader};
use serde::{Deserialize, Serialize};

/// `campaign_report.json` `baseline`: null when the campaign took none (`--no-baseline`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineReport {
    /// RFC 3339.
    pub taken_at: String,
    /// What was measured.
    pub measured: BaselineInfo,
    /// The last load phase that ran ops, against the baseline (null when none ran or the baseline
    /// has no successful op).
    pub last_phase: Option<BaselineComparison>,
}

/// The last phase that ran ops, set against the baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineComparison {
    /// Its name.
    pub phase: String,
    /// Sessions it ran.
    pub sessions: u32,
    /// Its throughput over all sessions, ops/s.
    pub throughput_ops_per_s: f64,
    /// The same per session: what one session did beside the others.
    pub per_session_ops_per_s: f64,
    /// per_session_ops_per_s / the baseline's single-session ops/s: 1.0 when sessions do not
    /// slow each other (or the night the host).
    pub throughput_ratio: Option<f64>,
    /// Its round-trip p95, ms (the baseline measured round trips too, batched as in a phase).
    pub p95_ms: f64,
    /// p95_ms / the baseline's p95.
    pub p95_ratio: Option<f64>,
    /// Its success rate (the baseline's is succeeded / ops).
    pub success_rate: f64,
    /// Memory in use at its highest during the phase, percent (the baseline: idle).
    pub memory_percent_max: f64,
    /// Memory left at that point, MiB (from the baseline's total).
    pub memory_left_mb: Option<u64>,
    /// memory_left_mb minus the memory available at the baseline, MiB (negative: less left).
    pub memory_left_change_mb: Option<i64>,
}

/// The baseline and the comparison, from the store (the last `baseline` event).
pub(super) fn baseline(r: &StoreReader, phases: &[PhaseReport]) -> Result<Option<BaselineReport>, StoreError> {
    let mut found = None;
    for_each_typed(r, None, &["baseline"], |e, ev| {
        if let Event::Baseline(b) = ev {
            found = Some((e.at, b));
        }
    })?;
    let Some((taken_at, measured)) = found else { return Ok(None) };
    // the last phase that ran the task the baseline measured: another task's figures compare nothing
    // (a capacity phase ran many counts of sessions: no one per-session figure to compare)
    let last_phase = phases
        .iter()
        .rev()
        .find(|p| p.ops_attempted > 0 && p.task_kind == measured.task && p.capacity.is_empty())
        .and_then(|p| compare(&measured, p));
    Ok(Some(BaselineReport { taken_at, measured, last_phase }))
}

/// `phase` against `b`.
fn compare(b: &BaselineInfo, p: &PhaseReport) -> Option<BaselineComparison> {
    let per_session = if p.sessions == 0 { 0.0 } else { p.throughput_ops_per_s / p.sessions as f64 };
    let over = |x: f64, base: f64| (base > 0.0 && x.is_finite()).then(|| round3(x / base));
    let memory_max = p.resources.memory_max;
    let left = (b.memory_total_mb > 0 && p.resources.samples > 0)
        .then(|| (b.memory_total_mb as f64 * (1.0 - memory_max / 100.0)).max(0.0).round() as u64);
    Some(BaselineComparison {
        phase: p.name.clone(),
        sessions: p.sessions,
        throughput_ops_per_s: p.throughput_ops_per_s,
        per_session_ops_per_s: round3(per_session),
        throughput_ratio: over(per_session, b.ops_per_s),
        p95_ms: p.latency_ms.p95,
        p95_ratio: if p.ops_succeeded > 0 { over(p.latency_ms.p95, b.p95_ms) } else { None },
        success_rate: p.success_rate,
        memory_percent_max: memory_max,
        memory_left_mb: left,
        memory_left_change_mb: left.map(|l| l as i64 - b.memory_available_mb as i64),
    })
}

/// The summary's lines (none without a baseline).
pub(super) fn summary_lines(b: &Option<BaselineReport>) -> Vec<String> {
    let Some(b) = b else { return Vec::new() };
    let m = &b.measured;
    let mut out = vec![format!(
        "  taken {}: idle cpu {:.1}%, memory {:.1}% ({} of {} MiB available), disk {} MiB free, health {:.0}",
        b.taken_at, m.cpu_percent, m.memory_percent, m.memory_available_mb, m.memory_total_mb, m.disk_available_mb, m.health
    )];
    out.push(format!(
        "  1 session of {}: {}/{} ops ok, {:.1} ops/s, p50 {:.1} ms, p95 {:.1} ms (round trip, ops run as a phase runs them){}",
        m.task,
        m.succeeded,
        m.ops,
        m.ops_per_s,
        m.p50_ms,
        m.p95_ms,
        m.note.as_deref().map(|n| format!("; {n}")).unwrap_or_default()
    ));
    match &b.last_phase {
        Some(c) => {
            let ratio = |r: Option<f64>| r.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "n/a".into());
            out.push(format!(
                "  last phase {} ({} sessions): {:.1} ops/s per session = {} the baseline; p95 {:.1} ms = {} the baseline's",
                c.phase,
                c.sessions,
                c.per_session_ops_per_s,
                ratio(c.throughput_ratio),
                c.p95_ms,
                ratio(c.p95_ratio)
            ));
            if let (Some(left), Some(change)) = (c.memory_left_mb, c.memory_left_change_mb) {
                out.push(format!(
                    "  memory: {:.1}% at most in use during it, {left} MiB left ({change:+} MiB against the baseline's {} MiB)",
                    c.memory_percent_max, m.memory_available_mb
                ));
            }
        }
        None => out.push("  no phase ran ops to compare".into()),
    }
    out
}
