//! Which browsers have said "unsupported" to a task often enough to stop asking, for the rest of
//! the run. Without it a phase on a browser that lacks an API (WebNN on Debian's Chromium) spends
//! its whole plan sending ops that each answer the same refusal; with it, [`GIVE_UP_AFTER`]
//! refusals in a row (run-wide, whichever slots saw them) end that browser's part in the task,
//! and a phase with no other browser left is reported UNSUPPORTED at once.
//!
//! Pure bookkeeping behind one mutex; the slot and the phase loop decide what to do with it.

use crate::config::{BrowserKind, TaskSpec};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Unsupported answers in a row after which a browser is not asked again for a task this run.
pub const GIVE_UP_AFTER: u32 = 3;

/// The task as far as support goes: its kind, and a model's execution provider (a browser may
/// run a model on WebGPU and lack WebNN).
pub fn task_key(task: &TaskSpec) -> String {
    match task {
        TaskSpec::Model(m) => format!("model/{}", m.execution_provider.as_str()),
        other => other.kind().to_string(),
    }
}

/// What one (task, browser) pair has answered lately.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Streak {
    /// Unsupported answers since the last success.
    in_row: u32,
    /// The browser's words, once it has been given up.
    given_up: Option<String>,
}

/// A browser given up for a task: what the slot and the phase say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GivenUp {
    /// The task key ([`task_key`]).
    pub task: String,
    /// The browser.
    pub browser: BrowserKind,
    /// What it answered (its last refusal).
    pub message: String,
}

/// Task key -> browser -> its streak.
type Streaks = BTreeMap<String, BTreeMap<BrowserKind, Streak>>;

/// The run's memory of unsupported answers, per (task key, browser).
#[derive(Debug, Default)]
pub struct UnsupportedMemo {
    streaks: Mutex<Streaks>,
    /// Some browser refused something: until then a success costs no lock (one per op).
    any: AtomicBool,
}

impl UnsupportedMemo {
    fn with<R>(&self, f: impl FnOnce(&mut Streaks) -> R) -> R {
        let mut g = self.streaks.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// `browser` answered "unsupported" (`message`) for `task`. Returns the verdict the one time
    /// this answer makes it [`GIVE_UP_AFTER`] in a row; never again after.
    pub fn refused(&self, task: &str, browser: BrowserKind, message: &str) -> Option<GivenUp> {
        self.any.store(true, Ordering::Relaxed);
        self.with(|m| {
            let s = m.entry(task.to_string()).or_default().entry(browser).or_default();
            if s.given_up.is_some() {
                return None;
            }
            s.in_row += 1;
            if s.in_row < GIVE_UP_AFTER {
                return None;
            }
            s.given_up = Some(message.to_string());
            Some(GivenUp { task: task.to_string(), browser, message: message.to_string() })
        })
    }

    /// `browser` ran an op of `task`: the streak starts over (a browser that was given up stays
    /// given up; no op is sent to it again).
    pub fn succeeded(&self, task: &str, browser: BrowserKind) {
        if !self.any.load(Ordering::Relaxed) {
            return;
        }
        self.with(|m| {
            if let Some(s) = m.get_mut(task).and_then(|b| b.get_mut(&browser)) {
                s.in_row = 0;
            }
        })
    }

    /// What `browser` answered when it was given up for `task`, if it was.
    pub fn given_up(&self, task: &str, browser: BrowserKind) -> Option<String> {
        if !self.any.load(Ordering::Relaxed) {
            return None;
        }
        self.with(|m| m.get(task).and_then(|b| b.get(&browser)).and_then(|s| s.given_up.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BrowserKind::{Chromium as C, Firefox as F};

    #[test]
    fn three_refusals_in_a_row_give_a_browser_up_once() {
        let m = UnsupportedMemo::default();
        assert_eq!(m.refused("webnn", C, "a"), None);
        assert_eq!(m.refused("webnn", C, "b"), None);
        let g = m.refused("webnn", C, "NotSupportedError").expect("given up at the third");
        assert_eq!((g.task.as_str(), g.browser, g.message.as_str()), ("webnn", C, "NotSupportedError"));
        assert_eq!(m.refused("webnn", C, "again"), None, "reported once");
        assert_eq!(m.given_up("webnn", C).as_deref(), Some("NotSupportedError"));
        assert_eq!(m.given_up("webnn", F), None, "per browser");
        assert_eq!(m.given_up("webgpu", C), None, "per task");
    }

    #[test]
    fn a_success_between_refusals_starts_the_streak_over() {
        let m = UnsupportedMemo::default();
        m.refused("webgpu", F, "x");
        m.refused("webgpu", F, "x");
        m.succeeded("webgpu", F);
        assert_eq!(m.refused("webgpu", F, "x"), None);
        assert_eq!(m.refused("webgpu", F, "x"), None);
        assert!(m.refused("webgpu", F, "x").is_some());
        m.succeeded("webgpu", F);
        assert!(m.given_up("webgpu", F).is_some(), "given up stays given up");
    }
}
