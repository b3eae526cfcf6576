//! Record checksums and row-group fingerprints: why a damaged store can never give a silently
//! wrong report.
//!
//! SQLite checks the structure of its pages (`PRAGMA quick_check`) but not what a record says: one
//! flipped byte in a record turns a p99 or a task name into another valid value. So every row
//! carries the CRC32 of its columns (tagged by type, after the table name), written with it and
//! verified by every read a report is built from. CRC32 detects every burst of up to 32 bits,
//! so any single damaged byte of a record.
//!
//! A checksum cannot tell that a row is *missing*: an index whose entry was damaged can skip a
//! row, return one twice, or return another one in its place, and a report would be built from
//! fewer windows. So the writer also keeps, per table, phase and (for events) kind, the number of
//! rows and a set hash of their ids ([`Fingerprint`]) in `row_groups` (itself checksummed); a
//! reader compares what a query returned with what was written. Windows, samples and events get
//! their ids from the writer (so they are known before the insert, and hashed with the row).

use super::schema::{Table, ROW_GROUPS};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, params_from_iter, Connection, Row};
use std::collections::{BTreeSet, HashMap};

fn feed(h: &mut crc32fast::Hasher, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => h.update(&[0]),
        ValueRef::Integer(i) => {
            h.update(&[1]);
            h.update(&i.to_le_bytes());
        }
        ValueRef::Real(f) => {
            // SQLite may store -0.0 as the integer 0 and read it back as 0.0
            let f = if f == 0.0 { 0.0 } else { f };
            h.update(&[2]);
            h.update(&f.to_bits().to_le_bytes());
        }
        ValueRef::Text(t) => {
            h.update(&[3]);
            h.update(&(t.len() as u64).to_le_bytes());
            h.update(t);
        }
        ValueRef::Blob(b) => {
            h.update(&[4]);
            h.update(&(b.len() as u64).to_le_bytes());
            h.update(b);
        }
    }
}

/// The checksum of a row of `table` whose checksummed columns are `values`, in [`Table::cols`] order.
pub(crate) fn row_crc<'a>(table: &Table, values: impl IntoIterator<Item = ValueRef<'a>>) -> i64 {
    let mut h = crc32fast::Hasher::new();
    h.update(table.name.as_bytes());
    h.update(&[0]);
    for v in values {
        feed(&mut h, v);
    }
    i64::from(h.finalize())
}

/// For a row selected as `rowid, <table.cols>, crc`: whether its stored checksum matches.
pub(crate) fn row_ok(table: &Table, row: &Row<'_>) -> rusqlite::Result<bool> {
    let n = table.ncols();
    let mut h = crc32fast::Hasher::new();
    h.update(table.name.as_bytes());
    h.update(&[0]);
    for i in 1..=n {
        feed(&mut h, row.get_ref(i)?);
    }
    Ok(matches!(row.get_ref(n + 1)?, ValueRef::Integer(c) if c == i64::from(h.finalize())))
}

/// `SELECT rowid, <cols>, crc FROM <table>` (the shape [`row_ok`] verifies).
pub(crate) fn select_sql(table: &Table) -> String {
    format!("SELECT rowid, {}, crc FROM {}", table.cols, table.name)
}

fn mix64(id: i64) -> i64 {
    // splitmix64's finalizer: ids 1, 2, 3… become unrelated 64-bit values
    let mut z = (id as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as i64
}

/// A multiset of row ids as a count and an order-independent hash: equal when the same rows were
/// seen, different (but for a 2^-64 chance) when one is missing, repeated or replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    /// Rows.
    pub n: i64,
    /// Wrapping sum of the mixed ids.
    pub mix: i64,
}

impl Fingerprint {
    /// Adds one row.
    pub fn add(&mut self, id: i64) {
        self.n += 1;
        self.mix = self.mix.wrapping_add(mix64(id));
    }
    /// Adds another set.
    pub fn merge(&mut self, o: Fingerprint) {
        self.n += o.n;
        self.mix = self.mix.wrapping_add(o.mix);
    }
}

/// What was written to one group: its fingerprint and its last row id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Group {
    /// The rows.
    pub fp: Fingerprint,
    /// The highest id (the newest row).
    pub max_id: i64,
}

/// `(table, phase index or -1, event kind or "")`.
pub(crate) type GroupKey = (String, i64, String);

/// The group key of a row.
pub(crate) fn group_key(table: &Table, phase: Option<i64>, kind: &str) -> GroupKey {
    (table.name.to_string(), phase.unwrap_or(-1), kind.to_string())
}

/// Reads every group. Returns them and the rowids of group rows whose checksum does not match.
pub(crate) fn load_groups(conn: &Connection) -> rusqlite::Result<(HashMap<GroupKey, Group>, Vec<i64>)> {
    let mut st = conn.prepare(&select_sql(&ROW_GROUPS))?;
    let mut rows = st.query([])?;
    let mut out = HashMap::new();
    let mut bad = Vec::new();
    while let Some(r) = rows.next()? {
        if !row_ok(&ROW_GROUPS, r)? {
            bad.push(r.get(0)?);
            continue;
        }
        let key: GroupKey = (r.get(1)?, r.get(2)?, r.get(3)?);
        out.insert(key, Group { fp: Fingerprint { n: r.get(4)?, mix: r.get(5)? }, max_id: r.get(6)? });
    }
    Ok((out, bad))
}

/// The writer's bookkeeping: the next id of each id-keyed table and the groups changed since the
/// last commit.
pub(crate) struct Ledger {
    next_id: HashMap<&'static str, i64>,
    groups: HashMap<GroupKey, Group>,
    dirty: BTreeSet<GroupKey>,
}

impl Ledger {
    /// The ledger of a store as it is on disk: ids continue after the highest one of each table.
    /// Errors name the rowids of damaged group rows (a damaged store is not written to).
    pub fn load(conn: &Connection, id_tables: &[&'static Table]) -> rusqlite::Result<Result<Ledger, Vec<i64>>> {
        let (groups, bad) = load_groups(conn)?;
        if !bad.is_empty() {
            return Ok(Err(bad));
        }
        let mut next_id = HashMap::new();
        for t in id_tables {
            let max: i64 = conn.query_row(&format!("SELECT COALESCE(MAX(id), 0) FROM {}", t.name), [], |r| r.get(0))?;
            next_id.insert(t.name, max + 1);
        }
        Ok(Ok(Ledger { next_id, groups, dirty: BTreeSet::new() }))
    }

    /// Takes the next id of `table` and counts the row in its group.
    pub fn next(&mut self, table: &'static Table, phase: Option<i64>, kind: &str) -> i64 {
        let slot = self.next_id.entry(table.name).or_insert(1);
        let id = *slot;
        *slot += 1;
        let key = group_key(table, phase, kind);
        let g = self.groups.entry(key.clone()).or_default();
        g.fp.add(id);
        g.max_id = g.max_id.max(id);
        self.dirty.insert(key);
        id
    }

    /// Records the rows of a small table that is written by upserts (phases, task info) as its one
    /// group, from the table itself: called in the transaction that changed it.
    pub fn count_table(&mut self, tx: &Connection, table: &Table) -> rusqlite::Result<()> {
        let mut g = Group::default();
        let mut st = tx.prepare_cached(&format!("SELECT rowid FROM {}", table.name))?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            g.fp.add(id);
            g.max_id = g.max_id.max(id);
        }
        let key = group_key(table, None, "");
        if self.groups.get(&key) != Some(&g) {
            self.groups.insert(key.clone(), g);
            self.dirty.insert(key);
        }
        Ok(())
    }

    /// Writes the groups changed since the last call (inside the commit's transaction).
    pub fn save(&mut self, tx: &Connection) -> rusqlite::Result<()> {
        for key in std::mem::take(&mut self.dirty) {
            let Some(g) = self.groups.get(&key) else { continue };
            let values = [
                Value::Text(key.0.clone()),
                Value::Integer(key.1),
                Value::Text(key.2.clone()),
                Value::Integer(g.fp.n),
                Value::Integer(g.fp.mix),
                Value::Integer(g.max_id),
            ];
            insert_sealed(
                tx,
                "INSERT OR REPLACE INTO row_groups (tbl, phase, kind, n, mix, max_id, crc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                &ROW_GROUPS,
                values,
            )?;
        }
        Ok(())
    }
}

/// Inserts a row with its checksum appended as the last parameter of `sql`.
pub(crate) fn insert_sealed<const N: usize>(tx: &Connection, sql: &str, table: &Table, values: [Value; N]) -> rusqlite::Result<()> {
    debug_assert_eq!(N, table.ncols(), "{} checksums {} columns", table.name, table.ncols());
    let crc = row_crc(table, values.iter().map(ValueRef::from));
    tx.prepare_cached(sql)?.execute(params_from_iter(values.iter().chain(std::iter::once(&Value::Integer(crc)))))?;
    Ok(())
}

/// Recomputes the checksum of the rows of `table` matching `filter` after an update, from the
/// values as stored.
pub(crate) fn reseal(tx: &Connection, table: &Table, filter: &str, p: impl rusqlite::Params) -> rusqlite::Result<()> {
    let mut updates = Vec::new();
    {
        let mut st = tx.prepare_cached(&format!("SELECT rowid, {} FROM {} WHERE {filter}", table.cols, table.name))?;
        let mut rows = st.query(p)?;
        let n = table.ncols();
        while let Some(r) = rows.next()? {
            let rowid: i64 = r.get(0)?;
            let values = (1..=n).map(|i| r.get_ref(i)).collect::<rusqlite::Result<Vec<_>>>()?;
            updates.push((rowid, row_crc(table, values)));
        }
    }
    let mut st = tx.prepare_cached(&format!("UPDATE {} SET crc = ?1 WHERE rowid = ?2", table.name))?;
    for (rowid, crc) in updates {
        st.execute(params![crc, rowid])?;
    }
    Ok(())
}

/// "3, 17, 18 and 4 more": ids for an error line.
pub(crate) fn id_list(ids: &[i64]) -> String {
    const SHOWN: usize = 8;
    let mut s = ids.iter().take(SHOWN).map(i64::to_string).collect::<Vec<_>>().join(", ");
    if ids.len() > SHOWN {
        s.push_str(&format!(" and {} more", ids.len() - SHOWN));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::{SAMPLES, WINDOWS};

    #[test]
    fn every_single_byte_change_of_a_record_changes_its_checksum() {
        let values = [Value::Integer(7), Value::Text("synthetic".into()), Value::Real(12.5), Value::Blob(vec![1, 2, 3]), Value::Null];
        let base = row_crc(&WINDOWS, values.iter().map(ValueRef::from));
        // the same values under another table name differ
        assert_ne!(base, row_crc(&SAMPLES, values.iter().map(ValueRef::from)));
        let text = b"synthetic".to_vec();
        for i in 0..text.len() {
            for x in [1u8, 0x80, 0xff] {
                let mut b = text.clone();
                b[i] ^= x;
                let changed = [values[0].clone(), Value::Blob(b), values[2].clone(), values[3].clone(), Value::Null];
                let changed_text = row_crc(
                    &WINDOWS,
                    changed.iter().map(|v| match v {
                        Value::Blob(b) if b.len() == text.len() => ValueRef::Text(b),
                        v => ValueRef::from(v),
                    }),
                );
                assert_ne!(base, changed_text);
            }
        }
        // type matters: 7 as text is not 7
        let as_text = [Value::Text("7".into()), values[1].clone(), values[2].clone(), values[3].clone(), Value::Null];
        assert_ne!(base, row_crc(&WINDOWS, as_text.iter().map(ValueRef::from)));
        // -0.0 and 0.0 are the same stored value
        let z = |f: f64| row_crc(&SAMPLES, [ValueRef::Real(f)]);
        assert_eq!(z(0.0), z(-0.0));
    }

    #[test]
    fn fingerprints_tell_missing_repeated_and_swapped_rows() {
        let of = |ids: &[i64]| {
            let mut f = Fingerprint::default();
            ids.iter().for_each(|i| f.add(*i));
            f
        };
        let written = of(&[1, 2, 3, 4]);
        assert_eq!(written, of(&[4, 3, 2, 1]), "order does not matter");
        assert_ne!(written, of(&[1, 2, 3]));
        assert_ne!(written, of(&[1, 2, 3, 3]));
        assert_ne!(written, of(&[1, 2, 3, 5]));
        let mut merged = of(&[1, 2]);
        merged.merge(of(&[3, 4]));
        assert_eq!(merged, written);
    }

    #[test]
    fn id_lists_are_short() {
        assert_eq!(id_list(&[3, 17]), "3, 17");
        assert_eq!(id_list(&(1..=10).collect::<Vec<_>>()), "1, 2, 3, 4, 5, 6, 7, 8 and 2 more");
    }
}
