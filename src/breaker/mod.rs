//! Circuit breakers: a pure state machine per breaker ([`Breaker`]) and a thread-safe
//! [`BreakerRegistry`] of them keyed `worker:<id>`, `browser:<name>`, `task:<kind>` and
//! `hardware:<class>`.
//!
//! The semantics are resilience4j's CircuitBreaker. A breaker is `Closed` (every call runs)
//! until `failure_threshold` consecutive failures, or a failure rate of at least
//! `failure_rate_threshold` percent over the last `window_size` calls once `minimum_calls` are in
//! the window. It is then `Open` (calls are rejected) for `recovery_timeout * backoff_factor^(n-1)`,
//! capped at `max_recovery_timeout`, where `n` counts the opens since the breaker last closed.
//! The open deadline is exclusive, as in resilience4j (`Instant.isAfter(retryAfter)`): a call at
//! exactly the deadline is still rejected, and the first call strictly after it finds the breaker
//! `HalfOpen`. Then at most `half_open_max_calls` probes run at once, any failed probe opens it
//! again (for longer), and `success_threshold` successful probes close it.
//! `ForcedOpen` and `Disabled` are manual overrides that last until [`Breaker::reset`] (or an
//! operator's `close`/`reset`, [`ManualCommand`]).
//!
//! Nothing here reads a clock: every method takes `now`, so tests drive the breaker with
//! `base + Duration`. A call is [`Breaker::acquire`], then the work, then [`Breaker::record`]
//! with the [`Permit`]. State changes are queued as [`Transition`]s that the caller collects with
//! [`Breaker::drain_transitions`] (the registry does that for its callers).

mod manual;
mod registry;

pub use manual::{glob_match, is_glob, ManualCommand};
pub use registry::{AggregateCounts, BreakerRegistry, GateRejected, OpGate, OpPermit, RegistrySnapshot};

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How many transitions a breaker remembers; older ones are dropped and counted.
pub const HISTORY_CAPACITY: usize = 256;

/// Breaker settings of one scope.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (1 to 1000).
    pub failure_threshold: u32,
    /// Failure percentage over the window that opens the breaker (1 to 100).
    pub failure_rate_threshold: f64,
    /// How many of the most recent calls the sliding window holds (1 to 1000).
    pub window_size: u32,
    /// Calls the window must hold before the rate rule applies (1 to `window_size`).
    pub minimum_calls: u32,
    /// How long the first open lasts (1 ms to 1 h).
    pub recovery_timeout: Duration,
    /// Growth of the open duration per consecutive open (1 to 10).
    pub backoff_factor: f64,
    /// Cap of the open duration (`recovery_timeout` to 24 h).
    pub max_recovery_timeout: Duration,
    /// Probes allowed at once while half-open (1 to 100).
    pub half_open_max_calls: u32,
    /// Successful probes that close a half-open breaker (1 to 100).
    pub success_threshold: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 3,
            failure_rate_threshold: 50.0,
            window_size: 20,
            minimum_calls: 10,
            recovery_timeout: Duration::from_secs(10),
            backoff_factor: 2.0,
            max_recovery_timeout: Duration::from_secs(300),
            half_open_max_calls: 1,
            success_threshold: 2,
        }
    }
}

impl BreakerConfig {
    /// Checks every field against its allowed range; the error names the field and the range.
    pub fn validate(&self) -> Result<(), String> {
        fn int(name: &str, value: u32, min: u32, max: u32) -> Result<(), String> {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(format!("{name} must be from {min} to {max} (got {value})"))
            }
        }
        fn float(name: &str, value: f64, min: f64, max: f64) -> Result<(), String> {
            // `contains` is false for NaN, so NaN is rejected too.
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(format!("{name} must be from {min} to {max} (got {value})"))
            }
        }
        const HOUR: Duration = Duration::from_secs(3600);
        const DAY: Duration = Duration::from_secs(24 * 3600);

        int("failure_threshold", self.failure_threshold, 1, 1000)?;
        float("failure_rate_threshold", self.failure_rate_threshold, 1.0, 100.0)?;
        int("window_size", self.window_size, 1, 1000)?;
        if !(1..=self.window_size).contains(&self.minimum_calls) {
            return Err(format!("minimum_calls must be from 1 to window_size ({}) (got {})", self.window_size, self.minimum_calls));
        }
        if !(Duration::from_millis(1)..=HOUR).contains(&self.recovery_timeout) {
            return Err(format!("recovery_timeout must be from 1ms to 1h (got {:?})", self.recovery_timeout));
        }
        float("backoff_factor", self.backoff_factor, 1.0, 10.0)?;
        if !(self.recovery_timeout..=DAY).contains(&self.max_recovery_timeout) {
            return Err(format!(
                "max_recovery_timeout must be from recovery_timeout ({:?}) to 24h (got {:?})",
                self.recovery_timeout, self.max_recovery_timeout
            ));
        }
        int("half_open_max_calls", self.half_open_max_calls, 1, 100)?;
        int("success_threshold", self.success_threshold, 1, 100)?;
        Ok(())
    }

    /// The open duration of the `nth` consecutive open (1-based), capped.
    fn open_timeout(&self, nth: u32) -> Duration {
        let exponent = i32::try_from(nth.saturating_sub(1)).unwrap_or(i32::MAX);
        // In nanoseconds, f64 is exact up to 104 days, so integer factors give exact durations.
        let nanos = self.recovery_timeout.as_nanos() as f64 * self.backoff_factor.powi(exponent);
        if nanos < self.max_recovery_timeout.as_nanos() as f64 {
            Duration::from_nanos(nanos as u64)
        } else {
            // Also taken for NaN and infinity.
            self.max_recovery_timeout
        }
    }
}

/// The state of a breaker, as reported to callers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls run; failures are counted.
    Closed,
    /// Calls are rejected up to and including the open deadline.
    Open,
    /// A limited number of probe calls run to test recovery.
    HalfOpen,
    /// Calls are rejected until a manual reset.
    ForcedOpen,
    /// Calls run and nothing is counted toward transitions, until a manual reset.
    Disabled,
}

impl BreakerState {
    /// The snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::Disabled => "disabled",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a permitted call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The call succeeded.
    Success,
    /// The call failed in a way that says something about the protected resource.
    Failure,
    /// The call says nothing (cancelled, unsupported API, ...): the permit is released and
    /// nothing is counted.
    Ignored,
}

/// Permission to make one call; hand it back to [`Breaker::record`] of the breaker that issued it.
///
/// A permit that is dropped instead of recorded keeps a half-open probe slot taken until the
/// breaker next changes state, so record [`Outcome::Ignored`] for a call that did not run.
#[must_use = "record the permit's outcome (Outcome::Ignored if the call did not run)"]
#[derive(Debug, PartialEq, Eq)]
pub struct Permit {
    /// The breaker's generation when the permit was issued.
    generation: u64,
}

/// Why [`Breaker::acquire`] refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The state that rejected: `Open`, `HalfOpen` (all probe slots taken) or `ForcedOpen`.
    pub state: BreakerState,
    /// For `Open`, the time left until the deadline (zero at the deadline itself: the deadline is
    /// exclusive, so only a call strictly after `now + retry_after` can probe); `None` when unknown.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rejected by {} breaker", self.state)?;
        if let Some(after) = self.retry_after {
            write!(f, " (retry in {after:?})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejected {}

/// A change of state.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The state left.
    pub from: BreakerState,
    /// The state entered.
    pub to: BreakerState,
    /// When it happened. `Open -> HalfOpen` is stamped with the open deadline, whenever it is
    /// noticed.
    pub at: Instant,
    /// Why, for people: e.g. `3 consecutive failures (threshold 3); open for 10s`.
    pub reason: String,
}

/// A [`Transition`] with its time rendered as RFC 3339 UTC, for snapshots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransitionRecord {
    /// The state left.
    pub from: BreakerState,
    /// The state entered.
    pub to: BreakerState,
    /// When, e.g. `2026-05-01T22:13:20.123Z`.
    pub at: String,
    /// Why.
    pub reason: String,
}

/// What a breaker has done so far, as of a `now`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BreakerMetrics {
    /// The state at `now`.
    pub state: BreakerState,
    /// Calls permitted and then recorded as a success or a failure.
    pub calls: u64,
    /// Calls recorded as a success.
    pub successes: u64,
    /// Calls recorded as a failure.
    pub failures: u64,
    /// Calls refused by [`Breaker::acquire`].
    pub rejected: u64,
    /// Times the breaker opened on its own (`ForcedOpen` is not counted).
    pub opens: u64,
    /// Times a half-open breaker closed.
    pub recoveries: u64,
    /// Time spent `Open`, including the current open period up to `now`.
    #[serde(rename = "total_open_time_ms", serialize_with = "millis", deserialize_with = "from_millis")]
    pub total_open_time: Duration,
    /// `total_open_time / opens` (zero before the first open).
    #[serde(rename = "mean_open_time_ms", serialize_with = "millis", deserialize_with = "from_millis")]
    pub mean_open_time: Duration,
    /// Success percentage over the window; 100 when the window is empty.
    pub health_percent: f64,
    /// Calls in the window.
    pub window_calls: u32,
    /// While `Open`, this open's duration; otherwise the duration the next open would get.
    #[serde(rename = "open_timeout_ms", serialize_with = "millis", deserialize_with = "from_millis")]
    pub open_timeout: Duration,
    /// Opens since the breaker last closed.
    pub consecutive_opens: u32,
    /// The last [`HISTORY_CAPACITY`] transitions, oldest first.
    pub history: Vec<TransitionRecord>,
    /// Transitions dropped from the front of the history.
    pub history_dropped: u64,
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// The state with the data that only makes sense in it.
#[derive(Clone, Copy, Debug)]
enum State {
    Closed,
    Open { since: Instant, until: Instant },
    HalfOpen { in_flight: u32, successes: u32 },
    ForcedOpen,
    Disabled,
}

impl State {
    fn kind(self) -> BreakerState {
        match self {
            State::Closed => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
            State::ForcedOpen => BreakerState::ForcedOpen,
            State::Disabled => BreakerState::Disabled,
        }
    }
}

/// The outcomes of the last `size` calls, oldest first.
#[derive(Clone, Debug)]
struct Window {
    failed: VecDeque<bool>,
    failures: u32,
    size: usize,
}

impl Window {
    fn new(size: u32) -> Window {
        let size = size as usize;
        Window { failed: VecDeque::with_capacity(size), failures: 0, size }
    }

    fn push(&mut self, failed: bool) {
        if self.failed.len() >= self.size && self.failed.pop_front() == Some(true) {
            self.failures -= 1;
        }
        if self.failed.len() < self.size {
            self.failed.push_back(failed);
            self.failures += u32::from(failed);
        }
    }

    fn len(&self) -> u32 {
        self.failed.len() as u32
    }

    fn failure_percent(&self) -> f64 {
        match self.len() {
            0 => 0.0,
            n => f64::from(self.failures) * 100.0 / f64::from(n),
        }
    }

    fn clear(&mut self) {
        self.failed.clear();
        self.failures = 0;
    }
}

/// One circuit breaker. Not thread-safe by itself: the registry keeps each in a `Mutex`.
#[derive(Clone, Debug)]
pub struct Breaker {
    config: BreakerConfig,
    state: State,
    /// Bumped on every state change. Permits carry the generation they were issued in, and an
    /// outcome from an older generation is counted in the metrics but changes nothing else.
    generation: u64,
    consecutive_failures: u32,
    consecutive_opens: u32,
    window: Window,
    calls: u64,
    successes: u64,
    failures: u64,
    rejected: u64,
    opens: u64,
    recoveries: u64,
    /// Time spent in finished open periods.
    open_time: Duration,
    history: VecDeque<Transition>,
    history_dropped: u64,
    /// The newest `undrained` entries of `history` have not been drained yet.
    undrained: usize,
}

impl Breaker {
    /// A closed breaker. The config should have passed [`BreakerConfig::validate`].
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            window: Window::new(config.window_size),
            config,
            state: State::Closed,
            generation: 0,
            consecutive_failures: 0,
            consecutive_opens: 0,
            calls: 0,
            successes: 0,
            failures: 0,
            rejected: 0,
            opens: 0,
            recoveries: 0,
            open_time: Duration::ZERO,
            history: VecDeque::new(),
            history_dropped: 0,
            undrained: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The state at `now`: an `Open` breaker whose deadline is `< now` (strictly: the deadline is
    /// exclusive) reports `HalfOpen`.
    ///
    /// This is a pure query; the `Open -> HalfOpen` transition is queued by the next
    /// [`acquire`](Self::acquire) or manual control, stamped with the deadline.
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.state {
            State::Open { until, .. } if now > until => BreakerState::HalfOpen,
            state => state.kind(),
        }
    }

    /// Asks to make a call at `now`.
    pub fn acquire(&mut self, now: Instant) -> Result<Permit, Rejected> {
        self.advance(now);
        let retry_after = match &mut self.state {
            State::Closed | State::Disabled => return Ok(self.permit()),
            State::HalfOpen { in_flight, .. } if *in_flight < self.config.half_open_max_calls => {
                *in_flight += 1;
                return Ok(self.permit());
            }
            State::Open { until, .. } => Some(until.saturating_duration_since(now)),
            State::HalfOpen { .. } | State::ForcedOpen => None,
        };
        self.rejected += 1;
        Err(Rejected { state: self.state.kind(), retry_after })
    }

    /// Records how the call behind `permit` ended.
    pub fn record(&mut self, permit: Permit, outcome: Outcome, now: Instant) {
        let current = permit.generation == self.generation;
        let failed = match outcome {
            Outcome::Success => false,
            Outcome::Failure => true,
            Outcome::Ignored => {
                if let (true, State::HalfOpen { in_flight, .. }) = (current, &mut self.state) {
                    *in_flight = in_flight.saturating_sub(1);
                }
                return;
            }
        };
        self.calls += 1;
        if failed {
            self.failures += 1;
        } else {
            self.successes += 1;
        }
        if !current {
            // Permitted under a state that has since ended: it says nothing about this one.
            return;
        }
        match self.state {
            State::Closed => {
                self.window.push(failed);
                self.consecutive_failures = if failed { self.consecutive_failures.saturating_add(1) } else { 0 };
                let c = &self.config;
                if self.consecutive_failures >= c.failure_threshold {
                    let why = format!("{} consecutive failures (threshold {})", self.consecutive_failures, c.failure_threshold);
                    self.open(now, why);
                } else if self.window.len() >= c.minimum_calls && self.window.failure_percent() >= c.failure_rate_threshold {
                    let why = format!(
                        "failure rate {:.1}% over the last {} calls (threshold {}%)",
                        self.window.failure_percent(),
                        self.window.len(),
                        c.failure_rate_threshold
                    );
                    self.open(now, why);
                }
            }
            State::HalfOpen { in_flight, successes } => {
                self.window.push(failed);
                if failed {
                    self.open(now, "a half-open probe failed".to_string());
                } else if successes + 1 >= self.config.success_threshold {
                    self.recoveries += 1;
                    self.close(now, format!("{} successful probes", successes + 1));
                } else {
                    self.state = State::HalfOpen { in_flight: in_flight.saturating_sub(1), successes: successes + 1 };
                }
            }
            // Disabled counts calls only; Open and ForcedOpen issue no permits of their generation.
            State::Disabled | State::Open { .. } | State::ForcedOpen => {}
        }
    }

    /// Rejects every call until [`reset`](Self::reset).
    pub fn force_open(&mut self, now: Instant) {
        self.advance(now);
        if !matches!(self.state, State::ForcedOpen) {
            self.enter(State::ForcedOpen, now, "forced open".to_string());
        }
    }

    /// Permits every call and counts nothing toward transitions until [`reset`](Self::reset).
    pub fn disable(&mut self, now: Instant) {
        self.advance(now);
        if !matches!(self.state, State::Disabled) {
            self.enter(State::Disabled, now, "disabled".to_string());
        }
    }

    /// Back to `Closed` with the window, the failure streak and the open backoff cleared.
    /// Lifetime counters (calls, opens, ...) are kept. Outstanding permits become stale.
    pub fn reset(&mut self, now: Instant) {
        self.advance(now);
        self.close(now, "reset".to_string());
    }

    /// Takes the transitions queued since the last call, oldest first.
    pub fn drain_transitions(&mut self) -> Vec<Transition> {
        let start = self.history.len().saturating_sub(std::mem::take(&mut self.undrained));
        self.history.range(start..).cloned().collect()
    }

    /// The metrics at `now`; `anchor` pairs an `Instant` with the wall-clock time it stands for,
    /// to render transition times.
    pub fn metrics(&self, now: Instant, anchor: (Instant, SystemTime)) -> BreakerMetrics {
        let mut this = self.clone();
        this.advance(now);
        this.report(now, anchor)
    }

    /// [`metrics`](Self::metrics) of a breaker already advanced to `now`.
    fn report(&self, now: Instant, anchor: (Instant, SystemTime)) -> BreakerMetrics {
        let (current_open, open_timeout) = match self.state {
            State::Open { since, until } => (now.min(until).saturating_duration_since(since), until.saturating_duration_since(since)),
            _ => (Duration::ZERO, self.config.open_timeout(self.consecutive_opens.saturating_add(1))),
        };
        let total_open_time = self.open_time + current_open;
        let window_calls = self.window.len();
        BreakerMetrics {
            state: self.state.kind(),
            calls: self.calls,
            successes: self.successes,
            failures: self.failures,
            rejected: self.rejected,
            opens: self.opens,
            recoveries: self.recoveries,
            total_open_time,
            mean_open_time: match self.opens {
                0 => Duration::ZERO,
                n => total_open_time / u32::try_from(n).unwrap_or(u32::MAX),
            },
            health_percent: if window_calls == 0 { 100.0 } else { 100.0 - self.window.failure_percent() },
            window_calls,
            open_timeout,
            consecutive_opens: self.consecutive_opens,
            history: self
                .history
                .iter()
                .map(|t| TransitionRecord {
                    from: t.from,
                    to: t.to,
                    at: crate::fmt::rfc3339(wall_clock(t.at, anchor)),
                    reason: t.reason.clone(),
                })
                .collect(),
            history_dropped: self.history_dropped,
        }
    }

    fn permit(&self) -> Permit {
        Permit { generation: self.generation }
    }

    /// Moves an `Open` breaker whose deadline has passed (strictly: a call at the deadline is still
    /// rejected, as resilience4j's `isAfter`) to `HalfOpen`.
    fn advance(&mut self, now: Instant) {
        if let State::Open { since, until } = self.state {
            if now > until {
                let why = format!("open timeout of {:?} elapsed", until.saturating_duration_since(since));
                self.enter(State::HalfOpen { in_flight: 0, successes: 0 }, until, why);
            }
        }
    }

    fn open(&mut self, now: Instant, why: String) {
        self.consecutive_opens = self.consecutive_opens.saturating_add(1);
        self.opens += 1;
        self.consecutive_failures = 0;
        let timeout = self.config.open_timeout(self.consecutive_opens);
        self.enter(State::Open { since: now, until: now + timeout }, now, format!("{why}; open for {timeout:?}"));
    }

    fn close(&mut self, now: Instant, why: String) {
        self.window.clear();
        self.consecutive_failures = 0;
        self.consecutive_opens = 0;
        self.enter(State::Closed, now, why);
    }

    /// The one place the state changes: ends the open period, retires outstanding permits and
    /// queues the transition (unless the state stays the same, as in a reset of a closed breaker).
    fn enter(&mut self, to: State, at: Instant, reason: String) {
        if let State::Open { since, until } = self.state {
            self.open_time += at.min(until).saturating_duration_since(since);
        }
        let from = self.state.kind();
        self.state = to;
        self.generation += 1;
        if from == to.kind() {
            return;
        }
        if self.history.len() == HISTORY_CAPACITY {
            self.history.pop_front();
            self.history_dropped += 1;
        }
        self.history.push_back(Transition { from, to: to.kind(), at, reason });
        self.undrained = (self.undrained + 1).min(self.history.len());
    }
}

/// The wall-clock time of `at`, given that `anchor.0` is `anchor.1`.
fn wall_clock(at: Instant, (mono, wall): (Instant, SystemTime)) -> SystemTime {
    let t = if at >= mono { wall.checked_add(at - mono) } else { wall.checked_sub(mono - at) };
    t.unwrap_or(wall)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Outcome = Outcome::Success;
    const F: Outcome = Outcome::Failure;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// The smallest step of an `Instant`: `deadline + NS` is the first instant after a deadline.
    const NS: Duration = Duration::from_nanos(1);

    /// Small thresholds that make each rule easy to hit on its own.
    fn config() -> BreakerConfig {
        BreakerConfig {
            failure_threshold: 3,
            failure_rate_threshold: 50.0,
            window_size: 10,
            minimum_calls: 4,
            recovery_timeout: secs(10),
            backoff_factor: 2.0,
            max_recovery_timeout: secs(60),
            half_open_max_calls: 1,
            success_threshold: 2,
        }
    }

    /// Only the rate rule can open.
    fn rate_only(window_size: u32, minimum_calls: u32, rate: f64) -> BreakerConfig {
        BreakerConfig { failure_threshold: 1000, failure_rate_threshold: rate, window_size, minimum_calls, ..config() }
    }

    /// acquire + record.
    fn call(b: &mut Breaker, outcome: Outcome, now: Instant) -> Result<(), Rejected> {
        let permit = b.acquire(now)?;
        b.record(permit, outcome, now);
        Ok(())
    }

    fn calls(b: &mut Breaker, outcomes: &[Outcome], now: Instant) {
        for &o in outcomes {
            call(b, o, now).expect("permitted");
        }
    }

    fn anchor(t0: Instant) -> (Instant, SystemTime) {
        (t0, std::time::UNIX_EPOCH + secs(1_700_000_000))
    }

    fn metrics(b: &Breaker, now: Instant) -> BreakerMetrics {
        b.metrics(now, anchor(now))
    }

    fn states(ts: &[Transition]) -> Vec<(BreakerState, BreakerState)> {
        ts.iter().map(|t| (t.from, t.to)).collect()
    }

    /// A breaker opened once at `t0` by three failures.
    fn opened(config: BreakerConfig, t0: Instant) -> Breaker {
        let mut b = Breaker::new(config);
        calls(&mut b, &[F, F, F], t0);
        assert_eq!(b.state(t0), BreakerState::Open);
        b.drain_transitions();
        b
    }

    use BreakerState::{Closed, Disabled, ForcedOpen, HalfOpen, Open};

    #[test]
    fn default_config_is_valid_and_matches_the_documented_defaults() {
        let c = BreakerConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!((c.failure_threshold, c.window_size, c.minimum_calls), (3, 20, 10));
        assert_eq!((c.failure_rate_threshold, c.backoff_factor), (50.0, 2.0));
        assert_eq!((c.recovery_timeout, c.max_recovery_timeout), (secs(10), secs(300)));
        assert_eq!((c.half_open_max_calls, c.success_threshold), (1, 2));
    }

    #[test]
    fn validate_names_the_field_and_range() {
        let d = BreakerConfig::default;
        let cases: Vec<(BreakerConfig, &str)> = vec![
            (BreakerConfig { failure_threshold: 0, ..d() }, "failure_threshold must be from 1 to 1000"),
            (BreakerConfig { failure_threshold: 1001, ..d() }, "failure_threshold must be from 1 to 1000"),
            (BreakerConfig { failure_rate_threshold: 0.5, ..d() }, "failure_rate_threshold must be from 1 to 100"),
            (BreakerConfig { failure_rate_threshold: 100.1, ..d() }, "failure_rate_threshold must be from 1 to 100"),
            (BreakerConfig { failure_rate_threshold: f64::NAN, ..d() }, "failure_rate_threshold must be from 1 to 100"),
            (BreakerConfig { window_size: 0, ..d() }, "window_size must be from 1 to 1000"),
            (BreakerConfig { window_size: 1001, ..d() }, "window_size must be from 1 to 1000"),
            (BreakerConfig { minimum_calls: 0, ..d() }, "minimum_calls must be from 1 to window_size (20)"),
            (BreakerConfig { minimum_calls: 21, ..d() }, "minimum_calls must be from 1 to window_size (20)"),
            (BreakerConfig { recovery_timeout: Duration::from_micros(999), ..d() }, "recovery_timeout must be from 1ms to 1h"),
            (
                BreakerConfig { recovery_timeout: secs(3601), max_recovery_timeout: secs(7200), ..d() },
                "recovery_timeout must be from 1ms to 1h",
            ),
            (BreakerConfig { backoff_factor: 0.9, ..d() }, "backoff_factor must be from 1 to 10"),
            (BreakerConfig { backoff_factor: 10.5, ..d() }, "backoff_factor must be from 1 to 10"),
            (BreakerConfig { max_recovery_timeout: secs(9), ..d() }, "max_recovery_timeout must be from recovery_timeout (10s) to 24h"),
            (
                BreakerConfig { max_recovery_timeout: secs(86_401), ..d() },
                "max_recovery_timeout must be from recovery_timeout (10s) to 24h",
            ),
            (BreakerConfig { half_open_max_calls: 0, ..d() }, "half_open_max_calls must be from 1 to 100"),
            (BreakerConfig { half_open_max_calls: 101, ..d() }, "half_open_max_calls must be from 1 to 100"),
            (BreakerConfig { success_threshold: 0, ..d() }, "success_threshold must be from 1 to 100"),
            (BreakerConfig { success_threshold: 101, ..d() }, "success_threshold must be from 1 to 100"),
        ];
        for (c, want) in cases {
            let err = c.validate().expect_err(want);
            assert!(err.starts_with(want), "{err:?} should start with {want:?}");
        }
        // The edges are allowed.
        let edges = BreakerConfig {
            failure_threshold: 1000,
            failure_rate_threshold: 1.0,
            window_size: 1,
            minimum_calls: 1,
            recovery_timeout: Duration::from_millis(1),
            backoff_factor: 10.0,
            max_recovery_timeout: Duration::from_millis(1),
            half_open_max_calls: 100,
            success_threshold: 1,
        };
        assert_eq!(edges.validate(), Ok(()));
    }

    #[test]
    fn opens_after_consecutive_failures_and_a_success_resets_the_streak() {
        let t0 = Instant::now();
        // 5 failures in 6 calls: the rate rule must not get there first.
        let mut b = Breaker::new(BreakerConfig { failure_rate_threshold: 100.0, ..config() });
        calls(&mut b, &[F, F, S, F, F], t0);
        assert_eq!(b.state(t0), Closed);
        assert!(b.drain_transitions().is_empty());

        let t1 = t0 + secs(1);
        call(&mut b, F, t1).expect("closed");
        assert_eq!(b.state(t1), Open);
        let ts = b.drain_transitions();
        assert_eq!(states(&ts), [(Closed, Open)]);
        assert_eq!(ts[0].at, t1);
        assert_eq!(ts[0].reason, "3 consecutive failures (threshold 3); open for 10s");

        let m = metrics(&b, t1);
        assert_eq!((m.calls, m.successes, m.failures, m.rejected, m.opens, m.recoveries), (6, 1, 5, 0, 1, 0));
        assert_eq!(m.state, Open);
        assert_eq!(m.open_timeout, secs(10));
        assert_eq!(m.consecutive_opens, 1);
        assert_eq!(m.window_calls, 6);
    }

    #[test]
    fn opens_on_failure_rate_once_minimum_calls_are_in_the_window() {
        let t0 = Instant::now();
        let mut b = Breaker::new(rate_only(10, 4, 50.0));
        calls(&mut b, &[S, F, S], t0); // 33% over 3 calls
        assert_eq!(b.state(t0), Closed);
        calls(&mut b, &[F], t0); // 50% over 4 calls
        assert_eq!(b.state(t0), Open);
        assert_eq!(b.drain_transitions()[0].reason, "failure rate 50.0% over the last 4 calls (threshold 50%); open for 10s");
    }

    #[test]
    fn rate_rule_does_not_apply_below_minimum_calls_and_is_checked_on_success_too() {
        let t0 = Instant::now();
        let mut b = Breaker::new(rate_only(20, 10, 50.0));
        // Nine calls, five of them failures (56%): below minimum_calls, so still closed.
        calls(&mut b, &[F, S, F, S, F, S, F, S, F], t0);
        assert_eq!(b.state(t0), Closed);
        // The tenth call is a success, and brings the window to 10 calls at 50%.
        calls(&mut b, &[S], t0);
        assert_eq!(b.state(t0), Open);
    }

    #[test]
    fn rate_is_measured_over_a_sliding_window() {
        let t0 = Instant::now();
        let mut b = Breaker::new(rate_only(4, 4, 75.0));
        // Windows: FFSS 50%, FSSS 25%, SSSF 25%, SSFF 50%: never 75%.
        calls(&mut b, &[F, F, S, S, S, F, F], t0);
        assert_eq!(b.state(t0), Closed);
        assert_eq!(metrics(&b, t0).health_percent, 50.0);
        // SFFF is 75%, though the whole history is only 5 of 8 (62.5%).
        calls(&mut b, &[F], t0);
        assert_eq!(b.state(t0), Open);
    }

    #[test]
    fn open_deadline_is_exclusive() {
        let t0 = Instant::now();
        let mut b = opened(config(), t0);
        let deadline = t0 + secs(10);

        assert_eq!(b.acquire(t0 + secs(4)), Err(Rejected { state: Open, retry_after: Some(secs(6)) }));
        assert_eq!(b.state(deadline - NS), Open);
        assert_eq!(b.acquire(deadline - NS), Err(Rejected { state: Open, retry_after: Some(NS) }));
        // At exactly the deadline the breaker is still open (resilience4j: `now.isAfter(retryAfter)`).
        assert_eq!(b.state(deadline), Open);
        assert_eq!(b.acquire(deadline), Err(Rejected { state: Open, retry_after: Some(Duration::ZERO) }));
        assert!(b.drain_transitions().is_empty());
        // `state` is a pure query: it reports HalfOpen just after the deadline and changes nothing.
        assert_eq!(b.state(deadline + NS), HalfOpen);
        assert!(b.drain_transitions().is_empty());

        let probe = b.acquire(deadline + NS).expect("the first call strictly after the deadline is the probe");
        let ts = b.drain_transitions();
        assert_eq!(states(&ts), [(Open, HalfOpen)]);
        assert_eq!(ts[0].at, deadline);
        assert_eq!(ts[0].reason, "open timeout of 10s elapsed");
        b.record(probe, S, deadline + NS);
        assert_eq!(b.state(deadline + NS), HalfOpen);
        let m = metrics(&b, deadline + NS);
        assert_eq!((m.rejected, m.total_open_time), (3, secs(10)));
    }

    #[test]
    fn half_open_transition_is_stamped_with_the_deadline_even_when_noticed_late() {
        let t0 = Instant::now();
        let mut b = opened(config(), t0);
        let late = t0 + secs(100);
        let _probe = b.acquire(late).expect("probe");
        assert_eq!(b.drain_transitions()[0].at, t0 + secs(10));
        // And the open time is the open period, not the time until someone looked.
        assert_eq!(metrics(&b, late).total_open_time, secs(10));
    }

    /// Fails the single probe of a breaker that opened at `at` for `timeout`; returns when it
    /// reopened (just after the deadline: a call at the deadline itself is rejected).
    fn fail_probe(b: &mut Breaker, at: Instant, timeout: Duration) -> Instant {
        let deadline = at + timeout;
        assert_eq!(b.acquire(deadline).map(|_| ()).map_err(|r| r.state), Err(Open));
        let probe = b.acquire(deadline + NS).expect("probe");
        b.record(probe, F, deadline + NS);
        assert_eq!(b.state(deadline + NS), Open);
        deadline + NS
    }

    #[test]
    fn open_timeout_grows_exponentially_up_to_the_cap_and_resets_after_closing() {
        let t0 = Instant::now();
        let mut b = opened(config(), t0);
        let mut at = t0;
        // 10 s, then 20, 40, then 80 capped at 60, and 60 again.
        for (timeout, next) in [(10, 20), (20, 40), (40, 60), (60, 60), (60, 60)] {
            assert_eq!(metrics(&b, at).open_timeout, secs(timeout));
            at = fail_probe(&mut b, at, secs(timeout));
            assert_eq!(b.acquire(at), Err(Rejected { state: Open, retry_after: Some(secs(next)) }));
        }
        let m = metrics(&b, at);
        assert_eq!((m.opens, m.consecutive_opens, m.open_timeout), (6, 6, secs(60)));
        let ts = b.drain_transitions();
        assert_eq!(ts.last().map(|t| t.reason.as_str()), Some("a half-open probe failed; open for 60s"));

        // Close it: two successful probes.
        let probe_at = at + secs(60) + NS;
        calls(&mut b, &[S, S], probe_at);
        assert_eq!(b.state(probe_at), Closed);
        let m = metrics(&b, probe_at);
        assert_eq!((m.consecutive_opens, m.open_timeout, m.recoveries), (0, secs(10), 1));

        // The next open starts from recovery_timeout again.
        calls(&mut b, &[F, F, F], probe_at);
        assert_eq!(b.acquire(probe_at), Err(Rejected { state: Open, retry_after: Some(secs(10)) }));
    }

    #[test]
    fn fractional_backoff_factor() {
        let c = BreakerConfig { backoff_factor: 1.5, max_recovery_timeout: secs(3600), ..config() };
        assert_eq!(c.open_timeout(1), secs(10));
        assert_eq!(c.open_timeout(2), secs(15));
        assert_eq!(c.open_timeout(3), Duration::from_millis(22_500));
        assert_eq!(c.open_timeout(u32::MAX), secs(3600));
        let flat = BreakerConfig { backoff_factor: 1.0, ..config() };
        assert_eq!(flat.open_timeout(1_000_000), secs(10));
    }

    #[test]
    fn half_open_admits_at_most_half_open_max_calls_probes() {
        let t0 = Instant::now();
        let probe_at = t0 + secs(10) + NS; // the first instant after the open deadline

        let mut b = opened(config(), t0);
        let p1 = b.acquire(probe_at).expect("first probe");
        assert_eq!(b.acquire(probe_at), Err(Rejected { state: HalfOpen, retry_after: None }));
        // Releasing the probe frees its slot.
        b.record(p1, Outcome::Ignored, probe_at);
        let p2 = b.acquire(probe_at).expect("slot freed by Ignored");
        assert_eq!(b.acquire(probe_at).map_err(|r| r.state), Err(HalfOpen));
        // A success that does not close yet frees the slot too.
        b.record(p2, S, probe_at);
        let _p3 = b.acquire(probe_at).expect("slot freed by a success");
        assert_eq!(metrics(&b, probe_at).rejected, 2);

        let mut b = opened(BreakerConfig { half_open_max_calls: 2, ..config() }, t0);
        let _p1 = b.acquire(probe_at).expect("first probe");
        let _p2 = b.acquire(probe_at).expect("second probe");
        assert_eq!(b.acquire(probe_at), Err(Rejected { state: HalfOpen, retry_after: None }));
    }

    #[test]
    fn a_failed_probe_reopens_immediately_with_a_longer_timeout() {
        let t0 = Instant::now();
        let probe_at = t0 + secs(10) + NS; // the first instant after the open deadline
        let mut b = opened(BreakerConfig { half_open_max_calls: 2, ..config() }, t0);
        let p1 = b.acquire(probe_at).expect("probe");
        let p2 = b.acquire(probe_at).expect("probe");
        b.record(p1, S, probe_at);
        b.record(p2, F, probe_at + secs(1));
        assert_eq!(b.state(probe_at + secs(1)), Open);
        assert_eq!(states(&b.drain_transitions()), [(Open, HalfOpen), (HalfOpen, Open)]);
        assert_eq!(b.acquire(probe_at + secs(1)), Err(Rejected { state: Open, retry_after: Some(secs(20)) }));
        let m = metrics(&b, probe_at + secs(1));
        assert_eq!((m.opens, m.recoveries, m.consecutive_opens), (2, 0, 2));
    }

    #[test]
    fn success_threshold_probes_close_and_clear_the_counts() {
        let t0 = Instant::now();
        let probe_at = t0 + secs(10) + NS; // the first instant after the open deadline
        let mut b = opened(config(), t0);
        calls(&mut b, &[S], probe_at);
        assert_eq!(b.state(probe_at), HalfOpen);
        calls(&mut b, &[S], probe_at);
        assert_eq!(b.state(probe_at), Closed);
        let ts = b.drain_transitions();
        assert_eq!(states(&ts), [(Open, HalfOpen), (HalfOpen, Closed)]);
        assert_eq!(ts[1].reason, "2 successful probes");

        let m = metrics(&b, probe_at);
        assert_eq!((m.recoveries, m.window_calls, m.health_percent), (1, 0, 100.0));
        // The failure streak starts over: two failures do not open, the third does.
        calls(&mut b, &[F, F], probe_at);
        assert_eq!(b.state(probe_at), Closed);
        calls(&mut b, &[F], probe_at);
        assert_eq!(b.state(probe_at), Open);
    }

    #[test]
    fn forced_open_rejects_until_reset() {
        let t0 = Instant::now();
        let mut b = Breaker::new(config());
        b.force_open(t0);
        b.force_open(t0 + secs(1)); // no second transition
        for later in [0, 10, 1000, 100_000] {
            assert_eq!(b.acquire(t0 + secs(later)), Err(Rejected { state: ForcedOpen, retry_after: None }));
        }
        assert_eq!(b.state(t0 + secs(100_000)), ForcedOpen);
        b.reset(t0 + secs(100_001));
        assert_eq!(b.state(t0 + secs(100_001)), Closed);
        calls(&mut b, &[S], t0 + secs(100_001));
        assert_eq!(states(&b.drain_transitions()), [(Closed, ForcedOpen), (ForcedOpen, Closed)]);
        let m = metrics(&b, t0 + secs(100_001));
        // ForcedOpen is not an open: no opens, no open time.
        assert_eq!((m.calls, m.rejected, m.opens, m.total_open_time), (1, 4, 0, Duration::ZERO));
    }

    #[test]
    fn disabled_permits_everything_and_never_opens() {
        let t0 = Instant::now();
        let mut b = Breaker::new(config());
        b.disable(t0);
        for i in 0..1000 {
            call(&mut b, F, t0 + Duration::from_millis(i)).expect("disabled permits");
        }
        assert_eq!(b.state(t0 + secs(10)), Disabled);
        let m = metrics(&b, t0 + secs(10));
        assert_eq!((m.calls, m.failures, m.rejected, m.opens, m.window_calls), (1000, 1000, 0, 0, 0));
        assert_eq!(states(&b.drain_transitions()), [(Closed, Disabled)]);

        b.reset(t0 + secs(11));
        assert_eq!(b.state(t0 + secs(11)), Closed);
        calls(&mut b, &[F, F, F], t0 + secs(11));
        assert_eq!(b.state(t0 + secs(11)), Open);
    }

    #[test]
    fn manual_controls_from_open_end_the_open_period() {
        let t0 = Instant::now();
        let mut b = opened(config(), t0);
        b.disable(t0 + secs(4));
        let m = metrics(&b, t0 + secs(50));
        assert_eq!((m.state, m.total_open_time), (Disabled, secs(4)));
        // A manual control after the deadline first records the move to HalfOpen.
        let mut b = opened(config(), t0);
        b.force_open(t0 + secs(30));
        let ts = b.drain_transitions();
        assert_eq!(states(&ts), [(Open, HalfOpen), (HalfOpen, ForcedOpen)]);
        assert_eq!((ts[0].at, ts[1].at), (t0 + secs(10), t0 + secs(30)));
    }

    #[test]
    fn reset_clears_window_streak_and_backoff() {
        let t0 = Instant::now();
        let mut b = opened(config(), t0);
        let at = fail_probe(&mut b, t0, secs(10)); // second open: 20 s
        b.reset(at + secs(1));
        assert_eq!(b.state(at + secs(1)), Closed);
        assert_eq!(metrics(&b, at + secs(1)).window_calls, 0);
        calls(&mut b, &[F, F, F], at + secs(1));
        assert_eq!(b.acquire(at + secs(1)), Err(Rejected { state: Open, retry_after: Some(secs(10)) }));
        // A manual reset is not a recovery.
        assert_eq!(metrics(&b, at + secs(1)).recoveries, 0);
    }

    #[test]
    fn a_stale_closed_permit_does_not_touch_half_open_accounting() {
        let t0 = Instant::now();
        let probe_at = t0 + secs(10) + NS; // the first instant after the open deadline
        let mut b = Breaker::new(config());
        let stale_ok = b.acquire(t0).expect("closed");
        let stale_ignored = b.acquire(t0).expect("closed");
        let stale_failed = b.acquire(t0).expect("closed");
        calls(&mut b, &[F, F, F], t0);
        let probe = b.acquire(probe_at).expect("probe");

        // A stale failure does not reopen, a stale Ignored does not free the probe's slot, and
        // a stale success is not a successful probe.
        b.record(stale_failed, F, probe_at);
        b.record(stale_ignored, Outcome::Ignored, probe_at);
        assert_eq!(b.acquire(probe_at).map_err(|r| r.state), Err(HalfOpen));
        b.record(stale_ok, S, probe_at);
        assert_eq!(b.state(probe_at), HalfOpen);
        assert_eq!(b.acquire(probe_at).map_err(|r| r.state), Err(HalfOpen));
        // The real probe still counts.
        b.record(probe, S, probe_at);
        calls(&mut b, &[S], probe_at);
        assert_eq!(b.state(probe_at), Closed);
        // Stale outcomes still count as calls.
        let m = metrics(&b, probe_at);
        assert_eq!((m.calls, m.successes, m.failures, m.rejected), (7, 3, 4, 2));
    }

    #[test]
    fn a_probe_from_an_earlier_half_open_period_does_not_free_a_slot() {
        let t0 = Instant::now();
        let mut b = opened(BreakerConfig { half_open_max_calls: 2, ..config() }, t0);
        let first = t0 + secs(10) + NS;
        let old_probe = b.acquire(first).expect("probe");
        let failing = b.acquire(first).expect("probe");
        b.record(failing, F, first); // reopens for 20 s
        let second = first + secs(20) + NS;
        let _p1 = b.acquire(second).expect("probe");
        let _p2 = b.acquire(second).expect("probe");
        b.record(old_probe, Outcome::Ignored, second);
        assert_eq!(b.acquire(second).map_err(|r| r.state), Err(HalfOpen));
    }

    #[test]
    fn metrics_follow_each_step() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig { failure_rate_threshold: 100.0, ..config() });
        let m = metrics(&b, t0);
        assert_eq!((m.state, m.calls, m.health_percent, m.mean_open_time, m.opens), (Closed, 0, 100.0, Duration::ZERO, 0));

        calls(&mut b, &[S, S, F], t0);
        let m = metrics(&b, t0);
        assert_eq!((m.calls, m.successes, m.failures, m.window_calls), (3, 2, 1, 3));
        assert!((m.health_percent - 200.0 / 3.0).abs() < 1e-9, "{}", m.health_percent);

        calls(&mut b, &[F, F], t0); // 3 consecutive: opens at t0 for 10 s
        assert_eq!(metrics(&b, t0).health_percent, 40.0);
        assert!(b.acquire(t0 + secs(3)).is_err());
        assert!(b.acquire(t0 + secs(4)).is_err());
        let m = metrics(&b, t0 + secs(4));
        assert_eq!((m.state, m.rejected, m.opens), (Open, 2, 1));
        assert_eq!((m.total_open_time, m.mean_open_time), (secs(4), secs(4)));

        // Past the deadline the open period stops at the deadline.
        let m = metrics(&b, t0 + secs(15));
        assert_eq!((m.state, m.total_open_time), (HalfOpen, secs(10)));

        // The probe fails at 15 s: open for 20 s more.
        let probe = b.acquire(t0 + secs(15)).expect("probe");
        b.record(probe, F, t0 + secs(15));
        let m = metrics(&b, t0 + secs(20));
        assert_eq!((m.opens, m.total_open_time, m.mean_open_time), (2, secs(15), Duration::from_millis(7500)));

        // Recover just after 35 s (at 35 s itself it is still open).
        assert_eq!(b.acquire(t0 + secs(35)).map_err(|r| r.state), Err(Open));
        calls(&mut b, &[S, S], t0 + secs(35) + NS);
        let m = metrics(&b, t0 + secs(100));
        assert_eq!((m.state, m.recoveries, m.opens), (Closed, 1, 2));
        assert_eq!((m.total_open_time, m.mean_open_time), (secs(30), secs(15)));
        assert_eq!((m.calls, m.successes, m.failures, m.rejected), (8, 4, 4, 3));
        assert_eq!((m.health_percent, m.window_calls), (100.0, 0));
        let path: Vec<_> = m.history.iter().map(|t| (t.from, t.to)).collect();
        assert_eq!(path, [(Closed, Open), (Open, HalfOpen), (HalfOpen, Open), (Open, HalfOpen), (HalfOpen, Closed)]);
        // metrics() is a query: the HalfOpen moves above were queued by acquire, not by metrics().
        assert_eq!(b.drain_transitions().len(), 5);
    }

    #[test]
    fn metrics_show_a_lapsed_open_as_half_open_without_changing_the_breaker() {
        let t0 = Instant::now();
        let mut b = opened(config(), t0);
        let m = metrics(&b, t0 + secs(11));
        assert_eq!(m.state, HalfOpen);
        assert_eq!(m.history.last().map(|t| (t.from, t.to)), Some((Open, HalfOpen)));
        assert!(matches!(b.state, State::Open { .. }));
        assert!(b.drain_transitions().is_empty());
    }

    #[test]
    fn history_is_bounded_and_counts_what_it_drops() {
        let t0 = Instant::now();
        let mut b = Breaker::new(config());
        for i in 0..200 {
            b.force_open(t0 + secs(2 * i));
            b.reset(t0 + secs(2 * i + 1));
        }
        let m = b.metrics(t0 + secs(400), anchor(t0));
        assert_eq!(m.history.len(), HISTORY_CAPACITY);
        assert_eq!(m.history_dropped, 400 - HISTORY_CAPACITY as u64);
        assert_eq!((m.history[0].from, m.history[0].to), (Closed, ForcedOpen));
        // The last transition is the reset at 399 s after the anchor.
        assert_eq!(m.history[255].at, "2023-11-14T22:19:59.000Z");
        // Undrained transitions are bounded by the history too.
        let drained = b.drain_transitions();
        assert_eq!(drained.len(), HISTORY_CAPACITY);
        assert_eq!(drained.last().map(|t| t.at), Some(t0 + secs(399)));
        assert!(b.drain_transitions().is_empty());
        b.force_open(t0 + secs(500));
        assert_eq!(states(&b.drain_transitions()), [(Closed, ForcedOpen)]);
    }

    #[test]
    fn transition_times_render_against_the_anchor() {
        let t0 = Instant::now() + secs(3600);
        let mut b = Breaker::new(config());
        b.force_open(t0 - Duration::from_millis(2500)); // before the anchor
        b.reset(t0 + Duration::from_millis(1_234));
        let m = b.metrics(t0, anchor(t0));
        let at: Vec<_> = m.history.iter().map(|t| t.at.as_str()).collect();
        assert_eq!(at, ["2023-11-14T22:13:17.500Z", "2023-11-14T22:13:21.234Z"]);
    }

    #[test]
    fn serializes_snake_case_and_milliseconds() {
        assert_eq!(serde_json::to_value(HalfOpen).ok(), Some(serde_json::json!("half_open")));
        assert_eq!(ForcedOpen.as_str(), "forced_open");
        assert_eq!(Rejected { state: Open, retry_after: Some(secs(3)) }.to_string(), "rejected by open breaker (retry in 3s)");
        let t0 = Instant::now();
        let b = opened(config(), t0);
        let json = serde_json::to_value(metrics(&b, t0 + Duration::from_millis(2500))).expect("serializes");
        assert_eq!(json["state"], "open");
        assert_eq!(json["total_open_time_ms"], 2500);
        assert_eq!(json["mean_open_time_ms"], 2500);
        assert_eq!(json["open_timeout_ms"], 10_000);
        assert_eq!(json["history"][0]["from"], "closed");
        assert_eq!(json["history"][0]["reason"], "3 consecutive failures (threshold 3); open for 10s");
    }
}
