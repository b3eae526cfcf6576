//! `stressctl report`: rebuild a campaign's reports from its store, list campaigns, or compare
//! two campaigns.

use super::{CliError, EXIT_FAILED, EXIT_OK};
use crate::cli::{CommonArgs, ReportArgs};
use crate::control::lock;
use crate::fmt::say;
use crate::report;
use crate::store::{self, StoreReader};
use std::path::Path;

/// The given id, or the latest campaign in the state dir.
fn latest_or(state_dir: &Path, id: Option<&str>) -> Result<String, CliError> {
    match id {
        Some(id) => Ok(id.to_string()),
        None => store::list_campaigns(state_dir)
            .pop()
            .ok_or_else(|| CliError::usage(format!("no campaigns recorded in {} (run `stressctl launch` first)", state_dir.display()))),
    }
}

/// An error of the store as a command error: an unknown or invalid id is bad input (exit 2),
/// anything else a failure (exit 1).
pub(super) fn store_error(e: &store::StoreError) -> CliError {
    if e.is_bad_input() {
        CliError::usage(e.to_string())
    } else {
        CliError::failed(e.to_string())
    }
}

/// The store of campaign `id` and its report, verified.
pub(super) fn load_report(state_dir: &Path, id: &str) -> Result<(StoreReader, report::CampaignReport), CliError> {
    let r = StoreReader::open_campaign(state_dir, id).map_err(|e| store_error(&e))?;
    let c = report::campaign_report(&r).map_err(|e| store_error(&e))?;
    Ok((r, c))
}

/// `stressctl report`.
pub(super) fn report(common: &CommonArgs, a: &ReportArgs) -> Result<u8, CliError> {
    if a.list {
        for id in store::list_campaigns(&common.state_dir) {
            say(&id);
        }
        return Ok(EXIT_OK);
    }
    let id = latest_or(&common.state_dir, a.id.as_deref())?;
    if let Some(other) = &a.compare {
        let (rb, base) = load_report(&common.state_dir, &id)?;
        let (rn, new) = load_report(&common.state_dir, other)?;
        let tol = report::Tolerance {
            success_rate_points: a.tolerance_success,
            throughput_pct: a.tolerance_throughput,
            latency_pct: a.tolerance_latency,
        };
        let c = report::compare_stores(&rb, &base, &rn, &new, &tol).map_err(|e| store_error(&e))?;
        print!("{}", report::render_comparison(&c));
        return Ok(if c.has_regressions() { EXIT_FAILED } else { EXIT_OK });
    }
    let reader = StoreReader::open_campaign(&common.state_dir, &id).map_err(|e| store_error(&e))?;
    let dir = common.output_dir.join(&id);
    // a running campaign's writer appends to its events.jsonl: leave that file to it
    let running = lock::read(&common.state_dir).is_some_and(|l| l.campaign_id == id && l.holder_alive());
    let rebuilt = if running {
        report::campaign_report(&reader).map_err(report::RebuildError::from).and_then(|c| {
            report::write_campaign_reports(&dir, &c).map_err(|source| report::RebuildError::Write { dir: dir.clone(), source })
        })
    } else {
        report::rebuild_reports(&reader, &dir).map(drop)
    };
    rebuilt.map_err(|e| match &e {
        report::RebuildError::Store(s) => store_error(s),
        report::RebuildError::Write { .. } => CliError::failed(e.to_string()),
    })?;
    say(&format!("stressctl: reports of {id} rebuilt from its store in {}/", dir.display()));
    super::ci::write_ci_outputs(&dir, &a.ci, a.ci.summary_md.is_some())?;
    Ok(EXIT_OK)
}
