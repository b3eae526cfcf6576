//! Reading a campaign back from its store (reports, resume, reaping).

use super::{open_checked, StoreError};
use crate::metrics::{decode_histogram, new_histogram, Window};
use crate::recovery::FailureClass;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The campaign row.
#[derive(Debug, Clone)]
pub struct CampaignInfo {
    /// Id.
    pub id: String,
    /// Profile.
    pub profile: String,
    /// Config source.
    pub config_source: String,
    /// Config text.
    pub config_text: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339, when ended.
    pub ended_at: Option<String>,
    /// Outcome, when ended.
    pub outcome: Option<String>,
    /// Why it stopped.
    pub stop_reason: Option<String>,
    /// Reports directory.
    pub output_dir: PathBuf,
    /// Times resumed.
    pub resumes: u32,
}

/// A phase row.
#[derive(Debug, Clone)]
pub struct PhaseInfo {
    /// Index.
    pub idx: u32,
    /// Name.
    pub name: String,
    /// Level.
    pub stress_level: String,
    /// Task kind.
    pub task_kind: String,
    /// Planned sessions.
    pub sessions_planned: u32,
    /// Actual sessions.
    pub sessions: u32,
    /// Planned duration, ms.
    pub duration_planned_ms: u64,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub ended_at: Option<String>,
    /// Checkpoint: ms of the phase run so far.
    pub elapsed_ms: u64,
    /// running | completed | stopped | interrupted.
    pub status: String,
    /// Criteria.
    pub min_success_rate: f64,
    /// Criteria.
    pub max_p95_ms: u64,
    /// Notes.
    pub notes: Vec<String>,
}

/// Resource statistics over a phase (from the guardian's samples), rounded to 3 decimals.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResourceAgg {
    /// Samples.
    pub samples: u64,
    /// CPU % avg.
    pub cpu_avg: f64,
    /// CPU % max.
    pub cpu_max: f64,
    /// Memory % avg.
    pub memory_avg: f64,
    /// Memory % max.
    pub memory_max: f64,
    /// Disk % avg.
    pub disk_avg: f64,
    /// Disk % max.
    pub disk_max: f64,
    /// Campaign process tree RSS MiB avg.
    pub tree_rss_mb_avg: f64,
    /// Campaign process tree RSS MiB max.
    pub tree_rss_mb_max: f64,
    /// Tree CPU % avg (100 = one core).
    pub tree_cpu_avg: f64,
    /// Tree CPU % max.
    pub tree_cpu_max: f64,
    /// Health avg.
    pub health_avg: f64,
    /// Health min.
    pub health_min: f64,
    /// Samples with at least one violation.
    pub violating_samples: u64,
}

/// An event row.
#[derive(Debug, Clone)]
pub struct EventInfo {
    /// RFC 3339.
    pub at: String,
    /// Kind.
    pub kind: String,
    /// Correlation id.
    pub corr: String,
    /// Phase.
    pub phase_idx: Option<u32>,
    /// Message.
    pub message: String,
    /// Data.
    pub data: Value,
}

/// A recorded process.
#[derive(Debug, Clone)]
pub struct ProcessRecord {
    /// Pid.
    pub pid: u32,
    /// Start ticks.
    pub start_time: u64,
    /// Kind.
    pub kind: String,
    /// Worker.
    pub worker: String,
    /// Process group.
    pub pgid: u32,
    /// Marker in its cmdline.
    pub marker: String,
}

/// Read access to one campaign's store.
pub struct StoreReader {
    conn: Connection,
    path: PathBuf,
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

impl StoreReader {
    /// Opens a store read-only (schema version and integrity checked).
    pub fn open(path: &Path) -> Result<StoreReader, StoreError> {
        let conn = open_checked(path, true)?;
        Ok(StoreReader { conn, path: path.to_path_buf() })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| StoreError::Corrupt { path: self.path.clone(), detail: e.to_string() }
    }

    /// The campaign row.
    pub fn campaign(&self) -> Result<CampaignInfo, StoreError> {
        self.conn
            .query_row(
                "SELECT id, profile, config_source, config_text, started_at, ended_at, outcome, stop_reason, output_dir, resumes FROM campaign LIMIT 1",
                [],
                |r| {
                    Ok(CampaignInfo {
                        id: r.get(0)?,
                        profile: r.get(1)?,
                        config_source: r.get(2)?,
                        config_text: r.get(3)?,
                        started_at: r.get(4)?,
                        ended_at: r.get(5)?,
                        outcome: r.get(6)?,
                        stop_reason: r.get(7)?,
                        output_dir: PathBuf::from(r.get::<_, String>(8)?),
                        resumes: r.get(9)?,
                    })
                },
            )
            .map_err(self.err())
    }

    /// All phases started so far, by index.
    pub fn phases(&self) -> Result<Vec<PhaseInfo>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT idx, name, stress_level, task_kind, sessions_planned, sessions, duration_planned_ms, started_at, ended_at,
                        elapsed_ms, status, min_success_rate, max_p95_ms, notes FROM phases ORDER BY idx",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| {
                let notes: String = r.get(13)?;
                Ok(PhaseInfo {
                    idx: r.get(0)?,
                    name: r.get(1)?,
                    stress_level: r.get(2)?,
                    task_kind: r.get(3)?,
                    sessions_planned: r.get(4)?,
                    sessions: r.get(5)?,
                    duration_planned_ms: r.get::<_, i64>(6)? as u64,
                    started_at: r.get(7)?,
                    ended_at: r.get(8)?,
                    elapsed_ms: r.get::<_, i64>(9)? as u64,
                    status: r.get(10)?,
                    min_success_rate: r.get(11)?,
                    max_p95_ms: r.get::<_, i64>(12)? as u64,
                    notes: serde_json::from_str(&notes).unwrap_or_default(),
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// Op windows of a phase merged per task kind.
    pub fn phase_windows(&self, idx: u32) -> Result<BTreeMap<String, Window>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT task_kind, attempted, succeeded, failed, verified, errors, hist FROM windows WHERE phase_idx = ?1 ORDER BY id",
            )
            .map_err(self.err())?;
        let mut rows = st.query(params![idx]).map_err(self.err())?;
        let mut out: BTreeMap<String, Window> = BTreeMap::new();
        while let Some(r) = rows.next().map_err(self.err())? {
            let kind: String = r.get(0).map_err(self.err())?;
            let errors: String = r.get(5).map_err(self.err())?;
            let hist: Vec<u8> = r.get(6).map_err(self.err())?;
            let mut w = Window {
                attempted: r.get::<_, i64>(1).map_err(self.err())? as u64,
                succeeded: r.get::<_, i64>(2).map_err(self.err())? as u64,
                failed: r.get::<_, i64>(3).map_err(self.err())? as u64,
                verified: r.get::<_, i64>(4).map_err(self.err())? as u64,
                errors: BTreeMap::new(),
                hist: new_histogram(),
            };
            let errs: BTreeMap<String, u64> = serde_json::from_str(&errors)
                .map_err(|e| StoreError::Corrupt { path: self.path.clone(), detail: format!("window errors: {e}") })?;
            for (k, v) in errs {
                if let Some(c) = FailureClass::parse(&k) {
                    w.errors.insert(c, v);
                }
            }
            let h = decode_histogram(&hist).map_err(|detail| StoreError::Corrupt { path: self.path.clone(), detail })?;
            let _ = w.hist.add(&h);
            out.entry(kind).or_default().merge(&w);
        }
        Ok(out)
    }

    /// Resource statistics of a phase.
    pub fn phase_resources(&self, idx: u32) -> Result<ResourceAgg, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*), COALESCE(AVG(cpu),0), COALESCE(MAX(cpu),0), COALESCE(AVG(memory),0), COALESCE(MAX(memory),0),
                        COALESCE(AVG(disk),0), COALESCE(MAX(disk),0), COALESCE(AVG(tree_rss),0), COALESCE(MAX(tree_rss),0),
                        COALESCE(AVG(tree_cpu),0), COALESCE(MAX(tree_cpu),0), COALESCE(AVG(health),0), COALESCE(MIN(health),0),
                        COALESCE(SUM(violations != '[]'),0)
                 FROM samples WHERE phase_idx = ?1",
                params![idx],
                |r| {
                    let mb = |v: f64| round3(v / (1024.0 * 1024.0));
                    Ok(ResourceAgg {
                        samples: r.get::<_, i64>(0)? as u64,
                        cpu_avg: round3(r.get(1)?),
                        cpu_max: round3(r.get(2)?),
                        memory_avg: round3(r.get(3)?),
                        memory_max: round3(r.get(4)?),
                        disk_avg: round3(r.get(5)?),
                        disk_max: round3(r.get(6)?),
                        tree_rss_mb_avg: mb(r.get(7)?),
                        tree_rss_mb_max: mb(r.get::<_, i64>(8)? as f64),
                        tree_cpu_avg: round3(r.get(9)?),
                        tree_cpu_max: round3(r.get(10)?),
                        health_avg: round3(r.get(11)?),
                        health_min: round3(r.get(12)?),
                        violating_samples: r.get::<_, i64>(13)? as u64,
                    })
                },
            )
            .map_err(self.err())
    }

    /// Count of events of a kind in a phase (or all).
    pub fn count_events(&self, phase: Option<u32>, kind: &str) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM events WHERE kind = ?1 AND (?2 IS NULL OR phase_idx = ?2)",
                params![kind, phase.map(|p| p as i64)],
                |r| r.get::<_, i64>(0),
            )
            .map(|v| v as u64)
            .map_err(self.err())
    }

    /// Task info of a phase: kind -> key -> value.
    pub fn task_info(&self, idx: u32) -> Result<BTreeMap<String, BTreeMap<String, Value>>, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT task_kind, key, value FROM task_info WHERE phase_idx = ?1").map_err(self.err())?;
        let rows = st
            .query_map(params![idx], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(self.err())?;
        let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        for row in rows {
            let (k, key, v) = row.map_err(self.err())?;
            out.entry(k).or_default().insert(key, serde_json::from_str(&v).unwrap_or(Value::Null));
        }
        Ok(out)
    }

    /// Processes recorded and not marked ended.
    pub fn live_processes(&self) -> Result<Vec<ProcessRecord>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT pid, start_time, kind, worker, pgid, marker FROM processes WHERE ended_at IS NULL")
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| {
                Ok(ProcessRecord {
                    pid: r.get(0)?,
                    start_time: r.get::<_, i64>(1)? as u64,
                    kind: r.get(2)?,
                    worker: r.get(3)?,
                    pgid: r.get(4)?,
                    marker: r.get(5)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// Samples in total and with violations (whole campaign).
    pub fn sample_counts(&self) -> Result<(u64, u64), StoreError> {
        self.conn
            .query_row("SELECT COUNT(*), COALESCE(SUM(violations != '[]'),0) FROM samples", [], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })
            .map_err(self.err())
    }
}

/// An `events` row selected as `at, kind, corr, phase_idx, message, data`.
fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventInfo> {
    let data: String = r.get(5)?;
    Ok(EventInfo {
        at: r.get(0)?,
        kind: r.get(1)?,
        corr: r.get(2)?,
        phase_idx: r.get(3)?,
        message: r.get(4)?,
        data: serde_json::from_str(&data).unwrap_or(Value::Null),
    })
}

/// Lists campaign ids that have a store under `state_dir`, oldest first (ids sort by time).
pub fn list_campaigns(state_dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(state_dir.join("runs"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("store.sqlite").exists())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

impl StoreReader {
    /// The store file this reader reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `f` for each event of some kinds (all phases when `phase` is None), in order, without
    /// collecting them first: an overnight campaign can hold many `op_failed` events.
    pub fn for_each_event(&self, phase: Option<u32>, kinds: &[&str], mut f: impl FnMut(EventInfo)) -> Result<(), StoreError> {
        let kinds_json = serde_json::to_string(kinds).unwrap_or_else(|_| "[]".into());
        let sql = "SELECT at, kind, corr, phase_idx, message, data FROM events
                   WHERE kind IN (SELECT value FROM json_each(?1)) AND (?2 IS NULL OR phase_idx = ?2) ORDER BY id";
        let mut st = self.conn.prepare_cached(sql).map_err(self.err())?;
        let mut rows = st.query(params![kinds_json, phase.map(|p| p as i64)]).map_err(self.err())?;
        while let Some(r) = rows.next().map_err(self.err())? {
            f(event_row(r).map_err(self.err())?);
        }
        Ok(())
    }

    /// The last event of a kind (whole campaign), if any.
    pub fn last_event(&self, kind: &str) -> Result<Option<EventInfo>, StoreError> {
        self.conn
            .query_row(
                "SELECT at, kind, corr, phase_idx, message, data FROM events WHERE kind = ?1 ORDER BY id DESC LIMIT 1",
                params![kind],
                event_row,
            )
            .optional()
            .map_err(self.err())
    }
}
