//! The settings a campaign launched with `--tuned-from` ran with (its `config_tuned` event), for
//! the reports: nothing is tuned without the report saying what, from what, old -> new.

use super::typed_events::last_typed;
use crate::events::{Event, TunedSetting};
use crate::store::{StoreError, StoreReader};
use serde::{Deserialize, Serialize};

/// What a campaign launched with `--tuned-from` ran with: the campaigns and every setting, old
/// and new (the `config_tuned` event).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TunedReport {
    /// The campaigns tuned from.
    pub from: Vec<String>,
    /// Each setting, as the effective config has it without and with the overlay.
    pub settings: Vec<TunedSetting>,
}

/// The campaign's `config_tuned` event, if it ran tuned.
pub(super) fn tuned(r: &StoreReader) -> Result<Option<TunedReport>, StoreError> {
    match last_typed(r, "config_tuned")? {
        Some(Event::ConfigTuned { from, settings }) => Ok(Some(TunedReport { from, settings })),
        _ => Ok(None),
    }
}
