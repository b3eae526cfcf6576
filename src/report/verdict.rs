//! The campaign verdict: enough phases passed, the overall success rate is high enough and the
//! plan ran to its end, judged with the thresholds the campaign recorded when it started.

use super::criteria::EPS;
use super::numbers::{pct_counts, pct_frac, ratio, round3};
use super::phase::{phase_figures, PhaseFigures, PhaseReport};
use super::typed_events::for_each_typed;
use crate::events::Event;
use crate::store::{PhaseInfo, StoreError, StoreReader};
use serde::{Deserialize, Serialize};

/// `pass_phase_ratio` used when the stored config cannot be parsed (the config default).
const DEFAULT_PASS_PHASE_RATIO: f64 = 0.70;

/// `pass_success_rate` used when the stored config cannot be parsed (the config default).
const DEFAULT_PASS_SUCCESS_RATE: f64 = 0.90;

/// The campaign verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Enough phases passed and the overall success rate is high enough.
    pub passed: bool,
    /// Phases that met their criteria.
    pub phases_passed: u32,
    /// Phases run (started).
    pub phases_total: u32,
    /// All ops succeeded / attempted.
    pub overall_success_rate: f64,
    /// The `pass_phase_ratio` applied.
    pub required_phase_ratio: f64,
    /// The `pass_success_rate` applied.
    pub required_success_rate: f64,
    /// Phases the plan had (0 when the store does not say).
    #[serde(default)]
    pub phases_planned: u32,
    /// Every planned phase ran to its end: a run cut short is never a pass.
    #[serde(default = "yes")]
    pub plan_completed: bool,
    /// Why, one sentence per condition.
    pub reasons: Vec<String>,
}

fn yes() -> bool {
    true
}

/// What the verdict reads of one phase. The full report takes it from a [`PhaseReport`], the
/// runner's [`campaign_verdict`] from the phase's figures alone; both come from the same
/// [`phase_figures`], so the two verdicts agree.
pub(super) struct PhaseTally {
    /// The phase's name, for the reasons.
    name: String,
    /// The phase ran to its end (status `completed`).
    completed: bool,
    /// Ops attempted.
    ops_attempted: u64,
    /// Ops that succeeded.
    ops_succeeded: u64,
    /// The phase met its criteria.
    passed: bool,
    /// Every op found the API unsupported: the phase is left out of the verdict.
    unsupported: bool,
}

impl PhaseTally {
    /// The tally of a phase report.
    pub(super) fn of_report(p: &PhaseReport) -> PhaseTally {
        PhaseTally {
            name: p.name.clone(),
            completed: p.status == "completed",
            ops_attempted: p.ops_attempted,
            // degraded successes do not count towards a pass
            ops_succeeded: p.ops_succeeded.saturating_sub(p.ops_succeeded_degraded),
            passed: p.criteria.passed,
            unsupported: p.criteria.unsupported,
        }
    }

    /// The tally of a phase from its row and figures, the same fields [`Self::of_report`] reads
    /// (the report takes its counts, status and criteria from these).
    fn of_figures(p: &PhaseInfo, f: &PhaseFigures) -> PhaseTally {
        PhaseTally {
            name: p.name.clone(),
            completed: p.status == "completed",
            ops_attempted: f.all.attempted,
            ops_succeeded: f.all.succeeded.saturating_sub(f.degraded),
            passed: f.criteria.passed,
            unsupported: f.criteria.unsupported,
        }
    }
}

/// The campaign verdict from its phases: passed when at least `pass_phase_ratio` of the phases
/// pass and the overall success rate is at least `pass_success_rate`. A campaign with no phase or
/// no op never passes. (The report's verdict also judges the plan: see [`campaign_verdict`].)
pub fn verdict(all_phases: &[PhaseReport], pass_phase_ratio: f64, pass_success_rate: f64) -> Verdict {
    let tallies: Vec<PhaseTally> = all_phases.iter().map(PhaseTally::of_report).collect();
    judge_phases(&tallies, pass_phase_ratio, pass_success_rate)
}

/// The phase-ratio condition: at least `pass_phase_ratio` of the `total` judged phases passed
/// (never met without a phase). The JUnit report's campaign testcases judge with it too.
pub(super) fn phases_ok(passed: u32, total: u32, pass_phase_ratio: f64) -> bool {
    total > 0 && passed as f64 + EPS >= pass_phase_ratio * total as f64
}

/// The overall success-rate condition, on exact counts (never met without an op).
pub(super) fn rate_ok(succeeded: u64, attempted: u64, pass_success_rate: f64) -> bool {
    attempted > 0 && ratio(succeeded, attempted) + EPS >= pass_success_rate
}

/// [`verdict`] over the phases' tallies.
fn judge_phases(all_phases: &[PhaseTally], pass_phase_ratio: f64, pass_success_rate: f64) -> Verdict {
    // a phase whose every op was unsupported neither passes nor fails: it is left out
    let phases: Vec<&PhaseTally> = all_phases.iter().filter(|p| !p.unsupported).collect();
    let unsupported: Vec<&str> = all_phases.iter().filter(|p| p.unsupported).map(|p| p.name.as_str()).collect();
    let total = phases.len() as u32;
    let passed_n = phases.iter().filter(|p| p.passed).count() as u32;
    let attempted: u64 = phases.iter().map(|p| p.ops_attempted).sum();
    let succeeded: u64 = phases.iter().map(|p| p.ops_succeeded).sum();
    let overall = ratio(succeeded, attempted);
    let phases_ok = phases_ok(passed_n, total, pass_phase_ratio);
    let rate_ok = rate_ok(succeeded, attempted, pass_success_rate);

    let mut reasons = Vec::new();
    if !unsupported.is_empty() {
        reasons.push(format!("unsupported (left out of the verdict): {}", unsupported.join(", ")));
    }
    if total == 0 {
        reasons.push(if unsupported.is_empty() { "no phase ran" } else { "no phase ran a supported task" }.to_string());
    } else {
        reasons.push(format!(
            "{passed_n} of {total} phases passed ({}%), {} the required {}%",
            pct_counts(passed_n as u64, total as u64),
            if phases_ok { "meeting" } else { "below" },
            pct_frac(pass_phase_ratio)
        ));
        let failing: Vec<&str> = phases.iter().filter(|p| !p.passed).map(|p| p.name.as_str()).collect();
        if !failing.is_empty() {
            reasons.push(format!("failing phases: {}", failing.join(", ")));
        }
    }
    if attempted == 0 {
        reasons.push("no ops were attempted".to_string());
    } else {
        reasons.push(format!(
            "overall success rate {}% ({succeeded} of {attempted} ops), {} the required {}%",
            pct_counts(succeeded, attempted),
            if rate_ok { "meeting" } else { "below" },
            pct_frac(pass_success_rate)
        ));
    }
    Verdict {
        passed: phases_ok && rate_ok,
        phases_passed: passed_n,
        phases_total: total,
        phases_planned: total,
        plan_completed: true,
        overall_success_rate: round3(overall),
        required_phase_ratio: pass_phase_ratio,
        required_success_rate: pass_success_rate,
        reasons,
    }
}

/// What the campaign recorded when it started: verdict thresholds, planned phases and faults.
pub(super) struct Plan {
    /// The `pass_phase_ratio` to apply.
    pass_phase_ratio: f64,
    /// The `pass_success_rate` to apply.
    pass_success_rate: f64,
    /// Phases planned (0 when the store does not say).
    phases: u32,
    /// The faults planned, one line each.
    pub(super) faults: Vec<String>,
    /// Said in the verdict when the thresholds are the defaults, not the recorded ones.
    note: Option<String>,
}

/// The plan from the first `campaign_started` event (a resumed campaign has one per run; the
/// first is the plan). A store without one (written before thresholds were recorded) gets the
/// default thresholds, said in the verdict.
pub(super) fn plan(r: &StoreReader) -> Result<Plan, StoreError> {
    let mut first = None;
    for_each_typed(r, None, &["campaign_started"], |_, ev| {
        if let (None, Event::CampaignStarted { pass_phase_ratio, pass_success_rate, phases, faults, .. }) = (&first, ev) {
            first = Some((pass_phase_ratio, pass_success_rate, phases, faults));
        }
    })?;
    let (ratio, rate, phases, faults) = first.unwrap_or((None, None, 0, Vec::new()));
    let note = (ratio.is_none() || rate.is_none()).then(|| {
        "the store does not record the pass thresholds (written by an older stressctl); default thresholds were applied".to_string()
    });
    Ok(Plan {
        pass_phase_ratio: ratio.unwrap_or(DEFAULT_PASS_PHASE_RATIO),
        pass_success_rate: rate.unwrap_or(DEFAULT_PASS_SUCCESS_RATE),
        phases,
        faults,
        note,
    })
}

/// A campaign that did not run its whole plan is never a pass: the verdict says how many planned
/// phases ran to their end and why the run ended.
fn judge_plan(v: &mut Verdict, phases: &[PhaseTally], planned: u32, outcome: Option<&str>, stop_reason: Option<&str>) {
    v.phases_planned = planned;
    let completed = phases.iter().filter(|p| p.completed).count() as u32;
    let cut_short = matches!(outcome, Some("emergency_stopped" | "halted"))
        || outcome.is_none() && !phases.is_empty() && phases.iter().any(|p| !p.completed);
    if completed >= planned && !cut_short {
        return;
    }
    v.plan_completed = false;
    v.passed = false;
    let why = match (outcome, stop_reason) {
        (_, Some(r)) => format!(": {r}"),
        (None, None) => ": the campaign process died (see `stressctl launch --resume`)".to_string(),
        _ => String::new(),
    };
    let ran = if planned > 0 {
        format!("{completed} of {planned} planned phases ran to their end")
    } else {
        format!("{completed} phases ran to their end")
    };
    v.reasons.insert(0, format!("the plan did not complete: {ran}{why}"));
}

/// The campaign verdict from its phases' tallies and the recorded plan, given the outcome and stop
/// reason stored so far (none while the run is still deciding them): what both the report's
/// verdict and [`campaign_verdict`] say.
pub(super) fn judge(plan: &Plan, phases: &[PhaseTally], outcome: Option<&str>, stop_reason: Option<&str>) -> Verdict {
    let mut v = judge_phases(phases, plan.pass_phase_ratio, plan.pass_success_rate);
    v.reasons.extend(plan.note.clone());
    judge_plan(&mut v, phases, plan.phases.max(phases.len() as u32), outcome, stop_reason);
    v
}

/// The campaign verdict alone, from the store: the `verdict` that [`super::campaign_report`] would
/// give, read from the phase rows, their op windows and task info, and the plan only (none of the
/// events, samples and per-worker figures the rest of the report reads). The runner decides the
/// campaign's outcome with it before it writes the end events, and builds the full report once,
/// after.
pub fn campaign_verdict(r: &StoreReader) -> Result<Verdict, StoreError> {
    let c = r.campaign()?;
    let mut phases = Vec::new();
    let settings = super::trend::DriftSettings::of(r)?;
    for p in r.phases()? {
        let figures = phase_figures(r, &p, &settings)?;
        phases.push(PhaseTally::of_figures(&p, &figures));
    }
    let plan = plan(r)?;
    Ok(judge(&plan, &phases, c.outcome.as_deref(), c.stop_reason.as_deref()))
}
