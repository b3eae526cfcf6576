//! One phase: open its sessions, start its clock, let the slots issue ops until the deadline, a
//! stop or a guardian pause, give in-flight ops the grace period, checkpoint progress into the
//! store every second, and write the phase report.

use super::ctx::PhaseCtx;
use super::faults::FaultPlan;
use super::shared::{CurrentPhase, Live, RunShared};
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
    // spread the sessions over the workers whose breakers are closed (all of them if none is),
    // following the phase's `browsers` and the task's browser preference
    let placement = if nowhere.is_some() { Vec::new() } else { run.placement(phase, sessions) };
    // grid hook: sessions on a Selenium Grid worker are bounded by its free slots
    let pool = if phase.task.needs_browser() { run.pool.as_deref() } else { None };
    let (placement, grid_note) = crate::browser::grid_pool::bound_placement(pool, &placement, sessions).await;
    notes.extend(grid_note);
    let sessions = placement.len() as u32;
    let total = run.cfg.phases.len() as u32;
    run.store.phase_started(PhaseStart {
        idx,
        name: phase.name.clone(),
        stress_level: phase.stress_level.as_str(),
        task_kind: phase.task.kind(),
        sessions_planned: phase.sessions,
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

    // Open the sessions before the phase clock starts: a browser launch takes seconds, which are
    // not load and must not eat into the phase. A slot that fails here retries (and records the
    // failure) on its first op.
    let mut preparing = tokio::task::JoinSet::new();
    for s in 0..sessions {
        let slot = slot::Slot::new(ctx.clone(), s, placement[s as usize]);
        preparing.spawn(slot.prepare().in_current_span());
    }
    let mut slots = Vec::with_capacity(sessions as usize);
    while let Some(r) = preparing.join_next().await {
        if let Ok(slot) = r {
            slots.push(slot);
        }
    }
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
    let start = Instant::now();
    run.phase_began(CurrentPhase {
        idx,
        name: phase.name.clone(),
        sessions,
        duration: phase.duration,
        offset,
        started: start,
        live: live.clone(),
        pause: pause.clone(),
    });
    faults.clock_started();
    let deadline = tokio::time::Instant::now() + phase.duration.saturating_sub(offset);
    let mut set = tokio::task::JoinSet::new();
    for slot in slots {
        set.spawn(slot.run().in_current_span());
    }
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_tick = (Instant::now(), SystemTime::now());
    let mut stopped_at: Option<tokio::time::Instant> = None;
    let mut paused = false;
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
                }
            }
        }
    }
    let elapsed = offset + start.elapsed();
    let stopped = run.stop.is_stopping();
    run.phase_finished(live.counts());
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
