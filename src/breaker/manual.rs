//! An operator's hands on the breakers: the four manual commands (`stressctl breaker
//! open|close|reset|disable`) on one breaker, and the glob patterns (`worker:grid/*`) that name
//! the breakers a command is for.
//!
//! Why separate from the state machine: the automatic rules (open on failures, probe, close on
//! successes) and the manual overrides answer different people; keeping the overrides here keeps
//! `mod.rs` about the rules.

use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Breaker, State};

/// What an operator asked a breaker to do (resilience4j's `transitionToForcedOpenState`,
/// `transitionToClosedState`, `reset` and `transitionToDisabledState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManualCommand {
    /// Reject every call until `close` or `reset` (work moves off it, as for a drained node).
    Open,
    /// Back to closed with the window cleared, keeping the open backoff: a breaker that was
    /// flapping opens for longer if it fails again at once.
    Close,
    /// Back to closed with the window, the failure streak and the open backoff cleared: as new.
    Reset,
    /// Let every call through, still counting calls, until `close` or `reset`.
    Disable,
}

impl ManualCommand {
    /// The command's name, as typed and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            ManualCommand::Open => "open",
            ManualCommand::Close => "close",
            ManualCommand::Reset => "reset",
            ManualCommand::Disable => "disable",
        }
    }
}

impl fmt::Display for ManualCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ManualCommand {
    type Err = String;

    fn from_str(s: &str) -> Result<ManualCommand, String> {
        match s {
            "open" => Ok(ManualCommand::Open),
            "close" => Ok(ManualCommand::Close),
            "reset" => Ok(ManualCommand::Reset),
            "disable" => Ok(ManualCommand::Disable),
            other => Err(format!("unknown breaker command {other:?}: use open, close, reset or disable")),
        }
    }
}

impl Breaker {
    /// Applies an operator's command at `now`; `why` becomes the reason of the transition it
    /// causes (none when the breaker is already where the command puts it, except that `reset`
    /// and `close` still clear the window then).
    pub fn command(&mut self, cmd: ManualCommand, now: Instant, why: String) {
        self.advance(now);
        match cmd {
            ManualCommand::Open => {
                if !matches!(self.state, State::ForcedOpen) {
                    self.enter(State::ForcedOpen, now, why);
                }
            }
            ManualCommand::Disable => {
                if !matches!(self.state, State::Disabled) {
                    self.enter(State::Disabled, now, why);
                }
            }
            ManualCommand::Reset => self.close(now, why),
            ManualCommand::Close => {
                let opens = self.consecutive_opens;
                self.close(now, why);
                self.consecutive_opens = opens;
            }
        }
    }
}

/// Whether `key` matches `pattern`, where `*` stands for any run of characters (also none) and
/// `?` for one; everything else matches itself. `worker:grid/*` matches every Grid node of the
/// worker `grid`; `*` matches every breaker.
pub fn glob_match(pattern: &str, key: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let k: Vec<char> = key.chars().collect();
    // Iterative matcher with one backtrack point (the last `*`): linear in practice, and never
    // exponential, whatever the pattern.
    let (mut pi, mut ki) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ki < k.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ki));
                pi += 1;
            }
            Some(&c) if c == '?' || c == k[ki] => {
                pi += 1;
                ki += 1;
            }
            _ => match star {
                Some((sp, sk)) => {
                    pi = sp + 1;
                    ki = sk + 1;
                    star = Some((sp, sk + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether `pattern` has glob characters (a plain key names one breaker).
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::{BreakerConfig, BreakerState, Outcome};
    use std::time::Duration;

    #[test]
    fn globs() {
        assert!(glob_match("worker:grid/*", "worker:grid/n1"));
        assert!(glob_match("worker:grid/*", "worker:grid/"));
        assert!(!glob_match("worker:grid/*", "worker:grid"));
        assert!(!glob_match("worker:grid/*", "browser:grid/n1"));
        assert!(glob_match("*", "task:webgpu"));
        assert!(glob_match("worker:w?", "worker:w1"));
        assert!(!glob_match("worker:w?", "worker:w12"));
        assert!(glob_match("*:w*1", "worker:w1"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("browser:chromium", "browser:chromium"));
        assert!(!glob_match("browser:chrom", "browser:chromium"));
        assert!(is_glob("worker:*") && !is_glob("worker:w1"));
    }

    #[test]
    fn commands_and_their_reasons() {
        let t0 = Instant::now();
        let cfg = BreakerConfig { failure_threshold: 2, recovery_timeout: Duration::from_secs(10), ..BreakerConfig::default() };
        let mut b = Breaker::new(cfg);
        b.command(ManualCommand::Open, t0, "operator open: maintenance".into());
        assert_eq!(b.state(t0), BreakerState::ForcedOpen);
        assert!(b.acquire(t0).is_err());
        b.command(ManualCommand::Close, t0, "operator close".into());
        assert_eq!(b.state(t0), BreakerState::Closed);
        b.command(ManualCommand::Disable, t0, "operator disable".into());
        for _ in 0..5 {
            let p = b.acquire(t0).expect("disabled lets calls through");
            b.record(p, Outcome::Failure, t0);
        }
        assert_eq!(b.state(t0), BreakerState::Disabled);
        assert_eq!(b.metrics(t0, (t0, std::time::SystemTime::now())).failures, 5, "disabled still counts");
        b.command(ManualCommand::Reset, t0, "operator reset".into());
        let reasons: Vec<String> = b.drain_transitions().into_iter().map(|t| t.reason).collect();
        assert_eq!(reasons, ["operator open: maintenance", "operator close", "operator disable", "operator reset"]);
        for _ in 0..2 {
            let p = b.acquire(t0).expect("closed");
            b.record(p, Outcome::Failure, t0);
        }
        assert_eq!(b.state(t0), BreakerState::Open, "opens on its own again after a reset");
    }

    #[test]
    fn close_keeps_the_open_backoff_and_reset_clears_it() {
        let t0 = Instant::now();
        let cfg = BreakerConfig {
            failure_threshold: 1,
            recovery_timeout: Duration::from_secs(10),
            backoff_factor: 2.0,
            max_recovery_timeout: Duration::from_secs(100),
            ..BreakerConfig::default()
        };
        let fail = |b: &mut Breaker| {
            let p = b.acquire(t0).expect("closed");
            b.record(p, Outcome::Failure, t0);
        };
        let mut closed = Breaker::new(cfg.clone());
        fail(&mut closed);
        closed.command(ManualCommand::Close, t0, "c".into());
        fail(&mut closed);
        assert_eq!(closed.metrics(t0, (t0, std::time::SystemTime::now())).open_timeout, Duration::from_secs(20));
        let mut reset = Breaker::new(cfg);
        fail(&mut reset);
        reset.command(ManualCommand::Reset, t0, "r".into());
        fail(&mut reset);
        assert_eq!(reset.metrics(t0, (t0, std::time::SystemTime::now())).open_timeout, Duration::from_secs(10));
    }
}
