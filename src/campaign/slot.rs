//! One session slot of a phase: issues ops back to back until the phase ends, records them into a
//! window that goes to the store about once a second, and walks the recovery ladder on failures.
//!
//! The page tasks (`webgpu`, `webnn`, `page`) run a short batch of ops per WebDriver call
//! ([`crate::tasks::batch`]): the slot takes one breaker permit per op before the call (so a batch
//! never runs more ops than the breakers allow), and afterwards records every op, in order, with its
//! own outcome, class, in-page and round-trip latency, on the breakers, the ladder and the window.
//! The page stops a batch at its first failed op, so a failure that opens a breaker or climbs the
//! ladder is always the last op of its call. A fault due, `think_time > 0` or the
//! `ops_per_session` / `max_ops_per_session` left bound the batch (to one op for the first two).

use super::ctx::PhaseCtx;
use super::faults::page_fault;
use crate::breaker::{GateRejected, OpGate, Outcome};
use crate::browser::session::Session;
use crate::config::{BrowserKind, FaultConfig, FaultKind, TaskSpec};
use crate::events::Event;
use crate::metrics::{encode_histogram, Window};
use crate::recovery::classify_cmd_error;
use crate::recovery::{backoff, AttemptOutcome, FailureClass, Ladder, OpError, PageConsole, Strategy};
use crate::store::{unix_ms, WindowRow};
use crate::tasks::batch::{batch_script, op_spec, round_trips, run_batch, SCRIPT_TIMEOUT_SLACK};
use crate::tasks::{run_browser_op, OpOk, PageFault, Synthetic};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How often a slot hands its window to the store.
pub const WINDOW: Duration = Duration::from_secs(1);

/// At most this many `op_failed` events per slot per [`FAIL_EVENT_PERIOD`]; every failure is still
/// counted (by class) in the windows, so rates and `errors_by_class` stay exact.
const MAX_FAIL_EVENTS: u32 = 10;
/// The period of the `op_failed` event cap.
const FAIL_EVENT_PERIOD: Duration = Duration::from_secs(60);

/// A per-slot event cap: at most [`MAX_FAIL_EVENTS`] events per [`FAIL_EVENT_PERIOD`] (the
/// `op_failed` and the `page_console` events each have one).
struct EventCap {
    written: u32,
    since: Instant,
}

impl EventCap {
    fn new() -> EventCap {
        EventCap { written: 0, since: Instant::now() }
    }

    /// Whether one more event may be written now; counts it if so.
    fn allow(&mut self) -> bool {
        if self.since.elapsed() >= FAIL_EVENT_PERIOD {
            self.since = Instant::now();
            self.written = 0;
        }
        if self.written >= MAX_FAIL_EVENTS {
            return false;
        }
        self.written += 1;
        true
    }
}

/// Extra time beyond the op timeout before stressctl itself gives up on a WebDriver call.
const DRIVER_SLACK: Duration = Duration::from_secs(3);

/// What an abandoned op is told: it was still running when its phase ended and the grace
/// period ran out. It is a failed op of class `timeout`, never one counted nowhere.
pub(crate) const ABANDONED: &str = "abandoned: still running when the phase ended and the grace period ran out";

/// One op that ran, as the slot records it.
struct Ran {
    result: Result<OpOk, OpError>,
    /// What the page measured around the workload, when it did.
    in_page: Option<Duration>,
    /// What the driver saw (for an op of a batch, its in-page time plus its share of the call's
    /// overhead: [`round_trips`]).
    latency: Duration,
}

enum Attempt {
    /// The ops that ran, in order, are in `Slot::ran` (at least one).
    Done,
    /// Stopped before an op started (e.g. while a session opened): nothing to count.
    Aborted,
    /// The op was in flight when the phase's grace ran out: a failed op.
    Abandoned,
    /// A breaker refused: no op was run.
    Rejected,
}

/// Whether a failure class belongs to the browser (so another browser may do better): it
/// crashed, did not launch, or its GPU stack failed.
fn browser_failure(class: FailureClass) -> bool {
    matches!(class, FailureClass::Crash | FailureClass::LaunchFailure | FailureClass::GpuError | FailureClass::ApiUnsupported)
}

/// Which scopes a failure counts against: (worker, browser, task). A driver that cannot be
/// reached is the worker's problem; a crash also the browser's; a page or GPU error the task's.
fn attribution(class: FailureClass) -> [Outcome; 3] {
    use Outcome::{Failure, Ignored};
    match class {
        FailureClass::LaunchFailure | FailureClass::ConnectionFailure => [Failure, Ignored, Ignored],
        FailureClass::Crash => [Failure, Failure, Ignored],
        FailureClass::Timeout | FailureClass::ResourceExhaustion => [Failure, Ignored, Failure],
        FailureClass::ScriptError | FailureClass::GpuError | FailureClass::WrongResult => [Ignored, Ignored, Failure],
        FailureClass::ApiUnsupported => [Ignored, Ignored, Ignored],
    }
}

pub(super) struct Slot {
    ctx: Arc<PhaseCtx>,
    slot: u32,
    worker_ix: usize,
    session: Option<Session>,
    window: Window,
    window_start: SystemTime,
    last_flush: Instant,
    seq: u64,
    rng: fastrand::Rng,
    synthetic: Option<Synthetic>,
    ladder: Ladder,
    matrix_size: u32,
    /// The `model` task as the ladder's adjusted-settings step left it (None: as configured);
    /// its ops are reported as degraded ([`crate::tasks::adjust`]).
    adjusted: Option<TaskSpec>,
    adapter_reported: bool,
    seed: u32,
    op_started: Instant,
    gate: OpGate,
    /// The cap of `op_failed` events, and the failures it left out since the last one written.
    fail_events: EventCap,
    fail_events_suppressed: u64,
    /// The cap of `page_console` events.
    console_events: EventCap,
    /// Browsers this slot found an API unsupported on: not tried again this phase.
    unsupported_on: std::collections::BTreeSet<BrowserKind>,
    /// grid hook: what ops are labelled with (windows, events, the worker breaker after
    /// `worker:`): the worker id, or `<worker>/<node>` while the session is on a Grid node.
    label: String,
    /// grid hook: the node whose session was dropped after a failure or an open breaker, the
    /// class and when: a new session on another node is a recovery that moved work away from it.
    left_node: Option<(String, FailureClass, Instant)>,
    /// grid hook: the class of the last failure (an open node breaker counts as a connection one).
    last_class: FailureClass,
    /// grid hook: the Grid session id the label was last synced for.
    grid_session: Option<String>,
    /// The in-page batch runner of the phase's task (None: one op per call, model and synthetic).
    batch_script: Option<String>,
    /// The session whose driver script timeout was raised for batches (its label).
    timeouts_for: Option<String>,
    /// The ops of the current call (reused: the synthetic hot path does not allocate).
    ran: Vec<Ran>,
    /// The breaker permits of the current call, one per op it may run (reused).
    permits: Vec<crate::breaker::OpPermit>,
}

impl Slot {
    pub(super) fn new(ctx: Arc<PhaseCtx>, slot: u32, worker_ix: usize, session: Option<Session>) -> Slot {
        let mut rng = fastrand::Rng::new();
        let synthetic = Synthetic::from_spec(&ctx.phase.task, rng.u64(..));
        let label = Self::base_id(&ctx, worker_ix).to_string();
        let gate = Self::gate_for(&ctx, &label);
        let batch = batch_script(&ctx.phase.task);
        let matrix_size = match ctx.phase.task {
            TaskSpec::Webgpu { matrix_size } => matrix_size,
            _ => 0,
        };
        Slot {
            ctx,
            slot,
            worker_ix,
            session,
            window: Window::default(),
            window_start: SystemTime::now(),
            last_flush: Instant::now(),
            seq: 0,
            rng,
            synthetic,
            ladder: Ladder::default(),
            matrix_size,
            adjusted: None,
            adapter_reported: false,
            seed: 1,
            op_started: Instant::now(),
            gate,
            fail_events: EventCap::new(),
            fail_events_suppressed: 0,
            console_events: EventCap::new(),
            unsupported_on: Default::default(),
            label,
            left_node: None,
            last_class: FailureClass::ConnectionFailure,
            grid_session: None,
            batch_script: batch,
            timeouts_for: None,
            ran: Vec::with_capacity(1),
            permits: Vec::with_capacity(1),
        }
    }

    /// How many ops the next call may run: one with think time (its pauses go between ops), else
    /// up to `batch_max_ops` within what `ops_per_session` and `max_ops_per_session` leave.
    fn batch_want(&self, limit: Option<u64>) -> usize {
        let b = &self.ctx.run.cfg.browser;
        if self.batch_script.is_none() || !self.ctx.phase.think_time.is_zero() || b.batch_budget.is_zero() {
            return 1;
        }
        let mut n = u64::from(b.batch_max_ops);
        if let Some(m) = limit {
            n = n.min(m.saturating_sub(self.seq));
        }
        if let Some(s) = &self.session {
            n = n.min(self.ctx.run.cfg.browser.max_ops_per_session.saturating_sub(s.ops));
        }
        n.max(1) as usize
    }

    fn gate_for(ctx: &PhaseCtx, label: &str) -> OpGate {
        let task = ctx.phase.task.kind();
        // the worker's browser (a Grid node label `<worker>/<node>` has its worker's)
        let base = label.split('/').next().unwrap_or(label);
        match &ctx.run.pool {
            Some(p) => {
                let browser = p.workers.iter().find(|w| w.id == base).map(|w| w.browser.as_str()).unwrap_or("none");
                ctx.run.breakers.gate(label, browser, task)
            }
            None => ctx.run.breakers.gate("synthetic", "none", task),
        }
    }

    /// The browser of the slot's worker (None for synthetic tasks).
    fn browser(&self) -> Option<BrowserKind> {
        self.ctx.run.pool.as_ref().and_then(|p| p.workers.get(self.worker_ix)).map(|w| w.browser)
    }

    fn set_worker(&mut self, ix: usize) {
        // the ops so far belong to the worker that ran them
        self.flush();
        self.worker_ix = ix;
        self.label = Self::base_id(&self.ctx, ix).to_string();
        self.gate = Self::gate_for(&self.ctx, &self.label);
    }

    fn base_id(ctx: &PhaseCtx, worker_ix: usize) -> &str {
        match &ctx.run.pool {
            Some(p) => p.workers.get(worker_ix).map(|w| w.id.as_str()).unwrap_or("none"),
            None => "synthetic",
        }
    }

    fn worker_id(&self) -> &str {
        &self.label
    }

    /// grid hook: ops on a Grid session are labelled and gated by its node (`<worker>/<node>`),
    /// ops without a session by the worker (the hub). Flushes the window when the label changes,
    /// and records the move when the session that replaced a failed one is on another node.
    fn sync_grid_node(&mut self) {
        // without a session, keep the node label until a new session says where it runs
        let Some(place) = self.session.as_ref().and_then(|s| s.grid.clone()) else { return };
        if self.grid_session.as_deref() == Some(place.session_id.as_str()) {
            return;
        }
        let base = Self::base_id(&self.ctx, self.worker_ix).to_string();
        let event = Event::GridSessionOpened { worker: base.clone(), node: place.node.clone(), session: place.session_id.clone() };
        self.ctx.run.event(self.corr(), Some(self.ctx.idx), event);
        self.grid_session = Some(place.session_id);
        let label = crate::browser::grid::node_label(&base, &place.node);
        if label == self.label {
            self.left_node = None; // back on the same node: nothing moved
            return;
        }
        self.flush();
        if let Some((node, class, since)) = self.left_node.take().filter(|(n, ..)| *n != place.node) {
            let event = Event::RecoveryAttempted {
                class,
                strategy: "other_node".to_string(),
                level: Strategy::OtherWorker.level(),
                outcome: "succeeded".to_string(),
                worker: crate::browser::grid::node_label(&base, &node),
                time_to_recover_ms: Some((since.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0),
            };
            tracing::info!(target: "stressctl::campaign", corr = %self.corr(), "work moved from grid node {node} to {label}");
            self.ctx.run.event(self.corr(), Some(self.ctx.idx), event);
        }
        self.label = label;
        self.gate = Self::gate_for(&self.ctx, &self.label);
    }

    fn corr(&self) -> String {
        format!("{}/{}/{}/s{}-{}", self.ctx.run.id, self.ctx.phase.name, self.worker_id(), self.slot, self.seq)
    }

    /// Opens this slot's session (browser tasks) before the phase clock starts. A failure is not
    /// recorded here: the first op retries the open and records it through the ladder.
    pub(super) async fn prepare(mut self) -> Slot {
        let Some(pool) = self.ctx.run.pool.clone() else { return self };
        if self.synthetic.is_some() || self.session.is_some() {
            return self;
        }
        let Some(w) = pool.workers.get(self.worker_ix).cloned() else { return self };
        let opened = tokio::select! {
            r = crate::browser::grid_pool::session_for(&pool, &w, &self.ctx.run.breakers, &self.ctx.run.page_url, &self.ctx.phase.task) => r.ok(),
            _ = self.ctx.stop_ops.cancelled() => None,
        };
        self.session = opened;
        self
    }

    /// Runs until the phase stops issuing ops; returns the session if it is fit for reuse.
    pub(super) async fn run(mut self) -> Option<Session> {
        let limit = self.ctx.phase.ops_per_session;
        let mut aborted = false;
        while !self.ctx.stop_ops.is_cancelled() && limit.is_none_or(|m| self.seq < m) {
            let want = self.batch_want(limit);
            self.seq += 1;
            self.op_started = Instant::now();
            match self.gated_attempt(want).await {
                Attempt::Done => {}
                Attempt::Aborted => {
                    aborted = true;
                    break;
                }
                Attempt::Abandoned => {
                    aborted = true;
                    self.record(self.op_started.elapsed(), None, Err(OpError::new(FailureClass::Timeout, ABANDONED))).await;
                    break;
                }
                Attempt::Rejected => {
                    self.seq -= 1;
                    continue;
                }
            };
            // every op in order, each under its own sequence number
            let mut ran = std::mem::take(&mut self.ran);
            let first = self.seq;
            for (i, r) in ran.drain(..).enumerate() {
                self.seq = first + i as u64;
                self.record(r.latency, r.in_page, r.result).await;
            }
            self.ran = ran;
            if self.last_flush.elapsed() >= WINDOW {
                self.flush();
            }
            let think = self.ctx.phase.think_time;
            if !think.is_zero() {
                self.pause(think).await;
            }
        }
        self.flush();
        self.ladder.abandon();
        let session = self.session.take()?;
        if aborted {
            self.discard(session).await;
            return None;
        }
        Some(session)
    }

    /// Asks the breakers (worker, browser, task) for up to `want` permits, one per op; runs as
    /// many ops as it got permits for (none if the first is refused), and records each op's
    /// outcome, in order, against the scopes it belongs to. Permits of ops that did not run (the
    /// batch stopped at a failure, or ran short of its budget) go back as `Ignored`.
    async fn gated_attempt(&mut self, want: usize) -> Attempt {
        self.sync_grid_node();
        let now = Instant::now();
        match self.gate.try_acquire(now) {
            Ok(p) => self.permits.push(p),
            Err(r) => {
                self.on_rejected(r).await;
                return Attempt::Rejected;
            }
        }
        while self.permits.len() < want {
            match self.gate.try_acquire(now) {
                Ok(p) => self.permits.push(p),
                Err(r) => {
                    // e.g. half-open: the probes allowed are the batch
                    if !r.transitions.is_empty() {
                        self.ctx.run.transition_events(&self.corr(), Some(self.ctx.idx), r.transitions);
                    }
                    break;
                }
            }
        }
        self.ran.clear();
        let r = self.attempt(self.permits.len()).await;
        let mut permits = std::mem::take(&mut self.permits);
        let done = matches!(r, Attempt::Done);
        let first = self.seq;
        for (i, permit) in permits.drain(..).enumerate() {
            let outcomes = match self.ran.get(i) {
                Some(Ran { result: Ok(_), .. }) if done => [Outcome::Success; 3],
                Some(Ran { result: Err(e), .. }) if done => attribution(e.class),
                // did not run, or the phase ended under it: nothing to hold against anyone
                _ => [Outcome::Ignored; 3],
            };
            let ts = self.gate.record_each(permit, outcomes, Instant::now());
            if !ts.is_empty() {
                self.seq = first + i as u64;
                self.ctx.run.transition_events(&self.corr(), Some(self.ctx.idx), ts);
            }
        }
        self.seq = first;
        self.permits = permits;
        r
    }

    /// A breaker refused the op: move to a worker whose breakers are closed if the worker is the
    /// problem and another one is healthy, otherwise wait (bounded) before asking again.
    async fn on_rejected(&mut self, r: GateRejected) {
        let GateRejected { key, state, retry_after, transitions } = r;
        if !transitions.is_empty() {
            self.ctx.run.transition_events(&self.corr(), Some(self.ctx.idx), transitions);
        }
        if key.starts_with("worker:") && key.contains('/') {
            // grid hook: a Grid node's breaker is open: a new session through the hub, elsewhere
            tracing::info!(target: "stressctl::campaign", corr = %self.corr(), "breaker {key} is {state}: moving this session off the node");
            self.drop_session().await;
            return;
        }
        if key.starts_with("worker:") || key.starts_with("browser:") {
            let current = self.worker_ix;
            let pool = self.ctx.run.pool.clone();
            let usable = |ix: usize| {
                pool.as_ref().and_then(|p| p.workers.get(ix)).is_some_and(|w| {
                    self.ctx.phase_allows(w.browser) && (key.starts_with("worker:") || format!("browser:{}", w.browser) != key)
                })
            };
            if let Some((ix, _)) = self.ctx.run.ranked_workers().into_iter().find(|&(ix, healthy)| healthy && ix != current && usable(ix)) {
                self.set_worker(ix);
                tracing::info!(target: "stressctl::campaign", corr = %self.corr(), "breaker {key} is {state}: moving this session to worker {}", self.worker_id());
                self.drop_session().await;
                return;
            }
        }
        let wait = retry_after.unwrap_or(Duration::from_millis(250)).clamp(Duration::from_millis(50), Duration::from_secs(1));
        self.pause(wait).await;
    }

    /// Runs up to `n` ops (at least one) in one call; their outcomes go to `self.ran`.
    async fn attempt(&mut self, n: usize) -> Attempt {
        if self.synthetic.is_some() {
            return match self.synthetic_attempt().await {
                Attempt::Done => {
                    let latency = self.op_started.elapsed();
                    if let Some(r) = self.ran.first_mut() {
                        r.latency = latency;
                    }
                    Attempt::Done
                }
                other => other,
            };
        }
        let Some(pool) = self.ctx.run.pool.clone() else {
            return self.done_one(Err(OpError::new(FailureClass::LaunchFailure, "no browser pool")), None);
        };
        if self.session.is_none() {
            let Some(w) = pool.workers.get(self.worker_ix).cloned() else {
                return self.done_one(Err(OpError::new(FailureClass::LaunchFailure, "no worker")), None);
            };
            tokio::select! {
                r = crate::browser::grid_pool::session_for(&pool, &w, &self.ctx.run.breakers, &self.ctx.run.page_url, &self.ctx.phase.task) => match r {
                    Ok(s) => self.session = Some(s),
                    Err(e) => return self.done_one(Err(e), None),
                },
                _ = self.ctx.hard.cancelled() => return Attempt::Aborted,
            }
        }
        let worker = Self::base_id(&self.ctx, self.worker_ix).to_string();
        let fault = match self.ctx.faults.take(&self.ctx.phase.name, &worker, &mut self.rng) {
            Some(f) => self.inject(&f, Some(&pool)).await,
            None => None,
        };
        if self.batch_script.is_some() {
            // a fault hits exactly one op: the one this call runs
            let n = if fault.is_some() { 1 } else { n };
            return self.batch_attempt(n, fault).await;
        }
        let seed = self.next_seed(self.seq);
        let Some(s) = self.session.as_ref() else { return Attempt::Aborted };
        self.op_started = Instant::now();
        let limit = self.ctx.run.cfg.browser.op_timeout + DRIVER_SLACK;
        let r = {
            let info = crate::tasks::model::store_sink(&self.ctx.run.store, self.ctx.idx, self.worker_id(), &s.label);
            let op = tokio::time::timeout(
                limit,
                run_browser_op(
                    &s.client,
                    self.adjusted.as_ref().unwrap_or(&self.ctx.phase.task),
                    self.matrix_size,
                    seed,
                    fault,
                    s.adapter,
                    &self.ctx.run.page_url,
                    &info,
                ),
            );
            tokio::select! {
                r = op => Ok(r.unwrap_or_else(|_| Err(OpError::new(FailureClass::Timeout, format!("no answer from the driver within {limit:?}"))))),
                _ = self.ctx.hard.cancelled() => Err(Attempt::Abandoned),
            }
        };
        match r {
            Ok(r) => {
                // one-off set-up inside the op (a model's session creation) is not the op's latency
                if let Ok(ok) = &r {
                    self.op_started += ok.setup;
                }
                self.done_one(r, None)
            }
            Err(a) => a,
        }
    }

    /// The seed of op `seq`: a new input seed every 64 ops. Each op is still computed on the GPU
    /// (output zeroed first) and checked against the CPU reference, which the page caches per seed.
    fn next_seed(&mut self, seq: u64) -> u32 {
        if seq % 64 == 1 {
            self.seed = self.rng.u32(..);
        }
        self.seed
    }

    /// One op ran (or failed before it could): its round trip is the time since it started.
    fn done_one(&mut self, result: Result<OpOk, OpError>, in_page: Option<Duration>) -> Attempt {
        self.ran.push(Ran { result, in_page, latency: self.op_started.elapsed() });
        Attempt::Done
    }

    /// Runs `n` ops of a page task in one call of the in-page batch runner.
    async fn batch_attempt(&mut self, n: usize, fault: Option<PageFault>) -> Attempt {
        let op_timeout = self.ctx.run.cfg.browser.op_timeout;
        let Some(s) = self.session.as_ref() else { return Attempt::Aborted };
        // the last op of a batch may start batch_budget after the call: the driver's script
        // timeout must leave it its whole op_timeout (the page times each op out itself)
        let budget = self.ctx.run.cfg.browser.batch_budget;
        let script_timeout = op_timeout + budget + SCRIPT_TIMEOUT_SLACK;
        if self.timeouts_for.as_deref() != Some(s.label.as_str()) {
            let t = fantoccini::wd::TimeoutConfiguration::new(
                Some(script_timeout),
                Some(self.ctx.run.cfg.browser.session_timeout),
                Some(Duration::ZERO),
            );
            if let Err(e) = s.client.update_timeouts(t).await {
                self.op_started = Instant::now();
                return self.done_one(Err(classify_cmd_error(e)), None);
            }
            self.timeouts_for = Some(s.label.clone());
        }
        let (ctx, adapter, matrix) = (self.ctx.clone(), s.adapter, self.matrix_size);
        let mut specs = Vec::with_capacity(n);
        for i in 0..n as u64 {
            let seed = self.next_seed(self.seq + i);
            specs.push(op_spec(&ctx.phase.task, matrix, seed, if i == 0 { fault } else { None }, adapter));
        }
        let Some(s) = self.session.as_ref() else { return Attempt::Aborted };
        let script = self.batch_script.as_deref().unwrap_or_default();
        let limit = script_timeout + DRIVER_SLACK;
        self.op_started = Instant::now();
        let call = tokio::time::timeout(limit, run_batch(&s.client, script, specs, budget, op_timeout));
        let answer = tokio::select! {
            r = call => r.unwrap_or_else(|_| Err(OpError::new(FailureClass::Timeout, format!("no answer from the driver within {limit:?}")))),
            _ = self.ctx.hard.cancelled() => return Attempt::Abandoned,
        };
        let elapsed = self.op_started.elapsed();
        match answer {
            Ok(ops) => {
                let in_page: Vec<Option<Duration>> = ops.iter().map(|o| o.in_page).collect();
                for (op, latency) in ops.into_iter().zip(round_trips(elapsed, &in_page)) {
                    self.ran.push(Ran { result: op.result, in_page: op.in_page, latency });
                }
                Attempt::Done
            }
            // the call itself failed: one failed op, the first that did not answer
            Err(e) => self.done_one(Err(e), None),
        }
    }

    /// A synthetic op. It honours the faults that make sense without a browser: `throw` fails
    /// the op as a script error, `hang` holds it until `op_timeout` (a timeout), both for real.
    /// The hot path (no fault due, no latency) neither allocates nor touches the phase's tokens:
    /// the orchestrator's own cost per op is what the synthetic task measures.
    async fn synthetic_attempt(&mut self) -> Attempt {
        let fault = if self.ctx.faults.is_empty() {
            None
        } else {
            let worker = Self::base_id(&self.ctx, self.worker_ix).to_string();
            self.ctx.faults.take(&self.ctx.phase.name, &worker, &mut self.rng)
        };
        let page_fault = match &fault {
            Some(f) => self.inject(f, None).await,
            None => None,
        };
        self.op_started = Instant::now();
        let ctx = &self.ctx;
        let Some(syn) = self.synthetic.as_mut() else { return Attempt::Aborted };
        let wait = match page_fault {
            Some(PageFault::Throw) => {
                self.ran.push(Ran {
                    result: Err(OpError::new(FailureClass::ScriptError, "injected fault: throw")),
                    in_page: None,
                    latency: Duration::ZERO,
                });
                return Attempt::Done;
            }
            Some(PageFault::Hang) => ctx.run.cfg.browser.op_timeout,
            _ => syn.draw_latency(),
        };
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = ctx.hard.cancelled() => return Attempt::Abandoned,
            }
        }
        let r = match page_fault {
            Some(PageFault::Hang) => {
                Err(OpError::new(FailureClass::Timeout, format!("op timed out after {wait:?} (injected fault: hang)")))
            }
            _ => syn.outcome(),
        };
        if self.seq % 256 == 0 {
            tokio::task::yield_now().await;
        }
        self.ran.push(Ran { result: r, in_page: None, latency: Duration::ZERO });
        Attempt::Done
    }

    /// Carries out a process fault now, or returns the page fault for the op to carry.
    async fn inject(&mut self, f: &FaultConfig, pool: Option<&crate::browser::pool::Pool>) -> Option<PageFault> {
        let what = match f.kind {
            FaultKind::KillBrowser => match self.session.as_ref().and_then(|s| s.browser) {
                Some(b) if b.signal(libc::SIGKILL) => format!("SIGKILL browser pid {}", b.pid),
                _ => return None,
            },
            FaultKind::KillDriver => {
                let pool = pool?;
                let w = pool.workers.get(self.worker_ix)?.clone();
                let pid = pool.kill_driver(&w, self.session.as_ref(), f.permanent).await?;
                let driver = w.browser.driver_name();
                format!("SIGKILL {driver} pid {pid} of worker {}{}", w.id, if f.permanent { " (permanent)" } else { "" })
            }
            _ => format!("page fault {}", f.kind.as_str()),
        };
        tracing::warn!(target: "stressctl::tasks", corr = %self.corr(), "fault injected: {what}");
        self.ctx.run.event(
            self.corr(),
            Some(self.ctx.idx),
            Event::FaultInjected { fault: f.kind, worker: self.worker_id().to_string(), permanent: f.permanent, detail: what },
        );
        page_fault(f.kind)
    }

    async fn record(&mut self, latency: Duration, in_page: Option<Duration>, mut result: Result<OpOk, OpError>) {
        self.window.record(latency, in_page, result.as_ref().map(|ok| ok.verified).map_err(|e| e.class));
        let console = match result.as_mut() {
            Ok(ok) => std::mem::take(&mut ok.console),
            Err(e) => std::mem::take(&mut e.console),
        };
        self.window.console += console.count;
        self.ctx.live.record(result.is_ok());
        match result {
            Ok(ok) => {
                if console.count > 0 {
                    self.console_event(console);
                }
                if ok.adapter_retries > 0 {
                    self.count_adapter_retries(ok.adapter_retries);
                }
                if !self.adapter_reported {
                    if let Some(a) = ok.adapter {
                        self.report_adapter(a);
                        self.adapter_reported = true;
                    }
                }
                if let Some(done) = self.ladder.on_success(Instant::now()) {
                    self.recovery_event(done);
                }
                let recycle = match self.session.as_mut() {
                    Some(s) => {
                        s.ops += 1;
                        s.ops >= self.ctx.run.cfg.browser.max_ops_per_session
                    }
                    None => false,
                };
                if recycle {
                    if let Some(s) = self.session.take() {
                        tracing::debug!(target: "stressctl::browser", session = %s.label, ops = s.ops, "recycling session (max_ops_per_session)");
                        self.discard(s).await;
                    }
                }
            }
            Err(e) => self.on_failure(e, console.entries).await,
        }
        // the guardian found this browser over its RSS cap: recycle the session, keep going
        let over_cap = match (&self.ctx.run.pool, self.session.as_ref().and_then(|s| s.browser)) {
            (Some(p), Some(b)) => p.take_recycle(b),
            _ => false,
        };
        if over_cap {
            if let Some(s) = self.session.take() {
                self.ctx.run.event(self.corr(), Some(self.ctx.idx), Event::BrowserRecycled { session: s.label.clone() });
                self.discard(s).await;
            }
        }
    }

    /// Records the adapter (or WebNN backend) the page reported, per browser, with what
    /// stressctl knows beside it: the `webgpu_adapter` choice and the GPU `chrome://gpu` names.
    fn report_adapter(&self, mut a: serde_json::Value) {
        let kind = self.ctx.phase.task.kind();
        let Some(w) = self.ctx.run.pool.as_ref().and_then(|p| p.workers.get(self.worker_ix)) else { return };
        if let Some(o) = a.as_object_mut() {
            if matches!(self.ctx.phase.task, TaskSpec::Webgpu { .. }) {
                o.insert("webgpu_adapter".into(), serde_json::json!(w.adapter_choice.as_str()));
                if let Some(n) = w.gpu_name() {
                    o.insert("gpu_name".into(), serde_json::json!(n));
                }
            }
        }
        // the first browser to report is also the task's adapter (reports before browsers)
        if self.ctx.first_adapter.set(()).is_ok() {
            self.ctx.run.store.task_info(self.ctx.idx, kind, "adapter", a.clone());
        }
        self.ctx.run.store.task_info(self.ctx.idx, kind, format!("adapter:{}", w.browser), a);
    }

    /// Adds null `requestAdapter()` answers the page retried past to the phase's count for this
    /// browser, and stores the new total.
    fn count_adapter_retries(&self, n: u64) {
        let Some(b) = self.browser() else { return };
        let total = {
            let mut m = self.ctx.adapter_retries.lock().unwrap_or_else(|e| e.into_inner());
            let t = m.entry(b).or_insert(0);
            *t += n;
            *t
        };
        self.ctx.run.store.task_info(self.ctx.idx, self.ctx.phase.task.kind(), format!("adapter_retries:{b}"), serde_json::json!(total));
    }

    /// A worker of another browser than this slot's, best-ranked first, whose worker and
    /// browser breakers are closed; None when there is none (one browser configured, or all
    /// others unhealthy).
    fn other_browser_worker(&self) -> Option<usize> {
        let pool = self.ctx.run.pool.as_ref()?;
        let mine = self.browser()?;
        let now = Instant::now();
        self.ctx.run.ranked_workers().into_iter().find_map(|(ix, healthy)| {
            let w = pool.workers.get(ix)?;
            let browser_ok = matches!(
                self.ctx.run.breakers.state(&format!("browser:{}", w.browser), now),
                None | Some(crate::breaker::BreakerState::Closed | crate::breaker::BreakerState::Disabled)
            );
            (healthy && browser_ok && w.browser != mine && self.ctx.phase_allows(w.browser)).then_some(ix)
        })
    }

    /// Moves the slot to worker `ix` of another browser, with an event saying why.
    async fn move_to_browser(&mut self, ix: usize, class: FailureClass) {
        let from = self.browser().map(|b| b.as_str()).unwrap_or("none");
        self.drop_session().await;
        self.set_worker(ix);
        let to = self.browser().map(|b| b.as_str()).unwrap_or("none");
        tracing::warn!(target: "stressctl::campaign", corr = %self.corr(), "{class} on {from}: moving this session to {to} (worker {})", self.worker_id());
    }

    /// An op that succeeded while the page logged console errors: a capped `page_console` event
    /// (the windows count every entry).
    fn console_event(&mut self, console: PageConsole) {
        if !self.console_events.allow() {
            return;
        }
        let session = self.session.as_ref().map(|s| s.label.clone());
        tracing::warn!(target: "stressctl::tasks", corr = %self.corr(), "the page logged {} console error(s): {}", console.count, console.entries.first().map_or("", String::as_str));
        let event = Event::PageConsole { worker: self.worker_id().to_string(), session, count: console.count, entries: console.entries };
        self.ctx.run.event(self.corr(), Some(self.ctx.idx), event);
    }

    /// `console`: what the browser's console said during the failed op.
    async fn on_failure(&mut self, e: OpError, console: Vec<String>) {
        // grid hook: remembered for the `other_node` recovery if the session moves off its node
        self.last_class = e.class;
        // a failure with no session while labelled by a node (a replacement session the hub put
        // on a node that is dying): the work leaves that node too
        if self.session.is_none() && self.left_node.is_none() {
            // the label keeps naming the node while the slot has no session
            if let Some(n) = crate::browser::grid::label_node(Self::base_id(&self.ctx, self.worker_ix), &self.label) {
                self.left_node = Some((n.to_string(), e.class, Instant::now()));
            }
        }
        // Every failure is counted in the window; events are capped per slot so a flood of
        // failures (a broken page, a synthetic failure rate) cannot flood the store and the logs.
        if self.fail_events.allow() {
            let corr = self.corr();
            let session = self.session.as_ref().map(|s| s.label.clone());
            tracing::warn!(target: "stressctl::tasks", corr = %corr, class = %e.class, "op failed: {}", e.message);
            let event = Event::OpFailed {
                class: e.class,
                message: Some(e.message.clone()),
                worker: self.worker_id().to_string(),
                session,
                suppressed_before: self.fail_events_suppressed,
                task_kind: None,
                console,
            };
            self.ctx.run.event(corr, Some(self.ctx.idx), event);
            self.fail_events_suppressed = 0;
        } else {
            self.fail_events_suppressed += 1;
        }
        if self.synthetic.is_some() {
            return; // synthetic failures are drawn, there is nothing to recover
        }
        if e.class == FailureClass::ApiUnsupported {
            // never retried where it failed; tried once on each other browser configured
            if let Some(b) = self.browser() {
                self.unsupported_on.insert(b);
            }
            let target = self.other_browser_worker().filter(|&ix| {
                self.ctx.run.pool.as_ref().and_then(|p| p.workers.get(ix)).is_some_and(|w| !self.unsupported_on.contains(&w.browser))
            });
            if let Some(ix) = target {
                self.move_to_browser(ix, e.class).await;
            }
            return;
        }
        let max_level = self.ctx.run.cfg.recovery.max_level;
        let (ended, step) = self.ladder.on_failure(e.class, Instant::now(), max_level);
        if let Some(end) = ended {
            self.recovery_event(end);
        }
        let Some(step) = step else { return };
        let Some(pool) = self.ctx.run.pool.clone() else { return };
        let worker = pool.workers.get(self.worker_ix).cloned();
        match step.strategy {
            Strategy::Retry => {}
            Strategy::NewSession => self.drop_session().await,
            Strategy::RestartDriver => {
                let generation = self.session.as_ref().map(|s| s.driver_generation);
                self.drop_session().await;
                if let (Some(w), true) = (worker, pool.workers.get(self.worker_ix).is_some_and(|w| w.is_managed())) {
                    let seen = match generation {
                        Some(g) => g,
                        None => pool.endpoint(&w).await.map(|ep| ep.generation).unwrap_or(0),
                    };
                    if let Err(err) = pool.restart_driver(&w, seen).await {
                        tracing::warn!(target: "stressctl::browser", worker = %w.id, "driver restart failed: {err}");
                    } else {
                        self.ctx.run.event(self.corr(), Some(self.ctx.idx), Event::DriverRestarted { worker: w.id.clone() });
                    }
                }
            }
            Strategy::AdjustedSettings => {
                self.drop_session().await;
                if let TaskSpec::Webgpu { .. } = self.ctx.phase.task {
                    self.matrix_size = self.matrix_size.min(self.ctx.run.cfg.recovery.reduced_matrix_size);
                }
                if let Some((task, what)) = crate::tasks::adjust::next_adjusted(&self.ctx.phase.task, self.adjusted.as_ref()) {
                    tracing::warn!(target: "stressctl::campaign", corr = %self.corr(), "{what}");
                    self.adjusted = Some(task);
                }
            }
            Strategy::OtherBrowser if browser_failure(step.class) && self.other_browser_worker().is_some() => {
                if let Some(ix) = self.other_browser_worker() {
                    self.move_to_browser(ix, step.class).await;
                }
            }
            Strategy::OtherWorker | Strategy::OtherBrowser => {
                self.drop_session().await;
                // the best-ranked other worker (closed breakers first) the phase may use
                let current = self.worker_ix;
                let allowed = |ix: usize| pool.workers.get(ix).is_some_and(|w| self.ctx.phase_allows(w.browser));
                if let Some((ix, _)) = self.ctx.run.ranked_workers().into_iter().find(|&(ix, _)| ix != current && allowed(ix)) {
                    self.set_worker(ix);
                }
            }
        }
        let cfg = &self.ctx.run.cfg.recovery;
        let wait = backoff(cfg.backoff_base, cfg.backoff_cap, step.attempt, &mut self.rng);
        self.pause(wait).await;
    }

    fn recovery_event(&self, a: AttemptOutcome) {
        let event = Event::RecoveryAttempted {
            class: a.class,
            strategy: a.strategy.as_str().to_string(),
            level: a.strategy.level(),
            outcome: if a.succeeded { "succeeded" } else { "failed" }.to_string(),
            worker: self.worker_id().to_string(),
            time_to_recover_ms: a.time_to_recover.map(|t| (t.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0),
        };
        self.ctx.run.event(self.corr(), Some(self.ctx.idx), event);
    }

    async fn drop_session(&mut self) {
        if let Some(s) = self.session.take() {
            // grid hook: the node this slot's work leaves (see sync_grid_node)
            if let (Some(p), None) = (&s.grid, &self.left_node) {
                self.left_node = Some((p.node.clone(), self.last_class, Instant::now()));
            }
            self.discard(s).await;
        }
    }

    async fn discard(&self, s: Session) {
        match &self.ctx.run.pool {
            Some(p) => p.discard(s).await,
            None => s.discard().await,
        }
    }

    /// Sleeps, but wakes at once when the phase stops issuing ops.
    async fn pause(&self, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.ctx.stop_ops.cancelled() => {}
        }
    }

    fn flush(&mut self) {
        let now = SystemTime::now();
        if !self.window.is_empty() {
            let errors: std::collections::BTreeMap<&str, u64> = self.window.errors.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            self.ctx.live.merge(&self.window);
            self.ctx.run.store.window(WindowRow {
                phase_idx: self.ctx.idx,
                worker: self.worker_id().to_string(),
                slot: self.slot,
                task_kind: self.ctx.phase.task.kind(),
                start_ms: unix_ms(self.window_start),
                end_ms: unix_ms(now),
                attempted: self.window.attempted,
                succeeded: self.window.succeeded,
                failed: self.window.failed,
                verified: self.window.verified,
                errors: serde_json::to_string(&errors).unwrap_or_else(|_| "{}".into()),
                hist: encode_histogram(&self.window.hist),
                hist_in_page: encode_histogram(&self.window.in_page),
                console: self.window.console,
            });
            self.window.reset();
        }
        self.window_start = now;
        self.last_flush = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_cap_lets_max_events_through_per_period_then_refuses() {
        let mut cap = EventCap::new();
        for i in 0..MAX_FAIL_EVENTS {
            assert!(cap.allow(), "event {i} refused");
        }
        assert!(!cap.allow());
        assert!(!cap.allow());
        // a new period starts the count again
        cap.since = Instant::now() - FAIL_EVENT_PERIOD;
        assert!(cap.allow());
        assert_eq!(cap.written, 1);
    }
}
