//! The terminal: renders the run's events as lines (a summary per phase, health gating, cooldowns,
//! clock gaps) and, on a terminal, a live progress line redrawn twice a second. The runner prints
//! nothing itself; this module is one subscriber of its event stream among others.
//!
//! Writes ignore errors: after a SIGHUP the terminal is gone, and a lost progress line must not
//! take the campaign down (the store and the log have everything).

use crate::control::status::StatusDoc;
use crate::events::{Event, EventRecord};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};

/// Where the live progress line gets its figures: `None` once the run is gone.
pub type StatusFeed = Arc<dyn Fn() -> Option<StatusDoc> + Send + Sync>;

/// Every circuit breaker's state now (the dashboard's `/api/circuit-breakers` and `/metrics`):
/// `None` once the run is gone. Breaker calls and rejections are not events, so a live view of
/// them has to ask the registry.
pub type BreakerFeed = Arc<dyn Fn() -> Option<crate::breaker::RegistrySnapshot> + Send + Sync>;

use crate::fmt::say;

/// The line printed when a phase ends (also without a terminal: it is the run's heartbeat in
/// `--detach` output files and CI logs).
pub fn phase_line(e: &Event) -> Option<String> {
    let Event::PhaseEnded { name, status, attempted, succeeded, sessions, throughput_ops_per_s, p95_ms, passed, unsupported, .. } = e
    else {
        return None;
    };
    if *unsupported && *attempted == 0 {
        // every browser it could run on had refused its task earlier: nothing was measured
        return Some(format!(
            "{name:<12}   0 sessions       0 ops  not run: its task is unsupported on every browser it may use  UNSUPPORTED{tail}",
            tail = if status == "stopped" { " (stopped)" } else { "" }
        ));
    }
    let rate = if *attempted > 0 { *succeeded as f64 / *attempted as f64 * 100.0 } else { 0.0 };
    let tail = match status.as_str() {
        "stopped" => " (stopped)",
        "paused" => " (paused by the guardian)",
        _ => "",
    };
    Some(format!(
        "{name:<12} {sessions:>3} sessions {attempted:>7} ops  {rate:>6.2}% ok  {throughput_ops_per_s:>7.1} ops/s  p95 {p95_ms:>8.1} ms  {}{tail}",
        if *unsupported {
            "UNSUPPORTED"
        } else if *passed {
            "PASS"
        } else {
            "FAIL"
        }
    ))
}

/// What the renderer says about an event, if anything.
fn line_for(rec: &EventRecord, phase_no: &mut u32) -> Option<String> {
    match &rec.event {
        Event::PhaseStarted { .. } => {
            *phase_no = rec.phase.map(|p| p + 1).unwrap_or(*phase_no);
            None
        }
        e @ Event::PhaseEnded { total, .. } => phase_line(e).map(|l| format!("[{}/{total}] {l}", *phase_no)),
        Event::PhaseAdjusted { note, .. } => Some(format!("stressctl: {note}")),
        // a browser given up for the task: said once, in its own words
        Event::AutoRecoveryStarted { .. }
        | Event::ClockGap { .. }
        | Event::CampaignHalted { .. }
        | Event::TaskUnsupported { remembered: false, .. }
        | Event::CapacitySearch { .. }
        | Event::CapacityStep { .. } => Some(format!("stressctl: {}", rec.event.describe())),
        _ => None,
    }
}

fn progress_text(st: &StatusDoc) -> Option<String> {
    let p = st.phase.as_ref()?;
    let ops = p.ops.as_ref()?;
    let rate = if ops.attempted > 0 { ops.succeeded as f64 / ops.attempted as f64 * 100.0 } else { 100.0 };
    Some(format!(
        "[{}/{}] {:<12} {:>5.1}s/{:<5.0}s {:>3} sessions {:>7} ops {:>6.2}% ok p95 {}",
        p.index,
        p.total,
        p.name,
        p.elapsed_s,
        p.duration_s,
        p.sessions,
        ops.attempted,
        rate,
        st.p95_ms.map(|v| format!("{v:>7.1} ms")).unwrap_or_else(|| "      - ms".into())
    ))
}

/// Renders events until the stream closes or the campaign ends; with `live`, redraws a progress
/// line from `feed` twice a second.
pub async fn render(mut rx: broadcast::Receiver<Arc<EventRecord>>, feed: StatusFeed, live: bool) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut drawn = false;
    let mut phase_no = 0u32;
    let clear = |drawn: &mut bool| {
        if std::mem::take(drawn) {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
        }
    };
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(rec) => {
                    if let Some(line) = line_for(&rec, &mut phase_no) {
                        clear(&mut drawn);
                        say(&line);
                    }
                    if matches!(rec.event, Event::CampaignEnded { .. }) {
                        clear(&mut drawn);
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(target: "stressctl::campaign", "terminal renderer skipped {n} events");
                }
                Err(RecvError::Closed) => {
                    clear(&mut drawn);
                    return;
                }
            },
            _ = tick.tick(), if live => {
                match feed().as_ref().and_then(progress_text) {
                    Some(text) => {
                        let mut out = std::io::stdout().lock();
                        let _ = write!(out, "\r\x1b[2K{text}");
                        let _ = out.flush();
                        drawn = true;
                    }
                    None => clear(&mut drawn),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(status: &str, sessions: u32) -> Event {
        Event::PhaseEnded {
            name: "high".into(),
            status: status.into(),
            attempted: 1000,
            succeeded: 999,
            failed: 1,
            elapsed_ms: 10_000,
            sessions,
            total: 8,
            throughput_ops_per_s: 100.0,
            p95_ms: 12.5,
            passed: true,
            unsupported: false,
        }
    }

    #[test]
    fn a_phase_line_shows_the_sessions_it_really_ran() {
        let line = phase_line(&ended("completed", 2)).unwrap();
        assert!(line.contains("  2 sessions"), "{line}");
        assert!(line.contains("99.90% ok") && line.contains("PASS"), "{line}");
        assert!(phase_line(&ended("paused", 2)).unwrap().ends_with("PASS (paused by the guardian)"));
    }

    #[test]
    fn a_phase_not_run_says_so_and_a_given_up_browser_is_said_once_in_its_words() {
        let mut not_run = ended("completed", 0);
        if let Event::PhaseEnded { attempted, succeeded, failed, passed, unsupported, .. } = &mut not_run {
            (*attempted, *succeeded, *failed, *passed, *unsupported) = (0, 0, 0, false, true);
        }
        let line = phase_line(&not_run).unwrap();
        assert!(line.contains("not run") && line.ends_with("UNSUPPORTED") && !line.contains("% ok"), "{line}");
        let rec = |remembered| EventRecord {
            at: std::time::SystemTime::now(),
            corr: String::new(),
            phase: Some(0),
            event: Event::TaskUnsupported {
                task: "webnn".into(),
                browser: "chromium".into(),
                message: "WebNN is not supported on this platform".into(),
                answers: if remembered { 0 } else { 3 },
                remembered,
            },
        };
        let line = line_for(&rec(false), &mut 0).unwrap();
        assert!(
            line.starts_with("stressctl: chromium answered unsupported") && line.contains("(WebNN is not supported on this platform)"),
            "{line}"
        );
        assert_eq!(line_for(&rec(true), &mut 0), None, "the phase line says it for later phases");
    }

    #[test]
    fn phase_numbers_follow_phase_started() {
        let mut n = 0;
        let rec = |phase, event| EventRecord { at: std::time::SystemTime::now(), corr: String::new(), phase: Some(phase), event };
        let started = Event::PhaseStarted {
            name: "high".into(),
            total: 8,
            sessions: 2,
            sessions_planned: 4,
            duration_ms: 1000,
            task: "webgpu".into(),
        };
        assert_eq!(line_for(&rec(3, started), &mut n), None);
        let line = line_for(&rec(3, ended("completed", 2)), &mut n).unwrap();
        assert!(line.starts_with("[4/8] high"), "{line}");
    }
}
