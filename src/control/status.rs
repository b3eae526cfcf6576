//! The live status document: what `stressctl status` (over the control socket) and the dashboard
//! show of a running campaign. One typed shape, serialized by the daemon and parsed back by the
//! client, so both sides agree on it at compile time. It lives here, below the campaign that fills
//! it and the dashboard and progress line that read it, so neither has to reach up for it.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A running campaign, as `status` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusDoc {
    /// Campaign id.
    pub campaign_id: String,
    /// Profile name.
    pub profile: String,
    /// The daemon's pid.
    pub pid: u32,
    /// `running`, `cooling_down` or `stopping`.
    pub state: String,
    /// Why it is stopping, once it is.
    pub stop_reason: Option<String>,
    /// Seconds since the run started.
    pub uptime_s: u64,
    /// The running phase (None between phases).
    pub phase: Option<PhaseStatus>,
    /// Ops so far, all phases.
    pub ops: OpsStatus,
    /// p95 of the running phase so far, ms.
    pub p95_ms: Option<f64>,
    /// Latest health score.
    pub health: Option<f64>,
    /// Latest guardian sample.
    pub resources: Option<ResourceStatus>,
    /// Guardian totals.
    pub guardian: GuardianStatus,
}

/// The running phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseStatus {
    /// 1-based.
    pub index: u32,
    /// Phases planned.
    pub total: usize,
    /// Name.
    pub name: String,
    /// Sessions it really runs.
    pub sessions: u32,
    /// Seconds into the phase (a resumed phase counts its time before the interruption).
    pub elapsed_s: f64,
    /// Planned seconds.
    pub duration_s: f64,
    /// elapsed / duration, percent.
    pub progress_pct: f64,
    /// Ops of this phase so far.
    #[serde(default)]
    pub ops: Option<OpsStatus>,
}

/// Op counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpsStatus {
    /// Attempted.
    pub attempted: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Failed.
    pub failed: u64,
    /// succeeded / attempted (1 before the first op).
    pub success_rate: f64,
}

/// The latest guardian sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceStatus {
    /// System CPU, percent.
    pub cpu_percent: f64,
    /// Memory, percent.
    pub memory_percent: f64,
    /// Disk of the output dir, percent.
    pub disk_percent: f64,
    /// RSS of the browsers and drivers, MiB.
    pub tree_rss_mb: u64,
    /// Processes in that tree.
    pub tree_processes: u32,
    /// The daemon's own RSS, MiB.
    pub daemon_rss_mb: u64,
}

/// Guardian totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuardianStatus {
    /// Samples taken.
    pub samples: u64,
    /// Violations seen.
    pub violations: u64,
}

impl StatusDoc {
    /// The text `stressctl status` prints.
    pub fn render(&self) -> String {
        let mut out = format!(
            "campaign {} ({})  pid {}  up {}  {}\n",
            self.campaign_id,
            self.profile,
            self.pid,
            humantime::format_duration(Duration::from_secs(self.uptime_s)),
            self.state
        );
        if let Some(r) = &self.stop_reason {
            out += &format!("stopping: {r}\n");
        }
        match &self.phase {
            Some(p) => {
                out += &format!(
                    "phase {}/{} {}  {:.1}s of {:.0}s ({:.0}%)  {} sessions\n",
                    p.index, p.total, p.name, p.elapsed_s, p.duration_s, p.progress_pct, p.sessions
                )
            }
            None => out += "between phases\n",
        }
        let o = &self.ops;
        out += &format!(
            "ops {} (ok {}, failed {})  success {:.2}%  p95 {}\n",
            o.attempted,
            o.succeeded,
            o.failed,
            o.success_rate * 100.0,
            self.p95_ms.map(|v| format!("{v:.1} ms")).unwrap_or_else(|| "-".into())
        );
        if let Some(r) = &self.resources {
            out += &format!(
                "health {}  cpu {:.1}%  memory {:.1}%  disk {:.1}%  browsers+drivers {} MiB in {} processes\n",
                self.health.map(|h| format!("{h:.0}")).unwrap_or_else(|| "-".into()),
                r.cpu_percent,
                r.memory_percent,
                r.disk_percent,
                r.tree_rss_mb,
                r.tree_processes
            );
        }
        out += &format!("guardian: {} samples, {} violations\n", self.guardian.samples, self.guardian.violations);
        out
    }
}
