//! Fault injection: real faults on purpose, to exercise recovery.
//!
//! Each `[[faults]]` entry that applies to a phase becomes a source of *fault tokens*: an `every`
//! schedule adds one token per interval (a timer task), a `probability` schedule draws one per op.
//! The next op of a matching slot takes the token and carries the fault out for real: it SIGKILLs
//! its own browser or its worker's driver (recorded processes only), or asks the page to hang,
//! throw or lose its GPU device.

use crate::config::{FaultConfig, FaultKind, FaultSchedule};
use crate::tasks::PageFault;
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The faults of one phase.
#[derive(Default)]
pub struct PhaseFaults {
    every: Vec<FaultConfig>,
    per_op: Vec<(f64, FaultConfig)>,
    pending: Mutex<Vec<FaultConfig>>,
}

impl PhaseFaults {
    /// The faults of `all` that apply to phase `phase`.
    pub fn for_phase(all: &[FaultConfig], phase: &str) -> PhaseFaults {
        let mut f = PhaseFaults::default();
        for c in all.iter().filter(|c| c.phases.is_empty() || c.phases.iter().any(|p| p == phase)) {
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

    /// Starts one timer per `every` fault; each tick leaves a token for the next matching op.
    pub fn start_timers(self: &std::sync::Arc<Self>, stop: CancellationToken) {
        for c in &self.every {
            let FaultSchedule::Every(period) = c.schedule else { continue };
            let me = self.clone();
            let c = c.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period.max(Duration::from_millis(100)));
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {
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

    /// The fault the next op on `worker` must carry out, if any.
    pub fn take(&self, worker: &str, rng: &mut fastrand::Rng) -> Option<FaultConfig> {
        let applies = |c: &FaultConfig| c.worker.as_deref().is_none_or(|w| w == worker);
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = p.iter().position(applies) {
                return Some(p.swap_remove(i));
            }
        }
        self.per_op.iter().find(|(prob, c)| applies(c) && rng.f64() < *prob).map(|(_, c)| c.clone())
    }
}

/// The page-side fault for a fault kind (None for process faults).
pub fn page_fault(kind: FaultKind) -> Option<PageFault> {
    match kind {
        FaultKind::Hang => Some(PageFault::Hang),
        FaultKind::Throw => Some(PageFault::Throw),
        FaultKind::GpuDeviceLost => Some(PageFault::GpuDeviceLost),
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
        }
    }

    #[test]
    fn selects_by_phase_and_worker_and_draws_by_probability() {
        let all = vec![
            fault(FaultKind::Throw, FaultSchedule::Probability(1.0), Some("a"), &[]),
            fault(FaultKind::Hang, FaultSchedule::Probability(1.0), None, &["stress"]),
        ];
        let f = PhaseFaults::for_phase(&all, "warmup");
        let mut rng = fastrand::Rng::with_seed(3);
        assert_eq!(f.take("a", &mut rng).map(|c| c.kind), Some(FaultKind::Throw));
        assert!(f.take("b", &mut rng).is_none());
        let f = PhaseFaults::for_phase(&all, "stress");
        assert_eq!(f.take("b", &mut rng).map(|c| c.kind), Some(FaultKind::Hang));
        let half = PhaseFaults::for_phase(&[fault(FaultKind::Throw, FaultSchedule::Probability(0.5), None, &[])], "x");
        let n = (0..10_000).filter(|_| half.take("w", &mut rng).is_some()).count();
        assert!((4_500..5_500).contains(&n), "{n}");
    }

    #[tokio::test(start_paused = true)]
    async fn every_leaves_one_token_per_period_without_piling_up() {
        let f = std::sync::Arc::new(PhaseFaults::for_phase(
            &[fault(FaultKind::KillBrowser, FaultSchedule::Every(Duration::from_secs(10)), None, &[])],
            "p",
        ));
        let stop = CancellationToken::new();
        f.start_timers(stop.clone());
        let mut rng = fastrand::Rng::with_seed(1);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(f.take("w", &mut rng).is_none());
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert_eq!(f.take("w", &mut rng).map(|c| c.kind), Some(FaultKind::KillBrowser));
        assert!(f.take("w", &mut rng).is_none(), "tokens must not pile up");
        stop.cancel();
    }
}
