//! Reads a campaign's store into a [`Model`]: all of it for a report or a finished campaign, or
//! what is new since the last call while the campaign writes it (the live dashboard follows its
//! own campaign's store for the op windows and guardian samples, which are not events).
//!
//! The rows come from the store's own reader ([`StoreReader`], read-only), which verifies each
//! row's checksum as the reports' reads do: a damaged row stops the follower with an error that
//! names it, and `report.html` is not built from it.

use super::model::{Limits, Model, WindowIn};
use super::series::{bucket_width, OpsRow, SampleRow};
use crate::events::EventRecord;
use crate::metrics::decode_histogram;
use crate::store::{unix_ms, StoreError, StoreReader};
use std::path::Path;
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
    reader: StoreReader,
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
            reader: StoreReader::open(path)?,
            last_window: 0,
            last_sample: 0,
            last_event: 0,
            event_limit: i64::MAX,
            known_phases: Default::default(),
        })
    }

    /// Reads only the events stored until now: the later ones come from the event bus.
    pub fn limit_events_to_now(&mut self) -> Result<(), StoreError> {
        self.reader.refresh()?;
        self.event_limit = self.reader.last_event_id()?;
        Ok(())
    }

    /// The campaign row.
    pub fn campaign(&self) -> Result<CampaignRow, StoreError> {
        let c = self.reader.campaign()?;
        Ok(CampaignRow {
            id: c.id,
            profile: c.profile,
            started_ms: parse_ms(&c.started_at),
            ended: c.ended_at.is_some(),
            config_text: c.config_text,
        })
    }

    /// The time the stored data spans, ms (start of the campaign to its last window, sample or
    /// event): what a report's bucket width is chosen from.
    pub fn span_ms(&self, started_ms: i64) -> Result<i64, StoreError> {
        Ok(self.reader.last_data_ms()? - started_ms)
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
        self.reader.refresh()?;
        let evs = if events { self.reader.events_after(self.last_event, self.event_limit, BATCH)? } else { Vec::new() };
        let windows = self.reader.windows_after(self.last_window, BATCH)?;
        let samples = self.reader.samples_after(self.last_sample, BATCH)?;
        self.last_event = evs.last().map_or(self.last_event, |e| e.0);
        self.last_window = windows.last().map_or(self.last_window, |w| w.id);
        self.last_sample = samples.last().map_or(self.last_sample, |s| s.id);
        let new_phases = windows.iter().any(|w| !self.known_phases.contains(&w.phase_idx));
        let phase_rows = if new_phases { self.reader.phases()? } else { Vec::new() };
        let any = !(evs.is_empty() && windows.is_empty() && samples.is_empty());
        let mut m = model.lock().unwrap_or_else(|e| e.into_inner());
        for p in phase_rows {
            m.on_phase_row(p.idx, &p.name, &p.task_kind, parse_ms(&p.started_at));
            self.known_phases.insert(p.idx);
        }
        for (_, e) in &evs {
            match EventRecord::from_stored(e) {
                Ok((_, event)) => {
                    let at = humantime::parse_rfc3339_weak(&e.at).unwrap_or(std::time::UNIX_EPOCH);
                    m.on_event(&EventRecord { at, corr: e.corr.clone(), phase: e.phase_idx, event });
                }
                Err(err) => tracing::warn!(target: "stressctl::dashboard", "{err} (skipped)"),
            }
        }
        for w in &windows {
            // verified bytes that do not decode: the window keeps its counts, not its latencies
            let hist = decode_histogram(&w.hist).ok();
            m.on_window(&WindowIn {
                phase: w.phase_idx,
                worker: &w.worker,
                task: &w.task_kind,
                ops: OpsRow { start_ms: w.start_ms, end_ms: w.end_ms, attempted: w.attempted, succeeded: w.succeeded, hist: hist.as_ref() },
                failed: w.failed,
            });
        }
        for s in samples {
            m.on_sample(SampleRow {
                at_ms: s.at_ms,
                phase: s.phase_idx,
                cpu: s.cpu,
                memory: s.memory,
                disk: s.disk,
                tree_rss: s.tree_rss,
                health: s.health,
                violating: s.violating,
                host: s.host,
            });
        }
        Ok(any)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CampaignRecord, HostFigures, SampleRow as StoredRow, Store};
    use std::time::{Duration, UNIX_EPOCH};

    fn store_with_samples(dir: &Path, n: u64) -> std::path::PathBuf {
        let path = dir.join("store.sqlite");
        let rec = CampaignRecord::quick_for_test("c-follow", UNIX_EPOCH + Duration::from_secs(1_800_000_000), dir);
        let store = Store::create(&path, &rec, &dir.join("events.jsonl")).unwrap();
        for i in 0..n {
            store.sample(StoredRow {
                at: UNIX_EPOCH + Duration::from_secs(1_800_000_000 + i),
                phase_idx: None,
                cpu: 40.0,
                memory: 50.0,
                disk: 10.0,
                tree_rss_bytes: 1 << 20,
                tree_cpu: 10.0,
                tree_processes: 2,
                health: 90.0,
                violations: "[]".into(),
                host: HostFigures { cpu_cap: Some(80.0), campaign_cpu: 30.0, host_cpu: 10.0, host_wait: Some(2.0), ..Default::default() },
                browsers: Vec::new(),
            });
        }
        store.close().unwrap();
        path
    }

    #[test]
    fn a_damaged_sample_stops_the_follower_naming_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_with_samples(dir.path(), 5);
        let m = StoreFollower::open(&path).unwrap().read_all(None).unwrap();
        let cols = m.overview(None).resources;
        assert_eq!(cols.host_demand.iter().flatten().copied().fold(0.0, f64::max), 12.0, "the host figures reach the charts");
        assert_eq!(cols.cpu_cap.iter().flatten().next(), Some(&80.0));
        // one value changed behind the store's back: a chart would show 99 % CPU that never was
        rusqlite::Connection::open(&path).unwrap().execute("UPDATE samples SET cpu = 99.0 WHERE id = 3", []).unwrap();
        let e = StoreFollower::open(&path).unwrap().read_all(None).err().expect("a damaged row is an error");
        let msg = e.to_string();
        assert!(matches!(e, StoreError::Corrupt { .. }) && msg.contains("table samples: row 3 fails its checksum"), "{msg}");
    }
}
