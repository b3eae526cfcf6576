//! The SQLite store: the source of truth for a campaign.
//!
//! One file per campaign (`<state-dir>/runs/<id>/store.sqlite`, WAL). Everything is written by one
//! writer thread that batches messages into transactions committed at least every
//! [`COMMIT_INTERVAL`]; readers (reports, resume, `status`) open their own connections. A write
//! error (disk full, I/O error) is fatal for the writer: the open transaction is rolled back,
//! nothing already committed is lost, and the campaign is told to stop gracefully.

mod read;
mod schema;

pub use read::*;
pub use schema::SCHEMA_VERSION;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Upper bound on the time between a write and its commit.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(500);
const CHANNEL_CAPACITY: usize = 16 * 1024;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("store {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// The error.
        source: rusqlite::Error,
    },
    /// Written by a newer stressctl.
    #[error("store {path} has schema version {found}, newer than this stressctl understands ({supported}); use the stressctl that wrote it or a newer one")]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// Ours.
        supported: i64,
    },
    /// Not a stressctl store, or damaged.
    #[error("store {path} is corrupt or not a stressctl store: {detail}; the reports already written in results_summary/ are unaffected")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// No store for that campaign.
    #[error("no store for campaign {0}: nothing was recorded under that id (see `stressctl report` for the list)")]
    NotFound(String),
    /// File system.
    #[error("store {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The writer stopped after a fatal error.
    #[error("store writer failed: {0}")]
    WriterFailed(String),
}

pub use crate::fmt::rfc3339;

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// One window of op results of one session.
#[derive(Debug, Clone)]
pub struct WindowRow {
    /// Phase index.
    pub phase_idx: u32,
    /// Worker id (or `synthetic`).
    pub worker: String,
    /// Session slot in the phase.
    pub slot: u32,
    /// Task kind.
    pub task_kind: &'static str,
    /// Window start, ms since epoch.
    pub start_ms: i64,
    /// Window end, ms since epoch.
    pub end_ms: i64,
    /// Counts.
    pub attempted: u64,
    /// Counts.
    pub succeeded: u64,
    /// Counts.
    pub failed: u64,
    /// Counts.
    pub verified: u64,
    /// `{class: count}` JSON.
    pub errors: String,
    /// V2-serialized histogram.
    pub hist: Vec<u8>,
}

/// A guardian sample.
#[derive(Debug, Clone)]
pub struct SampleRow {
    /// When.
    pub at: SystemTime,
    /// Phase running (if any).
    pub phase_idx: Option<u32>,
    /// System CPU %.
    pub cpu: f64,
    /// Memory %.
    pub memory: f64,
    /// Disk %.
    pub disk: f64,
    /// RSS of the campaign's process tree.
    pub tree_rss_bytes: u64,
    /// CPU % of the tree (100 = one core).
    pub tree_cpu: f64,
    /// Processes in the tree.
    pub tree_processes: u32,
    /// Health score.
    pub health: f64,
    /// Violations in this sample (JSON array).
    pub violations: String,
}

/// An event (also appended to `events.jsonl`).
#[derive(Debug, Clone)]
pub struct EventRow {
    /// When.
    pub at: SystemTime,
    /// e.g. `phase_started`, `op_failed`, `breaker_transition`.
    pub kind: &'static str,
    /// `<campaign>/<phase>/<worker>/<op-seq>` (shorter for coarser events).
    pub corr: String,
    /// Phase (if any).
    pub phase_idx: Option<u32>,
    /// One line for humans.
    pub message: String,
    /// Structured details.
    pub data: Value,
}

/// Phase start record.
#[derive(Debug, Clone)]
pub struct PhaseStart {
    /// Index.
    pub idx: u32,
    /// Name.
    pub name: String,
    /// Stress level.
    pub stress_level: &'static str,
    /// Task kind.
    pub task_kind: &'static str,
    /// Planned sessions.
    pub sessions_planned: u32,
    /// Sessions actually run.
    pub sessions: u32,
    /// Planned duration.
    pub duration_planned: Duration,
    /// Criteria.
    pub min_success_rate: f64,
    /// Criteria.
    pub max_p95_ms: u64,
    /// Notes (scaled down, delayed, resumed…).
    pub notes: Vec<String>,
    /// When.
    pub started_at: SystemTime,
}

/// A process the campaign started (for reaping).
#[derive(Debug, Clone)]
pub struct ProcessRow {
    /// Pid.
    pub pid: u32,
    /// Start time in clock ticks since boot (identity across pid reuse).
    pub start_time: u64,
    /// `chromedriver` or `browser`.
    pub kind: &'static str,
    /// Worker id.
    pub worker: String,
    /// Process group.
    pub pgid: u32,
    /// A unique marker in its command line (user-data-dir, port).
    pub marker: String,
}

enum Msg {
    Window(WindowRow),
    Sample(SampleRow),
    Event(EventRow),
    PhaseStarted(PhaseStart),
    PhaseProgress { idx: u32, elapsed_ms: u64 },
    PhaseEnded { idx: u32, status: &'static str, ended_at: SystemTime, elapsed_ms: u64 },
    TaskInfo { phase_idx: u32, task_kind: &'static str, key: String, value: Value },
    Process(ProcessRow),
    ProcessEnded { pid: u32, start_time: u64 },
    CampaignEnded { outcome: String, stop_reason: Option<String>, ended_at: SystemTime },
    CampaignResumed { at: SystemTime },
    Flush(SyncSender<Result<(), String>>),
    Shutdown,
}

/// Called (from the writer thread) when writing fails for good.
type FatalHook = Box<dyn Fn(String) + Send>;

struct Shared {
    fatal: Mutex<Option<String>>,
    on_fatal: Mutex<Option<FatalHook>>,
    dropped: AtomicU64,
}

/// Handle to the writer thread. Cheap to clone; sends never block for long (bounded channel).
#[derive(Clone)]
pub struct Store {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
    path: PathBuf,
}

/// Campaign record written when a store is created.
#[derive(Debug, Clone)]
pub struct CampaignRecord {
    /// Id.
    pub id: String,
    /// Profile name.
    pub profile: String,
    /// Where the config came from.
    pub config_source: String,
    /// The config text (resume re-parses it).
    pub config_text: String,
    /// Start.
    pub started_at: SystemTime,
    /// Output dir of the reports.
    pub output_dir: PathBuf,
}

/// The path of a campaign's store.
pub fn store_path(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("runs").join(id).join("store.sqlite")
}

fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite { path: path.to_path_buf(), source }
}

impl Store {
    /// Creates a new store for a campaign and starts its writer thread.
    pub fn create(path: &Path, rec: &CampaignRecord, events_jsonl: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
        }
        let conn = Connection::open(path).map_err(sqlite_err(path))?;
        schema::init(&conn).map_err(sqlite_err(path))?;
        conn.execute(
            "INSERT INTO campaign (id, profile, config_source, config_text, started_at, output_dir) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![rec.id, rec.profile, rec.config_source, rec.config_text, rfc3339(rec.started_at), rec.output_dir.display().to_string()],
        )
        .map_err(sqlite_err(path))?;
        Store::start(path, conn, events_jsonl)
    }

    /// Reopens an existing store for writing (resume).
    pub fn reopen(path: &Path, events_jsonl: &Path) -> Result<Store, StoreError> {
        let conn = open_checked(path, false)?;
        Store::start(path, conn, events_jsonl)
    }

    fn start(path: &Path, conn: Connection, events_jsonl: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = events_jsonl.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
        }
        let jsonl = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(events_jsonl)
            .map_err(|source| StoreError::Io { path: events_jsonl.to_path_buf(), source })?;
        let (tx, rx) = mpsc::sync_channel(CHANNEL_CAPACITY);
        let shared = Arc::new(Shared { fatal: Mutex::new(None), on_fatal: Mutex::new(None), dropped: AtomicU64::new(0) });
        let sh = shared.clone();
        let p = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, rx, sh, BufWriter::new(jsonl), p))
            .map_err(|source| StoreError::Io { path: path.to_path_buf(), source })?;
        Ok(Store { tx, shared, thread: Arc::new(Mutex::new(Some(thread))), path: path.to_path_buf() })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Called once (from the writer thread) if writing fails for good.
    pub fn on_fatal(&self, f: impl Fn(String) + Send + 'static) {
        let mut g = self.shared.on_fatal.lock().unwrap_or_else(|e| e.into_inner());
        *g = Some(Box::new(f));
        // if it already failed, tell at once
        if let Some(msg) = self.fatal_error() {
            if let Some(cb) = g.as_ref() {
                cb(msg);
            }
        }
    }

    /// The fatal write error, if any.
    pub fn fatal_error(&self) -> Option<String> {
        self.shared.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Messages dropped after a fatal error.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    fn send(&self, m: Msg) {
        if self.tx.send(m).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records a window of op results.
    pub fn window(&self, w: WindowRow) {
        self.send(Msg::Window(w));
    }
    /// Records a resource sample.
    pub fn sample(&self, s: SampleRow) {
        self.send(Msg::Sample(s));
    }
    /// Records an event.
    pub fn event(&self, e: EventRow) {
        self.send(Msg::Event(e));
    }
    /// Records a phase start.
    pub fn phase_started(&self, p: PhaseStart) {
        self.send(Msg::PhaseStarted(p));
    }
    /// Checkpoint: how far the phase is.
    pub fn phase_progress(&self, idx: u32, elapsed: Duration) {
        self.send(Msg::PhaseProgress { idx, elapsed_ms: elapsed.as_millis() as u64 });
    }
    /// Records a phase end (`completed`, `stopped`).
    pub fn phase_ended(&self, idx: u32, status: &'static str, elapsed: Duration) {
        self.send(Msg::PhaseEnded { idx, status, ended_at: SystemTime::now(), elapsed_ms: elapsed.as_millis() as u64 });
    }
    /// Records task info (adapter etc.) for a phase.
    pub fn task_info(&self, phase_idx: u32, task_kind: &'static str, key: impl Into<String>, value: Value) {
        self.send(Msg::TaskInfo { phase_idx, task_kind, key: key.into(), value });
    }
    /// Records a process the campaign started.
    pub fn process(&self, p: ProcessRow) {
        self.send(Msg::Process(p));
    }
    /// Marks a recorded process as ended.
    pub fn process_ended(&self, pid: u32, start_time: u64) {
        self.send(Msg::ProcessEnded { pid, start_time });
    }
    /// Records the campaign's end.
    pub fn campaign_ended(&self, outcome: &str, stop_reason: Option<String>) {
        self.send(Msg::CampaignEnded { outcome: outcome.to_string(), stop_reason, ended_at: SystemTime::now() });
    }
    /// Records that a campaign was resumed (clears its end).
    pub fn campaign_resumed(&self) {
        self.send(Msg::CampaignResumed { at: SystemTime::now() });
    }

    /// Commits everything sent so far; returns the writer's fatal error if there is one.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(tx)).is_err() {
            return Err(StoreError::WriterFailed(self.fatal_error().unwrap_or_else(|| "writer stopped".into())));
        }
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::WriterFailed(e)),
            Err(_) => Err(StoreError::WriterFailed(self.fatal_error().unwrap_or_else(|| "writer stopped".into()))),
        }
    }

    /// Flushes and stops the writer thread (idempotent; other clones become inert).
    pub fn close(&self) -> Result<(), StoreError> {
        let r = self.flush();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = self.tx.send(Msg::Shutdown);
            let _ = h.join();
        }
        r
    }
}

/// Opens an existing store, checking its schema version and integrity.
pub fn open_checked(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Io { path: path.to_path_buf(), source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file") });
    }
    let flags = if read_only {
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).map_err(sqlite_err(path))?;
    let corrupt = |detail: String| StoreError::Corrupt { path: path.to_path_buf(), detail };
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| corrupt(e.to_string()))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema { path: path.to_path_buf(), found: version, supported: SCHEMA_VERSION });
    }
    let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(|e| corrupt(e.to_string()))?;
    if check != "ok" {
        return Err(corrupt(check));
    }
    let has_campaign: Option<String> = conn
        .query_row("SELECT name FROM sqlite_master WHERE type='table' AND name='campaign'", [], |r| r.get(0))
        .optional()
        .map_err(|e| corrupt(e.to_string()))?;
    if has_campaign.is_none() || version < 1 {
        return Err(corrupt("no campaign table".into()));
    }
    if !read_only {
        schema::pragmas(&conn).map_err(sqlite_err(path))?;
    }
    Ok(conn)
}

fn writer_loop(mut conn: Connection, rx: Receiver<Msg>, shared: Arc<Shared>, mut jsonl: BufWriter<File>, path: PathBuf) {
    let mut pending: Vec<Msg> = Vec::with_capacity(1024);
    let mut failed = false;
    loop {
        // wait for the first message, then gather for at most COMMIT_INTERVAL
        let first = match rx.recv() {
            Ok(m) => m,
            Err(_) => break,
        };
        let deadline = Instant::now() + COMMIT_INTERVAL;
        let mut flushes = Vec::new();
        let mut stop = false;
        let push = |m: Msg, pending: &mut Vec<Msg>, flushes: &mut Vec<SyncSender<Result<(), String>>>, stop: &mut bool| match m {
            Msg::Flush(reply) => flushes.push(reply),
            Msg::Shutdown => *stop = true,
            other => pending.push(other),
        };
        push(first, &mut pending, &mut flushes, &mut stop);
        while flushes.is_empty() && !stop && pending.len() < 4096 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match rx.recv_timeout(deadline - now) {
                Ok(m) => push(m, &mut pending, &mut flushes, &mut stop),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    stop = true;
                    break;
                }
            }
        }
        let result = if failed {
            shared.dropped.fetch_add(pending.len() as u64, Ordering::Relaxed);
            pending.clear();
            Err(shared.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default())
        } else {
            match commit(&mut conn, &mut pending, &mut jsonl) {
                Ok(()) => Ok(()),
                Err(e) => {
                    failed = true;
                    let msg = format!("writing {} failed: {e}; results committed before this point are safe", path.display());
                    *shared.fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg.clone());
                    if let Some(cb) = shared.on_fatal.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                        cb(msg.clone());
                    }
                    pending.clear();
                    Err(msg)
                }
            }
        };
        for f in flushes {
            let _ = f.send(result.clone());
        }
        if stop {
            break;
        }
    }
    let _ = jsonl.flush();
    // checkpoint the WAL so the store is one self-contained file at rest
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
}

fn commit(conn: &mut Connection, pending: &mut Vec<Msg>, jsonl: &mut BufWriter<File>) -> Result<(), String> {
    if pending.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    for m in pending.drain(..) {
        apply(&tx, m, jsonl).map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())?;
    jsonl.flush().map_err(|e| format!("events.jsonl: {e}"))?;
    Ok(())
}

fn opt_idx(i: Option<u32>) -> Option<i64> {
    i.map(|v| v as i64)
}

fn apply(tx: &rusqlite::Transaction, m: Msg, jsonl: &mut BufWriter<File>) -> rusqlite::Result<()> {
    match m {
        Msg::Window(w) => {
            tx.prepare_cached(
                "INSERT INTO windows (phase_idx, worker, slot, task_kind, start_ms, end_ms, attempted, succeeded, failed, verified, errors, hist)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                w.phase_idx, w.worker, w.slot, w.task_kind, w.start_ms, w.end_ms, w.attempted as i64, w.succeeded as i64,
                w.failed as i64, w.verified as i64, w.errors, w.hist
            ])?;
        }
        Msg::Sample(s) => {
            tx.prepare_cached(
                "INSERT INTO samples (at, at_ms, phase_idx, cpu, memory, disk, tree_rss, tree_cpu, tree_processes, health, violations)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                rfc3339(s.at),
                unix_ms(s.at),
                opt_idx(s.phase_idx),
                s.cpu,
                s.memory,
                s.disk,
                s.tree_rss_bytes as i64,
                s.tree_cpu,
                s.tree_processes,
                s.health,
                s.violations
            ])?;
        }
        Msg::Event(e) => {
            let at = rfc3339(e.at);
            let data = e.data.to_string();
            tx.prepare_cached("INSERT INTO events (at, kind, corr, phase_idx, message, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
                .execute(params![at, e.kind, e.corr, opt_idx(e.phase_idx), e.message, data])?;
            let line =
                serde_json::json!({"at": at, "kind": e.kind, "corr": e.corr, "phase": e.phase_idx, "message": e.message, "data": e.data});
            if let Err(e) = writeln!(jsonl, "{line}") {
                return Err(rusqlite::Error::ToSqlConversionFailure(format!("cannot append to events.jsonl: {e}").into()));
            }
        }
        Msg::PhaseStarted(p) => {
            tx.execute(
                "INSERT INTO phases (idx, name, stress_level, task_kind, sessions_planned, sessions, duration_planned_ms, started_at, elapsed_ms, status, min_success_rate, max_p95_ms, notes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 'running', ?9, ?10, ?11)
                 ON CONFLICT(idx) DO UPDATE SET status='running', sessions=excluded.sessions,
                   notes=json_insert(phases.notes, '$[#]', json_extract(excluded.notes, '$[0]'))",
                params![
                    p.idx, p.name, p.stress_level, p.task_kind, p.sessions_planned, p.sessions, p.duration_planned.as_millis() as i64,
                    rfc3339(p.started_at), p.min_success_rate, p.max_p95_ms as i64, serde_json::to_string(&p.notes).unwrap_or_else(|_| "[]".into())
                ],
            )?;
        }
        Msg::PhaseProgress { idx, elapsed_ms } => {
            tx.prepare_cached("UPDATE phases SET elapsed_ms = ?2 WHERE idx = ?1 AND status = 'running'")?
                .execute(params![idx, elapsed_ms as i64])?;
        }
        Msg::PhaseEnded { idx, status, ended_at, elapsed_ms } => {
            tx.execute(
                "UPDATE phases SET status = ?2, ended_at = ?3, elapsed_ms = ?4 WHERE idx = ?1",
                params![idx, status, rfc3339(ended_at), elapsed_ms as i64],
            )?;
        }
        Msg::TaskInfo { phase_idx, task_kind, key, value } => {
            tx.execute(
                "INSERT INTO task_info (phase_idx, task_kind, key, value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(phase_idx, task_kind, key) DO UPDATE SET value = excluded.value",
                params![phase_idx, task_kind, key, value.to_string()],
            )?;
        }
        Msg::Process(p) => {
            tx.execute(
                "INSERT OR REPLACE INTO processes (pid, start_time, kind, worker, pgid, marker, started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![p.pid, p.start_time as i64, p.kind, p.worker, p.pgid, p.marker, rfc3339(SystemTime::now())],
            )?;
        }
        Msg::ProcessEnded { pid, start_time } => {
            tx.execute(
                "UPDATE processes SET ended_at = ?3 WHERE pid = ?1 AND start_time = ?2",
                params![pid, start_time as i64, rfc3339(SystemTime::now())],
            )?;
        }
        Msg::CampaignEnded { outcome, stop_reason, ended_at } => {
            tx.execute(
                "UPDATE campaign SET outcome = ?1, stop_reason = ?2, ended_at = ?3",
                params![outcome, stop_reason, rfc3339(ended_at)],
            )?;
        }
        Msg::CampaignResumed { at } => {
            tx.execute(
                "UPDATE campaign SET outcome = NULL, ended_at = NULL, resumes = resumes + 1, last_resumed_at = ?1",
                params![rfc3339(at)],
            )?;
        }
        Msg::Flush(_) | Msg::Shutdown => {}
    }
    Ok(())
}
