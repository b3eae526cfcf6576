//! How the reports count and print numbers: ratios and rates from exact counts, percentages
//! that never round up to a pass, milliseconds for people, and floats rounded to 3 decimals so a
//! rebuilt report is byte-identical to the one the run wrote.

pub(crate) use crate::fmt::{cut, round3};

/// `num / den`, 0 when `den` is 0.
pub(super) fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// `ops / seconds` rounded to 3 decimals, 0 when no time passed.
pub(super) fn per_second(ops: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        round3(ops as f64 / seconds)
    } else {
        0.0
    }
}

/// `succeeded / attempted` as a percentage with one decimal, floored, from exact integers: 99.95 %
/// shows as 99.9, never as 100.0 (which only all-succeeded shows). "-" when nothing was attempted.
pub(crate) fn pct_counts(succeeded: u64, attempted: u64) -> String {
    if attempted == 0 {
        return "-".into();
    }
    let tenths = (succeeded as u128 * 1000) / attempted as u128;
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// A configured fraction as a percentage: one decimal, two when needed (0.8995 -> "89.95").
pub(crate) fn pct_frac(f: f64) -> String {
    let s = format!("{:.2}", f * 100.0);
    match s.strip_suffix('0') {
        Some(t) => t.to_string(),
        None => s,
    }
}

/// Milliseconds for humans: "850.5 ms", "6.1 s".
pub(crate) fn fmt_ms(ms: f64) -> String {
    if ms < 1000.0 {
        trim_decimals(format!("{ms:.1}")) + " ms"
    } else {
        trim_decimals(format!("{:.3}", ms / 1000.0)) + " s"
    }
}

/// Drops trailing zeros (and a trailing point) of a decimal.
fn trim_decimals(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A float rounded to 3 decimals, None when it is not finite (JSON has no NaN).
pub(super) fn finite(v: f64) -> Option<f64> {
    v.is_finite().then(|| round3(v))
}
