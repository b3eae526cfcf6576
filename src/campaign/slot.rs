//! One session slot of a phase: issues ops back to back until the phase ends, records them into a
//! window that goes to the store about once a second, and carries out the recovery ladder's
//! actions on failures. Where the ops run is its [`Seat`]'s job, what they run its [`Workload`]'s,
//! which action a failure calls for [`recovery::action`]'s.
//!
//! The page tasks (`webgpu`, `webnn`, `page`) run a short batch of ops per WebDriver call
//! ([`crate::tasks::batch`]): the slot takes one breaker permit per op before the call (so a batch
//! never runs more ops than the breakers allow), and afterwards records every op, in order, with its
//! own outcome, class, in-page and round-trip latency, on the breakers, the ladder and the window.
//! The page stops a batch at its first failed op, so a failure that opens a breaker or climbs the
//! ladder is always the last op of its call. A fault due, `think_time > 0` or the
//! `ops_per_session` / `max_ops_per_session` left bound the batch (to one op for the first two).

use super::adapter::AdapterNotes;
use super::ctx::PhaseCtx;
use super::event_cap::{EventCap, FailEvents};
use super::inject::{inject, Target};
use super::seat::Seat;
use super::window::{DegradedOps, OpWindow};
use super::workload::{Attempt, Call, Ran, Workload};
use crate::breaker::{BreakerState, GateRejected, OpGate, OpPermit, Outcome};
use crate::browser::session::Session;
use crate::config::BrowserKind;
use crate::events::Event;
use crate::recovery::{self, backoff, Action, AttemptOutcome, Facts, FailureClass, Ladder, OpError, PageConsole};
use crate::tasks::OpOk;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What an abandoned op is told: it was still running when its phase ended and the grace
/// period ran out. It is a failed op of class `timeout`, never one counted nowhere.
pub(crate) const ABANDONED: &str = "abandoned: still running when the phase ended and the grace period ran out";

/// Which scopes a failure counts against: (worker, browser, task, hardware). A driver that cannot
/// be reached is the worker's problem; a crash also the browser's; a page error the task's; a GPU
/// error the task's and the adapter class's (`hardware:<class>`).
fn attribution(class: FailureClass) -> [Outcome; 4] {
    use Outcome::{Failure, Ignored};
    match class {
        FailureClass::LaunchFailure | FailureClass::ConnectionFailure => [Failure, Ignored, Ignored, Ignored],
        FailureClass::Crash => [Failure, Failure, Ignored, Ignored],
        FailureClass::Timeout | FailureClass::ResourceExhaustion => [Failure, Ignored, Failure, Ignored],
        FailureClass::GpuError => [Ignored, Ignored, Failure, Failure],
        FailureClass::ScriptError | FailureClass::WrongResult => [Ignored, Ignored, Failure, Ignored],
        FailureClass::ApiUnsupported => [Ignored, Ignored, Ignored, Ignored],
    }
}

/// One session slot of a phase.
pub(super) struct Slot {
    ctx: Arc<PhaseCtx>,
    /// This slot's number in its phase (windows and correlation ids name it).
    slot: u32,
    /// Where its ops run: session, worker, Grid node, label and breakers, moved together.
    seat: Seat,
    /// What its ops run.
    work: Workload,
    /// The ops recorded since they last went to the store.
    window: OpWindow,
    /// The ops run at a reduced `webgpu` matrix, counted apart as degraded.
    degraded: DegradedOps,
    /// The work moved to another worker or node: the next call runs the configured workload
    /// ([`Workload::restore`]), not one the ladder shrank where the work was. Applied between
    /// calls, so that every op of a call is counted at the size it ran.
    restore: bool,
    /// The sequence number of the current op (correlation ids; limits `ops_per_session`).
    seq: u64,
    /// Draws fault tokens and backoff waits.
    rng: fastrand::Rng,
    /// The recovery under way, if any: its level climbs while ops keep failing.
    ladder: Ladder,
    /// What the page said about its adapter, stored once.
    adapters: AdapterNotes,
    /// The cap of `op_failed` events.
    fail_events: FailEvents,
    /// The cap of `page_console` events.
    console_events: EventCap,
    /// The cap of recovery lines in the campaign log (every `recovery_attempted` event is
    /// still stored: the report counts them).
    recovery_lines: EventCap,
    /// Browsers this slot found an API unsupported on: not tried again this phase.
    unsupported_on: BTreeSet<BrowserKind>,
    /// The ops of the current call (reused).
    call: Call,
    /// The breaker permits of the current call, one per op it may run (reused).
    permits: Vec<OpPermit>,
    /// The gate `permits` came from, when the call's new session moved the seat to another node
    /// before they went back (a permit is returned to the gate that gave it).
    call_gate: Option<OpGate>,
}

impl Slot {
    /// Slot `slot` of the phase, on worker `worker_ix`, with no session yet.
    pub(super) fn new(ctx: Arc<PhaseCtx>, slot: u32, worker_ix: usize) -> Slot {
        Slot {
            seat: Seat::new(ctx.clone(), worker_ix),
            work: Workload::new(ctx.clone()),
            ctx,
            slot,
            window: OpWindow::new(),
            degraded: DegradedOps::default(),
            restore: false,
            seq: 0,
            rng: fastrand::Rng::new(),
            ladder: Ladder::default(),
            adapters: AdapterNotes::new(),
            fail_events: FailEvents::new(),
            console_events: EventCap::new(),
            recovery_lines: EventCap::new(),
            unsupported_on: BTreeSet::new(),
            call: Call::new(),
            permits: Vec::with_capacity(1),
            call_gate: None,
        }
    }

    /// How many ops the next call may run: one with think time (its pauses go between ops), else
    /// up to `batch_max_ops` within what `ops_per_session` and `max_ops_per_session` leave.
    fn batch_want(&self, limit: Option<u64>) -> usize {
        let b = &self.ctx.run.cfg.browser;
        if !self.work.batches() || !self.ctx.phase.think_time.is_zero() || b.batch_budget.is_zero() {
            return 1;
        }
        let mut n = u64::from(b.batch_max_ops);
        if let Some(m) = limit {
            n = n.min(m.saturating_sub(self.seq));
        }
        if let Some(s) = self.seat.session() {
            n = n.min(b.max_ops_per_session.saturating_sub(s.ops));
        }
        n.max(1) as usize
    }

    fn corr(&self) -> String {
        self.corr_as(self.seat.label())
    }

    /// The correlation id of the current op, had it been counted under `label`.
    fn corr_as(&self, label: &str) -> String {
        format!("{}/{}/{}/s{}-{}", self.ctx.run.id, self.ctx.phase.name, label, self.slot, self.seq)
    }

    /// Records where a new Grid session runs ([`Seat::settle`]): the session, the window so far
    /// under the label it was counted under, and the move when the work left another node.
    /// `mid_call`: the current call's permits came from the gate before.
    fn settle(&mut self, mid_call: bool) {
        let Some(a) = self.seat.settle() else { return };
        let corr = match &a.before {
            Some(b) => self.corr_as(&b.label),
            None => self.corr(),
        };
        self.ctx.run.event(corr.clone(), Some(self.ctx.idx), a.opened);
        if let Some(b) = a.before {
            self.flush_as(&b.label);
            if mid_call {
                self.call_gate = Some(b.gate);
            }
        }
        if let Some(moved) = a.moved {
            self.restore = true;
            if let Event::RecoveryAttempted { worker, .. } = &moved {
                let node = worker.split_once('/').map_or(worker.as_str(), |(_, n)| n);
                tracing::info!(target: "stressctl::campaign", corr = %corr, "work moved from grid node {node} to {}", self.seat.label());
            }
            self.ctx.run.event(corr, Some(self.ctx.idx), moved);
        }
    }

    /// Moves to worker `ix`; the ops so far belong to the worker that ran them.
    fn move_to_worker(&mut self, ix: usize) {
        self.flush();
        self.restore |= ix != self.seat.worker_ix();
        self.seat.move_to_worker(ix);
    }

    /// Opens this slot's session (browser tasks) before the phase clock starts. A failure is not
    /// recorded here: the first op retries the open and records it through the ladder.
    pub(super) async fn prepare(mut self) -> Slot {
        let Some(pool) = self.ctx.run.pool.clone() else { return self };
        if self.work.is_synthetic() || self.seat.session().is_some() {
            return self;
        }
        let Some(w) = self.seat.worker().cloned() else { return self };
        let opened = tokio::select! {
            r = crate::browser::grid_pool::session_for(&pool, &w, &self.ctx.run.breakers, &self.ctx.run.page_url, &self.ctx.phase.task) => r.ok(),
            _ = self.ctx.stop_ops.cancelled() => None,
        };
        if let Some(s) = opened {
            self.seat.install(s);
        }
        self
    }

    /// Runs until the phase stops issuing ops; returns the session if it is fit for reuse.
    pub(super) async fn run(mut self) -> Option<Session> {
        let limit = self.ctx.phase.ops_per_session;
        let mut aborted = false;
        while !self.ctx.stop_ops.is_cancelled() && limit.is_none_or(|m| self.seq < m) {
            if !self.still_asked().await {
                break;
            }
            let want = self.batch_want(limit);
            self.seq += 1;
            self.call.started = Instant::now();
            match self.gated_attempt(want).await {
                Attempt::Done => {}
                Attempt::Aborted => {
                    aborted = true;
                    break;
                }
                Attempt::Abandoned => {
                    aborted = true;
                    self.record(self.call.started.elapsed(), None, Err(OpError::new(FailureClass::Timeout, ABANDONED))).await;
                    break;
                }
                Attempt::Rejected => {
                    self.seq -= 1;
                    continue;
                }
            };
            // every op in order, each under its own sequence number
            let mut ran = std::mem::take(&mut self.call.ran);
            let first = self.seq;
            for (i, r) in ran.drain(..).enumerate() {
                self.seq = first + i as u64;
                self.record(r.latency, r.in_page, r.result).await;
            }
            self.call.ran = ran;
            if self.window.due() {
                self.flush();
            }
            let think = self.ctx.phase.think_time;
            if !think.is_zero() {
                self.pause(think).await;
            }
        }
        self.flush();
        self.ladder.abandon();
        let session = self.seat.take_session()?;
        if aborted {
            self.seat.discard(session).await;
            return None;
        }
        Some(session)
    }

    /// Asks the breakers (worker, browser, task, hardware) for up to `want` permits, one per op;
    /// runs as many ops as it got permits for (none if the first is refused), and records each
    /// op's outcome, in order, against the scopes it belongs to. Permits of ops that did not run (the
    /// batch stopped at a failure, or ran short of its budget) go back as `Ignored`.
    async fn gated_attempt(&mut self, want: usize) -> Attempt {
        self.settle(false);
        if std::mem::take(&mut self.restore) {
            if let Some(undone) = self.work.restore() {
                tracing::info!(target: "stressctl::campaign", corr = %self.corr(), "the work moved to {}: back to {undone}", self.seat.label());
            }
        }
        // the worker's adapter class may have become known (from any of its slots) since the
        // last call: its ops pass `hardware:<class>` from now on
        self.seat.refresh_hardware();
        let now = Instant::now();
        match self.seat.gate().try_acquire(now) {
            Ok(p) => self.permits.push(p),
            Err(r) => {
                self.on_rejected(r).await;
                return Attempt::Rejected;
            }
        }
        while self.permits.len() < want {
            match self.seat.gate().try_acquire(now) {
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
        self.call.ran.clear();
        let r = self.attempt(self.permits.len()).await;
        let mut permits = std::mem::take(&mut self.permits);
        let call_gate = self.call_gate.take();
        let done = matches!(r, Attempt::Done);
        let first = self.seq;
        for (i, permit) in permits.drain(..).enumerate() {
            let outcomes = match self.call.ran.get(i) {
                Some(Ran { result: Ok(_), .. }) if done => [Outcome::Success; 4],
                Some(Ran { result: Err(e), .. }) if done => attribution(e.class),
                // did not run, or the phase ended under it: nothing to hold against anyone
                _ => [Outcome::Ignored; 4],
            };
            let gate = call_gate.as_ref().unwrap_or(self.seat.gate());
            let ts = gate.record_each(permit, outcomes, Instant::now());
            if !ts.is_empty() {
                self.seq = first + i as u64;
                self.ctx.run.transition_events(&self.corr(), Some(self.ctx.idx), ts);
            }
        }
        self.seq = first;
        self.permits = permits;
        r
    }

    /// A breaker refused the op: move to a worker whose breakers are closed if the worker, its
    /// browser or its adapter class is the problem and another one is healthy, otherwise wait
    /// (bounded) before asking again.
    async fn on_rejected(&mut self, r: GateRejected) {
        let GateRejected { key, state, retry_after, transitions } = r;
        if !transitions.is_empty() {
            self.ctx.run.transition_events(&self.corr(), Some(self.ctx.idx), transitions);
        }
        if key.starts_with("worker:") && key.contains('/') {
            // a Grid node's breaker is open: a new session through the hub, elsewhere
            tracing::info!(target: "stressctl::campaign", corr = %self.corr(), "breaker {key} is {state}: moving this session off the node");
            self.flush(); // the ops so far were the node's
            self.seat.leave_node().await;
            return;
        }
        if key.starts_with("worker:") || key.starts_with("browser:") || key.starts_with("hardware:") {
            let current = self.seat.worker_ix();
            let pool = self.ctx.run.pool.clone();
            let usable = |ix: usize| {
                pool.as_ref().and_then(|p| p.workers.get(ix)).is_some_and(|w| {
                    self.ctx.phase_allows(w.browser) && (key.starts_with("worker:") || format!("browser:{}", w.browser) != key)
                })
            };
            if let Some((ix, _)) = self.ctx.run.ranked_workers().into_iter().find(|&(ix, healthy)| healthy && ix != current && usable(ix)) {
                self.move_to_worker(ix);
                tracing::info!(target: "stressctl::campaign", corr = %self.corr(), "breaker {key} is {state}: moving this session to worker {}", self.seat.label());
                self.seat.drop_session().await;
                return;
            }
        }
        let wait = retry_after.unwrap_or(Duration::from_millis(250)).clamp(Duration::from_millis(50), Duration::from_secs(1));
        self.pause(wait).await;
    }

    /// Runs up to `n` ops (at least one) in one call, opening a session first if there is none;
    /// their outcomes go to `self.call.ran`.
    async fn attempt(&mut self, n: usize) -> Attempt {
        if self.work.is_synthetic() {
            let fault = if self.ctx.faults.is_empty() {
                None
            } else {
                let worker = self.seat.base_id().to_string();
                self.ctx.faults.take(&self.ctx.phase.name, &worker, &mut self.rng)
            };
            let page_fault = match &fault {
                Some(f) => self.inject(f, false).await,
                None => None,
            };
            return self.work.synthetic(page_fault, self.seq, &mut self.call).await;
        }
        let Some(pool) = self.ctx.run.pool.clone() else {
            return self.call.done_one(Err(OpError::new(FailureClass::LaunchFailure, "no browser pool")), None);
        };
        if self.seat.session().is_none() {
            let Some(w) = self.seat.worker().cloned() else {
                return self.call.done_one(Err(OpError::new(FailureClass::LaunchFailure, "no worker")), None);
            };
            tokio::select! {
                r = crate::browser::grid_pool::session_for(&pool, &w, &self.ctx.run.breakers, &self.ctx.run.page_url, &self.ctx.phase.task) => match r {
                    Ok(s) => self.seat.install(s),
                    Err(e) => return self.call.done_one(Err(e), None),
                },
                _ = self.ctx.hard.cancelled() => return Attempt::Aborted,
            }
            // the ops of this call run on the new session's node: counted there, and the move
            // recorded now, not at the next op (the phase may end first)
            self.settle(true);
        }
        let worker = self.seat.base_id().to_string();
        let fault = match self.ctx.faults.take(&self.ctx.phase.name, &worker, &mut self.rng) {
            Some(f) => self.inject(&f, true).await,
            None => None,
        };
        let Some(s) = self.seat.session() else { return Attempt::Aborted };
        if let Some(crate::tasks::PageFault::ExhaustMemory { limit_mb }) = fault {
            return self.work.exhaust(s, limit_mb, &mut self.call).await;
        }
        if self.work.batches() {
            // a fault hits exactly one op: the one this call runs
            let n = if fault.is_some() { 1 } else { n };
            return self.work.batch(s, self.seq, n, fault, &mut self.call).await;
        }
        self.work.browser_op(s, self.seat.label(), self.seq, fault, &mut self.call).await
    }

    /// Carries out fault `f` on this slot ([`inject`]); a driver is killed only for a browser
    /// task (`browser`), never from a synthetic phase.
    async fn inject(&mut self, f: &crate::config::FaultConfig, browser: bool) -> Option<crate::tasks::PageFault> {
        let pool = if browser { self.ctx.run.pool.clone() } else { None };
        let target = Target { session: self.seat.session(), worker_ix: self.seat.worker_ix(), label: self.seat.label(), corr: self.corr() };
        inject(&self.ctx, f, pool.as_deref(), target).await
    }

    async fn record(&mut self, latency: Duration, in_page: Option<Duration>, mut result: Result<OpOk, OpError>) {
        let console = match result.as_mut() {
            Ok(ok) => std::mem::take(&mut ok.console),
            Err(e) => std::mem::take(&mut e.console),
        };
        self.window.record(latency, in_page, result.as_ref().map(|ok| ok.verified).map_err(|e| e.class), console.count);
        if let Some((size, configured)) = self.work.reduced_matrix() {
            self.degraded.record(self.seat.label(), size, configured, result.is_ok());
        }
        self.ctx.live.record(result.is_ok());
        match result {
            Ok(ok) => {
                if console.count > 0 {
                    self.console_event(console);
                }
                if let Some(b) = self.seat.browser() {
                    self.ctx.run.unsupported.succeeded(&self.ctx.task_key, b);
                }
                self.adapters.note(&self.ctx, self.seat.worker().map(|w| w.as_ref()), ok.adapter, ok.adapter_retries);
                if let Some(done) = self.ladder.on_success(Instant::now()) {
                    self.recovery_event(done);
                }
                let max = self.ctx.run.cfg.browser.max_ops_per_session;
                let recycle = self.seat.session_mut().is_some_and(|s| {
                    s.ops += 1;
                    s.ops >= max
                });
                if recycle {
                    if let Some(s) = self.seat.take_session() {
                        tracing::debug!(target: "stressctl::browser", session = %s.label, ops = s.ops, "recycling session (max_ops_per_session)");
                        self.seat.discard(s).await;
                    }
                }
            }
            Err(e) => self.on_failure(e, console.entries).await,
        }
        // the guardian found this browser over its RSS cap: recycle the session, keep going
        let over_cap = match (&self.ctx.run.pool, self.seat.session().and_then(|s| s.browser)) {
            (Some(p), Some(b)) => p.take_recycle(b),
            _ => false,
        };
        if over_cap {
            if let Some(s) = self.seat.take_session() {
                self.ctx.run.event(self.corr(), Some(self.ctx.idx), Event::BrowserRecycled { session: s.label.clone() });
                self.seat.discard(s).await;
            }
        }
    }

    /// An op that succeeded while the page logged console errors: a capped `page_console` event
    /// (the windows count every entry).
    fn console_event(&mut self, console: PageConsole) {
        if !self.console_events.allow() {
            return;
        }
        let session = self.seat.session().map(|s| s.label.clone());
        tracing::warn!(target: "stressctl::tasks", corr = %self.corr(), "the page logged {} console error(s): {}", console.count, console.entries.first().map_or("", String::as_str));
        let event = Event::PageConsole { worker: self.seat.label().to_string(), session, count: console.count, entries: console.entries };
        self.ctx.run.event(self.corr(), Some(self.ctx.idx), event);
    }

    /// What the slot knows about the other workers when a failure asks for an action.
    fn facts(&self) -> Facts {
        let Some(pool) = self.ctx.run.pool.as_ref() else { return Facts::default() };
        let current = self.seat.worker_ix();
        let ranked = self.ctx.run.ranked_workers();
        let now = Instant::now();
        // a healthy worker of another browser, with that browser's breaker closed too
        let other_browser = |untried: bool| {
            let mine = self.seat.browser()?;
            ranked
                .iter()
                .find_map(|&(ix, healthy)| {
                    let w = pool.workers.get(ix)?;
                    let browser_ok = matches!(
                        self.ctx.run.breakers.state(&format!("browser:{}", w.browser), now),
                        None | Some(BreakerState::Closed | BreakerState::Disabled)
                    );
                    (healthy && browser_ok && w.browser != mine && self.ctx.phase_allows(w.browser)).then_some(ix)
                })
                .filter(|&ix| !untried || pool.workers.get(ix).is_some_and(|w| self.untried(w.browser)))
        };
        let allowed = |ix: usize| pool.workers.get(ix).is_some_and(|w| self.ctx.phase_allows(w.browser));
        Facts {
            managed_driver: self.seat.worker().is_some_and(|w| w.is_managed()),
            other_browser: other_browser(false),
            untried_browser: other_browser(true),
            other_worker: ranked.iter().find(|&&(ix, _)| ix != current && allowed(ix)).map(|&(ix, _)| ix),
        }
    }

    /// Whether an unsupported API may still be tried on `browser`: this slot has not seen it
    /// refused there, and the run has not given that browser up for the task.
    fn untried(&self, browser: BrowserKind) -> bool {
        !self.unsupported_on.contains(&browser) && self.ctx.run.unsupported.given_up(&self.ctx.task_key, browser).is_none()
    }

    /// Before an op: if the run has given this slot's browser up for the task, move to a worker
    /// of a browser the phase allows that has not been given up (best-ranked first). `false`
    /// when there is none: the slot has nowhere to run and ends.
    async fn still_asked(&mut self) -> bool {
        let Some(mine) = self.seat.browser() else { return true };
        if self.work.is_synthetic() || self.ctx.run.unsupported.given_up(&self.ctx.task_key, mine).is_none() {
            return true;
        }
        let Some(pool) = self.ctx.run.pool.clone() else { return false };
        let target = self.ctx.run.ranked_workers().into_iter().map(|(ix, _)| ix).find(|&ix| {
            pool.workers.get(ix).is_some_and(|w| {
                w.browser != mine
                    && self.ctx.phase_allows(w.browser)
                    && self.ctx.run.unsupported.given_up(&self.ctx.task_key, w.browser).is_none()
            })
        });
        let Some(ix) = target else { return false };
        self.seat.drop_session().await;
        self.move_to_worker(ix);
        tracing::info!(target: "stressctl::campaign", corr = %self.corr(), "{mine} does not support the {} task: moving this session to worker {}", self.ctx.task_key, self.seat.label());
        true
    }

    /// `console`: what the browser's console said during the failed op.
    async fn on_failure(&mut self, e: OpError, console: Vec<String>) {
        self.seat.note_failure(e.class);
        // Every failure is counted in the window; events are capped per slot so a flood of
        // failures (a broken page, a synthetic failure rate) cannot flood the store and the logs.
        if let Some(suppressed_before) = self.fail_events.admit() {
            let corr = self.corr();
            let session = self.seat.session().map(|s| s.label.clone());
            tracing::warn!(target: "stressctl::tasks", corr = %corr, class = %e.class, "op failed: {}", e.message);
            let event = Event::OpFailed {
                class: e.class,
                message: Some(e.message.clone()),
                worker: self.seat.label().to_string(),
                session,
                suppressed_before,
                task_kind: None,
                console,
            };
            self.ctx.run.event(corr, Some(self.ctx.idx), event);
        }
        if self.work.is_synthetic() {
            return; // synthetic failures are drawn, there is nothing to recover
        }
        let step = if e.class == FailureClass::ApiUnsupported {
            // never retried where it failed; tried once on each other browser configured
            if let Some(b) = self.seat.browser() {
                self.unsupported_on.insert(b);
                if let Some(g) = self.ctx.run.unsupported.refused(&self.ctx.task_key, b, &e.message) {
                    let event = Event::TaskUnsupported {
                        task: g.task,
                        browser: b.to_string(),
                        message: g.message,
                        answers: super::unsupported::GIVE_UP_AFTER,
                        remembered: false,
                    };
                    self.ctx.run.event(self.corr(), Some(self.ctx.idx), event);
                }
            }
            None
        } else {
            let recovery = &self.ctx.run.cfg.recovery;
            let (ended, step) = self.ladder.on_failure_from(e.class, recovery.first_rung(e.class), Instant::now(), recovery.max_level);
            if let Some(end) = ended {
                self.recovery_event(end);
            }
            if step.is_none() || self.ctx.run.pool.is_none() {
                return;
            }
            step
        };
        let action = recovery::action(step, e.class, self.facts());
        self.act(action, step.map_or(e.class, |s| s.class)).await;
        if let Some(step) = step {
            let cfg = &self.ctx.run.cfg.recovery;
            let wait = backoff(cfg.backoff_base, cfg.backoff_cap, step.attempt, &mut self.rng);
            self.pause(wait).await;
        }
    }

    /// Carries out a recovery action (`class`: what is being recovered from, for the log).
    async fn act(&mut self, action: Action, class: FailureClass) {
        match action {
            Action::Stay => {}
            Action::NewSession => self.seat.drop_session().await,
            Action::RestartDriver => {
                let generation = self.seat.session().map(|s| s.driver_generation);
                self.seat.drop_session().await;
                let (Some(pool), Some(w)) = (self.ctx.run.pool.clone(), self.seat.worker().cloned()) else { return };
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
            Action::AdjustSettings => {
                self.seat.drop_session().await;
                let what = self.work.adjust();
                tracing::warn!(target: "stressctl::campaign", corr = %self.corr(), "{what}");
            }
            Action::OtherBrowser { worker } => {
                let from = self.seat.browser().map(|b| b.as_str()).unwrap_or("none");
                self.seat.drop_session().await;
                self.move_to_worker(worker);
                let to = self.seat.browser().map(|b| b.as_str()).unwrap_or("none");
                tracing::warn!(target: "stressctl::campaign", corr = %self.corr(), "{class} on {from}: moving this session to {to} (worker {})", self.seat.label());
            }
            Action::OtherWorker { worker } => {
                self.seat.drop_session().await;
                if let Some(ix) = worker {
                    self.move_to_worker(ix);
                }
            }
        }
    }

    fn recovery_event(&mut self, a: AttemptOutcome) {
        let event = Event::RecoveryAttempted {
            class: a.class,
            strategy: a.strategy.as_str().to_string(),
            level: a.strategy.level(),
            outcome: if a.succeeded { "succeeded" } else { "failed" }.to_string(),
            worker: self.seat.label().to_string(),
            time_to_recover_ms: a.time_to_recover.map(|t| (t.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0),
        };
        if self.recovery_lines.allow() {
            self.ctx.run.event(self.corr(), Some(self.ctx.idx), event);
        } else {
            self.ctx.run.event_unlogged(self.corr(), Some(self.ctx.idx), event);
        }
    }

    /// Sleeps, but wakes at once when the phase stops issuing ops.
    async fn pause(&self, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.ctx.stop_ops.cancelled() => {}
        }
    }

    /// Hands the window to the store under the seat's label, and starts a new one.
    fn flush(&mut self) {
        let label = self.seat.label().to_string();
        self.flush_as(&label);
    }

    /// Hands the window to the store under `label` (the one its ops were counted under).
    fn flush_as(&mut self, label: &str) {
        self.window.flush(&self.ctx, label, self.slot);
        self.degraded.flush(&self.ctx, self.slot);
    }
}
