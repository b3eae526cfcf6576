//! What the page said about its GPU adapter (or WebNN backend), into the store as task info: the
//! adapter per browser (the first one also as the task's), with what stressctl knows beside it,
//! and the count of null `requestAdapter()` answers the page retried past; the adapter's class
//! (`swiftshader`, `lavapipe`, `nvidia`, ...) becomes the worker's `hardware:<class>` breaker.

use super::ctx::PhaseCtx;
use crate::browser::pool::Worker;
use crate::config::TaskSpec;

/// A slot's adapter notes.
pub(super) struct AdapterNotes {
    /// Whether this slot stored its adapter already: once per slot is enough (every op reports
    /// the same one).
    reported: bool,
}

impl AdapterNotes {
    /// Nothing reported yet.
    pub fn new() -> AdapterNotes {
        AdapterNotes { reported: false }
    }

    /// A successful op on `worker` reported `adapter` (its first time only is stored) after
    /// `retries` null `requestAdapter()` answers.
    pub fn note(&mut self, ctx: &PhaseCtx, worker: Option<&Worker>, adapter: Option<serde_json::Value>, retries: u64) {
        if retries > 0 {
            count_adapter_retries(ctx, worker, retries);
        }
        if !self.reported {
            if let Some(a) = adapter {
                // a WebNN backend (it has an `api` key) names no GPU adapter: no hardware class
                if let Some(w) = worker.filter(|_| a.get("api").is_none()) {
                    let class = crate::browser::adapter::hardware_class(w.browser, &a);
                    if w.set_hardware_class(class) {
                        tracing::info!(target: "stressctl::campaign", worker = %w.id, "worker {}'s adapter class is {class}: its ops pass breaker hardware:{class}", w.id);
                        ctx.run.breakers.ensure(&format!("hardware:{class}"));
                    }
                }
                report_adapter(ctx, worker, a);
                self.reported = true;
            }
        }
    }
}

/// Records the adapter (or WebNN backend) the page reported, per browser, with what stressctl
/// knows beside it: the `webgpu_adapter` choice and the GPU `chrome://gpu` names.
fn report_adapter(ctx: &PhaseCtx, worker: Option<&Worker>, mut a: serde_json::Value) {
    let kind = ctx.phase.task.kind();
    let Some(w) = worker else { return };
    if let Some(o) = a.as_object_mut() {
        if matches!(ctx.phase.task, TaskSpec::Webgpu { .. }) {
            o.insert("webgpu_adapter".into(), serde_json::json!(w.adapter_choice.as_str()));
            if let Some(n) = w.gpu_name() {
                o.insert("gpu_name".into(), serde_json::json!(n));
            }
        }
    }
    // the first browser to report is also the task's adapter (reports before browsers)
    if ctx.first_adapter.set(()).is_ok() {
        ctx.run.store.task_info(ctx.idx, kind, "adapter", a.clone());
    }
    ctx.run.store.task_info(ctx.idx, kind, format!("adapter:{}", w.browser), a);
}

/// Adds null `requestAdapter()` answers the page retried past to the phase's count for this
/// browser, and stores the new total.
fn count_adapter_retries(ctx: &PhaseCtx, worker: Option<&Worker>, n: u64) {
    let Some(b) = worker.map(|w| w.browser) else { return };
    let total = {
        let mut m = ctx.adapter_retries.lock().unwrap_or_else(|e| e.into_inner());
        let t = m.entry(b).or_insert(0);
        *t += n;
        *t
    };
    ctx.run.store.task_info(ctx.idx, ctx.phase.task.kind(), format!("adapter_retries:{b}"), serde_json::json!(total));
}
