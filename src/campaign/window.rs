//! A slot's window of op results: every op counted as it finishes, handed to the store (and to
//! the phase's live counters) about once every [`WINDOW`], and whenever the label its ops are
//! counted under changes (the ops so far belong to the worker or node that ran them). Beside it,
//! the slot's degraded ops ([`DegradedOps`]).

use super::ctx::PhaseCtx;
use crate::metrics::{encode_histogram, Window};
use crate::recovery::FailureClass;
use crate::store::{unix_ms, WindowRow};
use std::collections::BTreeMap;
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

/// The ops a slot ran at the reduced `webgpu` matrix of the recovery ladder's adjusted-settings
/// rung: counted apart per label and written, whole, as task info `degraded/<label>/s<slot>` with
/// each window, so the report counts them as degraded and not towards a pass (unless `[recovery]
/// degraded_counts_as_pass`, which each record carries).
#[derive(Default)]
pub(super) struct DegradedOps {
    /// Label -> what ran under it.
    by_label: BTreeMap<String, Degraded>,
    /// Something was recorded since the last flush.
    dirty: bool,
}

/// Degraded ops under one label.
struct Degraded {
    /// The matrix size they ran at.
    size: u32,
    /// The configured size.
    configured: u32,
    /// Ops run.
    ops: u64,
    /// Ops that succeeded.
    succeeded: u64,
}

impl DegradedOps {
    /// Counts one op run at `size` instead of `configured` under `label`.
    pub fn record(&mut self, label: &str, size: u32, configured: u32, ok: bool) {
        if !self.by_label.contains_key(label) {
            self.by_label.insert(label.to_string(), Degraded { size, configured, ops: 0, succeeded: 0 });
        }
        if let Some(d) = self.by_label.get_mut(label) {
            d.size = size;
            d.ops += 1;
            d.succeeded += u64::from(ok);
        }
        self.dirty = true;
    }

    /// Writes the counts so far (whole, not increments) as slot `slot`'s task info.
    pub fn flush(&mut self, ctx: &PhaseCtx, slot: u32) {
        if !std::mem::take(&mut self.dirty) {
            return;
        }
        let counts_as_pass = ctx.run.cfg.recovery.degraded_counts_as_pass;
        for (label, d) in &self.by_label {
            let value = serde_json::json!({
                "worker": label, "slot": slot, "size": d.size, "configured_size": d.configured,
                "ops": d.ops, "succeeded": d.succeeded, "counts_as_pass": counts_as_pass,
            });
            ctx.run.store.task_info(ctx.idx, "webgpu", format!("degraded/{label}/s{slot}"), value);
        }
    }
}
