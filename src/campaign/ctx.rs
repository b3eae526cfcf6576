//! What the slots of one phase share: the run, the phase's config, its two stop tokens, its
//! counters and the per-phase notes the slots write together. Below both the phase loop that
//! builds it and the slots that read it, so the two import it, never each other.

use super::faults::FaultPlan;
use super::shared::{Live, RunShared};
use crate::config::{BrowserKind, PhaseConfig};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use tokio_util::sync::CancellationToken;

/// What the slots of one phase share.
pub(crate) struct PhaseCtx {
    /// The run.
    pub run: Arc<RunShared>,
    /// Phase index.
    pub idx: u32,
    /// Its config.
    pub phase: PhaseConfig,
    /// Its task as the run's unsupported memo knows it ([`super::unsupported::task_key`]).
    pub task_key: String,
    /// Stop issuing ops (phase deadline, stop request or guardian pause).
    pub stop_ops: CancellationToken,
    /// Abandon in-flight ops (grace over, or forced stop).
    pub hard: CancellationToken,
    /// Its counters.
    pub live: Arc<Live>,
    /// Faults to inject.
    pub faults: Arc<FaultPlan>,
    /// Set by the first slot that reports an adapter (the task's `adapter`, beside each
    /// browser's own).
    pub first_adapter: OnceLock<()>,
    /// Null `requestAdapter()` answers retried past, per browser, this phase.
    pub adapter_retries: Mutex<BTreeMap<BrowserKind, u64>>,
}

impl PhaseCtx {
    /// Whether this phase may place sessions on `browser` (its `browsers` list, when it has one).
    pub fn phase_allows(&self, browser: BrowserKind) -> bool {
        self.phase.browsers.is_empty() || self.phase.browsers.contains(&browser)
    }
}
