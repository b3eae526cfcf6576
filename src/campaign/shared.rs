//! What every phase and slot of a run shares: the config, the store and its event bus, the pool,
//! the breakers, the live counters of the running phase and the run's pause state.

use super::departure::Departure;
use crate::breaker::{BreakerRegistry, BreakerState, Transition};
use crate::browser::pool::Pool;
use crate::config::Config;
use crate::control::{StopCause, StopSignal};
use crate::events::{Event, EventBus};
use crate::guardian::strain::Strain;
use crate::guardian::{ResourceSample, Trip};
use crate::metrics::{new_histogram, LatencySummary, Window};
use crate::store::Store;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;

/// Ops attempted, succeeded and failed: one named triple instead of `(u64, u64, u64)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Ops started (a breaker rejection is not an op).
    pub attempted: u64,
    /// Ops that succeeded.
    pub succeeded: u64,
    /// Ops that failed, abandoned ones included.
    pub failed: u64,
}

impl OpCounts {
    /// The sum of two counts.
    pub fn plus(self, o: OpCounts) -> OpCounts {
        OpCounts { attempted: self.attempted + o.attempted, succeeded: self.succeeded + o.succeeded, failed: self.failed + o.failed }
    }
}

/// Live counters of the running phase: read by the progress line and `status` while slots write
/// them, so they are atomics (and a histogram merged once per window, not per op).
#[derive(Debug)]
pub struct Live {
    attempted: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    hist: Mutex<Histogram<u64>>,
    /// In-page latency of the ops whose page measured it (empty for other tasks).
    in_page: Mutex<Histogram<u64>>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            attempted: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            hist: Mutex::new(new_histogram()),
            in_page: Mutex::new(new_histogram()),
        }
    }
}

impl Live {
    pub(super) fn record(&self, ok: bool) {
        self.attempted.fetch_add(1, Ordering::Relaxed);
        if ok {
            self.succeeded.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    pub(super) fn merge(&self, w: &Window) {
        let _ = lock(&self.hist).add(&w.hist);
        let _ = lock(&self.in_page).add(&w.in_page);
    }
    /// The counts so far.
    pub fn counts(&self) -> OpCounts {
        OpCounts {
            attempted: self.attempted.load(Ordering::Relaxed),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
    /// Latency so far (windows already flushed).
    pub fn latency(&self) -> LatencySummary {
        LatencySummary::of(&lock(&self.hist))
    }
    /// In-page latency so far, when the task measures it (the basis of the phase's `max_p95`).
    pub fn in_page_latency(&self) -> Option<LatencySummary> {
        let h = lock(&self.in_page);
        (!h.is_empty()).then(|| LatencySummary::of(&h))
    }
    /// The counters and histograms now (windows already flushed): two snapshots subtracted give
    /// what happened between them ([`LiveSnapshot::since`]), e.g. a capacity step without its
    /// warm-up.
    pub fn snapshot(&self) -> LiveSnapshot {
        LiveSnapshot { counts: self.counts(), hist: lock(&self.hist).clone(), in_page: lock(&self.in_page).clone() }
    }
}

/// [`Live`]'s counters at one instant.
#[derive(Clone)]
pub struct LiveSnapshot {
    /// Ops so far.
    pub counts: OpCounts,
    /// Round-trip latency so far.
    pub hist: Histogram<u64>,
    /// In-page latency so far (empty when the task does not measure it).
    pub in_page: Histogram<u64>,
}

impl LiveSnapshot {
    /// What happened after `earlier` (a snapshot of the same counters).
    pub fn since(&self, earlier: &LiveSnapshot) -> LiveSnapshot {
        let c = &self.counts;
        let e = &earlier.counts;
        let minus = |a: &Histogram<u64>, b: &Histogram<u64>| {
            let mut h = a.clone();
            // both come from the same histogram, later minus earlier: no count can go negative;
            // on a mismatch the later one is kept whole rather than a wrong difference
            if h.subtract(b).is_err() {
                return a.clone();
            }
            h
        };
        LiveSnapshot {
            counts: OpCounts {
                attempted: c.attempted.saturating_sub(e.attempted),
                succeeded: c.succeeded.saturating_sub(e.succeeded),
                failed: c.failed.saturating_sub(e.failed),
            },
            hist: minus(&self.hist, &earlier.hist),
            in_page: minus(&self.in_page, &earlier.in_page),
        }
    }
}

/// The phase running now (for the guardian, the progress line and `status`).
#[derive(Clone)]
pub struct CurrentPhase {
    /// Phase index.
    pub idx: u32,
    /// Phase name.
    pub name: String,
    /// Sessions it really runs (a scaled-down phase runs fewer than planned).
    pub sessions: u32,
    /// Planned duration.
    pub duration: Duration,
    /// How far it had run before an interruption (a resumed phase).
    pub offset: Duration,
    /// When its clock started.
    pub started: Instant,
    /// Its counters.
    pub live: Arc<Live>,
    /// Cancelled when the guardian pauses the run: the phase stops issuing ops.
    pub pause: CancellationToken,
}

/// The latest guardian sample, for `status` and health gating.
#[derive(Clone, Default)]
pub struct Latest {
    /// The sample.
    pub sample: Option<ResourceSample>,
    /// Its health score.
    pub health: Option<f64>,
    /// Samples taken.
    pub samples: u64,
    /// Violations seen.
    pub violations: u64,
}

/// Whether the run issues ops, or is paused by the guardian.
#[derive(Clone, Debug, PartialEq)]
pub enum PauseState {
    /// Normal operation.
    Running,
    /// The guardian tripped; the runner will cool down after the current phase stops.
    Tripped(Trip),
    /// Cooling down: further trips are not new events.
    CoolingDown,
}

/// The pause state and the guardian's epoch: each cooldown ends a guardian epoch, so violation
/// streaks start over from there.
struct Pause {
    state: PauseState,
    epoch: u64,
}

/// What every phase and slot of a run shares.
pub(crate) struct RunShared {
    /// Campaign id (correlation ids start with it).
    pub id: String,
    /// The validated config.
    pub cfg: Arc<Config>,
    /// The store (windows, samples, progress).
    pub store: Store,
    /// Events: to the store and to live subscribers.
    pub bus: EventBus,
    /// Browser workers (None for synthetic campaigns).
    pub pool: Option<Arc<Pool>>,
    /// The page server's URL (empty without browsers). It holds the run's secret path prefix:
    /// for browsers only, never for a log, an event or the store.
    pub page_url: String,
    /// What the page server served: recorded per phase as its task's `served` info.
    pub served: Option<Arc<crate::tasks::server::ServeStats>>,
    /// Stop requests.
    pub stop: Arc<StopSignal>,
    /// Monotonic start of the run.
    pub started: Instant,
    /// Wall-clock time at `started` (renders breaker timestamps).
    pub started_wall: SystemTime,
    /// Breakers per worker, browser and task.
    pub breakers: BreakerRegistry,
    /// Browsers given up for a task after refusing it ("unsupported") in a row.
    pub unsupported: super::unsupported::UnsupportedMemo,
    /// The running phase, if any.
    current: Mutex<Option<CurrentPhase>>,
    /// The latest guardian sample.
    latest: Mutex<Latest>,
    /// Ops of the phases that ended.
    done: Mutex<OpCounts>,
    /// Running or paused by the guardian.
    pause: Mutex<Pause>,
    /// Work that left a Grid node in a phase that ended before it landed elsewhere: a slot's
    /// seat ends with its phase, but the move is the run's, and the next phase's first fresh
    /// session on another node of that worker completes it.
    departures: Mutex<Vec<Departure>>,
    /// The guardian's view of the running phase, for escalation before the next one.
    strain: Mutex<Strain>,
    /// Notifications (`[[notify]]`): set when the run starts, taken at its end to drain.
    pub notifier: Mutex<Option<crate::notify::Notifier>>,
    /// When each breaker's last `breaker_open` notice went out (one a minute per breaker, so a
    /// flapping breaker does not flood the receiver).
    pub open_noticed: Mutex<std::collections::HashMap<String, Instant>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RunShared {
    /// A run's shared state; nothing runs yet.
    pub fn new(id: String, cfg: Arc<Config>, store: Store, pool: Option<Arc<Pool>>, page_url: String, stop: Arc<StopSignal>) -> RunShared {
        let breakers = BreakerRegistry::new(cfg.breakers.worker.clone(), cfg.breakers.browser.clone(), cfg.breakers.task.clone())
            .with_hardware(cfg.breakers.hardware.clone());
        // Every worker's and browser's breaker exists from the start, so that `stressctl breaker
        // list` shows them and an operator can open one before its first op.
        for w in pool.iter().flat_map(|p| p.workers.iter()) {
            breakers.ensure(&format!("worker:{}", w.id));
            breakers.ensure(&format!("browser:{}", w.browser));
        }
        RunShared {
            id,
            cfg,
            bus: EventBus::new(store.clone()),
            store,
            pool,
            page_url,
            served: None,
            stop,
            started: Instant::now(),
            started_wall: SystemTime::now(),
            breakers,
            unsupported: Default::default(),
            current: Mutex::new(None),
            latest: Mutex::new(Latest::default()),
            done: Mutex::new(OpCounts::default()),
            pause: Mutex::new(Pause { state: PauseState::Running, epoch: 0 }),
            departures: Mutex::new(Vec::new()),
            strain: Mutex::new(Strain::default()),
            notifier: Mutex::new(None),
            open_noticed: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Keeps the departure of a seat that ended before its work landed on another node.
    pub fn park_departure(&self, d: Departure) {
        lock(&self.departures).push(d);
    }

    /// The oldest parked departure of Grid worker `worker` from a node other than `node`: the
    /// work that a fresh session there takes over.
    pub fn claim_departure(&self, worker: &str, node: &str) -> Option<Departure> {
        let mut parked = lock(&self.departures);
        let i = parked.iter().position(|d| d.worker == worker && d.node != node)?;
        Some(parked.remove(i))
    }

    /// Records an event (store, live subscribers) and writes its line to the campaign log
    /// ([`log_event`]).
    pub fn event(&self, corr: impl Into<String>, phase: Option<u32>, event: Event) {
        let corr = corr.into();
        log_event(&corr, &event);
        self.bus.emit(corr, phase, event);
    }

    /// Records an event without its log line: for a kind whose log lines are rate-limited (a
    /// flood of recoveries) once its cap is reached; the store still has every one.
    pub fn event_unlogged(&self, corr: impl Into<String>, phase: Option<u32>, event: Event) {
        self.bus.emit(corr, phase, event);
    }

    pub fn current(&self) -> Option<CurrentPhase> {
        lock(&self.current).clone()
    }
    pub fn current_phase_idx(&self) -> Option<u32> {
        lock(&self.current).as_ref().map(|c| c.idx)
    }
    pub fn current_phase_name(&self) -> Option<String> {
        lock(&self.current).as_ref().map(|c| c.name.clone())
    }

    /// A phase's clock starts. If the guardian tripped before (e.g. while the phase waited for
    /// health), the phase is paused at once.
    pub fn phase_began(&self, c: CurrentPhase) {
        if matches!(lock(&self.pause).state, PauseState::Tripped(_)) {
            c.pause.cancel();
        }
        *lock(&self.current) = Some(c);
        *lock(&self.strain) = Strain::default();
    }

    /// One guardian sample while a phase runs: folded into the phase's strain.
    pub fn observe_strain(&self, health: f64, strained: Option<crate::guardian::Reading>) {
        if self.current_phase_idx().is_some() {
            lock(&self.strain).observe(health, strained);
        }
    }

    /// The strain of the phase that ran last (reset when the next one begins).
    pub fn phase_strain(&self) -> Strain {
        lock(&self.strain).clone()
    }

    /// The running phase ended: its counts join the run's.
    pub fn phase_finished(&self, counts: OpCounts) {
        *lock(&self.current) = None;
        let mut d = lock(&self.done);
        *d = d.plus(counts);
    }

    /// Ops of the ended phases plus the running one.
    pub fn total_counts(&self) -> OpCounts {
        let running = self.current().map(|c| c.live.counts()).unwrap_or_default();
        lock(&self.done).plus(running)
    }

    /// Success rate of the running phase so far (None before its first op).
    pub fn recent_success_rate(&self) -> Option<f64> {
        let c = self.current()?.live.counts();
        (c.attempted > 0).then(|| c.succeeded as f64 / c.attempted as f64)
    }
    pub fn set_latest(&self, sample: ResourceSample, health: f64, violations: u64) {
        let mut l = lock(&self.latest);
        l.sample = Some(sample);
        l.health = Some(health);
        l.samples += 1;
        l.violations += violations;
    }
    pub fn latest(&self) -> Latest {
        lock(&self.latest).clone()
    }

    /// The guardian tripped: with auto-recovery on, the run is paused (the phase stops issuing
    /// ops and the runner cools down); otherwise the campaign stops now. A trip while one is
    /// pending or while cooling down is not a new one.
    pub fn on_trip(&self, t: Trip) {
        let reason = t.stop_reason();
        let mut p = lock(&self.pause);
        if p.state != PauseState::Running {
            return;
        }
        if self.cfg.campaign.auto_recovery && self.cfg.campaign.max_auto_recoveries > 0 {
            tracing::warn!(target: "stressctl::campaign", "{reason}: pausing the campaign for auto-recovery");
            p.state = PauseState::Tripped(t);
            if let Some(c) = lock(&self.current).as_ref() {
                c.pause.cancel();
            }
        } else {
            tracing::warn!(target: "stressctl::campaign", "{reason}: stopping the campaign (auto_recovery is off)");
            self.stop.request(StopCause::Guardian, reason, false);
        }
    }

    /// Takes a pending trip and enters the cooldown.
    pub fn begin_cooldown(&self) -> Option<Trip> {
        let mut p = lock(&self.pause);
        match std::mem::replace(&mut p.state, PauseState::CoolingDown) {
            PauseState::Tripped(t) => Some(t),
            other => {
                p.state = other;
                None
            }
        }
    }

    /// The cooldown is over: the guardian's streaks start over from here.
    pub fn end_cooldown(&self) {
        let mut p = lock(&self.pause);
        p.state = PauseState::Running;
        p.epoch += 1;
    }

    /// Whether a trip is pending (the next phase must not start issuing ops).
    pub fn is_tripped(&self) -> bool {
        matches!(lock(&self.pause).state, PauseState::Tripped(_))
    }

    /// Whether the guardian paused the run (trip pending or cooling down).
    pub fn is_paused(&self) -> bool {
        lock(&self.pause).state != PauseState::Running
    }

    /// Bumped at the end of each cooldown.
    pub fn guardian_epoch(&self) -> u64 {
        lock(&self.pause).epoch
    }

    /// The pool's worker indices, best first by their breakers (closed, half-open, open; stable
    /// within a rank), those whose `hardware:<class>` breaker is not closed after the others,
    /// each with whether it is healthy: its worker and hardware breakers closed, disabled, or not
    /// used yet.
    pub fn ranked_workers(&self) -> Vec<(usize, bool)> {
        let Some(pool) = &self.pool else { return vec![(0, true)] };
        let ids: Vec<String> = pool.workers.iter().map(|w| w.id.clone()).collect();
        let now = Instant::now();
        let closed = |key: &str| matches!(self.breakers.state(key, now), None | Some(BreakerState::Closed | BreakerState::Disabled));
        let mut ranked: Vec<(usize, bool, bool)> = self
            .breakers
            .prefer_workers(&ids, now)
            .into_iter()
            .filter_map(|w| {
                let ix = ids.iter().position(|i| i == w)?;
                let hardware_ok = pool.workers[ix].hardware_class().is_none_or(|c| closed(&format!("hardware:{c}")));
                Some((ix, closed(&format!("worker:{w}")) && hardware_ok, hardware_ok))
            })
            .collect();
        ranked.sort_by_key(|&(_, _, hardware_ok)| !hardware_ok); // stable
        ranked.into_iter().map(|(ix, healthy, _)| (ix, healthy)).collect()
    }

    /// The worker of each of a phase's `sessions` sessions ([`super::placement::place`]).
    pub fn placement(&self, phase: &crate::config::PhaseConfig, sessions: u32) -> Vec<usize> {
        let Some(pool) = &self.pool else { return vec![0; sessions as usize] };
        let task = super::unsupported::task_key(&phase.task);
        // a browser given up for this task gets none of its sessions
        let ranked: Vec<super::placement::Candidate> = self
            .ranked_workers()
            .into_iter()
            .filter_map(|(ix, healthy)| pool.workers.get(ix).map(|w| super::placement::Candidate { ix, browser: w.browser, healthy }))
            .filter(|c| self.unsupported.given_up(&task, c.browser).is_none())
            .collect();
        let now = Instant::now();
        let browser_ok = |b: crate::config::BrowserKind| {
            matches!(self.breakers.state(&format!("browser:{b}"), now), None | Some(BreakerState::Closed | BreakerState::Disabled))
        };
        let preference = self.cfg.browser_preference.for_keys(&phase.task.preference_keys());
        let placed = super::placement::place(sessions, &ranked, &phase.browsers, preference, browser_ok);
        if placed.is_empty() {
            // validation guarantees a worker for every listed browser; never leave a phase empty
            return (0..sessions as usize).map(|s| s % pool.workers.len().max(1)).collect();
        }
        placed
    }

    /// The browsers `phase` could run on, each given up for its task earlier in this run (with
    /// what it answered); `None` when at least one of them is still asked (or the task needs no
    /// browser). Such a phase is UNSUPPORTED at once: no session is opened.
    pub fn nowhere_to_run(&self, phase: &crate::config::PhaseConfig) -> Option<Vec<super::unsupported::GivenUp>> {
        let pool = self.pool.as_ref().filter(|_| phase.task.needs_browser())?;
        let task = super::unsupported::task_key(&phase.task);
        let mut browsers: Vec<crate::config::BrowserKind> =
            pool.workers.iter().map(|w| w.browser).filter(|b| phase.browsers.is_empty() || phase.browsers.contains(b)).collect();
        browsers.sort();
        browsers.dedup();
        let mut given_up = Vec::with_capacity(browsers.len());
        for b in browsers {
            let message = self.unsupported.given_up(&task, b)?;
            given_up.push(super::unsupported::GivenUp { task: task.clone(), browser: b, message });
        }
        (!given_up.is_empty()).then_some(given_up)
    }

    /// Writes breaker transitions as events.
    pub fn transition_events(&self, corr: &str, phase: Option<u32>, ts: Vec<(String, Transition)>) {
        for (key, t) in ts {
            tracing::info!(target: "stressctl::campaign", corr = %corr, "breaker {key}: {} -> {} ({})", t.from, t.to, t.reason);
            if t.to == BreakerState::Open {
                self.breaker_opened(&key, &t.reason);
            }
            self.event(
                corr,
                phase,
                Event::BreakerTransition { key, from: t.from.as_str().to_string(), to: t.to.as_str().to_string(), reason: t.reason },
            );
        }
    }
}

/// Writes `event`'s line to the campaign log, with its correlation id: one event, one line, so
/// `tail -f` of the campaign log follows a night. Kinds whose line is written where they happen
/// (op failures and console errors, capped per slot; breaker transitions; injected faults; clock
/// gaps; the confinement; the start, with the reports' place; a phase's result, with its criteria)
/// and the end-of-run breaker snapshot are left out here.
pub(crate) fn log_event(corr: &str, event: &Event) {
    let warn = match event {
        Event::OpFailed { .. }
        | Event::PageConsole { .. }
        | Event::BreakerTransition { .. }
        | Event::BreakerSnapshot(_)
        | Event::FaultInjected { .. }
        | Event::ClockGap { .. }
        | Event::Confinement { .. }
        | Event::CampaignStarted { .. }
        | Event::PhaseEnded { .. } => return,
        Event::GuardianViolation { .. }
        | Event::BrowserRssExceeded { .. }
        | Event::AutoRecoveryStarted { .. }
        | Event::CampaignHalted { .. }
        | Event::TaskUnsupported { .. }
        | Event::BreakerCommand { .. }
        | Event::NodeDrained { .. }
        | Event::NodeUnwatched { .. }
        | Event::EmergencyStop { .. } => true,
        Event::RecoveryAttempted { outcome, .. } => outcome != "succeeded",
        Event::CampaignEnded { outcome, .. } => outcome != "passed",
        _ => false,
    };
    let line = match event {
        Event::GuardianViolation { .. } => format!("guardian violation: {}", event.describe()),
        Event::CampaignEnded { .. } => format!("verdict: {}", event.describe()),
        _ => event.describe(),
    };
    if warn {
        tracing::warn!(target: "stressctl::campaign", corr = %corr, "{line}");
    } else {
        tracing::info!(target: "stressctl::campaign", corr = %corr, "{line}");
    }
}
