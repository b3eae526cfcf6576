//! Workers (WebDriver endpoints) and the pool of idle sessions.
//!
//! A *managed* worker is a chromedriver that stressctl spawns on a free loopback port, in its own
//! process group, and supervises: it is respawned on demand after it dies and restarted on request
//! by the recovery ladder. A *remote* worker is just a URL. Every process started is recorded in
//! the store (pid + start time) so a later run can reap it, and only such processes are signalled.

use super::driver::{broken_binary_path, DriverProcess};
use super::process::{group_members_with_marker, ProcId};
use super::session::{self, Endpoint, Session};
use crate::config::{BrowserConfig, TaskSpec, WorkerConfig, WorkerEndpoint};
use crate::recovery::{FailureClass, OpError};
use crate::store::{ProcessRow, Store};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// One WebDriver endpoint.
pub struct Worker {
    /// Worker id (`worker:<id>` breaker key).
    pub id: String,
    pub(super) endpoint: WorkerEndpoint,
    inner: tokio::sync::Mutex<DriverSlot>,
}

#[derive(Default)]
struct DriverSlot {
    driver: Option<DriverProcess>,
    /// Bumped on every (re)start: sessions of an older generation are stale.
    generation: u64,
    /// Set by a permanent `kill_driver` fault: the driver cannot be restarted.
    broken: bool,
    /// Groups of drivers we killed, to reap browsers left in them.
    dead_groups: Vec<u32>,
}

impl Worker {
    /// Whether stressctl runs this worker's driver.
    pub fn is_managed(&self) -> bool {
        matches!(self.endpoint, WorkerEndpoint::Managed)
    }
}

/// The workers and idle sessions of a run.
pub struct Pool {
    /// Workers in config order.
    pub workers: Vec<Arc<Worker>>,
    pub(super) cfg: BrowserConfig,
    pub(super) profiles_dir: PathBuf,
    log_dir: PathBuf,
    log_stamp: String,
    store: Option<Store>,
    idle: Mutex<Vec<Session>>,
    /// Browsers of open sessions (for the RSS cap and fault injection).
    live: Mutex<HashSet<ProcId>>,
    /// Browsers whose session must be recycled (over the RSS cap).
    recycle: Mutex<HashSet<ProcId>>,
    /// Selenium Grid workers (grid hook: filled by `detect_grids`, see browser::grid).
    pub grids: super::grid::GridSet,
}

impl Pool {
    /// A pool over `workers`; nothing is started until a session is needed.
    pub fn new(
        cfg: BrowserConfig,
        workers: &[WorkerConfig],
        profiles_dir: PathBuf,
        log_dir: PathBuf,
        log_stamp: String,
        store: Option<Store>,
    ) -> Pool {
        let workers = workers
            .iter()
            .map(|w| {
                Arc::new(Worker { id: w.id.clone(), endpoint: w.endpoint.clone(), inner: tokio::sync::Mutex::new(DriverSlot::default()) })
            })
            .collect();
        Pool {
            workers,
            cfg,
            profiles_dir,
            log_dir,
            log_stamp,
            store,
            idle: Mutex::new(Vec::new()),
            live: Mutex::default(),
            recycle: Mutex::default(),
            grids: Default::default(),
        }
    }

    /// The worker's endpoint, starting (or restarting) its driver if it is managed and not running.
    pub async fn endpoint(&self, w: &Worker) -> Result<Endpoint, OpError> {
        if let WorkerEndpoint::Remote(url) = &w.endpoint {
            return Ok(Endpoint { url: url.clone(), generation: 0, pgid: None });
        }
        let mut slot = w.inner.lock().await;
        let generation = slot.generation;
        if let Some(d) = slot.driver.as_mut() {
            if d.is_running() {
                return Ok(Endpoint { url: d.url.clone(), generation, pgid: Some(d.id.pid) });
            }
            // it died on its own (or was killed): reap what it left behind, then respawn
            let dead = slot.driver.take();
            if let Some(mut d) = dead {
                self.record_ended(&d.id);
                d.kill().await;
                slot.dead_groups.push(d.id.pid);
            }
        }
        self.reap_dead_groups(&mut slot);
        let binary = if slot.broken { broken_binary_path(&w.id) } else { self.cfg.chromedriver.clone() };
        let log = self.log_dir.join(format!("chromedriver_{}_{}.log", w.id, self.log_stamp));
        let config_home = self.profiles_dir.join("xdg-config");
        let d = DriverProcess::spawn(&binary, &log, &config_home).await?;
        slot.generation += 1;
        tracing::info!(target: "stressctl::browser", worker = %w.id, pid = d.id.pid, port = d.port, generation = slot.generation, "chromedriver started");
        if let Some(store) = &self.store {
            store.process(ProcessRow {
                pid: d.id.pid,
                start_time: d.id.start_time,
                kind: "chromedriver",
                worker: w.id.clone(),
                pgid: d.id.pid,
                marker: format!("--port={}", d.port),
            });
        }
        let ep = Endpoint { url: d.url.clone(), generation: slot.generation, pgid: Some(d.id.pid) };
        slot.driver = Some(d);
        Ok(ep)
    }

    /// Restarts the worker's driver unless it was already restarted since `seen_generation`.
    pub async fn restart_driver(&self, w: &Worker, seen_generation: u64) -> Result<Endpoint, OpError> {
        if !w.is_managed() {
            return Err(OpError::new(
                FailureClass::ConnectionFailure,
                format!("worker {} is remote: its driver cannot be restarted", w.id),
            ));
        }
        {
            let mut slot = w.inner.lock().await;
            if slot.generation == seen_generation {
                if let Some(mut d) = slot.driver.take() {
                    tracing::warn!(target: "stressctl::browser", worker = %w.id, pid = d.id.pid, "restarting chromedriver");
                    self.record_ended(&d.id);
                    d.kill().await;
                    slot.dead_groups.push(d.id.pid);
                }
            }
        }
        self.endpoint(w).await
    }

    /// SIGKILLs the worker's driver process alone (fault injection), optionally making it
    /// impossible to restart. Returns the pid killed.
    pub async fn kill_driver(&self, w: &Worker, permanent: bool) -> Option<u32> {
        let mut slot = w.inner.lock().await;
        if permanent {
            slot.broken = true;
        }
        let d = slot.driver.as_ref()?;
        d.id.signal(libc::SIGKILL).then_some(d.id.pid)
    }

    /// Opens a session on `w` for `task`.
    pub async fn open_session(&self, w: &Worker, page_url: &str, task: &TaskSpec) -> Result<Session, OpError> {
        let ep = self.endpoint(w).await?;
        let s = session::open(&ep, &w.id, &self.cfg, &self.profiles_dir, page_url, task).await?;
        if let (Some(store), Some(b), Some(pgid)) = (&self.store, s.browser, ep.pgid) {
            store.process(ProcessRow {
                pid: b.pid,
                start_time: b.start_time,
                kind: "browser",
                worker: w.id.clone(),
                pgid,
                marker: format!("--user-data-dir={}", s.user_data_dir.display()),
            });
        }
        if let Some(b) = s.browser {
            lock(&self.live).insert(b);
        }
        tracing::debug!(target: "stressctl::browser", worker = %w.id, session = %s.label, browser_pid = ?s.browser.map(|b| b.pid), "session opened");
        Ok(s)
    }

    /// An idle session of `w` for reuse, or a new one.
    pub async fn session_for(&self, w: &Worker, page_url: &str, task: &TaskSpec) -> Result<Session, OpError> {
        match self.checkout(w).await {
            Some(s) => Ok(s),
            None => self.open_session(w, page_url, task).await,
        }
    }

    /// Discards a session (closes it, kills its browser, removes its profile).
    pub async fn discard(&self, s: Session) {
        let b = s.browser;
        self.grids.forget(&s); // grid hook
        s.discard().await;
        if let Some(b) = b {
            lock(&self.live).remove(&b);
            lock(&self.recycle).remove(&b);
            self.record_ended(&b);
        }
    }

    /// Browsers of open sessions.
    pub fn live_browsers(&self) -> Vec<ProcId> {
        lock(&self.live).iter().copied().collect()
    }

    /// Asks for the session of browser `b` to be recycled; true when newly asked.
    pub fn request_recycle(&self, b: ProcId) -> bool {
        lock(&self.recycle).insert(b)
    }

    /// Whether the session of browser `b` must be recycled now (clears the request).
    pub fn take_recycle(&self, b: ProcId) -> bool {
        lock(&self.recycle).remove(&b)
    }

    /// Takes an idle session of worker `id` whose driver generation is still current.
    pub async fn checkout(&self, w: &Worker) -> Option<Session> {
        let generation = w.inner.lock().await.generation;
        let found = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let pos = idle.iter().position(|s| s.worker == w.id)?;
            idle.swap_remove(pos)
        };
        if found.driver_generation == generation || !w.is_managed() {
            Some(found)
        } else {
            self.discard(found).await;
            None
        }
    }

    /// Returns a healthy session for reuse by a later phase.
    pub fn checkin(&self, s: Session) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(s);
    }

    /// Closes every idle session and stops every driver, then reaps anything left in their groups.
    pub async fn shutdown(&self) {
        let idle: Vec<Session> = std::mem::take(&mut *lock(&self.idle));
        // close them concurrently: each may wait up to a few seconds for its browser
        let mut closing = tokio::task::JoinSet::new();
        for s in idle {
            if let Some(b) = s.browser {
                lock(&self.live).remove(&b);
                self.record_ended(&b);
            }
            self.grids.forget(&s); // grid hook
            closing.spawn(s.discard());
        }
        while closing.join_next().await.is_some() {}
        self.grids.delete_leftovers(&self.profiles_dir).await; // grid hook: no session of ours is left on a Grid
        for w in &self.workers {
            let mut slot = w.inner.lock().await;
            if let Some(mut d) = slot.driver.take() {
                self.record_ended(&d.id);
                d.kill().await;
                slot.dead_groups.push(d.id.pid);
            }
            self.reap_dead_groups(&mut slot);
        }
        tracing::info!(target: "stressctl::browser", "all drivers stopped");
    }

    /// Kills every driver's process group at once (force stop). Never blocks on a driver.
    pub fn kill_now(&self) {
        for w in &self.workers {
            if let Ok(mut slot) = w.inner.try_lock() {
                if let Some(d) = slot.driver.as_mut() {
                    d.kill_now();
                }
                let pgid = slot.driver.as_ref().map(|d| d.id.pid);
                if let Some(p) = pgid {
                    slot.dead_groups.push(p);
                }
                self.reap_dead_groups(&mut slot);
            }
        }
    }

    /// SIGKILLs browsers left in the groups of drivers that are gone (identified by our profile
    /// directory in their command line and their group id; verified by start time).
    fn reap_dead_groups(&self, slot: &mut DriverSlot) {
        let marker = format!("--user-data-dir={}", self.profiles_dir.display());
        for pgid in std::mem::take(&mut slot.dead_groups) {
            for p in group_members_with_marker(pgid, &marker) {
                p.signal(libc::SIGKILL);
                self.record_ended(&p);
            }
        }
    }

    fn record_ended(&self, p: &ProcId) {
        if let Some(store) = &self.store {
            store.process_ended(p.pid, p.start_time);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
