//! Reading the store's events in their typed form ([`Event`]) for the report's sections: an event
//! that does not decode ends the report with a store error naming it, never a report built around
//! it.

use crate::events::{DecodeError, Event, EventRecord};
use crate::store::{EventInfo, StoreError, StoreReader};

/// Calls `f` with each stored event of `kinds` (all phases when `phase` is None), in order and
/// decoded; an event that does not decode ends the report with a store error naming it, never a
/// report built around it.
pub(super) fn for_each_typed(
    r: &StoreReader,
    phase: Option<u32>,
    kinds: &[&str],
    mut f: impl FnMut(EventInfo, Event),
) -> Result<(), StoreError> {
    let mut bad = None;
    r.for_each_event(phase, kinds, |e| {
        if bad.is_some() {
            return;
        }
        match decode(&e) {
            Ok(ev) => f(e, ev),
            Err(err) => bad = Some(err),
        }
    })?;
    match bad {
        Some(err) => Err(corrupt_event(r, err)),
        None => Ok(()),
    }
}

/// Decodes a stored event into its typed form.
fn decode(e: &EventInfo) -> Result<Event, DecodeError> {
    EventRecord::from_stored(e).map(|(_, ev)| ev)
}

/// The damage error for an event that does not decode.
fn corrupt_event(r: &StoreReader, e: DecodeError) -> StoreError {
    r.corrupt(e.to_string())
}

/// The last stored event of `kind` (whole campaign), decoded; None when there is none.
pub(super) fn last_typed(r: &StoreReader, kind: &str) -> Result<Option<Event>, StoreError> {
    match r.last_event(kind)? {
        Some(e) => decode(&e).map(Some).map_err(|err| corrupt_event(r, err)),
        None => Ok(None),
    }
}
