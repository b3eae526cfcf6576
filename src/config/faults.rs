//! The `[[faults]]` entries: checked into [`FaultConfig`]s, and the one-line warnings about
//! faults that are valid but can never fire.
//!
//! A fault that cannot act on anything it applies to is an error (a process or GPU fault on
//! synthetic phases only: there is no browser, driver or GPU device there). A fault whose
//! schedule or worker leaves it no chance to fire is a warning, since the rest of the campaign
//! still makes sense; the CLI prints it before anything starts.

use super::raw::RawFault;
use super::validator::Validator;
use super::{Config, ConfigError, FaultConfig, FaultKind, FaultSchedule, PhaseConfig, WorkerConfig, WorkerEndpoint};
use crate::fmt::fmt_duration;
use std::time::Duration;

pub(super) fn validate(
    v: &Validator,
    raw: Vec<RawFault>,
    workers: &[WorkerConfig],
    phases: &[PhaseConfig],
) -> Result<Vec<FaultConfig>, ConfigError> {
    let mut faults = Vec::with_capacity(raw.len());
    for (i, f) in raw.into_iter().enumerate() {
        let key = format!("faults[{i}]");
        let schedule = match (f.every, f.probability) {
            (Some(d), None) => {
                FaultSchedule::Every(v.dur(&format!("{key}.every"), d, Duration::from_millis(100), Duration::from_secs(24 * 3600))?)
            }
            (None, Some(p)) => {
                if !(p > 0.0 && p <= 1.0) {
                    return Err(v.err(format!("{key}.probability"), p, "must be in (0, 1] (per op)"));
                }
                FaultSchedule::Probability(p)
            }
            _ => return Err(v.err(&key, "schedule", "give exactly one of `every = \"20s\"` or `probability = 0.05`")),
        };
        if let Some(w) = &f.worker {
            if !workers.iter().any(|x| &x.id == w) {
                return Err(v.err(
                    format!("{key}.worker"),
                    format!("{w:?}"),
                    format!("must name a [[workers]] id ({})", workers.iter().map(|w| w.id.as_str()).collect::<Vec<_>>().join(", ")),
                ));
            }
        }
        let names = f.phases.unwrap_or_default();
        for ph in &names {
            if !phases.iter().any(|p| &p.name == ph) {
                return Err(v.err(format!("{key}.phases"), format!("{ph:?}"), "must name phases of this campaign"));
            }
        }
        let permanent = f.permanent.unwrap_or(false);
        if permanent && f.kind != FaultKind::KillDriver {
            return Err(v.err(format!("{key}.permanent"), "true", "only applies to kind = \"kill_driver\""));
        }
        if f.limit_mb.is_some() && f.kind != FaultKind::ExhaustMemory {
            return Err(v.err(format!("{key}.limit_mb"), f.limit_mb.unwrap_or_default(), "only applies to kind = \"exhaust_memory\""));
        }
        let limit_mb = v.int(&format!("{key}.limit_mb"), f.limit_mb.unwrap_or(super::DEFAULT_EXHAUST_LIMIT_MB), 16, 4096)?;
        let fault = FaultConfig { kind: f.kind, schedule, worker: f.worker, phases: names, permanent, limit_mb };
        if needs_a_browser(fault.kind) && applies_to(&fault, phases).all(|p| !p.task.needs_browser()) {
            let what = match fault.kind {
                FaultKind::GpuDeviceLost => "GPU device",
                FaultKind::ExhaustMemory => "browser renderer",
                _ => "browser or driver",
            };
            return Err(v.err(
                format!("{key}.kind"),
                format!("\"{}\"", fault.kind.as_str()),
                format!(
                    "applies only to synthetic phases, which run no {what}, so it could never fire: \
                     apply it to a browser phase with `phases = [...]`, use kind = \"throw\" or \"hang\", or remove it"
                ),
            ));
        }
        faults.push(fault);
    }
    Ok(faults)
}

/// Whether the fault kind acts on a browser, its driver or its GPU device (not on the page's
/// script, which a synthetic task imitates).
fn needs_a_browser(kind: FaultKind) -> bool {
    matches!(kind, FaultKind::KillBrowser | FaultKind::KillDriver | FaultKind::GpuDeviceLost | FaultKind::ExhaustMemory)
}

/// The phases `f` applies to (all when it names none).
fn applies_to<'a>(f: &'a FaultConfig, phases: &'a [PhaseConfig]) -> impl Iterator<Item = &'a PhaseConfig> + 'a {
    phases.iter().filter(|p| f.phases.is_empty() || f.phases.contains(&p.name))
}

/// One line per fault that can never fire.
/// Whether an `every` schedule ticks at least once while a phase it applies to runs. The runner's
/// timers run on the campaign clock from its start, across phase boundaries, and a tick leaves a
/// fault only while an applicable phase runs; here the phases are laid end to end as planned
/// (health-gating delays and session start-up only move them later).
fn ticks_within(every: Duration, f: &FaultConfig, phases: &[PhaseConfig]) -> bool {
    let every = every.max(Duration::from_millis(100)).as_nanos();
    let mut start = 0u128;
    for p in phases {
        let end = start + p.duration.as_nanos();
        let applies = f.phases.is_empty() || f.phases.iter().any(|n| n == &p.name);
        // the first tick at or after the phase's start (ticks are at every, 2*every, …)
        let first = start.div_ceil(every).max(1) * every;
        if applies && first < end {
            return true;
        }
        start = end;
    }
    false
}

pub(super) fn warnings(c: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for (i, f) in c.faults.iter().enumerate() {
        let key = format!("faults[{i}]");
        if let FaultSchedule::Every(every) = f.schedule {
            if !ticks_within(every, f, &c.phases) {
                let which = if f.phases.is_empty() { "all phases".to_string() } else { f.phases.join(", ") };
                out.push(format!(
                    "{}: `{key}.every` = \"{}\" never falls inside the phases it applies to ({which}) on the planned campaign clock, \
                     so the fault can never fire: lower `every` or apply it to more phases",
                    c.source,
                    fmt_duration(every),
                ));
            }
        }
        if matches!(f.kind, FaultKind::KillBrowser | FaultKind::KillDriver) {
            let targets: Vec<&WorkerConfig> = c.workers.iter().filter(|w| f.worker.as_ref().is_none_or(|id| &w.id == id)).collect();
            if targets.iter().all(|w| matches!(w.endpoint, WorkerEndpoint::Remote(_))) {
                let on = match &f.worker {
                    Some(id) => format!("worker {id:?} is remote"),
                    None => "every worker is remote".to_string(),
                };
                out.push(format!(
                    "{}: `{key}.kind` = \"{}\" can never fire: {on}, and stressctl kills only the browsers and drivers it started \
                     (`managed = true` workers)",
                    c.source,
                    f.kind.as_str()
                ));
            }
        }
    }
    out
}
