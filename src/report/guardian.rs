//! The host and the resource guardian in the reports: a phase's resource statistics with the
//! thresholds that judged the host's headroom, and over the campaign the samples, violations and
//! emergency stops.

use super::typed_events::for_each_typed;
use crate::events::Event;
use crate::store::{ResourceAgg, StoreError, StoreReader};
use serde::{Deserialize, Serialize};

/// An emergency stop (event `emergency_stop`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmergencyStop {
    /// RFC 3339.
    pub at: String,
    /// Why (names the metric, value and threshold).
    pub message: String,
    /// What stopped it: `interrupted`, `terminated`, `hangup`, `emergency_stop`, `guardian`,
    /// `store_failure`, `max_duration`.
    pub cause: String,
}

/// The resource guardian over the campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuardianSummary {
    /// Samples taken.
    pub samples: u64,
    /// Samples with at least one violation.
    pub violating_samples: u64,
    /// `guardian_violation` events.
    pub violations: u64,
    /// Emergency stops, in order.
    pub emergency_stops: Vec<EmergencyStop>,
}

/// A phase's resource statistics, its host figures with the thresholds that judged them (from the
/// stored config).
pub(super) fn phase_resources(r: &StoreReader, idx: u32) -> Result<ResourceAgg, StoreError> {
    let mut res = r.phase_resources(idx)?;
    if let Some(h) = res.host.as_mut() {
        let limits = crate::dashboard::source::limits_of(&r.campaign()?.config_text);
        h.cpu_limit = limits.of(Some(idx)).map(|t| t.cpu_percent);
        h.stall_limit = h.stall_max.map(|_| crate::guardian::PRESSURE_STALL_PERCENT);
    }
    Ok(res)
}

/// The guardian over the campaign: samples taken, violations and emergency stops.
pub(super) fn guardian(r: &StoreReader) -> Result<GuardianSummary, StoreError> {
    let (samples, violating_samples) = r.sample_counts()?;
    let mut emergency_stops = Vec::new();
    for_each_typed(r, None, &["emergency_stop"], |e, ev| {
        if let Event::EmergencyStop { cause, reason } = ev {
            emergency_stops.push(EmergencyStop { at: e.at, message: reason, cause });
        }
    })?;
    Ok(GuardianSummary { samples, violating_samples, violations: r.count_events(None, "guardian_violation")?, emergency_stops })
}
