//! Fills the live status document ([`StatusDoc`]) from a running campaign's shared state, and
//! answers the control socket with it (breaker commands are carried out by `operator`).

use super::shared::{OpCounts, RunShared};
use crate::control::status::{GuardianStatus, OpsStatus, PhaseStatus, ResourceStatus, StatusDoc};
use crate::control::StopCause;
use serde_json::Value;

fn ops_status(c: OpCounts) -> OpsStatus {
    OpsStatus {
        attempted: c.attempted,
        succeeded: c.succeeded,
        failed: c.failed,
        success_rate: if c.attempted > 0 { (c.succeeded as f64 / c.attempted as f64 * 10000.0).round() / 10000.0 } else { 1.0 },
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The status of a run now.
pub(crate) fn status_of(run: &RunShared) -> StatusDoc {
    let cur = run.current();
    let latest = run.latest();
    let ops = run.total_counts();
    let phase = cur.as_ref().map(|c| {
        let elapsed = (c.offset + c.started.elapsed()).as_secs_f64();
        PhaseStatus {
            index: c.idx + 1,
            total: run.cfg.phases.len(),
            name: c.name.clone(),
            sessions: c.sessions,
            elapsed_s: round1(elapsed),
            duration_s: c.duration.as_secs_f64(),
            progress_pct: round1((elapsed / c.duration.as_secs_f64().max(0.001) * 100.0).min(100.0)),
            ops: Some(ops_status(c.live.counts())),
        }
    });
    let resources = latest.sample.as_ref().map(|s| ResourceStatus {
        cpu_percent: round1(s.cpu_percent),
        memory_percent: round1(s.memory_percent),
        disk_percent: round1(s.disk_percent),
        tree_rss_mb: s.tree_rss_bytes >> 20,
        tree_processes: s.tree_processes,
        daemon_rss_mb: s.self_rss_bytes >> 20,
    });
    let state = if run.stop.is_stopping() {
        "stopping"
    } else if run.is_paused() {
        "cooling_down"
    } else {
        "running"
    };
    StatusDoc {
        campaign_id: run.id.clone(),
        profile: run.cfg.profile.clone(),
        pid: std::process::id(),
        state: state.into(),
        stop_reason: run.stop.request_info().map(|r| r.reason),
        uptime_s: run.started.elapsed().as_secs(),
        phase,
        ops: ops_status(ops),
        p95_ms: cur.as_ref().map(|c| c.live.latency().p95),
        health: latest.health.map(f64::round),
        resources,
        guardian: GuardianStatus { samples: latest.samples, violations: latest.violations },
    }
}

impl crate::control::socket::Controlled for RunShared {
    fn status(&self) -> Value {
        serde_json::to_value(status_of(self)).unwrap_or(Value::Null)
    }

    fn stop(&self, force: bool, reason: String) {
        self.stop.request(StopCause::EmergencyStop, format!("emergency-stop: {reason}"), force);
    }

    fn breakers(&self) -> Vec<crate::control::breakers::BreakerRow> {
        super::operator::list(self)
    }

    fn breaker_command(
        &self,
        req: crate::control::breakers::BreakerRequest,
    ) -> Result<crate::control::breakers::BreakerDone, crate::control::breakers::BreakerRefusal> {
        super::operator::command(self, req)
    }
}
