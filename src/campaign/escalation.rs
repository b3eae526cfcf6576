//! Decisions taken between phases: continue, cool down and re-run, give up, halt — as a pure
//! function of what the runner knows, with a unit test per branch —, how many sessions the next
//! phase runs after what the previous one left ([`scale`], escalation both ways: down after a
//! strained phase, back up to plan after a healthy one), and the two waits that depend on the
//! host's health: progressive escalation before a phase, and the cooldown after a guardian trip.

use super::guard;
use super::shared::RunShared;
use crate::config::PhaseConfig;
use crate::events::Event;
use crate::fmt::fmt_duration;
use crate::guardian::strain::{margin, Strain};
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

/// What the previous phase left, for [`scale`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Previous {
    /// Its name.
    pub name: String,
    /// Sessions it ran.
    pub sessions: u32,
    /// Sessions it had planned.
    pub planned: u32,
    /// The guardian's view of it.
    pub strain: Strain,
}

/// How many sessions a phase runs, and why (an escalation decision).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Scaling {
    /// Sessions to run.
    pub sessions: u32,
    /// The reason, for the event and the log line.
    pub reason: String,
}

/// Escalation both ways, before a phase of `planned` sessions: after a strained phase — its mean
/// health below `requirement`, or a metric within its margin of its threshold in more than half
/// of its samples — the phase runs half its plan (at least 1); after a phase with headroom it
/// runs its plan (back up to plan when the previous one was scaled down). The first phase, and
/// one whose predecessor left no sample, runs its plan with no decision to report (`None`).
pub(crate) fn scale(planned: u32, prev: Option<&Previous>, requirement: f64) -> Option<Scaling> {
    let prev = prev?;
    let health = prev.strain.mean_health()?;
    let st = &prev.strain;
    let resource = (st.strained_samples * 2 > st.samples).then_some(st.worst.as_ref()).flatten();
    let why = match (health < requirement, resource) {
        (true, _) => Some(format!("its mean health {health:.0} was below the requirement {requirement:.0}")),
        (false, Some(r)) => Some(format!(
            "{} was within {:.0} points of its {:.0}% threshold in {}/{} samples (last {:.1}%)",
            r.metric,
            margin(r.threshold),
            r.threshold,
            st.strained_samples,
            st.samples,
            r.value
        )),
        (false, None) => None,
    };
    Some(match why {
        Some(why) => {
            let sessions = (planned / 2).max(1);
            Scaling { sessions, reason: format!("scaled down from {planned} to {sessions} sessions: phase {} was strained: {why}", prev.name) }
        }
        None if prev.sessions < prev.planned => Scaling {
            sessions: planned,
            reason: format!(
                "back up to plan ({planned} sessions): phase {} had headroom (mean health {health:.0}, resources under their limits by their margin)",
                prev.name
            ),
        },
        None => Scaling {
            sessions: planned,
            reason: format!(
                "{planned} sessions as planned: phase {} had headroom (mean health {health:.0}, resources under their limits by their margin)",
                prev.name
            ),
        },
    })
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
    let over = t.metrics_over(&sample);
    (crate::guardian::health_score(&sample, &t, success), over)
}

/// Progressive escalation: a phase starts with `planned` sessions (its plan, or what [`scale`]
/// decided) only when health meets the requirement; otherwise it waits up to `escalation_delay`,
/// then runs scaled down. Returns the sessions to run
/// and the notes for the report.
pub(crate) async fn gate_phase(
    run: &RunShared,
    disk_path: &Path,
    i: usize,
    phase: &PhaseConfig,
    planned: u32,
    last_success: Option<f64>,
) -> (u32, Vec<String>) {
    let c = &run.cfg.campaign;
    if !c.progressive_escalation {
        return (planned, Vec::new());
    }
    let req = c.baseline_health_requirement;
    let (h0, _) = fresh_health(run, disk_path, i, last_success).await;
    if h0 >= req {
        return (planned, Vec::new());
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
            return (planned, vec![note]);
        }
    }
    let scaled = (planned / 2).max(1);
    let waited_for = fmt_duration(waited.elapsed());
    let note = if scaled < planned {
        format!("scaled down from {} to {scaled} sessions: health {h:.0} stayed below the requirement {req:.0} for {waited_for}", planned)
    } else {
        format!("ran with its 1 session (cannot scale lower) although health {h:.0} stayed below the requirement {req:.0} for {waited_for}")
    };
    run.event(
        corr,
        Some(i as u32),
        Event::PhaseAdjusted {
            note: note.clone(),
            delayed_ms: Some(waited.elapsed().as_millis() as u64),
            sessions_planned: Some(planned),
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

    fn reading(value: f64, threshold: f64) -> crate::guardian::Reading {
        crate::guardian::Reading { metric: crate::guardian::Metric::Memory, value, threshold }
    }

    fn prev(sessions: u32, planned: u32, samples: u32, strained: u32, health: f64) -> Previous {
        Previous {
            name: "p".into(),
            sessions,
            planned,
            strain: Strain {
                samples,
                strained_samples: strained,
                health_sum: health * samples as f64,
                worst: (strained > 0).then(|| reading(75.0, 80.0)),
            },
        }
    }

    #[test]
    fn the_margin_is_ten_points_or_what_is_left_to_100() {
        assert_eq!(margin(80.0), 10.0);
        assert_eq!(margin(95.0), 5.0);
        assert_eq!(margin(100.0), 0.0);
        let s = crate::guardian::ResourceSample { memory_percent: 75.0, ..Default::default() };
        let t = crate::guardian::Thresholds {
            memory_percent: 80.0,
            cpu_percent: 100.0,
            disk_percent: 100.0,
            min_free_memory_mb: 0.0,
            min_free_disk_mb: 0.0,
            consecutive_violations: 1,
        };
        assert_eq!(crate::guardian::strain::strained_metric(&s, &t).map(|r| r.metric), Some(crate::guardian::Metric::Memory));
        let t = crate::guardian::Thresholds { memory_percent: 90.0, ..t };
        assert_eq!(crate::guardian::strain::strained_metric(&s, &t), None);
    }

    #[test]
    fn the_first_phase_and_one_after_no_samples_run_their_plan_without_a_decision() {
        assert_eq!(scale(4, None, 70.0), None);
        assert_eq!(scale(4, Some(&prev(4, 4, 0, 0, 0.0)), 70.0), None);
    }

    #[test]
    fn a_phase_after_low_health_is_scaled_down_to_half_at_least_one() {
        let s = scale(4, Some(&prev(4, 4, 10, 0, 50.0)), 70.0).unwrap();
        assert_eq!(s.sessions, 2);
        assert!(s.reason.contains("scaled down from 4 to 2") && s.reason.contains("mean health 50"), "{}", s.reason);
        assert_eq!(scale(1, Some(&prev(1, 1, 10, 0, 50.0)), 70.0).unwrap().sessions, 1);
    }

    #[test]
    fn a_phase_after_a_resource_near_its_limit_in_most_samples_is_scaled_down() {
        let s = scale(4, Some(&prev(4, 4, 10, 6, 90.0)), 70.0).unwrap();
        assert_eq!(s.sessions, 2);
        assert!(s.reason.contains("memory was within 10 points of its 80% threshold in 6/10 samples"), "{}", s.reason);
        // a spike in a few samples is not strain
        assert_eq!(scale(4, Some(&prev(4, 4, 10, 5, 90.0)), 70.0).unwrap().sessions, 4);
    }

    #[test]
    fn a_healthy_phase_after_a_scaled_down_one_goes_back_up_to_plan() {
        let s = scale(4, Some(&prev(2, 4, 10, 0, 90.0)), 70.0).unwrap();
        assert_eq!(s.sessions, 4);
        assert!(s.reason.starts_with("back up to plan (4 sessions)"), "{}", s.reason);
        let s = scale(4, Some(&prev(4, 4, 10, 0, 90.0)), 70.0).unwrap();
        assert!(s.reason.starts_with("4 sessions as planned"), "{}", s.reason);
    }

    #[test]
    fn recovery_needs_health_and_no_metric_over_its_threshold() {
        assert!(recovered(80.0, 0, 70.0));
        assert!(recovered(70.0, 0, 70.0));
        assert!(!recovered(69.9, 0, 70.0));
        assert!(!recovered(95.0, 1, 70.0));
    }
}
