//! What a slot's ops run, and one call that runs them: the phase's task as the recovery ladder
//! left it (a smaller matrix, an adjusted model), the input seeds, and one WebDriver call of one op
//! or of a batch of ops ([`crate::tasks::batch`]), or one synthetic op, timed and bounded.

use super::ctx::PhaseCtx;
use crate::browser::session::Session;
use crate::config::TaskSpec;
use crate::recovery::{classify_cmd_error, FailureClass, OpError};
use crate::tasks::batch::{batch_script, op_spec, round_trips, run_batch, SCRIPT_TIMEOUT_SLACK};
use crate::tasks::{run_browser_op, OpOk, PageFault, Synthetic};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Extra time beyond the op timeout before stressctl itself gives up on a WebDriver call.
const DRIVER_SLACK: Duration = Duration::from_secs(3);

/// One op that ran, as the slot records it.
pub(super) struct Ran {
    /// Its outcome.
    pub result: Result<OpOk, OpError>,
    /// What the page measured around the workload, when it did.
    pub in_page: Option<Duration>,
    /// What the driver saw (for an op of a batch, its in-page time plus its share of the call's
    /// overhead: [`round_trips`]).
    pub latency: Duration,
}

/// How a call ended.
pub(super) enum Attempt {
    /// The ops that ran, in order, are in [`Call::ran`] (at least one).
    Done,
    /// Stopped before an op started (e.g. while a session opened): nothing to count.
    Aborted,
    /// The op was in flight when the phase's grace ran out: a failed op.
    Abandoned,
    /// A breaker refused: no op was run.
    Rejected,
}

/// The ops of the current call (reused from call to call: the synthetic hot path does not
/// allocate).
pub(super) struct Call {
    /// The ops that ran, in order.
    pub ran: Vec<Ran>,
    /// When the current op (or the batch's call) started: its round trip is measured from here.
    pub started: Instant,
}

impl Call {
    /// No op yet.
    pub fn new() -> Call {
        Call { ran: Vec::with_capacity(1), started: Instant::now() }
    }

    /// One op ran (or failed before it could): its round trip is the time since it started.
    pub fn done_one(&mut self, result: Result<OpOk, OpError>, in_page: Option<Duration>) -> Attempt {
        self.ran.push(Ran { result, in_page, latency: self.started.elapsed() });
        Attempt::Done
    }
}

/// What a slot's ops run.
pub(super) struct Workload {
    ctx: Arc<PhaseCtx>,
    /// The synthetic task's draws (None: a browser task).
    synthetic: Option<Synthetic>,
    /// The in-page batch runner of the phase's task (None: one op per call, model and synthetic).
    batch_script: Option<String>,
    /// The session whose driver script timeout was set for this phase (its label) and to what:
    /// set once per session and phase, not per call (a session kept from another phase had that
    /// phase's).
    timeouts_for: Option<(String, Duration)>,
    /// The time limit of one op in this phase ([`crate::config::PhaseConfig::op_timeout_or`]).
    op_timeout: Duration,
    /// The `webgpu` matrix size, as the ladder's adjusted-settings step left it.
    matrix_size: u32,
    /// The `model` task as the ladder's adjusted-settings step left it (None: as configured);
    /// its ops are reported as degraded ([`crate::tasks::adjust`]).
    adjusted: Option<TaskSpec>,
    /// The input seed of the current 64 ops ([`Workload::next_seed`]).
    seed: u32,
    /// Draws the seeds (and the synthetic task's own generator's seed).
    rng: fastrand::Rng,
}

impl Workload {
    /// The phase's task as configured.
    pub fn new(ctx: Arc<PhaseCtx>) -> Workload {
        let mut rng = fastrand::Rng::new();
        let synthetic = Synthetic::from_spec(&ctx.phase.task, rng.u64(..));
        let batch_script = batch_script(&ctx.phase.task);
        let matrix_size = match ctx.phase.task {
            TaskSpec::Webgpu { matrix_size } => matrix_size,
            _ => 0,
        };
        let op_timeout = ctx.phase.op_timeout_or(ctx.run.cfg.browser.op_timeout);
        Workload { ctx, synthetic, batch_script, timeouts_for: None, op_timeout, matrix_size, adjusted: None, seed: 1, rng }
    }

    /// Whether the ops are synthetic (no browser).
    pub fn is_synthetic(&self) -> bool {
        self.synthetic.is_some()
    }

    /// Whether the task runs batches of ops per call.
    pub fn batches(&self) -> bool {
        self.batch_script.is_some()
    }

    /// The ladder's adjusted-settings step, what it does to each task kind (the slot has already
    /// dropped the session, so it always runs in a new one): a `webgpu` matrix shrunk to
    /// `[recovery] reduced_matrix_size`, the next lighter setting of a `model` task (both reported
    /// as degraded from then on), and nothing more for `webnn` and `page` tasks, which have no
    /// smaller setting. Returns the line that says which, for the log.
    pub fn adjust(&mut self) -> String {
        let recovery = &self.ctx.run.cfg.recovery;
        let counts = recovery.degraded_counts_as_pass;
        let counted = if counts { "and count towards a pass (degraded_counts_as_pass)" } else { "not counted towards a pass" };
        match &self.ctx.phase.task {
            TaskSpec::Webgpu { matrix_size } => {
                let reduced = self.matrix_size.min(recovery.reduced_matrix_size);
                if reduced == self.matrix_size {
                    return format!(
                        "adjusted settings: a new session only; the webgpu matrix is already {n}x{n} (reduced_matrix_size {})",
                        recovery.reduced_matrix_size,
                        n = self.matrix_size
                    );
                }
                self.matrix_size = reduced;
                format!(
                    "adjusted settings: a new session with a {reduced}x{reduced} webgpu matrix instead of the configured \
                     {matrix_size}x{matrix_size}; its ops are reported as degraded, {counted}"
                )
            }
            TaskSpec::Model(_) => match crate::tasks::adjust::next_adjusted(&self.ctx.phase.task, self.adjusted.as_ref(), counts) {
                Some((task, what)) => {
                    self.adjusted = Some(task);
                    what
                }
                None => "adjusted settings: a new session only; the model already runs on its last resort".to_string(),
            },
            other => format!("adjusted settings: a new session only; a {} task has no smaller setting", other.kind()),
        }
    }

    /// Back to the phase's task as configured, after the work moved to another worker or Grid
    /// node: the ladder's adjusted settings answered failures where the work was, and a healthy
    /// place gets the configured workload (a node killed mid-phase must not leave the rest of the
    /// phase degraded on the node that took its work). Returns what was undone, if anything.
    pub fn restore(&mut self) -> Option<String> {
        let reduced =
            self.reduced_matrix().map(|(size, configured)| format!("the {configured}x{configured} webgpu matrix (was {size}x{size})"));
        if let TaskSpec::Webgpu { matrix_size } = self.ctx.phase.task {
            self.matrix_size = matrix_size;
        }
        let model = self.adjusted.take().map(|_| "the model as configured".to_string());
        reduced.or(model)
    }

    /// The `webgpu` matrix size the ops run at now and the configured one, while the ladder has
    /// it reduced (its ops are degraded); None otherwise.
    pub fn reduced_matrix(&self) -> Option<(u32, u32)> {
        match self.ctx.phase.task {
            TaskSpec::Webgpu { matrix_size } if self.matrix_size < matrix_size => Some((self.matrix_size, matrix_size)),
            _ => None,
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

    /// One op of a browser task that runs one op per call, in `s`; `label` is what the slot's ops
    /// are counted under (model task info names it).
    pub async fn browser_op(&mut self, s: &Session, label: &str, seq: u64, fault: Option<PageFault>, call: &mut Call) -> Attempt {
        let seed = self.next_seed(seq);
        if let Err(e) = self.script_timeout(s, self.op_timeout).await {
            call.started = Instant::now();
            return call.done_one(Err(e), None);
        }
        let ctx = &self.ctx;
        call.started = Instant::now();
        let limit = self.op_timeout + DRIVER_SLACK;
        let info = crate::tasks::model::store_sink(&ctx.run.store, ctx.idx, label, &s.label);
        let task = self.adjusted.as_ref().unwrap_or(&ctx.phase.task);
        let op = tokio::time::timeout(
            limit,
            run_browser_op(&s.client, task, self.matrix_size, seed, fault, s.adapter, &ctx.run.page_url, &info),
        );
        let r = tokio::select! {
            r = op => r.unwrap_or_else(|_| Err(OpError::new(FailureClass::Timeout, format!("no answer from the driver within {limit:?}")))),
            _ = ctx.hard.cancelled() => return Attempt::Abandoned,
        };
        // one-off set-up inside the op (a model's session creation) is not the op's latency
        if let Ok(ok) = &r {
            call.started += ok.setup;
        }
        call.done_one(r, None)
    }

    /// The op of an `exhaust_memory` fault in `s`: the page allocates until the renderer's memory
    /// runs out ([`crate::tasks::exhaust`]), in place of the op's work; one failed op of class
    /// `resource_exhaustion`.
    pub async fn exhaust(&mut self, s: &Session, limit_mb: u32, call: &mut Call) -> Attempt {
        let limit = self.op_timeout + DRIVER_SLACK;
        if let Err(e) = self.script_timeout(s, self.op_timeout).await {
            call.started = Instant::now();
            return call.done_one(Err(e), None);
        }
        call.started = Instant::now();
        let op = tokio::time::timeout(limit, crate::tasks::exhaust::run(&s.client, limit_mb));
        let r = tokio::select! {
            r = op => r.unwrap_or_else(|_| Err(OpError::new(FailureClass::Timeout, format!("no answer from the driver within {limit:?}")))),
            _ = self.ctx.hard.cancelled() => return Attempt::Abandoned,
        };
        call.done_one(r, None)
    }

    /// Sets the driver's script timeout of `s` to `limit`, once per session in this phase: the
    /// session may come from a phase with another `op_timeout`.
    async fn script_timeout(&mut self, s: &Session, limit: Duration) -> Result<(), OpError> {
        if self.timeouts_for.as_ref().is_some_and(|(label, set)| *label == s.label && *set == limit) {
            return Ok(());
        }
        let session_timeout = self.ctx.run.cfg.browser.session_timeout;
        let t = fantoccini::wd::TimeoutConfiguration::new(Some(limit), Some(session_timeout), Some(Duration::ZERO));
        s.client.update_timeouts(t).await.map_err(classify_cmd_error)?;
        self.timeouts_for = Some((s.label.clone(), limit));
        Ok(())
    }

    /// Runs `n` ops of a page task in `s`, in one call of the in-page batch runner; `fault` goes
    /// to the first.
    pub async fn batch(&mut self, s: &Session, seq: u64, n: usize, fault: Option<PageFault>, call: &mut Call) -> Attempt {
        let op_timeout = self.op_timeout;
        // the last op of a batch may start batch_budget after the call: the driver's script
        // timeout must leave it its whole op_timeout (the page times each op out itself)
        let budget = self.ctx.run.cfg.browser.batch_budget;
        let script_timeout = op_timeout + budget + SCRIPT_TIMEOUT_SLACK;
        if let Err(e) = self.script_timeout(s, script_timeout).await {
            call.started = Instant::now();
            return call.done_one(Err(e), None);
        }
        let ctx = self.ctx.clone();
        let mut specs = Vec::with_capacity(n);
        for i in 0..n as u64 {
            let seed = self.next_seed(seq + i);
            specs.push(op_spec(&ctx.phase.task, self.matrix_size, seed, if i == 0 { fault } else { None }, s.adapter));
        }
        let script = self.batch_script.as_deref().unwrap_or_default();
        let limit = script_timeout + DRIVER_SLACK;
        call.started = Instant::now();
        let run = tokio::time::timeout(limit, run_batch(&s.client, script, specs, budget, op_timeout));
        let answer = tokio::select! {
            r = run => r.unwrap_or_else(|_| Err(OpError::new(FailureClass::Timeout, format!("no answer from the driver within {limit:?}")))),
            _ = ctx.hard.cancelled() => return Attempt::Abandoned,
        };
        let elapsed = call.started.elapsed();
        match answer {
            Ok(ops) => {
                let in_page: Vec<Option<Duration>> = ops.iter().map(|o| o.in_page).collect();
                for (op, latency) in ops.into_iter().zip(round_trips(elapsed, &in_page)) {
                    call.ran.push(Ran { result: op.result, in_page: op.in_page, latency });
                }
                Attempt::Done
            }
            // the call itself failed: one failed op, the first that did not answer
            Err(e) => call.done_one(Err(e), None),
        }
    }

    /// A synthetic op `seq`, with the page fault due (if any). It honours the faults that make
    /// sense without a browser: `throw` fails the op as a script error, `hang` holds it until
    /// `op_timeout` (a timeout), both for real. The hot path (no fault, no latency) neither
    /// allocates nor touches the phase's tokens: the orchestrator's own cost per op is what the
    /// synthetic task measures.
    pub async fn synthetic(&mut self, page_fault: Option<PageFault>, seq: u64, call: &mut Call) -> Attempt {
        call.started = Instant::now();
        let ctx = &self.ctx;
        let Some(syn) = self.synthetic.as_mut() else { return Attempt::Aborted };
        let wait = match page_fault {
            Some(PageFault::Throw) => {
                let result = Err(OpError::new(FailureClass::ScriptError, "injected fault: throw"));
                call.ran.push(Ran { result, in_page: None, latency: call.started.elapsed() });
                return Attempt::Done;
            }
            Some(PageFault::Hang) => self.op_timeout,
            _ => syn.draw_latency(),
        };
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = ctx.hard.cancelled() => return Attempt::Abandoned,
            }
        }
        let result = match page_fault {
            Some(PageFault::Hang) => {
                Err(OpError::new(FailureClass::Timeout, format!("op timed out after {wait:?} (injected fault: hang)")))
            }
            _ => syn.outcome(),
        };
        if seq % 256 == 0 {
            tokio::task::yield_now().await;
        }
        call.ran.push(Ran { result, in_page: None, latency: call.started.elapsed() });
        Attempt::Done
    }
}
