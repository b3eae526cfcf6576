//! Layers: a profile as the base and a file over it (`--profile quick --config extra.toml`),
//! merged at the TOML value level before the one typed validation, and the layer each key came
//! from, so that an error names the file the user wrote when the key is theirs.
//!
//! The rules, in the order they apply when the file holds a key the base holds too:
//! - two tables merge key by key (`[safety] cpu_percent = 90` changes that key only);
//! - a task table (`[task]`, `[phases.task]`) of another `kind` replaces the base's whole table,
//!   since the keys of one kind mean nothing to another;
//! - anything else, lists included, replaces the base's value: `[[phases]]`, `[[workers]]` and
//!   `[[faults]]` in the file replace the profile's lists as a whole.

use toml::{Table, Value};

/// `over` layered on `base`.
pub(super) fn merge(mut base: Table, over: Table) -> Table {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) if !other_kind(b, &o) => {
                let inner = std::mem::take(b);
                *b = merge(inner, o);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
    base
}

/// Whether both tables name a `kind` and the kinds differ.
fn other_kind(base: &Table, over: &Table) -> bool {
    matches!((base.get("kind"), over.get("kind")), (Some(a), Some(b)) if a != b)
}

/// Which layer a key came from.
pub(super) struct Origin<'a> {
    /// The base's name (the only layer's, when there is one).
    base: &'a str,
    /// The layers over it, bottom first: their names and their tables.
    over: Vec<(&'a str, &'a Table)>,
}

impl<'a> Origin<'a> {
    /// `names[i]` is the name of `tables[i]`; the first layer is the base, the last the top one
    /// (a profile, a file over it, `launch --tuned-from`'s overlay over both).
    pub fn new(names: &[&'a str], tables: &'a [Table]) -> Origin<'a> {
        let over = names.iter().zip(tables).skip(1).map(|(n, t)| (*n, t)).collect();
        Origin { base: names.first().copied().unwrap_or("<config>"), over }
    }

    /// A single source: every key is its.
    pub fn single(name: &'a str) -> Origin<'a> {
        Origin { base: name, over: Vec::new() }
    }

    /// The name of the layer that wrote `key` (a dotted key with list indexes, such as
    /// `phases[2].sessions` or `breaker.worker`): the topmost layer that holds the key, a table
    /// on its path with the key's remaining path, or a list or value on its path (a list is
    /// replaced as a whole, so all of it is that layer's); the base otherwise.
    pub fn of(&self, key: &str) -> &'a str {
        self.over.iter().rev().find(|(_, table)| holds(table, key)).map_or(self.base, |(name, _)| name)
    }

    /// The topmost layer over the base that wrote any of `keys`, else the base: for an error
    /// about how keys from several layers combine (e.g. the phases' total against
    /// `safety.max_campaign_duration`).
    pub fn of_any(&self, keys: &[&str]) -> &'a str {
        self.over.iter().rev().find(|(_, table)| keys.iter().any(|k| holds(table, k))).map_or(self.base, |(name, _)| name)
    }
}

/// Whether `table` writes `key` (see [`Origin::of`]).
fn holds(table: &Table, key: &str) -> bool {
    let mut node = table;
    for segment in key.split('.') {
        let field = segment.split('[').next().unwrap_or(segment);
        match node.get(field) {
            None => return false,
            Some(Value::Table(t)) => node = t,
            Some(_) => return true,
        }
    }
    true
}
