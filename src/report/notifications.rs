//! The notifications a campaign sent (`[[notify]]`): how many were delivered, given up on or
//! dropped, and why each one that failed did.

use super::typed_events::for_each_typed;
use crate::events::Event;
use crate::store::{StoreError, StoreReader};
use serde::{Deserialize, Serialize};

/// A notification that was not delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationFailure {
    /// RFC 3339.
    pub at: String,
    /// The receiver (scheme and host).
    pub target: String,
    /// What it was about.
    pub event: String,
    /// Attempts made (0: dropped from a full queue).
    pub attempts: u32,
    /// Why.
    pub error: String,
}

/// Notifications over the campaign.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Notifications {
    /// Delivered (a 2xx answer).
    pub sent: u64,
    /// Given up on after every attempt.
    pub failed: u64,
    /// Dropped from a full queue.
    pub dropped: u64,
    /// Each one not delivered, in order.
    pub failures: Vec<NotificationFailure>,
}

/// The `notification` events, counted.
pub(super) fn notifications(r: &StoreReader) -> Result<Notifications, StoreError> {
    let mut n = Notifications::default();
    for_each_typed(r, None, &["notification"], |e, ev| {
        if let Event::Notification { target, event, attempts, error } = ev {
            match error {
                None => n.sent += 1,
                Some(error) => {
                    if attempts == 0 {
                        n.dropped += 1;
                    } else {
                        n.failed += 1;
                    }
                    n.failures.push(NotificationFailure { at: e.at, target, event, attempts, error });
                }
            }
        }
    })?;
    Ok(n)
}
