//! Store schema. `PRAGMA user_version` carries the version; a newer one is refused.

use rusqlite::Connection;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

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
            resumes INTEGER NOT NULL DEFAULT 0, last_resumed_at TEXT);
        CREATE TABLE phases (
            idx INTEGER PRIMARY KEY, name TEXT NOT NULL, stress_level TEXT NOT NULL, task_kind TEXT NOT NULL,
            sessions_planned INTEGER NOT NULL, sessions INTEGER NOT NULL, duration_planned_ms INTEGER NOT NULL,
            started_at TEXT NOT NULL, ended_at TEXT, elapsed_ms INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL,
            min_success_rate REAL NOT NULL, max_p95_ms INTEGER NOT NULL, notes TEXT NOT NULL DEFAULT '[]');
        CREATE TABLE windows (
            id INTEGER PRIMARY KEY, phase_idx INTEGER NOT NULL, worker TEXT NOT NULL, slot INTEGER NOT NULL,
            task_kind TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL, attempted INTEGER NOT NULL,
            succeeded INTEGER NOT NULL, failed INTEGER NOT NULL, verified INTEGER NOT NULL, errors TEXT NOT NULL,
            hist BLOB NOT NULL);
        CREATE INDEX windows_phase ON windows(phase_idx);
        CREATE TABLE samples (
            id INTEGER PRIMARY KEY, at TEXT NOT NULL, at_ms INTEGER NOT NULL, phase_idx INTEGER, cpu REAL NOT NULL,
            memory REAL NOT NULL, disk REAL NOT NULL, tree_rss INTEGER NOT NULL, tree_cpu REAL NOT NULL,
            tree_processes INTEGER NOT NULL, health REAL NOT NULL, violations TEXT NOT NULL);
        CREATE INDEX samples_phase ON samples(phase_idx);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, corr TEXT NOT NULL, phase_idx INTEGER,
            message TEXT NOT NULL, data TEXT NOT NULL);
        CREATE INDEX events_phase_kind ON events(phase_idx, kind);
        CREATE TABLE task_info (
            phase_idx INTEGER NOT NULL, task_kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (phase_idx, task_kind, key));
        CREATE TABLE processes (
            pid INTEGER NOT NULL, start_time INTEGER NOT NULL, kind TEXT NOT NULL, worker TEXT NOT NULL,
            pgid INTEGER NOT NULL, marker TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT,
            PRIMARY KEY (pid, start_time));
        PRAGMA user_version = {v};
        COMMIT;",
        v = super::SCHEMA_VERSION
    ))
}
