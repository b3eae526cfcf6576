//! Test vectors derived from resilience4j's `CircuitBreakerStateMachineTest`, run against the
//! public breaker API (`stressctl::breaker`).
//!
//! Each vector names the resilience4j test it follows. Where the contract here (DESIGN.md §3,
//! `src/breaker/mod.rs`) differs on purpose, the vector says so: a half-open breaker here closes
//! after `success_threshold` successful probes and reopens on any failed probe (Polly/failsafe
//! style) instead of judging a failure rate over the half-open calls; counters are lifetime
//! counters, not reset on each transition; and the open duration grows per consecutive open
//! (`recovery_timeout * backoff_factor^(n-1)`, capped), like resilience4j's
//! `IntervalFunction.ofExponentialBackoff(initial, multiplier, max)`.
//!
//! The clock is injected: `t(ms)` is a fixed base plus milliseconds, like resilience4j's
//! `MockClock`. The open deadline is exclusive, as resilience4j's
//! `clock.instant().isAfter(retryAfterWaitDuration)`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stressctl::breaker::{Breaker, BreakerConfig, BreakerMetrics, BreakerState, Outcome, Rejected};
use BreakerState::{Closed, Disabled, ForcedOpen, HalfOpen, Open};

const S: Outcome = Outcome::Success;
const F: Outcome = Outcome::Failure;
const NS: Duration = Duration::from_nanos(1);

/// A clock for one vector: `at(ms)` is `ms` milliseconds after a fixed base.
struct Clock(Instant);

impl Clock {
    fn new() -> Clock {
        Clock(Instant::now())
    }
    fn at(&self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms)
    }
}

/// resilience4j's test setup, mapped: a count window of 5 with a 50 % threshold, 5 s in the open
/// state, 4 permitted half-open calls. Only the rate rule can open (the consecutive-failure rule
/// is set out of reach), and 4 successful probes close, as 4 successful half-open calls do there.
fn r4j() -> BreakerConfig {
    BreakerConfig {
        failure_threshold: 1000,
        failure_rate_threshold: 50.0,
        window_size: 5,
        minimum_calls: 5,
        recovery_timeout: Duration::from_secs(5),
        backoff_factor: 1.0,
        max_recovery_timeout: Duration::from_secs(5),
        half_open_max_calls: 4,
        success_threshold: 4,
    }
}

fn metrics(b: &Breaker, now: Instant) -> BreakerMetrics {
    b.metrics(now, (now, UNIX_EPOCH + Duration::from_secs(1_700_000_000)))
}

/// (successes, failures, window calls, rejected) — resilience4j's
/// `assertCircuitBreakerMetricsEqualTo` minus the rate, which is checked through `health_percent`.
fn counts(b: &Breaker, now: Instant) -> (u64, u64, u32, u64) {
    let m = metrics(b, now);
    (m.successes, m.failures, m.window_calls, m.rejected)
}

/// One permitted call with `outcome`, all at `now`.
fn call(b: &mut Breaker, outcome: Outcome, now: Instant) {
    let permit = b.acquire(now).unwrap_or_else(|r| panic!("call rejected: {r}"));
    b.record(permit, outcome, now);
}

/// A breaker opened by five failures at `now` (resilience4j: `transitionToOpenState()`).
fn opened(config: BreakerConfig, now: Instant) -> Breaker {
    let mut b = Breaker::new(config);
    for _ in 0..5 {
        call(&mut b, F, now);
    }
    assert_eq!(b.state(now), Open);
    b
}

/// `shouldOpenAfterFailureRateThresholdExceeded`: F F F S S over a window of 5 is 60 % ≥ 50 %,
/// and the breaker opens on the fifth call (a success), not before: the window is not full.
#[test]
fn opens_when_the_full_count_window_reaches_the_failure_rate() {
    let c = Clock::new();
    let now = c.at(0);
    let mut b = Breaker::new(r4j());
    assert_eq!(counts(&b, now), (0, 0, 0, 0));
    let steps = [(F, (0, 1, 1, 0)), (F, (0, 2, 2, 0)), (F, (0, 3, 3, 0)), (S, (1, 3, 4, 0))];
    for (outcome, want) in steps {
        call(&mut b, outcome, now);
        assert_eq!(b.state(now), Closed, "below minimum_calls the rate rule waits");
        assert_eq!(counts(&b, now), want);
    }
    call(&mut b, S, now);
    assert_eq!(b.state(now), Open);
    let m = metrics(&b, now);
    assert_eq!((m.window_calls, m.failures, m.successes), (5, 3, 2));
    assert!((m.health_percent - 40.0).abs() < 1e-9, "failure rate 60 % is health 40 %: {}", m.health_percent);
    // A call now is not permitted and is counted as such.
    assert_eq!(b.acquire(now), Err(Rejected { state: Open, retry_after: Some(Duration::from_secs(5)) }));
    assert_eq!(counts(&b, now), (2, 3, 5, 1));
}

/// The threshold is inclusive (`failureRate >= failureRateThreshold`): exactly 50 % opens; 40 %
/// does not, and the count window slides, dropping the oldest outcome.
#[test]
fn failure_rate_threshold_is_inclusive_and_the_window_slides() {
    let c = Clock::new();
    let now = c.at(0);
    let mut b = Breaker::new(BreakerConfig { window_size: 4, minimum_calls: 4, ..r4j() });
    for o in [F, S, S, S, F, S] {
        // windows once full: FSSS 25 %, SSSF 25 %, SSFS 25 %
        call(&mut b, o, now);
        assert_eq!(b.state(now), Closed);
    }
    call(&mut b, F, now); // SFSF: 50 %
    assert_eq!(b.state(now), Open);

    let mut b = Breaker::new(r4j());
    for o in [F, S, F, S, S] {
        call(&mut b, o, now); // 40 % over 5
    }
    assert_eq!(b.state(now), Closed);
    call(&mut b, S, now); // drops the first F: S F S S S, 20 %
    call(&mut b, F, now); // F S S S F, 40 %
    assert_eq!(b.state(now), Closed);
    call(&mut b, F, now); // S S S F F, 40 %
    call(&mut b, F, now); // S S F F F, 60 %
    assert_eq!(b.state(now), Open);
}

/// resilience4j's `minimumNumberOfCalls`: with a window of 10 and a minimum of 5, four failures
/// (100 %) keep it closed and the fifth opens it.
#[test]
fn minimum_calls_gate_the_rate_rule() {
    let c = Clock::new();
    let now = c.at(0);
    let mut b = Breaker::new(BreakerConfig { window_size: 10, minimum_calls: 5, ..r4j() });
    for _ in 0..4 {
        call(&mut b, F, now);
    }
    assert_eq!(b.state(now), Closed);
    assert_eq!(metrics(&b, now).health_percent, 0.0);
    call(&mut b, F, now);
    assert_eq!(b.state(now), Open);
}

/// `shouldTransitionToHalfOpenAfterWaitDuration`: open for 5 s; at 3 s still open; at exactly 5 s
/// still open (the deadline is exclusive: `isAfter`); the first call after 5 s is let through and
/// finds the breaker half-open. Rejections are counted (`getNumberOfNotPermittedCalls`).
#[test]
fn transitions_to_half_open_only_strictly_after_the_wait_duration() {
    let c = Clock::new();
    let mut b = opened(r4j(), c.at(0));
    assert_eq!(b.acquire(c.at(0)).map_err(|r| r.state), Err(Open));
    assert_eq!(b.state(c.at(3000)), Open);
    assert_eq!(b.acquire(c.at(3000)), Err(Rejected { state: Open, retry_after: Some(Duration::from_secs(2)) }));
    assert_eq!(counts(&b, c.at(3000)).3, 2);

    // Exactly at the deadline: still open, still rejected.
    assert_eq!(b.state(c.at(5000)), Open);
    assert_eq!(b.acquire(c.at(5000)), Err(Rejected { state: Open, retry_after: Some(Duration::ZERO) }));
    assert_eq!(counts(&b, c.at(5000)).3, 3);

    // The first call strictly after it is the probe.
    let probe = b.acquire(c.at(5000) + NS).expect("first call after the deadline is permitted");
    assert_eq!(b.state(c.at(5000) + NS), HalfOpen);
    let ts = b.drain_transitions();
    let last = ts.last().expect("a transition");
    assert_eq!((last.from, last.to, last.at), (Open, HalfOpen, c.at(5000)));
    b.record(probe, S, c.at(5000) + NS);
    assert_eq!(counts(&b, c.at(5000) + NS).3, 3);
}

/// `shouldOnlyPermitFourCallsInHalfOpenState` / `shouldIncreaseCounterOnReleasePermission`:
/// four probes at once, the fifth and sixth rejected (and counted); releasing a permit
/// (`Outcome::Ignored`, resilience4j's `releasePermission`) lets one more through. After a reopen,
/// the next half-open period has four fresh slots.
#[test]
fn half_open_permits_exactly_half_open_max_calls_at_once() {
    let c = Clock::new();
    let mut b = opened(r4j(), c.at(0));
    let now = c.at(5001);
    let permits: Vec<_> = (0..4).map(|i| b.acquire(now).unwrap_or_else(|r| panic!("probe {i}: {r}"))).collect();
    assert_eq!(b.acquire(now), Err(Rejected { state: HalfOpen, retry_after: None }));
    assert_eq!(b.acquire(now), Err(Rejected { state: HalfOpen, retry_after: None }));
    assert_eq!(metrics(&b, now).rejected, 2);

    let mut permits = permits.into_iter();
    let first = permits.next().expect("four permits");
    b.record(first, Outcome::Ignored, now);
    let again = b.acquire(now).expect("a released slot is free again");
    assert_eq!(b.acquire(now).map_err(|r| r.state), Err(HalfOpen));

    // A failed probe reopens; the next half-open period has four slots again.
    b.record(again, F, now);
    assert_eq!(b.state(now), Open);
    for p in permits {
        b.record(p, Outcome::Ignored, now); // stale: from the previous half-open period
    }
    let later = now + Duration::from_secs(5) + NS;
    for i in 0..4 {
        assert!(b.acquire(later).is_ok(), "probe {i} of the second half-open period");
    }
    assert_eq!(b.acquire(later).map_err(|r| r.state), Err(HalfOpen));
}

/// `shouldTransitionBackToClosedStateWhenFailureIsBelowThreshold` and
/// `shouldIgnoreExceptionsAndThenTransitionToClosed`, in this contract's terms: successful probes
/// close the breaker at `success_threshold`; ignored outcomes release their slot and count for
/// nothing; the closed breaker starts from an empty window.
#[test]
fn half_open_closes_after_success_threshold_successes_and_ignores_ignored() {
    let c = Clock::new();
    let mut b = opened(r4j(), c.at(0));
    let now = c.at(5001);
    for _ in 0..4 {
        let p = b.acquire(now).expect("probe");
        b.record(p, Outcome::Ignored, now);
        assert_eq!(b.state(now), HalfOpen);
    }
    for i in 1..=3 {
        call(&mut b, S, now);
        assert_eq!(b.state(now), HalfOpen, "after {i} successful probes");
    }
    call(&mut b, S, now);
    assert_eq!(b.state(now), Closed);
    let m = metrics(&b, now);
    assert_eq!((m.window_calls, m.health_percent, m.recoveries, m.consecutive_opens), (0, 100.0, 1, 0));
    // The fifth call fills the new window from empty.
    call(&mut b, S, now);
    assert_eq!(metrics(&b, now).window_calls, 1);
}

/// `shouldTransitionBackToOpenStateWhenFailureRateIsAboveThreshold`, in this contract's terms:
/// any failed probe reopens at once (resilience4j waits for the half-open window to fill and then
/// judges its failure rate).
#[test]
fn a_failed_probe_reopens_at_once() {
    let c = Clock::new();
    let mut b = opened(r4j(), c.at(0));
    let now = c.at(5001);
    call(&mut b, S, now);
    call(&mut b, S, now);
    call(&mut b, F, now);
    assert_eq!(b.state(now), Open);
    assert_eq!(b.acquire(now), Err(Rejected { state: Open, retry_after: Some(Duration::from_secs(5)) }));
    let m = metrics(&b, now);
    assert_eq!((m.opens, m.recoveries, m.consecutive_opens), (2, 0, 2));
}

/// `shouldTransitionToHalfOpenAfterWaitInterval` with `IntervalFunction.ofExponentialBackoff(5 s)`
/// (multiplier 1.5): 5 s, then 7.5 s (still open at 6 s, half-open after 7.5 s), then 11.25 s;
/// with a cap of 15 s, 16.875 s becomes 15 s and stays there. Closing starts over from 5 s.
#[test]
fn open_durations_grow_exponentially_up_to_the_cap() {
    let c = Clock::new();
    let config = BreakerConfig { backoff_factor: 1.5, max_recovery_timeout: Duration::from_secs(15), ..r4j() };
    let mut b = opened(config, c.at(0));
    let mut opened_at = c.at(0);
    let expected_ms = [5000, 7500, 11_250, 15_000, 15_000];
    for (i, &ms) in expected_ms.iter().enumerate() {
        assert_eq!(metrics(&b, opened_at).open_timeout, Duration::from_millis(ms), "open #{}", i + 1);
        let deadline = opened_at + Duration::from_millis(ms);
        if i == 1 {
            // resilience4j's "still open at 6 s, because the new wait duration of 7.5 s is not elapsed"
            assert_eq!(b.acquire(opened_at + Duration::from_secs(6)).map_err(|r| r.state), Err(Open));
        }
        assert_eq!(b.acquire(deadline), Err(Rejected { state: Open, retry_after: Some(Duration::ZERO) }));
        let probe = b.acquire(deadline + NS).expect("probe after the deadline");
        b.record(probe, F, deadline + NS);
        opened_at = deadline + NS;
    }
    // Recover: four successful probes, then the next open is 5 s again.
    let probe_at = opened_at + Duration::from_secs(15) + NS;
    for _ in 0..4 {
        call(&mut b, S, probe_at);
    }
    assert_eq!(b.state(probe_at), Closed);
    for _ in 0..5 {
        call(&mut b, F, probe_at);
    }
    assert_eq!(b.acquire(probe_at), Err(Rejected { state: Open, retry_after: Some(Duration::from_secs(5)) }));
}

/// `shouldForceOpenCircuitBreaker`: forced open rejects every call, does not move to half-open
/// after the wait duration, and counts the rejections (2).
#[test]
fn forced_open_rejects_and_never_times_out() {
    let c = Clock::new();
    let mut b = Breaker::new(r4j());
    b.force_open(c.at(0));
    assert_eq!(b.state(c.at(0)), ForcedOpen);
    assert_eq!(b.acquire(c.at(0)), Err(Rejected { state: ForcedOpen, retry_after: None }));
    assert_eq!(b.acquire(c.at(6000)), Err(Rejected { state: ForcedOpen, retry_after: None }));
    assert_eq!(b.state(c.at(6000)), ForcedOpen);
    assert_eq!(counts(&b, c.at(6000)), (0, 0, 0, 2));
    // Forced open is a manual state, not an open: no opens, no open time.
    let m = metrics(&b, c.at(6000));
    assert_eq!((m.opens, m.total_open_time), (0, Duration::ZERO));
}

/// `shouldDisableCircuitBreaker`: disabled permits every call and records nothing toward a
/// transition (an empty window, never opens); here the lifetime counters still count the calls.
#[test]
fn disabled_permits_everything_and_records_nothing_toward_transitions() {
    let c = Clock::new();
    let mut b = Breaker::new(r4j());
    b.disable(c.at(0));
    assert_eq!(b.state(c.at(0)), Disabled);
    call(&mut b, S, c.at(0));
    for _ in 0..4 {
        call(&mut b, F, c.at(0));
    }
    assert_eq!(b.state(c.at(0)), Disabled);
    let m = metrics(&b, c.at(0));
    assert_eq!((m.window_calls, m.rejected, m.opens), (0, 0, 0));
    assert_eq!((m.calls, m.successes, m.failures), (5, 1, 4));
}

/// `shouldResetToClosedState` / `shouldResetClosedState`: reset from open closes the breaker and
/// empties the window.
#[test]
fn reset_closes_and_empties_the_window() {
    let c = Clock::new();
    let mut b = opened(r4j(), c.at(0));
    b.reset(c.at(1));
    assert_eq!(b.state(c.at(1)), Closed);
    assert_eq!(metrics(&b, c.at(1)).window_calls, 0);
    assert!(b.acquire(c.at(1)).is_ok());

    let mut b = Breaker::new(r4j());
    call(&mut b, S, c.at(0));
    call(&mut b, S, c.at(0));
    assert_eq!(metrics(&b, c.at(0)).window_calls, 2);
    b.reset(c.at(0));
    assert_eq!((b.state(c.at(0)), metrics(&b, c.at(0)).window_calls), (Closed, 0));
}

/// The consecutive-failure rule of this contract (DESIGN.md §3), which resilience4j does not
/// have, next to the rate rule: three failures in a row open before the window holds
/// `minimum_calls`, and a success breaks the streak.
#[test]
fn consecutive_failures_open_before_the_rate_rule_applies() {
    let c = Clock::new();
    let now = c.at(0);
    let mut b = Breaker::new(BreakerConfig { failure_threshold: 3, window_size: 10, minimum_calls: 10, ..r4j() });
    for o in [F, F, S, F, F] {
        call(&mut b, o, now);
    }
    assert_eq!(b.state(now), Closed);
    call(&mut b, F, now);
    assert_eq!(b.state(now), Open);
    assert_eq!(
        b.drain_transitions().last().map(|t| t.reason.clone()),
        Some("3 consecutive failures (threshold 3); open for 5s".to_string())
    );
}

/// Rendered times do not depend on the wall clock: the anchor maps the injected clock.
#[test]
fn metrics_render_transition_times_from_the_anchor() {
    let c = Clock::new();
    let b = opened(r4j(), c.at(1500));
    let m = b.metrics(c.at(2000), (c.at(0), SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
    assert_eq!(m.history.last().map(|t| t.at.as_str()), Some("2023-11-14T22:13:21.500Z"));
}
