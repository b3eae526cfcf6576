//! The recovery ladder and retry backoff.
//!
//! A failed op starts (or continues) a *recovery*: the ladder picks a strategy by level —
//! 1 retry in the same session, 2 new session, 3 restart the driver, 4 new session with adjusted
//! settings (smaller workload), 5 another worker — starting at a level that depends on the failure
//! class and climbing one level each time the next op fails again. The first op that succeeds
//! ends the recovery; its time to recover is measured from the first failure. An unsupported API
//! starts no recovery: it is reported, never retried.

use super::FailureClass;
use serde::Serialize;
use std::time::{Duration, Instant};

/// A rung of the ladder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// 1: run the next op in the same session (after a backoff).
    Retry = 1,
    /// 2: discard the session and open a new one.
    NewSession = 2,
    /// 3: restart the worker's driver (managed workers), then a new session.
    RestartDriver = 3,
    /// 4: new session with adjusted settings (smaller workload).
    AdjustedSettings = 4,
    /// 5: move the session to another worker.
    OtherWorker = 5,
    /// 6: move the session to a worker of another browser (the seeds' "browser fallback"),
    /// when the failure belongs to the browser and another browser is configured; otherwise
    /// another worker, as level 5.
    OtherBrowser = 6,
}

impl Strategy {
    /// The strategy at `level` (1..=6, clamped).
    pub fn at(level: u8) -> Strategy {
        match level {
            0 | 1 => Strategy::Retry,
            2 => Strategy::NewSession,
            3 => Strategy::RestartDriver,
            4 => Strategy::AdjustedSettings,
            5 => Strategy::OtherWorker,
            _ => Strategy::OtherBrowser,
        }
    }
    /// The strategy named `name` (as [`as_str`](Self::as_str) writes it).
    pub fn parse(name: &str) -> Option<Strategy> {
        (1..=6).map(Strategy::at).find(|s| s.as_str() == name)
    }
    /// The level number.
    pub fn level(self) -> u8 {
        self as u8
    }
    /// snake_case name used in events and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Retry => "retry",
            Strategy::NewSession => "new_session",
            Strategy::RestartDriver => "restart_driver",
            Strategy::AdjustedSettings => "adjusted_settings",
            Strategy::OtherWorker => "other_worker",
            Strategy::OtherBrowser => "other_browser",
        }
    }
}

/// Where recovery of a class starts; `None` for classes that are not recovered (unsupported API).
/// Only transient classes (script, GPU and timeout errors) start with a plain retry.
pub fn start_level(class: FailureClass) -> Option<Strategy> {
    Some(match class {
        FailureClass::ScriptError | FailureClass::GpuError | FailureClass::WrongResult | FailureClass::Timeout => Strategy::Retry,
        FailureClass::Crash | FailureClass::LaunchFailure => Strategy::NewSession,
        FailureClass::ConnectionFailure => Strategy::RestartDriver,
        FailureClass::ResourceExhaustion => Strategy::AdjustedSettings,
        FailureClass::ApiUnsupported => return None,
    })
}

/// Full-jitter exponential backoff: `uniform(0, min(cap, base * 2^attempt))`.
pub fn backoff(base: Duration, cap: Duration, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
    let exp = base.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX));
    let ceiling = exp.min(cap);
    Duration::from_nanos(rng.u64(0..=ceiling.as_nanos().min(u64::MAX as u128) as u64))
}

/// What to do before the next op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The strategy to apply now.
    pub strategy: Strategy,
    /// The class being recovered from (the first failure's).
    pub class: FailureClass,
    /// Attempt number within this recovery (0 = first).
    pub attempt: u32,
}

/// A finished attempt, for the `recovery_attempted` event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttemptOutcome {
    /// Class being recovered from.
    pub class: FailureClass,
    /// Strategy that was tried.
    pub strategy: Strategy,
    /// Whether the op after it succeeded.
    pub succeeded: bool,
    /// From the first failure to the first success (when it succeeded).
    pub time_to_recover: Option<Duration>,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    class: FailureClass,
    strategy: Strategy,
    attempt: u32,
    since: Instant,
}

/// The ladder state of one session slot.
#[derive(Debug, Default)]
pub struct Ladder {
    pending: Option<Pending>,
}

impl Ladder {
    /// Whether a recovery is under way.
    pub fn recovering(&self) -> bool {
        self.pending.is_some()
    }

    /// An op failed. Returns the outcome of the attempt it ends (if one was pending) and the next
    /// step (None when the class is not recovered). A new recovery starts at [`start_level`].
    pub fn on_failure(&mut self, class: FailureClass, now: Instant, max_level: u8) -> (Option<AttemptOutcome>, Option<Step>) {
        self.on_failure_from(class, start_level(class), now, max_level)
    }

    /// [`on_failure`](Self::on_failure), a new recovery starting at `first` (the config's first
    /// rung for the class; None: the class is not recovered).
    pub fn on_failure_from(
        &mut self,
        class: FailureClass,
        first: Option<Strategy>,
        now: Instant,
        max_level: u8,
    ) -> (Option<AttemptOutcome>, Option<Step>) {
        let max_level = max_level.clamp(1, Strategy::OtherBrowser.level());
        match self.pending {
            Some(p) => {
                let ended = AttemptOutcome { class: p.class, strategy: p.strategy, succeeded: false, time_to_recover: None };
                let next_level = (p.strategy.level() + 1).min(max_level).max(p.strategy.level().min(max_level));
                let next = Pending { strategy: Strategy::at(next_level), attempt: p.attempt + 1, ..p };
                self.pending = Some(next);
                (Some(ended), Some(Step { strategy: next.strategy, class: next.class, attempt: next.attempt }))
            }
            None => {
                let Some(start) = first else { return (None, None) };
                let strategy = Strategy::at(start.level().min(max_level));
                self.pending = Some(Pending { class, strategy, attempt: 0, since: now });
                (None, Some(Step { strategy, class, attempt: 0 }))
            }
        }
    }

    /// An op succeeded: ends the pending attempt (if any) as a success.
    pub fn on_success(&mut self, now: Instant) -> Option<AttemptOutcome> {
        let p = self.pending.take()?;
        Some(AttemptOutcome {
            class: p.class,
            strategy: p.strategy,
            succeeded: true,
            time_to_recover: Some(now.saturating_duration_since(p.since)),
        })
    }

    /// Abandons the pending attempt without an outcome (phase ended).
    pub fn abandon(&mut self) {
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_by_class_and_climbs_to_the_cap() {
        let t0 = Instant::now();
        let mut l = Ladder::default();
        let (ended, step) = l.on_failure(FailureClass::Timeout, t0, 5);
        assert!(ended.is_none());
        assert_eq!(step.unwrap().strategy, Strategy::Retry);
        let (ended, step) = l.on_failure(FailureClass::Crash, t0, 5);
        assert_eq!(ended.unwrap().strategy, Strategy::Retry);
        assert!(!ended.unwrap().succeeded);
        // the class of a recovery is the first failure's
        assert_eq!(step.unwrap(), Step { strategy: Strategy::NewSession, class: FailureClass::Timeout, attempt: 1 });
        for want in [Strategy::RestartDriver, Strategy::AdjustedSettings, Strategy::OtherWorker, Strategy::OtherWorker] {
            assert_eq!(l.on_failure(FailureClass::Crash, t0, 5).1.unwrap().strategy, want);
        }
        let done = l.on_success(t0 + Duration::from_millis(1500)).unwrap();
        assert!(done.succeeded);
        assert_eq!(done.class, FailureClass::Timeout);
        assert_eq!(done.time_to_recover, Some(Duration::from_millis(1500)));
        assert!(!l.recovering());
        assert!(l.on_success(t0).is_none());
    }

    #[test]
    fn max_level_caps_the_ladder_and_unsupported_is_never_retried() {
        let t0 = Instant::now();
        let mut l = Ladder::default();
        assert_eq!(l.on_failure(FailureClass::ConnectionFailure, t0, 2).1.unwrap().strategy, Strategy::NewSession);
        assert_eq!(l.on_failure(FailureClass::ConnectionFailure, t0, 2).1.unwrap().strategy, Strategy::NewSession);
        let mut l = Ladder::default();
        assert_eq!(l.on_failure(FailureClass::ApiUnsupported, t0, 5), (None, None));
        assert!(!l.recovering());
        assert_eq!(start_level(FailureClass::ResourceExhaustion), Some(Strategy::AdjustedSettings));
    }

    #[test]
    fn backoff_is_full_jitter_under_the_capped_exponential() {
        let mut rng = fastrand::Rng::with_seed(1);
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(2);
        for attempt in 0..40 {
            let ceiling = base.saturating_mul(1 << attempt.min(20)).min(cap);
            let mut max_seen = Duration::ZERO;
            for _ in 0..200 {
                let d = backoff(base, cap, attempt, &mut rng);
                assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
                max_seen = max_seen.max(d);
            }
            // full jitter spreads over the whole range, not just near the ceiling or zero
            assert!(max_seen > ceiling / 2, "attempt {attempt}: max {max_seen:?} of {ceiling:?}");
        }
    }
}
