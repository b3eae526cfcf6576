//! Recovery attempts over the campaign (the ladder's `recovery_attempted` events): success rates
//! and times to recover per failure class, per strategy and per ladder level.

use super::numbers::{ratio, round3};
use super::typed_events::for_each_typed;
use crate::events::Event;
use crate::store::{StoreError, StoreReader};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Recovery attempts of one class, strategy or level.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecoveryStats {
    /// Attempts.
    pub attempts: u64,
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// succeeded / attempts.
    pub success_rate: f64,
    /// Mean `time_to_recover_ms` of the successful attempts that reported one (null when none did).
    pub mean_time_to_recover_ms: Option<f64>,
}

/// Recovery attempts over the campaign (events `recovery_attempted`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Recoveries {
    /// Attempts.
    pub attempts: u64,
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// Per failure class.
    pub by_class: BTreeMap<String, RecoveryStats>,
    /// Per strategy (retry, new_session, restart_driver, adjusted_settings, other_worker).
    pub by_strategy: BTreeMap<String, RecoveryStats>,
    /// Per ladder level ("1".."5").
    pub by_level: BTreeMap<String, RecoveryStats>,
}

/// Sums of attempts towards a [`RecoveryStats`].
#[derive(Default)]
struct StatsAcc {
    attempts: u64,
    succeeded: u64,
    ttr_sum: f64,
    ttr_n: u64,
}

impl StatsAcc {
    fn add(&mut self, ok: bool, ttr: Option<f64>) {
        self.attempts += 1;
        if ok {
            self.succeeded += 1;
            if let Some(t) = ttr {
                self.ttr_sum += t;
                self.ttr_n += 1;
            }
        }
    }
    fn done(&self) -> RecoveryStats {
        RecoveryStats {
            attempts: self.attempts,
            succeeded: self.succeeded,
            success_rate: round3(ratio(self.succeeded, self.attempts)),
            mean_time_to_recover_ms: (self.ttr_n > 0).then(|| round3(self.ttr_sum / self.ttr_n as f64)),
        }
    }
}

/// Recovery attempts over the campaign, per class, strategy and level.
pub(super) fn recoveries(r: &StoreReader) -> Result<Recoveries, StoreError> {
    let mut total = StatsAcc::default();
    let mut by_class: BTreeMap<String, StatsAcc> = BTreeMap::new();
    let mut by_strategy: BTreeMap<String, StatsAcc> = BTreeMap::new();
    let mut by_level: BTreeMap<String, StatsAcc> = BTreeMap::new();
    for_each_typed(r, None, &["recovery_attempted"], |_, ev| {
        if let Event::RecoveryAttempted { class, strategy, level, outcome, time_to_recover_ms, .. } = ev {
            let ok = outcome == "succeeded";
            let ttr = time_to_recover_ms.filter(|t| t.is_finite());
            let or_unknown = |s: String| if s.is_empty() { "unknown".to_string() } else { s };
            total.add(ok, ttr);
            by_class.entry(class.as_str().to_string()).or_default().add(ok, ttr);
            by_strategy.entry(or_unknown(strategy)).or_default().add(ok, ttr);
            by_level.entry(level.to_string()).or_default().add(ok, ttr);
        }
    })?;
    let done = |m: BTreeMap<String, StatsAcc>| m.into_iter().map(|(k, v)| (k, v.done())).collect();
    Ok(Recoveries {
        attempts: total.attempts,
        succeeded: total.succeeded,
        by_class: done(by_class),
        by_strategy: done(by_strategy),
        by_level: done(by_level),
    })
}
