//! Store schema. `PRAGMA user_version` carries the version; a newer one is refused, and so is an
//! older one (version 1 had no record checksums: its reports could not be verified).
//!
//! Every table has a `crc` column: the CRC32 of the row's other columns (see [`super::integrity`]).
//! The column lists below are the single definition of which columns a checksum covers and in
//! which order: the writer hashes the values it binds in this order, the reader selects the
//! columns in this order and hashes what it reads back.

use rusqlite::Connection;

/// The schema version this build writes and reads. Version 2 added the `crc` column of every table
/// and the `row_groups` table; version 3 the host's figures in `samples` (the columns after
/// `violations`); version 4 the in-page latency histogram of `windows` (`hist_in_page`); version 5
/// the browser console entries of `windows` (`console`); version 6 the RSS of each live browser in
/// `samples` (`browsers`), which the drift analysis reads per session.
pub const SCHEMA_VERSION: i64 = 6;

/// The oldest schema version this build reads (not writes): a version 2 store's samples are read
/// and verified over its own columns ([`SAMPLES_V2`]) and have no host figures; a version 2 or 3
/// store's windows likewise ([`WINDOWS_V3`]) and have no in-page latencies, a version 4 store's
/// ([`WINDOWS_V4`]) no console counts.
pub const READABLE_SCHEMA_VERSION: i64 = 2;

/// A table whose rows carry a checksum.
#[derive(Debug)]
pub(crate) struct Table {
    /// Table name (also hashed first, so a row can never verify as a row of another table).
    pub name: &'static str,
    /// The checksummed columns, in hashing order.
    pub cols: &'static str,
    /// Where the phase index is among `cols` (tables whose membership is tracked in `row_groups`).
    pub phase_col: Option<usize>,
    /// Where the event kind is among `cols` (events only).
    pub kind_col: Option<usize>,
}

impl Table {
    /// Number of checksummed columns.
    pub fn ncols(&self) -> usize {
        self.cols.split(',').count()
    }

    /// Whether `col` is among the checksummed columns: how a reader tells which columns a store
    /// of an older schema version has (e.g. `windows` before `hist_in_page`).
    pub fn has(&self, col: &str) -> bool {
        self.cols.split(',').any(|c| c.trim() == col)
    }
}

pub(crate) const CAMPAIGN: Table = Table {
    name: "campaign",
    cols: "id, profile, config_source, config_text, started_at, ended_at, outcome, stop_reason, output_dir, resumes, last_resumed_at",
    phase_col: None,
    kind_col: None,
};
pub(crate) const PHASES: Table = Table {
    name: "phases",
    cols: "idx, name, stress_level, task_kind, sessions_planned, sessions, duration_planned_ms, started_at, ended_at, elapsed_ms, status, min_success_rate, max_p95_ms, notes",
    phase_col: None,
    kind_col: None,
};
pub(crate) const WINDOWS: Table = Table {
    name: "windows",
    cols: "id, phase_idx, worker, slot, task_kind, start_ms, end_ms, attempted, succeeded, failed, verified, errors, hist, hist_in_page, console",
    phase_col: Some(1),
    kind_col: None,
};
/// `windows` as schema version 4 wrote it (no console count): how its rows are verified.
pub(crate) const WINDOWS_V4: Table = Table {
    name: "windows",
    cols: "id, phase_idx, worker, slot, task_kind, start_ms, end_ms, attempted, succeeded, failed, verified, errors, hist, hist_in_page",
    phase_col: Some(1),
    kind_col: None,
};
/// `windows` as schema versions 2 and 3 wrote it (no in-page histogram): how its rows are verified.
pub(crate) const WINDOWS_V3: Table = Table {
    name: "windows",
    cols: "id, phase_idx, worker, slot, task_kind, start_ms, end_ms, attempted, succeeded, failed, verified, errors, hist",
    phase_col: Some(1),
    kind_col: None,
};

/// The `windows` table of a store of schema `version`.
pub(crate) fn windows_of(version: i64) -> &'static Table {
    if version >= 5 {
        &WINDOWS
    } else if version == 4 {
        &WINDOWS_V4
    } else {
        &WINDOWS_V3
    }
}
pub(crate) const SAMPLES: Table = Table {
    name: "samples",
    cols: "id, at, at_ms, phase_idx, cpu, memory, disk, tree_rss, tree_cpu, tree_processes, health, violations, \
           cpu_cap, campaign_cpu, host_cpu, host_wait, psi_cpu, psi_memory, psi_io, browsers",
    phase_col: Some(3),
    kind_col: None,
};
/// `samples` as schema versions 3 to 5 wrote it (no per-browser RSS): how its rows are verified.
pub(crate) const SAMPLES_V5: Table = Table {
    name: "samples",
    cols: "id, at, at_ms, phase_idx, cpu, memory, disk, tree_rss, tree_cpu, tree_processes, health, violations, \
           cpu_cap, campaign_cpu, host_cpu, host_wait, psi_cpu, psi_memory, psi_io",
    phase_col: Some(3),
    kind_col: None,
};
/// `samples` as schema version 2 wrote it (no host figures): how its rows are verified.
pub(crate) const SAMPLES_V2: Table = Table {
    name: "samples",
    cols: "id, at, at_ms, phase_idx, cpu, memory, disk, tree_rss, tree_cpu, tree_processes, health, violations",
    phase_col: Some(3),
    kind_col: None,
};

/// The `samples` table of a store of schema `version`.
pub(crate) fn samples_of(version: i64) -> &'static Table {
    if version >= 6 {
        &SAMPLES
    } else if version >= 3 {
        &SAMPLES_V5
    } else {
        &SAMPLES_V2
    }
}
pub(crate) const EVENTS: Table =
    Table { name: "events", cols: "id, at, kind, corr, phase_idx, message, data", phase_col: Some(4), kind_col: Some(2) };
pub(crate) const TASK_INFO: Table = Table { name: "task_info", cols: "phase_idx, task_kind, key, value", phase_col: None, kind_col: None };
/// `ended_at` is left out on purpose: it only says a process was seen gone, it is set by plain
/// updates (the writer, and reaping in `campaign::resume`), and no report reads it.
pub(crate) const PROCESSES: Table =
    Table { name: "processes", cols: "pid, start_time, kind, worker, pgid, marker, started_at", phase_col: None, kind_col: None };
/// Per table, phase and (events) kind: how many rows were written and a set hash of their ids, so
/// a reader notices a row that an index lost, duplicated or swapped for another. Windows, samples
/// and events have a group per phase (and kind); phases and task info one group each (by rowid).
pub(crate) const ROW_GROUPS: Table =
    Table { name: "row_groups", cols: "tbl, phase, kind, n, mix, max_id", phase_col: None, kind_col: None };

/// Connection settings every writer uses.
pub(crate) fn pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
}

/// Creates the schema in a new file.
pub(crate) fn init(conn: &Connection) -> rusqlite::Result<()> {
    pragmas(conn)?;
    conn.execute_batch(&format!(
        "BEGIN;
        CREATE TABLE campaign (
            id TEXT PRIMARY KEY, profile TEXT NOT NULL, config_source TEXT NOT NULL, config_text TEXT NOT NULL,
            started_at TEXT NOT NULL, ended_at TEXT, outcome TEXT, stop_reason TEXT, output_dir TEXT NOT NULL,
            resumes INTEGER NOT NULL DEFAULT 0, last_resumed_at TEXT, crc INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE phases (
            idx INTEGER PRIMARY KEY, name TEXT NOT NULL, stress_level TEXT NOT NULL, task_kind TEXT NOT NULL,
            sessions_planned INTEGER NOT NULL, sessions INTEGER NOT NULL, duration_planned_ms INTEGER NOT NULL,
            started_at TEXT NOT NULL, ended_at TEXT, elapsed_ms INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL,
            min_success_rate REAL NOT NULL, max_p95_ms INTEGER NOT NULL, notes TEXT NOT NULL DEFAULT '[]',
            crc INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE windows (
            id INTEGER PRIMARY KEY, phase_idx INTEGER NOT NULL, worker TEXT NOT NULL, slot INTEGER NOT NULL,
            task_kind TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL, attempted INTEGER NOT NULL,
            succeeded INTEGER NOT NULL, failed INTEGER NOT NULL, verified INTEGER NOT NULL, errors TEXT NOT NULL,
            hist BLOB NOT NULL, hist_in_page BLOB NOT NULL, console INTEGER NOT NULL, crc INTEGER NOT NULL);
        CREATE INDEX windows_phase ON windows(phase_idx);
        CREATE TABLE samples (
            id INTEGER PRIMARY KEY, at TEXT NOT NULL, at_ms INTEGER NOT NULL, phase_idx INTEGER, cpu REAL NOT NULL,
            memory REAL NOT NULL, disk REAL NOT NULL, tree_rss INTEGER NOT NULL, tree_cpu REAL NOT NULL,
            tree_processes INTEGER NOT NULL, health REAL NOT NULL, violations TEXT NOT NULL, cpu_cap REAL,
            campaign_cpu REAL, host_cpu REAL, host_wait REAL, psi_cpu REAL, psi_memory REAL, psi_io REAL, browsers TEXT NOT NULL,
            crc INTEGER NOT NULL);
        CREATE INDEX samples_phase ON samples(phase_idx);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, corr TEXT NOT NULL, phase_idx INTEGER,
            message TEXT NOT NULL, data TEXT NOT NULL, crc INTEGER NOT NULL);
        CREATE INDEX events_phase_kind ON events(phase_idx, kind);
        CREATE TABLE task_info (
            phase_idx INTEGER NOT NULL, task_kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            crc INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (phase_idx, task_kind, key));
        CREATE TABLE processes (
            pid INTEGER NOT NULL, start_time INTEGER NOT NULL, kind TEXT NOT NULL, worker TEXT NOT NULL,
            pgid INTEGER NOT NULL, marker TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT,
            crc INTEGER NOT NULL, PRIMARY KEY (pid, start_time));
        CREATE TABLE row_groups (
            tbl TEXT NOT NULL, phase INTEGER NOT NULL, kind TEXT NOT NULL, n INTEGER NOT NULL, mix INTEGER NOT NULL,
            max_id INTEGER NOT NULL, crc INTEGER NOT NULL, PRIMARY KEY (tbl, phase, kind));
        PRAGMA user_version = {v};
        COMMIT;",
        v = super::SCHEMA_VERSION
    ))
}
