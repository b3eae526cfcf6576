//! A capacity phase (`kind = "capacity"`): instead of one fixed load, a search for the most
//! sessions the phase's criteria hold at. Each step runs a count of sessions for
//! `step_duration` through the same [`drive`] as any phase (the guardian, breakers, recovery
//! ladder, faults, stop and pause act inside it as anywhere), is measured after its own warm-up
//! and judged by the phase's criteria; [`report::capacity::next_count`] picks the next count from
//! the steps measured so far. Each step is a `capacity_step` event, so the report rebuilds the
//! answer from the store, and a resumed or re-run phase continues the search where it stood.

use super::faults::FaultPlan;
use super::phase::{begin, drive, finish, place, Clock, PhaseOutcome, PhasePlan};
use super::shared::{LiveSnapshot, RunShared};
use super::RunError;
use crate::config::{BrowserKind, CapacitySpec, PhaseConfig};
use crate::events::Event;
use crate::metrics::LatencySummary;
use crate::report::capacity::{capacity_of, next_count, SearchShape};
use crate::store::StoreReader;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How the search left the phase: time run, stopped, paused by the guardian, most sessions run,
/// and whether its `phase_started` was emitted (by its first step, whichever search runs it).
#[derive(Default)]
struct Progress {
    elapsed: Duration,
    stopped: bool,
    paused: bool,
    most_sessions: u32,
    announced: bool,
}

/// Runs capacity phase `idx` (its `[phases.capacity]` is `spec`) and writes its report.
/// `plan.sessions` (escalation's scaling) is not used: the search decides the counts.
pub(crate) async fn run_capacity_phase(
    run: &Arc<RunShared>,
    faults: &Arc<FaultPlan>,
    idx: u32,
    phase: &PhaseConfig,
    spec: &CapacitySpec,
    plan: PhasePlan,
    report_dir: &Path,
) -> Result<PhaseOutcome, RunError> {
    let PhasePlan { sessions: _, mut notes, offset } = plan;
    let nowhere = run.nowhere_to_run(phase);
    let unsupported = nowhere.is_some();
    let shape = SearchShape { min: phase.sessions, max: spec.max_sessions, step: spec.step };
    // the steps measured before an interruption or a guardian pause are kept
    run.store.flush()?;
    let recorded = capacity_of(&StoreReader::open(run.store.path())?, idx)?;
    if !recorded.is_empty() {
        let steps: usize = recorded.iter().map(|c| c.steps.len()).sum();
        notes.push(format!("the capacity search continues from the {steps} step(s) measured before"));
    }
    begin(run, idx, phase, (spec.max_sessions, phase.sessions), notes, nowhere);
    let mut progress = Progress { elapsed: offset, ..Progress::default() };
    if !unsupported {
        // one search per browser when the phase spans several, one over its placement otherwise
        let groups: Vec<Option<BrowserKind>> =
            if phase.browsers.len() > 1 { phase.browsers.iter().copied().map(Some).collect() } else { vec![None] };
        for browser in groups {
            let label = browser.map(|b| b.to_string());
            let done = recorded.iter().find(|c| c.browser == label).map(|c| c.done()).unwrap_or_default();
            let mut on = phase.clone();
            if let Some(b) = browser {
                on.browsers = vec![b];
            }
            let go_on = search(run, faults, idx, (&on, spec, shape), (label, done), &mut progress).await?;
            if !go_on {
                break;
            }
        }
    }
    if !progress.announced {
        // nowhere to run, or nothing left to measure: the phase still starts and ends
        let d = drive(run, faults, idx, phase, &[], Clock { duration: Duration::ZERO, offset, mark: None, settled: None }, true).await;
        progress.stopped |= d.stopped;
    }
    let d = (progress.elapsed, progress.stopped, progress.paused);
    finish(run, idx, phase, progress.most_sessions, d, report_dir)
}

/// One search (over `on`, the phase narrowed to one browser when it spans several), continuing
/// from `done`. Returns false when the phase must end here (stopped, paused, out of budget).
async fn search(
    run: &Arc<RunShared>,
    faults: &Arc<FaultPlan>,
    idx: u32,
    (on, spec, shape): (&PhaseConfig, &CapacitySpec, SearchShape),
    (label, mut done): (Option<String>, Vec<(u32, bool)>),
    progress: &mut Progress,
) -> Result<bool, RunError> {
    let corr = format!("{}/{}", run.id, on.name);
    let where_ = label.as_ref().map(|b| format!(" on {b}")).unwrap_or_default();
    run.event(
        corr.clone(),
        Some(idx),
        Event::CapacitySearch {
            browser: label.clone(),
            min: shape.min,
            max: shape.max,
            step: shape.step,
            step_ms: spec.step_duration.as_millis() as u64,
            warmup_ms: spec.warmup.as_millis() as u64,
        },
    );
    while let Some(n) = next_count(shape, &done) {
        if run.stop.is_stopping() {
            progress.stopped = true;
            return Ok(false);
        }
        if progress.elapsed + spec.step_duration > on.duration {
            tracing::warn!(target: "stressctl::campaign", corr = %corr, "capacity search{where_}: the phase's duration ({}) holds no further step of {}: the search ends here", crate::fmt::fmt_duration(on.duration), crate::fmt::fmt_duration(spec.step_duration));
            return Ok(false);
        }
        if run.nowhere_to_run(on).is_some() {
            // the browser refused the task: its `task_unsupported` event says so
            break;
        }
        let (placement, grid_note) = place(run, on, n, false).await;
        if let Some(note) = grid_note {
            tracing::warn!(target: "stressctl::campaign", corr = %corr, "capacity search{where_}: {note}");
        }
        if (placement.len() as u32) < n {
            tracing::warn!(target: "stressctl::campaign", corr = %corr, "capacity search{where_}: only {} of {n} sessions can be placed: the search ends below its answer", placement.len());
            break;
        }
        let mut step = on.clone();
        step.sessions = n;
        let measure = spec.step_duration.saturating_sub(spec.warmup);
        let limits = (step.criteria.min_success_rate, step.criteria.max_p95);
        let settled = move |d: &LiveSnapshot, since: Duration| settled(d, since, measure, limits).is_some();
        let clock = Clock {
            duration: progress.elapsed + spec.step_duration,
            offset: progress.elapsed,
            mark: Some(spec.warmup),
            settled: Some(&settled),
        };
        let d = drive(run, faults, idx, &step, &placement, clock, !progress.announced).await;
        progress.announced = true;
        progress.elapsed = d.elapsed;
        progress.most_sessions = progress.most_sessions.max(n);
        if d.stopped || d.paused {
            // a step cut short measured nothing that can be judged
            progress.stopped |= d.stopped;
            progress.paused |= d.paused;
            return Ok(false);
        }
        let (measured, delta) = match &d.at_mark {
            Some((t0, before)) => (d.ended.saturating_duration_since(*t0), d.live.snapshot().since(before)),
            // every slot ended before the warm-up did: nothing was measured
            None => {
                let now = d.live.snapshot();
                (Duration::ZERO, now.since(&now))
            }
        };
        let passed = judge_step(run, idx, on, (label.clone(), n), (measured, d.settled_early), &delta);
        done.push((n, passed));
    }
    run.store.flush()?;
    let reader = StoreReader::open(run.store.path())?;
    if let Some(c) = capacity_of(&reader, idx)?.into_iter().find(|c| c.browser == label) {
        tracing::info!(target: "stressctl::campaign", corr = %corr, "capacity: {}", c.answer);
    }
    Ok(true)
}

/// Whether a step's verdict is already settled after `since` of its measured part (`measure`
/// long), from what it measured so far (`d`) and the criteria (`(min_success_rate, max_p95)`):
/// `Some(false)` when more ops have failed, or run at or over the p95 limit, than the whole step
/// could absorb at one and a half times the rate seen so far (from 2 s and 20 ops on);
/// `Some(true)` when, a third of the way through, three quarters of what the step may have is
/// still unused:
/// at most a quarter of the failures its success rate allows, and at most 1.25 % of its ops at or
/// over the p95 limit (from 50 ops on). Such a step ends early and is judged on what it
/// measured: a search spends its time on the counts still in doubt.
fn settled(d: &LiveSnapshot, since: Duration, measure: Duration, (min_rate, max_p95): (f64, Duration)) -> Option<bool> {
    let a = d.counts.attempted;
    if since < Duration::from_secs(2) || a < 20 || since >= measure {
        return None;
    }
    let failed = d.counts.attempted.saturating_sub(d.counts.succeeded) as f64;
    let h = if d.in_page.is_empty() { &d.hist } else { &d.in_page };
    let limit_us = max_p95.as_micros().min(u64::MAX as u128) as u64;
    let over = h.count_between(limit_us, h.max().max(limit_us)) as f64;
    let projected = a as f64 * measure.as_secs_f64() / since.as_secs_f64().max(1e-3) * 1.5;
    if failed > (1.0 - min_rate) * projected || over > 0.05 * projected {
        return Some(false);
    }
    let a = a as f64;
    if since * 3 >= measure && a >= 50.0 && failed <= (1.0 - min_rate) * a / 4.0 && over <= 0.05 * a / 4.0 {
        return Some(true);
    }
    None
}

/// Judges one step of `n` sessions on what it measured after its warm-up (`delta` over
/// `measured`; `settled_early`: it was ended when its verdict was settled) against the phase's criteria, records it as a `capacity_step` event and returns
/// whether it held.
fn judge_step(
    run: &Arc<RunShared>,
    idx: u32,
    on: &PhaseConfig,
    (browser, n): (Option<String>, u32),
    (measured, settled_early): (Duration, bool),
    delta: &LiveSnapshot,
) -> bool {
    let c = delta.counts;
    let round_trip = LatencySummary::of(&delta.hist);
    let in_page = (!delta.in_page.is_empty()).then(|| LatencySummary::of(&delta.in_page));
    let (judged, basis) = crate::report::criteria_latency(&round_trip, in_page.as_ref());
    let criteria = crate::report::evaluate_criteria(
        c.attempted,
        c.succeeded,
        0,
        (judged.p95, basis),
        on.criteria.min_success_rate,
        on.criteria.max_p95.as_millis() as u64,
    );
    let secs = measured.as_secs_f64();
    let ops_per_s = if secs > 0.0 { c.attempted as f64 / secs } else { 0.0 };
    let event = Event::CapacityStep {
        browser,
        sessions: n,
        attempted: c.attempted,
        succeeded: c.succeeded,
        p95_ms: judged.p95,
        p95_basis: basis.to_string(),
        ops_per_s,
        measured_ms: measured.as_millis() as u64,
        passed: criteria.passed,
        failures: criteria.failures,
        settled_early,
    };
    run.event(format!("{}/{}", run.id, on.name), Some(idx), event);
    criteria.passed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::shared::OpCounts;
    use crate::metrics::new_histogram;

    fn snap(attempted: u64, failed: u64, over: u64) -> LiveSnapshot {
        let mut in_page = new_histogram();
        for i in 0..attempted {
            // `over` ops at 80 ms, the rest at 10 ms
            in_page.record(if i < over { 80_000 } else { 10_000 }).unwrap();
        }
        LiveSnapshot { counts: OpCounts { attempted, succeeded: attempted - failed, failed }, hist: in_page.clone(), in_page }
    }

    const LIMITS: (f64, Duration) = (0.99, Duration::from_millis(50));
    const MEASURE: Duration = Duration::from_secs(10);

    #[test]
    fn a_step_settles_only_with_a_margin() {
        let s = |d: &LiveSnapshot, secs: u64| settled(d, Duration::from_secs(secs), MEASURE, LIMITS);
        // too early or too few ops: never
        assert_eq!(s(&snap(1000, 500, 0), 1), None);
        assert_eq!(s(&snap(10, 10, 0), 3), None);
        // 3 s of 10 s, 300 ops: the step will have about 1000, at most 1500; 1 % of that is 15
        assert_eq!(s(&snap(300, 16, 0), 3), Some(false));
        assert_eq!(s(&snap(300, 10, 0), 3), None);
        // over the p95 limit: more than 5 % of 1500
        assert_eq!(s(&snap(300, 0, 76), 3), Some(false));
        assert_eq!(s(&snap(300, 0, 40), 3), None);
        // a third of the way with room to spare: held
        assert_eq!(s(&snap(500, 1, 6), 4), Some(true));
        assert_eq!(s(&snap(500, 0, 7), 4), None, "1.4 % over the limit: still in doubt");
        assert_eq!(s(&snap(500, 2, 0), 4), None, "2 failures of the 5 allowed so far: still in doubt");
        assert_eq!(s(&snap(500, 0, 0), 3), None, "not yet a third of the way");
    }
}
