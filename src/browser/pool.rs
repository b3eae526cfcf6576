//! Workers (WebDriver endpoints) and the pool of idle sessions.
//!
//! A *managed* worker's driver is spawned by stressctl on a free loopback port, in its own
//! process group, and supervised. A Chromium worker has one chromedriver for all its sessions:
//! it is respawned on demand after it dies and restarted on request by the recovery ladder.
//! geckodriver serves one session at a time, so a Firefox worker spawns one geckodriver per
//! session, owned by the session and killed with it. A *remote* worker is just a URL. Every
//! process started is recorded in the store (pid + start time) so a later run can reap it, and
//! only such processes are signalled.
//!
//! A worker with `webgpu_adapter = "auto"` settles its adapter on its first session: hardware
//! when the page finds a hardware adapter, software otherwise, for the rest of the run.

use super::adapter::{AdapterMode, ICD_DIR};
use super::driver::{broken_binary_path, resolve_binary, DriverProcess, DriverSpec};
use super::process::{group_members_with_marker, ProcId};
use super::session::{self, Endpoint, Launch, Session};
use crate::config::{AdapterChoice, BrowserConfig, BrowserKind, TaskSpec, WorkerConfig, WorkerEndpoint};
use crate::recovery::{FailureClass, OpError};
use crate::store::{ProcessRow, Store};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One WebDriver endpoint.
pub struct Worker {
    /// Worker id (`worker:<id>` breaker key).
    pub id: String,
    /// The browser its sessions run (`browser:<name>` breaker key).
    pub browser: BrowserKind,
    /// The adapter choice in force for it (its own, else `[browser]`'s).
    pub adapter_choice: AdapterChoice,
    /// The adapter settled for it: fixed for `software`/`hardware`, found on the first session
    /// for `auto`.
    adapter: Mutex<Option<AdapterMode>>,
    /// The GPU Chromium names on `chrome://gpu`, read once per adapter mode (a hardware launch
    /// and a software one name different renderers).
    gpu_names: Mutex<Vec<(AdapterMode, Option<String>)>>,
    /// The class of the adapter its sessions reported (`swiftshader`, `lavapipe`, `nvidia`, ...):
    /// the `hardware:<class>` breaker its ops pass once known (set from the first report).
    hardware_class: Mutex<Option<String>>,
    pub(super) endpoint: WorkerEndpoint,
    inner: tokio::sync::Mutex<DriverSlot>,
}

#[derive(Default)]
struct DriverSlot {
    driver: Option<DriverProcess>,
    /// Bumped on every (re)start: sessions of an older generation are stale.
    generation: u64,
    /// Set by a permanent `kill_driver` fault: the driver cannot be restarted (and, for a
    /// driver per session, no new one can be started).
    broken: bool,
    /// Groups of drivers we killed, to reap browsers left in them.
    dead_groups: Vec<u32>,
}

impl Worker {
    /// Whether stressctl runs this worker's driver.
    pub fn is_managed(&self) -> bool {
        matches!(self.endpoint, WorkerEndpoint::Managed)
    }

    /// Whether each session has a driver of its own (managed Firefox: geckodriver serves one
    /// session at a time).
    pub fn driver_per_session(&self) -> bool {
        self.is_managed() && self.browser == BrowserKind::Firefox
    }

    /// The adapter its sessions are launched for now.
    pub fn adapter_mode(&self) -> AdapterMode {
        lock(&self.adapter).unwrap_or_else(|| AdapterMode::first_for(self.adapter_choice))
    }

    /// Whether the adapter is settled (always, but for `auto` before its first session).
    fn adapter_settled(&self) -> bool {
        lock(&self.adapter).is_some()
    }

    /// The GPU name read from `chrome://gpu` for the adapter in use, once known.
    pub fn gpu_name(&self) -> Option<String> {
        let mode = self.adapter_mode();
        lock(&self.gpu_names).iter().find(|(m, _)| *m == mode).and_then(|(_, n)| n.clone())
    }

    /// The adapter class its sessions reported, once one did.
    pub fn hardware_class(&self) -> Option<String> {
        lock(&self.hardware_class).clone()
    }

    /// Whether the adapter class its sessions reported is other than `known` (a slot's gate must
    /// then name another `hardware:<class>` breaker); false while none has been reported. Asked
    /// before every op, so it clones nothing.
    pub fn hardware_class_differs(&self, known: Option<&str>) -> bool {
        lock(&self.hardware_class).as_deref().is_some_and(|c| Some(c) != known)
    }

    /// Records the adapter class a session reported; true when it is new or changed (the
    /// slots' gates must then name the new `hardware:<class>` breaker).
    pub fn set_hardware_class(&self, class: &str) -> bool {
        let mut c = lock(&self.hardware_class);
        if c.as_deref() == Some(class) {
            return false;
        }
        *c = Some(class.to_string());
        true
    }

    fn gpu_name_read(&self, mode: AdapterMode) -> bool {
        lock(&self.gpu_names).iter().any(|(m, _)| *m == mode)
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
    /// Drivers owned by open sessions (geckodriver), for a force stop that cannot wait for the
    /// sessions to be discarded.
    session_drivers: Mutex<HashSet<ProcId>>,
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
                let choice = w.webgpu_adapter.unwrap_or(cfg.webgpu_adapter);
                let settled = match choice {
                    AdapterChoice::Auto => None,
                    c => Some(AdapterMode::first_for(c)),
                };
                Arc::new(Worker {
                    id: w.id.clone(),
                    browser: w.browser,
                    adapter_choice: choice,
                    adapter: Mutex::new(settled),
                    gpu_names: Mutex::default(),
                    hardware_class: Mutex::default(),
                    endpoint: w.endpoint.clone(),
                    inner: tokio::sync::Mutex::new(DriverSlot::default()),
                })
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
            session_drivers: Mutex::default(),
            grids: Default::default(),
        }
    }

    /// The driver binary of `kind`, resolved (a bare name through `PATH` and cargo's bin).
    fn driver_binary(&self, kind: BrowserKind) -> Result<PathBuf, OpError> {
        let configured = match kind {
            BrowserKind::Chromium => &self.cfg.chromedriver,
            BrowserKind::Firefox => &self.cfg.geckodriver,
        };
        resolve_binary(configured).ok_or_else(|| {
            let hint = match kind {
                BrowserKind::Chromium => "apt-get install chromium-driver, or set [browser] chromedriver",
                BrowserKind::Firefox => "cargo install geckodriver --locked (scripts/setup.sh does), or set [browser] geckodriver",
            };
            OpError::new(FailureClass::LaunchFailure, format!("{} not found at {} ({hint})", kind.driver_name(), configured.display()))
        })
    }

    /// Spawns a driver for worker `w` (its shared chromedriver, or a session's geckodriver) and
    /// records it.
    async fn spawn_driver(&self, w: &Worker, broken: bool) -> Result<DriverProcess, OpError> {
        let kind = w.browser;
        let binary = if broken { broken_binary_path(&w.id, kind) } else { self.driver_binary(kind)? };
        let log = self.log_dir.join(format!("{}_{}_{}.log", kind.driver_name(), w.id, self.log_stamp));
        let config_home = self.profiles_dir.join("xdg-config");
        let env = match kind {
            BrowserKind::Chromium => Vec::new(),
            BrowserKind::Firefox => {
                let mut env = w.adapter_mode().firefox_env(Path::new(ICD_DIR));
                // Firefox's crash helper leaves the process group; the run records no crashes anyway
                env.push(("MOZ_CRASHREPORTER_DISABLE".into(), "1".into()));
                env
            }
        };
        let d = DriverProcess::spawn(&DriverSpec { kind, binary: &binary, log_path: &log, config_home: &config_home, env }).await?;
        if let Some(store) = &self.store {
            store.process(ProcessRow {
                pid: d.id.pid,
                start_time: d.id.start_time,
                kind: kind.driver_name(),
                worker: w.id.clone(),
                pgid: d.id.pid,
                marker: format!("--port={}", d.port),
            });
        }
        Ok(d)
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
        let d = self.spawn_driver(w, slot.broken).await?;
        slot.generation += 1;
        tracing::info!(target: "stressctl::browser", worker = %w.id, pid = d.id.pid, port = d.port, generation = slot.generation, "{} started", w.browser.driver_name());
        let ep = Endpoint { url: d.url.clone(), generation: slot.generation, pgid: Some(d.id.pid) };
        slot.driver = Some(d);
        Ok(ep)
    }

    /// Restarts the worker's driver unless it was already restarted since `seen_generation`.
    /// A worker with a driver per session has nothing shared to restart: the next session
    /// starts a fresh driver (or fails to, when it is broken).
    pub async fn restart_driver(&self, w: &Worker, seen_generation: u64) -> Result<(), OpError> {
        if !w.is_managed() {
            return Err(OpError::new(
                FailureClass::ConnectionFailure,
                format!("worker {} is remote: its driver cannot be restarted", w.id),
            ));
        }
        if w.driver_per_session() {
            return match w.inner.lock().await.broken {
                true => Err(OpError::new(
                    FailureClass::LaunchFailure,
                    format!("the {} of worker {} cannot be started", w.browser.driver_name(), w.id),
                )),
                false => Ok(()),
            };
        }
        {
            let mut slot = w.inner.lock().await;
            if slot.generation == seen_generation {
                if let Some(mut d) = slot.driver.take() {
                    tracing::warn!(target: "stressctl::browser", worker = %w.id, pid = d.id.pid, "restarting {}", w.browser.driver_name());
                    self.record_ended(&d.id);
                    d.kill().await;
                    slot.dead_groups.push(d.id.pid);
                }
            }
        }
        self.endpoint(w).await.map(drop)
    }

    /// SIGKILLs the worker's driver process alone (fault injection) — the session's own driver
    /// where each session has one — optionally making it impossible to restart. Returns the pid
    /// killed.
    pub async fn kill_driver(&self, w: &Worker, session: Option<&Session>, permanent: bool) -> Option<u32> {
        let mut slot = w.inner.lock().await;
        if permanent {
            slot.broken = true;
        }
        let d = match session.and_then(|s| s.own_driver.as_ref()) {
            Some(d) => d,
            None => slot.driver.as_ref()?,
        };
        d.id.signal(libc::SIGKILL).then_some(d.id.pid)
    }

    /// Opens a session on `w` for `task`, settling an `auto` adapter on the worker's first one.
    pub async fn open_session(&self, w: &Worker, page_url: &str, task: &TaskSpec) -> Result<Session, OpError> {
        let s = self.open_session_as(w, w.adapter_mode(), page_url, task).await?;
        if w.adapter_settled() {
            return Ok(s);
        }
        // auto: keep the hardware adapter if the page finds one, else settle on software
        let found = session::probe_adapter(&s.client, AdapterMode::Hardware).await;
        let mode = {
            let mut settled = lock(&w.adapter);
            // another session may have settled it meanwhile: its answer stands
            *settled.get_or_insert(if found.is_ok() { AdapterMode::Hardware } else { AdapterMode::Software })
        };
        match &found {
            Ok(()) => {
                tracing::info!(target: "stressctl::browser", worker = %w.id, "webgpu_adapter auto: using the {} adapter", mode.as_str())
            }
            Err(why) => {
                tracing::warn!(target: "stressctl::browser", worker = %w.id, "webgpu_adapter auto: {why}; using the {} adapter", mode.as_str())
            }
        }
        if mode == s.adapter {
            return Ok(s);
        }
        self.discard(s).await;
        self.open_session_as(w, mode, page_url, task).await
    }

    async fn open_session_as(&self, w: &Worker, adapter: AdapterMode, page_url: &str, task: &TaskSpec) -> Result<Session, OpError> {
        let launch = Launch { kind: w.browser, adapter, cfg: &self.cfg };
        let (ep, own_driver) = if w.driver_per_session() {
            let broken = w.inner.lock().await.broken;
            let d = self.spawn_driver(w, broken).await?;
            (Endpoint { url: d.url.clone(), generation: 0, pgid: Some(d.id.pid) }, Some(d))
        } else {
            (self.endpoint(w).await?, None)
        };
        // the GPU's name, once per worker, before the test page (Chromium only)
        let read_gpu_name = w.browser == BrowserKind::Chromium && !w.gpu_name_read(adapter);
        let mut s = match session::open(&ep, &w.id, &launch, &self.profiles_dir, page_url, task).await {
            Ok(s) => s,
            Err(e) => {
                if let Some(mut d) = own_driver {
                    self.record_ended(&d.id);
                    d.kill().await;
                }
                return Err(e);
            }
        };
        if let Some(d) = own_driver {
            lock(&self.session_drivers).insert(d.id);
            s.own_driver = Some(d);
        }
        if read_gpu_name {
            let name = session::chromium_gpu_name(&s.client).await;
            {
                let mut names = lock(&w.gpu_names);
                if !names.iter().any(|(m, _)| *m == adapter) {
                    names.push((adapter, name));
                }
            }
            let url = match task {
                TaskSpec::Page { url, .. } => url.as_str(),
                _ => page_url,
            };
            if let Err(e) = s.client.goto(url).await {
                let e = crate::recovery::classify_cmd_error(e);
                self.discard(s).await;
                return Err(OpError::new(e.class, format!("loading the test page: {}", e.message)));
            }
        }
        if let (Some(store), Some(b), Some(pgid), Some(dir)) = (&self.store, s.browser, ep.pgid, &s.user_data_dir) {
            store.process(ProcessRow {
                pid: b.pid,
                start_time: b.start_time,
                kind: "browser",
                worker: w.id.clone(),
                pgid,
                marker: dir.display().to_string(),
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
        if let Some(s) = self.checkout_showing(w, page_url, task).await {
            return Ok(s);
        }
        self.open_session(w, page_url, task).await
    }

    /// An idle session of `w` moved to the page `task` runs in ([`Session::show`]); one that
    /// cannot be moved is discarded (None: open a new one).
    pub async fn checkout_showing(&self, w: &Worker, page_url: &str, task: &TaskSpec) -> Option<Session> {
        let mut s = self.checkout(w).await?;
        match s.show(page_url, task).await {
            Ok(()) => Some(s),
            Err(e) => {
                tracing::debug!(target: "stressctl::browser", worker = %w.id, session = %s.label, "a kept session could not load its next task's page ({}): opening a new one", e.message);
                self.discard(s).await;
                None
            }
        }
    }

    /// Discards a session (closes it, kills its browser and its own driver, removes its
    /// profile).
    pub async fn discard(&self, s: Session) {
        let b = s.browser;
        let d = s.own_driver.as_ref().map(|d| d.id);
        self.grids.forget(&s.worker, s.grid.as_ref());
        s.discard().await;
        if let Some(b) = b {
            lock(&self.live).remove(&b);
            lock(&self.recycle).remove(&b);
            self.record_ended(&b);
        }
        if let Some(d) = d {
            lock(&self.session_drivers).remove(&d);
            self.record_ended(&d);
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
            if let Some(d) = s.own_driver.as_ref().map(|d| d.id) {
                lock(&self.session_drivers).remove(&d);
                self.record_ended(&d);
            }
            self.grids.forget(&s.worker, s.grid.as_ref());
            closing.spawn(s.discard());
        }
        while closing.join_next().await.is_some() {}
        self.grids.delete_leftovers(&self.profiles_dir).await; // grid hook: no session of ours is left on a Grid
        if !self.grids.all().is_empty() {
            // a Grid node on this machine kept this run's Chromium profiles here (named by the run
            // id: nothing else is there); on other machines the node's own /tmp cleanup does it
            let dir = super::grid_status::node_profile_dir(&super::grid_status::run_tag(&self.profiles_dir), "");
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::debug!(target: "stressctl::browser", dir, "cannot remove the Grid sessions' profiles: {e}");
                }
            }
        }
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
        for d in lock(&self.session_drivers).drain() {
            d.signal_group(libc::SIGKILL);
            d.signal(libc::SIGKILL);
        }
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
        let marker = self.profiles_dir.display().to_string();
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
