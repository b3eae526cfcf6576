//! Where a slot's ops run: its session, the worker it is opened through, the Selenium Grid node it
//! landed on, the label ops are counted under and the breakers they must pass, held as one value
//! and changed together by the moves (a new session, another worker, another node).
//!
//! A Grid session's ops are labelled and gated by its node (`<worker>/<node>`), ops with no node
//! yet by the worker (the hub). The label keeps naming the node while the slot has no session,
//! until a new session says where it runs; a session that lands on another node than the one the
//! work left completes a [`Departure`] as an `other_node` recovery ([`Seat::settle`]).

use super::ctx::PhaseCtx;
use super::departure::Departure;
use crate::breaker::OpGate;
use crate::browser::grid::{node_label, GridPlace};
use crate::browser::pool::Worker;
use crate::browser::session::Session;
use crate::config::BrowserKind;
use crate::events::Event;
use crate::recovery::{FailureClass, Strategy};
use std::sync::Arc;
use std::time::Instant;

/// Where a slot's ops run.
pub(super) struct Seat {
    ctx: Arc<PhaseCtx>,
    /// The session ops run in. None before the first op opens one, and after a failure, a recycle
    /// or a move dropped it: the next op opens a new one through `worker_ix`.
    session: Option<Session>,
    /// The pool index of the worker sessions are opened through; changed only by a move to
    /// another worker.
    worker_ix: usize,
    /// The Grid node the label names and the session it was learned from (None: ops are counted
    /// under the worker itself). Kept when the session is dropped, so a failure with no session
    /// still leaves the node the work was on; a new session's id tells [`Seat::settle`] it is new.
    node: Option<GridPlace>,
    /// What ops are counted under (windows, events, the worker breaker after `worker:`): the
    /// worker id, or `<worker>/<node>`. Derived from `worker_ix` and `node`, in [`Seat::place`] only.
    label: String,
    /// The breakers of the label (worker or node), the worker's browser and the task; made with
    /// the label.
    gate: OpGate,
    /// The node the work left (a failure or its open breaker dropped the session), until a
    /// session lands on another node and counts the move.
    departure: Option<Departure>,
    /// The class of the last failure: a departure's class when an open node breaker, not a
    /// failure, drops the session (a connection failure before any).
    last_failure: FailureClass,
}

/// A new Grid session found by [`Seat::settle`]: what the slot records about it.
pub(super) struct Arrival {
    /// The `grid_session_opened` event.
    pub opened: Event,
    /// What the seat was before, when the session's node changed its label.
    pub before: Option<Before>,
    /// The `other_node` recovery, when the work left another node for this one.
    pub moved: Option<Event>,
}

/// The label and breakers a seat had before a new session changed them.
pub(super) struct Before {
    /// The label ops were counted under until now: the slot flushes its window under it, and the
    /// arrival's events are correlated with it.
    pub label: String,
    /// Its breakers: the current call's permits go back to the gate that gave them.
    pub gate: OpGate,
}

impl Seat {
    /// A seat on worker `worker_ix` with no session yet.
    pub fn new(ctx: Arc<PhaseCtx>, worker_ix: usize) -> Seat {
        let (label, gate) = Self::place(&ctx, worker_ix, None);
        Seat { ctx, session: None, worker_ix, node: None, label, gate, departure: None, last_failure: FailureClass::ConnectionFailure }
    }

    /// The label and gate of ops on worker `worker_ix`, on `node` when given.
    fn place(ctx: &PhaseCtx, worker_ix: usize, node: Option<&str>) -> (String, OpGate) {
        let base = base_id(ctx, worker_ix);
        let label = match node {
            Some(n) => node_label(base, n),
            None => base.to_string(),
        };
        let task = ctx.phase.task.kind();
        let gate = match &ctx.run.pool {
            Some(p) => {
                let browser = p.workers.get(worker_ix).map(|w| w.browser.as_str()).unwrap_or("none");
                ctx.run.breakers.gate(&label, browser, task)
            }
            None => ctx.run.breakers.gate("synthetic", "none", task),
        };
        (label, gate)
    }

    /// What ops are counted under: the worker id, or `<worker>/<node>` on a Grid node.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The worker's own id (`synthetic` without a pool), whatever node the session is on.
    pub fn base_id(&self) -> &str {
        base_id(&self.ctx, self.worker_ix)
    }

    /// The breakers an op here must pass.
    pub fn gate(&self) -> &OpGate {
        &self.gate
    }

    /// The pool index of the worker.
    pub fn worker_ix(&self) -> usize {
        self.worker_ix
    }

    /// The worker (None for synthetic tasks).
    pub fn worker(&self) -> Option<&Arc<Worker>> {
        self.ctx.run.pool.as_ref().and_then(|p| p.workers.get(self.worker_ix))
    }

    /// The worker's browser (None for synthetic tasks).
    pub fn browser(&self) -> Option<BrowserKind> {
        self.worker().map(|w| w.browser)
    }

    /// The session, if one is open.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The session, to count its ops.
    pub fn session_mut(&mut self) -> Option<&mut Session> {
        self.session.as_mut()
    }

    /// Seats a session just opened (or checked out) for this seat's worker. Where it runs is
    /// learned by the next [`Seat::settle`].
    pub fn install(&mut self, s: Session) {
        self.session = Some(s);
    }

    /// Takes the session out without leaving its node (the slot ends, or recycles it).
    pub fn take_session(&mut self) -> Option<Session> {
        self.session.take()
    }

    /// Hands a session back to the pool to be closed.
    pub async fn discard(&self, s: Session) {
        match &self.ctx.run.pool {
            Some(p) => p.discard(s).await,
            None => s.discard().await,
        }
    }

    /// Drops the session after a failure or an open breaker: its node, if it has one, is left.
    pub async fn drop_session(&mut self) {
        if let Some(s) = self.session.take() {
            if let (Some(p), None) = (&s.grid, &self.departure) {
                self.departure =
                    Some(Departure { worker: s.worker.clone(), node: p.node.clone(), class: self.last_failure, since: Instant::now() });
            }
            self.discard(s).await;
        }
    }

    /// A node's breaker refused the op: the work leaves the node (its session, if it still has
    /// one, is dropped) and the seat goes back to the worker's own label and breakers, so the next
    /// op opens a session through the hub, which places it elsewhere. Staying labelled by the
    /// node would leave the seat gated by that open breaker with no session to drop: refused on
    /// every op, the work would never move (and the slot would spin on the refusal).
    pub async fn leave_node(&mut self) {
        self.drop_session().await;
        let Some(p) = self.node.take() else { return };
        if self.departure.is_none() {
            self.departure =
                Some(Departure { worker: self.base_id().to_string(), node: p.node, class: self.last_failure, since: Instant::now() });
        }
        (self.label, self.gate) = Self::place(&self.ctx, self.worker_ix, None);
    }

    /// An op failed with `class`. A failure with no session while the label names a node (a
    /// replacement session the hub put on a node that is dying) leaves that node too.
    pub fn note_failure(&mut self, class: FailureClass) {
        self.last_failure = class;
        if let (None, None, Some(p)) = (&self.session, &self.departure, &self.node) {
            self.departure = Some(Departure { worker: self.base_id().to_string(), node: p.node.clone(), class, since: Instant::now() });
        }
    }

    /// Moves to worker `ix` (the session is already dropped; the slot flushed the ops so far under
    /// the old label): its label and breakers from now on.
    pub fn move_to_worker(&mut self, ix: usize) {
        self.worker_ix = ix;
        self.node = None;
        (self.label, self.gate) = Self::place(&self.ctx, ix, None);
    }

    /// Learns where a new Grid session runs: None when there is no session, it is not a Grid
    /// one, or it was settled before. Otherwise the seat takes its node's label and breakers, and
    /// the answer says what to record: the session opened, and the move when the work left
    /// another node for this one.
    pub fn settle(&mut self) -> Option<Arrival> {
        let place = self.session.as_ref()?.grid.as_ref()?;
        if self.node.as_ref().is_some_and(|n| n.session_id == place.session_id) {
            return None;
        }
        let place = place.clone();
        let base = self.base_id().to_string();
        let opened = Event::GridSessionOpened { worker: base.clone(), node: place.node.clone(), session: place.session_id.clone() };
        if node_label(&base, &place.node) == self.label {
            self.departure = None; // back on the same node: nothing moved
            self.node = Some(place);
            return Some(Arrival { opened, before: None, moved: None });
        }
        let (label, gate) = Self::place(&self.ctx, self.worker_ix, Some(&place.node));
        let left = self.departure.take().filter(|d| d.node != place.node);
        let moved = left.map(|d| Event::RecoveryAttempted {
            class: d.class,
            strategy: crate::report::grid::MOVE_STRATEGY.to_string(),
            level: Strategy::OtherWorker.level(),
            outcome: "succeeded".to_string(),
            worker: node_label(&d.worker, &d.node),
            time_to_recover_ms: Some((d.since.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0),
        });
        self.node = Some(place);
        let before = Before { label: std::mem::replace(&mut self.label, label), gate: std::mem::replace(&mut self.gate, gate) };
        Some(Arrival { opened, before: Some(before), moved })
    }
}

/// The id of worker `worker_ix` (`synthetic` without a pool, `none` past its end).
fn base_id(ctx: &PhaseCtx, worker_ix: usize) -> &str {
    match &ctx.run.pool {
        Some(p) => p.workers.get(worker_ix).map(|w| w.id.as_str()).unwrap_or("none"),
        None => "synthetic",
    }
}
