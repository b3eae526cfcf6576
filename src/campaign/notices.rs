//! What the campaign tells people (`[[notify]]`): which moments make a notice, with which
//! figures, and the notifier's start and bounded drain around the run. The sending is
//! `crate::notify`'s; each delivery's result is recorded as a `notification` event, so the
//! report counts them.

use super::shared::{lock, RunShared};
use crate::config::NotifyOn;
use crate::events::{Event, EventBus};
use crate::notify::{Delivery, Notice, Notifier, NotifyError, ReportPaths};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A breaker's `breaker_open` notices are at least this far apart.
const OPEN_NOTICE_EVERY: Duration = Duration::from_secs(60);

/// Starts the run's notifier (none without `[[notify]]`); deliveries become events on `bus`.
pub(super) fn start(run: &RunShared, report_dir: &Path) -> Result<(), NotifyError> {
    let bus: EventBus = run.bus.clone();
    let id = run.id.clone();
    let on_delivery = Arc::new(move |d: Delivery| {
        bus.emit(id.clone(), None, Event::Notification { target: d.target, event: d.event, attempts: d.attempts, error: d.error });
    });
    let n = Notifier::start(&run.cfg.notify, &run.id, ReportPaths::in_dir(report_dir), on_delivery)?;
    *lock(&run.notifier) = n;
    Ok(())
}

/// Gives the queued notices a bounded time to go out (before the store is closed, so their
/// results are in the report).
pub(super) async fn drain(run: &RunShared) {
    let n = lock(&run.notifier).take();
    if let Some(n) = n {
        n.drain(Notifier::drain_time(&run.cfg.notify)).await;
    }
}

impl RunShared {
    /// Queues a notice (nothing without `[[notify]]`); never waits.
    pub fn notify(&self, on: NotifyOn, reason: String, mut figures: Value) {
        let guard = lock(&self.notifier);
        let Some(n) = guard.as_ref() else { return };
        let ops = self.total_counts();
        if let Value::Object(m) = &mut figures {
            m.insert("ops_attempted".into(), ops.attempted.into());
            m.insert("ops_succeeded".into(), ops.succeeded.into());
            m.insert("ops_failed".into(), ops.failed.into());
            let rate = if ops.attempted > 0 { ops.succeeded as f64 / ops.attempted as f64 } else { 1.0 };
            m.insert("success_rate".into(), ((rate * 10000.0).round() / 10000.0).into());
            if let Some(p) = self.current_phase_name() {
                m.insert("phase".into(), p.into());
            }
        }
        n.notice(Notice { on, reason, figures });
    }

    /// A breaker opened on its own: a `breaker_open` notice, at most one a minute per breaker.
    pub(super) fn breaker_opened(&self, key: &str, why: &str) {
        if lock(&self.notifier).is_none() {
            return;
        }
        {
            let mut last = lock(&self.open_noticed);
            let now = Instant::now();
            if last.get(key).is_some_and(|t| now.duration_since(*t) < OPEN_NOTICE_EVERY) {
                return;
            }
            last.insert(key.to_string(), now);
        }
        self.notify(NotifyOn::BreakerOpen, format!("breaker {key} opened: {why}"), json!({"breaker": key}));
    }
}
