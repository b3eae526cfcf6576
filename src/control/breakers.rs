//! The breaker commands of the control socket (`stressctl breaker list|open|close|reset|disable`):
//! the typed request, answer and refusal that the campaign and the CLI exchange, and the table
//! `breaker list` prints.
//!
//! Why here: both ends (the socket server in the campaign, the client in the CLI) need one
//! definition of the shapes, and this layer is the lowest that both import.

use crate::breaker::{ManualCommand, RegistrySnapshot};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// An operator's command on breakers, as the campaign receives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BreakerRequest {
    /// What to do to each breaker named.
    pub action: ManualCommand,
    /// Breaker keys or globs (`worker:w1`, `worker:grid/*`, `browser:firefox`).
    pub scopes: Vec<String>,
    /// Why, recorded in the event and in each transition's reason (may be empty).
    #[serde(default)]
    pub reason: String,
    /// Who asked: the peer's uid, read by the server from the socket (`SO_PEERCRED`), never
    /// taken from the request.
    #[serde(skip)]
    pub uid: Option<u32>,
}

/// A state change a command caused, for the operator's terminal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandTransition {
    /// Breaker key.
    pub key: String,
    /// State left.
    pub from: String,
    /// State entered.
    pub to: String,
}

/// What a command did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BreakerDone {
    /// The breakers the scopes named.
    pub keys: Vec<String>,
    /// The state changes (none for a breaker already where the command puts it).
    pub transitions: Vec<CommandTransition>,
}

/// Why a command was refused; nothing was changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum BreakerRefusal {
    /// Some scopes name no breaker of this campaign.
    #[error("no breaker matches {}; the breakers are: {}", unknown.join(", "), known.join(", "))]
    UnknownScopes {
        /// The scopes that matched nothing.
        unknown: Vec<String>,
        /// Every breaker key there is.
        known: Vec<String>,
    },
    /// No scope was given.
    #[error("name at least one breaker (e.g. worker:w1, browser:firefox, worker:grid/*)")]
    NoScope,
}

/// One line of `stressctl breaker list`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BreakerRow {
    /// Full key, e.g. `worker:w1`.
    pub scope: String,
    /// `closed`, `open`, `half_open`, `forced_open`, `disabled`.
    pub state: String,
    /// Success percentage over the window.
    pub health_percent: f64,
    /// Calls recorded.
    pub calls: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Calls refused.
    pub rejected: u64,
    /// Times it opened on its own.
    pub opens: u64,
}

/// The rows of a registry snapshot, in key order within each scope.
pub fn rows(s: &RegistrySnapshot) -> Vec<BreakerRow> {
    s.iter()
        .map(|(prefix, name, m)| BreakerRow {
            scope: format!("{prefix}:{name}"),
            state: m.state.as_str().to_string(),
            health_percent: (m.health_percent * 10.0).round() / 10.0,
            calls: m.calls,
            failures: m.failures,
            rejected: m.rejected,
            opens: m.opens,
        })
        .collect()
}

/// The rows as an aligned table.
pub fn render(rows: &[BreakerRow]) -> String {
    let w = rows.iter().map(|r| r.scope.len()).max().unwrap_or(5).max(5);
    let mut out =
        format!("{:<w$}  {:<11}  {:>7}  {:>9}  {:>8}  {:>8}  {:>5}\n", "SCOPE", "STATE", "HEALTH", "CALLS", "FAILED", "REJECTED", "OPENS");
    for r in rows {
        let _ = writeln!(
            out,
            "{:<w$}  {:<11}  {:>6.1}%  {:>9}  {:>8}  {:>8}  {:>5}",
            r.scope, r.state, r.health_percent, r.calls, r.failures, r.rejected, r.opens
        );
    }
    if rows.is_empty() {
        out.push_str("(no breakers yet)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_never_takes_the_uid_from_the_wire() {
        let r: BreakerRequest = serde_json::from_str(r#"{"action":"open","scopes":["worker:w1"],"reason":"x","uid":0}"#).expect("parses");
        assert_eq!((r.action, r.uid), (ManualCommand::Open, None));
    }

    #[test]
    fn refusal_names_the_scopes() {
        let e =
            BreakerRefusal::UnknownScopes { unknown: vec!["worker:nope".into()], known: vec!["worker:w1".into(), "task:webgpu".into()] };
        assert_eq!(e.to_string(), "no breaker matches worker:nope; the breakers are: worker:w1, task:webgpu");
        let v = serde_json::to_value(&e).expect("serializes");
        assert_eq!(serde_json::from_value::<BreakerRefusal>(v).expect("round trip"), e);
    }

    #[test]
    fn table() {
        let rows = vec![BreakerRow {
            scope: "worker:w1".into(),
            state: "forced_open".into(),
            health_percent: 97.5,
            calls: 40,
            failures: 1,
            rejected: 3,
            opens: 0,
        }];
        let t = render(&rows);
        assert!(t.starts_with("SCOPE "), "{t}");
        assert!(t.contains("worker:w1  forced_open    97.5%         40         1         3      0"), "{t}");
    }
}
