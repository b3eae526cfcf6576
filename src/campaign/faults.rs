//! Fault injection: real faults on purpose, to exercise recovery.
//!
//! Each `[[faults]]` entry becomes a source of *fault tokens*: an `every` schedule adds one token
//! per interval of the campaign clock while a phase it applies to runs (a timer task), a
//! `probability` schedule draws one per op.
//! The next op of a matching slot takes the token and carries the fault out for real: it SIGKILLs
//! its own browser or its worker's driver (recorded processes only), or asks the page to hang,
//! throw or lose its GPU device.

use crate::config::{FaultConfig, FaultKind, FaultSchedule};
use crate::tasks::PageFault;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The faults of a campaign. `every` schedules run on the campaign clock, which starts with the
/// first phase's clock and runs across phase boundaries: a tick leaves a token only while a phase
/// the fault applies to runs, so a 20 s schedule fires in a campaign of 10 s phases.
/// `probability` schedules draw once per op.
#[derive(Default)]
pub struct FaultPlan {
    every: Vec<FaultConfig>,
    per_op: Vec<(f64, FaultConfig)>,
    pending: Mutex<Vec<FaultConfig>>,
    /// Set by [`FaultPlan::arm`], taken by the first [`FaultPlan::clock_started`]: the timers
    /// start with the first phase's clock, not while the first sessions are still opening.
    armed: Mutex<Option<Armed>>,
}

/// What the timers need, handed over before the first phase.
struct Armed {
    tracker: TaskTracker,
    stop: CancellationToken,
    current_phase: Box<dyn Fn() -> Option<String> + Send + Sync>,
}

/// Whether fault `c` applies to phase `phase` (no `phases` filter: every phase).
fn applies_to_phase(c: &FaultConfig, phase: &str) -> bool {
    c.phases.is_empty() || c.phases.iter().any(|p| p == phase)
}

impl FaultPlan {
    /// The plan of every configured fault.
    pub fn new(all: &[FaultConfig]) -> FaultPlan {
        let mut f = FaultPlan::default();
        for c in all {
            match c.schedule {
                FaultSchedule::Every(_) => f.every.push(c.clone()),
                FaultSchedule::Probability(p) => f.per_op.push((p, c.clone())),
            }
        }
        f
    }

    /// Whether there is nothing to inject.
    pub fn is_empty(&self) -> bool {
        self.every.is_empty() && self.per_op.is_empty()
    }

    /// Gets the timers ready: they start at the first [`FaultPlan::clock_started`] (the first
    /// phase's clock), run on `tracker` until `stop`, and read the running phase from
    /// `current_phase`.
    pub fn arm<F>(&self, tracker: &TaskTracker, stop: CancellationToken, current_phase: F)
    where
        F: Fn() -> Option<String> + Send + Sync + 'static,
    {
        *self.armed.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Armed { tracker: tracker.clone(), stop, current_phase: Box::new(current_phase) });
    }

    /// A phase's clock started: the first call starts the campaign's fault clock.
    pub fn clock_started(self: &Arc<Self>) {
        let armed = self.armed.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(a) = armed {
            let current = a.current_phase;
            self.start_timers(&a.tracker, a.stop, current);
        }
    }

    /// Starts one timer per `every` fault on `tracker`, from now (the campaign's start) until
    /// `stop`. Each tick leaves a token for the next matching op if `current_phase` (the name of
    /// the phase running at that moment) is one the fault applies to.
    pub fn start_timers<F>(self: &Arc<Self>, tracker: &TaskTracker, stop: CancellationToken, current_phase: F)
    where
        F: Fn() -> Option<String> + Send + Sync + 'static,
    {
        let current_phase = Arc::new(current_phase);
        for c in &self.every {
            let FaultSchedule::Every(period) = c.schedule else { continue };
            let me = self.clone();
            let c = c.clone();
            let stop = stop.clone();
            let current_phase = current_phase.clone();
            tracker.spawn(async move {
                let period = period.max(Duration::from_millis(100));
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {
                            if !current_phase().is_some_and(|p| applies_to_phase(&c, &p)) {
                                continue;
                            }
                            let mut p = me.pending.lock().unwrap_or_else(|e| e.into_inner());
                            // never let tokens pile up: one outstanding per fault entry
                            if !p.iter().any(|x| x == &c) {
                                p.push(c.clone());
                            }
                        }
                    }
                }
            });
        }
    }

    /// The fault the next op of phase `phase` on `worker` must carry out, if any.
    pub fn take(&self, phase: &str, worker: &str, rng: &mut fastrand::Rng) -> Option<FaultConfig> {
        let applies = |c: &FaultConfig| applies_to_phase(c, phase) && c.worker.as_deref().is_none_or(|w| w == worker);
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = p.iter().position(applies) {
                return Some(p.swap_remove(i));
            }
        }
        self.per_op.iter().find(|(prob, c)| applies(c) && rng.f64() < *prob).map(|(_, c)| c.clone())
    }
}

/// One line describing a fault's plan, for the reports: `kill_driver every 20s on w1
/// (permanent), all phases`.
pub fn describe(c: &FaultConfig) -> String {
    let when = match c.schedule {
        FaultSchedule::Every(d) => format!("every {} on the campaign clock", crate::fmt::fmt_duration(d)),
        FaultSchedule::Probability(p) => format!("with probability {p} per op"),
    };
    let on = c.worker.as_deref().map(|w| format!(" on worker {w}")).unwrap_or_default();
    let phases = if c.phases.is_empty() { "all phases".to_string() } else { format!("phases {}", c.phases.join(", ")) };
    let extra = match c.kind {
        FaultKind::KillDriver if c.permanent => " (permanent)".to_string(),
        FaultKind::ExhaustMemory => format!(" (limit {} MiB)", c.limit_mb),
        _ => String::new(),
    };
    format!("{} {when}{on}{extra}, {phases}", c.kind.as_str())
}

/// The page-side fault of a fault (None for process faults).
pub fn page_fault(c: &FaultConfig) -> Option<PageFault> {
    match c.kind {
        FaultKind::Hang => Some(PageFault::Hang),
        FaultKind::Throw => Some(PageFault::Throw),
        FaultKind::GpuDeviceLost => Some(PageFault::GpuDeviceLost),
        FaultKind::ExhaustMemory => Some(PageFault::ExhaustMemory { limit_mb: c.limit_mb }),
        FaultKind::KillBrowser | FaultKind::KillDriver => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: FaultKind, schedule: FaultSchedule, worker: Option<&str>, phases: &[&str]) -> FaultConfig {
        FaultConfig {
            kind,
            schedule,
            worker: worker.map(str::to_string),
            phases: phases.iter().map(|s| s.to_string()).collect(),
            permanent: false,
            limit_mb: crate::config::DEFAULT_EXHAUST_LIMIT_MB,
        }
    }

    #[test]
    fn selects_by_phase_and_worker_and_draws_by_probability() {
        let all = vec![
            fault(FaultKind::Throw, FaultSchedule::Probability(1.0), Some("a"), &[]),
            fault(FaultKind::Hang, FaultSchedule::Probability(1.0), None, &["stress"]),
        ];
        let f = FaultPlan::new(&all);
        let mut rng = fastrand::Rng::with_seed(3);
        assert_eq!(f.take("warmup", "a", &mut rng).map(|c| c.kind), Some(FaultKind::Throw));
        assert!(f.take("warmup", "b", &mut rng).is_none());
        assert_eq!(f.take("stress", "b", &mut rng).map(|c| c.kind), Some(FaultKind::Hang));
        let half = FaultPlan::new(&[fault(FaultKind::Throw, FaultSchedule::Probability(0.5), None, &[])]);
        let n = (0..10_000).filter(|_| half.take("x", "w", &mut rng).is_some()).count();
        assert!((4_500..5_500).contains(&n), "{n}");
    }

    #[tokio::test(start_paused = true)]
    async fn every_leaves_one_token_per_period_without_piling_up() {
        let f = Arc::new(FaultPlan::new(&[fault(FaultKind::KillBrowser, FaultSchedule::Every(Duration::from_secs(10)), None, &[])]));
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        f.start_timers(&tracker, stop.clone(), || Some("p".to_string()));
        let mut rng = fastrand::Rng::with_seed(1);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(f.take("p", "w", &mut rng).is_none());
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert_eq!(f.take("p", "w", &mut rng).map(|c| c.kind), Some(FaultKind::KillBrowser));
        assert!(f.take("p", "w", &mut rng).is_none(), "tokens must not pile up");
        stop.cancel();
        tracker.close();
        tracker.wait().await;
    }

    #[tokio::test(start_paused = true)]
    async fn every_runs_on_the_campaign_clock_across_short_phases() {
        // 20 s schedule, phases of 8 s each: a per-phase timer would never fire
        let f = Arc::new(FaultPlan::new(&[fault(FaultKind::KillDriver, FaultSchedule::Every(Duration::from_secs(20)), Some("w1"), &[])]));
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let started = tokio::time::Instant::now();
        f.start_timers(&tracker, stop.clone(), move || Some(format!("p{}", started.elapsed().as_secs() / 8)));
        let mut rng = fastrand::Rng::with_seed(1);
        tokio::time::sleep(Duration::from_secs(21)).await;
        // 21 s in: phase p2 runs and the token waits for its next op on w1
        assert!(f.take("p2", "w2", &mut rng).is_none(), "another worker does not take it");
        assert_eq!(f.take("p2", "w1", &mut rng).map(|c| c.kind), Some(FaultKind::KillDriver));
        stop.cancel();
        tracker.close();
        tracker.wait().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_tick_while_another_phase_runs_leaves_no_token() {
        let f = Arc::new(FaultPlan::new(&[fault(FaultKind::Throw, FaultSchedule::Every(Duration::from_secs(5)), None, &["stress"])]));
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        f.start_timers(&tracker, stop.clone(), || Some("warmup".to_string()));
        let mut rng = fastrand::Rng::with_seed(1);
        tokio::time::sleep(Duration::from_secs(12)).await;
        assert!(f.take("stress", "w", &mut rng).is_none(), "ticks in warmup must not carry over into stress");
        stop.cancel();
        tracker.close();
        tracker.wait().await;
    }

    #[test]
    fn plans_are_described_for_the_report() {
        let mut c = fault(FaultKind::KillDriver, FaultSchedule::Every(Duration::from_secs(20)), Some("w1"), &[]);
        c.permanent = true;
        assert_eq!(describe(&c), "kill_driver every 20s on the campaign clock on worker w1 (permanent), all phases");
    }
}
