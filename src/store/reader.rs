//! [`StoreReader`]: read access to one campaign's store, and the verified scan every reader of a
//! table goes through.
//!
//! Every row a report is built from is verified as it is read: its checksum, and for windows,
//! samples and events, that a query returned exactly the rows that were written (see
//! [`super::integrity`]). All reads of one [`StoreReader`] see one snapshot of the store, so a
//! reader opened while the campaign writes sees a consistent state. The readers of each table are
//! beside it: [`super::campaigns`], [`super::phases`], [`super::samples`], [`super::events`],
//! [`super::processes`].

use super::integrity::{id_list, load_groups, row_ok, select_sql, Fingerprint, Group, GroupKey};
use super::open::{classify, probe, recorded_output_dir, version_of};
use super::schema::{samples_of, windows_of, Table};
use super::{open_checked, store_path, StoreError};
use rusqlite::types::Type;
use rusqlite::{Connection, Row, ToSql};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Read access to one campaign's store.
pub struct StoreReader {
    /// The read-only connection; its open transaction is this reader's snapshot.
    conn: Connection,
    /// The store file, for errors and for what is read beside the store (`report.html`'s series).
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

/// A non-SQLite failure to decode a verified value, as the error [`classify`] calls corrupt.
pub(super) fn bad_value(col: usize, ty: Type, detail: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, ty, detail.into())
}

/// Which rows of a group-tracked table a query is meant to return: `(phase or -1, kind) -> bool`.
pub(super) type Pred<'a> = &'a dyn Fn(i64, &str) -> bool;

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

    /// The store file this reader reads.
    pub fn path(&self) -> &Path {
        &self.path
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
    pub(super) fn scan(
        &self,
        table: &Table,
        tail: &str,
        p: &[&dyn ToSql],
        f: impl FnMut(&Row<'_>) -> rusqlite::Result<()>,
    ) -> Result<Fingerprint, StoreError> {
        self.scan_sql(table, &format!("{} {tail}", select_sql(table)), p, f)
    }

    /// What was written to the groups of `table` that `pred` selects.
    pub(super) fn written(&self, table: &Table, pred: Pred<'_>) -> Fingerprint {
        let mut fp = Fingerprint::default();
        for ((t, phase, kind), g) in &self.groups {
            if t == table.name && pred(*phase, kind) {
                fp.merge(g.fp);
            }
        }
        fp
    }

    /// The id of the last row written to `table` with `kind` (any phase), from the verified
    /// ledger; None when none was.
    pub(super) fn last_written_id(&self, table: &Table, kind: &str) -> Option<i64> {
        self.groups.iter().filter(|((t, _, k), _)| t == table.name && k == kind).map(|(_, g)| g.max_id).max()
    }

    /// [`Self::scan`] of a group-tracked table, then a check that the query returned exactly the
    /// rows written to the groups `pred` selects; `what` names them in an error ("rows of phase 2").
    pub(super) fn scan_complete(
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
}
