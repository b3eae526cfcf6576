//! The campaign runner: phases in order, N session slots per phase, results into the store as
//! they happen, a phase report after each phase and the campaign report at the end.

mod faults;
mod guard;
pub mod resume;
mod slot;

pub use faults::PhaseFaults;

use crate::breaker::{BreakerRegistry, Transition};
use crate::browser::pool::Pool;
use crate::config::{Config, PhaseConfig};
use crate::control::{StopCause, StopSignal};
use crate::guardian::{ResourceSample, Trip};
use crate::metrics::{new_histogram, LatencySummary, Window};
use crate::report;
use crate::store::{self, CampaignRecord, EventRow, PhaseStart, Store, StoreError, StoreReader};
use crate::tasks::server::PageServer;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Where a run writes.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Reports go to `<output_dir>/<campaign-id>/`.
    pub output_dir: PathBuf,
    /// Store, browser profiles, lock and socket.
    pub state_dir: PathBuf,
    /// Log files.
    pub log_dir: PathBuf,
    /// Timestamp used in log file names.
    pub log_stamp: String,
    /// Show a live progress line (stdout is a terminal).
    pub progress: bool,
    /// The control socket to serve (`status`, `emergency-stop`).
    pub socket: Option<PathBuf>,
}

/// How a campaign ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Enough phases passed and the overall success rate was met.
    Passed,
    /// It ran to the end and did not meet the criteria.
    Failed,
    /// Stopped after too many failing phases in a row.
    Halted,
    /// Stopped by a stop request (Ctrl-C, emergency-stop, guardian, store failure, time cap).
    EmergencyStopped,
}

impl Outcome {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Halted => "halted",
            Outcome::EmergencyStopped => "emergency_stopped",
        }
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct RunResult {
    /// Campaign id.
    pub id: String,
    /// Outcome.
    pub outcome: Outcome,
    /// Why it stopped early, if it did.
    pub stop_reason: Option<String>,
    /// What stopped it, if anything did.
    pub stop_cause: Option<StopCause>,
    /// Where the reports are.
    pub report_dir: PathBuf,
}

/// Errors that prevent a campaign from running or finishing its records.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A directory or file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io { path: path.to_path_buf(), source }
}

/// A new campaign id: UTC start time plus a random suffix, e.g. `20261123T172546Z-3f9a`.
pub fn new_campaign_id() -> String {
    let t = store::rfc3339(SystemTime::now());
    let compact: String = t.chars().take(19).filter(|c| *c != '-' && *c != ':').collect();
    format!("{compact}Z-{:04x}", fastrand::u16(..))
}

/// Live counters of the running phase (progress line, status).
#[derive(Debug)]
pub struct Live {
    attempted: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    hist: Mutex<Histogram<u64>>,
}

impl Default for Live {
    fn default() -> Self {
        Live { attempted: AtomicU64::new(0), succeeded: AtomicU64::new(0), failed: AtomicU64::new(0), hist: Mutex::new(new_histogram()) }
    }
}

impl Live {
    fn record(&self, ok: bool) {
        self.attempted.fetch_add(1, Ordering::Relaxed);
        if ok {
            self.succeeded.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn merge(&self, w: &Window) {
        let _ = self.hist.lock().unwrap_or_else(|e| e.into_inner()).add(&w.hist);
    }
    /// (attempted, succeeded, failed).
    pub fn counts(&self) -> (u64, u64, u64) {
        (self.attempted.load(Ordering::Relaxed), self.succeeded.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }
    /// Latency so far (windows already flushed).
    pub fn latency(&self) -> LatencySummary {
        LatencySummary::of(&self.hist.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The phase running now (for the guardian and `status`).
#[derive(Clone)]
pub(crate) struct CurrentPhase {
    pub idx: u32,
    pub name: String,
    pub sessions: u32,
    pub duration: Duration,
    pub started: Instant,
    pub live: Arc<Live>,
}

/// The latest guardian sample.
#[derive(Clone, Default)]
pub(crate) struct Latest {
    pub sample: Option<ResourceSample>,
    pub health: Option<f64>,
    pub samples: u64,
    pub violations: u64,
}

/// What every phase and slot of a run shares.
pub(crate) struct RunShared {
    pub id: String,
    pub cfg: Arc<Config>,
    pub store: Store,
    pub pool: Option<Arc<Pool>>,
    pub page_url: String,
    pub stop: Arc<StopSignal>,
    pub started: Instant,
    /// Wall-clock time at `started` (renders breaker timestamps).
    pub started_wall: SystemTime,
    pub breakers: BreakerRegistry,
    current: Mutex<Option<CurrentPhase>>,
    latest: Mutex<Latest>,
    /// Ops of the phases that ended: attempted, succeeded, failed.
    done: Mutex<(u64, u64, u64)>,
    trip: Mutex<Option<Trip>>,
    trip_tx: tokio::sync::watch::Sender<u64>,
    guardian_resets: AtomicU64,
    /// Set while the campaign cools down after a trip: further trips are not new events.
    cooling: std::sync::atomic::AtomicBool,
}

impl RunShared {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn current_phase_idx(&self) -> Option<u32> {
        Self::lock(&self.current).as_ref().map(|c| c.idx)
    }
    pub fn current_phase_name(&self) -> Option<String> {
        Self::lock(&self.current).as_ref().map(|c| c.name.clone())
    }
    /// Success rate of the running phase so far (None before its first op).
    pub fn recent_success_rate(&self) -> Option<f64> {
        let c = Self::lock(&self.current).clone()?;
        let (a, s, _) = c.live.counts();
        (a > 0).then(|| s as f64 / a as f64)
    }
    pub fn set_latest(&self, sample: ResourceSample, health: f64, violations: u64) {
        let mut l = Self::lock(&self.latest);
        l.sample = Some(sample);
        l.health = Some(health);
        l.samples += 1;
        l.violations += violations;
    }
    pub fn latest(&self) -> Latest {
        Self::lock(&self.latest).clone()
    }
    /// The guardian tripped: with auto-recovery left, the runner pauses the campaign (it watches
    /// `trip_tx`); otherwise the campaign stops now.
    pub fn on_trip(&self, t: Trip) {
        let reason = guard::trip_reason(&t);
        let mut slot = Self::lock(&self.trip);
        if slot.is_some() || self.cooling.load(Ordering::Relaxed) {
            return;
        }
        if self.cfg.campaign.auto_recovery && self.cfg.campaign.max_auto_recoveries > 0 {
            tracing::warn!(target: "stressctl::campaign", "{reason}: pausing the campaign for auto-recovery");
            *slot = Some(t);
            self.trip_tx.send_modify(|n| *n += 1);
        } else {
            self.stop.request(StopCause::Guardian, reason, false);
        }
    }
    fn take_trip(&self) -> Option<Trip> {
        Self::lock(&self.trip).take()
    }
    /// The pool's worker indices, best first by their breakers (closed, half-open, open; stable
    /// within a rank), each with whether it is healthy: closed, disabled, or not used yet.
    pub fn ranked_workers(&self) -> Vec<(usize, bool)> {
        let Some(pool) = &self.pool else { return vec![(0, true)] };
        let ids: Vec<String> = pool.workers.iter().map(|w| w.id.clone()).collect();
        let now = Instant::now();
        self.breakers
            .prefer_workers(&ids, now)
            .into_iter()
            .filter_map(|w| {
                let ix = ids.iter().position(|i| i == w)?;
                let healthy = matches!(
                    self.breakers.state(&format!("worker:{w}"), now),
                    None | Some(crate::breaker::BreakerState::Closed | crate::breaker::BreakerState::Disabled)
                );
                Some((ix, healthy))
            })
            .collect()
    }

    /// Writes breaker transitions as events.
    pub fn transition_events(&self, corr: &str, phase: Option<u32>, ts: Vec<(String, Transition)>) {
        for (key, t) in ts {
            tracing::info!(target: "stressctl::campaign", corr, "breaker {key}: {} -> {} ({})", t.from, t.to, t.reason);
            self.event(
                "breaker_transition",
                corr.to_string(),
                phase,
                format!("breaker {key}: {} -> {}: {}", t.from, t.to, t.reason),
                json!({"key": key, "from": t.from, "to": t.to, "reason": t.reason}),
            );
        }
    }

    pub fn guardian_resets(&self) -> u64 {
        self.guardian_resets.load(Ordering::Relaxed)
    }
    /// Writes an event to the store (and so to events.jsonl).
    pub fn event(&self, kind: &'static str, corr: String, phase: Option<u32>, message: String, data: Value) {
        self.store.event(EventRow { at: SystemTime::now(), kind, corr, phase_idx: phase, message, data });
    }
}

impl crate::control::socket::Controlled for RunShared {
    fn status(&self) -> Value {
        let cur = Self::lock(&self.current).clone();
        let latest = self.latest();
        let done = *Self::lock(&self.done);
        let (ca, cs, cf) = cur.as_ref().map(|c| c.live.counts()).unwrap_or((0, 0, 0));
        let attempted = done.0 + ca;
        let succeeded = done.1 + cs;
        let phase = cur.as_ref().map(|c| {
            let elapsed = c.started.elapsed().as_secs_f64();
            json!({
                "index": c.idx + 1,
                "total": self.cfg.phases.len(),
                "name": c.name,
                "sessions": c.sessions,
                "elapsed_s": (elapsed * 10.0).round() / 10.0,
                "duration_s": c.duration.as_secs_f64(),
                "progress_pct": ((elapsed / c.duration.as_secs_f64().max(0.001) * 100.0).min(100.0) * 10.0).round() / 10.0,
            })
        });
        let resources = latest.sample.as_ref().map(|s| {
            json!({
                "cpu_percent": (s.cpu_percent * 10.0).round() / 10.0,
                "memory_percent": (s.memory_percent * 10.0).round() / 10.0,
                "disk_percent": (s.disk_percent * 10.0).round() / 10.0,
                "tree_rss_mb": s.tree_rss_bytes >> 20,
                "tree_processes": s.tree_processes,
                "daemon_rss_mb": s.self_rss_bytes >> 20,
            })
        });
        json!({
            "campaign_id": self.id,
            "profile": self.cfg.profile,
            "pid": std::process::id(),
            "state": if self.stop.is_stopping() { "stopping" } else { "running" },
            "stop_reason": self.stop.request_info().map(|r| r.reason),
            "uptime_s": self.started.elapsed().as_secs(),
            "phase": phase,
            "ops": {
                "attempted": attempted,
                "succeeded": succeeded,
                "failed": done.2 + cf,
                "success_rate": if attempted > 0 { ((succeeded as f64 / attempted as f64) * 10000.0).round() / 10000.0 } else { 1.0 },
            },
            "p95_ms": cur.as_ref().map(|c| c.live.latency().p95),
            "health": latest.health.map(|h| h.round()),
            "resources": resources,
            "guardian": {"samples": latest.samples, "violations": latest.violations},
        })
    }

    fn stop(&self, force: bool, reason: String) {
        self.stop.request(StopCause::EmergencyStop, format!("emergency-stop: {reason}"), force);
    }
}

/// What the slots of one phase share.
pub(crate) struct PhaseCtx {
    pub run: Arc<RunShared>,
    pub idx: u32,
    pub phase: PhaseConfig,
    /// Stop issuing ops (phase deadline or stop request).
    pub stop_ops: CancellationToken,
    /// Abandon in-flight ops (grace over, or forced stop).
    pub hard: CancellationToken,
    pub live: Arc<Live>,
    pub faults: Arc<PhaseFaults>,
}

/// Runs a campaign from start to end.
pub struct Campaign {
    cfg: Arc<Config>,
    opts: RunOptions,
    stop: Arc<StopSignal>,
}

/// Where a resumed campaign picks up.
#[derive(Clone, Debug, PartialEq)]
pub struct ResumePoint {
    /// First phase to run.
    pub phase: usize,
    /// How far that phase had run before the interruption (it continues for the rest).
    pub elapsed: Duration,
    /// The reason recorded in the report.
    pub note: String,
}

/// Finds where campaign `id` stopped. Errors when it ended normally (nothing to resume).
pub fn resume_point(state_dir: &Path, id: &str) -> Result<(Config, ResumePoint), String> {
    let path = store::store_path(state_dir, id);
    let r = StoreReader::open(&path).map_err(|e| e.to_string())?;
    let c = r.campaign().map_err(|e| e.to_string())?;
    if let Some(o) = &c.outcome {
        return Err(format!("campaign {id} already ended ({o}); nothing to resume (see its reports in {})", c.output_dir.display()));
    }
    let mut cfg =
        Config::parse(&c.config_text, &c.config_source).map_err(|e| format!("the stored config of {id} no longer parses: {e}"))?;
    cfg.profile = c.profile.clone();
    let phases = r.phases().map_err(|e| e.to_string())?;
    let done = phases.iter().take_while(|p| p.status == "completed").count();
    let (phase, elapsed, note) = match phases.get(done) {
        Some(p) => {
            let elapsed = Duration::from_millis(p.elapsed_ms);
            let planned = cfg.phases.get(done).map(|x| x.duration).unwrap_or_default();
            if elapsed + Duration::from_secs(1) >= planned {
                (done + 1, Duration::ZERO, format!("phase {} had reached its planned duration when the campaign process died", p.name))
            } else {
                (
                    done,
                    elapsed,
                    format!(
                        "continued from its checkpoint at {:.1}s of {:.0}s after the campaign process died",
                        elapsed.as_secs_f64(),
                        planned.as_secs_f64()
                    ),
                )
            }
        }
        None => (done, Duration::ZERO, "resumed at the start of the phase".to_string()),
    };
    Ok((cfg, ResumePoint { phase, elapsed, note }))
}

/// How a phase runs this time: sessions after health gating, report notes, and how far it had
/// already run before an interruption.
struct PhasePlan {
    sessions: u32,
    notes: Vec<String>,
    offset: Duration,
}

struct PhaseOutcome {
    passed: bool,
    stopped: bool,
    success_rate: Option<f64>,
    summary: String,
}

impl Campaign {
    /// A campaign of `cfg` that stops through `stop`.
    pub fn new(cfg: Config, opts: RunOptions, stop: Arc<StopSignal>) -> Campaign {
        Campaign { cfg: Arc::new(cfg), opts, stop }
    }

    /// Runs every phase and writes the reports. Errors are returned only when the campaign could
    /// not be recorded at all; a campaign that ran and failed is `Ok` with its outcome.
    pub async fn run(self, id: String) -> Result<RunResult, RunError> {
        self.run_from(id, None).await
    }

    /// Runs the campaign; with `resume`, continues a campaign whose process died (its store is
    /// reopened, completed phases are kept as they are).
    pub async fn run_from(self, id: String, resume: Option<ResumePoint>) -> Result<RunResult, RunError> {
        let run_dir = self.opts.state_dir.join("runs").join(&id);
        let profiles_dir = run_dir.join("profiles");
        std::fs::create_dir_all(&profiles_dir).map_err(io_err(&profiles_dir))?;
        let started_at = SystemTime::now();
        let store_file = store::store_path(&self.opts.state_dir, &id);
        let (store, report_dir) = match &resume {
            None => {
                let report_dir = self.opts.output_dir.join(&id);
                std::fs::create_dir_all(&report_dir).map_err(io_err(&report_dir))?;
                let store = Store::create(
                    &store_file,
                    &CampaignRecord {
                        id: id.clone(),
                        profile: self.cfg.profile.clone(),
                        config_source: self.cfg.source.clone(),
                        config_text: self.cfg.text.clone(),
                        started_at,
                        output_dir: report_dir.clone(),
                    },
                    &report_dir.join("events.jsonl"),
                )?;
                (store, report_dir)
            }
            Some(_) => {
                let report_dir = StoreReader::open(&store_file)?.campaign()?.output_dir;
                std::fs::create_dir_all(&report_dir).map_err(io_err(&report_dir))?;
                let store = Store::reopen(&store_file, &report_dir.join("events.jsonl"))?;
                store.campaign_resumed();
                (store, report_dir)
            }
        };
        {
            let stop = self.stop.clone();
            store.on_fatal(move |msg| stop.request(StopCause::StoreFailure, msg, false));
        }

        let server = if self.cfg.needs_browser() {
            Some(PageServer::start().await.map_err(|source| RunError::Io { path: PathBuf::from("127.0.0.1:0"), source })?)
        } else {
            None
        };
        // Drivers spawned from here on are born in the run's cgroup; dropped after the pool's shutdown.
        let confinement = crate::confine::start_run(&id, self.cfg.safety.reserve_percent);
        let pool = server.as_ref().map(|_| {
            Arc::new(Pool::new(
                self.cfg.browser.clone(),
                &self.cfg.workers,
                profiles_dir.clone(),
                self.opts.log_dir.clone(),
                self.opts.log_stamp.clone(),
                Some(store.clone()),
            ))
        });
        let run = Arc::new(RunShared {
            id: id.clone(),
            cfg: self.cfg.clone(),
            store: store.clone(),
            pool: pool.clone(),
            page_url: server.as_ref().map(|s| s.url()).unwrap_or_default(),
            stop: self.stop.clone(),
            started: Instant::now(),
            started_wall: SystemTime::now(),
            breakers: BreakerRegistry::new(
                self.cfg.breakers.worker.clone(),
                self.cfg.breakers.browser.clone(),
                self.cfg.breakers.task.clone(),
            ),
            current: Mutex::new(None),
            latest: Mutex::new(Latest::default()),
            done: Mutex::new((0, 0, 0)),
            trip: Mutex::new(None),
            trip_tx: tokio::sync::watch::channel(0).0,
            guardian_resets: AtomicU64::new(0),
            cooling: std::sync::atomic::AtomicBool::new(false),
        });
        let control_stop = CancellationToken::new();
        if let Some(path) = &self.opts.socket {
            let target: Arc<dyn crate::control::socket::Controlled> = run.clone();
            if let Err(e) = crate::control::socket::serve(path, target, control_stop.clone()).await {
                tracing::warn!(target: "stressctl::campaign", "control socket {}: {e} (status/emergency-stop unavailable; Ctrl-C/SIGTERM still work)", path.display());
            }
        }
        let guardian_stop = CancellationToken::new();
        let guardian = tokio::spawn(guard::run(run.clone(), self.opts.output_dir.clone(), guardian_stop.clone()).in_current_span());
        run.event(
            "campaign_started",
            id.clone(),
            None,
            format!("campaign {id} ({}) started: {} phases, planned {}", self.cfg.profile, self.cfg.phases.len(), crate::config::fmt_duration(self.cfg.planned_duration())),
            json!({"profile": self.cfg.profile, "config_source": self.cfg.source, "phases": self.cfg.phases.len(), "pid": std::process::id()}),
        );
        tracing::info!(target: "stressctl::campaign", "campaign started: profile {}, {} phases, reports in {}", self.cfg.profile, self.cfg.phases.len(), report_dir.display());
        run.event("confinement", id.clone(), None, confinement.describe(), confinement.to_json());

        // A forced stop kills every driver group at once, wherever the runner is.
        let force_watch = {
            let stop = self.stop.clone();
            let pool = pool.clone();
            tokio::spawn(
                async move {
                    stop.forced().cancelled().await;
                    if let Some(p) = pool {
                        p.kill_now();
                    }
                }
                .in_current_span(),
            )
        };
        // The campaign's own time cap.
        let cap_watch = {
            let stop = self.stop.clone();
            let cap = self.cfg.safety.max_campaign_duration;
            tokio::spawn(async move {
                tokio::time::sleep(cap).await;
                stop.request(
                    StopCause::MaxDuration,
                    format!("max_campaign_duration ({}) reached", crate::config::fmt_duration(cap)),
                    false,
                );
            })
        };

        let mut halted: Option<String> = None;
        let mut failed_in_row = 0u32;
        let mut failed_names: Vec<String> = Vec::new();
        let mut auto_recoveries = 0u32;
        let mut carry_notes: Vec<String> = Vec::new();
        let mut last_success: Option<f64> = None;
        let mut i = resume.as_ref().map(|r| r.phase).unwrap_or(0);
        let mut continue_from = resume.as_ref().map(|r| (r.phase, r.elapsed));
        if let Some(r) = &resume {
            run.event(
                "campaign_interrupted",
                id.clone(),
                None,
                format!("the campaign process died; {}", r.note),
                json!({"phase": r.phase, "elapsed_ms": r.elapsed.as_millis() as u64}),
            );
            run.event(
                "campaign_resumed",
                id.clone(),
                None,
                format!("campaign {id} resumed at phase {}", r.phase + 1),
                json!({"phase": r.phase}),
            );
            if r.phase < self.cfg.phases.len() {
                carry_notes.push(r.note.clone());
            }
        }
        while i < self.cfg.phases.len() {
            if self.stop.is_stopping() {
                break;
            }
            let phase = &self.cfg.phases[i];
            let (sessions, mut notes) = self.gate_phase(&run, i, phase, last_success).await;
            notes.append(&mut carry_notes);
            if self.stop.is_stopping() {
                break;
            }
            let offset = match continue_from.take() {
                Some((p, e)) if p == i => e,
                _ => Duration::ZERO,
            };
            let out = self.run_phase(&run, i as u32, phase, PhasePlan { sessions, notes, offset }, &report_dir).await?;
            println!("{}", out.summary);
            last_success = out.success_rate;
            if out.stopped {
                break;
            }
            if let Some(trip) = run.take_trip() {
                // Paused by the guardian: cool down, then resume if health recovered.
                auto_recoveries += 1;
                let reason = guard::trip_reason(&trip);
                let max = self.cfg.campaign.max_auto_recoveries;
                if auto_recoveries > max {
                    self.stop.request(StopCause::Guardian, format!("{reason} (auto-recovery already used {max} times)"), false);
                    break;
                }
                let cooldown = self.cfg.campaign.cooldown;
                run.cooling.store(true, Ordering::Relaxed);
                println!(
                    "stressctl: {reason}; cooling down {} before resuming (auto-recovery {auto_recoveries}/{max})",
                    crate::config::fmt_duration(cooldown)
                );
                run.event(
                    "auto_recovery_started",
                    id.clone(),
                    Some(i as u32),
                    format!("{reason}: cooling down"),
                    json!({"reason": reason, "cooldown_ms": cooldown.as_millis() as u64, "attempt": auto_recoveries}),
                );
                tokio::select! {
                    _ = tokio::time::sleep(cooldown) => {}
                    _ = self.stop.graceful().cancelled() => break,
                }
                let health = self.fresh_health(&run, i, None).await;
                // the streaks start over from here, whatever happened during the cooldown
                run.guardian_resets.fetch_add(1, Ordering::Relaxed);
                run.cooling.store(false, Ordering::Relaxed);
                let req = self.cfg.campaign.baseline_health_requirement;
                if health.0 >= req && health.1 == 0 {
                    run.event(
                        "auto_recovery_resumed",
                        id.clone(),
                        Some(i as u32),
                        format!("health {:.0} after cooldown: resuming phase {}", health.0, phase.name),
                        json!({"health": health.0}),
                    );
                    carry_notes.push(format!(
                        "re-run after auto-recovery {auto_recoveries}/{max} ({reason}; health {:.0} after the cooldown)",
                        health.0
                    ));
                    continue;
                }
                self.stop.request(
                    StopCause::Guardian,
                    format!(
                        "{reason}; health {:.0} (requirement {req:.0}) had not recovered after the {} cooldown",
                        health.0,
                        crate::config::fmt_duration(cooldown)
                    ),
                    false,
                );
                break;
            }
            if out.passed {
                failed_in_row = 0;
                failed_names.clear();
            } else {
                failed_in_row += 1;
                failed_names.push(phase.name.clone());
                if failed_in_row >= self.cfg.campaign.max_consecutive_failed_phases {
                    let why = format!("{failed_in_row} phases failed in a row ({})", failed_names.join(", "));
                    run.event("campaign_halted", id.clone(), Some(i as u32), why.clone(), json!({"phases": failed_names}));
                    halted = Some(why);
                    break;
                }
            }
            i += 1;
        }
        guardian_stop.cancel();
        let _ = guardian.await;
        cap_watch.abort();

        if let Some(p) = &pool {
            if self.stop.forced().is_cancelled() {
                p.kill_now();
            }
            p.shutdown().await;
        }
        drop(confinement);
        force_watch.abort();
        if let Some(s) = &server {
            s.stop();
        }
        let _ = std::fs::remove_dir_all(&profiles_dir);

        // Outcome: a stop request wins, then a halt, then the verdict over the phases.
        store.flush()?;
        let stop_req = self.stop.request_info();
        let (outcome, stop_reason) = if let Some(r) = &stop_req {
            (Outcome::EmergencyStopped, Some(r.reason.clone()))
        } else if let Some(h) = halted {
            (Outcome::Halted, Some(h))
        } else {
            let reader = StoreReader::open(store.path())?;
            let c = report::campaign_report(&reader)?;
            let v = report::verdict(&c.phases, self.cfg.campaign.pass_phase_ratio, self.cfg.campaign.pass_success_rate);
            (if v.passed { Outcome::Passed } else { Outcome::Failed }, None)
        };
        let leftover = run.breakers.drain_transitions();
        run.transition_events(&id, None, leftover);
        let snapshot = run.breakers.snapshot(Instant::now(), (run.started, run.started_wall));
        run.event("breaker_snapshot", id.clone(), None, "breaker states at the end of the campaign".into(), snapshot);
        if let Some(r) = &stop_req {
            run.event("emergency_stop", id.clone(), None, r.reason.clone(), json!({"cause": r.cause.as_str(), "reason": r.reason}));
        }
        run.event(
            "campaign_ended",
            id.clone(),
            None,
            format!("campaign {} {}", id, outcome.as_str()),
            json!({"outcome": outcome.as_str(), "stop_reason": stop_reason}),
        );
        store.campaign_ended(outcome.as_str(), stop_reason.clone());
        store.close()?;
        let reader = StoreReader::open(store.path())?;
        let c = report::campaign_report(&reader)?;
        report::write_campaign_reports(&report_dir, &c).map_err(io_err(&report_dir))?;
        control_stop.cancel();
        if let Some(path) = &self.opts.socket {
            let _ = std::fs::remove_file(path);
        }
        tracing::info!(target: "stressctl::campaign", "campaign {} {}: reports in {}", id, outcome.as_str(), report_dir.display());
        Ok(RunResult { id, outcome, stop_reason, stop_cause: stop_req.map(|r| r.cause), report_dir })
    }

    /// Health now and the number of metrics over their thresholds. A fresh sampler each time, so
    /// CPU is measured over the next few hundred milliseconds, not averaged over the last phase.
    async fn fresh_health(&self, run: &RunShared, i: usize, success: Option<f64>) -> (f64, usize) {
        let (_, sample) = guard::sample_once(crate::guardian::Sampler::new(self.opts.output_dir.clone())).await;
        let t = run.cfg.phase_safety(i).thresholds();
        let over = crate::guardian::Metric::ALL.iter().filter(|m| m.value(&sample) > t.for_metric(**m)).count();
        (crate::guardian::health_score(&sample, &t, success), over)
    }

    /// Progressive escalation: a phase starts as planned only when health meets the requirement;
    /// otherwise it waits up to `escalation_delay`, then runs scaled down. Returns the sessions to
    /// run and the notes for the report.
    async fn gate_phase(&self, run: &RunShared, i: usize, phase: &PhaseConfig, last_success: Option<f64>) -> (u32, Vec<String>) {
        let c = &self.cfg.campaign;
        if !c.progressive_escalation {
            return (phase.sessions, Vec::new());
        }
        let req = c.baseline_health_requirement;
        let (h0, _) = self.fresh_health(run, i, last_success).await;
        if h0 >= req {
            return (phase.sessions, Vec::new());
        }
        let waited = Instant::now();
        let poll = run.cfg.safety.sample_interval.max(Duration::from_secs(1));
        let mut h = h0;
        println!(
            "stressctl: health {h0:.0} below {req:.0} before phase {}: waiting up to {} for it to recover",
            phase.name,
            crate::config::fmt_duration(c.escalation_delay)
        );
        while waited.elapsed() < c.escalation_delay && !self.stop.is_stopping() && RunShared::lock(&run.trip).is_none() {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = self.stop.graceful().cancelled() => break,
            }
            // the previous phase's failures do not heal by waiting: judge resources alone now
            h = self.fresh_health(run, i, None).await.0;
            if h >= req {
                let note = format!(
                    "delayed {:.0}s: health {h0:.0} was below the requirement {req:.0}, recovered to {h:.0}",
                    waited.elapsed().as_secs_f64()
                );
                run.event(
                    "phase_adjusted",
                    format!("{}/{}", run.id, phase.name),
                    Some(i as u32),
                    note.clone(),
                    json!({"delayed_ms": waited.elapsed().as_millis() as u64, "health_before": h0, "health": h}),
                );
                return (phase.sessions, vec![note]);
            }
        }
        let scaled = (phase.sessions / 2).max(1);
        let waited_for = crate::config::fmt_duration(waited.elapsed());
        let note = if scaled < phase.sessions {
            format!(
                "scaled down from {} to {scaled} sessions: health {h:.0} stayed below the requirement {req:.0} for {waited_for}",
                phase.sessions
            )
        } else {
            format!(
                "ran with its 1 session (cannot scale lower) although health {h:.0} stayed below the requirement {req:.0} for {waited_for}"
            )
        };
        run.event(
            "phase_adjusted",
            format!("{}/{}", run.id, phase.name),
            Some(i as u32),
            note.clone(),
            json!({"sessions_planned": phase.sessions, "sessions": scaled, "health": h}),
        );
        println!("stressctl: {note}");
        (scaled, vec![note])
    }

    async fn run_phase(
        &self,
        run: &Arc<RunShared>,
        idx: u32,
        phase: &PhaseConfig,
        plan: PhasePlan,
        report_dir: &Path,
    ) -> Result<PhaseOutcome, RunError> {
        let PhasePlan { sessions, notes, offset } = plan;
        let n = self.cfg.phases.len();
        let started_at = SystemTime::now();
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
            started_at,
        });
        let corr = format!("{}/{}", run.id, phase.name);
        run.event(
            "phase_started",
            corr.clone(),
            Some(idx),
            format!(
                "phase {}/{} {} started: {} sessions, {}, task {}",
                idx + 1,
                n,
                phase.name,
                sessions,
                crate::config::fmt_duration(phase.duration),
                phase.task.kind()
            ),
            json!({"sessions": sessions, "duration_ms": phase.duration.as_millis() as u64, "task": phase.task.kind()}),
        );
        tracing::info!(target: "stressctl::campaign", phase = %phase.name, "phase {}/{} started: {} sessions for {}", idx + 1, n, sessions, crate::config::fmt_duration(phase.duration));

        let stop_ops = self.stop.graceful().child_token();
        let hard = self.stop.forced().child_token();
        let live = Arc::new(Live::default());
        let faults = Arc::new(PhaseFaults::for_phase(&self.cfg.faults, &phase.name));
        let ctx = Arc::new(PhaseCtx {
            run: run.clone(),
            idx,
            phase: phase.clone(),
            stop_ops: stop_ops.clone(),
            hard: hard.clone(),
            live: live.clone(),
            faults,
        });

        let mut trip_rx = run.trip_tx.subscribe();
        if RunShared::lock(&run.trip).is_some() {
            // tripped before the phase started (e.g. while waiting for health): stop at once
            trip_rx.mark_changed();
        }
        // spread the sessions over the workers whose breakers are closed (all of them if none is)
        let ranked = run.ranked_workers();
        let healthy: Vec<usize> = ranked.iter().filter(|(_, h)| *h).map(|(ix, _)| *ix).collect();
        let placement: Vec<usize> = if healthy.is_empty() { (0..ranked.len()).collect() } else { healthy };
        // Open the sessions before the phase clock starts: a browser launch takes seconds, which
        // are not load and must not eat into the phase. A slot that fails here retries (and
        // records the failure) on its first op.
        let mut preparing = tokio::task::JoinSet::new();
        for s in 0..sessions {
            let slot = slot::Slot::new(ctx.clone(), s, placement[s as usize % placement.len()], None);
            preparing.spawn(slot.prepare().in_current_span());
        }
        let mut slots = Vec::with_capacity(sessions as usize);
        while let Some(r) = preparing.join_next().await {
            if let Ok(slot) = r {
                slots.push(slot);
            }
        }
        let start = Instant::now();
        *RunShared::lock(&run.current) =
            Some(CurrentPhase { idx, name: phase.name.clone(), sessions, duration: phase.duration, started: start, live: live.clone() });
        ctx.faults.start_timers(stop_ops.clone());
        let deadline = tokio::time::Instant::now() + phase.duration.saturating_sub(offset);
        let mut set = tokio::task::JoinSet::new();
        for slot in slots {
            set.spawn(slot.run().in_current_span());
        }
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut stopped_at: Option<tokio::time::Instant> = None;
        let mut paused = false;
        let grace = self.cfg.campaign.grace_period;
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
                _ = self.stop.graceful().cancelled(), if stopped_at.is_none() => {
                    stopped_at = Some(tokio::time::Instant::now());
                }
                Ok(()) = trip_rx.changed(), if stopped_at.is_none() => {
                    stop_ops.cancel();
                    stopped_at = Some(tokio::time::Instant::now());
                    paused = true;
                }
                _ = async { if let Some(g) = grace_end { tokio::time::sleep_until(g).await } else { std::future::pending().await } }, if grace_end.is_some() && !hard.is_cancelled() => {
                    tracing::warn!(target: "stressctl::campaign", phase = %phase.name, "in-flight ops did not finish within the grace period ({grace:?}); abandoning them");
                    hard.cancel();
                }
                _ = tick.tick() => {
                    if last_checkpoint.elapsed() >= Duration::from_secs(1) {
                        run.store.phase_progress(idx, offset + start.elapsed());
                        last_checkpoint = Instant::now();
                    }
                    if self.opts.progress {
                        self.progress_line(idx, phase, start.elapsed(), &live, false);
                    }
                }
            }
        }
        let elapsed = offset + start.elapsed();
        let stopped = self.stop.is_stopping();
        *RunShared::lock(&run.current) = None;
        {
            let (a, s, f) = live.counts();
            let mut d = RunShared::lock(&run.done);
            d.0 += a;
            d.1 += s;
            d.2 += f;
        }
        run.store.phase_ended(idx, if stopped || paused { "stopped" } else { "completed" }, elapsed);
        let (attempted, succeeded, failed) = live.counts();
        run.event(
            "phase_ended",
            corr,
            Some(idx),
            format!(
                "phase {} {}: {attempted} ops, {succeeded} ok, {failed} failed in {:.1}s",
                phase.name,
                if stopped { "stopped" } else { "completed" },
                elapsed.as_secs_f64()
            ),
            json!({"attempted": attempted, "succeeded": succeeded, "failed": failed, "elapsed_ms": elapsed.as_millis() as u64}),
        );
        if self.opts.progress {
            self.progress_line(idx, phase, elapsed, &live, true);
        }
        run.store.flush()?;
        let reader = StoreReader::open(run.store.path())?;
        let p = report::phase_report(&reader, idx)?;
        report::write_phase_report(report_dir, &p).map_err(io_err(report_dir))?;
        let passed = p.criteria.passed;
        let summary = format!(
            "[{}/{}] {:<12} {:>3} sessions {:>7} ops  {:>6.2}% ok  {:>7.1} ops/s  p95 {:>8.1} ms  {}{}",
            idx + 1,
            n,
            phase.name,
            sessions,
            p.ops_attempted,
            p.success_rate * 100.0,
            p.throughput_ops_per_s,
            p.latency_ms.p95,
            if passed { "PASS" } else { "FAIL" },
            if stopped {
                " (stopped)"
            } else if paused {
                " (paused by the guardian)"
            } else {
                ""
            }
        );
        tracing::info!(target: "stressctl::campaign", phase = %phase.name, "{summary}");
        let success_rate = (p.ops_attempted > 0).then(|| p.ops_succeeded as f64 / p.ops_attempted as f64);
        Ok(PhaseOutcome { passed, stopped, success_rate, summary })
    }

    fn progress_line(&self, idx: u32, phase: &PhaseConfig, elapsed: Duration, live: &Live, done: bool) {
        if done {
            print!("\r\x1b[2K");
            let _ = std::io::stdout().flush();
            return;
        }
        let (a, s, _) = live.counts();
        let rate = if a > 0 { s as f64 / a as f64 * 100.0 } else { 100.0 };
        let l = live.latency();
        print!(
            "\r\x1b[2K[{}/{}] {:<12} {:>5.1}s/{:<5.0}s {:>3} sessions {:>7} ops {:>6.2}% ok p95 {:>7.1} ms",
            idx + 1,
            self.cfg.phases.len(),
            phase.name,
            elapsed.as_secs_f64(),
            phase.duration.as_secs_f64(),
            phase.sessions,
            a,
            rate,
            l.p95
        );
        let _ = std::io::stdout().flush();
    }
}
