//! `[[notify]]`: where to tell a person that the night went wrong (or how it ended), as written
//! and checked. The sending is `crate::notify`'s; this is only what was asked.

use super::duration::human;
use super::validator::Validator;
use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a notification is about: one of the `on = [...]` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyOn {
    /// The campaign halted: too many phases failed in a row.
    Halted,
    /// The campaign was stopped (`emergency-stop`, a signal, the store, the time cap).
    EmergencyStop,
    /// The guardian tripped on a resource threshold and stopped the campaign.
    GuardianTrip,
    /// The campaign ended: its outcome and figures.
    Verdict,
    /// A circuit breaker opened on its own (at most one a minute per breaker).
    BreakerOpen,
}

impl NotifyOn {
    /// Every kind, the default of `on`.
    pub const ALL: [NotifyOn; 5] =
        [NotifyOn::Halted, NotifyOn::EmergencyStop, NotifyOn::GuardianTrip, NotifyOn::Verdict, NotifyOn::BreakerOpen];

    /// The name, as written in `on` and sent as `event`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyOn::Halted => "halted",
            NotifyOn::EmergencyStop => "emergency_stop",
            NotifyOn::GuardianTrip => "guardian_trip",
            NotifyOn::Verdict => "verdict",
            NotifyOn::BreakerOpen => "breaker_open",
        }
    }
}

fn all() -> Vec<NotifyOn> {
    NotifyOn::ALL.to_vec()
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_retries() -> u32 {
    3
}

/// One `[[notify]]` entry: a JSON POST to `url` for each event named in `on`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// `http://HOST:PORT/PATH` or `https://…`.
    pub url: String,
    /// Which events to send (default: all five).
    #[serde(default = "all")]
    pub on: Vec<NotifyOn>,
    /// Name of the environment variable holding a bearer token (`Authorization: Bearer …`); the
    /// token itself never goes in a file, the store or a report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// How long one attempt may take, connect to answer.
    #[serde(default = "default_timeout", with = "human")]
    pub timeout: Duration,
    /// Further attempts after a failed one (full-jitter backoff from 500 ms, capped at 5 s).
    #[serde(default = "default_retries")]
    pub retries: u32,
}

impl NotifyConfig {
    /// The URL without its path and query, for logs, events and reports: a webhook's path often
    /// is its secret.
    pub fn target(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(u) => format!(
                "{}://{}",
                u.scheme(),
                u.host_str().map_or(String::new(), |h| match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_string(),
                })
            ),
            Err(_) => "(bad url)".into(),
        }
    }
}

/// Checks every entry, naming `notify[i].<key>` in an error.
pub(super) fn validate(v: &Validator<'_>, entries: &[NotifyConfig]) -> Result<(), ConfigError> {
    for (i, n) in entries.iter().enumerate() {
        let key = |k: &str| format!("notify[{i}].{k}");
        let bad_url = |why: &str| v.err(key("url"), format!("{:?}", n.url), why);
        let u = url::Url::parse(&n.url).map_err(|e| bad_url(&format!("not a URL ({e}); write e.g. \"http://127.0.0.1:9000/hook\"")))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(bad_url("must be http:// or https://"));
        }
        if u.host_str().is_none_or(str::is_empty) {
            return Err(bad_url("must name a host"));
        }
        if n.on.is_empty() {
            return Err(v.err(key("on"), "[]", "name at least one of halted, emergency_stop, guardian_trip, verdict, breaker_open"));
        }
        v.dur(&key("timeout"), n.timeout, Duration::from_millis(100), Duration::from_secs(120))?;
        v.int(&key("retries"), n.retries, 0, 10)?;
        if let Some(name) = &n.token_env {
            let ok = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !ok {
                return Err(v.err(key("token_env"), format!("{name:?}"), "must be an environment variable name (letters, digits, _)"));
            }
        }
    }
    Ok(())
}
