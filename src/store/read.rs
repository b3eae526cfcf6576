//! Reading a campaign back from its store (reports, resume, reaping).
//!
//! Every row a report is built from is verified as it is read: its checksum, and for windows,
//! samples and events, that a query returned exactly the rows that were written (see
//! [`super::integrity`]). All reads of one [`StoreReader`] see one snapshot of the store, so a
//! reader opened while the campaign writes sees a consistent state.

use super::integrity::{id_list, load_groups, row_ok, select_sql, Fingerprint, Group, GroupKey};
use super::open::{classify, probe, recorded_output_dir, version_of};
use super::schema::{samples_of, windows_of, Table, CAMPAIGN, EVENTS, PHASES, PROCESSES, TASK_INFO};
use super::{event_jsonl_line, open_checked, store_path, validate_campaign_id, StoreError};
use crate::fmt::round3;
use crate::metrics::{decode_histogram, Window};
use crate::recovery::FailureClass;
use rusqlite::types::Type;
use rusqlite::{Connection, Row, ToSql};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// The host's side of the samples: what was left for it (None: a store from before the host
    /// figures were recorded, or no sample).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostAgg>,
}

/// The host's headroom over a phase, from the host figures of its samples (percent of all cores
/// for CPU, percent of time for pressure), rounded to 3 decimals.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostAgg {
    /// Samples taken while the campaign was confined to its reservation.
    pub confined_samples: u64,
    /// The campaign's CPU cap while confined (None: never confined).
    pub cpu_cap_percent: Option<f64>,
    /// CPU of the campaign, avg.
    pub campaign_cpu_avg: f64,
    /// CPU of the campaign, max.
    pub campaign_cpu_max: f64,
    /// CPU used outside the campaign, avg.
    pub host_cpu_avg: f64,
    /// CPU used outside the campaign, max.
    pub host_cpu_max: f64,
    /// Run-queue wait of the host's threads, avg over the confined samples (None: not measured).
    pub host_wait_avg: Option<f64>,
    /// Run-queue wait, max.
    pub host_wait_max: Option<f64>,
    /// Host CPU demand (used + waited for), avg: what the host CPU rule judges while confined.
    pub host_demand_avg: f64,
    /// Host CPU demand, max: the least headroom the host had is 100 minus this.
    pub host_demand_max: f64,
    /// CPU pressure (some, avg10), max (None: no PSI on this kernel).
    pub cpu_pressure_max: Option<f64>,
    /// Host stall (the larger of memory and io full pressure, avg10), avg.
    pub stall_avg: Option<f64>,
    /// Host stall, max: what the pressure rule judges.
    pub stall_max: Option<f64>,
    /// The phase's CPU threshold, which judges the host's demand while confined (set by the
    /// report from the stored config; None when it does not parse).
    #[serde(default)]
    pub cpu_limit: Option<f64>,
    /// The pressure threshold, where there is PSI (set by the report).
    #[serde(default)]
    pub stall_limit: Option<f64>,
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
    /// What was written per table, phase and kind (verified at open).
    groups: HashMap<GroupKey, Group>,
    /// The campaign's reports directory, for errors ("the reports already written in … are
    /// unaffected"); None when the campaign row does not verify.
    reports: Option<PathBuf>,
    /// The samples table as this store's schema has it (an older store's rows verify over its own
    /// columns).
    samples: &'static Table,
    /// The windows table as this store's schema has it (before version 4: no in-page histogram).
    windows: &'static Table,
}

/// A sum of floats as SQLite's `sum()`/`avg()` compute it (Kahan-Babuska-Neumaier), so resource
/// averages are the ones SQL gave before they were computed here from verified rows.
#[derive(Default)]
struct KbnSum {
    sum: f64,
    err: f64,
}

impl KbnSum {
    fn add(&mut self, r: f64) {
        let s = self.sum;
        let t = s + r;
        if s.abs() > r.abs() {
            self.err += (s - t) + r;
        } else {
            self.err += (r - t) + s;
        }
        self.sum = t;
    }
    fn avg(&self, n: u64) -> f64 {
        if n == 0 {
            0.0
        } else {
            (self.sum + self.err) / n as f64
        }
    }
}

/// A non-SQLite failure to decode a verified value, as the error [`classify`] calls corrupt.
fn bad_value(col: usize, ty: Type, detail: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, ty, detail.into())
}

/// Which rows of a group-tracked table a query is meant to return: `(phase or -1, kind) -> bool`.
type Pred<'a> = &'a dyn Fn(i64, &str) -> bool;

impl StoreReader {
    /// Opens a store read-only: schema version, page structure and the `row_groups` ledger checked.
    /// Records are verified as they are read.
    pub fn open(path: &Path) -> Result<StoreReader, StoreError> {
        let conn = open_checked(path, true)?;
        let map = |e| classify(path, e, probe(path, false), None);
        // one snapshot for every read of this reader (a campaign may be writing)
        conn.execute_batch("BEGIN").map_err(map)?;
        let reports = recorded_output_dir(&conn);
        let (groups, bad) = load_groups(&conn).map_err(|e| classify(path, e, probe(path, false), reports.as_deref()))?;
        if !bad.is_empty() {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("table row_groups: rows {} fail their checksums", id_list(&bad)),
                reports,
            });
        }
        let version = version_of(&conn).map_err(|e| classify(path, e, probe(path, false), reports.as_deref()))?;
        Ok(StoreReader { conn, path: path.to_path_buf(), groups, reports, samples: samples_of(version), windows: windows_of(version) })
    }

    /// Opens the store of campaign `id` in `state_dir`. An invalid id is [`StoreError::InvalidId`]
    /// and an id with no store is [`StoreError::NotFound`], both bad input
    /// ([`StoreError::is_bad_input`]).
    pub fn open_campaign(state_dir: &Path, id: &str) -> Result<StoreReader, StoreError> {
        let path = store_path(state_dir, id)?;
        match std::fs::symlink_metadata(&path) {
            Ok(_) => StoreReader::open(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound(id.to_string())),
            Err(e) => Err(super::open::from_io(&path, e)),
        }
    }

    pub(super) fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| classify(&self.path, e, probe(&self.path, false), self.reports.as_deref())
    }

    /// Moves this reader to the store's newest committed state (a campaign may be writing), with
    /// the row-group ledger of that state, so complete reads (e.g. the phases) check against what
    /// had been written by then.
    pub fn refresh(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT; BEGIN").map_err(self.err())?;
        let (groups, bad) = load_groups(&self.conn).map_err(self.err())?;
        if !bad.is_empty() {
            return Err(self.corrupt(format!("table row_groups: rows {} fail their checksums", id_list(&bad))));
        }
        self.groups = groups;
        Ok(())
    }

    /// The connection (its reads see this reader's snapshot).
    pub(super) fn conn_ref(&self) -> &Connection {
        &self.conn
    }

    /// The samples table as this store's schema has it.
    pub(super) fn samples_table(&self) -> &'static Table {
        self.samples
    }

    /// The windows table as this store's schema has it.
    pub(super) fn windows_table(&self) -> &'static Table {
        self.windows
    }

    /// A damage error naming this store and the reports it wrote.
    pub fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt { path: self.path.clone(), detail, reports: self.reports.clone() }
    }

    /// Runs `sql` (which selects `rowid, <table.cols>, crc[, more]`) and calls `f` with each row
    /// whose checksum matches. Rows that do not match are named in the error after the scan.
    /// Returns the fingerprint of the rows seen.
    pub(super) fn scan_sql(
        &self,
        table: &Table,
        sql: &str,
        p: &[&dyn ToSql],
        mut f: impl FnMut(&Row<'_>) -> rusqlite::Result<()>,
    ) -> Result<Fingerprint, StoreError> {
        let mut st = self.conn.prepare_cached(sql).map_err(self.err())?;
        let mut rows = st.query(p).map_err(self.err())?;
        let mut fp = Fingerprint::default();
        let mut bad = Vec::new();
        while let Some(r) = rows.next().map_err(self.err())? {
            let rowid: i64 = r.get(0).map_err(self.err())?;
            if !row_ok(table, r).map_err(self.err())? {
                bad.push(rowid);
                continue;
            }
            fp.add(rowid);
            f(r).map_err(self.err())?;
        }
        if !bad.is_empty() {
            let what = if bad.len() == 1 { "row {} fails its checksum" } else { "rows {} fail their checksums" };
            return Err(self.corrupt(format!("table {}: {}", table.name, what.replace("{}", &id_list(&bad)))));
        }
        Ok(fp)
    }

    /// [`Self::scan_sql`] of `SELECT rowid, <cols>, crc FROM <table> <tail>`.
    fn scan(
        &self,
        table: &Table,
        tail: &str,
        p: &[&dyn ToSql],
        f: impl FnMut(&Row<'_>) -> rusqlite::Result<()>,
    ) -> Result<Fingerprint, StoreError> {
        self.scan_sql(table, &format!("{} {tail}", select_sql(table)), p, f)
    }

    /// What was written to the groups of `table` that `pred` selects.
    fn written(&self, table: &Table, pred: Pred<'_>) -> Fingerprint {
        let mut fp = Fingerprint::default();
        for ((t, phase, kind), g) in &self.groups {
            if t == table.name && pred(*phase, kind) {
                fp.merge(g.fp);
            }
        }
        fp
    }

    /// [`Self::scan`] of a group-tracked table, then a check that the query returned exactly the
    /// rows written to the groups `pred` selects; `what` names them in an error ("rows of phase 2").
    fn scan_complete(
        &self,
        table: &Table,
        tail: &str,
        p: &[&dyn ToSql],
        pred: Pred<'_>,
        what: &str,
        f: impl FnMut(&Row<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), StoreError> {
        let got = self.scan(table, tail, p, f)?;
        let written = self.written(table, pred);
        if got == written {
            return Ok(());
        }
        Err(self.explain_incomplete(table, tail, p, pred, what, got, written))
    }

    /// The error for a query that did not return the rows written: compares it with a scan of the
    /// table itself (no index) to tell a damaged index (and its rows) from rows lost in the table.
    #[allow(clippy::too_many_arguments)]
    fn explain_incomplete(
        &self,
        table: &Table,
        tail: &str,
        p: &[&dyn ToSql],
        pred: Pred<'_>,
        what: &str,
        got: Fingerprint,
        written: Fingerprint,
    ) -> StoreError {
        let name = table.name;
        let lost = || self.corrupt(format!("table {name}: {} {what} found where {} were written", got.n, written.n));
        let mut returned: BTreeMap<i64, u32> = BTreeMap::new();
        if self.scan(table, tail, p, |r| r.get(0).map(|id: i64| *returned.entry(id).or_default() += 1)).is_err() {
            return lost();
        }
        let (pc, kc) = (table.phase_col.map(|c| c + 1), table.kind_col.map(|c| c + 1));
        let mut in_table = BTreeSet::new();
        let full = self.scan(table, "NOT INDEXED", &[], |r| {
            let phase = match pc {
                Some(c) => r.get::<_, Option<i64>>(c)?.unwrap_or(-1),
                None => -1,
            };
            let kind = match kc {
                Some(c) => r.get::<_, String>(c)?,
                None => String::new(),
            };
            if pred(phase, &kind) {
                in_table.insert(r.get::<_, i64>(0)?);
            }
            Ok(())
        });
        if let Err(e) = full {
            return e;
        }
        let mut table_fp = Fingerprint::default();
        in_table.iter().for_each(|id| table_fp.add(*id));
        if table_fp != written {
            return lost();
        }
        let missing: Vec<i64> = in_table.iter().filter(|id| !returned.contains_key(id)).copied().collect();
        let unexpected: Vec<i64> = returned.iter().filter(|(id, n)| !in_table.contains(id) || **n > 1).map(|(id, _)| *id).collect();
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("rows {} missing", id_list(&missing)));
        }
        if !unexpected.is_empty() {
            parts.push(format!("rows {} returned wrongly", id_list(&unexpected)));
        }
        self.corrupt(format!(
            "table {name}: its index returned the wrong {what} ({}); `sqlite3 {} REINDEX` rebuilds the indexes",
            parts.join(", "),
            self.path.display()
        ))
    }

    /// The campaign row.
    pub fn campaign(&self) -> Result<CampaignInfo, StoreError> {
        let mut out = None;
        self.scan(&CAMPAIGN, "LIMIT 1", &[], |r| {
            out = Some(CampaignInfo {
                id: r.get(1)?,
                profile: r.get(2)?,
                config_source: r.get(3)?,
                config_text: r.get(4)?,
                started_at: r.get(5)?,
                ended_at: r.get(6)?,
                outcome: r.get(7)?,
                stop_reason: r.get(8)?,
                output_dir: PathBuf::from(r.get::<_, String>(9)?),
                resumes: r.get(10)?,
            });
            Ok(())
        })?;
        out.ok_or_else(|| self.corrupt("table campaign: no campaign row".into()))
    }

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
        let with_in_page = self.windows.has("hist_in_page");
        let with_console = self.windows.has("console");
        self.scan_complete(self.windows, "WHERE phase_idx = ?1 ORDER BY id", &[&phase], &pred, &format!("windows of phase {idx}"), |r| {
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

    /// Resource statistics over `rows` of the samples table (`WHERE` tail and its rows' description).
    fn resources(&self, tail: &str, p: &[&dyn ToSql], pred: Pred<'_>, what: &str) -> Result<ResourceAgg, StoreError> {
        #[derive(Default)]
        struct Acc {
            n: u64,
            cpu: KbnSum,
            memory: KbnSum,
            disk: KbnSum,
            tree_cpu: KbnSum,
            health: KbnSum,
            rss_sum: i128,
            cpu_max: Option<f64>,
            memory_max: Option<f64>,
            disk_max: Option<f64>,
            tree_cpu_max: Option<f64>,
            rss_max: Option<i64>,
            health_min: Option<f64>,
            violating: u64,
        }
        fn max(m: &mut Option<f64>, v: f64) {
            *m = Some(m.map_or(v, |x| x.max(v)));
        }
        let mut a = Acc::default();
        let mut host = HostAcc::default();
        let with_host = self.samples.has("cpu_cap");
        self.scan_complete(self.samples, tail, p, pred, what, |r| {
            if with_host {
                host.add(&host_figures(r)?);
            }
            let (cpu, memory, disk): (f64, f64, f64) = (r.get(5)?, r.get(6)?, r.get(7)?);
            let (rss, tree_cpu, health): (i64, f64, f64) = (r.get(8)?, r.get(9)?, r.get(11)?);
            let violations: String = r.get(12)?;
            a.n += 1;
            a.cpu.add(cpu);
            a.memory.add(memory);
            a.disk.add(disk);
            a.tree_cpu.add(tree_cpu);
            a.health.add(health);
            a.rss_sum += i128::from(rss);
            max(&mut a.cpu_max, cpu);
            max(&mut a.memory_max, memory);
            max(&mut a.disk_max, disk);
            max(&mut a.tree_cpu_max, tree_cpu);
            a.rss_max = Some(a.rss_max.map_or(rss, |x| x.max(rss)));
            a.health_min = Some(a.health_min.map_or(health, |x| x.min(health)));
            if violations != "[]" {
                a.violating += 1;
            }
            Ok(())
        })?;
        let mb = |v: f64| round3(v / (1024.0 * 1024.0));
        let rss_avg = if a.n == 0 { 0.0 } else { a.rss_sum as f64 / a.n as f64 };
        Ok(ResourceAgg {
            samples: a.n,
            cpu_avg: round3(a.cpu.avg(a.n)),
            cpu_max: round3(a.cpu_max.unwrap_or(0.0)),
            memory_avg: round3(a.memory.avg(a.n)),
            memory_max: round3(a.memory_max.unwrap_or(0.0)),
            disk_avg: round3(a.disk.avg(a.n)),
            disk_max: round3(a.disk_max.unwrap_or(0.0)),
            tree_rss_mb_avg: mb(rss_avg),
            tree_rss_mb_max: mb(a.rss_max.unwrap_or(0) as f64),
            tree_cpu_avg: round3(a.tree_cpu.avg(a.n)),
            tree_cpu_max: round3(a.tree_cpu_max.unwrap_or(0.0)),
            health_avg: round3(a.health.avg(a.n)),
            health_min: round3(a.health_min.unwrap_or(0.0)),
            violating_samples: a.violating,
            host: host.finish(),
        })
    }

    /// Resource statistics of a phase.
    pub fn phase_resources(&self, idx: u32) -> Result<ResourceAgg, StoreError> {
        let phase = i64::from(idx);
        self.resources("WHERE phase_idx = ?1 ORDER BY id", &[&phase], &|p, _| p == phase, &format!("samples of phase {idx}"))
    }

    /// Count of events of a kind in a phase (or all), as written (from the verified ledger).
    pub fn count_events(&self, phase: Option<u32>, kind: &str) -> Result<u64, StoreError> {
        let phase = phase.map(i64::from);
        Ok(self.written(&EVENTS, &|p, k| k == kind && phase.is_none_or(|q| q == p)).n as u64)
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

    /// Processes recorded and not marked ended.
    pub fn live_processes(&self) -> Result<Vec<ProcessRecord>, StoreError> {
        let mut out = Vec::new();
        let sql = format!("SELECT rowid, {}, crc, ended_at FROM processes", PROCESSES.cols);
        self.scan_sql(&PROCESSES, &sql, &[], |r| {
            if r.get::<_, Option<String>>(9)?.is_none() {
                out.push(ProcessRecord {
                    pid: r.get(1)?,
                    start_time: r.get::<_, i64>(2)? as u64,
                    kind: r.get(3)?,
                    worker: r.get(4)?,
                    pgid: r.get(5)?,
                    marker: r.get(6)?,
                });
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Samples in total and with violations (whole campaign).
    pub fn sample_counts(&self) -> Result<(u64, u64), StoreError> {
        let all = self.resources("ORDER BY id", &[], &|_, _| true, "samples")?;
        Ok((all.samples, all.violating_samples))
    }
}

/// The host figures of a `samples` row selected as `rowid, <SAMPLES.cols>, crc` (columns 13–19).
pub(crate) fn host_figures(r: &Row<'_>) -> rusqlite::Result<super::HostFigures> {
    Ok(super::HostFigures {
        cpu_cap: r.get(13)?,
        campaign_cpu: r.get::<_, Option<f64>>(14)?.unwrap_or(0.0),
        host_cpu: r.get::<_, Option<f64>>(15)?.unwrap_or(0.0),
        host_wait: r.get(16)?,
        psi_cpu: r.get(17)?,
        psi_memory: r.get(18)?,
        psi_io: r.get(19)?,
    })
}

/// Sums of host figures towards a [`HostAgg`].
#[derive(Default)]
struct HostAcc {
    n: u64,
    confined: u64,
    cap: Option<f64>,
    campaign: (KbnSum, f64),
    host: (KbnSum, f64),
    demand: (KbnSum, f64),
    wait: (KbnSum, Option<f64>),
    waits: u64,
    cpu_pressure: Option<f64>,
    stall: (KbnSum, Option<f64>),
    stalls: u64,
}

impl HostAcc {
    fn add(&mut self, h: &super::HostFigures) {
        let opt_max = |m: Option<f64>, v: f64| Some(m.map_or(v, |x: f64| x.max(v)));
        self.n += 1;
        if let Some(cap) = h.cpu_cap {
            self.confined += 1;
            self.cap = opt_max(self.cap, cap);
        }
        for ((sum, max), v) in [(&mut self.campaign, h.campaign_cpu), (&mut self.host, h.host_cpu), (&mut self.demand, h.demand())] {
            sum.add(v);
            *max = max.max(v);
        }
        if let Some(w) = h.host_wait {
            self.wait.0.add(w);
            self.wait.1 = opt_max(self.wait.1, w);
            self.waits += 1;
        }
        if let Some(c) = h.psi_cpu {
            self.cpu_pressure = opt_max(self.cpu_pressure, c);
        }
        if let Some(st) = h.stall() {
            self.stall.0.add(st);
            self.stall.1 = opt_max(self.stall.1, st);
            self.stalls += 1;
        }
    }

    fn finish(self) -> Option<HostAgg> {
        if self.n == 0 {
            return None;
        }
        let avg_of = |sum: &KbnSum, n: u64| (n > 0).then(|| round3(sum.avg(n)));
        Some(HostAgg {
            confined_samples: self.confined,
            cpu_cap_percent: self.cap.map(round3),
            campaign_cpu_avg: round3(self.campaign.0.avg(self.n)),
            campaign_cpu_max: round3(self.campaign.1),
            host_cpu_avg: round3(self.host.0.avg(self.n)),
            host_cpu_max: round3(self.host.1),
            host_wait_avg: avg_of(&self.wait.0, self.waits),
            host_wait_max: self.wait.1.map(round3),
            host_demand_avg: round3(self.demand.0.avg(self.n)),
            host_demand_max: round3(self.demand.1),
            cpu_pressure_max: self.cpu_pressure.map(round3),
            stall_avg: avg_of(&self.stall.0, self.stalls),
            stall_max: self.stall.1.map(round3),
            cpu_limit: None,
            stall_limit: None,
        })
    }
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

/// Lists campaign ids that have a store under `state_dir`, oldest first (ids sort by time).
/// Directory names that are not valid campaign ids are left out.
pub fn list_campaigns(state_dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(state_dir.join("runs"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("store.sqlite").exists())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|id| validate_campaign_id(id).is_ok())
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
        let last = self.groups.iter().filter(|((t, _, k), _)| t == EVENTS.name && k == kind).map(|(_, g)| g.max_id).max();
        let Some(id) = last else { return Ok(None) };
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
