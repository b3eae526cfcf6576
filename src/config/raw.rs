//! The config file as written (the TOML document): every table rejects unknown keys.
//!
//! The settings tables (`[campaign]`, `[browser]`, `[safety]`, `[recovery]`) are read straight
//! into their typed structs, which carry their own defaults, so a setting is declared once: a
//! field, its default, its range check (`validate.rs`). `[breaker]` is read at the TOML value level
//! into [`BreakerConfig`]s. The structural entries (`[task]`, `[[workers]]`, `[[phases]]`,
//! `[[faults]]`) have a raw form here because their typed form has another shape (an enum per
//! task kind, an endpoint, a schedule).

use super::{
    AdapterChoice, BrowserConfig, BrowserKind, BrowserPreference, CampaignSettings, DashboardConfig, FaultConfig, FaultKind, FaultSchedule,
    HumanDuration, LoggingConfig, RecoveryConfig, SafetyConfig, SafetyOverrides, StressLevel, WorkerConfig, WorkerEndpoint,
};
use crate::breaker::BreakerConfig;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub campaign: CampaignSettings,
    pub task: Option<RawTask>,
    #[serde(default)]
    pub browser: BrowserConfig,
    #[serde(default)]
    pub safety: SafetyConfig,
    #[serde(default)]
    pub breaker: BreakerTables,
    #[serde(default)]
    pub recovery: RecoveryConfig,
    #[serde(default)]
    pub browser_preference: BrowserPreference,
    #[serde(default)]
    pub dashboard: DashboardConfig,
    #[serde(default)]
    pub logging: LoggingConfig,
    #[serde(default)]
    pub server: super::ServerConfig,
    #[serde(default)]
    pub grid: super::GridConfig,
    pub workers: Option<Vec<RawWorker>>,
    pub phases: Option<Vec<RawPhase>>,
    pub phase_sessions: Option<std::collections::BTreeMap<String, u32>>,
    pub faults: Option<Vec<RawFault>>,
    pub notify: Option<Vec<super::NotifyConfig>>,
}

/// A file given to `launch --safety`: only a `[safety]` table.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSafetyFile {
    pub safety: Option<SafetyConfig>,
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
    pub model: Option<String>,
    pub execution_provider: Option<String>,
    pub inputs: Option<std::collections::BTreeMap<String, super::model::InputSpec>>,
    pub tolerance: Option<super::model::Tolerance>,
    pub ort_dir: Option<std::path::PathBuf>,
    /// This task's `op_timeout`, over `[browser] op_timeout` (resolved into the phase's).
    pub op_timeout: Option<HumanDuration>,
}

/// The breaker scopes that may override the top-level `[breaker]` keys.
pub(super) const BREAKER_SCOPES: [&str; 4] = ["worker", "browser", "task", "hardware"];

/// `[breaker]`: its top-level keys apply to every scope; `[breaker.worker]`, `[breaker.browser]`,
/// `[breaker.task]` and `[breaker.hardware]` override them for one scope. Both levels are merged at the TOML value
/// level over the written-out defaults of [`BreakerConfig`], so no breaker setting is named here.
#[derive(Default)]
pub(super) struct BreakerTables {
    /// The top-level keys over the defaults (checked on their own, as key `breaker`).
    pub common: BreakerConfig,
    /// Per scope, in [`BREAKER_SCOPES`] order.
    pub scopes: [BreakerConfig; 4],
}

impl<'de> Deserialize<'de> for BreakerTables {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut top = toml::Table::deserialize(d)?;
        let scope_tables = BREAKER_SCOPES.map(|s| top.remove(s));
        let defaults = toml::Table::try_from(AsToml(&BreakerConfig::default())).map_err(D::Error::custom)?;
        let common_table = super::layer::merge(defaults, top);
        let common = BreakerDef::deserialize(common_table.clone()).map_err(D::Error::custom)?;
        let mut scopes: [BreakerConfig; 4] = Default::default();
        for ((scope, table), slot) in BREAKER_SCOPES.iter().zip(scope_tables).zip(scopes.iter_mut()) {
            *slot = match table {
                None => common.clone(),
                Some(toml::Value::Table(t)) => BreakerDef::deserialize(super::layer::merge(common_table.clone(), t))
                    .map_err(|e| D::Error::custom(format!("in [breaker.{scope}]: {e}")))?,
                Some(_) => return Err(D::Error::custom(format!("`breaker.{scope}` must be a table: write [breaker.{scope}]"))),
            };
        }
        Ok(BreakerTables { common, scopes })
    }
}

/// [`BreakerConfig`] written as TOML (durations as humantime strings). The compiler checks it
/// against `BreakerConfig` field by field (serde `remote`); defaults and ranges stay there.
#[derive(Serialize, Deserialize)]
#[serde(remote = "BreakerConfig", deny_unknown_fields)]
pub(super) struct BreakerDef {
    failure_threshold: u32,
    failure_rate_threshold: f64,
    window_size: u32,
    minimum_calls: u32,
    #[serde(with = "super::human")]
    recovery_timeout: Duration,
    backoff_factor: f64,
    #[serde(with = "super::human")]
    max_recovery_timeout: Duration,
    half_open_max_calls: u32,
    success_threshold: u32,
}

/// A [`BreakerConfig`] serialized through [`BreakerDef`].
struct AsToml<'a>(&'a BreakerConfig);

impl Serialize for AsToml<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        BreakerDef::serialize(self.0, s)
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorker {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser: Option<BrowserKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webgpu_adapter: Option<AdapterChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_metrics: Option<String>,
    #[serde(default, skip_serializing_if = "SafetyOverrides::is_empty")]
    pub safety: SafetyOverrides,
}

impl From<&WorkerConfig> for RawWorker {
    fn from(w: &WorkerConfig) -> Self {
        let (managed, url) = match &w.endpoint {
            WorkerEndpoint::Managed => (Some(true), None),
            WorkerEndpoint::Remote(u) => (None, Some(u.clone())),
        };
        RawWorker {
            id: w.id.clone(),
            managed,
            url,
            browser: Some(w.browser),
            webgpu_adapter: w.webgpu_adapter,
            node_metrics: w.node_metrics.clone(),
            safety: w.safety.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCriteria {
    pub min_success_rate: Option<f64>,
    pub max_p95: Option<HumanDuration>,
    pub max_rss_growth_mb_per_h: Option<f64>,
    pub max_p95_drift_pct_per_h: Option<f64>,
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
    pub safety: Option<SafetyOverrides>,
    pub browsers: Option<Vec<BrowserKind>>,
    pub op_timeout: Option<HumanDuration>,
    pub kind: Option<super::PhaseKind>,
    pub capacity: Option<RawCapacity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCapacity {
    pub max_sessions: u32,
    pub step: Option<u32>,
    pub step_duration: Option<HumanDuration>,
    pub warmup: Option<HumanDuration>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    pub kind: FaultKind,
    #[serde(default, with = "super::human_opt", skip_serializing_if = "Option::is_none")]
    pub every: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phases: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permanent: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_mb: Option<u32>,
}

impl From<&FaultConfig> for RawFault {
    fn from(f: &FaultConfig) -> Self {
        let (every, probability) = match f.schedule {
            FaultSchedule::Every(d) => (Some(d), None),
            FaultSchedule::Probability(p) => (None, Some(p)),
        };
        RawFault {
            kind: f.kind,
            every,
            probability,
            worker: f.worker.clone(),
            phases: (!f.phases.is_empty()).then(|| f.phases.clone()),
            permanent: Some(f.permanent),
            limit_mb: (f.kind == FaultKind::ExhaustMemory).then_some(f.limit_mb),
        }
    }
}
