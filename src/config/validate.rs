//! The one validation of a parsed config: every range, every cross-key rule, each error naming
//! the layer the key came from, the key and what is allowed.
//!
//! The range of each setting of `[campaign]`, `[browser]`, `[safety]` and `[recovery]` is
//! written here once, beside no other statement of it (the fields and defaults are the typed
//! structs' own); the breaker settings are checked by [`BreakerConfig::validate`].

use super::raw::{BreakerTables, RawConfig, RawPhase, RawTask, RawWorker, BREAKER_SCOPES};
use super::validator::Validator;
use super::{
    BreakersConfig, BrowserConfig, BrowserKind, BrowserPreference, CampaignSettings, CapacitySpec, Config, ConfigError, PhaseConfig,
    PhaseKind, RecoveryConfig, SafetyConfig, SafetyOverrides, StressLevel, TaskSpec, WorkerConfig, WorkerEndpoint, PREFERENCE_KEYS,
};
use crate::breaker::BreakerConfig;
use crate::fmt::fmt_duration;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
/// The largest free-space floor, MiB (1 PiB): beyond any disk or memory stressctl will meet.
const MAX_FREE_MB: u64 = 1 << 30;
const DAY: Duration = Duration::from_secs(24 * 3600);
/// The range of every `op_timeout` (`[browser]`, `[task]`, `[[phases]]`, `[phases.task]`).
const OP_TIMEOUT_MIN: Duration = Duration::from_millis(100);
/// See [`OP_TIMEOUT_MIN`].
const OP_TIMEOUT_MAX: Duration = HOUR;

impl Validator<'_> {
    pub fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        self.campaign(&raw.campaign)?;
        self.browser(&raw.browser)?;
        self.safety(&raw.safety)?;
        let breakers = self.breakers(&raw.breaker)?;
        self.recovery(&raw.recovery)?;
        self.dashboard(&raw.dashboard)?;
        self.dur("logging.progress_interval", raw.logging.progress_interval, SEC, HOUR)?;
        let workers = self.workers(raw.workers.unwrap_or_default())?;
        let default_task = self.task("task", raw.task.as_ref())?;
        let default_timeout = self.op_timeout("task.op_timeout", raw.task.as_ref().and_then(|t| t.op_timeout))?;
        self.preference(&raw.browser_preference)?;
        let mut phases = self.phases(raw.phases.unwrap_or_default(), (&default_task, default_timeout), &workers)?;
        self.phase_sessions(raw.phase_sessions.unwrap_or_default(), &mut phases)?;
        self.fit(&mut phases, &raw.campaign, &raw.safety)?;
        self.server(&raw.server, &workers, phases.iter().any(|p| p.task.needs_page_server()))?;
        self.grid(&raw.grid)?;
        let faults = super::faults::validate(self, raw.faults.unwrap_or_default(), &workers, &phases)?;
        let notify = raw.notify.unwrap_or_default();
        super::notify::validate(self, &notify)?;
        Ok(Config {
            source: String::new(),
            profile: String::new(),
            campaign: raw.campaign,
            browser: raw.browser,
            safety: raw.safety,
            breakers,
            recovery: Self::first_rungs(raw.recovery),
            browser_preference: raw.browser_preference,
            dashboard: raw.dashboard,
            logging: raw.logging,
            server: raw.server,
            grid: raw.grid,
            workers,
            phases,
            faults,
            notify,
            text: String::new(),
        })
    }

    /// `[grid]`: `capacity_wait` within a day (0 allowed: no wait); `registration_secret_env` an
    /// environment variable name.
    fn grid(&self, g: &super::GridConfig) -> Result<(), ConfigError> {
        if g.capacity_wait > Duration::from_secs(24 * 3600) {
            return Err(self.err("grid.capacity_wait", fmt_duration(g.capacity_wait), "must be 0s..24h"));
        }
        if let Some(name) = &g.registration_secret_env {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self.err(
                    "grid.registration_secret_env",
                    format!("{name:?}"),
                    "must be an environment variable name (letters, digits, _)",
                ));
            }
        }
        Ok(())
    }

    fn campaign(&self, c: &CampaignSettings) -> Result<(), ConfigError> {
        if let Some(d) = c.total_duration {
            self.dur("campaign.total_duration", d, SEC, 7 * DAY)?;
        }
        if !(0.0..=100.0).contains(&c.baseline_health_requirement) {
            return Err(self.err(
                "campaign.baseline_health_requirement",
                c.baseline_health_requirement,
                "must be a health score from 0 to 100",
            ));
        }
        self.dur("campaign.escalation_delay", c.escalation_delay, Duration::ZERO, DAY)?;
        self.int("campaign.max_consecutive_failed_phases", c.max_consecutive_failed_phases, 1, 100)?;
        self.fraction("campaign.pass_phase_ratio", c.pass_phase_ratio)?;
        self.fraction("campaign.pass_success_rate", c.pass_success_rate)?;
        self.dur("campaign.cooldown", c.cooldown, Duration::ZERO, DAY)?;
        self.int("campaign.max_auto_recoveries", c.max_auto_recoveries, 0, 100)?;
        self.dur("campaign.grace_period", c.grace_period, Duration::ZERO, 10 * MINUTE)?;
        if let Some(d) = c.drift_min_phase {
            self.dur("campaign.drift_min_phase", d, SEC, 2 * DAY)?;
        }
        Ok(())
    }

    fn browser(&self, b: &BrowserConfig) -> Result<(), ConfigError> {
        self.int("browser.max_ops_per_session", b.max_ops_per_session, 1, u64::MAX)?;
        self.dur("browser.op_timeout", b.op_timeout, OP_TIMEOUT_MIN, OP_TIMEOUT_MAX)?;
        self.dur("browser.session_timeout", b.session_timeout, SEC, HOUR)?;
        self.dur("browser.batch_budget", b.batch_budget, Duration::ZERO, 5 * SEC)?;
        self.int("browser.batch_max_ops", b.batch_max_ops, 1, 256)?;
        for (i, a) in b.extra_args.iter().enumerate() {
            if a.starts_with("--user-data-dir") || a.starts_with("--remote-debugging") {
                return Err(self.err(
                    format!("browser.extra_args[{i}]"),
                    a,
                    "stressctl sets --user-data-dir and debugging flags itself; remove it",
                ));
            }
        }
        Ok(())
    }

    /// `[safety]`'s ranges; the free-space floors go up to 1 PiB (in MiB), 0 turning them off.
    pub fn safety(&self, s: &SafetyConfig) -> Result<(), ConfigError> {
        self.dur("safety.sample_interval", s.sample_interval, 250 * MS, HOUR)?;
        self.percent("safety.memory_percent", s.memory_percent)?;
        self.percent("safety.cpu_percent", s.cpu_percent)?;
        self.percent("safety.disk_percent", s.disk_percent)?;
        self.int("safety.consecutive_violations", s.consecutive_violations, 1, 1000)?;
        self.dur("safety.max_campaign_duration", s.max_campaign_duration, SEC, 7 * DAY)?;
        if let Some(bytes) = s.max_browser_rss_bytes {
            self.int("safety.max_browser_rss_mb", bytes >> 20, 64, 1 << 20)?;
        }
        self.int("safety.reserve_percent", s.reserve_percent, 0, 90)?;
        self.int("safety.min_free_memory_mb", s.min_free_memory_mb, 0, MAX_FREE_MB)?;
        self.int("safety.min_free_disk_mb", s.min_free_disk_mb, 0, MAX_FREE_MB)?;
        Ok(())
    }

    fn overrides(&self, key: &str, o: &SafetyOverrides) -> Result<(), ConfigError> {
        for (name, v) in [("memory_percent", o.memory_percent), ("cpu_percent", o.cpu_percent), ("disk_percent", o.disk_percent)] {
            if let Some(v) = v {
                self.percent(&format!("{key}.{name}"), v)?;
            }
        }
        for (name, v) in [("min_free_memory_mb", o.min_free_memory_mb), ("min_free_disk_mb", o.min_free_disk_mb)] {
            if let Some(v) = v {
                self.int(&format!("{key}.{name}"), v, 0, MAX_FREE_MB)?;
            }
        }
        Ok(())
    }

    /// `[server]`: both addresses parse, and when a worker is on another machine (its URL's host is
    /// not loopback) the server is not loopback-only: that worker's browser could not load the
    /// page. A Grid's nodes are known only from its hub, so that half is checked at run time.
    /// Unless a phase loads stressctl's test page (`page` tasks open the user's URL, synthetic
    /// ones no browser), no worker needs to reach the server.
    fn server(&self, s: &super::ServerConfig, workers: &[WorkerConfig], browsers: bool) -> Result<(), ConfigError> {
        use crate::config::addr;
        let listen_text = s.listen.as_deref().unwrap_or(addr::DEFAULT_SERVER_LISTEN);
        let listen = addr::parse_server_listen(listen_text).map_err(|why| self.err("server.listen", format!("{listen_text:?}"), why))?;
        let advertise = match &s.advertise {
            Some(a) => Some(addr::parse_server_advertise(a).map_err(|why| self.err("server.advertise", format!("{a:?}"), why))?),
            None => None,
        };
        let remote = workers.iter().find_map(|w| match &w.endpoint {
            WorkerEndpoint::Remote(u) => addr::remote_host(u).map(|_| (w.id.as_str(), u.as_str())),
            WorkerEndpoint::Managed => None,
        });
        if let Some((id, url)) = remote.filter(|_| browsers) {
            if listen.ip().is_loopback() {
                return Err(self.err(
                    "server.listen",
                    format!("{listen_text:?}"),
                    format!(
                        "worker {id} ({url}) is on another machine and cannot load pages from this machine's loopback: \
                         listen on an address it can reach, e.g. [server] listen = \"0.0.0.0:8099\" (and advertise = \"http://THIS-HOST:8099\")"
                    ),
                ));
            }
            if let Some(a) = &advertise {
                if a.host().is_some_and(|h| addr::host_is_loopback(&h)) {
                    return Err(self.err(
                        "server.advertise",
                        format!("{:?}", a.as_str()),
                        format!("worker {id} ({url}) is on another machine: give a URL with a host it can reach"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `[dashboard]`: the address parses and the token is usable. Whether a non-loopback address
    /// has a token is decided at launch, where `--dashboard-token` may give it.
    fn dashboard(&self, d: &super::DashboardConfig) -> Result<(), ConfigError> {
        crate::config::addr::parse_addr(&d.listen).map_err(|why| self.err("dashboard.listen", format!("{:?}", d.listen), why))?;
        if let Some(t) = &d.token {
            crate::config::addr::check_token(t).map_err(|why| self.err("dashboard.token", "(hidden)", why))?;
        }
        if let Some(name) = &d.token_env {
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || name.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(self.err(
                    "dashboard.token_env",
                    format!("{name:?}"),
                    "must be an environment variable name (letters, digits, _)",
                ));
            }
        }
        if d.token.is_some() && d.token_env.is_some() {
            return Err(self.err("dashboard.token", "(hidden)", "give the token or token_env, not both"));
        }
        Ok(())
    }

    fn recovery(&self, r: &RecoveryConfig) -> Result<(), ConfigError> {
        self.dur("recovery.backoff_base", r.backoff_base, MS, MINUTE)?;
        self.dur("recovery.backoff_cap", r.backoff_cap, MS, 10 * MINUTE)?;
        self.int("recovery.max_level", r.max_level, 1, 6)?;
        self.int("recovery.reduced_matrix_size", r.reduced_matrix_size, 4, 4096)?;
        let defaults = RecoveryConfig::default_first_rungs();
        let strategies = "one of retry, new_session, restart_driver, adjusted_settings, other_worker, other_browser";
        for (class, strategy) in &r.first_rung {
            let key = format!("recovery.first_rung.{class}");
            if !defaults.contains_key(class) {
                let classes: Vec<&str> = defaults.keys().map(String::as_str).collect();
                return Err(self.err(key, class, format!("a failure class that is recovered: {}", classes.join(", "))));
            }
            if crate::recovery::Strategy::parse(strategy).is_none() {
                return Err(self.err(key, format!("{strategy:?}"), strategies));
            }
        }
        Ok(())
    }

    /// Every recovered class's first rung: the config's, else the built-in one.
    fn first_rungs(r: RecoveryConfig) -> RecoveryConfig {
        let mut first_rung = RecoveryConfig::default_first_rungs();
        first_rung.extend(r.first_rung);
        RecoveryConfig { first_rung, ..r }
    }

    fn breakers(&self, b: &BreakerTables) -> Result<BreakersConfig, ConfigError> {
        let check = |key: &str, c: &BreakerConfig| c.validate().map_err(|m| self.err(key, "table", m));
        check("breaker", &b.common)?;
        for (scope, c) in BREAKER_SCOPES.iter().zip(&b.scopes) {
            check(&format!("breaker.{scope}"), c)?;
        }
        let [worker, browser, task, hardware] = b.scopes.clone();
        Ok(BreakersConfig { worker, browser, task, hardware })
    }

    fn workers(&self, raw: Vec<RawWorker>) -> Result<Vec<WorkerConfig>, ConfigError> {
        let mut workers = Vec::new();
        if raw.is_empty() {
            workers.push(WorkerConfig::managed("local"));
        }
        for (i, w) in raw.into_iter().enumerate() {
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
                    self.worker_url(&format!("{key}.url"), &u)?;
                    WorkerEndpoint::Remote(u)
                }
                (true, Some(_)) => return Err(self.err(&key, "managed = true and url", "give either `managed = true` or `url`, not both")),
                (false, None) => {
                    return Err(self.err(&key, "neither managed nor url", "give `managed = true` or `url = \"http://127.0.0.1:PORT\"`"))
                }
            };
            if let Some(m) = &w.node_metrics {
                self.node_metrics(&format!("{key}.node_metrics"), m, &endpoint)?;
            }
            self.overrides(&format!("{key}.safety"), &w.safety)?;
            workers.push(WorkerConfig {
                id: w.id,
                endpoint,
                browser: w.browser.unwrap_or_default(),
                webgpu_adapter: w.webgpu_adapter,
                node_metrics: w.node_metrics,
                safety: w.safety,
            });
        }
        Ok(workers)
    }

    /// A worker's `node_metrics`: an `http(s)` URL with a host (its `{host}`, if any, filled with
    /// a stand-in to check the rest). A `{host}` template is filled from a Selenium Grid's node
    /// URIs, so a managed worker (this host, never a Grid) may not have one; whether a remote
    /// worker is a Grid is known only from its `/status`, asked by `check` and `launch`.
    fn node_metrics(&self, key: &str, u: &str, endpoint: &WorkerEndpoint) -> Result<(), ConfigError> {
        const HOW: &str =
            "write node_exporter's URL, e.g. \"http://{host}:9100/metrics\" on a Selenium Grid or \"http://HOST:9100/metrics\"";
        let filled = u.replace(super::NODE_HOST_PLACEHOLDER, "node.invalid");
        let ok = (filled.starts_with("http://") || filled.starts_with("https://"))
            && !filled.chars().any(|c| c.is_whitespace() || c.is_control() || c == '{' || c == '}')
            && url::Url::parse(&filled).is_ok_and(|url| url.host_str().is_some_and(|h| !h.is_empty()));
        if !ok {
            return Err(self.err(key, format!("{u:?}"), format!("must be an http:// or https:// URL: {HOW}")));
        }
        if u.contains(super::NODE_HOST_PLACEHOLDER) && *endpoint == WorkerEndpoint::Managed {
            return Err(self.err(
                key,
                format!("{u:?}"),
                "a {host} template is filled with each Selenium Grid node's host, and a managed worker is not a Grid: give a plain URL",
            ));
        }
        Ok(())
    }

    /// A remote WebDriver URL: `http` or `https`, a host, a port in 1–65535 when given, no
    /// spaces, no query or fragment (the WebDriver paths are appended to it).
    fn worker_url(&self, key: &str, u: &str) -> Result<(), ConfigError> {
        const HOW: &str = "write the WebDriver URL as http://HOST:PORT, e.g. \"http://127.0.0.1:9515\"";
        let bad = |why: &str| self.err(key, format!("{u:?}"), format!("{why}: {HOW}"));
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(self.err(key, format!("{u:?}"), "must be an http:// or https:// WebDriver URL"));
        }
        if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("must not contain spaces"));
        }
        let url = match url::Url::parse(u) {
            Ok(url) => url,
            Err(url::ParseError::InvalidPort) => return Err(bad("the port must be a number from 1 to 65535")),
            Err(url::ParseError::EmptyHost) => return Err(bad("the host is missing")),
            Err(e) => return Err(bad(&format!("not a valid URL ({e})"))),
        };
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("the host is missing"));
        }
        if url.port() == Some(0) {
            return Err(bad("the port must be a number from 1 to 65535"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a WebDriver base URL has no ?query or #fragment"));
        }
        Ok(())
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
        let model_keys =
            t.model.is_some() || t.execution_provider.is_some() || t.inputs.is_some() || t.tolerance.is_some() || t.ort_dir.is_some();
        if kind != "model" {
            check_unused("model, execution_provider, inputs, tolerance and ort_dir", model_keys, "model")?;
        }
        match kind {
            "model" => self
                .model_task(
                    key,
                    super::model::RawModel {
                        model: t.model.as_deref(),
                        execution_provider: t.execution_provider.as_deref(),
                        inputs: t.inputs.as_ref(),
                        tolerance: t.tolerance,
                        ort_dir: t.ort_dir.as_deref(),
                    },
                )
                .map(TaskSpec::Model),
            "webgpu" => {
                check_unused("url", t.url.is_some(), "page")?;
                check_unused("failure_probability", t.failure_probability.is_some(), "synthetic")?;
                Ok(TaskSpec::Webgpu { matrix_size: self.int(&format!("{key}.matrix_size"), t.matrix_size.unwrap_or(128), 4, 2048)? })
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
                let latency = self.dur(&format!("{key}.latency"), t.latency.map_or(2 * MS, |d| d.0), Duration::ZERO, 10 * MINUTE)?;
                let jitter = self.dur(&format!("{key}.jitter"), t.jitter.map_or(Duration::ZERO, |d| d.0), Duration::ZERO, 10 * MINUTE)?;
                if jitter > latency {
                    return Err(self.err(format!("{key}.jitter"), format!("\"{}\"", fmt_duration(jitter)), "must not exceed latency"));
                }
                Ok(TaskSpec::Synthetic {
                    latency,
                    jitter,
                    failure_probability: self.fraction(&format!("{key}.failure_probability"), t.failure_probability.unwrap_or(0.0))?,
                })
            }
            other => Err(self.err(
                format!("{key}.kind"),
                format!("{other:?}"),
                "must be one of \"webgpu\", \"webnn\", \"page\", \"model\", \"synthetic\"",
            )),
        }
    }

    /// `[browser_preference]`: known keys, non-empty lists without repeats.
    fn preference(&self, p: &BrowserPreference) -> Result<(), ConfigError> {
        for (k, list) in &p.0 {
            let key = format!("browser_preference.{k}");
            if !PREFERENCE_KEYS.contains(&k.as_str()) {
                let allowed = PREFERENCE_KEYS.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", ");
                return Err(self.err(&key, format!("{list:?}"), format!("unknown key: a task kind or model type, one of {allowed}")));
            }
            if list.is_empty() {
                return Err(self.err(&key, "[]", "must name at least one browser (\"chromium\", \"firefox\")"));
            }
            if list.iter().enumerate().any(|(i, b)| list[..i].contains(b)) {
                return Err(self.err(&key, format!("{list:?}"), "names a browser twice"));
            }
        }
        Ok(())
    }

    /// A phase's `browsers`: each must have a configured worker, or its sessions would have
    /// nowhere to go.
    fn phase_browsers(&self, key: &str, list: Vec<BrowserKind>, workers: &[WorkerConfig]) -> Result<Vec<BrowserKind>, ConfigError> {
        for (i, b) in list.iter().enumerate() {
            if list[..i].contains(b) {
                return Err(self.err(key, format!("{list:?}"), "names a browser twice"));
            }
            if !workers.iter().any(|w| w.browser == *b) {
                let have: Vec<&str> = workers.iter().map(|w| w.browser.as_str()).collect();
                return Err(self.err(
                    key,
                    format!("{list:?}"),
                    format!("no [[workers]] entry has browser = \"{b}\" (configured: {})", have.join(", ")),
                ));
            }
        }
        Ok(list)
    }

    /// An `op_timeout` written at `key` (a task's or a phase's), checked against the range of
    /// `[browser] op_timeout`.
    fn op_timeout(&self, key: &str, d: Option<super::HumanDuration>) -> Result<Option<Duration>, ConfigError> {
        d.map(|d| self.dur(key, d.0, OP_TIMEOUT_MIN, OP_TIMEOUT_MAX)).transpose()
    }

    /// The `op_timeout` of phase `key`: its own, else its task's (`[phases.task]`, or the
    /// `[task]` it inherits when it has none); None leaves `[browser] op_timeout`. Giving it both
    /// on the phase and in the phase's own task is an error: one of them would be ignored.
    fn phase_op_timeout(&self, key: &str, p: &RawPhase, inherited: Option<Duration>) -> Result<Option<Duration>, ConfigError> {
        let own = self.op_timeout(&format!("{key}.op_timeout"), p.op_timeout)?;
        let of_task = match &p.task {
            Some(t) => self.op_timeout(&format!("{key}.task.op_timeout"), t.op_timeout)?,
            None => inherited,
        };
        if let (Some(d), Some(_)) = (own, p.task.as_ref().and_then(|t| t.op_timeout)) {
            return Err(self.err(
                format!("{key}.op_timeout"),
                format!("\"{}\"", fmt_duration(d)),
                format!("the phase's [phases.task] sets op_timeout too: give it once, on the phase or in its task ({key}.task.op_timeout)"),
            ));
        }
        Ok(own.or(of_task))
    }

    fn phases(
        &self,
        raw: Vec<RawPhase>,
        (default_task, default_timeout): (&TaskSpec, Option<Duration>),
        workers: &[WorkerConfig],
    ) -> Result<Vec<PhaseConfig>, ConfigError> {
        if raw.is_empty() {
            return Err(self.err("phases", "[]", "at least one [[phases]] entry is required"));
        }
        let mut phases: Vec<PhaseConfig> = Vec::with_capacity(raw.len());
        for (i, p) in raw.into_iter().enumerate() {
            let key = format!("phases[{i}]");
            if p.name.trim().is_empty() {
                return Err(self.err(format!("{key}.name"), "\"\"", "must be a non-empty name"));
            }
            if phases.iter().any(|x| x.name == p.name) {
                return Err(self.err(format!("{key}.name"), format!("{:?}", p.name), "phase names must be unique"));
            }
            let level = p.stress_level.unwrap_or(StressLevel::Moderate);
            let mut criteria = level.default_criteria();
            if let Some(c) = &p.criteria {
                if let Some(r) = c.min_success_rate {
                    criteria.min_success_rate = self.fraction(&format!("{key}.criteria.min_success_rate"), r)?;
                }
                if let Some(d) = c.max_p95 {
                    criteria.max_p95 = self.dur(&format!("{key}.criteria.max_p95"), d.0, MS, HOUR)?;
                }
                if let Some(v) = c.max_rss_growth_mb_per_h {
                    criteria.max_rss_growth_mb_per_h = Some(self.non_negative(&format!("{key}.criteria.max_rss_growth_mb_per_h"), v)?);
                }
                if let Some(v) = c.max_p95_drift_pct_per_h {
                    criteria.max_p95_drift_pct_per_h = Some(self.non_negative(&format!("{key}.criteria.max_p95_drift_pct_per_h"), v)?);
                }
            }
            let task = match &p.task {
                Some(t) => self.task(&format!("{key}.task"), Some(t))?,
                None => default_task.clone(),
            };
            let op_timeout = self.phase_op_timeout(&key, &p, default_timeout)?;
            let duration = self.dur(&format!("{key}.duration"), p.duration.0, SEC, 2 * DAY)?;
            let sessions = self.int(&format!("{key}.sessions"), p.sessions, 1, 64)?;
            let (kind, capacity) = self.capacity(&key, &p, duration, sessions)?;
            let safety = p.safety.unwrap_or_default();
            self.overrides(&format!("{key}.safety"), &safety)?;
            phases.push(PhaseConfig {
                name: p.name,
                duration,
                sessions,
                ops_per_session: match p.ops_per_session {
                    Some(n) => Some(self.int(&format!("{key}.ops_per_session"), n, 1, u64::MAX)?),
                    None => None,
                },
                think_time: self.dur(&format!("{key}.think_time"), p.think_time.map_or(Duration::ZERO, |d| d.0), Duration::ZERO, HOUR)?,
                stress_level: level,
                criteria,
                task,
                safety,
                browsers: self.phase_browsers(&format!("{key}.browsers"), p.browsers.unwrap_or_default(), workers)?,
                op_timeout,
                kind,
                capacity,
            });
        }
        Ok(phases)
    }

    /// The kind of phase `key` and, for a capacity phase, its search (`[phases.capacity]`): the
    /// table and `kind = "capacity"` come together, the counts rise above `sessions`, each step
    /// measures something after its warm-up, and the budget holds at least one step.
    fn capacity(
        &self,
        key: &str,
        p: &RawPhase,
        duration: Duration,
        sessions: u32,
    ) -> Result<(PhaseKind, Option<CapacitySpec>), ConfigError> {
        let kind = p.kind.unwrap_or_default();
        let raw = match (kind, &p.capacity) {
            (PhaseKind::Load, None) => return Ok((kind, None)),
            (PhaseKind::Load, Some(_)) => {
                return Err(self.err(
                    format!("{key}.capacity"),
                    "{ … }",
                    "is only read for a phase of kind = \"capacity\": add it, or remove the table",
                ))
            }
            (PhaseKind::Capacity, None) => {
                return Err(self.err(
                    format!("{key}.capacity"),
                    "(missing)",
                    "a phase of kind = \"capacity\" needs a [phases.capacity] table with at least max_sessions",
                ))
            }
            (PhaseKind::Capacity, Some(c)) => c,
        };
        if let Some(n) = p.ops_per_session {
            return Err(self.err(
                format!("{key}.ops_per_session"),
                n,
                "a capacity phase measures each step for its step_duration: remove ops_per_session",
            ));
        }
        let max_sessions = self.int(&format!("{key}.capacity.max_sessions"), raw.max_sessions, sessions.saturating_add(1).min(64), 64)?;
        if max_sessions <= sessions {
            return Err(self.err(
                format!("{key}.capacity.max_sessions"),
                max_sessions,
                format!("must be above the phase's sessions ({sessions}), the search's lowest count"),
            ));
        }
        let step = self.int(&format!("{key}.capacity.step"), raw.step.unwrap_or(0), 0, 64)?;
        let step_duration =
            self.dur(&format!("{key}.capacity.step_duration"), raw.step_duration.map_or(Duration::from_secs(20), |d| d.0), 2 * SEC, HOUR)?;
        let warmup = raw.warmup.map_or(step_duration / 4, |d| d.0);
        if warmup >= step_duration {
            return Err(self.err(
                format!("{key}.capacity.warmup"),
                format!("\"{}\"", fmt_duration(warmup)),
                format!("must be shorter than step_duration ({}): a step must measure something", fmt_duration(step_duration)),
            ));
        }
        if duration < step_duration {
            return Err(self.err(
                format!("{key}.duration"),
                format!("\"{}\"", fmt_duration(duration)),
                format!("is the search's budget and must hold at least one step ({})", fmt_duration(step_duration)),
            ));
        }
        Ok((kind, Some(CapacitySpec { max_sessions, step, step_duration, warmup })))
    }

    /// `[phase_sessions]`: the sessions of named load phases, over their `[[phases]]` entries
    /// (what `stressctl tune` writes from a capacity result, without replacing the phase list).
    /// A name that is no phase, or a capacity phase, is an error naming the key.
    fn phase_sessions(&self, overrides: std::collections::BTreeMap<String, u32>, phases: &mut [PhaseConfig]) -> Result<(), ConfigError> {
        for (name, n) in overrides {
            let key = format!("phase_sessions.{name}");
            let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
            let Some(i) = phases.iter().position(|p| p.name == name) else {
                return Err(self.err(key, n, format!("names no phase (the phases are {})", names.join(", "))));
            };
            if phases[i].capacity.is_some() {
                return Err(self.err(
                    key,
                    n,
                    "names a capacity phase, whose sessions is its search's lowest count: set it in its [[phases]] entry",
                ));
            }
            phases[i].sessions = self.int(&key, n, 1, 64)?;
        }
        Ok(())
    }

    /// Fits the phases into `campaign.total_duration` (proportions kept, at least 1 s each) and
    /// checks the total against `safety.max_campaign_duration`.
    fn fit(&self, phases: &mut [PhaseConfig], c: &CampaignSettings, s: &SafetyConfig) -> Result<(), ConfigError> {
        if let Some(total) = c.total_duration {
            let key = "campaign.total_duration";
            let value = format!("\"{}\"", fmt_duration(total));
            let mut durations: Vec<Duration> = phases.iter().map(|p| p.duration).collect();
            if !scale_to(&mut durations, total) {
                return Err(self.err(key, value, format!("must give each of the {} phases at least 1s", phases.len())));
            }
            if let Some((p, d)) = phases.iter().zip(&durations).find(|(_, d)| **d > 2 * DAY) {
                return Err(self.err(
                    key,
                    value,
                    format!("stretches phase {:?} to {}, over the 2-day limit of a phase", p.name, fmt_duration(*d)),
                ));
            }
            for (p, d) in phases.iter_mut().zip(durations) {
                p.duration = d;
            }
        }
        let total: Duration = phases.iter().map(|p| p.duration).sum();
        if total > s.max_campaign_duration {
            return Err(self.err_from(
                &["safety.max_campaign_duration", "phases", "campaign.total_duration"],
                "safety.max_campaign_duration",
                format!("\"{}\"", fmt_duration(s.max_campaign_duration)),
                format!("the phases add up to {}: raise max_campaign_duration or set campaign.total_duration", fmt_duration(total)),
            ));
        }
        Ok(())
    }
}

/// Scales `durations` so that they add up to exactly `total`, in proportion, in whole
/// milliseconds, none under 1 s (those that would be are held at 1 s and the rest share what is
/// left). Durations that already add up to `total` are left as they are, so a printed config
/// (scaled durations and the same `total_duration`) reads back unchanged. False when `total`
/// leaves less than 1 s per phase.
pub(super) fn scale_to(durations: &mut [Duration], total: Duration) -> bool {
    const NS_PER_MS: u128 = 1_000_000;
    let min_ms = SEC.as_millis();
    let written: Vec<u128> = durations.iter().map(|d| d.as_nanos()).collect();
    if written.iter().sum::<u128>() == total.as_nanos() {
        return true;
    }
    let total_ms = total.as_millis();
    if total_ms < min_ms * written.len() as u128 {
        return false;
    }
    let mut held = vec![false; written.len()];
    let mut scaled_ms = vec![0u128; written.len()];
    loop {
        let free_ms = total_ms - min_ms * held.iter().filter(|h| **h).count() as u128;
        let free_written: u128 = written.iter().zip(&held).filter(|(_, h)| !**h).map(|(w, _)| w).sum();
        let mut newly_held = false;
        for i in 0..written.len() {
            if held[i] {
                scaled_ms[i] = min_ms;
                continue;
            }
            // free_written > 0: every written duration is at least 1 s and this one is not held
            scaled_ms[i] = written[i] * free_ms / free_written.max(1);
            if scaled_ms[i] < min_ms {
                held[i] = true;
                newly_held = true;
            }
        }
        if !newly_held {
            break;
        }
    }
    let mut scaled: Vec<u128> = scaled_ms.iter().map(|ms| ms * NS_PER_MS).collect();
    // rounding down left a few milliseconds (and total's own sub-millisecond part) over: the
    // longest phase takes them
    let rest = total.as_nanos() - scaled.iter().sum::<u128>();
    if let Some(longest) = (0..scaled.len()).max_by_key(|&i| (scaled[i], std::cmp::Reverse(i))) {
        scaled[longest] += rest;
    }
    for (d, n) in durations.iter_mut().zip(scaled) {
        *d = Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX));
    }
    true
}
