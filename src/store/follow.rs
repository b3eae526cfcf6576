//! Reading a store in steps while it is written (the dashboard following its campaign, and
//! `report.html`'s time series): rows after a given id, each verified by its checksum exactly as
//! the reports' reads are ([`StoreReader`]'s scan), so a damaged row is an error naming it, never
//! a chart with wrong numbers.
//!
//! A step cannot check that no row is missing (the row-group fingerprints only hold for a table's
//! whole group, which grows while the campaign writes); [`StoreReader::refresh`] moves the reader
//! to the newest committed state between steps.

use super::events::event_row;
use super::integrity::select_sql;
use super::samples::host_figures;
use super::schema::EVENTS;
use super::{EventInfo, HostFigures, StoreError, StoreReader};

/// An op window as stored.
#[derive(Debug, Clone)]
pub struct StoredWindow {
    /// Row id (the cursor of the next step).
    pub id: i64,
    /// Phase index.
    pub phase_idx: u32,
    /// Worker id.
    pub worker: String,
    /// Task kind.
    pub task_kind: String,
    /// Start, ms since the epoch.
    pub start_ms: i64,
    /// End, ms since the epoch.
    pub end_ms: i64,
    /// Ops attempted.
    pub attempted: u64,
    /// Ops succeeded.
    pub succeeded: u64,
    /// Ops failed.
    pub failed: u64,
    /// The round-trip latency histogram, serialized (`metrics::decode_histogram`).
    pub hist: Vec<u8>,
    /// The in-page latency histogram, serialized (None in a store from before it was recorded).
    pub hist_in_page: Option<Vec<u8>>,
}

/// A guardian sample as stored.
#[derive(Debug, Clone)]
pub struct StoredSample {
    /// Row id (the cursor of the next step).
    pub id: i64,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// Phase running, if any.
    pub phase_idx: Option<u32>,
    /// System CPU, percent.
    pub cpu: f64,
    /// Memory, percent.
    pub memory: f64,
    /// Disk, percent.
    pub disk: f64,
    /// RSS of the campaign's process tree, bytes.
    pub tree_rss: u64,
    /// Health score.
    pub health: f64,
    /// Whether the sample was over a threshold.
    pub violating: bool,
    /// The host's figures (None in a store from before they were recorded).
    pub host: Option<HostFigures>,
}

impl StoreReader {
    /// Up to `limit` op windows with an id over `after`, in id order, each verified.
    pub fn windows_after(&self, after: i64, limit: i64) -> Result<Vec<StoredWindow>, StoreError> {
        let mut out = Vec::new();
        let table = self.windows_table();
        let with_in_page = table.has("hist_in_page");
        let sql = format!("{} WHERE id > ?1 ORDER BY id LIMIT ?2", select_sql(table));
        self.scan_sql(table, &sql, &[&after, &limit], |r| {
            out.push(StoredWindow {
                id: r.get(1)?,
                phase_idx: r.get(2)?,
                worker: r.get(3)?,
                task_kind: r.get(5)?,
                start_ms: r.get(6)?,
                end_ms: r.get(7)?,
                attempted: r.get::<_, i64>(8)?.max(0) as u64,
                succeeded: r.get::<_, i64>(9)?.max(0) as u64,
                failed: r.get::<_, i64>(10)?.max(0) as u64,
                hist: r.get(13)?,
                hist_in_page: if with_in_page { Some(r.get(14)?) } else { None },
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// Up to `limit` guardian samples with an id over `after`, in id order, each verified.
    pub fn samples_after(&self, after: i64, limit: i64) -> Result<Vec<StoredSample>, StoreError> {
        let mut out = Vec::new();
        let table = self.samples_table();
        let with_host = table.has("cpu_cap");
        let sql = format!("{} WHERE id > ?1 ORDER BY id LIMIT ?2", select_sql(table));
        self.scan_sql(table, &sql, &[&after, &limit], |r| {
            out.push(StoredSample {
                id: r.get(1)?,
                at_ms: r.get(3)?,
                phase_idx: r.get(4)?,
                cpu: r.get(5)?,
                memory: r.get(6)?,
                disk: r.get(7)?,
                tree_rss: r.get::<_, i64>(8)?.max(0) as u64,
                health: r.get(11)?,
                violating: r.get::<_, String>(12)? != "[]",
                host: if with_host { Some(host_figures(r)?) } else { None },
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// Up to `limit` events with an id over `after` and at most `upto`, in id order, each
    /// verified; with their ids.
    pub fn events_after(&self, after: i64, upto: i64, limit: i64) -> Result<Vec<(i64, EventInfo)>, StoreError> {
        let mut out = Vec::new();
        let sql = format!("{} WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3", select_sql(&EVENTS));
        self.scan_sql(&EVENTS, &sql, &[&after, &upto, &limit], |r| {
            out.push((r.get(1)?, event_row(r)?));
            Ok(())
        })?;
        Ok(out)
    }

    /// The highest event id stored so far (0 when there is none).
    pub fn last_event_id(&self) -> Result<i64, StoreError> {
        self.conn_ref().query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0)).map_err(self.err())
    }

    /// The last time the store has data for, ms since the epoch (its last window, sample or
    /// event; 0 when none): what a report's bucket width is chosen from. The rows themselves are
    /// verified as they are read.
    pub fn last_data_ms(&self) -> Result<i64, StoreError> {
        let last: i64 = self
            .conn_ref()
            .query_row(
                "SELECT MAX(COALESCE((SELECT MAX(end_ms) FROM windows), 0), COALESCE((SELECT MAX(at_ms) FROM samples), 0))",
                [],
                |r| r.get(0),
            )
            .map_err(self.err())?;
        let last_event: Option<String> = self.conn_ref().query_row("SELECT MAX(at) FROM events", [], |r| r.get(0)).map_err(self.err())?;
        let event_ms = last_event.as_deref().and_then(|t| humantime::parse_rfc3339_weak(t).ok()).map(super::unix_ms).unwrap_or(0);
        Ok(last.max(event_ms))
    }
}
