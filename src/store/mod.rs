//! The SQLite store: the source of truth for a campaign.
//!
//! One file per campaign (`<state-dir>/runs/<id>/store.sqlite`, WAL). Everything is written by one
//! writer thread that batches messages into transactions committed at least every
//! [`COMMIT_INTERVAL`]; readers (reports, resume, `status`) open their own connections. A write
//! error (disk full, I/O error) is fatal for the writer: the open transaction is rolled back,
//! nothing already committed is lost, and the campaign is told to stop gracefully.
//!
//! Every row is written with a checksum and reads verify it ([`integrity`]): a damaged store gives
//! an error naming the table and rows, never a report with wrong numbers.

mod campaigns;
mod events;
mod follow;
mod integrity;
mod open;
mod phases;
mod processes;
mod reader;
mod samples;
mod schema;
mod series;
#[cfg(test)]
mod tests;

pub use campaigns::{list_campaigns, CampaignInfo};
pub use events::EventInfo;
pub use follow::{StoredSample, StoredWindow};
pub use open::open_checked;
pub use phases::{PhaseInfo, WindowPoint};
pub use processes::ProcessRecord;
pub use reader::StoreReader;
pub use samples::{HostAgg, ResourceAgg};
pub use schema::{READABLE_SCHEMA_VERSION, SCHEMA_VERSION};
pub use series::{BrowserKey, WindowBucket};

use integrity::{insert_sealed, reseal, Ledger};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection};
use schema::{CAMPAIGN, EVENTS, PHASES, PROCESSES, SAMPLES, TASK_INFO, WINDOWS};
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

/// Store errors. Each displays as one line that names the real cause and what to do; details
/// (e.g. SQLite's list of damaged pages) go to the log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no, for a reason none of the variants below names (busy, out of memory, …).
    #[error("store {path}: {}", open::one_line(&source.to_string()))]
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
    /// Written by an older stressctl: version 1 (no record checksums) is refused rather than read
    /// unverified; version 2 (no host figures in its samples) is read, but not resumed, since its
    /// rows and the new ones would be checksummed over different columns.
    #[error("store {path} has schema version {found}, older than this stressctl's {supported}{}", older_note(*found))]
    OlderSchema {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// Ours.
        supported: i64,
    },
    /// Damaged: SQLite found broken pages, or a record or index does not hold what was written.
    #[error("store {path} is corrupt: {detail}; no report was built from it{}", reports_note(reports))]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is damaged (one line: the table and the rows' ids where known).
        detail: String,
        /// The campaign's reports directory, when the store still says which it is.
        reports: Option<PathBuf>,
    },
    /// Not an SQLite file, or an SQLite file that stressctl did not write.
    #[error("{path} is not a stressctl store: {detail}")]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// The file or its directory may not be opened by this user.
    #[error(
        "store {path}: permission denied; run stressctl as the user that owns it, or give this user access to the file and its directory"
    )]
    PermissionDenied {
        /// The file.
        path: PathBuf,
    },
    /// The store cannot be written (read-only file system), or read where it is.
    #[error("store {path} cannot be used here: {detail}")]
    ReadOnly {
        /// The file.
        path: PathBuf,
        /// Why, and what to do.
        detail: String,
    },
    /// The process has no file descriptor left; nothing is wrong with the store.
    #[error("cannot open store {path}: too many open files (the process reached its descriptor limit, see `ulimit -n`); the store itself is not damaged")]
    TooManyOpenFiles {
        /// The file.
        path: PathBuf,
    },
    /// No store for that campaign (bad input: see [`StoreError::is_bad_input`]).
    #[error("no store for campaign {0}: nothing was recorded under that id (see `stressctl report --list`)")]
    NotFound(String),
    /// A campaign id that is not one (bad input: see [`StoreError::is_bad_input`]).
    #[error("invalid campaign id {id:?}: {reason}")]
    InvalidId {
        /// What was given.
        id: String,
        /// Why it is refused.
        reason: String,
    },
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

impl StoreError {
    /// True when the error is the user's input (an unknown or malformed campaign id): exit code 2,
    /// where every other store error is a failure (exit 1).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, StoreError::NotFound(_) | StoreError::InvalidId { .. })
    }
}

/// What to do with a store of an older schema `found`.
fn older_note(found: i64) -> &'static str {
    if found >= READABLE_SCHEMA_VERSION {
        ": it can be read (`stressctl report`, `stressctl dashboard`) but not resumed; resume it with the stressctl that wrote it"
    } else {
        " (no record checksums); rebuild its reports with the stressctl that wrote it"
    }
}

fn reports_note(reports: &Option<PathBuf>) -> String {
    match reports {
        Some(dir) => format!("; the reports already written in {} are unaffected", dir.display()),
        None => String::new(),
    }
}

/// Longest campaign id accepted.
pub const MAX_CAMPAIGN_ID_LEN: usize = 128;

/// Checks that `id` can name a campaign: it becomes a directory name under the state and output
/// directories, so it must stay one path component. Accepted: 1 to [`MAX_CAMPAIGN_ID_LEN`] ASCII
/// letters, digits, `.`, `_` and `-`, not starting with `.` (so neither `..` nor a hidden
/// directory). Generated ids (`20261123T172546Z-3f9a`, `check-…`) always pass; the error says why
/// another one does not.
pub fn validate_campaign_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("it is empty".into());
    }
    if let Some(c) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("{c:?} is not allowed (ids are letters, digits, '.', '_' and '-', e.g. 20261123T172546Z-3f9a)"));
    }
    if id.starts_with('.') {
        return Err("it starts with '.'".into());
    }
    if id.len() > MAX_CAMPAIGN_ID_LEN {
        return Err(format!("it is longer than {MAX_CAMPAIGN_ID_LEN} characters"));
    }
    Ok(())
}

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
    /// V2-serialized histogram of the round-trip latencies.
    pub hist: Vec<u8>,
    /// V2-serialized histogram of the in-page latencies (empty histogram when the task has none).
    pub hist_in_page: Vec<u8>,
    /// Browser console errors and uncaught exceptions the page captured during these ops.
    pub console: u64,
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
    /// What was left for the host (schema 3; absent from older stores).
    pub host: HostFigures,
    /// The RSS of each live local browser (schema 6; empty in older stores and for remote
    /// workers): the drift analysis follows each browser's memory between recycles.
    pub browsers: Vec<BrowserRss>,
}

/// One browser's RSS in a guardian sample: the browser process (pid and start time, so a reused
/// pid is another browser) and the RSS of its whole process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BrowserRss {
    /// The browser's pid.
    pub pid: u32,
    /// Its start time (`/proc/<pid>/stat`).
    pub start_time: u64,
    /// RSS of its process tree, bytes.
    pub rss_bytes: u64,
}

impl BrowserRss {
    /// The stored form: a compact JSON array of `[pid, start_time, rss_bytes]`.
    pub fn encode(all: &[BrowserRss]) -> String {
        let rows: Vec<(u32, u64, u64)> = all.iter().map(|b| (b.pid, b.start_time, b.rss_bytes)).collect();
        serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into())
    }

    /// The stored form read back.
    pub fn decode(s: &str) -> Result<Vec<BrowserRss>, serde_json::Error> {
        let rows: Vec<(u32, u64, u64)> = serde_json::from_str(s)?;
        Ok(rows.into_iter().map(|(pid, start_time, rss_bytes)| BrowserRss { pid, start_time, rss_bytes }).collect())
    }
}

/// The host's side of a guardian sample: the reservation's CPU cap, what the campaign and the rest
/// of the host used, and the host's stalls. Stored so the report can show the host's headroom over
/// time, not only the verdict of each sample. Percentages are of all cores (CPU) or of time (PSI).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct HostFigures {
    /// The campaign's CPU cap while a reservation is in force (None: unconfined).
    pub cpu_cap: Option<f64>,
    /// CPU of the campaign (its cgroup or process tree, plus the daemon).
    pub campaign_cpu: f64,
    /// CPU used outside the campaign.
    pub host_cpu: f64,
    /// Run-queue wait of the processes outside the campaign (None: not measured, unconfined).
    pub host_wait: Option<f64>,
    /// `/proc/pressure/cpu` some avg10 (None: the kernel has no PSI).
    pub psi_cpu: Option<f64>,
    /// `/proc/pressure/memory` full avg10.
    pub psi_memory: Option<f64>,
    /// `/proc/pressure/io` full avg10.
    pub psi_io: Option<f64>,
}

impl HostFigures {
    /// The host figures of a guardian sample, rounded to 0.1 (what a chart or a summary shows).
    pub fn of(s: &crate::guardian::ResourceSample) -> HostFigures {
        let r1 = |v: f64| (v * 10.0).round() / 10.0;
        HostFigures {
            cpu_cap: s.reservation.as_ref().and_then(|r| r.cpu_cap_percent).map(r1),
            campaign_cpu: r1(s.campaign_cpu_percent),
            host_cpu: r1(s.host_cpu_percent),
            host_wait: s.confined().then(|| r1(s.host_wait_percent)),
            psi_cpu: s.pressure.map(|p| r1(p.cpu.some)),
            psi_memory: s.pressure.map(|p| r1(p.memory.full)),
            psi_io: s.pressure.map(|p| r1(p.io.full)),
        }
    }

    /// The host's CPU demand (use + wait), what the guardian's host rule judges while confined.
    pub fn demand(&self) -> f64 {
        (self.host_cpu + self.host_wait.unwrap_or(0.0)).clamp(0.0, 100.0)
    }

    /// The host's stall: the larger of memory and io `full` pressure (the pressure rule's value).
    pub fn stall(&self) -> Option<f64> {
        match (self.psi_memory, self.psi_io) {
            (Some(m), Some(i)) => Some(m.max(i)),
            (m, i) => m.or(i),
        }
    }
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

#[cfg(test)]
impl CampaignRecord {
    /// A campaign of the embedded `quick` profile: what the unit tests that need a store start.
    pub(crate) fn quick_for_test(id: &str, started_at: SystemTime, output_dir: &Path) -> CampaignRecord {
        CampaignRecord {
            id: id.into(),
            profile: "quick".into(),
            config_source: "<profile quick>".into(),
            config_text: crate::config::QUICK_PROFILE.into(),
            started_at,
            output_dir: output_dir.to_path_buf(),
        }
    }
}

/// The path of a campaign's store; an invalid id ([`validate_campaign_id`]) is refused, so an id
/// from the command line can never name a file outside `<state-dir>/runs/`.
pub fn store_path(state_dir: &Path, id: &str) -> Result<PathBuf, StoreError> {
    validate_campaign_id(id).map_err(|reason| StoreError::InvalidId { id: id.to_string(), reason })?;
    Ok(state_dir.join("runs").join(id).join("store.sqlite"))
}

fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| open::classify(path, e, Ok(()), None)
}

/// One line of `events.jsonl` for an event as stored: the writer appends exactly this, and
/// `report` rebuilds the file from the store with it, so both are byte-identical. `data` is the
/// stored JSON text; the keys are in sorted order (what `serde_json` gives a map).
pub fn event_jsonl_line(at: &str, kind: &str, corr: &str, phase: Option<i64>, message: &str, data: &str) -> String {
    let s = |v: &str| serde_json::Value::from(v).to_string();
    let phase = phase.map(|p| p.to_string()).unwrap_or_else(|| "null".into());
    format!("{{\"at\":{},\"corr\":{},\"data\":{data},\"kind\":{},\"message\":{},\"phase\":{phase}}}", s(at), s(corr), s(kind), s(message))
}

impl Store {
    /// Creates a new store for a campaign and starts its writer thread.
    pub fn create(path: &Path, rec: &CampaignRecord, events_jsonl: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
        }
        let conn = Connection::open(path).map_err(|e| open::classify(path, e, open::probe(path, true), None))?;
        schema::init(&conn).map_err(sqlite_err(path))?;
        conn.execute(
            "INSERT INTO campaign (id, profile, config_source, config_text, started_at, output_dir) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![rec.id, rec.profile, rec.config_source, rec.config_text, rfc3339(rec.started_at), rec.output_dir.display().to_string()],
        )
        .and_then(|_| reseal(&conn, &CAMPAIGN, "1", []))
        .map_err(sqlite_err(path))?;
        Store::start(path, conn, events_jsonl)
    }

    /// Reopens an existing store for writing (resume).
    pub fn reopen(path: &Path, events_jsonl: &Path) -> Result<Store, StoreError> {
        let conn = open_checked(path, false)?;
        Store::start(path, conn, events_jsonl)
    }

    fn start(path: &Path, conn: Connection, events_jsonl: &Path) -> Result<Store, StoreError> {
        let ledger = match Ledger::load(&conn, &[&WINDOWS, &SAMPLES, &EVENTS]).map_err(sqlite_err(path))? {
            Ok(l) => l,
            Err(bad) => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: format!("table row_groups: rows {} fail their checksums", integrity::id_list(&bad)),
                    reports: open::recorded_output_dir(&conn),
                })
            }
        };
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
            .spawn(move || writer_loop(conn, ledger, rx, sh, BufWriter::new(jsonl), p))
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

fn writer_loop(
    mut conn: Connection,
    mut ledger: Ledger,
    rx: Receiver<Msg>,
    shared: Arc<Shared>,
    mut jsonl: BufWriter<File>,
    path: PathBuf,
) {
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
            match commit(&mut conn, &mut ledger, &mut pending, &mut jsonl) {
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

fn commit(conn: &mut Connection, ledger: &mut Ledger, pending: &mut Vec<Msg>, jsonl: &mut BufWriter<File>) -> Result<(), String> {
    if pending.is_empty() {
        return Ok(());
    }
    let phases = pending.iter().any(|m| matches!(m, Msg::PhaseStarted(_) | Msg::PhaseProgress { .. } | Msg::PhaseEnded { .. }));
    let task_info = pending.iter().any(|m| matches!(m, Msg::TaskInfo { .. }));
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    let mut lines = String::new();
    for m in pending.drain(..) {
        apply(&tx, ledger, m, &mut lines).map_err(|e| e.to_string())?;
    }
    for (touched, table) in [(phases, &PHASES), (task_info, &TASK_INFO)] {
        if touched {
            ledger.count_table(&tx, table).map_err(|e| e.to_string())?;
        }
    }
    ledger.save(&tx).map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())?;
    // after the commit: events.jsonl never holds an event the store does not (a rebuild restores
    // the lines of a commit whose append did not happen)
    jsonl.write_all(lines.as_bytes()).and_then(|_| jsonl.flush()).map_err(|e| format!("cannot append to events.jsonl: {e}"))?;
    Ok(())
}

fn int(v: u64) -> SqlValue {
    SqlValue::Integer(v as i64)
}

fn opt_real(v: Option<f64>) -> SqlValue {
    v.filter(|v| v.is_finite()).map_or(SqlValue::Null, SqlValue::Real)
}

fn opt_int(v: Option<u32>) -> SqlValue {
    v.map_or(SqlValue::Null, |v| SqlValue::Integer(i64::from(v)))
}

/// Writes one message; the `events.jsonl` lines of its events are added to `lines`.
fn apply(tx: &rusqlite::Transaction, ledger: &mut Ledger, m: Msg, lines: &mut String) -> rusqlite::Result<()> {
    match m {
        Msg::Window(w) => {
            let id = ledger.next(&WINDOWS, Some(i64::from(w.phase_idx)), "");
            insert_sealed(
                tx,
                "INSERT INTO windows (id, phase_idx, worker, slot, task_kind, start_ms, end_ms, attempted, succeeded, failed, verified, errors, hist, hist_in_page, console, crc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                &WINDOWS,
                [
                    SqlValue::Integer(id),
                    SqlValue::Integer(i64::from(w.phase_idx)),
                    SqlValue::Text(w.worker),
                    SqlValue::Integer(i64::from(w.slot)),
                    SqlValue::Text(w.task_kind.to_string()),
                    SqlValue::Integer(w.start_ms),
                    SqlValue::Integer(w.end_ms),
                    int(w.attempted),
                    int(w.succeeded),
                    int(w.failed),
                    int(w.verified),
                    SqlValue::Text(w.errors),
                    SqlValue::Blob(w.hist),
                    SqlValue::Blob(w.hist_in_page),
                    int(w.console),
                ],
            )?;
        }
        Msg::Sample(s) => {
            let id = ledger.next(&SAMPLES, s.phase_idx.map(i64::from), "");
            insert_sealed(
                tx,
                "INSERT INTO samples (id, at, at_ms, phase_idx, cpu, memory, disk, tree_rss, tree_cpu, tree_processes, health, violations,
                   cpu_cap, campaign_cpu, host_cpu, host_wait, psi_cpu, psi_memory, psi_io, browsers, crc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
                &SAMPLES,
                [
                    SqlValue::Integer(id),
                    SqlValue::Text(rfc3339(s.at)),
                    SqlValue::Integer(unix_ms(s.at)),
                    opt_int(s.phase_idx),
                    SqlValue::Real(s.cpu),
                    SqlValue::Real(s.memory),
                    SqlValue::Real(s.disk),
                    int(s.tree_rss_bytes),
                    SqlValue::Real(s.tree_cpu),
                    SqlValue::Integer(i64::from(s.tree_processes)),
                    SqlValue::Real(s.health),
                    SqlValue::Text(s.violations),
                    opt_real(s.host.cpu_cap),
                    SqlValue::Real(s.host.campaign_cpu),
                    SqlValue::Real(s.host.host_cpu),
                    opt_real(s.host.host_wait),
                    opt_real(s.host.psi_cpu),
                    opt_real(s.host.psi_memory),
                    opt_real(s.host.psi_io),
                    SqlValue::Text(BrowserRss::encode(&s.browsers)),
                ],
            )?;
        }
        Msg::Event(e) => {
            let id = ledger.next(&EVENTS, e.phase_idx.map(i64::from), e.kind);
            let at = rfc3339(e.at);
            let data = e.data.to_string();
            let line = event_jsonl_line(&at, e.kind, &e.corr, e.phase_idx.map(i64::from), &e.message, &data);
            insert_sealed(
                tx,
                "INSERT INTO events (id, at, kind, corr, phase_idx, message, data, crc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                &EVENTS,
                [
                    SqlValue::Integer(id),
                    SqlValue::Text(at),
                    SqlValue::Text(e.kind.to_string()),
                    SqlValue::Text(e.corr),
                    opt_int(e.phase_idx),
                    SqlValue::Text(e.message),
                    SqlValue::Text(data),
                ],
            )?;
            lines.push_str(&line);
            lines.push('\n');
        }
        Msg::PhaseStarted(p) => {
            tx.execute(
                "INSERT INTO phases (idx, name, stress_level, task_kind, sessions_planned, sessions, duration_planned_ms, started_at, elapsed_ms, status, min_success_rate, max_p95_ms, notes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 'running', ?9, ?10, ?11)
                 ON CONFLICT(idx) DO UPDATE SET status='running', sessions=excluded.sessions,
                   notes=(SELECT json_group_array(value) FROM (
                     SELECT 0 AS src, key, value FROM json_each(phases.notes)
                     UNION ALL SELECT 1, key, value FROM json_each(excluded.notes) ORDER BY src, key))",
                params![
                    p.idx, p.name, p.stress_level, p.task_kind, p.sessions_planned, p.sessions, p.duration_planned.as_millis() as i64,
                    rfc3339(p.started_at), p.min_success_rate, p.max_p95_ms as i64, serde_json::to_string(&p.notes).unwrap_or_else(|_| "[]".into())
                ],
            )?;
            reseal(tx, &PHASES, "idx = ?1", [p.idx])?;
        }
        Msg::PhaseProgress { idx, elapsed_ms } => {
            if tx
                .prepare_cached("UPDATE phases SET elapsed_ms = ?2 WHERE idx = ?1 AND status = 'running'")?
                .execute(params![idx, elapsed_ms as i64])?
                > 0
            {
                reseal(tx, &PHASES, "idx = ?1", [idx])?;
            }
        }
        Msg::PhaseEnded { idx, status, ended_at, elapsed_ms } => {
            tx.execute(
                "UPDATE phases SET status = ?2, ended_at = ?3, elapsed_ms = ?4 WHERE idx = ?1",
                params![idx, status, rfc3339(ended_at), elapsed_ms as i64],
            )?;
            reseal(tx, &PHASES, "idx = ?1", [idx])?;
        }
        Msg::TaskInfo { phase_idx, task_kind, key, value } => {
            tx.execute(
                "INSERT INTO task_info (phase_idx, task_kind, key, value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(phase_idx, task_kind, key) DO UPDATE SET value = excluded.value",
                params![phase_idx, task_kind, key, value.to_string()],
            )?;
            reseal(tx, &TASK_INFO, "phase_idx = ?1 AND task_kind = ?2 AND key = ?3", params![phase_idx, task_kind, key])?;
        }
        Msg::Process(p) => {
            insert_sealed(
                tx,
                "INSERT OR REPLACE INTO processes (pid, start_time, kind, worker, pgid, marker, started_at, crc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                &PROCESSES,
                [
                    SqlValue::Integer(i64::from(p.pid)),
                    int(p.start_time),
                    SqlValue::Text(p.kind.to_string()),
                    SqlValue::Text(p.worker),
                    SqlValue::Integer(i64::from(p.pgid)),
                    SqlValue::Text(p.marker),
                    SqlValue::Text(rfc3339(SystemTime::now())),
                ],
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
            reseal(tx, &CAMPAIGN, "1", [])?;
        }
        Msg::CampaignResumed { at } => {
            tx.execute(
                "UPDATE campaign SET outcome = NULL, ended_at = NULL, resumes = resumes + 1, last_resumed_at = ?1",
                params![rfc3339(at)],
            )?;
            reseal(tx, &CAMPAIGN, "1", [])?;
        }
        Msg::Flush(_) | Msg::Shutdown => {}
    }
    Ok(())
}
