//! Decisions taken between phases: continue, cool down and re-run, give up, halt — as a pure
//! function of what the runner knows, with a unit test per branch — and the two waits that
//! depend on the host's health: progressive escalation before a phase, and the cooldown after a
//! guardian trip.

use super::guard;
use super::shared::RunShared;
use crate::config::PhaseConfig;
use crate::events::Event;
use crate::fmt::fmt_duration;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the runner knows when a phase has ended.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Situation {
    /// A stop request (signal, operator, guardian without auto-recovery, store, time cap) is in
    /// force.
    pub stopped: bool,
    /// The phase met its criteria.
    pub passed: bool,
    /// Every op of the phase found its API unsupported: it neither passed nor failed.
    pub unsupported: bool,
    /// The guardian paused the run during the phase.
    pub tripped: bool,
    /// Failing phases in a row before this one.
    pub failed_in_row: u32,
    /// `max_consecutive_failed_phases`.
    pub max_failed_in_row: u32,
    /// Auto-recoveries (cooldowns) already used.
    pub recoveries_used: u32,
    /// `max_auto_recoveries`.
    pub max_recoveries: u32,
}

/// What the runner does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// The run is stopping: no further phase.
    Stop,
    /// Cool down, then re-run the same phase if health recovered. `attempt` is 1-based.
    CoolDown {
        /// Which auto-recovery this is.
        attempt: u32,
    },
    /// The guardian tripped with no auto-recovery left: stop the campaign.
    GiveUp,
    /// Too many phases failed in a row: halt the campaign.
    Halt {
        /// The streak, this phase included.
        failed_in_row: u32,
    },
    /// Go on to the next phase with this failing streak.
    Advance {
        /// The streak after this phase (0 when it passed).
        failed_in_row: u32,
    },
}

/// The policy between phases. A stop request wins; a guardian pause comes next (a paused phase
/// neither passes nor fails: it is re-run after the cooldown); then the phase's verdict feeds the
/// failing streak that halts the campaign.
pub(crate) fn decide(s: Situation) -> Next {
    if s.stopped {
        return Next::Stop;
    }
    if s.tripped {
        return if s.recoveries_used < s.max_recoveries { Next::CoolDown { attempt: s.recoveries_used + 1 } } else { Next::GiveUp };
    }
    if s.passed {
        return Next::Advance { failed_in_row: 0 };
    }
    if s.unsupported {
        // nothing to retry and nothing wrong with the load: the streak is left as it was
        return Next::Advance { failed_in_row: s.failed_in_row };
    }
    let failed_in_row = s.failed_in_row + 1;
    if failed_in_row >= s.max_failed_in_row {
        Next::Halt { failed_in_row }
    } else {
        Next::Advance { failed_in_row }
    }
}

/// After a cooldown: resume when health meets the requirement and no metric is over its threshold.
pub(crate) fn recovered(health: f64, metrics_over: usize, requirement: f64) -> bool {
    health >= requirement && metrics_over == 0
}

/// Health now and the number of metrics over their thresholds. A fresh sampler each time, so CPU
/// is measured over the next few hundred milliseconds, not averaged over the last phase.
pub(crate) async fn fresh_health(run: &RunShared, disk_path: &Path, phase: usize, success: Option<f64>) -> (f64, usize) {
    let (_, sample) = guard::sample_once(crate::guardian::Sampler::new(disk_path.to_path_buf())).await;
    let t = run.cfg.phase_safety(phase).thresholds();
    let over = crate::guardian::Metric::ALL.iter().filter(|m| m.value(&sample) > t.for_metric(**m)).count();
    (crate::guardian::health_score(&sample, &t, success), over)
}

/// Progressive escalation: a phase starts as planned only when health meets the requirement;
/// otherwise it waits up to `escalation_delay`, then runs scaled down. Returns the sessions to run
/// and the notes for the report.
pub(crate) async fn gate_phase(
    run: &RunShared,
    disk_path: &Path,
    i: usize,
    phase: &PhaseConfig,
    last_success: Option<f64>,
) -> (u32, Vec<String>) {
    let c = &run.cfg.campaign;
    if !c.progressive_escalation {
        return (phase.sessions, Vec::new());
    }
    let req = c.baseline_health_requirement;
    let (h0, _) = fresh_health(run, disk_path, i, last_success).await;
    if h0 >= req {
        return (phase.sessions, Vec::new());
    }
    let corr = format!("{}/{}", run.id, phase.name);
    let waited = Instant::now();
    let poll = run.cfg.safety.sample_interval.max(Duration::from_secs(1));
    let mut h = h0;
    run.event(
        corr.clone(),
        Some(i as u32),
        Event::PhaseAdjusted {
            note: format!(
                "health {h0:.0} below {req:.0} before phase {}: waiting up to {} for it to recover",
                phase.name,
                fmt_duration(c.escalation_delay)
            ),
            delayed_ms: None,
            sessions_planned: None,
            sessions: None,
            health: h0,
        },
    );
    while waited.elapsed() < c.escalation_delay && !run.stop.is_stopping() && !run.is_tripped() {
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = run.stop.graceful().cancelled() => break,
        }
        // the previous phase's failures do not heal by waiting: judge resources alone now
        h = fresh_health(run, disk_path, i, None).await.0;
        if h >= req {
            let note = format!(
                "delayed {:.0}s: health {h0:.0} was below the requirement {req:.0}, recovered to {h:.0}",
                waited.elapsed().as_secs_f64()
            );
            run.event(
                corr,
                Some(i as u32),
                Event::PhaseAdjusted {
                    note: note.clone(),
                    delayed_ms: Some(waited.elapsed().as_millis() as u64),
                    sessions_planned: None,
                    sessions: None,
                    health: h,
                },
            );
            return (phase.sessions, vec![note]);
        }
    }
    let scaled = (phase.sessions / 2).max(1);
    let waited_for = fmt_duration(waited.elapsed());
    let note = if scaled < phase.sessions {
        format!(
            "scaled down from {} to {scaled} sessions: health {h:.0} stayed below the requirement {req:.0} for {waited_for}",
            phase.sessions
        )
    } else {
        format!("ran with its 1 session (cannot scale lower) although health {h:.0} stayed below the requirement {req:.0} for {waited_for}")
    };
    run.event(
        corr,
        Some(i as u32),
        Event::PhaseAdjusted {
            note: note.clone(),
            delayed_ms: Some(waited.elapsed().as_millis() as u64),
            sessions_planned: Some(phase.sessions),
            sessions: Some(scaled),
            health: h,
        },
    );
    (scaled, vec![note])
}

/// How a cooldown ended.
pub(crate) enum Cooldown {
    /// Health recovered: re-run the phase with this note.
    Resume(String),
    /// It did not (or a stop came): stop with this reason (None when a stop request came).
    Stop(Option<String>),
}

/// Cools down after a guardian trip and judges health afterwards.
pub(crate) async fn cool_down(run: &RunShared, disk_path: &Path, i: usize, phase: &PhaseConfig, reason: &str, attempt: u32) -> Cooldown {
    let max = run.cfg.campaign.max_auto_recoveries;
    let cooldown = run.cfg.campaign.cooldown;
    run.event(
        run.id.clone(),
        Some(i as u32),
        Event::AutoRecoveryStarted { reason: reason.to_string(), cooldown_ms: cooldown.as_millis() as u64, attempt },
    );
    tokio::select! {
        _ = tokio::time::sleep(cooldown) => {}
        _ = run.stop.graceful().cancelled() => {
            run.end_cooldown();
            return Cooldown::Stop(None);
        }
    }
    let (health, over) = fresh_health(run, disk_path, i, None).await;
    // the streaks start over from here, whatever happened during the cooldown
    run.end_cooldown();
    let req = run.cfg.campaign.baseline_health_requirement;
    if recovered(health, over, req) {
        run.event(run.id.clone(), Some(i as u32), Event::AutoRecoveryResumed { health, phase_name: phase.name.clone() });
        return Cooldown::Resume(format!("re-run after auto-recovery {attempt}/{max} ({reason}; health {health:.0} after the cooldown)"));
    }
    Cooldown::Stop(Some(format!(
        "{reason}; health {health:.0} (requirement {req:.0}) had not recovered after the {} cooldown",
        fmt_duration(cooldown)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Situation {
        Situation {
            stopped: false,
            passed: true,
            unsupported: false,
            tripped: false,
            failed_in_row: 0,
            max_failed_in_row: 3,
            recoveries_used: 0,
            max_recoveries: 2,
        }
    }

    #[test]
    fn a_stop_request_wins_over_everything() {
        let s = Situation { stopped: true, tripped: true, passed: false, failed_in_row: 2, ..base() };
        assert_eq!(decide(s), Next::Stop);
    }

    #[test]
    fn a_trip_with_recoveries_left_cools_down_and_numbers_the_attempt() {
        assert_eq!(decide(Situation { tripped: true, ..base() }), Next::CoolDown { attempt: 1 });
        assert_eq!(decide(Situation { tripped: true, recoveries_used: 1, ..base() }), Next::CoolDown { attempt: 2 });
    }

    #[test]
    fn a_trip_with_no_recovery_left_gives_up() {
        assert_eq!(decide(Situation { tripped: true, recoveries_used: 2, ..base() }), Next::GiveUp);
        assert_eq!(decide(Situation { tripped: true, max_recoveries: 0, ..base() }), Next::GiveUp);
    }

    #[test]
    fn a_paused_phase_neither_passes_nor_fails() {
        // a failing, paused phase does not add to the streak that halts the campaign
        let s = Situation { tripped: true, passed: false, failed_in_row: 2, ..base() };
        assert_eq!(decide(s), Next::CoolDown { attempt: 1 });
    }

    #[test]
    fn a_pass_resets_the_failing_streak() {
        assert_eq!(decide(Situation { failed_in_row: 2, ..base() }), Next::Advance { failed_in_row: 0 });
    }

    #[test]
    fn a_failure_below_the_limit_advances_with_a_longer_streak() {
        assert_eq!(decide(Situation { passed: false, failed_in_row: 1, ..base() }), Next::Advance { failed_in_row: 2 });
    }

    #[test]
    fn an_unsupported_phase_neither_resets_nor_lengthens_the_streak() {
        let s = Situation { passed: false, unsupported: true, failed_in_row: 2, ..base() };
        assert_eq!(decide(s), Next::Advance { failed_in_row: 2 });
    }

    #[test]
    fn the_failure_that_reaches_the_limit_halts() {
        assert_eq!(decide(Situation { passed: false, failed_in_row: 2, ..base() }), Next::Halt { failed_in_row: 3 });
        assert_eq!(decide(Situation { passed: false, max_failed_in_row: 1, ..base() }), Next::Halt { failed_in_row: 1 });
    }

    #[test]
    fn recovery_needs_health_and_no_metric_over_its_threshold() {
        assert!(recovered(80.0, 0, 70.0));
        assert!(recovered(70.0, 0, 70.0));
        assert!(!recovered(69.9, 0, 70.0));
        assert!(!recovered(95.0, 1, 70.0));
    }
}
