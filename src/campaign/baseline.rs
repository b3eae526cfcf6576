//! The night's baseline (`launch`, before the first phase; `--no-baseline` skips it): the host at
//! rest over a couple of guardian samples, then one session running the first phase's task the
//! way a phase runs it — batches of ops per call for the page tasks, one op per call for a model,
//! in-process for synthetic —, so its ops/s and round-trip p95 are what one session of a phase
//! would do on an idle host. Recorded as one [`Event::Baseline`] in the store, so the report —
//! rebuilt or not — compares the last phase against the host the night started on. The idle
//! part and the one-op-per-call part are `check`'s (`preflight::idle_baseline`,
//! `preflight::timed_ops`). Kept short: a few seconds, as it runs before every night.

use super::shared::RunShared;
use crate::browser::session::Session;
use crate::config::TaskSpec;
use crate::events::{BaselineInfo, Event};
use crate::guardian::health_score;
use crate::metrics::{new_histogram, record_latency, LatencySummary};
use crate::preflight::TimedOps;
use crate::tasks::batch::{batch_script, op_spec, round_trips, run_batch, SCRIPT_TIMEOUT_SLACK};
use std::path::Path;
use std::time::{Duration, Instant};

/// Idle samples taken (one second apart: one second of the night).
const IDLE_SAMPLES: usize = 2;
/// Single-session ops at most.
const OPS: u32 = 200;
/// Time the single-session ops may take, session start left out: the baseline stays short
/// whatever the task costs.
const OPS_BUDGET: Duration = Duration::from_secs(3);

/// Takes the baseline and records it; returns early (recording nothing) when a stop comes.
pub(crate) async fn record(run: &RunShared, disk_path: &Path) {
    let measure = measure(run, disk_path);
    let info = tokio::select! {
        i = measure => i,
        _ = run.stop.graceful().cancelled() => return,
    };
    run.event(run.id.clone(), None, Event::Baseline(info));
}

async fn measure(run: &RunShared, disk_path: &Path) -> BaselineInfo {
    let idle = crate::preflight::idle_baseline(disk_path, IDLE_SAMPLES).await;
    // a figure the sampler could not take (NaN) is recorded as 0, never as a null in the store
    let mean = |f: fn(&crate::guardian::ResourceSample) -> f64| {
        let v: Vec<f64> = idle.iter().map(f).filter(|v| v.is_finite()).collect();
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let last = idle.last().cloned().unwrap_or_default();
    let r1 = |v: f64| if v.is_finite() { (v * 10.0).round() / 10.0 } else { 0.0 };
    let memory_percent = mean(|s| s.memory_percent);
    let available_mb = last.memory_available_bytes >> 20;
    let total_mb = if last.memory_percent < 100.0 { (available_mb as f64 / (1.0 - last.memory_percent / 100.0)).round() as u64 } else { 0 };
    let t = run.cfg.phase_safety(0).thresholds();
    let mut info = BaselineInfo {
        idle_samples: idle.len() as u32,
        cpu_percent: r1(mean(|s| s.cpu_percent)),
        memory_percent: r1(memory_percent),
        memory_available_mb: available_mb,
        memory_total_mb: total_mb,
        disk_available_mb: last.disk_available_bytes >> 20,
        health: health_score(&last, &t, None).round(),
        ..BaselineInfo::default()
    };
    let Some(phase) = run.cfg.phases.first() else { return info };
    info.task = phase.task.kind().to_string();
    let timed = match crate::tasks::Synthetic::from_spec(&phase.task, 1) {
        Some(mut syn) => {
            let started = Instant::now();
            let mut lat = Vec::new();
            while lat.len() < OPS as usize && started.elapsed() < OPS_BUDGET {
                let t0 = Instant::now();
                lat.push(syn.run().await.map(|_| t0.elapsed()).map_err(|e| e.to_string()));
            }
            Ok((lat, started.elapsed()))
        }
        None => browser_ops(run, &phase.task).await,
    };
    match timed {
        Ok((lat, elapsed)) => {
            let mut h = new_histogram();
            for d in lat.iter().flatten() {
                record_latency(&mut h, *d);
            }
            let l = LatencySummary::of(&h);
            info.ops = lat.len() as u32;
            info.succeeded = lat.iter().filter(|r| r.is_ok()).count() as u32;
            info.elapsed_ms = elapsed.as_millis() as u64;
            info.ops_per_s = if elapsed.is_zero() { 0.0 } else { r1(lat.len() as f64 / elapsed.as_secs_f64()) };
            info.p50_ms = r1(l.p50);
            info.p95_ms = r1(l.p95);
            if let Some(Err(e)) = lat.iter().find(|r| r.is_err()) {
                info.note = Some(format!("first failure: {e}"));
            }
        }
        Err(why) => info.note = Some(why),
    }
    info
}

/// The first phase's op time limit (its own or its task's, else `[browser] op_timeout`): the
/// baseline runs that phase's task as the phase will.
fn first_op_timeout(run: &RunShared) -> Duration {
    let global = run.cfg.browser.op_timeout;
    run.cfg.phases.first().map_or(global, |p| p.op_timeout_or(global))
}

/// Opens one session on the first worker the breakers rank best, runs the ops, discards it.
async fn browser_ops(run: &RunShared, task: &TaskSpec) -> Result<(Vec<Result<Duration, String>>, Duration), String> {
    let pool = run.pool.as_ref().ok_or("no browser pool")?;
    let (w, _) = run.ranked_workers().into_iter().next().ok_or("no worker")?;
    let worker = pool.workers.get(w).ok_or("no worker")?;
    let s = pool
        .open_session(worker, &run.page_url, task)
        .await
        .map_err(|e| format!("single-session ops skipped: the session did not open: {e}"))?;
    let t = match batch_script(task) {
        Some(script) => batched(run, &s, task, &script).await,
        None => crate::preflight::timed_ops(&s, task, &run.page_url, first_op_timeout(run), OPS, OPS_BUDGET).await,
    };
    pool.discard(s).await;
    Ok((t.results, t.elapsed))
}

/// Ops of a batched task in batches, as a phase's slot runs them (`[browser] batch_max_ops`,
/// `batch_budget`): each op's round trip is its in-page time plus its share of the call.
async fn batched(run: &RunShared, s: &Session, task: &TaskSpec, script: &str) -> TimedOps {
    let b = &run.cfg.browser;
    let op_timeout = first_op_timeout(run);
    let script_timeout = op_timeout + b.batch_budget + SCRIPT_TIMEOUT_SLACK;
    let timeouts = fantoccini::wd::TimeoutConfiguration::new(Some(script_timeout), Some(b.session_timeout), Some(Duration::ZERO));
    let mut out = TimedOps::default();
    if let Err(e) = s.client.update_timeouts(timeouts).await {
        out.results.push(Err(e.to_string()));
        return out;
    }
    let size = match task {
        TaskSpec::Webgpu { matrix_size } => *matrix_size,
        _ => 0,
    };
    let started = Instant::now();
    let mut failed_in_row = 0;
    while out.results.len() < OPS as usize && started.elapsed() < OPS_BUDGET && failed_in_row < 3 {
        let n = (b.batch_max_ops.max(1) as usize).min(OPS as usize - out.results.len());
        let seed = 1 + out.results.len() as u32 / 64;
        let specs = (0..n).map(|_| op_spec(task, size, seed, None, s.adapter)).collect();
        let t0 = Instant::now();
        let answer =
            tokio::time::timeout(script_timeout + SCRIPT_TIMEOUT_SLACK, run_batch(&s.client, script, specs, b.batch_budget, op_timeout))
                .await;
        match answer {
            Ok(Ok(ops)) => {
                let in_page: Vec<Option<Duration>> = ops.iter().map(|o| o.in_page).collect();
                for (op, rt) in ops.into_iter().zip(round_trips(t0.elapsed(), &in_page)) {
                    failed_in_row = if op.result.is_ok() { 0 } else { failed_in_row + 1 };
                    out.results.push(op.result.map(|_| rt).map_err(|e| e.to_string()));
                }
            }
            Ok(Err(e)) => {
                failed_in_row += 1;
                out.results.push(Err(e.to_string()));
            }
            Err(_) => {
                failed_in_row += 1;
                out.results.push(Err("timeout".into()));
            }
        }
    }
    out.elapsed = started.elapsed();
    out
}
