//! An operator's breaker commands on the running campaign (`stressctl breaker ...` over the
//! control socket): scopes resolved against the registry, all or nothing, each command a
//! `breaker_command` event followed by the transitions it caused, whose reasons name it.
//!
//! Why in the campaign: the command changes the registry the slots gate on and writes events to
//! the run's store; the slots react as they do to any open breaker (a forced-open worker's
//! sessions move to a healthy worker, as for a drained Grid node).

use super::shared::RunShared;
use crate::breaker::{glob_match, is_glob};
use crate::control::breakers::{rows, BreakerDone, BreakerRefusal, BreakerRequest, BreakerRow, CommandTransition};
use crate::events::Event;
use std::collections::BTreeSet;
use std::time::Instant;

/// Every breaker of the run now, as `breaker list` shows them.
pub(crate) fn list(run: &RunShared) -> Vec<BreakerRow> {
    rows(&run.breakers.snapshot(Instant::now(), (run.started, run.started_wall)))
}

/// The breakers `scopes` name, in order and without repeats, or the scopes that name none.
fn resolve(run: &RunShared, scopes: &[String]) -> Result<Vec<String>, BreakerRefusal> {
    if scopes.is_empty() {
        return Err(BreakerRefusal::NoScope);
    }
    let known = run.breakers.keys();
    let mut keys = Vec::new();
    let mut seen = BTreeSet::new();
    let mut unknown = Vec::new();
    for scope in scopes {
        let matched: Vec<&String> = if is_glob(scope) {
            known.iter().filter(|k| glob_match(scope, k)).collect()
        } else {
            known.iter().filter(|k| *k == scope).collect()
        };
        if matched.is_empty() {
            unknown.push(scope.clone());
        }
        for k in matched {
            if seen.insert(k.clone()) {
                keys.push(k.clone());
            }
        }
    }
    if unknown.is_empty() {
        Ok(keys)
    } else {
        Err(BreakerRefusal::UnknownScopes { unknown, known })
    }
}

/// Carries out `req`: nothing changes when a scope names no breaker.
pub(crate) fn command(run: &RunShared, req: BreakerRequest) -> Result<BreakerDone, BreakerRefusal> {
    let keys = resolve(run, &req.scopes)?;
    let who = req.uid.map_or_else(|| "an operator".to_string(), |u| format!("uid {u}"));
    let why = match req.reason.as_str() {
        "" => format!("{} by {who}", req.action),
        r => format!("{} by {who}: {r}", req.action),
    };
    let corr = format!("{}/operator", run.id);
    let phase = run.current_phase_idx();
    run.event(
        corr.clone(),
        phase,
        Event::BreakerCommand {
            action: req.action.as_str().to_string(),
            scopes: req.scopes.clone(),
            keys: keys.clone(),
            reason: req.reason.clone(),
            uid: req.uid,
        },
    );
    let now = Instant::now();
    let mut transitions = Vec::new();
    let mut tagged = Vec::new();
    for key in &keys {
        for t in run.breakers.command(key, req.action, now, why.clone()).unwrap_or_default() {
            transitions.push(CommandTransition { key: key.clone(), from: t.from.as_str().to_string(), to: t.to.as_str().to_string() });
            tagged.push((key.clone(), t));
        }
    }
    run.transition_events(&corr, phase, tagged);
    Ok(BreakerDone { keys, transitions })
}
