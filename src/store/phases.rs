//! What a phase recorded: its row, its op windows (merged per task kind or per worker) and its
//! task info.

use super::reader::bad_value;
use super::schema::{PHASES, TASK_INFO};
use super::{StoreError, StoreReader};
use crate::metrics::{decode_histogram, LatencySummary, Window};
use crate::recovery::FailureClass;
use rusqlite::types::Type;
use serde_json::Value;
use std::collections::BTreeMap;

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

/// One op window of one slot (about a second of its ops).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowPoint {
    /// Start, Unix ms.
    pub start_ms: u64,
    /// End, Unix ms.
    pub end_ms: u64,
    /// Ops attempted.
    pub attempted: u64,
    /// Ops that succeeded.
    pub succeeded: u64,
    /// Its round-trip latencies (None when it timed no op).
    pub latency: Option<LatencySummary>,
}

impl StoreReader {
    /// All phases started so far, by index.
    pub fn phases(&self) -> Result<Vec<PhaseInfo>, StoreError> {
        let mut out = Vec::new();
        self.scan_complete(&PHASES, "ORDER BY idx", &[], &|_, _| true, "phases", |r| {
            let notes: String = r.get(14)?;
            out.push(PhaseInfo {
                idx: r.get(1)?,
                name: r.get(2)?,
                stress_level: r.get(3)?,
                task_kind: r.get(4)?,
                sessions_planned: r.get(5)?,
                sessions: r.get(6)?,
                duration_planned_ms: r.get::<_, i64>(7)? as u64,
                started_at: r.get(8)?,
                ended_at: r.get(9)?,
                elapsed_ms: r.get::<_, i64>(10)? as u64,
                status: r.get(11)?,
                min_success_rate: r.get(12)?,
                max_p95_ms: r.get::<_, i64>(13)? as u64,
                notes: serde_json::from_str(&notes).unwrap_or_default(),
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// Op windows of a phase merged per task kind.
    pub fn phase_windows(&self, idx: u32) -> Result<BTreeMap<String, Window>, StoreError> {
        self.phase_windows_by(idx, |kind, _worker| kind)
    }

    /// Phase `idx`'s windows merged per worker (`<worker>`, or `<worker>/<node>` for a Selenium
    /// Grid node): the report groups workers by their browser, and Grid workers by node.
    pub fn phase_windows_per_worker(&self, idx: u32) -> Result<BTreeMap<String, Window>, StoreError> {
        self.phase_worker_windows(idx)
    }

    /// Phase `idx`'s windows merged per worker (the report groups workers by their browser).
    pub fn phase_worker_windows(&self, idx: u32) -> Result<BTreeMap<String, Window>, StoreError> {
        self.phase_windows_by(idx, |_kind, worker| worker)
    }

    /// Phase `idx`'s windows merged per `group(task_kind, worker)`.
    fn phase_windows_by(&self, idx: u32, group: fn(String, String) -> String) -> Result<BTreeMap<String, Window>, StoreError> {
        let mut out: BTreeMap<String, Window> = BTreeMap::new();
        let phase = i64::from(idx);
        let pred = |p: i64, _: &str| p == phase;
        let windows = self.windows_table();
        let with_in_page = windows.has("hist_in_page");
        let with_console = windows.has("console");
        self.scan_complete(windows, "WHERE phase_idx = ?1 ORDER BY id", &[&phase], &pred, &format!("windows of phase {idx}"), |r| {
            let kind = group(r.get(5)?, r.get(3)?);
            let errors: String = r.get(12)?;
            let errs: BTreeMap<String, u64> =
                serde_json::from_str(&errors).map_err(|e| bad_value(12, Type::Text, format!("window errors: {e}")))?;
            let h = r.get_ref(13)?.as_blob().map_err(|e| bad_value(13, Type::Blob, e.to_string()))?;
            let h = decode_histogram(h).map_err(|e| bad_value(13, Type::Blob, e))?;
            // straight into the kind's total: no per-window histogram (each is a 180 KB array)
            let total = out.entry(kind).or_default();
            total.attempted += r.get::<_, i64>(8)? as u64;
            total.succeeded += r.get::<_, i64>(9)? as u64;
            total.failed += r.get::<_, i64>(10)? as u64;
            total.verified += r.get::<_, i64>(11)? as u64;
            for (k, v) in errs {
                if let Some(c) = FailureClass::parse(&k) {
                    *total.errors.entry(c).or_insert(0) += v;
                }
            }
            // same bounds as every recorded histogram; a histogram out of them adds nothing, as before
            let _ = total.hist.add(&h);
            if with_in_page {
                let b = r.get_ref(14)?.as_blob().map_err(|e| bad_value(14, Type::Blob, e.to_string()))?;
                let _ = total.in_page.add(&decode_histogram(b).map_err(|e| bad_value(14, Type::Blob, e))?);
            }
            if with_console {
                total.console += r.get::<_, i64>(15)?.max(0) as u64;
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Phase `idx`'s op windows one by one (every slot's, in the order written): what the
    /// comparison's bootstrap resamples to tell a change from noise.
    pub fn phase_window_points(&self, idx: u32) -> Result<Vec<WindowPoint>, StoreError> {
        let mut out = Vec::new();
        let phase = i64::from(idx);
        let pred = |p: i64, _: &str| p == phase;
        let windows = self.windows_table();
        self.scan_complete(windows, "WHERE phase_idx = ?1 ORDER BY id", &[&phase], &pred, &format!("windows of phase {idx}"), |r| {
            let h = r.get_ref(13)?.as_blob().map_err(|e| bad_value(13, Type::Blob, e.to_string()))?;
            let h = decode_histogram(h).map_err(|e| bad_value(13, Type::Blob, e))?;
            let latency = (!h.is_empty()).then(|| LatencySummary::of(&h));
            out.push(WindowPoint {
                start_ms: r.get::<_, i64>(6)?.max(0) as u64,
                end_ms: r.get::<_, i64>(7)?.max(0) as u64,
                attempted: r.get::<_, i64>(8)?.max(0) as u64,
                succeeded: r.get::<_, i64>(9)?.max(0) as u64,
                latency,
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// Task info of a phase: kind -> key -> value.
    pub fn task_info(&self, idx: u32) -> Result<BTreeMap<String, BTreeMap<String, Value>>, StoreError> {
        let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        // the whole (small) table without its index: a damaged index cannot hide a row
        self.scan_complete(&TASK_INFO, "NOT INDEXED", &[], &|_, _| true, "task info rows", |r| {
            if r.get::<_, i64>(1)? == i64::from(idx) {
                let v: String = r.get(4)?;
                out.entry(r.get(2)?).or_default().insert(r.get(3)?, serde_json::from_str(&v).unwrap_or(Value::Null));
            }
            Ok(())
        })?;
        Ok(out)
    }
}
