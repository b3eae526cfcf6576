//! Reads a campaign's store into a [`Model`]: all of it for a report or a finished campaign, or
//! what is new since the last call while the campaign writes it (the live dashboard follows its
//! own campaign's store for the op windows and guardian samples, which are not events).
//!
//! The connection is read-only (`store::open_checked`), the queries are this module's own and
//! only `SELECT` by rowid, so following a store costs the campaign nothing but SQLite's WAL reads.

use super::model::{Limits, Model, WindowIn};
use super::series::{bucket_width, OpsRow, SampleRow};
use crate::events::EventRecord;
use crate::metrics::decode_histogram;
use crate::store::{open_checked, unix_ms, EventInfo, StoreError};
use rusqlite::{params, Connection};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Rows read per table and call: a long store is read in steps, the model lock is held per step.
const BATCH: i64 = 2000;

/// The campaign row.
#[derive(Clone, Debug)]
pub struct CampaignRow {
    /// Id.
    pub id: String,
    /// Profile.
    pub profile: String,
    /// Start, ms since the epoch.
    pub started_ms: i64,
    /// Whether the campaign ended.
    pub ended: bool,
    /// The config text (for the guardian thresholds of a stored campaign).
    pub config_text: String,
}

/// A read-only cursor over one store.
pub struct StoreFollower {
    conn: Connection,
    path: PathBuf,
    last_window: i64,
    last_sample: i64,
    last_event: i64,
    /// Events after this id are not read (the live dashboard gets them from the bus).
    event_limit: i64,
    /// Phases named in the model so far (a window of an unknown phase looks its name up).
    known_phases: std::collections::BTreeSet<u32>,
}

fn parse_ms(rfc3339: &str) -> i64 {
    humantime::parse_rfc3339_weak(rfc3339).map(unix_ms).unwrap_or(0)
}

impl StoreFollower {
    /// Opens the store at `path` read-only.
    pub fn open(path: &Path) -> Result<StoreFollower, StoreError> {
        Ok(StoreFollower {
            conn: open_checked(path, true)?,
            path: path.to_path_buf(),
            last_window: 0,
            last_sample: 0,
            last_event: 0,
            event_limit: i64::MAX,
            known_phases: Default::default(),
        })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| StoreError::Corrupt { path: self.path.clone(), detail: e.to_string(), reports: None }
    }

    /// Reads only the events stored until now: the later ones come from the event bus.
    pub fn limit_events_to_now(&mut self) -> Result<(), StoreError> {
        self.event_limit = self.conn.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0)).map_err(self.err())?;
        Ok(())
    }

    /// The campaign row.
    pub fn campaign(&self) -> Result<CampaignRow, StoreError> {
        self.conn
            .query_row("SELECT id, profile, started_at, ended_at, config_text FROM campaign LIMIT 1", [], |r| {
                Ok(CampaignRow {
                    id: r.get(0)?,
                    profile: r.get(1)?,
                    started_ms: parse_ms(&r.get::<_, String>(2)?),
                    ended: r.get::<_, Option<String>>(3)?.is_some(),
                    config_text: r.get(4)?,
                })
            })
            .map_err(self.err())
    }

    /// The time the stored data spans, ms (start of the campaign to its last window, sample or
    /// event): what a report's bucket width is chosen from.
    pub fn span_ms(&self, started_ms: i64) -> Result<i64, StoreError> {
        let last: i64 = self
            .conn
            .query_row(
                "SELECT MAX(COALESCE((SELECT MAX(end_ms) FROM windows), 0), COALESCE((SELECT MAX(at_ms) FROM samples), 0))",
                [],
                |r| r.get(0),
            )
            .map_err(self.err())?;
        let last_event: Option<String> = self.conn.query_row("SELECT MAX(at) FROM events", [], |r| r.get(0)).map_err(self.err())?;
        Ok(last.max(last_event.as_deref().map(parse_ms).unwrap_or(0)) - started_ms)
    }

    /// A model of the whole store, complete (every bucket closed): what `report.html` and the
    /// dashboard of a stored campaign show. `limits` default to the stored config's.
    pub fn read_all(mut self, limits: Option<Limits>) -> Result<Model, StoreError> {
        let c = self.campaign()?;
        let width = bucket_width(self.span_ms(c.started_ms)?);
        let limits = limits.unwrap_or_else(|| limits_of(&c.config_text));
        let model = Mutex::new(Model::new(&c.id, &c.profile, c.started_ms, width, limits, "store"));
        while self.poll(&model, true)? {}
        let mut m = model.into_inner().unwrap_or_else(|e| e.into_inner());
        m.finish();
        Ok(m)
    }

    /// Reads what is new (up to [`BATCH`] rows per table) into `model`; events too when `events`
    /// (a live dashboard gets them from the bus instead). Returns whether anything was read.
    pub fn poll(&mut self, model: &Mutex<Model>, events: bool) -> Result<bool, StoreError> {
        let evs = if events { self.events()? } else { Vec::new() };
        let windows = self.windows()?;
        let samples = self.samples()?;
        let new_phases: Vec<u32> = windows.iter().map(|w| w.0).filter(|p| !self.known_phases.contains(p)).collect();
        let phase_rows = if new_phases.is_empty() { Vec::new() } else { self.phase_rows()? };
        let any = !(evs.is_empty() && windows.is_empty() && samples.is_empty());
        let mut m = model.lock().unwrap_or_else(|e| e.into_inner());
        for (idx, name, task, started) in phase_rows {
            m.on_phase_row(idx, &name, &task, started);
            self.known_phases.insert(idx);
        }
        for e in &evs {
            match EventRecord::from_stored(e) {
                Ok((_, event)) => {
                    let at = humantime::parse_rfc3339_weak(&e.at).unwrap_or(std::time::UNIX_EPOCH);
                    m.on_event(&EventRecord { at, corr: e.corr.clone(), phase: e.phase_idx, event });
                }
                Err(err) => tracing::warn!(target: "stressctl::dashboard", "{err} (skipped)"),
            }
        }
        for (phase, worker, task, start_ms, end_ms, attempted, succeeded, failed, hist) in &windows {
            m.on_window(&WindowIn {
                phase: *phase,
                worker,
                task,
                ops: OpsRow { start_ms: *start_ms, end_ms: *end_ms, attempted: *attempted, succeeded: *succeeded, hist: hist.as_ref() },
                failed: *failed,
            });
        }
        for s in samples {
            m.on_sample(s);
        }
        Ok(any)
    }

    fn events(&mut self) -> Result<Vec<EventInfo>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, at, kind, corr, phase_idx, message, data FROM events WHERE id > ?1 AND id <= ?3 ORDER BY id LIMIT ?2",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map(params![self.last_event, BATCH, self.event_limit], |r| {
                let data: String = r.get(6)?;
                Ok((
                    r.get::<_, i64>(0)?,
                    EventInfo {
                        at: r.get(1)?,
                        kind: r.get(2)?,
                        corr: r.get(3)?,
                        phase_idx: r.get(4)?,
                        message: r.get(5)?,
                        data: serde_json::from_str(&data).unwrap_or(Value::Null),
                    },
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, e) = row.map_err(self.err())?;
            self.last_event = id;
            out.push(e);
        }
        Ok(out)
    }

    #[allow(clippy::type_complexity)]
    fn windows(&mut self) -> Result<Vec<(u32, String, String, i64, i64, u64, u64, u64, Option<hdrhistogram::Histogram<u64>>)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, phase_idx, worker, task_kind, start_ms, end_ms, attempted, succeeded, failed, hist
                 FROM windows WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map(params![self.last_window, BATCH], |r| {
                let hist: Vec<u8> = r.get(9)?;
                Ok((
                    r.get::<_, i64>(0)?,
                    (
                        r.get::<_, u32>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, i64>(6)? as u64,
                        r.get::<_, i64>(7)? as u64,
                        r.get::<_, i64>(8)? as u64,
                        // a damaged histogram loses its latencies, not its counts
                        decode_histogram(&hist).ok(),
                    ),
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, w) = row.map_err(self.err())?;
            self.last_window = id;
            out.push(w);
        }
        Ok(out)
    }

    fn samples(&mut self) -> Result<Vec<SampleRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, at_ms, phase_idx, cpu, memory, disk, tree_rss, health, violations != '[]'
                 FROM samples WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map(params![self.last_sample, BATCH], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    SampleRow {
                        at_ms: r.get(1)?,
                        phase: r.get(2)?,
                        cpu: r.get(3)?,
                        memory: r.get(4)?,
                        disk: r.get(5)?,
                        tree_rss: r.get::<_, i64>(6)?.max(0) as u64,
                        health: r.get(7)?,
                        violating: r.get(8)?,
                    },
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, s) = row.map_err(self.err())?;
            self.last_sample = id;
            out.push(s);
        }
        Ok(out)
    }

    fn phase_rows(&self) -> Result<Vec<(u32, String, String, i64)>, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT idx, name, task_kind, started_at FROM phases ORDER BY idx").map_err(self.err())?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, parse_ms(&r.get::<_, String>(3)?)))).map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }
}

/// The guardian thresholds of a stored config (none when it does not parse).
///
/// `launch --safety FILE` replaces `[safety]` without storing the file's text, so a campaign
/// launched that way is drawn with its config's thresholds.
pub fn limits_of(config_text: &str) -> Limits {
    match crate::config::Config::parse(config_text, "stored config") {
        Ok(cfg) => limits_of_config(&cfg),
        Err(_) => Limits::default(),
    }
}

/// The guardian thresholds of each phase of `cfg`.
pub fn limits_of_config(cfg: &crate::config::Config) -> Limits {
    Limits { phases: (0..cfg.phases.len()).map(|i| cfg.phase_safety(i).thresholds()).collect(), default: Some(cfg.safety.thresholds()) }
}
