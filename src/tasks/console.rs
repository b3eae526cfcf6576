//! What the browser's console says during an op, counted against that op.
//!
//! A page's failing op often has its real cause in the console: a WebGPU validation error behind
//! a wrong result, an uncaught exception in a timer, a device loss. The in-page scripts of the
//! browser tasks ([`super::batch`]'s runner and the model task's) start with [`prelude`]: it
//! installs, once per page, a listener for `console.error` calls, uncaught exceptions, unhandled
//! rejections, and the WebGPU errors no error scope caught and the device losses of every device
//! the page requests (a `destroy()` is not a loss). Each entry is counted against the op during
//! which it arrived, or the next op when it arrived between two (nothing is counted twice or
//! dropped, unless the page navigates). The answer carries the count (`console_n`) and the first
//! [`MAX_ENTRIES`] texts (`console`), which [`console_of`] reads.
//!
//! The listener sees only what happens after it is installed: entries logged while the page
//! loads, before the first op, are not counted. An error thrown by code WebDriver injected reads
//! "Script error." (the browser hides its origin); a page's own scripts' errors arrive in full.

use crate::recovery::PageConsole;
use serde_json::Value;
use std::time::Duration;

/// At most this many console entries ride on one op's answer (the count covers all of them).
pub const MAX_ENTRIES: usize = 8;

/// An entry's text is cut at this many characters in the page.
pub const MAX_ENTRY_CHARS: usize = 400;

/// After a failed op the page waits this long before it collects the op's console entries: a
/// WebGPU error reaches the page as an event from the GPU process, often just after the failure
/// it caused. Only failures pay it.
pub const FAILURE_SETTLE: Duration = Duration::from_millis(50);

/// The listener, installed once per page (`window.__stressctlConsole`); its state is `{n, seen,
/// list}`: `n` entries so far, `seen` of them already counted against an op, `list` the last 32 as
/// `[number, source, text]`.
const CAPTURE: &str = r#"const cap = window.__stressctlConsole || (() => {
  const c = {n: 0, seen: 0, list: []};
  const add = (src, text) => {
    c.n++; c.list.push([c.n, src, String(text).slice(0, MAX_CHARS)]);
    if (c.list.length > 32) c.list.shift();
  };
  const str = (a) => { try { return a instanceof Error ? (a.stack || String(a)) : (a && typeof a === 'object') ? JSON.stringify(a) : String(a); } catch (e) { return String(a); } };
  const err = console.error;
  console.error = function (...a) { add('console.error', a.map(str).join(' ')); return err.apply(this, a); };
  window.addEventListener('error', (e) => add('uncaught', (e.error && e.error.stack) || e.message));
  window.addEventListener('unhandledrejection', (e) => add('unhandled rejection', str(e.reason)));
  const A = window.GPUAdapter && window.GPUAdapter.prototype;
  if (A && typeof A.requestDevice === 'function') {
    const rd = A.requestDevice;
    A.requestDevice = function (...a) {
      return rd.apply(this, a).then((d) => {
        d.addEventListener('uncapturederror', (e) => add('webgpu error', (e.error && e.error.message) || e.error));
        d.lost.then((i) => { if (i.reason !== 'destroyed') add('webgpu device lost', (i.reason || 'unknown') + ': ' + i.message); });
        return d;
      });
    };
  }
  return (window.__stressctlConsole = c);
})();
const consoleTo = async (o, failed) => {
  if (failed) await new Promise((res) => setTimeout(res, SETTLE_MS));
  if (cap.n > cap.seen) {
    o.console_n = cap.n - cap.seen;
    o.console = cap.list.filter((e) => e[0] > cap.seen).slice(0, MAX_ENTRIES).map((e) => e[1] + ': ' + e[2]);
    cap.seen = cap.n;
  }
};
"#;

/// The JS that an op script starts with: installs the listener (once per page) and defines
/// `consoleTo(answer, failed)`, which waits [`FAILURE_SETTLE`] after a failure, then adds to the
/// answer the entries not yet counted and marks them counted.
pub fn prelude() -> String {
    CAPTURE
        .replacen("MAX_CHARS", &MAX_ENTRY_CHARS.to_string(), 1)
        .replacen("SETTLE_MS", &FAILURE_SETTLE.as_millis().to_string(), 1)
        .replacen("MAX_ENTRIES", &MAX_ENTRIES.to_string(), 1)
}

/// Reads `console_n` / `console` of an op's answer (nothing when absent).
pub fn console_of(v: &Value) -> PageConsole {
    let count = v.get("console_n").and_then(Value::as_u64).unwrap_or(0);
    if count == 0 {
        return PageConsole::default();
    }
    let entries = v
        .get("console")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).take(MAX_ENTRIES).map(|t| crate::fmt::cut(t, MAX_ENTRY_CHARS + 32)).collect())
        .unwrap_or_default();
    PageConsole { count, entries }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_prelude_has_every_limit_filled_in() {
        let p = prelude();
        for placeholder in ["MAX_CHARS", "SETTLE_MS", "MAX_ENTRIES"] {
            assert!(!p.contains(placeholder), "{placeholder} left in the prelude");
        }
        assert!(p.contains(".slice(0, 400)") && p.contains("setTimeout(res, 50)") && p.contains(".slice(0, 8)"));
    }

    #[test]
    fn reads_the_console_of_an_answer() {
        assert_eq!(console_of(&json!({"ok": true})), PageConsole::default());
        let long = "y".repeat(1000);
        let c = console_of(&json!({"ok": false, "console_n": 12, "console": ["webgpu error: bad usage", long, 7]}));
        assert_eq!(c.count, 12, "the count covers entries the answer left out");
        assert_eq!(c.entries.len(), 2, "non-strings are skipped");
        assert_eq!(c.entries[0], "webgpu error: bad usage");
        assert_eq!(c.entries[1].chars().count(), MAX_ENTRY_CHARS + 32, "a page cannot flood an event");
    }
}
