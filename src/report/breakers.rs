//! The circuit breakers over the campaign: every state change in order, and the registry's last
//! snapshot.

use super::typed_events::{for_each_typed, last_typed};
use crate::breaker::RegistrySnapshot;
use crate::events::Event;
use crate::store::{StoreError, StoreReader};
use serde::{Deserialize, Serialize};

/// A circuit breaker state change (event `breaker_transition`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BreakerTransition {
    /// RFC 3339.
    pub at: String,
    /// Correlation id.
    pub corr: String,
    /// Breaker key (`worker:<id>`, `browser:<name>`, `task:<kind>`, `hardware:<class>`).
    pub key: String,
    /// State before.
    pub from: String,
    /// State after.
    pub to: String,
    /// Why.
    pub reason: String,
}

/// Circuit breakers over the campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Breakers {
    /// The last `breaker_snapshot` (null when none).
    #[serde(rename = "final")]
    pub final_snapshot: Option<RegistrySnapshot>,
    /// Every transition, in order.
    pub transitions: Vec<BreakerTransition>,
    /// Every operator's command (`stressctl breaker ...`), in order; the transitions each caused
    /// follow it in `transitions` with a reason that names it.
    #[serde(default)]
    pub commands: Vec<BreakerCommandRecord>,
}

/// An operator's breaker command (event `breaker_command`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BreakerCommandRecord {
    /// RFC 3339.
    pub at: String,
    /// `open`, `close`, `reset`, `disable`.
    pub action: String,
    /// The scopes as typed.
    pub scopes: Vec<String>,
    /// The breakers they named.
    pub keys: Vec<String>,
    /// Why (empty when none was given).
    pub reason: String,
    /// Who asked.
    pub uid: Option<u32>,
}

/// Every breaker transition and the last snapshot of the registry.
pub(super) fn breakers(r: &StoreReader) -> Result<Breakers, StoreError> {
    let mut transitions = Vec::new();
    let mut commands = Vec::new();
    for_each_typed(r, None, &["breaker_transition", "breaker_command"], |e, ev| match ev {
        Event::BreakerTransition { key, from, to, reason } => {
            transitions.push(BreakerTransition { key, from, to, reason, at: e.at, corr: e.corr })
        }
        Event::BreakerCommand { action, scopes, keys, reason, uid } => {
            commands.push(BreakerCommandRecord { at: e.at, action, scopes, keys, reason, uid })
        }
        _ => {}
    })?;
    let final_snapshot = match last_typed(r, "breaker_snapshot")? {
        Some(Event::BreakerSnapshot(s)) => Some(s),
        _ => None,
    };
    Ok(Breakers { final_snapshot, transitions, commands })
}
