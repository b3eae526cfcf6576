//! The campaign loop: open the store, start the run's services (page server, control socket,
//! guardian, watchers, fault timers) as children of one run-lifetime token on one task tracker,
//! run the phases in order with the between-phase policy of [`super::escalation`], then stop the
//! services, wait for every task the run started, and write the final reports.
//!
//! The runner prints nothing: everything it has to say is an [`Event`] (store, log, and the live
//! subscribers such as the terminal renderer in `crate::progress`).

use super::escalation::{self, Cooldown, Next, Situation};
use super::faults::{self, FaultPlan};
use super::phase::{run_phase, PhasePlan};
use super::resume::ResumePoint;
use super::shared::RunShared;
use super::status::status_of;
use super::{guard, io_err, CampaignOutcome, RunError, RunOptions, RunResult};
use crate::browser::pool::Pool;
use crate::config::{Config, NotifyOn};
use crate::control::{StopCause, StopSignal};
use crate::events::{Event, EventBus};
use crate::progress::{BreakerFeed, StatusFeed};
use crate::report;
use crate::store::{self, CampaignRecord, Store, StoreReader};
use crate::tasks::server::PageServer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Runs a campaign from start to end.
pub struct Campaign {
    cfg: Arc<Config>,
    opts: RunOptions,
    stop: Arc<StopSignal>,
    /// Called with the run's event bus, status feed and breaker feed before the first event: the
    /// terminal renderer and the dashboard subscribe here.
    on_start: Option<OnStart>,
}

/// See [`Campaign::on_start`].
type OnStart = Box<dyn FnOnce(&EventBus, StatusFeed, BreakerFeed) + Send>;

/// The run's lifetime: a root token whose children stop the background services, and a tracker
/// the runner waits on before it writes the final report, so no task that owns a resource (a
/// socket, a timer that injects faults, the guardian's sampler) outlives the run or is aborted.
struct RunScope {
    root: CancellationToken,
    tracker: TaskTracker,
}

impl RunScope {
    fn new() -> RunScope {
        RunScope { root: CancellationToken::new(), tracker: TaskTracker::new() }
    }
    /// A token for one service: cancelled with the root, or alone.
    fn child(&self) -> CancellationToken {
        self.root.child_token()
    }
    /// Cancels every service and waits for every tracked task to finish.
    async fn close(&self) {
        self.root.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

impl Campaign {
    /// A campaign of `cfg` that stops through `stop`.
    pub fn new(cfg: Config, opts: RunOptions, stop: Arc<StopSignal>) -> Campaign {
        Campaign { cfg: Arc::new(cfg), opts, stop, on_start: None }
    }

    /// Hands the run's event bus, a status feed and a breaker feed to `f` before the first event
    /// is emitted (to subscribe a renderer, a dashboard…).
    pub fn on_start(mut self, f: impl FnOnce(&EventBus, StatusFeed, BreakerFeed) + Send + 'static) -> Campaign {
        self.on_start = Some(Box::new(f));
        self
    }

    /// Runs every phase and writes the reports. Errors are returned only when the campaign could
    /// not be recorded at all; a campaign that ran and failed is `Ok` with its outcome.
    pub async fn run(self, id: String) -> Result<RunResult, RunError> {
        self.run_from(id, None).await
    }

    /// Opens (or, resuming, reopens) the store; returns it with the report directory.
    fn open_store(&self, id: &str, resume: bool) -> Result<(Store, PathBuf), RunError> {
        let store_file = store::store_path(&self.opts.state_dir, id)?;
        if resume {
            let report_dir = StoreReader::open(&store_file)?.campaign()?.output_dir;
            std::fs::create_dir_all(&report_dir).map_err(io_err(&report_dir))?;
            let store = Store::reopen(&store_file, &report_dir.join("events.jsonl"))?;
            store.campaign_resumed();
            return Ok((store, report_dir));
        }
        let report_dir = self.opts.output_dir.join(id);
        std::fs::create_dir_all(&report_dir).map_err(io_err(&report_dir))?;
        let store = Store::create(
            &store_file,
            &CampaignRecord {
                id: id.to_string(),
                profile: self.cfg.profile.clone(),
                config_source: self.cfg.source.clone(),
                config_text: self.cfg.text.clone(),
                started_at: SystemTime::now(),
                output_dir: report_dir.clone(),
            },
            &report_dir.join("events.jsonl"),
        )?;
        Ok((store, report_dir))
    }

    /// Runs the campaign; with `resume`, continues a campaign whose process died (its store is
    /// reopened, completed phases are kept as they are).
    pub async fn run_from(mut self, id: String, resume: Option<ResumePoint>) -> Result<RunResult, RunError> {
        let run_dir = self.opts.state_dir.join("runs").join(&id);
        let profiles_dir = run_dir.join("profiles");
        std::fs::create_dir_all(&profiles_dir).map_err(io_err(&profiles_dir))?;
        let (store, report_dir) = self.open_store(&id, resume.is_some())?;
        {
            let stop = self.stop.clone();
            store.on_fatal(move |msg| stop.request(StopCause::StoreFailure, msg, false));
        }
        let scope = RunScope::new();
        let server = if self.cfg.needs_browser() {
            Some(
                PageServer::start_with(
                    scope.child(),
                    &scope.tracker,
                    crate::tasks::model::ServedFiles::for_config(&self.cfg),
                    &crate::tasks::server::ServeOptions::for_config(&self.cfg),
                )
                .await
                .map_err(|source| RunError::Io {
                    path: PathBuf::from(self.cfg.server.listen.as_deref().unwrap_or(crate::config::addr::DEFAULT_SERVER_LISTEN)),
                    source,
                })?,
            )
        } else {
            None
        };
        // drivers spawned from here on are born in the run's cgroup (dropped, so removed, at the end)
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
        let page_url = server.as_ref().map(|s| s.url()).unwrap_or_default();
        let mut shared = RunShared::new(id.clone(), self.cfg.clone(), store.clone(), pool.clone(), page_url, self.stop.clone());
        shared.served = server.as_ref().map(|s| s.stats());
        let run = Arc::new(shared);
        if let Err(e) = super::notices::start(&run, &report_dir) {
            tracing::warn!(target: "stressctl::campaign", "{e}: this campaign sends no notifications");
        }
        if let Some(f) = self.on_start.take() {
            // a weak handle: a subscriber must not keep the run alive
            let weak = Arc::downgrade(&run);
            let weak_b = weak.clone();
            let breakers: BreakerFeed =
                Arc::new(move || weak_b.upgrade().map(|r| r.breakers.snapshot(Instant::now(), (r.started, r.started_wall))));
            f(&run.bus, Arc::new(move || weak.upgrade().map(|r| status_of(&r))), breakers);
        }
        // The control socket outlives the phases: it answers `status` while the reports are
        // written, so it has its own token, cancelled last.
        let control = CancellationToken::new();
        let control_tracker = TaskTracker::new();
        if let Some(path) = &self.opts.socket {
            let target: Arc<dyn crate::control::socket::Controlled> = run.clone();
            if let Err(e) = crate::control::socket::serve(path, target, control.clone(), &control_tracker).await {
                tracing::warn!(target: "stressctl::campaign", "control socket {}: {e} (status/emergency-stop unavailable; Ctrl-C/SIGTERM still work)", path.display());
            }
        }
        scope.tracker.spawn(guard::run(run.clone(), self.opts.output_dir.clone(), scope.child()).in_current_span());
        scope.tracker.spawn(super::progress_log::run(run.clone(), self.cfg.logging.progress_interval, scope.child()).in_current_span());
        run.event(
            id.clone(),
            None,
            Event::CampaignStarted {
                profile: self.cfg.profile.clone(),
                config_source: self.cfg.source.clone(),
                phases: self.cfg.phases.len() as u32,
                planned_ms: self.cfg.planned_duration().as_millis() as u64,
                pid: std::process::id(),
                pass_phase_ratio: Some(self.cfg.campaign.pass_phase_ratio),
                pass_success_rate: Some(self.cfg.campaign.pass_success_rate),
                faults: self.cfg.faults.iter().map(faults::describe).collect(),
                workers: self
                    .cfg
                    .workers
                    .iter()
                    .map(|w| crate::events::WorkerInfo {
                        id: w.id.clone(),
                        browser: w.browser.as_str().to_string(),
                        webgpu_adapter: w.webgpu_adapter.unwrap_or(self.cfg.browser.webgpu_adapter).as_str().to_string(),
                        endpoint: match &w.endpoint {
                            crate::config::WorkerEndpoint::Managed => "managed".to_string(),
                            crate::config::WorkerEndpoint::Remote(u) => u.clone(),
                        },
                    })
                    .collect(),
            },
        );
        if let Some(t) = &self.opts.tuned {
            run.event(id.clone(), None, Event::ConfigTuned { from: t.from.clone(), settings: t.settings.clone() });
        }
        run.event(id.clone(), None, confinement_event(&confinement));
        tracing::info!(target: "stressctl::campaign", "campaign started: profile {}, {} phases, reports in {}", self.cfg.profile, self.cfg.phases.len(), report_dir.display());
        self.spawn_watchers(&scope, pool.clone());
        // grid hook: detect Selenium Grid workers; each hub's node availability (polled once a
        // second) forces its node breakers open until the node is UP again (browser::grid).
        if let Some(p) = &pool {
            p.detect_grids().await;
            p.grids.set_secret(&self.cfg.grid.registration_secret());
            for g in p.grids.all() {
                let weak = Arc::downgrade(&run);
                scope.tracker.spawn(crate::browser::grid::watch(g, Duration::from_secs(1), scope.child(), move |g, st| {
                    if let Some(r) = weak.upgrade() {
                        let ts = g.apply_availability(st, &r.breakers, Instant::now());
                        r.transition_events(&r.id, r.current_phase_idx(), ts);
                    }
                }));
            }
        }
        // each watched node's node_exporter ([[workers]] node_metrics): after the Grids are known,
        // as a Grid's nodes come from its hub's /status
        scope.tracker.spawn(super::nodes::run(run.clone(), scope.child()).in_current_span());
        let plan = Arc::new(FaultPlan::new(&self.cfg.faults));
        {
            // a weak handle: the timers must not keep the run alive
            let weak = Arc::downgrade(&run);
            plan.arm(&scope.tracker, scope.child(), move || weak.upgrade().and_then(|r| r.current_phase_name()));
        }

        let halted = self.run_phases(&run, &plan, resume, &report_dir).await?;

        // Stop the services and wait for every task of the run before the final report.
        scope.close().await;
        if let Some(p) = &pool {
            if self.stop.forced().is_cancelled() {
                p.kill_now();
            }
            p.shutdown().await;
        }
        drop(confinement);
        let _ = std::fs::remove_dir_all(&profiles_dir);
        let result = self.finish(&run, &id, halted, report_dir).await;
        control.cancel();
        control_tracker.close();
        control_tracker.wait().await;
        if let Some(path) = &self.opts.socket {
            let _ = std::fs::remove_file(path);
        }
        result
    }

    /// A forced stop kills every driver group at once, wherever the runner is; the campaign's own
    /// time cap requests a graceful stop.
    fn spawn_watchers(&self, scope: &RunScope, pool: Option<Arc<Pool>>) {
        let stop = self.stop.clone();
        let done = scope.child();
        scope.tracker.spawn(
            async move {
                tokio::select! {
                    _ = stop.forced().cancelled() => {
                        if let Some(p) = pool {
                            p.kill_now();
                        }
                    }
                    _ = done.cancelled() => {}
                }
            }
            .in_current_span(),
        );
        let stop = self.stop.clone();
        let cap = self.cfg.safety.max_campaign_duration;
        let done = scope.child();
        scope.tracker.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(cap) => {
                    stop.request(StopCause::MaxDuration, format!("max_campaign_duration ({}) reached", crate::fmt::fmt_duration(cap)), false);
                }
                _ = done.cancelled() => {}
            }
        });
    }

    /// The phases in order, with the between-phase policy. Returns the halt reason, if halted.
    async fn run_phases(
        &self,
        run: &Arc<RunShared>,
        plan: &Arc<FaultPlan>,
        resume: Option<ResumePoint>,
        report_dir: &std::path::Path,
    ) -> Result<Option<String>, RunError> {
        let mut failed_in_row = 0u32;
        let mut failed_names: Vec<String> = Vec::new();
        let mut recoveries_used = 0u32;
        let mut carry_notes: Vec<String> = Vec::new();
        let mut last_success: Option<f64> = None;
        let mut previous: Option<escalation::Previous> = None;
        let mut i = resume.as_ref().map(|r| r.phase).unwrap_or(0);
        let mut continue_from = resume.as_ref().map(|r| (r.phase, r.elapsed));
        if let Some(r) = &resume {
            run.event(
                run.id.clone(),
                None,
                Event::CampaignInterrupted { phase: r.phase as u32, elapsed_ms: r.elapsed.as_millis() as u64, note: r.note.clone() },
            );
            run.event(run.id.clone(), None, Event::CampaignResumed { phase: r.phase as u32 });
            if r.phase < self.cfg.phases.len() {
                carry_notes.push(r.note.clone());
            }
        }
        let disk = &self.opts.output_dir;
        if resume.is_none() && self.opts.baseline {
            super::baseline::record(run, disk).await;
        }
        while i < self.cfg.phases.len() && !self.stop.is_stopping() {
            let phase = &self.cfg.phases[i];
            let mut planned = phase.sessions;
            let mut scale_note = None;
            // a phase with nowhere to run opens no session: nothing to scale, no health to wait for
            let nowhere = run.nowhere_to_run(phase).is_some();
            if self.cfg.campaign.progressive_escalation && !nowhere {
                if let Some(s) = escalation::scale(phase.sessions, previous.as_ref(), self.cfg.campaign.baseline_health_requirement) {
                    run.event(
                        format!("{}/{}", run.id, phase.name),
                        Some(i as u32),
                        Event::PhaseAdjusted {
                            note: format!("escalation: {}", s.reason),
                            delayed_ms: None,
                            sessions_planned: Some(phase.sessions),
                            sessions: Some(s.sessions),
                            health: previous.as_ref().and_then(|p| p.strain.mean_health()).unwrap_or(0.0),
                        },
                    );
                    planned = s.sessions;
                    scale_note =
                        (s.sessions != phase.sessions || previous.as_ref().is_some_and(|p| p.sessions < p.planned)).then_some(s.reason);
                }
            }
            let (sessions, mut notes) = if nowhere {
                (phase.sessions, Vec::new())
            } else {
                escalation::gate_phase(run, disk, i, phase, planned, last_success).await
            };
            notes.extend(scale_note);
            notes.append(&mut carry_notes);
            if self.stop.is_stopping() {
                break;
            }
            let offset = match continue_from.take() {
                Some((p, e)) if p == i => e,
                _ => Duration::ZERO,
            };
            let phase_plan = PhasePlan { sessions, notes, offset };
            let out = match &phase.capacity {
                Some(spec) => super::capacity::run_capacity_phase(run, plan, i as u32, phase, spec, phase_plan, report_dir).await?,
                None => run_phase(run, plan, i as u32, phase, phase_plan, report_dir).await?,
            };
            // an API the browser lacks says nothing about the host's health
            last_success = if out.unsupported { None } else { out.success_rate };
            previous =
                Some(escalation::Previous { name: phase.name.clone(), sessions, planned: phase.sessions, strain: run.phase_strain() });
            let next = escalation::decide(Situation {
                stopped: out.stopped,
                passed: out.passed,
                unsupported: out.unsupported,
                tripped: run.is_tripped(),
                failed_in_row,
                max_failed_in_row: self.cfg.campaign.max_consecutive_failed_phases,
                recoveries_used,
                max_recoveries: self.cfg.campaign.max_auto_recoveries,
            });
            match next {
                Next::Stop => break,
                Next::CoolDown { attempt } => {
                    recoveries_used = attempt;
                    let Some(trip) = run.begin_cooldown() else { continue };
                    let reason = trip.stop_reason();
                    match escalation::cool_down(run, disk, i, phase, &reason, attempt).await {
                        Cooldown::Resume(note) => carry_notes.push(note),
                        Cooldown::Stop(Some(why)) => {
                            self.stop.request(StopCause::Guardian, why, false);
                            break;
                        }
                        Cooldown::Stop(None) => break,
                    }
                }
                Next::GiveUp => {
                    let reason = run.begin_cooldown().map(|t| t.stop_reason()).unwrap_or_else(|| "guardian".into());
                    let max = self.cfg.campaign.max_auto_recoveries;
                    self.stop.request(StopCause::Guardian, format!("{reason} (auto-recovery already used {max} times)"), false);
                    break;
                }
                Next::Halt { failed_in_row: n } => {
                    failed_names.push(phase.name.clone());
                    let why = format!("{n} phases failed in a row ({})", failed_names.join(", "));
                    run.notify(NotifyOn::Halted, why.clone(), serde_json::json!({"failed_phases": failed_names.clone()}));
                    run.event(run.id.clone(), Some(i as u32), Event::CampaignHalted { phases: failed_names });
                    return Ok(Some(why));
                }
                Next::Advance { failed_in_row: n } => {
                    if n == 0 {
                        failed_names.clear();
                    } else {
                        failed_names.push(phase.name.clone());
                    }
                    failed_in_row = n;
                    i += 1;
                }
            }
        }
        Ok(None)
    }

    /// Decides the outcome, records the end of the campaign and writes the final reports.
    async fn finish(&self, run: &Arc<RunShared>, id: &str, halted: Option<String>, report_dir: PathBuf) -> Result<RunResult, RunError> {
        let store = &run.store;
        // Outcome: a stop request wins, then a halt, then the verdict over the phases.
        store.flush()?;
        let stop_req = self.stop.request_info();
        let (outcome, stop_reason) = if let Some(r) = &stop_req {
            (CampaignOutcome::EmergencyStopped, Some(r.reason.clone()))
        } else if let Some(h) = halted {
            (CampaignOutcome::Halted, Some(h))
        } else {
            // the verdict alone (the full report is built once, below, after the end events)
            let verdict = report::campaign_verdict(&StoreReader::open(store.path())?)?;
            (if verdict.passed { CampaignOutcome::Passed } else { CampaignOutcome::Failed }, None)
        };
        let leftover = run.breakers.drain_transitions();
        run.transition_events(id, None, leftover);
        let snapshot = run.breakers.snapshot(Instant::now(), (run.started, run.started_wall));
        run.event(id, None, Event::BreakerSnapshot(snapshot));
        if let Some(r) = &stop_req {
            run.event(id, None, Event::EmergencyStop { cause: r.cause.as_str().to_string(), reason: r.reason.clone() });
        }
        if let Some(r) = &stop_req {
            let on = if r.cause == StopCause::Guardian { NotifyOn::GuardianTrip } else { NotifyOn::EmergencyStop };
            run.notify(on, r.reason.clone(), serde_json::json!({"cause": r.cause.as_str()}));
        }
        let verdict_reason = match &stop_reason {
            Some(r) => format!("campaign {} ({r})", outcome.as_str()),
            None => format!("campaign {}", outcome.as_str()),
        };
        run.notify(NotifyOn::Verdict, verdict_reason, serde_json::json!({"outcome": outcome.as_str(), "stop_reason": stop_reason}));
        // before the end event and the store's close: the deliveries' results are in the report
        super::notices::drain(run).await;
        run.event(id, None, Event::CampaignEnded { outcome: outcome.as_str().to_string(), stop_reason: stop_reason.clone() });
        store.campaign_ended(outcome.as_str(), stop_reason.clone());
        store.close()?;
        let reader = StoreReader::open(store.path())?;
        let c = report::campaign_report(&reader)?;
        report::write_campaign_reports(&report_dir, &c).map_err(io_err(&report_dir))?;
        tracing::info!(target: "stressctl::campaign", corr = %id, "reports in {}", report_dir.display());
        Ok(RunResult { id: id.to_string(), outcome, stop_reason, stop_cause: stop_req.map(|r| r.cause), report_dir })
    }
}

/// The `confinement` event recorded at the start of a run: the reports show the reservation in
/// force from it. Built here, by the run that records it, so `confine` knows nothing of events.
fn confinement_event(c: &crate::confine::RunConfinement) -> Event {
    let r = c.reservation();
    Event::Confinement {
        description: c.describe(),
        confined: r.is_some(),
        reserve_percent: r.map(|r| r.reserve_percent),
        cpu_cap_percent: r.and_then(|r| r.cpu_cap_percent),
        memory_cap_bytes: r.and_then(|r| r.memory_cap_bytes),
        mechanism: c.mechanism(),
        pid_namespaces: c.pid_namespaces(),
    }
}
