//! The stored events: read by kind and phase, the last of a kind, counted from the ledger, and the
//! lines of `events.jsonl` as the run wrote them.

use super::reader::bad_value;
use super::schema::EVENTS;
use super::{event_jsonl_line, StoreError, StoreReader};
use rusqlite::types::Type;
use serde_json::Value;

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

/// An `events` row selected as `rowid, id, at, kind, corr, phase_idx, message, data, crc`.
pub(super) fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventInfo> {
    let data: String = r.get(7)?;
    Ok(EventInfo {
        at: r.get(2)?,
        kind: r.get(3)?,
        corr: r.get(4)?,
        phase_idx: r.get(5)?,
        message: r.get(6)?,
        data: serde_json::from_str(&data).unwrap_or(Value::Null),
    })
}

impl StoreReader {
    /// Count of events of a kind in a phase (or all), as written (from the verified ledger).
    pub fn count_events(&self, phase: Option<u32>, kind: &str) -> Result<u64, StoreError> {
        let phase = phase.map(i64::from);
        Ok(self.written(&EVENTS, &|p, k| k == kind && phase.is_none_or(|q| q == p)).n as u64)
    }

    /// Calls `f` for each event of some kinds (all phases when `phase` is None), in order, without
    /// collecting them first: an overnight campaign can hold many `op_failed` events.
    pub fn for_each_event(&self, phase: Option<u32>, kinds: &[&str], mut f: impl FnMut(EventInfo)) -> Result<(), StoreError> {
        let kinds_json = serde_json::to_string(kinds).unwrap_or_else(|_| "[]".into());
        let tail = "WHERE kind IN (SELECT value FROM json_each(?1)) AND (?2 IS NULL OR phase_idx = ?2) ORDER BY id";
        let phase_p = phase.map(i64::from);
        let pred = |p: i64, k: &str| kinds.contains(&k) && phase_p.is_none_or(|q| q == p);
        let what = match phase {
            Some(p) => format!("{} events of phase {p}", kinds.join("/")),
            None => format!("{} events", kinds.join("/")),
        };
        self.scan_complete(&EVENTS, tail, &[&kinds_json, &phase_p], &pred, &what, |r| {
            f(event_row(r)?);
            Ok(())
        })
    }

    /// The last event of a kind (whole campaign), if any.
    pub fn last_event(&self, kind: &str) -> Result<Option<EventInfo>, StoreError> {
        let Some(id) = self.last_written_id(&EVENTS, kind) else { return Ok(None) };
        let mut out = None;
        self.scan(&EVENTS, "WHERE id = ?1", &[&id], |r| {
            out = Some(event_row(r)?);
            Ok(())
        })?;
        match out {
            Some(e) if e.kind == kind => Ok(Some(e)),
            _ => Err(self.corrupt(format!("table events: row {id}, the last {kind} event written, is missing"))),
        }
    }

    /// Calls `f` with each line of `events.jsonl` as the run wrote it, from the stored events in
    /// order: every event verified, none missing.
    pub fn for_each_event_line(&self, mut f: impl FnMut(&str)) -> Result<(), StoreError> {
        self.scan_complete(&EVENTS, "ORDER BY id", &[], &|_, _| true, "events", |r| {
            let text = |i: usize| r.get_ref(i).and_then(|v| v.as_str().map_err(|e| bad_value(i, Type::Text, e.to_string())));
            let line = event_jsonl_line(text(2)?, text(3)?, text(4)?, r.get(5)?, text(6)?, text(7)?);
            f(&line);
            Ok(())
        })
    }
}
