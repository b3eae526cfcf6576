//! Stopping and controlling a running campaign.
//!
//! Every way a campaign can stop — Ctrl-C/SIGTERM/SIGHUP, `stressctl emergency-stop`, a guardian trip, a
//! halt, the store failing, the campaign's own time cap — goes through one [`StopSignal`]: the
//! first request starts a graceful stop (no new ops, in-flight ops get a bounded grace, sessions
//! closed, results flushed, reports written); a forced request kills the recorded process groups
//! at once.

pub mod breakers;
pub mod daemon;
pub mod lock;
pub mod signals;
pub mod socket;
pub mod status;

use serde::Serialize;
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Why a campaign was asked to stop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopCause {
    /// SIGINT (Ctrl-C).
    Interrupted,
    /// SIGTERM.
    Terminated,
    /// SIGHUP (terminal closed, ssh dropped).
    Hangup,
    /// `stressctl emergency-stop`.
    EmergencyStop,
    /// The guardian tripped on a resource threshold.
    Guardian,
    /// The store could not be written.
    StoreFailure,
    /// `max_campaign_duration` reached.
    MaxDuration,
}

impl StopCause {
    /// snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            StopCause::Interrupted => "interrupted",
            StopCause::Terminated => "terminated",
            StopCause::Hangup => "hangup",
            StopCause::EmergencyStop => "emergency_stop",
            StopCause::Guardian => "guardian",
            StopCause::StoreFailure => "store_failure",
            StopCause::MaxDuration => "max_duration",
        }
    }
}

/// A stop request: cause and a human-readable reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StopRequest {
    /// The cause.
    pub cause: StopCause,
    /// One line for humans (names the metric, value and threshold for guardian trips).
    pub reason: String,
}

/// The single cancellation path of a run.
#[derive(Debug, Default)]
pub struct StopSignal {
    graceful: CancellationToken,
    force: CancellationToken,
    first: Mutex<Option<StopRequest>>,
}

impl StopSignal {
    /// A signal nobody has fired yet.
    pub fn new() -> StopSignal {
        StopSignal::default()
    }

    /// Requests a graceful stop. The first request's reason is the one reported; later requests
    /// only escalate (a second request with `force` kills at once).
    pub fn request(&self, cause: StopCause, reason: impl Into<String>, force: bool) {
        let reason = reason.into();
        {
            let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
            if first.is_none() {
                tracing::warn!(target: "stressctl::campaign", cause = cause.as_str(), force, "stop requested: {reason}");
                *first = Some(StopRequest { cause, reason });
            }
        }
        self.graceful.cancel();
        if force {
            self.force.cancel();
        }
    }

    /// Escalates to a forced stop.
    pub fn force(&self) {
        self.graceful.cancel();
        self.force.cancel();
    }

    /// Fires when a stop (graceful or forced) was requested.
    pub fn graceful(&self) -> &CancellationToken {
        &self.graceful
    }

    /// Fires when a forced stop was requested.
    pub fn forced(&self) -> &CancellationToken {
        &self.force
    }

    /// Whether a stop was requested.
    pub fn is_stopping(&self) -> bool {
        self.graceful.is_cancelled()
    }

    /// The first stop request, if any.
    pub fn request_info(&self) -> Option<StopRequest> {
        self.first.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reason_wins_and_force_escalates() {
        let s = StopSignal::new();
        assert!(!s.is_stopping());
        s.request(StopCause::Guardian, "memory 91% over 80%", false);
        s.request(StopCause::Interrupted, "Ctrl-C", false);
        assert!(s.is_stopping() && !s.forced().is_cancelled());
        assert_eq!(s.request_info().unwrap().cause, StopCause::Guardian);
        s.request(StopCause::Interrupted, "Ctrl-C again", true);
        assert!(s.forced().is_cancelled());
        assert_eq!(s.request_info().unwrap().reason, "memory 91% over 80%");
    }
}
