//! `stressctl tune`: the settings the stores of finished campaigns suggest for the next one, as a
//! config overlay in which every key names the measurement it came from (the seeds'
//! self-healing configuration, made transparent: nothing is changed that the overlay, and then
//! the report of the campaign that runs with it, does not show).
//!
//! What is tuned, and from what:
//! - `browser.op_timeout`: the in-page p99.9 over every op of every phase, with a margin (4x,
//!   and at least 5 s above it), so that a hung op is cut long before the old, generic limit
//!   while no op that ever succeeded would have been;
//! - `breaker.recovery_timeout` (resilience4j's `wait_in_open`): the 90th percentile of the
//!   measured times to recover (failure to the next success of a successful recovery), so a
//!   breaker probes about when the thing behind it is usually back;
//! - `breaker.failure_rate_threshold`: above the noise of the passing phases (the highest
//!   failure rate one worker showed in a phase that passed, doubled and at least 10 points
//!   above it), so that a breaker does not open on what a good night looks like.
//!
//! - `recovery.first_rung.<class>`: the strategy that recovered the class most often (a tie goes
//!   to the lower rung), so a class a retry never fixes starts where it does get fixed.
//!
//! Looked at and only reported: per-phase session counts (no campaign records a capacity result
//! to take them from).

use super::typed_events::for_each_typed;
use super::CampaignReport;
use crate::events::{Event, TunedSetting};
use crate::metrics::new_histogram;
use crate::store::{StoreError, StoreReader};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use toml::{Table, Value};

/// Fewest ops of one worker in one passing phase for its failure rate to count as noise: below
/// that, one failure is a large percentage of nothing.
const MIN_OPS_FOR_A_RATE: u64 = 20;

/// What one finished campaign's store says, for tuning.
pub struct History {
    /// Its id.
    pub id: String,
    /// In-page latency of every op, all phases, microseconds.
    in_page: Histogram<u64>,
    /// Per passing phase and worker: (phase name, worker, attempted, failed).
    passing_rates: Vec<(String, String, u64, u64)>,
    /// Successful recoveries' times to recover, ms.
    recover_ms: Vec<f64>,
    /// Per failure class, successes per strategy.
    recovered_by: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Why a campaign cannot be tuned from.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// Its store could not be read (an unknown id is bad input: [`StoreError::is_bad_input`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// It has not ended (running, or its process died): its figures are not a night's.
    #[error("campaign {0} has not finished: tune from finished campaigns only (`stressctl report --list`)")]
    Unfinished(String),
}

impl History {
    /// Reads campaign `c`'s store `r` (its report already built).
    pub fn read(r: &StoreReader, c: &CampaignReport) -> Result<History, TuneError> {
        if c.ended_at.is_none() {
            return Err(TuneError::Unfinished(c.campaign_id.clone()));
        }
        let mut in_page = new_histogram();
        let mut passing_rates = Vec::new();
        for p in &c.phases {
            let passed = p.criteria.passed && !p.criteria.unsupported;
            for (worker, w) in r.phase_worker_windows(p.index)? {
                // same bounds as every recorded histogram: nothing is lost
                let _ = in_page.add(&w.in_page);
                if passed {
                    passing_rates.push((p.name.clone(), worker, w.attempted, w.failed));
                }
            }
        }
        let mut recover_ms = Vec::new();
        let mut recovered_by: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for_each_typed(r, None, &["recovery_attempted"], |_, ev| {
            if let Event::RecoveryAttempted { class, strategy, outcome, time_to_recover_ms, .. } = ev {
                if outcome == "succeeded" {
                    *recovered_by.entry(class.to_string()).or_default().entry(strategy).or_insert(0) += 1;
                    recover_ms.extend(time_to_recover_ms.filter(|t| t.is_finite() && *t >= 0.0));
                }
            }
        })?;
        Ok(History { id: c.campaign_id.clone(), in_page, passing_rates, recover_ms, recovered_by })
    }
}

/// One setting the history suggests.
#[derive(Clone, Debug, PartialEq)]
pub struct Suggestion {
    /// The overlay's dotted key (`browser.op_timeout`, `breaker.recovery_timeout`).
    pub key: String,
    /// Its value.
    pub value: Value,
    /// The measurement it came from, one line (the overlay's comment, the report's source).
    pub source: String,
}

/// What the history suggests: settings, and what was looked at but left alone.
#[derive(Clone, Debug, PartialEq)]
pub struct Tuning {
    /// The campaigns tuned from.
    pub from: Vec<String>,
    /// The settings, in the overlay's order.
    pub settings: Vec<Suggestion>,
    /// What was not tuned and why, one line each.
    pub notes: Vec<String>,
}

/// `ms` as a config duration, rounded up to 100 ms, written as the effective config writes it
/// (`"6s"`, `"1s 500ms"`), so the overlay's value and the report's new value read the same.
fn duration_value(ms: f64) -> Value {
    let ms = ((ms / 100.0).ceil() * 100.0).max(100.0) as u64;
    Value::String(humantime::format_duration(std::time::Duration::from_millis(ms)).to_string())
}

/// The ladder level of a strategy name (unknown names last).
fn level_of(strategy: &str) -> u8 {
    crate::recovery::Strategy::parse(strategy).map_or(u8::MAX, |s| s.level())
}

/// The `q` quantile of `v` (nearest rank); `v` not empty.
fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// The overlay the histories suggest.
pub fn tune(histories: &[History]) -> Tuning {
    let from: Vec<String> = histories.iter().map(|h| h.id.clone()).collect();
    let mut settings = Vec::new();
    let mut notes = Vec::new();

    let mut in_page = new_histogram();
    for h in histories {
        let _ = in_page.add(&h.in_page);
    }
    if in_page.is_empty() {
        notes.push("browser.op_timeout: no op measured an in-page latency (synthetic or model tasks only)".into());
    } else {
        let p999_ms = in_page.value_at_quantile(0.999) as f64 / 1000.0;
        let ms = (p999_ms * 4.0).max(p999_ms + 5000.0);
        settings.push(Suggestion {
            key: "browser.op_timeout".into(),
            value: duration_value(ms),
            source: format!("in-page p99.9 {p999_ms:.1} ms over {} ops; 4 x p99.9, at least p99.9 + 5 s", in_page.len()),
        });
    }

    let mut recover: Vec<f64> = histories.iter().flat_map(|h| h.recover_ms.iter().copied()).collect();
    if recover.is_empty() {
        notes.push("breaker.recovery_timeout: no recovery measured a time to recover".into());
    } else {
        let n = recover.len();
        let p90 = quantile(&mut recover, 0.9);
        let max = recover[n - 1];
        settings.push(Suggestion {
            key: "breaker.recovery_timeout".into(),
            value: duration_value(p90.max(1000.0)),
            source: format!("p90 of {n} measured times to recover {p90:.0} ms (max {max:.0} ms), at least 1 s"),
        });
    }

    let rates: Vec<(&str, &str, f64)> = histories
        .iter()
        .flat_map(|h| h.passing_rates.iter())
        .filter(|(_, _, attempted, _)| *attempted >= MIN_OPS_FOR_A_RATE)
        .map(|(phase, worker, attempted, failed)| (phase.as_str(), worker.as_str(), *failed as f64 * 100.0 / *attempted as f64))
        .collect();
    match rates.iter().max_by(|a, b| a.2.total_cmp(&b.2)) {
        None => notes.push(format!(
            "breaker.failure_rate_threshold: no phase passed with a worker of at least {MIN_OPS_FOR_A_RATE} ops"
        )),
        Some(&(phase, worker, noise)) => settings.push(Suggestion {
            key: "breaker.failure_rate_threshold".into(),
            value: Value::Float((noise * 2.0).max(noise + 10.0).ceil().min(100.0)),
            source: format!(
                "highest failure rate in a passing phase {noise:.1}% (worker {worker}, phase {phase}; {} worker-phases); 2 x, at least + 10 points",
                rates.len()
            ),
        }),
    }

    let mut by_class: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for h in histories {
        for (class, strategies) in &h.recovered_by {
            for (strategy, n) in strategies {
                *by_class.entry(class).or_default().entry(strategy).or_insert(0) += n;
            }
        }
    }
    for (class, strategies) in by_class {
        let total: u64 = strategies.values().sum();
        // most successes; a tie goes to the lower rung (the cheaper strategy), as the ladder climbs
        let best = strategies.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| level_of(b.0).cmp(&level_of(a.0))));
        if let Some((strategy, n)) = best {
            let all: Vec<String> = strategies.iter().map(|(s, n)| format!("{s} {n}")).collect();
            settings.push(Suggestion {
                key: format!("recovery.first_rung.{class}"),
                value: Value::String(strategy.to_string()),
                source: format!("{strategy} recovered {class} most often: {n} of {total} successful recoveries ({})", all.join(", ")),
            });
        }
    }
    notes.push("phase sessions: these campaigns recorded no capacity result to take session counts from".into());
    Tuning { from, settings, notes }
}

impl Tuning {
    /// The overlay as a TOML table.
    pub fn overlay(&self) -> Table {
        let mut root = Table::new();
        for s in &self.settings {
            let parts: Vec<&str> = s.key.split('.').collect();
            insert(&mut root, &parts, s.value.clone());
        }
        root
    }

    /// The overlay as commented TOML: a header naming the campaigns, what was not tuned, and
    /// each key under its table with the measurement it came from.
    pub fn render(&self) -> String {
        let mut out = vec![
            format!("# stressctl tune {}: settings from the stores of {} finished campaign(s).", self.from.join(" "), self.from.len()),
            format!("# Run with them: stressctl launch --tuned-from {} (the report lists each one, old -> new).", self.from.join(" ")),
        ];
        for n in &self.notes {
            out.push(format!("# not tuned: {n}"));
        }
        let mut tables: Vec<&str> = Vec::new();
        for s in &self.settings {
            let table = s.key.rsplit_once('.').map_or("", |(t, _)| t);
            if !tables.contains(&table) {
                tables.push(table);
            }
        }
        for table in tables {
            out.push(String::new());
            if !table.is_empty() {
                out.push(format!("[{table}]"));
            }
            for s in self.settings.iter().filter(|s| s.key.rsplit_once('.').map_or("", |(t, _)| t) == table) {
                let name = s.key.rsplit_once('.').map_or(s.key.as_str(), |(_, k)| k);
                out.push(format!("# {}", s.source));
                out.push(format!("{name} = {}", s.value));
            }
        }
        out.push(String::new());
        out.join("\n")
    }

    /// Each tuned key as it lands in the effective config: `old` and `new` are the effective
    /// configs (`Config::to_toml`, parsed) without and with the overlay. A `[breaker]` key is
    /// listed per scope (`breaker.worker.recovery_timeout`, …), since a scope's own table in the
    /// config wins over it; such a scope shows its value unchanged, never silently skipped.
    pub fn changes(&self, old: &Table, new: &Table) -> Vec<TunedSetting> {
        let mut out = Vec::new();
        for s in &self.settings {
            let keys: Vec<String> = match s.key.strip_prefix("breaker.") {
                Some(rest) if !rest.contains('.') => {
                    ["worker", "browser", "task", "hardware"].iter().map(|scope| format!("breaker.{scope}.{rest}")).collect()
                }
                _ => vec![s.key.clone()],
            };
            for key in keys {
                let show = |t: &Table| lookup(t, &key).map_or_else(|| "(unset)".to_string(), |v| v.to_string());
                out.push(TunedSetting { old: show(old), new: show(new), key, source: s.source.clone() });
            }
        }
        out
    }
}

/// Puts `v` at the path `parts` in `t`, making the tables on the way.
fn insert(t: &mut Table, parts: &[&str], v: Value) {
    match parts {
        [] => {}
        [last] => {
            t.insert(last.to_string(), v);
        }
        [first, rest @ ..] => {
            if let Value::Table(sub) = t.entry(*first).or_insert_with(|| Value::Table(Table::new())) {
                insert(sub, rest, v);
            }
        }
    }
}

/// The value at dotted `key` in `t`.
fn lookup<'a>(t: &'a Table, key: &str) -> Option<&'a Value> {
    let mut parts = key.split('.');
    let mut v = t.get(parts.next()?)?;
    for p in parts {
        v = v.as_table()?.get(p)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::FailureClass;

    fn history(id: &str, in_page_us: &[u64], rates: &[(u64, u64)], recover: &[f64]) -> History {
        let mut in_page = new_histogram();
        for v in in_page_us {
            in_page.record(*v).unwrap();
        }
        History {
            id: id.into(),
            in_page,
            passing_rates: rates.iter().map(|&(a, f)| ("p1".to_string(), "w1".to_string(), a, f)).collect(),
            recover_ms: recover.to_vec(),
            recovered_by: BTreeMap::from([(
                FailureClass::Crash.to_string(),
                BTreeMap::from([("new_session".to_string(), 3), ("retry".to_string(), 1)]),
            )]),
        }
    }

    #[test]
    fn settings_from_measurements_and_an_overlay_that_parses_back() {
        let a = history("a", &[1000; 998], &[(100, 2)], &[800.0, 2400.0]);
        // 2000 x 1024 us: a value the histogram holds exactly (up to 1023 us above, its bucket)
        let mut b = history("b", &[2_048_000], &[(50, 5), (10, 9)], &[1200.0]);
        // a tie: the lower rung
        b.recovered_by
            .insert(FailureClass::GpuError.to_string(), BTreeMap::from([("new_session".to_string(), 2), ("retry".to_string(), 2)]));
        let t = tune(&[a, b]);
        let get = |k: &str| t.settings.iter().find(|s| s.key == k).map(|s| s.value.clone());
        // p99.9 of 999 ops (nearest rank 999): the one 2049 ms op; 4 x that, rounded up to 100 ms
        assert_eq!(get("browser.op_timeout"), Some(Value::String("8s 200ms".into())), "{t:?}");
        // p90 of [800, 1200, 2400] (nearest rank): 2400
        assert_eq!(get("breaker.recovery_timeout"), Some(Value::String("2s 400ms".into())));
        // noise 10 % (5 of 50; the 10-op worker-phase is too small to count): 2 x = 20
        assert_eq!(get("breaker.failure_rate_threshold"), Some(Value::Float(20.0)));
        assert_eq!(get("recovery.first_rung.crash"), Some(Value::String("new_session".into())), "6 of 8 recoveries");
        assert_eq!(get("recovery.first_rung.gpu_error"), Some(Value::String("retry".into())), "2 each: the lower rung");
        let text = t.render();
        let parsed: Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(parsed, t.overlay());
        assert!(text.contains("# in-page p99.9"), "{text}");
        let old: Table = "[breaker.worker]\nrecovery_timeout = \"10s\"\n[breaker.task]\nrecovery_timeout = \"10s\"".parse().unwrap();
        let new: Table = "[breaker.worker]\nrecovery_timeout = \"2s 400ms\"\n[breaker.task]\nrecovery_timeout = \"10s\"".parse().unwrap();
        let c = t.changes(&old, &new);
        let w = c.iter().find(|c| c.key == "breaker.worker.recovery_timeout").unwrap();
        assert_eq!((w.old.as_str(), w.new.as_str()), ("\"10s\"", "\"2s 400ms\""));
        assert!(c.iter().any(|c| c.key == "breaker.task.recovery_timeout" && c.old == c.new));
    }

    #[test]
    fn nothing_measured_nothing_tuned_and_said_why() {
        let mut h = history("a", &[], &[(5, 0)], &[]);
        h.recovered_by.clear();
        let t = tune(&[h]);
        assert!(t.settings.is_empty(), "{t:?}");
        assert_eq!(t.notes.iter().filter(|n| n.starts_with("breaker.") || n.starts_with("browser.")).count(), 3, "{:?}", t.notes);
        assert!(t.render().parse::<Table>().unwrap().is_empty());
    }
}
