//! The settings tables — `[campaign]`, `[browser]`, `[safety]` (and its per-phase overrides),
//! `[recovery]`, `[breaker]` — each one struct that is both the table as written (serde, absent
//! keys from `Default`) and the typed value. A setting is declared here once, as a field with its
//! doc and its default; its range is checked once, in `validate.rs`.

use super::duration::{human, human_opt};
use super::raw;
use crate::breaker::BreakerConfig;
use crate::recovery::{start_level, FailureClass, Strategy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Resource thresholds (percent 1–100) applied by the guardian: the `[safety]` table as written
/// (absent keys take [`SafetyConfig::default`]) and the typed value; ranges in `validate.rs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SafetyConfig {
    /// How often the guardian samples.
    #[serde(with = "human")]
    pub sample_interval: Duration,
    /// Memory used % that counts as a violation when exceeded.
    pub memory_percent: f64,
    /// System CPU % that counts as a violation when exceeded.
    pub cpu_percent: f64,
    /// Disk used % (filesystem of the output dir) that counts as a violation.
    pub disk_percent: f64,
    /// Violations in a row that trip the emergency stop.
    pub consecutive_violations: u32,
    /// Hard cap on the whole campaign's wall time.
    #[serde(with = "human")]
    pub max_campaign_duration: Duration,
    /// A browser whose process tree RSS exceeds this has its session recycled. Written in MiB
    /// (`max_browser_rss_mb`), held in bytes.
    #[serde(rename = "max_browser_rss_mb", with = "mebibytes", skip_serializing_if = "Option::is_none")]
    pub max_browser_rss_bytes: Option<u64>,
    /// Percent of CPU and memory kept for the host: the campaign's browser and driver tree is
    /// capped at the rest by its cgroup (0 = no cap). See `confine`.
    pub reserve_percent: u32,
    /// Memory that must stay available, MiB (0 = no floor): a percentage alone lets a small host
    /// run out (80 % of 2 GiB leaves 400 MiB). Checked by `check`, judged by the guardian.
    pub min_free_memory_mb: u64,
    /// Space that must stay free on the output dir's filesystem, MiB (0 = no floor): the store
    /// and the reports need room whatever the percentage says. Checked by `check`, judged by the
    /// guardian.
    pub min_free_disk_mb: u64,
    /// What a node whose node_exporter stops answering (`[[workers]] node_metrics`) gets: drained
    /// like a node over a limit (the default: a node nobody watches may be the one running out),
    /// or only a warning.
    pub unwatched_node: UnwatchedNode,
}

/// `[safety] unwatched_node`: what happens to a node whose exporter does not answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnwatchedNode {
    /// Drain it (its breaker forced open) until its exporter answers and it is under the limits.
    #[default]
    Drain,
    /// Report it and keep giving it work.
    Warn,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        SafetyConfig {
            sample_interval: Duration::from_secs(2),
            memory_percent: 80.0,
            cpu_percent: 85.0,
            disk_percent: 90.0,
            consecutive_violations: 3,
            max_campaign_duration: Duration::from_secs(12 * 3600),
            max_browser_rss_bytes: None,
            reserve_percent: 20,
            min_free_memory_mb: 1024,
            min_free_disk_mb: 1024,
            unwatched_node: UnwatchedNode::Drain,
        }
    }
}

/// `max_browser_rss_mb` (MiB in the file) as bytes in [`SafetyConfig`].
mod mebibytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_u64(b >> 20),
            None => s.serialize_none(),
        }
    }

    /// Saturates: a value too large to hold in bytes stays too large for the range check.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        u64::deserialize(d).map(|mb| Some(mb.saturating_mul(1 << 20)))
    }
}

/// Per-phase overrides of the thresholds (`[phases.safety]`); absent keys keep the campaign's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SafetyOverrides {
    /// Override of `memory_percent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_percent: Option<f64>,
    /// Override of `cpu_percent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// Override of `disk_percent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_percent: Option<f64>,
    /// Override of `min_free_memory_mb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_free_memory_mb: Option<u64>,
    /// Override of `min_free_disk_mb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_free_disk_mb: Option<u64>,
}

impl SafetyOverrides {
    /// Whether the phase keeps the campaign's thresholds (nothing to write).
    pub fn is_empty(&self) -> bool {
        *self == SafetyOverrides::default()
    }
}

impl SafetyConfig {
    /// The thresholds with a phase's overrides applied.
    pub fn with_overrides(&self, o: &SafetyOverrides) -> SafetyConfig {
        SafetyConfig {
            memory_percent: o.memory_percent.unwrap_or(self.memory_percent),
            cpu_percent: o.cpu_percent.unwrap_or(self.cpu_percent),
            disk_percent: o.disk_percent.unwrap_or(self.disk_percent),
            min_free_memory_mb: o.min_free_memory_mb.unwrap_or(self.min_free_memory_mb),
            min_free_disk_mb: o.min_free_disk_mb.unwrap_or(self.min_free_disk_mb),
            ..self.clone()
        }
    }

    /// The guardian's thresholds.
    pub fn thresholds(&self) -> crate::guardian::Thresholds {
        crate::guardian::Thresholds {
            memory_percent: self.memory_percent,
            cpu_percent: self.cpu_percent,
            disk_percent: self.disk_percent,
            min_free_memory_mb: self.min_free_memory_mb as f64,
            min_free_disk_mb: self.min_free_disk_mb as f64,
            consecutive_violations: self.consecutive_violations,
        }
    }
}

/// Browser settings for sessions: the `[browser]` table as written (absent keys take
/// [`BrowserConfig::default`]) and the typed value; ranges in `validate.rs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrowserConfig {
    /// The browser binary.
    pub chromium: PathBuf,
    /// The driver binary (managed workers).
    pub chromedriver: PathBuf,
    /// The Firefox binary (workers with `browser = "firefox"`).
    pub firefox: PathBuf,
    /// geckodriver: a path, or a bare name looked up in `PATH` and then in cargo's bin
    /// directory (`cargo install geckodriver` puts it there; Debian does not package it).
    pub geckodriver: PathBuf,
    /// Which WebGPU adapter browsers are launched to use; a worker may override it.
    pub webgpu_adapter: super::AdapterChoice,
    /// Run headless (default true).
    pub headless: bool,
    /// Extra arguments appended to the mandatory ones.
    pub extra_args: Vec<String>,
    /// Recycle a session after this many ops.
    pub max_ops_per_session: u64,
    /// Time limit of a single op.
    #[serde(with = "human")]
    pub op_timeout: Duration,
    /// Time limit for opening a session (browser launch).
    #[serde(with = "human")]
    pub session_timeout: Duration,
    /// In-page work after which a call of the batched transport starts no further op (webgpu,
    /// webnn and page tasks). Each WebDriver call costs the browser a few milliseconds of CPU
    /// whatever it runs, so longer batches leave more of a saturated machine to the workload;
    /// shorter ones make the runner see phase deadlines and other slots' breaker states sooner.
    /// `0s` runs one op per call (the plain WebDriver loop).
    #[serde(with = "human")]
    pub batch_budget: Duration,
    /// The most ops one call runs: bounds the answer's size and what a breaker opened by another
    /// slot meanwhile can still let through.
    pub batch_max_ops: u32,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        BrowserConfig {
            chromium: PathBuf::from("/usr/bin/chromium"),
            chromedriver: PathBuf::from("/usr/bin/chromedriver"),
            firefox: PathBuf::from("/usr/bin/firefox-esr"),
            geckodriver: PathBuf::from("geckodriver"),
            webgpu_adapter: super::AdapterChoice::Software,
            headless: true,
            extra_args: Vec::new(),
            max_ops_per_session: 1000,
            op_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(60),
            batch_budget: Duration::from_millis(500),
            batch_max_ops: 32,
        }
    }
}

/// Recovery / retry settings: the `[recovery]` table as written (absent keys take
/// [`RecoveryConfig::default`]) and the typed value; ranges in `validate.rs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryConfig {
    /// Base of the exponential backoff.
    #[serde(with = "human")]
    pub backoff_base: Duration,
    /// Cap of the exponential backoff.
    #[serde(with = "human")]
    pub backoff_cap: Duration,
    /// Highest ladder level tried (1..=6; 6 is browser fallback).
    pub max_level: u8,
    /// Matrix size used by "adjusted settings" (level 4).
    pub reduced_matrix_size: u32,
    /// `[recovery.first_rung]`: per failure class, the strategy its recovery starts with
    /// (`retry`, `new_session`, `restart_driver`, `adjusted_settings`, `other_worker`,
    /// `other_browser`) before climbing: a class that a retry never fixes can start higher.
    /// Classes left out keep their default (a transient error retries, a crash opens a new
    /// session, …), and the effective config writes every class out; `stressctl tune` suggests
    /// the strategy that recovered a class most often.
    pub first_rung: BTreeMap<String, String>,
    /// Whether work the adjusted-settings rung shrank (a reduced `webgpu` matrix, a lighter model
    /// setting) counts towards a phase's criteria and the campaign verdict. It is reported as
    /// degraded either way; by default it does not count, since it is not the work configured.
    pub degraded_counts_as_pass: bool,
}

impl RecoveryConfig {
    /// The built-in first rung of each class that is recovered at all.
    pub fn default_first_rungs() -> BTreeMap<String, String> {
        FailureClass::ALL.into_iter().filter_map(|c| start_level(c).map(|s| (c.as_str().to_string(), s.as_str().to_string()))).collect()
    }

    /// Where a recovery from `class` starts (None: the class is not recovered).
    pub fn first_rung(&self, class: FailureClass) -> Option<Strategy> {
        let default = start_level(class)?;
        Some(self.first_rung.get(class.as_str()).and_then(|s| Strategy::parse(s)).unwrap_or(default))
    }
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(5),
            max_level: 6,
            reduced_matrix_size: 32,
            first_rung: RecoveryConfig::default_first_rungs(),
            degraded_counts_as_pass: false,
        }
    }
}

/// The live dashboard: the `[dashboard]` table as written (absent keys take
/// [`DashboardConfig::default`]); `launch --dashboard [ADDR]` and `--dashboard-token` override it.
/// Ranges in `validate.rs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardConfig {
    /// Serve the dashboard with every `launch`, without `--dashboard`.
    pub enabled: bool,
    /// `IP:PORT` (or `localhost:PORT`; port 0 picks a free one).
    pub listen: String,
    /// Name of the environment variable that holds the bearer token: the way to keep the secret
    /// out of the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// The bearer token itself. Never written out (`check --print-config`, the campaign's store):
    /// a resumed campaign needs it again, from `token_env` or `--dashboard-token`.
    #[serde(skip_serializing)]
    pub token: Option<String>,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig { enabled: false, listen: crate::config::addr::DEFAULT_ADDR.to_string(), token_env: None, token: None }
    }
}

/// The test page server: the `[server]` table as written (absent keys take
/// [`ServerConfig::default`]). Checked in `validate.rs`: both addresses parse, and a worker on
/// another machine is refused a server that only this machine can reach.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `IP:PORT` the server binds (`localhost:PORT` allowed; port 0 picks a free one). Absent:
    /// `127.0.0.1:0`, only this machine's browsers can load the page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// The base URL browsers are given (`http://HOST[:PORT][/PATH]`), for a server behind a
    /// name or a forwarded port. Absent: derived from `listen` (its IP and bound port; for an
    /// unspecified IP such as `0.0.0.0`, this machine's address on the route to the first
    /// remote worker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
}

/// Selenium Grid workers: the `[grid]` table as written (absent keys take
/// [`GridConfig::default`]). Ranges in `validate.rs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GridConfig {
    /// How long a phase that asks for more sessions than its Grids have free slots waits for
    /// slots to appear (an autoscaler adding nodes) before it runs with the slots there are.
    /// 0 (the default): no wait, the phase is capped at the free slots at once.
    #[serde(with = "human")]
    pub capacity_wait: Duration,
    /// The environment variable holding the hubs' registration secret (`--registration-secret`),
    /// which a hub asks for before it cancels a queued new-session request. Absent: the hubs
    /// have none. The secret itself is never written to the config, the store or a report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_secret_env: Option<String>,
}

impl Default for GridConfig {
    fn default() -> Self {
        GridConfig { capacity_wait: Duration::ZERO, registration_secret_env: None }
    }
}

impl GridConfig {
    /// The registration secret to send (empty when none is configured or the variable is unset:
    /// a hub with no secret accepts an empty one).
    pub fn registration_secret(&self) -> String {
        self.registration_secret_env.as_deref().and_then(|v| std::env::var(v).ok()).unwrap_or_default()
    }
}

/// What the log files say: the `[logging]` table as written (absent keys take
/// [`LoggingConfig::default`]). Ranges in `validate.rs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// How often the campaign log gets a progress line for the running phase. A quiet overnight
    /// phase must still show in `tail -f` that it is alive and how it fares.
    #[serde(with = "human")]
    pub progress_interval: Duration,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig { progress_interval: Duration::from_secs(30) }
    }
}

/// Breaker configs per scope. Each of the nine settings, its default and its range is defined
/// once, by [`BreakerConfig`]; `raw::BreakerDef` only spells it in TOML. Serialized as the
/// `[breaker.worker]`, `[breaker.browser]`, `[breaker.task]` and `[breaker.hardware]` tables, every key explicit.
#[derive(Clone, Debug, PartialEq, Default, Serialize)]
pub struct BreakersConfig {
    /// `worker:<id>`.
    #[serde(with = "raw::BreakerDef")]
    pub worker: BreakerConfig,
    /// `browser:<name>`.
    #[serde(with = "raw::BreakerDef")]
    pub browser: BreakerConfig,
    /// `task:<kind>`.
    #[serde(with = "raw::BreakerDef")]
    pub task: BreakerConfig,
    /// `hardware:<class>`: the GPU adapter class a worker's sessions reported.
    #[serde(with = "raw::BreakerDef")]
    pub hardware: BreakerConfig,
}

/// Campaign-level settings: the `[campaign]` table as written (absent keys take
/// [`CampaignSettings::default`]) and the typed value; ranges in `validate.rs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignSettings {
    /// Display name.
    pub name: String,
    /// If set, phase durations were scaled to sum to this.
    #[serde(with = "human_opt", skip_serializing_if = "Option::is_none")]
    pub total_duration: Option<Duration>,
    /// Health-gated phase starts.
    pub progressive_escalation: bool,
    /// Health needed to start a phase as planned (0..=100).
    pub baseline_health_requirement: f64,
    /// How long a phase start may be delayed waiting for health.
    #[serde(with = "human")]
    pub escalation_delay: Duration,
    /// Halt after this many failing phases in a row.
    pub max_consecutive_failed_phases: u32,
    /// Fraction of phases that must pass.
    pub pass_phase_ratio: f64,
    /// Overall success rate needed.
    pub pass_success_rate: f64,
    /// Resume after a resource emergency stop once health recovers.
    pub auto_recovery: bool,
    /// Wait before trying to resume.
    #[serde(with = "human")]
    pub cooldown: Duration,
    /// Maximum auto-recoveries.
    pub max_auto_recoveries: u32,
    /// In-flight grace on a graceful stop.
    #[serde(with = "human")]
    pub grace_period: Duration,
    /// The shortest phase the report analyses for drift (trends of browser memory, in-page p95,
    /// GPU errors and failure rate); None: [`DRIFT_MIN_PHASE`]. Shorter phases have too few
    /// points for a trend worth a verdict.
    #[serde(with = "human_opt", skip_serializing_if = "Option::is_none")]
    pub drift_min_phase: Option<Duration>,
}

/// The default of `[campaign] drift_min_phase`: 5 minutes.
pub const DRIFT_MIN_PHASE: Duration = Duration::from_secs(300);

impl CampaignSettings {
    /// The shortest phase the drift analysis looks at.
    pub fn drift_min_phase(&self) -> Duration {
        self.drift_min_phase.unwrap_or(DRIFT_MIN_PHASE)
    }
}

impl Default for CampaignSettings {
    fn default() -> Self {
        CampaignSettings {
            name: "campaign".into(),
            total_duration: None,
            progressive_escalation: true,
            baseline_health_requirement: 70.0,
            escalation_delay: Duration::from_secs(60),
            max_consecutive_failed_phases: 3,
            pass_phase_ratio: 0.70,
            pass_success_rate: 0.90,
            auto_recovery: true,
            cooldown: Duration::from_secs(30 * 60),
            max_auto_recoveries: 2,
            grace_period: Duration::from_secs(5),
            drift_min_phase: None,
        }
    }
}
