//! Capacity search: which count of sessions to measure next (the runner asks [`next_count`] with
//! the steps measured so far), and what the measured steps say (the report reads them back from
//! the store's `capacity_search` and `capacity_step` events). One function decides both, so a
//! resumed search continues exactly where the report says it stood.
//!
//! The search is stateless: the next count follows from the steps measured so far alone. Counts
//! rise from the lowest (by `step`, or doubling) until one fails; then the search bisects between
//! the highest passing count below the lowest failing one and that failing count, until they
//! are neighbours. A noisy machine can make a higher count pass where a lower one failed: the
//! lowest failure bounds the answer, so the answer never claims more than was seen to hold below
//! every failure.

use super::numbers::{fmt_ms, pct_counts, round3};
use super::typed_events::for_each_typed;
use crate::events::Event;
use crate::store::{StoreError, StoreReader};
use serde::{Deserialize, Serialize};

/// The search's bounds and growth (`[phases.capacity]` with the phase's `sessions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchShape {
    /// The lowest count tried.
    pub min: u32,
    /// The highest count tried.
    pub max: u32,
    /// Sessions added per rising step; 0 doubles.
    pub step: u32,
}

impl SearchShape {
    /// The count after `n` on the way up (at least `n + 1`, never past `max`).
    pub fn grow(&self, n: u32) -> u32 {
        let next = if self.step == 0 { n.saturating_mul(2) } else { n.saturating_add(self.step) };
        next.max(n.saturating_add(1)).min(self.max)
    }
}

/// What the steps measured so far (count, held?) say: the highest count known to hold below the
/// lowest failing one, and that failing count.
fn bounds(done: &[(u32, bool)]) -> (Option<u32>, Option<u32>) {
    let lowest_fail = done.iter().filter(|(_, ok)| !ok).map(|(n, _)| *n).min();
    let best = done.iter().filter(|(n, ok)| *ok && lowest_fail.is_none_or(|f| *n < f)).map(|(n, _)| *n).max();
    (best, lowest_fail)
}

/// The next count to measure after `done` (count, held?) in the order measured, or None when the
/// search has its answer: neighbours found, the lowest count failed, or the highest held.
pub fn next_count(shape: SearchShape, done: &[(u32, bool)]) -> Option<u32> {
    let (best, fail) = bounds(done);
    match (best, fail) {
        (None, None) => Some(shape.min),
        (Some(b), None) => (b < shape.max).then(|| shape.grow(b)),
        // the lowest count failed, or a failure below every pass: measure the lowest count
        (None, Some(f)) => (f > shape.min && !done.iter().any(|(n, _)| *n == shape.min)).then_some(shape.min),
        (Some(b), Some(f)) => (f > b + 1).then(|| b + (f - b) / 2),
    }
}

/// One measured step, as the report shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacityStep {
    /// 1-based position in the order measured.
    pub order: u32,
    /// Sessions it ran.
    pub sessions: u32,
    /// Ops attempted after its warm-up.
    pub attempted: u64,
    /// Of them, succeeded.
    pub succeeded: u64,
    /// Success rate as a percentage string floored to 0.1 (`pct_counts`), "-" without ops.
    pub success_pct: String,
    /// The p95 the criteria judged, ms.
    pub p95_ms: f64,
    /// `in_page` or `round_trip`.
    pub p95_basis: String,
    /// Ops per second after its warm-up.
    pub ops_per_s: f64,
    /// Length of the measured part, seconds.
    pub measured_s: f64,
    /// It met the phase's criteria.
    pub passed: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// It was ended before its time because its verdict was already settled.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ended_early: bool,
}

/// One capacity search (one browser, or the phase's placement): its shape, every step (sorted by
/// sessions: the curve of throughput and p95 against load) and the answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacityReport {
    /// The browser searched, when the phase spans several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    /// The lowest count tried.
    pub min_sessions: u32,
    /// The highest count tried.
    pub max_sessions: u32,
    /// Sessions added per rising step (0 doubles).
    pub step: u32,
    /// Length of one step, seconds.
    pub step_s: f64,
    /// Unmeasured start of each step, seconds.
    pub warmup_s: f64,
    /// The highest count that held below every failing one; None when even the lowest failed or
    /// nothing was measured.
    pub max_sustainable: Option<u32>,
    /// The search reached its answer (it was not cut short by a stop or its budget).
    pub complete: bool,
    /// The lowest failing count (N+1 when the search completed below `max_sessions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failing: Option<u32>,
    /// The answer in one sentence: "max sustainable sessions: N (p95 …, success …, ops/s …);
    /// N+1 fails: <criterion and value>".
    pub answer: String,
    /// Every step, by sessions.
    pub steps: Vec<CapacityStep>,
}

impl CapacityReport {
    /// The step measured at `n` sessions.
    pub fn step_at(&self, n: u32) -> Option<&CapacityStep> {
        self.steps.iter().find(|s| s.sessions == n)
    }

    /// The (count, held?) pairs in the order measured, for [`next_count`].
    pub fn done(&self) -> Vec<(u32, bool)> {
        let mut by_order: Vec<&CapacityStep> = self.steps.iter().collect();
        by_order.sort_by_key(|s| s.order);
        by_order.iter().map(|s| (s.sessions, s.passed)).collect()
    }

    /// The shape it searched.
    pub fn shape(&self) -> SearchShape {
        SearchShape { min: self.min_sessions, max: self.max_sessions, step: self.step }
    }

    /// Recomputes the answer from the steps.
    fn conclude(&mut self) {
        self.steps.sort_by_key(|s| (s.sessions, s.order));
        let done = self.done();
        let (best, fail) = bounds(&done);
        self.max_sustainable = best;
        self.first_failing = fail;
        self.complete = next_count(self.shape(), &done).is_none();
        let figures = |s: &CapacityStep| {
            let which = if s.p95_basis == "in_page" { "in-page p95" } else { "p95" };
            format!("{which} {}, success {}%, {:.1} ops/s", fmt_ms(s.p95_ms), s.success_pct, s.ops_per_s)
        };
        let why = |n: u32| self.step_at(n).map(|s| s.failures.join("; ")).unwrap_or_default();
        let answer = match (best, fail) {
            (None, None) => "no step was measured (the search was cut short)".to_string(),
            (None, Some(1)) => format!("no sustainable count: 1 session already fails: {}", why(1)),
            (None, Some(f)) => format!("no sustainable count: {f} sessions already fail: {}", why(f)),
            (Some(b), f) => {
                let at = self.step_at(b).map(figures).unwrap_or_default();
                let head = if self.complete || f == Some(b + 1) {
                    format!("max sustainable sessions: {b} ({at})")
                } else {
                    format!("max sustainable sessions: at least {b} ({at})")
                };
                match f {
                    Some(f) if f == b + 1 => format!("{head}; {f} fails: {}", why(f)),
                    Some(f) => format!("{head}; {f} fails: {}; {}..{} not measured (the search was cut short)", why(f), b + 1, f - 1),
                    None if b >= self.max_sessions => {
                        format!("{head}, the search's upper bound: raise [phases.capacity] max_sessions to look further")
                    }
                    None => format!("{head}; the search was cut short before a failing count"),
                }
            }
        };
        self.answer = match &self.browser {
            Some(b) => format!("{b}: {answer}"),
            None => answer,
        };
    }
}

/// The capacity searches of phase `idx`, in the order they began (none for a load phase). A
/// search that began again (a resumed or re-run phase) continues the one recorded before it.
pub fn capacity_of(r: &StoreReader, idx: u32) -> Result<Vec<CapacityReport>, StoreError> {
    let mut out: Vec<CapacityReport> = Vec::new();
    for_each_typed(r, Some(idx), &["capacity_search", "capacity_step"], |_, ev| match ev {
        Event::CapacitySearch { browser, min, max, step, step_ms, warmup_ms } => {
            let shape = |c: &mut CapacityReport| {
                c.min_sessions = min;
                c.max_sessions = max;
                c.step = step;
                c.step_s = round3(step_ms as f64 / 1000.0);
                c.warmup_s = round3(warmup_ms as f64 / 1000.0);
            };
            match out.iter_mut().find(|c| c.browser == browser) {
                Some(c) => shape(c),
                None => {
                    let mut c = CapacityReport {
                        browser,
                        min_sessions: 0,
                        max_sessions: 0,
                        step: 0,
                        step_s: 0.0,
                        warmup_s: 0.0,
                        max_sustainable: None,
                        complete: false,
                        first_failing: None,
                        answer: String::new(),
                        steps: Vec::new(),
                    };
                    shape(&mut c);
                    out.push(c);
                }
            }
        }
        Event::CapacityStep {
            browser,
            sessions,
            attempted,
            succeeded,
            p95_ms,
            p95_basis,
            ops_per_s,
            measured_ms,
            passed,
            failures,
            settled_early,
        } => {
            if let Some(c) = out.iter_mut().find(|c| c.browser == browser) {
                // a step measured again after an interruption replaces the earlier one
                c.steps.retain(|s| s.sessions != sessions);
                let order = c.steps.iter().map(|s| s.order).max().unwrap_or(0) + 1;
                c.steps.push(CapacityStep {
                    order,
                    sessions,
                    attempted,
                    succeeded,
                    success_pct: pct_counts(succeeded, attempted),
                    p95_ms: round3(p95_ms),
                    p95_basis,
                    ops_per_s: round3(ops_per_s),
                    measured_s: round3(measured_ms as f64 / 1000.0),
                    passed,
                    failures,
                    ended_early: settled_early,
                });
            }
        }
        _ => {}
    })?;
    for c in &mut out {
        c.conclude();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against a machine that holds `cap` sessions; returns the counts measured.
    fn search(shape: SearchShape, holds: impl Fn(u32) -> bool) -> Vec<u32> {
        let mut done = Vec::new();
        while let Some(n) = next_count(shape, &done) {
            assert!(!done.iter().any(|(m, _)| *m == n), "{n} measured twice: {done:?}");
            assert!((shape.min..=shape.max).contains(&n));
            done.push((n, holds(n)));
            assert!(done.len() <= 64);
        }
        done.into_iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn doubling_then_bisecting_finds_the_limit_in_few_steps() {
        let shape = SearchShape { min: 1, max: 16, step: 0 };
        for cap in 1..=16 {
            let measured = search(shape, |n| n <= cap);
            let done: Vec<(u32, bool)> = measured.iter().map(|n| (*n, *n <= cap)).collect();
            assert_eq!(bounds(&done).0, Some(cap), "cap {cap}: {measured:?}");
            // a linear sweep measures 16 counts; the search at most 8
            assert!(measured.len() <= 8, "cap {cap}: {measured:?}");
        }
        assert_eq!(search(shape, |n| n <= 5), vec![1, 2, 4, 8, 6, 5]);
    }

    #[test]
    fn additive_steps_rise_by_step_and_stop_at_max() {
        let shape = SearchShape { min: 2, max: 10, step: 3 };
        assert_eq!(search(shape, |_| true), vec![2, 5, 8, 10]);
        assert_eq!(search(shape, |n| n <= 6), vec![2, 5, 8, 6, 7]);
    }

    #[test]
    fn a_failing_lowest_count_ends_the_search_at_once() {
        let shape = SearchShape { min: 3, max: 12, step: 0 };
        assert_eq!(search(shape, |_| false), vec![3]);
    }

    #[test]
    fn noise_cannot_claim_more_than_held_below_every_failure() {
        // 4 fails, 8 passes by luck: the answer stays below 4
        let shape = SearchShape { min: 1, max: 8, step: 0 };
        let measured = search(shape, |n| n != 4 && n <= 8 && n != 3);
        assert_eq!(measured, vec![1, 2, 4, 3]);
        let done = [(1, true), (2, true), (4, false), (3, false)];
        assert_eq!(bounds(&done), (Some(2), Some(3)));
    }

    #[test]
    fn a_resumed_search_continues_from_the_steps_already_measured() {
        let shape = SearchShape { min: 1, max: 16, step: 0 };
        assert_eq!(next_count(shape, &[(1, true), (2, true), (4, true), (8, false)]), Some(6));
        assert_eq!(next_count(shape, &[(1, true), (2, true), (4, true), (8, false), (6, true), (7, false)]), None);
    }

    fn step(order: u32, sessions: u32, passed: bool, why: &str) -> CapacityStep {
        CapacityStep {
            order,
            sessions,
            attempted: 100,
            succeeded: if passed { 100 } else { 90 },
            success_pct: if passed { "100.0".into() } else { "90.0".into() },
            p95_ms: 12.5,
            p95_basis: "in_page".into(),
            ops_per_s: 10.0 * sessions as f64,
            measured_s: 15.0,
            passed,
            failures: if passed { vec![] } else { vec![why.into()] },
            ended_early: false,
        }
    }

    fn report(steps: Vec<CapacityStep>) -> CapacityReport {
        let mut c = CapacityReport {
            browser: Some("chromium".into()),
            min_sessions: 1,
            max_sessions: 8,
            step: 0,
            step_s: 20.0,
            warmup_s: 5.0,
            max_sustainable: None,
            complete: false,
            first_failing: None,
            answer: String::new(),
            steps,
        };
        c.conclude();
        c
    }

    #[test]
    fn the_answer_names_the_limit_its_figures_and_why_the_next_count_fails() {
        let c = report(vec![
            step(1, 1, true, ""),
            step(2, 2, true, ""),
            step(3, 4, false, "success rate 90.0% below 99.0%"),
            step(4, 3, false, "in-page p95 900 ms not below the 500 ms limit"),
        ]);
        assert_eq!(c.max_sustainable, Some(2));
        assert!(c.complete);
        assert_eq!(
            c.answer,
            "chromium: max sustainable sessions: 2 (in-page p95 12.5 ms, success 100.0%, 20.0 ops/s); 3 fails: in-page p95 900 ms not below the 500 ms limit"
        );
        assert_eq!(c.steps.iter().map(|s| s.sessions).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_cut_short_search_says_what_it_did_not_measure() {
        let c = report(vec![step(1, 1, true, ""), step(2, 2, true, ""), step(3, 4, true, ""), step(4, 8, false, "x")]);
        assert!(!c.complete);
        assert!(c.answer.contains("at least 4") && c.answer.contains("5..7 not measured"), "{}", c.answer);
        let c = report(vec![step(1, 1, false, "no ops were attempted")]);
        assert_eq!(c.max_sustainable, None);
        assert!(c.answer.contains("no sustainable count: 1 session already fails: no ops were attempted"), "{}", c.answer);
        let c = report(vec![step(1, 1, true, ""), step(2, 2, true, ""), step(3, 4, true, ""), step(4, 8, true, "")]);
        assert!(c.complete && c.answer.contains("upper bound"), "{}", c.answer);
    }
}
