//! What a phase's events say: guardian violations, the most frequent failure messages, the
//! browsers' console texts, injected faults, clock gaps, and the APIs the browsers found
//! unsupported.

use super::numbers::{cut, finite};
use super::typed_events::for_each_typed;
use crate::events::Event;
use crate::recovery::FailureClass;
use crate::store::{PhaseInfo, StoreError, StoreReader};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How many of the most frequent failure messages a phase report keeps.
pub const TOP_ERRORS: usize = 5;

/// Failure messages are cut to this many characters.
pub const MAX_MESSAGE_CHARS: usize = 200;

/// A guardian threshold violation (event `guardian_violation`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViolationRecord {
    /// RFC 3339.
    pub at: String,
    /// The metric (`cpu`, `memory`, `disk`, …).
    pub metric: String,
    /// The sampled value (null when the event did not carry one).
    pub value: Option<f64>,
    /// The threshold it crossed (null when the event did not carry one).
    pub threshold: Option<f64>,
}

/// A frequent failure message (from `op_failed` events).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopError {
    /// Failure class.
    pub class: String,
    /// The message, cut to [`MAX_MESSAGE_CHARS`] characters.
    pub message: String,
    /// How many ops failed with it.
    pub count: u64,
}

/// A phase's browser console entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsoleReport {
    /// Entries counted, all of them (from the op windows).
    pub entries: u64,
    /// The most frequent texts (at most [`TOP_ERRORS`]), from the `op_failed` and `page_console`
    /// events: those are capped per session, so these counts are a sample of `entries`.
    pub top: Vec<ConsoleTop>,
}

/// One console text and how often it was seen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsoleTop {
    /// `source: text` (`console.error`, `uncaught`, `unhandled rejection`, `webgpu error`,
    /// `webgpu device lost`), cut to [`MAX_MESSAGE_CHARS`] characters.
    pub text: String,
    /// Times seen in the events.
    pub count: u64,
    /// Of those, on ops that failed.
    pub on_failed_ops: u64,
}

/// An API that was unsupported (ops failed with class `api_unsupported`); never counted as a pass.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Unsupported {
    /// Phase name.
    pub phase: String,
    /// Phase index.
    pub phase_index: u32,
    /// Task kind.
    pub task_kind: String,
    /// The browser that said so (absent in reports of stores without worker browsers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    /// What the browser said.
    pub message: String,
}

/// What a phase's events say, gathered in one pass over them.
pub(super) struct PhaseEvents {
    /// Guardian violations, in order.
    pub(super) violations: Vec<ViolationRecord>,
    /// The most frequent failure messages (at most [`TOP_ERRORS`]).
    pub(super) top_errors: Vec<TopError>,
    /// Faults injected, by kind.
    pub(super) faults_injected: BTreeMap<String, u64>,
    /// Time the process was suspended or starved (clock gaps), ms.
    pub(super) suspended_ms: u64,
    /// The most frequent console texts (at most [`TOP_ERRORS`]; empty when the events carried
    /// none).
    pub(super) console_top: Vec<ConsoleTop>,
}

/// Reads phase `p`'s events once; the APIs its ops found unsupported are added to `unsupported`
/// (with the browser of the worker, from `worker_browsers`).
pub(super) fn phase_events(
    r: &StoreReader,
    p: &PhaseInfo,
    worker_browsers: &BTreeMap<String, String>,
    unsupported: &mut BTreeSet<Unsupported>,
) -> Result<PhaseEvents, StoreError> {
    let mut violations = Vec::new();
    let mut failures: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut faults_injected: BTreeMap<String, u64> = BTreeMap::new();
    let mut suspended_ms = 0u64;
    // console text -> (seen, on failed ops)
    let mut console: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut saw_console = |entries: &[String], failed: bool| {
        for t in entries {
            let c = console.entry(cut(t, MAX_MESSAGE_CHARS)).or_insert((0, 0));
            c.0 += 1;
            c.1 += u64::from(failed);
        }
    };
    for_each_typed(
        r,
        Some(p.idx),
        &["op_failed", "page_console", "guardian_violation", "fault_injected", "clock_gap", "task_unsupported"],
        |e, ev| match ev {
            // a phase not run on a browser given up for its task earlier: listed like its ops would be
            Event::TaskUnsupported { browser, message, remembered: true, .. } => {
                unsupported.insert(Unsupported {
                    phase: p.name.clone(),
                    phase_index: p.idx,
                    task_kind: p.task_kind.clone(),
                    browser: Some(browser),
                    message: cut(&message, MAX_MESSAGE_CHARS),
                });
            }
            Event::GuardianViolation { metric, value, threshold } => {
                violations.push(ViolationRecord { at: e.at, metric, value: finite(value), threshold: finite(threshold) })
            }
            Event::FaultInjected { fault, .. } => *faults_injected.entry(fault.as_str().to_string()).or_insert(0) += 1,
            Event::ClockGap { gap_ms, .. } => suspended_ms += gap_ms,
            Event::PageConsole { entries, .. } => saw_console(&entries, false),
            Event::OpFailed { class, message, task_kind, worker, console, .. } => {
                saw_console(&console, true);
                let message = cut(message.as_deref().unwrap_or(&e.message), MAX_MESSAGE_CHARS);
                if class == FailureClass::ApiUnsupported {
                    let task_kind = task_kind.unwrap_or_else(|| p.task_kind.clone());
                    let browser =
                        worker_browsers.get(&worker).cloned().or_else(|| (!worker_browsers.is_empty()).then(|| "chromium".into()));
                    unsupported.insert(Unsupported {
                        phase: p.name.clone(),
                        phase_index: p.idx,
                        task_kind,
                        browser,
                        message: message.clone(),
                    });
                }
                *failures.entry((class.as_str().to_string(), message)).or_insert(0) += 1;
            }
            _ => {}
        },
    )?;
    let mut top: Vec<TopError> = failures.into_iter().map(|((class, message), count)| TopError { class, message, count }).collect();
    // most frequent first; ties by message text, then class
    top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.message.cmp(&b.message)).then_with(|| a.class.cmp(&b.class)));
    top.truncate(TOP_ERRORS);
    let mut console_top: Vec<ConsoleTop> =
        console.into_iter().map(|(text, (count, on_failed_ops))| ConsoleTop { text, count, on_failed_ops }).collect();
    console_top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.text.cmp(&b.text)));
    console_top.truncate(TOP_ERRORS);
    Ok(PhaseEvents { violations, top_errors: top, faults_injected, suspended_ms, console_top })
}

/// The browsers phase `idx` was not run on because each had answered "unsupported" to its task
/// earlier in the run (`task_unsupported` events with `remembered`), one sentence each: a phase
/// with no op and these reasons is UNSUPPORTED, not failed.
pub(super) fn not_run_unsupported(r: &StoreReader, idx: u32) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for_each_typed(r, Some(idx), &["task_unsupported"], |_, ev| {
        if let Event::TaskUnsupported { task, browser, message, remembered: true, .. } = ev {
            out.push(format!(
                "not run: {browser} answered unsupported to the {task} task earlier in this run ({})",
                cut(&message, MAX_MESSAGE_CHARS)
            ));
        }
    })?;
    Ok(out)
}
