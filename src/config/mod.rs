//! Campaign configuration: TOML files and embedded profiles, parsed strictly
//! (`deny_unknown_fields`) and validated once into typed values.
//!
//! Every error names the source (file or embedded profile), the key and the allowed range, and is
//! raised before anything is started. A profile and a file combine in layers (`layer.rs`): the
//! profile is the base and the file's keys override it, and an error names the layer its key
//! came from. The validated [`Config`] serializes back to a complete TOML document
//! ([`Config::to_toml`], `stressctl check --print-config`) that parses to the same values.
//!
//! Where each part lives: the settings tables (one struct each, defaults included) in
//! `settings.rs`, the TOML shape of the structural entries in `raw.rs`, the checks in
//! `validate.rs` and `faults.rs` (the `[[faults]]` entries and their warnings), the merging of
//! layers in `layer.rs`, durations in `duration.rs`.

pub mod addr;
mod browsers;
mod duration;
mod faults;
mod layer;
mod model;
mod notify;
mod raw;
mod settings;
mod validate;
mod validator;

pub use browsers::{AdapterChoice, BrowserKind, BrowserPreference, PREFERENCE_KEYS};
pub use duration::HumanDuration;
pub use model::{Degraded, InputSpec, ModelTask, Provider, Setting, Tolerance, DEFAULT_ORT_DIR};
pub use notify::{NotifyConfig, NotifyOn};
pub use settings::{
    BreakersConfig, BrowserConfig, CampaignSettings, DashboardConfig, GridConfig, LoggingConfig, RecoveryConfig, SafetyConfig,
    SafetyOverrides, ServerConfig, UnwatchedNode, DRIFT_MIN_PHASE,
};

use duration::{human, human_opt};
use raw::{RawConfig, RawSafetyFile};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The embedded `quick` profile: the eight-phase shape scaled to a few minutes (the default).
pub const QUICK_PROFILE: &str = include_str!("../../config/quick.toml");
/// The embedded `overnight` profile: the eight seed phases, 8–14 h (documented in `config/campaign.toml`).
pub const OVERNIGHT_PROFILE: &str = include_str!("../../config/campaign.toml");
/// The embedded `capacity` profile: a warm-up, then a capacity search of the WebGPU workload
/// (`config/capacity.toml`): how many sessions it holds on this machine.
pub const CAPACITY_PROFILE: &str = include_str!("../../config/capacity.toml");

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
        /// File name or `<profile NAME>`: the layer the key came from.
        source_name: String,
        /// Dotted key, e.g. `phases[2].sessions`.
        key: String,
        /// The value found.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// Unknown profile name.
    #[error(
        "unknown profile {0:?}: choose `quick` (a few minutes), `overnight` (8–14 h) or `capacity` (a capacity search, a few minutes)"
    )]
    UnknownProfile(String),
    /// The validated config could not be written back as TOML (a bug: every value read from TOML
    /// can be written as TOML).
    #[error("cannot write the effective config of {source_name} as TOML: {message} (please report this)")]
    Render {
        /// Where the config came from.
        source_name: String,
        /// The serializer's message.
        message: String,
    },
}

/// How hard a phase pushes; decides its default success criteria.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
        Criteria {
            min_success_rate: rate,
            max_p95: Duration::from_millis(p95),
            max_rss_growth_mb_per_h: None,
            max_p95_drift_pct_per_h: None,
        }
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
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Criteria {
    /// Minimum success rate (0..=1).
    pub min_success_rate: f64,
    /// p95 latency must be below this.
    #[serde(with = "human")]
    pub max_p95: Duration,
    /// Browser memory growth per session, MiB per hour: the phase fails when the whole 95 %
    /// interval of the trend lies above it (None: not judged). Only phases of at least
    /// `[campaign] drift_min_phase` are analysed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rss_growth_mb_per_h: Option<f64>,
    /// In-page p95 drift, percent of the phase's median p95 per hour: judged like
    /// `max_rss_growth_mb_per_h` (None: not judged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_p95_drift_pct_per_h: Option<f64>,
}

/// Which task a phase runs. Serialized as the `[task]` table it is written as (`kind = "…"`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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
        #[serde(with = "human")]
        latency: Duration,
        /// Uniform jitter added/subtracted around the mean.
        #[serde(with = "human")]
        jitter: Duration,
        /// Probability that an op fails (0..=1).
        failure_probability: f64,
    },
    /// An ONNX model run by onnxruntime-web, each inference checked against the wasm provider.
    Model(ModelTask),
}

impl TaskSpec {
    /// The task kind name used in keys and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            TaskSpec::Webgpu { .. } => "webgpu",
            TaskSpec::Webnn => "webnn",
            TaskSpec::Page { .. } => "page",
            TaskSpec::Synthetic { .. } => "synthetic",
            TaskSpec::Model(_) => "model",
        }
    }
    /// The `[browser_preference]` keys that apply to this task, most specific first (a model's
    /// type, then the task kind).
    pub fn preference_keys(&self) -> Vec<&str> {
        match self {
            TaskSpec::Model(m) => match m.model.strip_prefix("builtin:") {
                Some(t) => vec![t, "model"],
                None => vec!["model"],
            },
            _ => vec![self.kind()],
        }
    }

    /// Whether its browsers load stressctl's own test page (from the page server): every browser
    /// task but `page`, which opens the user's URL.
    pub fn needs_page_server(&self) -> bool {
        !matches!(self, TaskSpec::Synthetic { .. } | TaskSpec::Page { .. })
    }

    /// Whether this task needs a browser.
    pub fn needs_browser(&self) -> bool {
        !matches!(self, TaskSpec::Synthetic { .. })
    }
}

/// One phase of a campaign. Serialized as the `[[phases]]` entry it is written as, every key
/// explicit (criteria and task included).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseConfig {
    /// Name, e.g. `moderate-1`.
    pub name: String,
    /// Wall-time budget of the phase.
    #[serde(with = "human")]
    pub duration: Duration,
    /// Concurrent sessions.
    pub sessions: u32,
    /// Optional cap of ops per session (the phase ends early when all sessions reach it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops_per_session: Option<u64>,
    /// Pause between two ops of one session.
    #[serde(with = "human")]
    pub think_time: Duration,
    /// Level (decides default criteria).
    pub stress_level: StressLevel,
    /// Criteria (defaults from the level).
    pub criteria: Criteria,
    /// Task of this phase.
    pub task: TaskSpec,
    /// Threshold overrides.
    #[serde(skip_serializing_if = "SafetyOverrides::is_empty")]
    pub safety: SafetyOverrides,
    /// Browsers to spread the sessions over (each has a configured worker); empty: the
    /// workers as ranked by health and `[browser_preference]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub browsers: Vec<BrowserKind>,
    /// The time limit of one op in this phase, over `[browser] op_timeout`: the phase's own
    /// `op_timeout`, else its task's (`[phases.task]`, or the `[task]` it inherits). Tasks differ
    /// by orders of magnitude (a model's inference against a small matmul), so one global limit
    /// is either too tight for one or too lax to catch a hang of the other. Written back as the
    /// phase's `op_timeout`.
    #[serde(with = "human_opt", skip_serializing_if = "Option::is_none")]
    pub op_timeout: Option<Duration>,
    /// `load` (the default: run `sessions` for `duration`) or `capacity` (search for the most
    /// sessions the phase's criteria hold at; see [`CapacitySpec`]). Written only for a
    /// capacity phase.
    #[serde(skip_serializing_if = "PhaseKind::is_load")]
    pub kind: PhaseKind,
    /// The search's shape, for a `capacity` phase (`[phases.capacity]`); None otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacitySpec>,
}

/// What a phase does with its sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    /// A fixed load: `sessions` for `duration`.
    #[default]
    Load,
    /// A capacity search: the question "how many sessions does this workload hold here?"
    /// answered by measurement instead of by reading a table of fixed phases.
    Capacity,
}

impl PhaseKind {
    /// For serde's `skip_serializing_if`: a load phase writes no `kind`.
    pub fn is_load(&self) -> bool {
        *self == PhaseKind::Load
    }
}

/// A capacity search (`kind = "capacity"`): from the phase's `sessions` up to `max_sessions`,
/// each step runs a count of sessions for `step_duration`, judged by the phase's criteria on what
/// it measured after its own `warmup`. Counts rise (by `step`, or doubling) until a step fails,
/// then the search bisects between the last passing and the first failing count. The phase's
/// `duration` is the whole search's budget.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CapacitySpec {
    /// The highest count tried.
    pub max_sessions: u32,
    /// Sessions added per rising step; 0 doubles the count (fewer steps to a far limit).
    pub step: u32,
    /// Time of one step, its warm-up included.
    #[serde(with = "human")]
    pub step_duration: Duration,
    /// Time at the start of each step that is not measured: sessions just opened and pages just
    /// loaded are not the workload's steady state.
    #[serde(with = "human")]
    pub warmup: Duration,
}

impl PhaseConfig {
    /// The time limit of one op of this phase: its own [`PhaseConfig::op_timeout`], else
    /// `global` (`[browser] op_timeout`).
    pub fn op_timeout_or(&self, global: Duration) -> Duration {
        self.op_timeout.unwrap_or(global)
    }
}

/// A WebDriver endpoint. Serialized as its `[[workers]]` entry (`raw.rs`).
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerConfig {
    /// Stable id (`worker:<id>` breaker key).
    pub id: String,
    /// Managed (spawned driver) or remote URL.
    pub endpoint: WorkerEndpoint,
    /// The browser its sessions run (and the `browser:<name>` breaker they count against).
    pub browser: BrowserKind,
    /// This worker's adapter choice, over `[browser] webgpu_adapter`.
    pub webgpu_adapter: Option<AdapterChoice>,
    /// Where the guardian scrapes the Prometheus node_exporter of the machine(s) this worker's
    /// browsers run on: a plain `http(s)` URL (the worker's one machine), or, on a Selenium Grid,
    /// a template whose `{host}` is filled with each node's host from the hub's `/status`. None:
    /// the worker's machines are not watched (a managed worker is this host, which the guardian
    /// watches anyway).
    pub node_metrics: Option<String>,
    /// This worker's overrides of the `[safety]` thresholds its nodes are judged by
    /// (`[workers.safety]`): a small node may need a lower memory limit than the orchestrator.
    pub safety: SafetyOverrides,
}

/// The placeholder of a `node_metrics` template that is filled with each Grid node's host.
pub const NODE_HOST_PLACEHOLDER: &str = "{host}";

impl WorkerConfig {
    /// Whether `node_metrics` is a per-node template (only a Selenium Grid has nodes to fill it).
    pub fn node_metrics_template(&self) -> bool {
        self.node_metrics.as_deref().is_some_and(|u| u.contains(NODE_HOST_PLACEHOLDER))
    }

    /// A managed Chromium worker: what runs when no `[[workers]]` are given.
    pub fn managed(id: &str) -> WorkerConfig {
        WorkerConfig {
            id: id.into(),
            endpoint: WorkerEndpoint::Managed,
            browser: BrowserKind::Chromium,
            webgpu_adapter: None,
            node_metrics: None,
            safety: SafetyOverrides::default(),
        }
    }
}

/// Where a worker's WebDriver lives.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkerEndpoint {
    /// stressctl spawns chromedriver on a free loopback port.
    Managed,
    /// An existing WebDriver URL (chromedriver, Selenium Grid): `http` or `https`, a host and a
    /// port in 1–65535, checked when the config is read.
    Remote(String),
}

/// A fault to inject on purpose. Serialized as its `[[faults]]` entry (`raw.rs`).
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
    /// For `exhaust_memory`: how much more memory (MiB) the session's renderers may take before
    /// their allocations fail ([`DEFAULT_EXHAUST_LIMIT_MB`] when not given).
    pub limit_mb: u32,
}

/// The `limit_mb` of an `exhaust_memory` fault when the entry gives none: enough to be a real
/// exhaustion for the test page, small enough for any host that runs a browser.
pub const DEFAULT_EXHAUST_LIMIT_MB: u32 = 256;

/// Fault kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Make the page allocate until the renderer's memory runs out (bounded by `limit_mb`).
    ExhaustMemory,
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
            FaultKind::ExhaustMemory => "exhaust_memory",
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

/// The validated configuration. Serializes as the complete TOML document of what will run
/// (every key explicit, defaults included), which parses back to the same values.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where it came from (file path, `<profile quick>`, or `<profile quick> + FILE` when a file
    /// was layered over a profile).
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
    /// Which browsers a task or model type prefers.
    pub browser_preference: BrowserPreference,
    /// The live dashboard.
    pub dashboard: DashboardConfig,
    /// The log files.
    pub logging: LoggingConfig,
    /// The test page server (`[server]`).
    pub server: ServerConfig,
    /// Selenium Grid workers (`[grid]`).
    pub grid: GridConfig,
    /// Workers (at least one).
    pub workers: Vec<WorkerConfig>,
    /// Phases (at least one).
    pub phases: Vec<PhaseConfig>,
    /// Faults to inject.
    pub faults: Vec<FaultConfig>,
    /// Where to send notifications (`[[notify]]`).
    pub notify: Vec<NotifyConfig>,
    /// The effective config as TOML ([`Config::to_toml`]), stored with the campaign so that
    /// resume and reports read back exactly what ran, whatever layers it was built from.
    pub text: String,
}

impl Serialize for Config {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("Config", 13)?;
        m.serialize_field("campaign", &self.campaign)?;
        m.serialize_field("browser", &self.browser)?;
        m.serialize_field("safety", &self.safety)?;
        m.serialize_field("breaker", &self.breakers)?;
        m.serialize_field("recovery", &self.recovery)?;
        m.serialize_field("browser_preference", &self.browser_preference)?;
        if self.dashboard == DashboardConfig::default() {
            m.skip_field("dashboard")?;
        } else {
            m.serialize_field("dashboard", &self.dashboard)?;
        }
        if self.logging == LoggingConfig::default() {
            m.skip_field("logging")?;
        } else {
            m.serialize_field("logging", &self.logging)?;
        }
        if self.server == ServerConfig::default() {
            m.skip_field("server")?;
        } else {
            m.serialize_field("server", &self.server)?;
        }
        if self.grid == GridConfig::default() {
            m.skip_field("grid")?;
        } else {
            m.serialize_field("grid", &self.grid)?;
        }
        m.serialize_field("workers", &self.workers)?;
        m.serialize_field("phases", &self.phases)?;
        if self.faults.is_empty() {
            m.skip_field("faults")?;
        } else {
            m.serialize_field("faults", &self.faults)?;
        }
        if self.notify.is_empty() {
            m.skip_field("notify")?;
        } else {
            m.serialize_field("notify", &self.notify)?;
        }
        m.end()
    }
}

impl Serialize for WorkerConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        raw::RawWorker::from(self).serialize(s)
    }
}

impl Serialize for FaultConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        raw::RawFault::from(self).serialize(s)
    }
}

/// One config text and the name errors give it (a path or `<profile NAME>`).
struct Layer<'a> {
    name: String,
    text: &'a str,
}

impl Config {
    /// The browsers the configured workers run, each once, in report order.
    pub fn browsers(&self) -> Vec<BrowserKind> {
        BrowserKind::ALL.into_iter().filter(|k| self.workers.iter().any(|w| w.browser == *k)).collect()
    }

    /// Loads the config. With only `file`, the file alone; with only `profile` (default `quick`),
    /// that embedded profile; with both, the profile is the base and the file is layered over it:
    /// its tables and keys override the profile's, and its `[[phases]]`, `[[workers]]` and
    /// `[[faults]]` lists replace the profile's (see `layer.rs`).
    pub fn load(file: Option<&Path>, profile: Option<&str>) -> Result<Config, ConfigError> {
        Config::load_with_overlay(file, profile, None)
    }

    /// [`load`](Self::load) with `overlay` (its name for errors, its TOML text) layered over
    /// the profile and the file, by the same rules: `launch --tuned-from`'s overlay, whose keys
    /// win over the file's.
    pub fn load_with_overlay(file: Option<&Path>, profile: Option<&str>, overlay: Option<(&str, &str)>) -> Result<Config, ConfigError> {
        let base = match (file, profile) {
            (Some(_), None) => None,
            (_, name) => {
                let name = name.unwrap_or("quick");
                let text = match name {
                    "quick" => QUICK_PROFILE,
                    "overnight" => OVERNIGHT_PROFILE,
                    "capacity" => CAPACITY_PROFILE,
                    other => return Err(ConfigError::UnknownProfile(other.to_string())),
                };
                Some((name, text))
            }
        };
        let file_text = match file {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?),
            None => None,
        };
        let mut layers = Vec::new();
        if let Some((name, text)) = base {
            layers.push(Layer { name: format!("<profile {name}>"), text });
        }
        if let (Some(path), Some(text)) = (file, &file_text) {
            layers.push(Layer { name: path.display().to_string(), text });
        }
        if let Some((name, text)) = overlay {
            layers.push(Layer { name: name.to_string(), text });
        }
        let mut c = Config::parse_layers(&layers)?;
        if let Some((name, _)) = base {
            c.profile = name.to_string();
        }
        Ok(c)
    }

    /// Replaces the `[safety]` table with the one in `path` (`launch --safety FILE`); keys the
    /// file leaves out take their defaults.
    pub fn apply_safety_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let src = path.display().to_string();
        let raw: RawSafetyFile =
            toml::from_str(&text).map_err(|e| ConfigError::Parse { source_name: src.clone(), message: e.to_string() })?;
        let safety = raw.safety.unwrap_or_default();
        validator::Validator::single(&src).safety(&safety)?;
        self.safety = safety;
        // the stored text is what runs: resume keeps the override
        self.text = self.to_toml()?;
        Ok(())
    }

    /// Parses and validates config text.
    pub fn parse(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        Config::parse_layers(&[Layer { name: source_name.to_string(), text }])
    }

    /// Parses each layer strictly on its own (so syntax, unknown keys and wrong types are reported
    /// with the layer's name, line and column), merges them at the TOML value level and
    /// validates the result once.
    fn parse_layers(layers: &[Layer]) -> Result<Config, ConfigError> {
        let mut tables = Vec::with_capacity(layers.len());
        let mut raw = None;
        for l in layers {
            let parse_err = |e: toml::de::Error| ConfigError::Parse { source_name: l.name.clone(), message: e.to_string() };
            raw = Some(toml::from_str::<RawConfig>(l.text).map_err(parse_err)?);
            tables.push(l.text.parse::<toml::Table>().map_err(parse_err)?);
        }
        let source = layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(" + ");
        let merged = tables.iter().cloned().reduce(layer::merge).unwrap_or_default();
        let raw = match raw {
            Some(raw) if layers.len() == 1 => raw,
            _ => RawConfig::deserialize(merged.clone())
                .map_err(|e| ConfigError::Parse { source_name: source.clone(), message: e.to_string() })?,
        };
        let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        let origin = layer::Origin::new(&names, &tables);
        let mut c = validator::Validator::new(origin).config(raw)?;
        c.source = source;
        c.profile = match merged.get("campaign").and_then(|t| t.get("name")).and_then(|n| n.as_str()) {
            Some(name) => name.to_string(),
            None => "custom".into(),
        };
        c.text = c.to_toml()?;
        Ok(c)
    }

    /// The effective config as a complete TOML document: every key explicit (defaults, criteria
    /// and each phase's task included), phase durations as they will run. It parses back to the
    /// same values (`stressctl check --print-config`; stored with each campaign).
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        let body = toml::to_string(self).map_err(|e| ConfigError::Render { source_name: self.source.clone(), message: e.to_string() })?;
        Ok(format!("# effective config of {}: every key explicit, defaults included\n\n{body}", self.source))
    }

    /// Warnings about settings that are valid but cannot do what they say, one line each (e.g. a
    /// fault whose `every` is longer than the phases it applies to). The CLI prints them.
    pub fn warnings(&self) -> Vec<String> {
        faults::warnings(self)
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

    /// Whether any phase's browsers load stressctl's test page (see [`TaskSpec::needs_page_server`]).
    pub fn needs_page_server(&self) -> bool {
        self.phases.iter().any(|p| p.task.needs_page_server())
    }

    /// Whether any phase needs a browser.
    pub fn needs_browser(&self) -> bool {
        self.phases.iter().any(|p| p.task.needs_browser())
    }
}

#[cfg(test)]
mod tests;
