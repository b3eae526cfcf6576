//! The campaign runner: phases in order, N session slots per phase, results into the store as
//! they happen, a phase report after each phase and the campaign report at the end.
//!
//! - [`runner`]: the campaign loop, the run's services and its stop tree;
//! - [`phase`]: one phase (sessions, clock, grace, checkpoints); `capacity`: a capacity phase,
//!   a search of steps each driven like a phase;
//! - [`escalation`]: the between-phase policy (a pure function) and health-gated waits;
//! - [`shared`]: state shared by the slots of a run (counters, pause state, event bus);
//! - [`status`]: the live status document behind `stressctl status`; `operator`: the breaker
//!   commands (`stressctl breaker open|close|reset|disable`) on the running campaign;
//! - `ctx`: what the slots of one phase share;
//! - `slot`: one session slot issuing ops, recording them, carrying out recovery actions; its
//!   parts: `seat` (where ops run: session, worker, Grid node, label, breakers), `workload` (what
//!   they run, one call at a time), `window` (its op results on the way to the store),
//!   `departure` (work that left a Grid node, until it lands on another), `event_cap`, `adapter`
//!   and `inject` (a due fault, carried out);
//! - `notices`: what the campaign tells `[[notify]]` receivers, and when;
//! - `unsupported`: browsers given up for a task after refusing it 3 times in a row;
//! - `faults`: fault injection on the campaign clock; `guard`: the guardian task; `progress_log`:
//!   the campaign log's periodic progress line; [`resume`]:
//!   resuming a dead run.

mod adapter;
mod baseline;
mod capacity;
mod ctx;
mod departure;
mod escalation;
mod event_cap;
mod faults;
mod guard;
mod inject;
mod nodes;
mod notices;
mod operator;
mod phase;
mod placement;
mod progress_log;
pub mod resume;
mod runner;
mod seat;
pub mod shared;
mod slot;
pub mod status;
mod unsupported;
mod window;
mod workload;

pub use faults::FaultPlan;
pub use resume::{resume_point, ResumePoint};
pub use runner::Campaign;

use crate::control::StopCause;
use crate::store::{self, StoreError};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Where a run writes.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Reports go to `<output_dir>/<campaign-id>/`.
    pub output_dir: PathBuf,
    /// Store, browser profiles, lock and socket.
    pub state_dir: PathBuf,
    /// Log files.
    pub log_dir: PathBuf,
    /// Timestamp used in log file names.
    pub log_stamp: String,
    /// The control socket to serve (`status`, `emergency-stop`).
    pub socket: Option<PathBuf>,
    /// Take the night's baseline before the first phase (`launch --no-baseline` turns it off;
    /// a resumed campaign keeps the one it took).
    pub baseline: bool,
    /// `launch --tuned-from`: the campaigns tuned from and each setting changed, written as the
    /// `config_tuned` event at the start so that the reports list them.
    pub tuned: Option<crate::report::TunedReport>,
}

/// How a campaign ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CampaignOutcome {
    /// Enough phases passed and the overall success rate was met.
    Passed,
    /// It ran to the end and did not meet the criteria.
    Failed,
    /// Stopped after too many failing phases in a row.
    Halted,
    /// Stopped by a stop request (Ctrl-C, emergency-stop, guardian, store failure, time cap).
    EmergencyStopped,
}

impl CampaignOutcome {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignOutcome::Passed => "passed",
            CampaignOutcome::Failed => "failed",
            CampaignOutcome::Halted => "halted",
            CampaignOutcome::EmergencyStopped => "emergency_stopped",
        }
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct RunResult {
    /// Campaign id.
    pub id: String,
    /// Outcome.
    pub outcome: CampaignOutcome,
    /// Why it stopped early, if it did.
    pub stop_reason: Option<String>,
    /// What stopped it, if anything did (decides the exit code: 130 for Ctrl-C).
    pub stop_cause: Option<StopCause>,
    /// Where the reports are.
    pub report_dir: PathBuf,
}

/// Errors that prevent a campaign from running or finishing its records.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A directory or file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io { path: path.to_path_buf(), source }
}

/// A new campaign id: UTC start time plus a random suffix, e.g. `20261123T172546Z-3f9a`.
pub fn new_campaign_id() -> String {
    let t = store::rfc3339(SystemTime::now());
    let compact: String = t.chars().take(19).filter(|c| *c != '-' && *c != ':').collect();
    format!("{compact}Z-{:04x}", fastrand::u16(..))
}
