//! Per-slot caps on the events a flood of ops could write: at most [`MAX_EVENTS`] `op_failed`
//! (and, apart, `page_console`) events per slot per [`PERIOD`]. Every failure and console entry
//! is still counted in the windows, so rates and `errors_by_class` stay exact; a capped event
//! only keeps the store and the logs from flooding. The same cap bounds the campaign log's
//! recovery lines per slot (their events are all stored).

use std::time::{Duration, Instant};

/// At most this many events of one kind per slot per [`PERIOD`].
const MAX_EVENTS: u32 = 10;
/// The period of the cap.
const PERIOD: Duration = Duration::from_secs(60);

/// One event kind's cap.
pub(super) struct EventCap {
    /// Events written in the current period.
    written: u32,
    /// When the current period began.
    since: Instant,
}

impl EventCap {
    /// A cap whose first period starts now.
    pub fn new() -> EventCap {
        EventCap { written: 0, since: Instant::now() }
    }

    /// Whether one more event may be written now; counts it if so.
    pub fn allow(&mut self) -> bool {
        if self.since.elapsed() >= PERIOD {
            self.since = Instant::now();
            self.written = 0;
        }
        if self.written >= MAX_EVENTS {
            return false;
        }
        self.written += 1;
        true
    }
}

/// The `op_failed` cap, which also says how many failures it left out before each event written.
pub(super) struct FailEvents {
    /// The cap.
    cap: EventCap,
    /// Failures left out since the last event written (the next one says so).
    suppressed: u64,
}

impl FailEvents {
    /// A cap whose first period starts now.
    pub fn new() -> FailEvents {
        FailEvents { cap: EventCap::new(), suppressed: 0 }
    }

    /// One more failure: Some(failures left out before it) if its event may be written.
    pub fn admit(&mut self) -> Option<u64> {
        if self.cap.allow() {
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_cap_lets_max_events_through_per_period_then_refuses() {
        let mut cap = EventCap::new();
        for i in 0..MAX_EVENTS {
            assert!(cap.allow(), "event {i} refused");
        }
        assert!(!cap.allow());
        assert!(!cap.allow());
        // a new period starts the count again
        cap.since = Instant::now() - PERIOD;
        assert!(cap.allow());
        assert_eq!(cap.written, 1);
    }

    #[test]
    fn a_failure_event_says_how_many_the_cap_left_out_before_it() {
        let mut f = FailEvents::new();
        for _ in 0..MAX_EVENTS {
            assert_eq!(f.admit(), Some(0));
        }
        assert_eq!(f.admit(), None);
        assert_eq!(f.admit(), None);
        f.cap.since = Instant::now() - PERIOD;
        assert_eq!(f.admit(), Some(2));
        assert_eq!(f.admit(), Some(0));
    }
}
