//! Campaign configuration: TOML files and embedded profiles, parsed strictly
//! (`deny_unknown_fields`) and validated once into typed values.
//!
//! Every error names the source (file or embedded profile), the key and the allowed range, and is
//! raised before anything is started.

mod duration;
mod raw;

pub use duration::{fmt_duration, HumanDuration};

use crate::breaker::BreakerConfig;
use raw::*;
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The embedded `quick` profile: the eight-phase shape scaled to a few minutes (the default).
pub const QUICK_PROFILE: &str = include_str!("../../config/quick.toml");
/// The embedded `overnight` profile: the eight seed phases, 8–14 h (documented in `config/campaign.toml`).
pub const OVERNIGHT_PROFILE: &str = include_str!("../../config/campaign.toml");

/// A configuration error: where, which key, what is allowed. Exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax, unknown key or wrong type (the message names line, column and key).
    #[error("config error in {source_name}: {message}")]
    Parse {
        /// File name or `<profile NAME>`.
        source_name: String,
        /// The parser's message.
        message: String,
    },
    /// A value out of its allowed range.
    #[error("config error in {source_name}: `{key}` = {value}: {allowed}")]
    Invalid {
        /// File name or `<profile NAME>`.
        source_name: String,
        /// Dotted key, e.g. `phases[2].sessions`.
        key: String,
        /// The value found.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// Unknown profile name.
    #[error("unknown profile {0:?}: choose `quick` (a few minutes) or `overnight` (8–14 h)")]
    UnknownProfile(String),
}

/// How hard a phase pushes; decides its default success criteria.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StressLevel {
    /// 95 % / p95 < 2 s.
    Low,
    /// 90 % / p95 < 3 s.
    Moderate,
    /// 85 % / p95 < 5 s.
    High,
    /// 80 % / p95 < 8 s.
    Extreme,
}

impl StressLevel {
    /// Default criteria for this level.
    pub fn default_criteria(self) -> Criteria {
        let (rate, p95) = match self {
            StressLevel::Low => (0.95, 2_000),
            StressLevel::Moderate => (0.90, 3_000),
            StressLevel::High => (0.85, 5_000),
            StressLevel::Extreme => (0.80, 8_000),
        };
        Criteria { min_success_rate: rate, max_p95: Duration::from_millis(p95) }
    }
    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            StressLevel::Low => "low",
            StressLevel::Moderate => "moderate",
            StressLevel::High => "high",
            StressLevel::Extreme => "extreme",
        }
    }
}

/// Success criteria of a phase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Criteria {
    /// Minimum success rate (0..=1).
    pub min_success_rate: f64,
    /// p95 latency must be below this.
    pub max_p95: Duration,
}

/// Which task a phase runs.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskSpec {
    /// Matrix multiply on WebGPU, verified in the page against a CPU reference.
    Webgpu {
        /// Matrix size N (N×N).
        matrix_size: u32,
    },
    /// WebNN capability detection and a small graph where supported.
    Webnn,
    /// A user page: URL + async JS returning `{ok, metrics}`.
    Page {
        /// Page to open.
        url: String,
        /// Async script body; `done(result)` is available as the last argument.
        script: String,
    },
    /// No browser: latency and failure drawn from a distribution. Always labelled synthetic.
    Synthetic {
        /// Mean latency.
        latency: Duration,
        /// Uniform jitter added/subtracted around the mean.
        jitter: Duration,
        /// Probability that an op fails (0..=1).
        failure_probability: f64,
    },
}

impl TaskSpec {
    /// The task kind name used in keys and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            TaskSpec::Webgpu { .. } => "webgpu",
            TaskSpec::Webnn => "webnn",
            TaskSpec::Page { .. } => "page",
            TaskSpec::Synthetic { .. } => "synthetic",
        }
    }
    /// Whether this task needs a browser.
    pub fn needs_browser(&self) -> bool {
        !matches!(self, TaskSpec::Synthetic { .. })
    }
}

/// Resource thresholds (percent 1–100) applied by the guardian.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SafetyConfig {
    /// How often the guardian samples.
    #[serde(serialize_with = "ser_duration_ms")]
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
    #[serde(serialize_with = "ser_duration_ms")]
    pub max_campaign_duration: Duration,
    /// A browser whose process tree RSS exceeds this has its session recycled.
    pub max_browser_rss_bytes: Option<u64>,
    /// Percent of CPU and memory kept for the host: the campaign's cgroup is capped at the rest
    /// (0 = no cap). See `confine`.
    pub reserve_percent: u32,
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
        }
    }
}

/// Per-phase overrides of the thresholds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SafetyOverrides {
    /// Override of `memory_percent`.
    pub memory_percent: Option<f64>,
    /// Override of `cpu_percent`.
    pub cpu_percent: Option<f64>,
    /// Override of `disk_percent`.
    pub disk_percent: Option<f64>,
}

impl SafetyConfig {
    /// The thresholds with a phase's overrides applied.
    pub fn with_overrides(&self, o: &SafetyOverrides) -> SafetyConfig {
        SafetyConfig {
            memory_percent: o.memory_percent.unwrap_or(self.memory_percent),
            cpu_percent: o.cpu_percent.unwrap_or(self.cpu_percent),
            disk_percent: o.disk_percent.unwrap_or(self.disk_percent),
            ..self.clone()
        }
    }
}

/// One phase of a campaign.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseConfig {
    /// Name, e.g. `moderate-1`.
    pub name: String,
    /// Wall-time budget of the phase.
    pub duration: Duration,
    /// Concurrent sessions.
    pub sessions: u32,
    /// Optional cap of ops per session (the phase ends early when all sessions reach it).
    pub ops_per_session: Option<u64>,
    /// Pause between two ops of one session.
    pub think_time: Duration,
    /// Level (decides default criteria).
    pub stress_level: StressLevel,
    /// Criteria (defaults from the level).
    pub criteria: Criteria,
    /// Task of this phase.
    pub task: TaskSpec,
    /// Threshold overrides.
    pub safety: SafetyOverrides,
}

/// A WebDriver endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerConfig {
    /// Stable id (`worker:<id>` breaker key).
    pub id: String,
    /// Managed (spawned chromedriver) or remote URL.
    pub endpoint: WorkerEndpoint,
}

/// Where a worker's WebDriver lives.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkerEndpoint {
    /// stressctl spawns chromedriver on a free loopback port.
    Managed,
    /// An existing WebDriver URL (chromedriver, Selenium Grid).
    Remote(String),
}

/// Browser settings for sessions.
#[derive(Clone, Debug, PartialEq)]
pub struct BrowserConfig {
    /// The browser binary.
    pub chromium: PathBuf,
    /// The driver binary (managed workers).
    pub chromedriver: PathBuf,
    /// Run headless (default true).
    pub headless: bool,
    /// Extra arguments appended to the mandatory ones.
    pub extra_args: Vec<String>,
    /// Recycle a session after this many ops.
    pub max_ops_per_session: u64,
    /// Time limit of a single op.
    pub op_timeout: Duration,
    /// Time limit for opening a session (browser launch).
    pub session_timeout: Duration,
}

/// A fault to inject on purpose.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// What to do.
    pub kind: FaultKind,
    /// When.
    pub schedule: FaultSchedule,
    /// Only on this worker.
    pub worker: Option<String>,
    /// Only in these phases (names); empty = all.
    pub phases: Vec<String>,
    /// For `kill_driver`: the driver cannot be restarted.
    pub permanent: bool,
}

/// Fault kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// SIGKILL a browser process.
    KillBrowser,
    /// SIGKILL a driver process.
    KillDriver,
    /// Hold the page past the op timeout.
    Hang,
    /// Throw in the page.
    Throw,
    /// Destroy the GPU device mid-task.
    GpuDeviceLost,
}

impl FaultKind {
    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::KillBrowser => "kill_browser",
            FaultKind::KillDriver => "kill_driver",
            FaultKind::Hang => "hang",
            FaultKind::Throw => "throw",
            FaultKind::GpuDeviceLost => "gpu_device_lost",
        }
    }
}

/// When a fault fires.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FaultSchedule {
    /// Every interval while an eligible phase runs.
    Every(Duration),
    /// With this probability per op.
    Probability(f64),
}

/// Recovery / retry settings.
#[derive(Clone, Debug, PartialEq)]
pub struct RecoveryConfig {
    /// Base of the exponential backoff.
    pub backoff_base: Duration,
    /// Cap of the exponential backoff.
    pub backoff_cap: Duration,
    /// Highest ladder level tried (1..=5).
    pub max_level: u8,
    /// Matrix size used by "adjusted settings" (level 4).
    pub reduced_matrix_size: u32,
}

/// Breaker configs per scope.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BreakersConfig {
    /// `worker:<id>`.
    pub worker: BreakerConfig,
    /// `browser:<name>`.
    pub browser: BreakerConfig,
    /// `task:<kind>`.
    pub task: BreakerConfig,
}

/// Campaign-level settings.
#[derive(Clone, Debug, PartialEq)]
pub struct CampaignSettings {
    /// Display name.
    pub name: String,
    /// If set, phase durations were scaled to sum to this.
    pub total_duration: Option<Duration>,
    /// Health-gated phase starts.
    pub progressive_escalation: bool,
    /// Health needed to start a phase as planned (0..=100).
    pub baseline_health_requirement: f64,
    /// How long a phase start may be delayed waiting for health.
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
    pub cooldown: Duration,
    /// Maximum auto-recoveries.
    pub max_auto_recoveries: u32,
    /// In-flight grace on a graceful stop.
    pub grace_period: Duration,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where it came from (file path or `<profile quick>`).
    pub source: String,
    /// Profile name (`quick`, `overnight`, or the file's `[campaign] name`).
    pub profile: String,
    /// Campaign-level settings.
    pub campaign: CampaignSettings,
    /// Browser settings.
    pub browser: BrowserConfig,
    /// Guardian thresholds.
    pub safety: SafetyConfig,
    /// Breakers.
    pub breakers: BreakersConfig,
    /// Recovery.
    pub recovery: RecoveryConfig,
    /// Workers (at least one).
    pub workers: Vec<WorkerConfig>,
    /// Phases (at least one).
    pub phases: Vec<PhaseConfig>,
    /// Faults to inject.
    pub faults: Vec<FaultConfig>,
    /// The source text (stored with the campaign so resume uses the same config).
    pub text: String,
}

impl Config {
    /// Loads the config from a file, or the named profile (default `quick`).
    pub fn load(file: Option<&Path>, profile: Option<&str>) -> Result<Config, ConfigError> {
        match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
                Config::parse(&text, &path.display().to_string())
            }
            None => {
                let name = profile.unwrap_or("quick");
                let text = match name {
                    "quick" => QUICK_PROFILE,
                    "overnight" => OVERNIGHT_PROFILE,
                    other => return Err(ConfigError::UnknownProfile(other.to_string())),
                };
                let mut c = Config::parse(text, &format!("<profile {name}>"))?;
                c.profile = name.to_string();
                Ok(c)
            }
        }
    }

    /// Replaces the `[safety]` table with the one in `path` (`launch --safety FILE`).
    pub fn apply_safety_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let src = path.display().to_string();
        let raw: RawSafetyFile =
            toml::from_str(&text).map_err(|e| ConfigError::Parse { source_name: src.clone(), message: e.to_string() })?;
        let v = Validator { src: &src };
        self.safety = v.safety(&raw.safety.unwrap_or_default())?;
        // keep the text of the override with the campaign for resume
        self.text.push_str("\n# --safety ");
        self.text.push_str(&src);
        self.text.push('\n');
        Ok(())
    }

    /// Parses and validates config text.
    pub fn parse(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Parse { source_name: source_name.to_string(), message: e.to_string() })?;
        Validator { src: source_name }.config(raw, text)
    }

    /// The thresholds in force for phase `i`.
    pub fn phase_safety(&self, i: usize) -> SafetyConfig {
        match self.phases.get(i) {
            Some(p) => self.safety.with_overrides(&p.safety),
            None => self.safety.clone(),
        }
    }

    /// Sum of the phase durations.
    pub fn planned_duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// Whether any phase needs a browser.
    pub fn needs_browser(&self) -> bool {
        self.phases.iter().any(|p| p.task.needs_browser())
    }
}

struct Validator<'a> {
    src: &'a str,
}

impl Validator<'_> {
    fn err(&self, key: impl Into<String>, value: impl fmt::Display, allowed: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { source_name: self.src.to_string(), key: key.into(), value: value.to_string(), allowed: allowed.into() }
    }

    fn percent(&self, key: &str, v: Option<f64>, default: f64) -> Result<f64, ConfigError> {
        let v = v.unwrap_or(default);
        if !(1.0..=100.0).contains(&v) || !v.is_finite() {
            return Err(self.err(key, v, "must be a percentage from 1 to 100"));
        }
        Ok(v)
    }

    fn fraction(&self, key: &str, v: Option<f64>, default: f64) -> Result<f64, ConfigError> {
        let v = v.unwrap_or(default);
        if !(0.0..=1.0).contains(&v) || !v.is_finite() {
            return Err(self.err(key, v, "must be a fraction from 0.0 to 1.0"));
        }
        Ok(v)
    }

    fn dur(&self, key: &str, v: Option<HumanDuration>, default: Duration, min: Duration, max: Duration) -> Result<Duration, ConfigError> {
        let d = v.map(|h| h.0).unwrap_or(default);
        if d < min || d > max {
            return Err(self.err(
                key,
                format!("\"{}\"", fmt_duration(d)),
                format!("must be from {} to {}", fmt_duration(min), fmt_duration(max)),
            ));
        }
        Ok(d)
    }

    fn int<T: Copy + PartialOrd + fmt::Display>(&self, key: &str, v: Option<T>, default: T, min: T, max: T) -> Result<T, ConfigError> {
        let v = v.unwrap_or(default);
        if v < min || v > max {
            return Err(self.err(key, v, format!("must be from {min} to {max}")));
        }
        Ok(v)
    }

    fn config(&self, raw: RawConfig, text: &str) -> Result<Config, ConfigError> {
        let rc = raw.campaign.unwrap_or_default();
        let hour = Duration::from_secs(3600);
        let day = 24 * hour;
        let campaign = CampaignSettings {
            name: rc.name.clone().unwrap_or_else(|| "campaign".into()),
            total_duration: match rc.total_duration {
                Some(d) => Some(self.dur("campaign.total_duration", Some(d), d.0, Duration::from_secs(1), 7 * day)?),
                None => None,
            },
            progressive_escalation: rc.progressive_escalation.unwrap_or(true),
            baseline_health_requirement: {
                let v = rc.baseline_health_requirement.unwrap_or(70.0);
                if !(0.0..=100.0).contains(&v) {
                    return Err(self.err("campaign.baseline_health_requirement", v, "must be a health score from 0 to 100"));
                }
                v
            },
            escalation_delay: self.dur("campaign.escalation_delay", rc.escalation_delay, Duration::from_secs(60), Duration::ZERO, day)?,
            max_consecutive_failed_phases: self.int(
                "campaign.max_consecutive_failed_phases",
                rc.max_consecutive_failed_phases,
                3,
                1,
                100,
            )?,
            pass_phase_ratio: self.fraction("campaign.pass_phase_ratio", rc.pass_phase_ratio, 0.70)?,
            pass_success_rate: self.fraction("campaign.pass_success_rate", rc.pass_success_rate, 0.90)?,
            auto_recovery: rc.auto_recovery.unwrap_or(true),
            cooldown: self.dur("campaign.cooldown", rc.cooldown, Duration::from_secs(30 * 60), Duration::ZERO, day)?,
            max_auto_recoveries: self.int("campaign.max_auto_recoveries", rc.max_auto_recoveries, 2, 0, 100)?,
            grace_period: self.dur(
                "campaign.grace_period",
                rc.grace_period,
                Duration::from_secs(5),
                Duration::ZERO,
                Duration::from_secs(600),
            )?,
        };

        let rb = raw.browser.unwrap_or_default();
        let browser = BrowserConfig {
            chromium: rb.chromium.unwrap_or_else(|| PathBuf::from("/usr/bin/chromium")),
            chromedriver: rb.chromedriver.unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver")),
            headless: rb.headless.unwrap_or(true),
            extra_args: rb.extra_args.unwrap_or_default(),
            max_ops_per_session: self.int("browser.max_ops_per_session", rb.max_ops_per_session, 1000, 1, u64::MAX)?,
            op_timeout: self.dur("browser.op_timeout", rb.op_timeout, Duration::from_secs(30), Duration::from_millis(100), hour)?,
            session_timeout: self.dur(
                "browser.session_timeout",
                rb.session_timeout,
                Duration::from_secs(60),
                Duration::from_secs(1),
                hour,
            )?,
        };
        for (i, a) in browser.extra_args.iter().enumerate() {
            if a.starts_with("--user-data-dir") || a.starts_with("--remote-debugging") {
                return Err(self.err(
                    format!("browser.extra_args[{i}]"),
                    a,
                    "stressctl sets --user-data-dir and debugging flags itself; remove it",
                ));
            }
        }

        let safety = self.safety(&raw.safety.unwrap_or_default())?;
        let breakers = self.breakers(raw.breaker.unwrap_or_default())?;

        let rr = raw.recovery.unwrap_or_default();
        let recovery = RecoveryConfig {
            backoff_base: self.dur(
                "recovery.backoff_base",
                rr.backoff_base,
                Duration::from_millis(100),
                Duration::from_millis(1),
                Duration::from_secs(60),
            )?,
            backoff_cap: self.dur(
                "recovery.backoff_cap",
                rr.backoff_cap,
                Duration::from_secs(5),
                Duration::from_millis(1),
                Duration::from_secs(600),
            )?,
            max_level: self.int("recovery.max_level", rr.max_level, 5, 1, 5)?,
            reduced_matrix_size: self.int("recovery.reduced_matrix_size", rr.reduced_matrix_size, 32, 4, 4096)?,
        };

        // workers
        let mut workers = Vec::new();
        let raw_workers = raw.workers.unwrap_or_default();
        if raw_workers.is_empty() {
            workers.push(WorkerConfig { id: "local".into(), endpoint: WorkerEndpoint::Managed });
        }
        for (i, w) in raw_workers.into_iter().enumerate() {
            let key = format!("workers[{i}]");
            if w.id.is_empty() || !w.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(self.err(format!("{key}.id"), format!("{:?}", w.id), "must be non-empty, letters, digits, '-' or '_'"));
            }
            if workers.iter().any(|x: &WorkerConfig| x.id == w.id) {
                return Err(self.err(format!("{key}.id"), format!("{:?}", w.id), "must be unique"));
            }
            let endpoint = match (w.managed.unwrap_or(false), w.url) {
                (true, None) => WorkerEndpoint::Managed,
                (false, Some(u)) => {
                    if !(u.starts_with("http://") || u.starts_with("https://")) {
                        return Err(self.err(format!("{key}.url"), format!("{u:?}"), "must be an http:// or https:// WebDriver URL"));
                    }
                    WorkerEndpoint::Remote(u)
                }
                (true, Some(_)) => return Err(self.err(&key, "managed = true and url", "give either `managed = true` or `url`, not both")),
                (false, None) => {
                    return Err(self.err(&key, "neither managed nor url", "give `managed = true` or `url = \"http://127.0.0.1:PORT\"`"))
                }
            };
            workers.push(WorkerConfig { id: w.id, endpoint });
        }

        // default task
        let default_task = self.task("task", raw.task.as_ref())?;

        // phases
        let raw_phases = raw.phases.unwrap_or_default();
        if raw_phases.is_empty() {
            return Err(self.err("phases", "[]", "at least one [[phases]] entry is required"));
        }
        let mut phases = Vec::with_capacity(raw_phases.len());
        for (i, p) in raw_phases.into_iter().enumerate() {
            let key = format!("phases[{i}]");
            if p.name.trim().is_empty() {
                return Err(self.err(format!("{key}.name"), "\"\"", "must be a non-empty name"));
            }
            if phases.iter().any(|x: &PhaseConfig| x.name == p.name) {
                return Err(self.err(format!("{key}.name"), format!("{:?}", p.name), "phase names must be unique"));
            }
            let level = p.stress_level.unwrap_or(StressLevel::Moderate);
            let mut criteria = level.default_criteria();
            if let Some(c) = &p.criteria {
                if let Some(r) = c.min_success_rate {
                    criteria.min_success_rate = self.fraction(&format!("{key}.criteria.min_success_rate"), Some(r), 0.0)?;
                }
                if let Some(d) = c.max_p95 {
                    criteria.max_p95 = self.dur(&format!("{key}.criteria.max_p95"), Some(d), d.0, Duration::from_millis(1), hour)?;
                }
            }
            let task = match &p.task {
                Some(t) => self.task(&format!("{key}.task"), Some(t))?,
                None => default_task.clone(),
            };
            let ps = p.safety.unwrap_or_default();
            let safety = SafetyOverrides {
                memory_percent: ps.memory_percent.map(|v| self.percent(&format!("{key}.safety.memory_percent"), Some(v), v)).transpose()?,
                cpu_percent: ps.cpu_percent.map(|v| self.percent(&format!("{key}.safety.cpu_percent"), Some(v), v)).transpose()?,
                disk_percent: ps.disk_percent.map(|v| self.percent(&format!("{key}.safety.disk_percent"), Some(v), v)).transpose()?,
            };
            phases.push(PhaseConfig {
                name: p.name,
                duration: self.dur(&format!("{key}.duration"), Some(p.duration), p.duration.0, Duration::from_secs(1), 2 * day)?,
                sessions: self.int(&format!("{key}.sessions"), Some(p.sessions), 1, 1, 64)?,
                ops_per_session: match p.ops_per_session {
                    Some(n) => Some(self.int(&format!("{key}.ops_per_session"), Some(n), 1, 1, u64::MAX)?),
                    None => None,
                },
                think_time: self.dur(&format!("{key}.think_time"), p.think_time, Duration::ZERO, Duration::ZERO, hour)?,
                stress_level: level,
                criteria,
                task,
                safety,
            });
        }

        // fit phases into total_duration
        if let Some(total) = campaign.total_duration {
            let planned: f64 = phases.iter().map(|p| p.duration.as_secs_f64()).sum();
            let scale = total.as_secs_f64() / planned;
            for p in &mut phases {
                p.duration = Duration::from_secs_f64((p.duration.as_secs_f64() * scale).max(1.0));
            }
        }
        let total: Duration = phases.iter().map(|p| p.duration).sum();
        if total > safety.max_campaign_duration {
            return Err(self.err(
                "safety.max_campaign_duration",
                format!("\"{}\"", fmt_duration(safety.max_campaign_duration)),
                format!("the phases add up to {}: raise max_campaign_duration or set campaign.total_duration", fmt_duration(total)),
            ));
        }

        // faults
        let mut faults = Vec::new();
        for (i, f) in raw.faults.unwrap_or_default().into_iter().enumerate() {
            let key = format!("faults[{i}]");
            let schedule = match (f.every, f.probability) {
                (Some(d), None) => {
                    FaultSchedule::Every(self.dur(&format!("{key}.every"), Some(d), d.0, Duration::from_millis(100), day)?)
                }
                (None, Some(p)) => {
                    if !(p > 0.0 && p <= 1.0) {
                        return Err(self.err(format!("{key}.probability"), p, "must be in (0, 1] (per op)"));
                    }
                    FaultSchedule::Probability(p)
                }
                _ => return Err(self.err(&key, "schedule", "give exactly one of `every = \"20s\"` or `probability = 0.05`")),
            };
            if let Some(w) = &f.worker {
                if !workers.iter().any(|x| &x.id == w) {
                    return Err(self.err(
                        format!("{key}.worker"),
                        format!("{w:?}"),
                        format!("must name a [[workers]] id ({})", workers.iter().map(|w| w.id.as_str()).collect::<Vec<_>>().join(", ")),
                    ));
                }
            }
            for ph in &f.phases.clone().unwrap_or_default() {
                if !phases.iter().any(|p| &p.name == ph) {
                    return Err(self.err(format!("{key}.phases"), format!("{ph:?}"), "must name phases of this campaign"));
                }
            }
            let permanent = f.permanent.unwrap_or(false);
            if permanent && f.kind != FaultKind::KillDriver {
                return Err(self.err(format!("{key}.permanent"), "true", "only applies to kind = \"kill_driver\""));
            }
            faults.push(FaultConfig { kind: f.kind, schedule, worker: f.worker, phases: f.phases.unwrap_or_default(), permanent });
        }

        Ok(Config {
            source: self.src.to_string(),
            profile: rc.name.unwrap_or_else(|| "custom".into()),
            campaign,
            browser,
            safety,
            breakers,
            recovery,
            workers,
            phases,
            faults,
            text: text.to_string(),
        })
    }

    fn safety(&self, s: &RawSafety) -> Result<SafetyConfig, ConfigError> {
        let d = SafetyConfig::default();
        Ok(SafetyConfig {
            sample_interval: self.dur(
                "safety.sample_interval",
                s.sample_interval,
                d.sample_interval,
                Duration::from_millis(250),
                Duration::from_secs(3600),
            )?,
            memory_percent: self.percent("safety.memory_percent", s.memory_percent, d.memory_percent)?,
            cpu_percent: self.percent("safety.cpu_percent", s.cpu_percent, d.cpu_percent)?,
            disk_percent: self.percent("safety.disk_percent", s.disk_percent, d.disk_percent)?,
            consecutive_violations: self.int(
                "safety.consecutive_violations",
                s.consecutive_violations,
                d.consecutive_violations,
                1,
                1000,
            )?,
            max_campaign_duration: self.dur(
                "safety.max_campaign_duration",
                s.max_campaign_duration,
                d.max_campaign_duration,
                Duration::from_secs(1),
                Duration::from_secs(7 * 24 * 3600),
            )?,
            max_browser_rss_bytes: match s.max_browser_rss_mb {
                Some(mb) => Some(self.int("safety.max_browser_rss_mb", Some(mb), 1, 64, 1 << 20)? * 1024 * 1024),
                None => None,
            },
            reserve_percent: self.int("safety.reserve_percent", s.reserve_percent, d.reserve_percent, 0, 90)?,
        })
    }

    fn breakers(&self, b: RawBreakers) -> Result<BreakersConfig, ConfigError> {
        let base = self.breaker("breaker", &b.defaults(), BreakerConfig::default())?;
        Ok(BreakersConfig {
            worker: self.breaker("breaker.worker", &b.worker.unwrap_or_default(), base.clone())?,
            browser: self.breaker("breaker.browser", &b.browser.unwrap_or_default(), base.clone())?,
            task: self.breaker("breaker.task", &b.task.unwrap_or_default(), base)?,
        })
    }

    fn breaker(&self, key: &str, r: &RawBreaker, base: BreakerConfig) -> Result<BreakerConfig, ConfigError> {
        let c = BreakerConfig {
            failure_threshold: r.failure_threshold.unwrap_or(base.failure_threshold),
            failure_rate_threshold: r.failure_rate_threshold.unwrap_or(base.failure_rate_threshold),
            window_size: r.window_size.unwrap_or(base.window_size),
            minimum_calls: r.minimum_calls.unwrap_or(base.minimum_calls),
            recovery_timeout: r.recovery_timeout.map(|d| d.0).unwrap_or(base.recovery_timeout),
            backoff_factor: r.backoff_factor.unwrap_or(base.backoff_factor),
            max_recovery_timeout: r.max_recovery_timeout.map(|d| d.0).unwrap_or(base.max_recovery_timeout),
            half_open_max_calls: r.half_open_max_calls.unwrap_or(base.half_open_max_calls),
            success_threshold: r.success_threshold.unwrap_or(base.success_threshold),
        };
        c.validate().map_err(|m| self.err(key, "table", m))?;
        Ok(c)
    }

    fn task(&self, key: &str, t: Option<&RawTask>) -> Result<TaskSpec, ConfigError> {
        let Some(t) = t else {
            return Ok(TaskSpec::Webgpu { matrix_size: 128 });
        };
        let kind = t.kind.as_deref().unwrap_or("webgpu");
        let check_unused = |name: &str, present: bool, for_kind: &str| -> Result<(), ConfigError> {
            if present {
                Err(self.err(format!("{key}.{name}"), "set", format!("only applies to kind = \"{for_kind}\"")))
            } else {
                Ok(())
            }
        };
        match kind {
            "webgpu" => {
                check_unused("url", t.url.is_some(), "page")?;
                check_unused("failure_probability", t.failure_probability.is_some(), "synthetic")?;
                Ok(TaskSpec::Webgpu { matrix_size: self.int(&format!("{key}.matrix_size"), t.matrix_size, 128, 4, 2048)? })
            }
            "webnn" => Ok(TaskSpec::Webnn),
            "page" => {
                let url =
                    t.url.clone().ok_or_else(|| self.err(format!("{key}.url"), "missing", "kind = \"page\" needs url = \"http://…\""))?;
                if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("file://")) {
                    return Err(self.err(format!("{key}.url"), format!("{url:?}"), "must be an http://, https:// or file:// URL"));
                }
                let script = t.script.clone().ok_or_else(|| {
                    self.err(format!("{key}.script"), "missing", "kind = \"page\" needs script = \"…\" (async JS resolving {ok, metrics})")
                })?;
                Ok(TaskSpec::Page { url, script })
            }
            "synthetic" => {
                check_unused("url", t.url.is_some(), "page")?;
                let latency =
                    self.dur(&format!("{key}.latency"), t.latency, Duration::from_millis(2), Duration::ZERO, Duration::from_secs(600))?;
                let jitter = self.dur(&format!("{key}.jitter"), t.jitter, Duration::ZERO, Duration::ZERO, Duration::from_secs(600))?;
                if jitter > latency {
                    return Err(self.err(format!("{key}.jitter"), format!("\"{}\"", fmt_duration(jitter)), "must not exceed latency"));
                }
                Ok(TaskSpec::Synthetic {
                    latency,
                    jitter,
                    failure_probability: self.fraction(&format!("{key}.failure_probability"), t.failure_probability, 0.0)?,
                })
            }
            other => {
                Err(self.err(format!("{key}.kind"), format!("{other:?}"), "must be one of \"webgpu\", \"webnn\", \"page\", \"synthetic\""))
            }
        }
    }
}

fn ser_duration_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl SafetyConfig {
    /// The guardian's thresholds.
    pub fn thresholds(&self) -> crate::guardian::Thresholds {
        crate::guardian::Thresholds {
            memory_percent: self.memory_percent,
            cpu_percent: self.cpu_percent,
            disk_percent: self.disk_percent,
            consecutive_violations: self.consecutive_violations,
        }
    }
}

#[cfg(test)]
mod tests;
