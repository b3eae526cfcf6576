//! What a slot does about a failed op: one pure function from the ladder's step, the failure's
//! class and what the slot knows about the other workers to an [`Action`]. The slot only carries
//! the action out (drops the session, restarts a driver, shrinks the workload, moves); which rung
//! means what lives here, beside the ladder, and is tested without a browser.

use super::{FailureClass, Step, Strategy};

/// What the slot knows, at the failure, that decides an action beyond the ladder's rung. Worker
/// indices are the pool's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The slot's worker runs a driver stressctl started (a remote one cannot be restarted).
    pub managed_driver: bool,
    /// The best-ranked healthy worker of another browser that the phase allows, if any.
    pub other_browser: Option<usize>,
    /// The same, among browsers this slot has not found the failing API unsupported on: where an
    /// unsupported API is tried next (it is never retried where it failed).
    pub untried_browser: Option<usize>,
    /// The best-ranked other worker the phase allows (healthy or not), if any.
    pub other_worker: Option<usize>,
}

/// What to do before the next op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing: the next op runs in the same session (the ladder's retry, or an unsupported API
    /// with no other browser to try).
    Stay,
    /// Discard the session; the next op opens a new one on the same worker.
    NewSession,
    /// Discard the session and restart the worker's (managed) driver.
    RestartDriver,
    /// Discard the session and run a smaller workload from now on.
    AdjustSettings,
    /// Discard the session and continue on `worker`, which runs another browser.
    OtherBrowser {
        /// Pool index of the worker to move to.
        worker: usize,
    },
    /// Discard the session and continue on `worker` (on the same worker when there is none).
    OtherWorker {
        /// Pool index of the worker to move to.
        worker: Option<usize>,
    },
}

/// Whether a failure class belongs to the browser (so another browser may do better): it
/// crashed, did not launch, or its GPU stack failed.
pub fn browser_failure(class: FailureClass) -> bool {
    matches!(class, FailureClass::Crash | FailureClass::LaunchFailure | FailureClass::GpuError | FailureClass::ApiUnsupported)
}

/// The action for a failed op of class `failed`: `step` is what the ladder answered (None when it
/// was not asked: an unsupported API starts no recovery). An unsupported API moves to a browser
/// not tried yet, if any; otherwise the rung decides: a driver restart only where the driver is
/// stressctl's, another browser only for a browser's failure and when one is healthy (else
/// another worker, as level 5).
pub fn action(step: Option<Step>, failed: FailureClass, facts: Facts) -> Action {
    if failed == FailureClass::ApiUnsupported {
        return match facts.untried_browser {
            Some(worker) => Action::OtherBrowser { worker },
            None => Action::Stay,
        };
    }
    let Some(step) = step else { return Action::Stay };
    match step.strategy {
        Strategy::Retry => Action::Stay,
        Strategy::NewSession => Action::NewSession,
        Strategy::RestartDriver if facts.managed_driver => Action::RestartDriver,
        Strategy::RestartDriver => Action::NewSession,
        // a browser that did not start or a driver out of reach is not helped by a smaller
        // workload: the rung opens a new session, and no op is degraded for nothing
        Strategy::AdjustedSettings if matches!(step.class, FailureClass::LaunchFailure | FailureClass::ConnectionFailure) => {
            Action::NewSession
        }
        Strategy::AdjustedSettings => Action::AdjustSettings,
        Strategy::OtherBrowser => match facts.other_browser {
            Some(worker) if browser_failure(step.class) => Action::OtherBrowser { worker },
            _ => Action::OtherWorker { worker: facts.other_worker },
        },
        Strategy::OtherWorker => Action::OtherWorker { worker: facts.other_worker },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailureClass::*;

    fn step(strategy: Strategy, class: FailureClass) -> Option<Step> {
        Some(Step { strategy, class, attempt: 0 })
    }

    #[test]
    fn each_rung_maps_to_its_action() {
        let f = Facts { managed_driver: true, other_browser: Some(3), untried_browser: Some(3), other_worker: Some(1) };
        assert_eq!(action(step(Strategy::Retry, Timeout), Timeout, f), Action::Stay);
        assert_eq!(action(step(Strategy::NewSession, Crash), Crash, f), Action::NewSession);
        assert_eq!(action(step(Strategy::RestartDriver, ConnectionFailure), ConnectionFailure, f), Action::RestartDriver);
        assert_eq!(action(step(Strategy::AdjustedSettings, ResourceExhaustion), ResourceExhaustion, f), Action::AdjustSettings);
        assert_eq!(action(step(Strategy::OtherWorker, Crash), Crash, f), Action::OtherWorker { worker: Some(1) });
        assert_eq!(action(step(Strategy::OtherBrowser, Crash), Crash, f), Action::OtherBrowser { worker: 3 });
        assert_eq!(action(None, Timeout, f), Action::Stay, "no step: nothing to do");
    }

    #[test]
    fn a_failure_the_workload_did_not_cause_is_not_answered_with_a_smaller_one() {
        let f = Facts::default();
        for class in [LaunchFailure, ConnectionFailure] {
            assert_eq!(action(step(Strategy::AdjustedSettings, class), class, f), Action::NewSession, "{class:?}");
        }
        for class in [Timeout, GpuError, Crash, WrongResult, ScriptError] {
            assert_eq!(action(step(Strategy::AdjustedSettings, class), class, f), Action::AdjustSettings, "{class:?}");
        }
    }

    #[test]
    fn a_remote_driver_is_never_restarted_only_its_session_renewed() {
        let f = Facts { managed_driver: false, ..Facts::default() };
        assert_eq!(action(step(Strategy::RestartDriver, ConnectionFailure), ConnectionFailure, f), Action::NewSession);
    }

    #[test]
    fn another_browser_only_for_a_browser_failure_with_a_healthy_one_else_another_worker() {
        let f = Facts { other_browser: Some(2), other_worker: Some(1), ..Facts::default() };
        // the class of the recovery (its first failure) decides, not the latest failure's
        assert_eq!(action(step(Strategy::OtherBrowser, Timeout), Crash, f), Action::OtherWorker { worker: Some(1) });
        assert_eq!(action(step(Strategy::OtherBrowser, GpuError), Timeout, f), Action::OtherBrowser { worker: 2 });
        let none = Facts { other_browser: None, other_worker: None, ..f };
        assert_eq!(action(step(Strategy::OtherBrowser, Crash), Crash, none), Action::OtherWorker { worker: None });
        assert!(browser_failure(LaunchFailure) && !browser_failure(Timeout) && !browser_failure(ScriptError));
    }

    #[test]
    fn an_unsupported_api_moves_to_an_untried_browser_or_stays_and_ignores_the_ladder() {
        let f = Facts { other_browser: Some(2), untried_browser: None, other_worker: Some(1), managed_driver: true };
        assert_eq!(action(None, ApiUnsupported, f), Action::Stay);
        assert_eq!(action(step(Strategy::OtherWorker, Crash), ApiUnsupported, f), Action::Stay);
        let f = Facts { untried_browser: Some(4), ..f };
        assert_eq!(action(None, ApiUnsupported, f), Action::OtherBrowser { worker: 4 });
    }
}
