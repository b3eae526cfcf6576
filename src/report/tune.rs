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
//! - `phase_sessions.<phase>`: from a capacity result (a `kind = "capacity"` phase's answer,
//!   the lowest when several campaigns or browsers give one), each load phase of the config being
//!   tuned gets a share of it by its stress level — low a quarter, moderate half, high three
//!   quarters, extreme all of it: the escalation then climbs to what this machine was measured
//!   to hold instead of to a number written for another one.

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
    /// Capacity answers: (phase, browser, max sustainable sessions, the answer).
    capacity: Vec<(String, Option<String>, u32, String)>,
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
        let capacity = c
            .phases
            .iter()
            .flat_map(|p| {
                p.capacity
                    .iter()
                    .filter_map(move |cap| Some((p.name.clone(), cap.browser.clone(), cap.max_sustainable?, cap.answer.clone())))
            })
            .collect();
        Ok(History { id: c.campaign_id.clone(), in_page, passing_rates, recover_ms, recovered_by, capacity })
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

/// The share of a measured capacity a load phase of `level` runs.
fn capacity_share(level: crate::config::StressLevel) -> f64 {
    use crate::config::StressLevel;
    match level {
        StressLevel::Low => 0.25,
        StressLevel::Moderate => 0.5,
        StressLevel::High => 0.75,
        StressLevel::Extreme => 1.0,
    }
}

/// The overlay the histories suggest for `target` (the config the overlay will be layered over:
/// its load phases get session counts from a capacity result).
pub fn tune(histories: &[History], target: &crate::config::Config) -> Tuning {
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
    let found = histories.iter().flat_map(|h| h.capacity.iter().map(move |c| (h, c))).min_by_key(|(_, c)| c.2);
    match found {
        None => notes.push("phase sessions: these campaigns recorded no capacity result to take session counts from".into()),
        Some((h, (phase, browser, n, _))) => {
            let on = browser.as_deref().map(|b| format!(" on {b}")).unwrap_or_default();
            for p in target.phases.iter().filter(|p| p.capacity.is_none()) {
                let share = capacity_share(p.stress_level);
                let sessions = ((*n as f64 * share).round() as i64).clamp(1, 64);
                settings.push(Suggestion {
                    key: format!("phase_sessions.{}", p.name),
                    value: Value::Integer(sessions),
                    source: format!(
                        "capacity of {} phase {phase}{on}: {n} sessions held; stress level {} runs {:.0}% of it",
                        h.id,
                        p.stress_level.as_str(),
                        share * 100.0
                    ),
                });
            }
        }
    }
    Tuning { from, settings, notes }
}

impl Tuning {
    /// The overlay as a TOML table.
    pub fn overlay(&self) -> Table {
        let mut root = Table::new();
        for s in &self.settings {
            let (table, name) = split_key(&s.key);
            let mut parts: Vec<&str> = table.split('.').filter(|p| !p.is_empty()).collect();
            parts.push(name);
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
            let table = split_key(&s.key).0;
            if !tables.contains(&table) {
                tables.push(table);
            }
        }
        for table in tables {
            out.push(String::new());
            if !table.is_empty() {
                out.push(format!("[{table}]"));
            }
            for s in self.settings.iter().filter(|s| split_key(&s.key).0 == table) {
                let name = split_key(&s.key).1;
                out.push(format!("# {}", s.source));
                out.push(format!("{} = {}", toml_key(name), s.value));
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
                let show = |t: &Table| {
                    let v = match key.strip_prefix("phase_sessions.") {
                        // applied to the phase of that name: its sessions in the effective config
                        Some(phase) => t
                            .get("phases")
                            .and_then(Value::as_array)
                            .and_then(|ps| ps.iter().find(|p| p.get("name").and_then(Value::as_str) == Some(phase)))
                            .and_then(|p| p.get("sessions")),
                        None => lookup(t, &key),
                    };
                    v.map_or_else(|| "(unset)".to_string(), |v| v.to_string())
                };
                out.push(TunedSetting { old: show(old), new: show(new), key, source: s.source.clone() });
            }
        }
        out
    }
}

/// A suggestion's key as (table, key in it): the last dotted part in its table, except under
/// `phase_sessions`, whose keys are phase names (which may hold dots).
fn split_key(key: &str) -> (&str, &str) {
    match key.strip_prefix("phase_sessions.") {
        Some(name) => ("phase_sessions", name),
        None => key.rsplit_once('.').unwrap_or(("", key)),
    }
}

/// `name` as a TOML key: bare when it can be, quoted otherwise.
fn toml_key(name: &str) -> String {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        name.to_string()
    } else {
        Value::String(name.to_string()).to_string()
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
            capacity: Vec::new(),
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
        let t = tune(&[a, b], &quick());
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

    fn quick() -> crate::config::Config {
        crate::config::Config::load(None, Some("quick")).unwrap()
    }

    #[test]
    fn load_phases_get_a_share_of_the_lowest_capacity_measured() {
        let mut a = history("a", &[], &[], &[]);
        a.capacity = vec![("capacity".into(), Some("chromium".into()), 6, "max sustainable sessions: 6".into())];
        let mut b = history("b", &[], &[], &[]);
        b.capacity = vec![("capacity".into(), None, 9, "max sustainable sessions: 9".into())];
        let target = crate::config::Config::parse(
            "[[phases]]\nname = \"warm.up\"\nduration = \"5s\"\nsessions = 1\nstress_level = \"low\"\n\
             [[phases]]\nname = \"high-1\"\nduration = \"5s\"\nsessions = 2\nstress_level = \"high\"\n\
             [[phases]]\nname = \"stress\"\nduration = \"5s\"\nsessions = 2\nstress_level = \"extreme\"\n",
            "t",
        )
        .unwrap();
        let t = tune(&[a, b], &target);
        let get = |k: &str| t.settings.iter().find(|s| s.key == k).map(|s| (s.value.clone(), s.source.clone()));
        let (v, source) = get("phase_sessions.high-1").unwrap();
        // the lower of 6 and 9; high: three quarters, rounded
        assert_eq!(v, Value::Integer(5));
        assert!(source.contains("capacity of a phase capacity on chromium: 6 sessions held") && source.contains("75%"), "{source}");
        assert_eq!(get("phase_sessions.stress").unwrap().0, Value::Integer(6));
        // a quarter of 6 rounds to 2; a name with a dot is quoted
        assert_eq!(get("phase_sessions.warm.up").unwrap().0, Value::Integer(2));
        let text = t.render();
        assert!(text.contains("[phase_sessions]") && text.contains("\"warm.up\" = 2"), "{text}");
        let parsed: Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(parsed, t.overlay());
        // the overlay over the target: the phases run those counts
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("target.toml");
        std::fs::write(&file, target.to_toml().unwrap()).unwrap();
        let tuned = crate::config::Config::load_with_overlay(Some(&file), None, Some(("tuned", &text))).unwrap();
        assert_eq!(tuned.phases.iter().map(|p| p.sessions).collect::<Vec<_>>(), [2, 5, 6]);
    }

    #[test]
    fn nothing_measured_nothing_tuned_and_said_why() {
        let mut h = history("a", &[], &[(5, 0)], &[]);
        h.recovered_by.clear();
        let t = tune(&[h], &quick());
        assert!(t.settings.is_empty(), "{t:?}");
        assert_eq!(t.notes.iter().filter(|n| n.starts_with("breaker.") || n.starts_with("browser.")).count(), 3, "{:?}", t.notes);
        assert!(t.render().parse::<Table>().unwrap().is_empty());
    }
}
