//! Latency histograms and per-window op aggregates.
//!
//! Nothing per op is kept: each session accumulates a [`Window`] (counts + an HdrHistogram) that is
//! handed to the store about once a second and then reset, so memory stays flat however long the
//! campaign runs.

mod counts;

pub use counts::{quantile_of_sorted, recorded_values};

use crate::recovery::FailureClass;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Highest trackable latency, in microseconds (1 h).
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A new latency histogram in microseconds, 3 significant figures.
pub fn new_histogram() -> Histogram<u64> {
    // bounds are constants that are valid by construction
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Records a latency, saturating at [`MAX_LATENCY_US`].
#[inline]
pub fn record_latency(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, MAX_LATENCY_US);
    h.saturating_record(us);
}

/// Serializes a histogram (HdrHistogram V2 format).
pub fn encode_histogram(h: &Histogram<u64>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    // writing into a Vec cannot fail; the serializer only errors on I/O
    if V2Serializer::new().serialize(h, &mut buf).is_err() {
        buf.clear();
    }
    buf
}

/// Deserializes a histogram written by [`encode_histogram`].
pub fn decode_histogram(bytes: &[u8]) -> Result<Histogram<u64>, String> {
    let mut cursor = std::io::Cursor::new(bytes);
    Deserializer::new().deserialize(&mut cursor).map_err(|e| format!("corrupt histogram: {e:?}"))
}

/// Latency summary in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LatencySummary {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

fn ms(us: f64) -> f64 {
    (us / 1000.0 * 1000.0).round() / 1000.0
}

impl LatencySummary {
    /// Summarises a histogram (all zeros when empty).
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            mean: ms(h.mean()),
            p50: ms(h.value_at_quantile(0.50) as f64),
            p90: ms(h.value_at_quantile(0.90) as f64),
            p95: ms(h.value_at_quantile(0.95) as f64),
            p99: ms(h.value_at_quantile(0.99) as f64),
            max: ms(h.max() as f64),
        }
    }
}

/// Counts and latencies of the ops of one session over one time window.
#[derive(Clone, Debug)]
pub struct Window {
    /// Ops attempted.
    pub attempted: u64,
    /// Ops that succeeded.
    pub succeeded: u64,
    /// Ops that failed.
    pub failed: u64,
    /// Ops whose result was verified (webgpu against the CPU reference).
    pub verified: u64,
    /// Failures per class.
    pub errors: BTreeMap<FailureClass, u64>,
    /// Round-trip latency of every op (success or failure), microseconds: what the driver saw.
    /// For an op of a batch it is the op's in-page time plus an equal share of the call's overhead.
    pub hist: Histogram<u64>,
    /// In-page latency (`performance.now()` around the workload), microseconds, of the ops whose
    /// page measured one: the workload's own time, without the driver's cost. Empty for tasks
    /// that do not measure it (synthetic, model).
    pub in_page: Histogram<u64>,
    /// Browser console errors and uncaught exceptions (WebGPU errors included) the page captured
    /// during these ops: a count, whether or not the op failed.
    pub console: u64,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            attempted: 0,
            succeeded: 0,
            failed: 0,
            verified: 0,
            errors: BTreeMap::new(),
            hist: new_histogram(),
            in_page: new_histogram(),
            console: 0,
        }
    }
}

impl Window {
    /// Records one op: its round-trip latency, its in-page latency when the page measured one,
    /// and its outcome (`Ok(verified)` or the failure class).
    #[inline]
    pub fn record(&mut self, latency: Duration, in_page: Option<Duration>, outcome: Result<bool, FailureClass>) {
        self.attempted += 1;
        record_latency(&mut self.hist, latency);
        if let Some(d) = in_page {
            record_latency(&mut self.in_page, d);
        }
        match outcome {
            Ok(verified) => {
                self.succeeded += 1;
                if verified {
                    self.verified += 1;
                }
            }
            Err(class) => {
                self.failed += 1;
                *self.errors.entry(class).or_insert(0) += 1;
            }
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.attempted == 0
    }

    /// Adds another window into this one.
    pub fn merge(&mut self, other: &Window) {
        self.attempted += other.attempted;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.verified += other.verified;
        self.console += other.console;
        for (k, v) in &other.errors {
            *self.errors.entry(*k).or_insert(0) += v;
        }
        // both histograms share bounds; add cannot fail
        let _ = self.hist.add(&other.hist);
        let _ = self.in_page.add(&other.in_page);
    }

    /// Clears the window for reuse (keeps the histogram allocation).
    pub fn reset(&mut self) {
        self.attempted = 0;
        self.succeeded = 0;
        self.failed = 0;
        self.verified = 0;
        self.console = 0;
        self.errors.clear();
        self.hist.reset();
        self.in_page.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_records_and_roundtrips_histogram() {
        let mut w = Window::default();
        w.record(Duration::from_millis(10), Some(Duration::from_millis(8)), Ok(true));
        w.record(Duration::from_millis(20), None, Ok(false));
        w.record(Duration::from_millis(30), Some(Duration::from_millis(25)), Err(FailureClass::Timeout));
        assert_eq!((w.attempted, w.succeeded, w.failed, w.verified), (3, 2, 1, 1));
        assert_eq!(w.errors[&FailureClass::Timeout], 1);
        let h = decode_histogram(&encode_histogram(&w.hist)).unwrap();
        assert_eq!(h.len(), 3);
        let s = LatencySummary::of(&h);
        assert!(s.p50 <= s.p90 && s.p90 <= s.p95 && s.p95 <= s.p99 && s.p99 <= s.max);
        assert!((s.max - 30.0).abs() < 0.1, "{s:?}");
        let mut total = Window::default();
        total.merge(&w);
        total.merge(&w);
        assert_eq!(total.attempted, 6);
        assert_eq!(total.hist.len(), 6);
        assert_eq!(total.in_page.len(), 4, "only the ops the page timed");
        w.reset();
        assert!(w.is_empty() && w.hist.is_empty() && w.in_page.is_empty());
    }

    #[test]
    fn empty_summary_is_zero() {
        assert_eq!(LatencySummary::of(&new_histogram()), LatencySummary::default());
    }
}
