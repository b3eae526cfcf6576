//! `stressctl tune ID…` (print the overlay finished campaigns suggest) and the config
//! `launch --tuned-from ID…` runs with (that overlay layered over the profile and file).

use super::report_cmd::{load_report, store_error};
use super::{load_config, CliError, EXIT_OK};
use crate::cli::{CommonArgs, TuneArgs};
use crate::config::Config;
use crate::fmt::say;
use crate::report::tune::{tune as suggest, History, TuneError, Tuning};
use crate::report::TunedReport;

/// What the stores of `ids` suggest; an unknown or unfinished id is bad input (exit 2) naming it.
fn tuning(common: &CommonArgs, ids: &[String], target: &Config) -> Result<Tuning, CliError> {
    let mut histories = Vec::with_capacity(ids.len());
    for id in ids {
        let (r, c) = load_report(&common.state_dir, id)?;
        let h = History::read(&r, &c).map_err(|e| match &e {
            TuneError::Store(s) => store_error(s),
            TuneError::Unfinished(_) => CliError::usage(e.to_string()),
        })?;
        histories.push(h);
    }
    Ok(suggest(&histories, target))
}

/// `stressctl tune`.
pub(super) fn tune(common: &CommonArgs, a: &TuneArgs) -> Result<u8, CliError> {
    // the config the overlay is for (--profile/--config): its phases get session counts
    let target = load_config(common)?;
    print!("{}", tuning(common, &a.ids, &target)?.render());
    Ok(EXIT_OK)
}

/// The config with the overlay of `ids` layered on top, and every tuned setting as the effective
/// config has it without and with it (printed, and recorded for the reports).
pub(super) fn tuned_config(common: &CommonArgs, ids: &[String]) -> Result<(Config, TunedReport), CliError> {
    let old = load_config(common)?;
    let t = tuning(common, ids, &old)?;
    let name = format!("<tuned from {}>", ids.join(" "));
    let new = Config::load_with_overlay(common.config.as_deref(), common.profile.as_deref(), Some((&name, &t.render())))?;
    let table = |c: &Config| -> Result<toml::Table, CliError> {
        let text = c.to_toml()?;
        text.parse().map_err(|e| CliError::failed(format!("the effective config does not parse back: {e}")))
    };
    let changes = t.changes(&table(&old)?, &table(&new)?);
    if changes.is_empty() {
        say(&format!("stressctl: tuned from {}: nothing measured to tune (see `stressctl tune {}`)", ids.join(" "), ids.join(" ")));
    }
    for c in &changes {
        say(&format!("stressctl: tuned {}: {} -> {} ({})", c.key, c.old, c.new, c.source));
    }
    Ok((new, TunedReport { from: t.from, settings: changes }))
}
