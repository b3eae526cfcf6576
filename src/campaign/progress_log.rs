//! The campaign log's progress line: every `[logging] progress_interval` while a phase runs, one
//! line saying how it fares, so that `tail -f` of a quiet overnight phase shows it is alive —
//! ops, success, ops/s, p95 (in-page when the task measures it), sessions, health and the
//! resource nearest its limit.

use super::shared::RunShared;
use crate::guardian::{worst_reading, Reading};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What one progress line says (a named struct so the line is built and tested apart from the
/// run that measures it).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Progress {
    /// Phase index (0-based) and phases planned.
    pub idx: u32,
    /// Phases planned.
    pub total: usize,
    /// Phase name.
    pub name: String,
    /// Phase time so far and planned.
    pub elapsed: Duration,
    /// Planned phase time.
    pub duration: Duration,
    /// Ops attempted and succeeded so far.
    pub attempted: u64,
    /// Ops that succeeded.
    pub succeeded: u64,
    /// p95 latency, ms, and whether it is in-page (else round trip).
    pub p95_ms: f64,
    /// Whether `p95_ms` is the page's own measure.
    pub in_page: bool,
    /// Sessions the phase runs.
    pub sessions: u32,
    /// The guardian's latest health score.
    pub health: Option<f64>,
    /// The resource nearest its threshold in the latest sample.
    pub worst: Option<Reading>,
}

/// `progress 2/3 warm 45s/2m: 1234 ops, 99.8% ok, 27.4 ops/s, in-page p95 12.3 ms, 4 sessions,
/// health 92, worst memory 61.2%/80%`.
pub(crate) fn progress_line(p: &Progress) -> String {
    let secs = p.elapsed.as_secs_f64().max(0.001);
    let ok = if p.attempted > 0 { p.succeeded as f64 / p.attempted as f64 * 100.0 } else { 100.0 };
    let health = p.health.map_or_else(|| "-".to_string(), |h| format!("{h:.0}"));
    let worst = p
        .worst
        .as_ref()
        .map_or_else(|| "-".to_string(), |w| format!("{} {:.1}%/{}%", w.metric, w.value, (w.threshold * 10.0).round() / 10.0));
    format!(
        "progress {}/{} {} {}/{}: {} ops, {:.1}% ok, {:.1} ops/s, {} p95 {:.1} ms, {} sessions, health {health}, worst {worst}",
        p.idx + 1,
        p.total,
        p.name,
        crate::fmt::fmt_duration(Duration::from_secs(p.elapsed.as_secs())),
        crate::fmt::fmt_duration(p.duration),
        p.attempted,
        ok,
        p.attempted as f64 / secs,
        if p.in_page { "in-page" } else { "round-trip" },
        p.p95_ms,
        p.sessions
    )
}

/// The running phase's progress now, if a phase runs.
fn progress_of(run: &RunShared) -> Option<Progress> {
    let c = run.current()?;
    let counts = c.live.counts();
    let (p95_ms, in_page) = match c.live.in_page_latency() {
        Some(l) => (l.p95, true),
        None => (c.live.latency().p95, false),
    };
    let latest = run.latest();
    let thresholds = run.cfg.phase_safety(c.idx as usize).thresholds();
    Some(Progress {
        idx: c.idx,
        total: run.cfg.phases.len(),
        name: c.name.clone(),
        elapsed: c.offset + c.started.elapsed(),
        duration: c.duration,
        attempted: counts.attempted,
        succeeded: counts.succeeded,
        p95_ms,
        in_page,
        sessions: c.sessions,
        health: latest.health,
        worst: latest.sample.as_ref().and_then(|s| worst_reading(s, &thresholds)),
    })
}

/// Writes a progress line every `interval` while a phase runs, until `stop`.
pub(crate) async fn run(run: Arc<RunShared>, interval: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let Some(p) = progress_of(&run) {
            let corr = format!("{}/{}", run.id, p.name);
            tracing::info!(target: "stressctl::campaign", corr = %corr, "{}", progress_line(&p));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardian::Metric;

    #[test]
    fn a_progress_line_has_every_figure() {
        let p = Progress {
            idx: 1,
            total: 3,
            name: "warm".into(),
            elapsed: Duration::from_millis(45_500),
            duration: Duration::from_secs(120),
            attempted: 1000,
            succeeded: 998,
            p95_ms: 12.34,
            in_page: true,
            sessions: 4,
            health: Some(91.6),
            worst: Some(Reading { metric: Metric::Memory, value: 61.23, threshold: 80.0 }),
        };
        let line = progress_line(&p);
        assert_eq!(
            line,
            format!(
                "progress 2/3 warm {}/{}: 1000 ops, 99.8% ok, 22.0 ops/s, in-page p95 12.3 ms, 4 sessions, health 92, worst memory 61.2%/80%",
                crate::fmt::fmt_duration(Duration::from_secs(45)),
                crate::fmt::fmt_duration(Duration::from_secs(120))
            )
        );
        let empty = Progress { attempted: 0, succeeded: 0, in_page: false, health: None, worst: None, ..p };
        assert!(progress_line(&empty).contains("0 ops, 100.0% ok, 0.0 ops/s, round-trip p95"), "{}", progress_line(&empty));
        assert!(progress_line(&empty).ends_with("health -, worst -"));
    }
}
