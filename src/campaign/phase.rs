//! One phase: open its sessions, start its clock, let the slots issue ops until the deadline, a
//! stop or a guardian pause, give in-flight ops the grace period, checkpoint progress into the
//! store every second, and write the phase report. Its parts ([`place`], [`begin`], [`drive`],
//! [`finish`]) also run a capacity phase, whose every step is one [`drive`].

use super::ctx::PhaseCtx;
use super::faults::FaultPlan;
use super::shared::{CurrentPhase, Live, LiveSnapshot, RunShared};
use super::{io_err, slot, RunError};
use crate::config::PhaseConfig;
use crate::events::Event;
use crate::report;
use crate::store::{PhaseStart, StoreReader};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A loop iteration this much later than scheduled means the process was suspended (SIGSTOP, a
/// laptop sleep) or starved: that time was not load, and the report says so.
pub(crate) const CLOCK_GAP: Duration = Duration::from_secs(2);

/// How often the phase loop checkpoints and looks at the clock.
const TICK: Duration = Duration::from_millis(500);

/// How a phase runs this time: sessions after health gating, report notes, and how far it had
/// already run before an interruption.
pub(crate) struct PhasePlan {
    /// Sessions to run.
    pub sessions: u32,
    /// Notes for the report.
    pub notes: Vec<String>,
    /// Time already run before an interruption.
    pub offset: Duration,
}

/// How a phase ended.
pub(crate) struct PhaseOutcome {
    /// It met its criteria.
    pub passed: bool,
    /// Every op found its API unsupported.
    pub unsupported: bool,
    /// A stop request ended it.
    pub stopped: bool,
    /// Its success rate (None without ops).
    pub success_rate: Option<f64>,
}

/// Runs phase `idx` with `plan` and writes its report into `report_dir`.
pub(crate) async fn run_phase(
    run: &Arc<RunShared>,
    faults: &Arc<FaultPlan>,
    idx: u32,
    phase: &PhaseConfig,
    plan: PhasePlan,
    report_dir: &Path,
) -> Result<PhaseOutcome, RunError> {
    let PhasePlan { sessions, mut notes, offset } = plan;
    // every browser it could run on refused its task earlier in this run: no session at all (its
    // `task_unsupported` events say why; the report judges it UNSUPPORTED from them)
    let nowhere = run.nowhere_to_run(phase);
    let (placement, grid_note) = place(run, phase, sessions, nowhere.is_some()).await;
    notes.extend(grid_note);
    let sessions = placement.len() as u32;
    begin(run, idx, phase, (phase.sessions, sessions), notes, nowhere);
    let d = drive(run, faults, idx, phase, &placement, Clock { duration: phase.duration, offset, mark: None, settled: None }, true).await;
    finish(run, idx, phase, sessions, (d.elapsed, d.stopped, d.paused), report_dir)
}

/// Where `sessions` sessions of `phase` run: spread over the workers whose breakers are closed
/// (all of them if none is), following the phase's `browsers` and the task's browser
/// preference, and bounded by a Selenium Grid worker's free slots (with a note saying so).
/// Nowhere at all when every browser refused the task earlier in the run (`nowhere`).
pub(crate) async fn place(run: &Arc<RunShared>, phase: &PhaseConfig, sessions: u32, nowhere: bool) -> (Vec<usize>, Option<String>) {
    let placement = if nowhere { Vec::new() } else { run.placement(phase, sessions) };
    // grid hook: sessions on a Selenium Grid worker are bounded by its free slots
    let pool = if phase.task.needs_browser() { run.pool.as_deref() } else { None };
    crate::browser::grid_pool::bound_placement(pool, &placement, sessions, run.cfg.grid.capacity_wait, run.stop.graceful()).await
}

/// Records the start of phase `idx` (`(planned, sessions)`: the sessions it planned and runs),
/// and the `task_unsupported` events of the browsers it will not ask (`nowhere`).
pub(crate) fn begin(
    run: &Arc<RunShared>,
    idx: u32,
    phase: &PhaseConfig,
    (planned, sessions): (u32, u32),
    notes: Vec<String>,
    nowhere: Option<Vec<super::unsupported::GivenUp>>,
) {
    run.store.phase_started(PhaseStart {
        idx,
        name: phase.name.clone(),
        stress_level: phase.stress_level.as_str(),
        task_kind: phase.task.kind(),
        sessions_planned: planned,
        sessions,
        duration_planned: phase.duration,
        min_success_rate: phase.criteria.min_success_rate,
        max_p95_ms: phase.criteria.max_p95.as_millis() as u64,
        notes,
        started_at: SystemTime::now(),
    });
    let corr = format!("{}/{}", run.id, phase.name);
    for g in nowhere.into_iter().flatten() {
        let event =
            Event::TaskUnsupported { task: g.task, browser: g.browser.to_string(), message: g.message, answers: 0, remembered: true };
        run.event(corr.clone(), Some(idx), event);
    }
}

/// The clock of one [`drive`]: how long it issues ops, how much of that already ran before an
/// interruption, and an optional mark (time after the clock's start) at which the counters are
/// read, so a capacity step can leave its warm-up out.
pub(crate) struct Clock<'a> {
    /// Time to issue ops (the phase's, or one capacity step's).
    pub duration: Duration,
    /// Time already run before an interruption.
    pub offset: Duration,
    /// When to read the counters (see [`Driven::at_mark`]).
    pub mark: Option<Duration>,
    /// Asked once a second after the mark with what happened since it and how long ago it was:
    /// true ends the drive early (a capacity step whose verdict is already settled).
    pub settled: Option<&'a Settled>,
}

/// See [`Clock::settled`].
pub(crate) type Settled = dyn Fn(&LiveSnapshot, Duration) -> bool + Sync;

/// How one [`drive`] ended.
pub(crate) struct Driven {
    /// Time run, the offset included.
    pub elapsed: Duration,
    /// A stop request ended it.
    pub stopped: bool,
    /// The guardian paused the run.
    pub paused: bool,
    /// [`Clock::settled`] ended it before its deadline.
    pub settled_early: bool,
    /// Its counters, every slot's windows flushed.
    pub live: Arc<Live>,
    /// The counters as they were at the clock's mark, and when they were read (None without a
    /// mark, or when the drive ended before it).
    pub at_mark: Option<(Instant, LiveSnapshot)>,
    /// When the last slot returned.
    pub ended: Instant,
}

/// Opens the sessions of `placement` (before the clock starts: a browser launch takes seconds,
/// which are not load), then lets the slots issue ops until the clock's deadline, a stop or a
/// guardian pause, gives in-flight ops the grace period, and checkpoints progress into the store
/// every second. With `announce`, emits the phase's `phase_started` event once its sessions are
/// open. The sessions fit for reuse go back to the pool.
pub(crate) async fn drive(
    run: &Arc<RunShared>,
    faults: &Arc<FaultPlan>,
    idx: u32,
    phase: &PhaseConfig,
    placement: &[usize],
    clock: Clock<'_>,
    announce: bool,
) -> Driven {
    let Clock { duration, offset, mark, settled } = clock;
    let sessions = placement.len() as u32;
    let total = run.cfg.phases.len() as u32;
    let corr = format!("{}/{}", run.id, phase.name);
    let stop_ops = run.stop.graceful().child_token();
    let hard = run.stop.forced().child_token();
    let pause = CancellationToken::new();
    let live = Arc::new(Live::default());
    let ctx = Arc::new(PhaseCtx {
        run: run.clone(),
        idx,
        phase: phase.clone(),
        task_key: super::unsupported::task_key(&phase.task),
        stop_ops: stop_ops.clone(),
        hard: hard.clone(),
        live: live.clone(),
        faults: faults.clone(),
        first_adapter: Default::default(),
        adapter_retries: Default::default(),
    });

    // A slot that fails to open its session here retries (and records the failure) on its
    // first op.
    let mut preparing = tokio::task::JoinSet::new();
    for (s, worker) in placement.iter().enumerate() {
        let slot = slot::Slot::new(ctx.clone(), s as u32, *worker);
        preparing.spawn(slot.prepare().in_current_span());
    }
    let mut slots = Vec::with_capacity(sessions as usize);
    while let Some(r) = preparing.join_next().await {
        if let Ok(slot) = r {
            slots.push(slot);
        }
    }
    if announce {
        run.event(
            corr.clone(),
            Some(idx),
            Event::PhaseStarted {
                name: phase.name.clone(),
                total,
                sessions,
                sessions_planned: phase.sessions,
                duration_ms: phase.duration.as_millis() as u64,
                task: phase.task.kind().to_string(),
            },
        );
    }
    let start = Instant::now();
    run.phase_began(CurrentPhase {
        idx,
        name: phase.name.clone(),
        sessions,
        duration,
        offset,
        started: start,
        live: live.clone(),
        pause: pause.clone(),
    });
    faults.clock_started();
    let deadline = tokio::time::Instant::now() + duration.saturating_sub(offset);
    let mark_at = mark.map(|m| tokio::time::Instant::now() + m);
    let mut at_mark = None;
    let mut set = tokio::task::JoinSet::new();
    for slot in slots {
        set.spawn(slot.run().in_current_span());
    }
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_tick = (Instant::now(), SystemTime::now());
    let mut stopped_at: Option<tokio::time::Instant> = None;
    let mut paused = false;
    let mut settled_early = false;
    let grace = run.cfg.campaign.grace_period;
    let mut last_checkpoint = Instant::now();
    loop {
        let grace_end = stopped_at.map(|t| t + grace);
        tokio::select! {
            joined = set.join_next() => match joined {
                Some(Ok(Some(session))) => {
                    if let Some(p) = &run.pool { p.checkin(session); }
                }
                Some(_) => {}
                None => break,
            },
            _ = tokio::time::sleep_until(deadline), if stopped_at.is_none() => {
                stop_ops.cancel();
                stopped_at = Some(tokio::time::Instant::now());
            }
            _ = async { if let Some(m) = mark_at { tokio::time::sleep_until(m).await } }, if mark_at.is_some() && at_mark.is_none() && stopped_at.is_none() => {
                at_mark = Some((Instant::now(), live.snapshot()));
            }
            _ = run.stop.graceful().cancelled(), if stopped_at.is_none() => {
                stopped_at = Some(tokio::time::Instant::now());
            }
            _ = pause.cancelled(), if stopped_at.is_none() => {
                stop_ops.cancel();
                stopped_at = Some(tokio::time::Instant::now());
                paused = true;
            }
            _ = async { if let Some(g) = grace_end { tokio::time::sleep_until(g).await } else { std::future::pending().await } }, if grace_end.is_some() && !hard.is_cancelled() => {
                tracing::warn!(target: "stressctl::campaign", phase = %phase.name, "in-flight ops did not finish within the grace period ({grace:?}); abandoning them");
                hard.cancel();
            }
            _ = tick.tick() => {
                let now = (Instant::now(), SystemTime::now());
                let mono = now.0.duration_since(last_tick.0);
                let wall = now.1.duration_since(last_tick.1).unwrap_or_default();
                let late = mono.max(wall).saturating_sub(TICK);
                if late >= CLOCK_GAP {
                    tracing::warn!(target: "stressctl::campaign", phase = %phase.name, "clock gap of {late:?}: the process was suspended or starved");
                    run.event(corr.clone(), Some(idx), Event::ClockGap { gap_ms: late.as_millis() as u64, observer: "phase".into() });
                }
                last_tick = now;
                if last_checkpoint.elapsed() >= Duration::from_secs(1) {
                    run.store.phase_progress(idx, offset + start.elapsed());
                    last_checkpoint = Instant::now();
                    if let (Some(f), Some((t0, before)), None) = (settled, &at_mark, stopped_at) {
                        if f(&live.snapshot().since(before), t0.elapsed()) {
                            stop_ops.cancel();
                            stopped_at = Some(tokio::time::Instant::now());
                            settled_early = true;
                        }
                    }
                }
            }
        }
    }
    let elapsed = offset + start.elapsed();
    run.phase_finished(live.counts());
    Driven { elapsed, stopped: run.stop.is_stopping(), paused, settled_early, live, at_mark, ended: Instant::now() }
}

/// Records the end of phase `idx` (`sessions`: the most it ran; `(elapsed, stopped, paused)`:
/// its time, the offset included, and whether a stop or a guardian pause ended it), writes its
/// report, emits `phase_ended` and logs its result line.
pub(crate) fn finish(
    run: &Arc<RunShared>,
    idx: u32,
    phase: &PhaseConfig,
    sessions: u32,
    (elapsed, stopped, paused): (Duration, bool, bool),
    report_dir: &Path,
) -> Result<PhaseOutcome, RunError> {
    let total = run.cfg.phases.len() as u32;
    let corr = format!("{}/{}", run.id, phase.name);
    let status = if stopped {
        "stopped"
    } else if paused {
        "paused"
    } else {
        "completed"
    };
    if let Some(served) = run.served.as_ref().and_then(|s| s.take()) {
        // bytes and requests per file the browsers pulled in this phase (fresh sessions pull them)
        run.store.task_info(idx, phase.task.kind(), "served", served);
    }
    run.store.phase_ended(idx, if stopped || paused { "stopped" } else { "completed" }, elapsed);
    run.store.flush()?;
    let reader = StoreReader::open(run.store.path())?;
    let p = report::phase_report(&reader, idx)?;
    report::write_phase_report(report_dir, &p).map_err(io_err(report_dir))?;
    run.event(
        corr,
        Some(idx),
        Event::PhaseEnded {
            name: phase.name.clone(),
            status: status.into(),
            attempted: p.ops_attempted,
            succeeded: p.ops_succeeded,
            failed: p.ops_failed,
            elapsed_ms: elapsed.as_millis() as u64,
            sessions,
            total,
            throughput_ops_per_s: p.throughput_ops_per_s,
            p95_ms: p.latency_ms.p95,
            passed: p.criteria.passed,
            unsupported: p.criteria.unsupported,
        },
    );
    let line = result_line(&p, status, idx, total);
    if p.criteria.passed || p.criteria.unsupported {
        tracing::info!(target: "stressctl::campaign", corr = %format!("{}/{}", run.id, phase.name), "{line}");
    } else {
        tracing::warn!(target: "stressctl::campaign", corr = %format!("{}/{}", run.id, phase.name), "{line}");
    }
    let success_rate = (p.ops_attempted > 0).then(|| p.ops_succeeded as f64 / p.ops_attempted as f64);
    Ok(PhaseOutcome { passed: p.criteria.passed, unsupported: p.criteria.unsupported, stopped, success_rate })
}

/// A phase's result as one log line, with its criteria: `phase 2/3 warm completed: PASSED —
/// 1200 ops, success 99.5% (min 95.0%), in_page p95 12.3 ms (max 500 ms), 20.0 ops/s, 4
/// sessions`, and why it failed when it did.
pub(crate) fn result_line(p: &report::PhaseReport, status: &str, idx: u32, total: u32) -> String {
    let c = &p.criteria;
    let lat = p.in_page_latency_ms.as_ref().unwrap_or(&p.latency_ms);
    let mut line = format!(
        "phase {}/{total} {} {status}: {} — {} ops, success {:.1}%{} (min {:.1}%), {} p95 {:.1} ms (max {} ms), {:.1} ops/s, {} sessions",
        idx + 1,
        p.name,
        c.verdict().to_uppercase(),
        p.ops_attempted,
        p.success_rate * 100.0,
        // degraded successes are in success_rate but not in what the criteria judge
        if p.ops_succeeded_degraded > 0 { format!(" ({} of them degraded, not counted)", p.ops_succeeded_degraded) } else { String::new() },
        c.min_success_rate * 100.0,
        c.p95_basis,
        lat.p95,
        c.max_p95_ms,
        p.throughput_ops_per_s,
        p.sessions
    );
    if !c.failures.is_empty() {
        line.push_str(&format!(" ({})", c.failures.join("; ")));
    }
    line
}
