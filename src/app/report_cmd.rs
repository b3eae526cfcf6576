//! `stressctl report`: rebuild a campaign's reports from its store, list campaigns, or compare
//! two campaigns.

use super::{CliError, EXIT_FAILED, EXIT_OK};
use crate::cli::{CommonArgs, ReportArgs};
use crate::progress::say;
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

/// The report of campaign `id`. An unknown id is bad input (exit 2); a store that cannot be
/// read is a failure (exit 1).
fn load_report(state_dir: &Path, id: &str) -> Result<report::CampaignReport, CliError> {
    let path = store::store_path(state_dir, id);
    if !path.exists() {
        return Err(CliError::usage(format!("no store for campaign {id} in {} (see `stressctl report --list`)", state_dir.display())));
    }
    let r = StoreReader::open(&path).map_err(|e| CliError::failed(e.to_string()))?;
    report::campaign_report(&r).map_err(|e| CliError::failed(e.to_string()))
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
    let base = load_report(&common.state_dir, &id)?;
    if let Some(other) = &a.compare {
        let new = load_report(&common.state_dir, other)?;
        let tol = report::Tolerance {
            success_rate_points: a.tolerance_success,
            throughput_pct: a.tolerance_throughput,
            latency_pct: a.tolerance_latency,
        };
        let c = report::compare(&base, &new, &tol);
        print!("{}", report::render_comparison(&c));
        return Ok(if c.has_regressions() { EXIT_FAILED } else { EXIT_OK });
    }
    let dir = common.output_dir.join(&id);
    std::fs::create_dir_all(&dir)
        .and_then(|_| report::write_campaign_reports(&dir, &base))
        .map_err(|e| CliError::failed(format!("cannot write reports to {}: {e}", dir.display())))?;
    say(&format!("stressctl: reports of {id} rebuilt from its store in {}/", dir.display()));
    Ok(EXIT_OK)
}
