//! Carrying out a fault the [`FaultPlan`](super::FaultPlan) says is due, for real: SIGKILL the
//! slot's own browser or its worker's driver (recorded processes only), or hand the page fault
//! (hang, throw, device loss, memory exhaustion) to the op that carries it; for a memory
//! exhaustion the session's renderers get their real limit first. Every fault injected is an event.

use super::ctx::PhaseCtx;
use super::faults::page_fault;
use crate::browser::pool::Pool;
use crate::browser::process::limit_renderers_data;
use crate::browser::session::Session;
use crate::config::{FaultConfig, FaultKind};
use crate::events::Event;
use crate::tasks::PageFault;

/// Who a fault hits: the slot's session, its worker's index in the pool, and the names its event
/// carries.
pub(super) struct Target<'a> {
    /// The slot's session, if one is open (its browser is what `kill_browser` kills).
    pub session: Option<&'a Session>,
    /// The pool index of the slot's worker (whose driver `kill_driver` kills).
    pub worker_ix: usize,
    /// The label the slot's ops are counted under (the event's worker).
    pub label: &'a str,
    /// The correlation id of the op that takes the fault.
    pub corr: String,
}

/// Carries out a process fault now, or returns the page fault for the op to carry.
pub(super) async fn inject(ctx: &PhaseCtx, f: &FaultConfig, pool: Option<&Pool>, t: Target<'_>) -> Option<PageFault> {
    let what = match f.kind {
        FaultKind::KillBrowser => match t.session.and_then(|s| s.browser) {
            Some(b) if b.signal(libc::SIGKILL) => format!("SIGKILL browser pid {}", b.pid),
            _ => return None,
        },
        FaultKind::KillDriver => {
            let pool = pool?;
            let w = pool.workers.get(t.worker_ix)?.clone();
            let pid = pool.kill_driver(&w, t.session, f.permanent).await?;
            let driver = w.browser.driver_name();
            format!("SIGKILL {driver} pid {pid} of worker {}{}", w.id, if f.permanent { " (permanent)" } else { "" })
        }
        FaultKind::ExhaustMemory => {
            let limited = t
                .session
                .and_then(|s| s.user_data_dir.as_deref().map(|d| limit_renderers_data(d, s.browser, u64::from(f.limit_mb) << 20)))
                .unwrap_or_default();
            let ceiling = crate::tasks::exhaust::ceiling_mb(f.limit_mb);
            if limited.is_empty() {
                format!(
                    "page fault exhaust_memory: no renderer of this session runs here to limit; the page allocates up to its ceiling of {ceiling} MiB"
                )
            } else {
                let pids: Vec<String> = limited.iter().map(|r| format!("{} ({} MiB)", r.pid, r.limit_bytes >> 20)).collect();
                format!(
                    "page fault exhaust_memory: data limit of the session's renderers lowered to what each holds + {} MiB: pid {}; \
                     the page allocates until the renderer runs out (ceiling {ceiling} MiB)",
                    f.limit_mb,
                    pids.join(", ")
                )
            }
        }
        _ => format!("page fault {}", f.kind.as_str()),
    };
    tracing::warn!(target: "stressctl::tasks", corr = %t.corr, "fault injected: {what}");
    ctx.run.event(
        t.corr,
        Some(ctx.idx),
        Event::FaultInjected { fault: f.kind, worker: t.label.to_string(), permanent: f.permanent, detail: what },
    );
    page_fault(f)
}
