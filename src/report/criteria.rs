//! A phase's success criteria: the minimum success rate and the p95 limit, which latency the
//! limit judges (in-page or round trip), and the decision, taken on exact counts.

use super::numbers::{fmt_ms, pct_counts, pct_frac, ratio};
use crate::metrics::LatencySummary;
use serde::{Deserialize, Serialize};

/// Slack for comparing a ratio of counts with a configured fraction.
pub(super) const EPS: f64 = 1e-9;

/// A phase's success criteria and whether it met them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseCriteria {
    /// Minimum success rate (0..=1).
    pub min_success_rate: f64,
    /// p95 latency must be below this, in ms.
    pub max_p95_ms: u64,
    /// Which latency `max_p95_ms` was judged on: `in_page` (the workload's own time, when the
    /// task measured it in the page) or `round_trip` (what the driver saw).
    #[serde(default = "round_trip")]
    pub p95_basis: String,
    /// Success rate >= minimum, p95 < maximum, and at least one op attempted.
    pub passed: bool,
    /// Every op found the API unsupported (`api_unsupported`): the phase neither passed nor
    /// failed, and the campaign verdict leaves it out.
    #[serde(default)]
    pub unsupported: bool,
    /// Why it did not pass, one sentence each (empty when passed).
    pub failures: Vec<String>,
    /// Browser memory growth limit, MiB/h (`[phases.criteria] max_rss_growth_mb_per_h`): the
    /// phase failed when the whole 95 % interval of its trend lay above it. Absent: not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rss_growth_mb_per_h: Option<f64>,
    /// In-page p95 drift limit, %/h (`max_p95_drift_pct_per_h`), judged the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p95_drift_pct_per_h: Option<f64>,
    /// Drift criteria that were set but could not be judged (the phase was shorter than
    /// `drift_min_phase`, or its series had too few points), one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_judged: Vec<String>,
}

/// The `p95_basis` of reports written before it was recorded.
fn round_trip() -> String {
    "round_trip".into()
}

/// The latency a phase's `max_p95` judges: in-page when the task measured it (the workload's own
/// time, without the driver's cost), else round trip. Returns the summary and its basis name.
pub(crate) fn criteria_latency<'a>(
    round_trip: &'a LatencySummary,
    in_page: Option<&'a LatencySummary>,
) -> (&'a LatencySummary, &'static str) {
    match in_page {
        Some(l) => (l, "in_page"),
        None => (round_trip, "round_trip"),
    }
}

impl PhaseCriteria {
    /// The criteria of a phase that sent no op because every browser it could run on had
    /// refused its task earlier in the run: UNSUPPORTED (left out of the verdict), with `reasons`
    /// (one per browser, in the browser's words) as its failures.
    pub(crate) fn not_run_unsupported(self, reasons: Vec<String>) -> PhaseCriteria {
        PhaseCriteria { passed: false, unsupported: true, failures: reasons, ..self }
    }

    /// `passed`, `failed` or `unsupported`, for people.
    pub fn verdict(&self) -> &'static str {
        if self.unsupported {
            "unsupported"
        } else if self.passed {
            "passed"
        } else {
            "failed"
        }
    }
}

/// Why the success-rate criterion failed, on exact counts (`attempted > 0`); None when it held.
/// [`evaluate_criteria`] and the JUnit report's testcase of that criterion both say it.
pub(super) fn success_shortfall(attempted: u64, succeeded: u64, min_success_rate: f64) -> Option<String> {
    (ratio(succeeded, attempted) + EPS < min_success_rate).then(|| {
        format!(
            "success rate {}% below {}% ({} of {} ops failed)",
            pct_counts(succeeded, attempted),
            pct_frac(min_success_rate),
            attempted - succeeded.min(attempted),
            attempted
        )
    })
}

/// Why the p95 criterion failed (`basis`: `in_page` or `round_trip`); None when it held.
pub(super) fn p95_excess(p95_ms: f64, basis: &str, max_p95_ms: u64) -> Option<String> {
    (p95_ms >= max_p95_ms as f64).then(|| {
        let which = if basis == "in_page" { "in-page p95" } else { "p95" };
        format!("{which} {} not below the {} limit", fmt_ms(p95_ms), fmt_ms(max_p95_ms as f64))
    })
}

/// Evaluates a phase's criteria on exact counts; `unsupported` ops are those that failed as
/// `api_unsupported`.
pub(crate) fn evaluate_criteria(
    attempted: u64,
    succeeded: u64,
    unsupported: u64,
    (p95_ms, p95_basis): (f64, &str),
    min_success_rate: f64,
    max_p95_ms: u64,
) -> PhaseCriteria {
    let p95_basis = p95_basis.to_string();
    let mut failures = Vec::new();
    if attempted > 0 && unsupported == attempted {
        failures.push(format!("all {attempted} ops found the API unsupported: the phase is reported as unsupported, not passed or failed"));
        return PhaseCriteria { min_success_rate, max_p95_ms, p95_basis, passed: false, unsupported: true, failures, ..no_drift() };
    }
    if attempted == 0 {
        failures.push("no ops were attempted".to_string());
    } else {
        failures.extend(success_shortfall(attempted, succeeded, min_success_rate));
        failures.extend(p95_excess(p95_ms, &p95_basis, max_p95_ms));
    }
    PhaseCriteria { min_success_rate, max_p95_ms, p95_basis, passed: failures.is_empty(), unsupported: false, failures, ..no_drift() }
}

/// The drift fields of criteria judged before drift is (see [`PhaseCriteria::with_drift`]).
fn no_drift() -> PhaseCriteria {
    PhaseCriteria {
        min_success_rate: 0.0,
        max_p95_ms: 0,
        p95_basis: String::new(),
        passed: false,
        unsupported: false,
        failures: Vec::new(),
        max_rss_growth_mb_per_h: None,
        max_p95_drift_pct_per_h: None,
        not_judged: Vec::new(),
    }
}

impl PhaseCriteria {
    /// These criteria with the drift criteria's limits, failures and the ones not judged added
    /// (an unsupported phase stays unsupported: it is not judged at all).
    pub(super) fn with_drift(
        mut self,
        limits: (Option<f64>, Option<f64>),
        failures: Vec<String>,
        not_judged: Vec<String>,
    ) -> PhaseCriteria {
        (self.max_rss_growth_mb_per_h, self.max_p95_drift_pct_per_h) = limits;
        if self.unsupported {
            return self;
        }
        self.not_judged = not_judged;
        if !failures.is_empty() {
            self.passed = false;
            self.failures.extend(failures);
        }
        self
    }
}
