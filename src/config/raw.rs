//! The config file as written: every table rejects unknown keys.

use super::{FaultKind, HumanDuration, StressLevel};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub campaign: Option<RawCampaign>,
    pub task: Option<RawTask>,
    pub browser: Option<RawBrowser>,
    pub safety: Option<RawSafety>,
    pub breaker: Option<RawBreakers>,
    pub recovery: Option<RawRecovery>,
    pub workers: Option<Vec<RawWorker>>,
    pub phases: Option<Vec<RawPhase>>,
    pub faults: Option<Vec<RawFault>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSafetyFile {
    pub safety: Option<RawSafety>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCampaign {
    pub name: Option<String>,
    pub total_duration: Option<HumanDuration>,
    pub progressive_escalation: Option<bool>,
    pub baseline_health_requirement: Option<f64>,
    pub escalation_delay: Option<HumanDuration>,
    pub max_consecutive_failed_phases: Option<u32>,
    pub pass_phase_ratio: Option<f64>,
    pub pass_success_rate: Option<f64>,
    pub auto_recovery: Option<bool>,
    pub cooldown: Option<HumanDuration>,
    pub max_auto_recoveries: Option<u32>,
    pub grace_period: Option<HumanDuration>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTask {
    pub kind: Option<String>,
    pub matrix_size: Option<u32>,
    pub url: Option<String>,
    pub script: Option<String>,
    pub latency: Option<HumanDuration>,
    pub jitter: Option<HumanDuration>,
    pub failure_probability: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBrowser {
    pub chromium: Option<PathBuf>,
    pub chromedriver: Option<PathBuf>,
    pub headless: Option<bool>,
    pub extra_args: Option<Vec<String>>,
    pub max_ops_per_session: Option<u64>,
    pub op_timeout: Option<HumanDuration>,
    pub session_timeout: Option<HumanDuration>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSafety {
    pub sample_interval: Option<HumanDuration>,
    pub memory_percent: Option<f64>,
    pub cpu_percent: Option<f64>,
    pub disk_percent: Option<f64>,
    pub consecutive_violations: Option<u32>,
    pub max_campaign_duration: Option<HumanDuration>,
    pub max_browser_rss_mb: Option<u64>,
    pub reserve_percent: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPhaseSafety {
    pub memory_percent: Option<f64>,
    pub cpu_percent: Option<f64>,
    pub disk_percent: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBreakers {
    pub failure_threshold: Option<u32>,
    pub failure_rate_threshold: Option<f64>,
    pub window_size: Option<u32>,
    pub minimum_calls: Option<u32>,
    pub recovery_timeout: Option<HumanDuration>,
    pub backoff_factor: Option<f64>,
    pub max_recovery_timeout: Option<HumanDuration>,
    pub half_open_max_calls: Option<u32>,
    pub success_threshold: Option<u32>,
    pub worker: Option<RawBreaker>,
    pub browser: Option<RawBreaker>,
    pub task: Option<RawBreaker>,
}

impl RawBreakers {
    /// The top-level keys of `[breaker]`, which apply to every scope.
    pub fn defaults(&self) -> RawBreaker {
        RawBreaker {
            failure_threshold: self.failure_threshold,
            failure_rate_threshold: self.failure_rate_threshold,
            window_size: self.window_size,
            minimum_calls: self.minimum_calls,
            recovery_timeout: self.recovery_timeout,
            backoff_factor: self.backoff_factor,
            max_recovery_timeout: self.max_recovery_timeout,
            half_open_max_calls: self.half_open_max_calls,
            success_threshold: self.success_threshold,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBreaker {
    pub failure_threshold: Option<u32>,
    pub failure_rate_threshold: Option<f64>,
    pub window_size: Option<u32>,
    pub minimum_calls: Option<u32>,
    pub recovery_timeout: Option<HumanDuration>,
    pub backoff_factor: Option<f64>,
    pub max_recovery_timeout: Option<HumanDuration>,
    pub half_open_max_calls: Option<u32>,
    pub success_threshold: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecovery {
    pub backoff_base: Option<HumanDuration>,
    pub backoff_cap: Option<HumanDuration>,
    pub max_level: Option<u8>,
    pub reduced_matrix_size: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorker {
    pub id: String,
    pub managed: Option<bool>,
    pub url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCriteria {
    pub min_success_rate: Option<f64>,
    pub max_p95: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPhase {
    pub name: String,
    pub duration: HumanDuration,
    pub sessions: u32,
    pub ops_per_session: Option<u64>,
    pub think_time: Option<HumanDuration>,
    pub stress_level: Option<StressLevel>,
    pub criteria: Option<RawCriteria>,
    pub task: Option<RawTask>,
    pub safety: Option<RawPhaseSafety>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    pub kind: FaultKind,
    pub every: Option<HumanDuration>,
    pub probability: Option<f64>,
    pub worker: Option<String>,
    pub phases: Option<Vec<String>>,
    pub permanent: Option<bool>,
}
