//! A slot's window of op results: every op counted as it finishes, handed to the store (and to
//! the phase's live counters) about once every [`WINDOW`], and whenever the label its ops are
//! counted under changes (the ops so far belong to the worker or node that ran them).

use super::ctx::PhaseCtx;
use crate::metrics::{encode_histogram, Window};
use crate::recovery::FailureClass;
use crate::store::{unix_ms, WindowRow};
use std::time::{Duration, Instant, SystemTime};

/// How often a slot hands its window to the store.
pub const WINDOW: Duration = Duration::from_secs(1);

/// The ops a slot recorded since it last handed them to the store.
pub(super) struct OpWindow {
    /// The ops recorded since the last flush.
    window: Window,
    /// When the current window began.
    start: SystemTime,
    /// When the window was last flushed: about once every [`WINDOW`].
    last_flush: Instant,
}

impl OpWindow {
    /// An empty window starting now.
    pub fn new() -> OpWindow {
        OpWindow { window: Window::default(), start: SystemTime::now(), last_flush: Instant::now() }
    }

    /// Counts one op: its round trip, in-page time, outcome (verified, or the failure's class) and
    /// the console entries the page logged during it.
    pub fn record(&mut self, latency: Duration, in_page: Option<Duration>, outcome: Result<bool, FailureClass>, console: u64) {
        self.window.record(latency, in_page, outcome);
        self.window.console += console;
    }

    /// Whether the window is due to go to the store.
    pub fn due(&self) -> bool {
        self.last_flush.elapsed() >= WINDOW
    }

    /// Hands the window to the store as slot `slot`'s ops under `label`, and starts a new one.
    pub fn flush(&mut self, ctx: &PhaseCtx, label: &str, slot: u32) {
        let now = SystemTime::now();
        let w = &mut self.window;
        if !w.is_empty() {
            let errors: std::collections::BTreeMap<&str, u64> = w.errors.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            ctx.live.merge(w);
            ctx.run.store.window(WindowRow {
                phase_idx: ctx.idx,
                worker: label.to_string(),
                slot,
                task_kind: ctx.phase.task.kind(),
                start_ms: unix_ms(self.start),
                end_ms: unix_ms(now),
                attempted: w.attempted,
                succeeded: w.succeeded,
                failed: w.failed,
                verified: w.verified,
                errors: serde_json::to_string(&errors).unwrap_or_else(|_| "{}".into()),
                hist: encode_histogram(&w.hist),
                hist_in_page: encode_histogram(&w.in_page),
                console: w.console,
            });
            w.reset();
        }
        self.start = now;
        self.last_flush = Instant::now();
    }
}
