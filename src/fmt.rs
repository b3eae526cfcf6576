//! Formatting shared by the store, the breakers and the reports, defined once so that every
//! timestamp and every rounded figure reads the same wherever it appears. At the bottom of the
//! import graph: it depends on nothing of stressctl's.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A timestamp as RFC 3339 UTC with milliseconds, e.g. `2026-11-25T16:20:31.123Z`. Times before
/// 1970 (a clock set wrong) are shown as 1970 rather than failing.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t.max(UNIX_EPOCH)).to_string()
}

/// Rounds to 3 decimals, for every float in a report: no `NaN`/infinity (0 instead) and no
/// `-0.0`.
pub fn round3(v: f64) -> f64 {
    if !v.is_finite() {
        return 0.0;
    }
    let r = (v * 1000.0).round() / 1000.0;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// The first `n` characters of a string (never splits a character, unlike a byte slice): page
/// text and error messages are cut to a bound before they reach an event or a report.
pub fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// At most `max` characters of `s`, with `…` where it was cut: an error message or page answer
/// bounded before it reaches an event, with the cut shown.
pub fn ellipsize(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Formats a duration for humans, rounded to milliseconds (`1m 30s 250ms`), the way every
/// duration a person reads is written: in errors, log lines and reports alike.
pub fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

/// An error and its causes on one line (hyper's own message is only "client error (Connect)").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Prints one line to stdout, ignoring a closed terminal: the one way every layer talks to the
/// person at the terminal, so a closed pipe never turns into a panic.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Prints one line to stderr, ignoring a closed terminal.
pub fn warn(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_millis(951_782_400_999)), "2000-02-29T00:00:00.999Z");
        assert_eq!(rfc3339(UNIX_EPOCH - Duration::from_secs(1)), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn round3_has_no_nan_and_no_negative_zero() {
        assert_eq!(round3(f64::NAN), 0.0);
        assert_eq!(round3(1.23456), 1.235);
        assert!(round3(-0.0001).is_sign_positive());
    }
}
