//! Reports built from the store: one JSON file per phase (`phase_NN_name.json`),
//! `campaign_report.json`, `summary.txt`, `report.html`, `junit.xml` and `summary.md` (for CI),
//! `events.jsonl` (rebuilt from the stored events), and the comparison of two campaigns.
//!
//! Everything here is a pure function of the store, so `stressctl report ID` rebuilds files that are
//! byte-identical to the ones the run wrote: no "now" timestamps, maps are `BTreeMap`s (sorted keys),
//! fields are struct fields (fixed order), every float is rounded to 3 decimals, and pass/fail
//! decisions are taken on exact counts (never on a rounded rate).
//!
//! One file per concern; imports between them point one way (top first):
//!
//! ```text
//! write                       the reports directory: phase files, campaign_report.json, summary.txt,
//!                             report.html, junit.xml, summary.md, events.jsonl
//! html, summary, compare,     the campaign report shown: HTML page, text summary, two campaigns side by
//!   junit, markdown, tune     side, JUnit XML and Markdown for CI; the overlay `stressctl tune`
//!                             suggests from finished campaigns
//! noise                       the comparison's bootstrap intervals over the phases' windows
//! latency, table              the summary's latency section; its fixed-width tables
//! campaign                    the campaign report put together: totals, interruptions, confinement
//! verdict                     the campaign verdict (also alone, for the runner: `campaign_verdict`)
//! phase                       one phase's report: figures from its windows and task info, criteria judged
//! capacity                    a capacity phase's search: the next count to measure, the answer its steps give
//! trend, drift                drift and leak verdicts: a phase's and the campaign's trends (Theil–Sen
//!                             with Sen's interval, per browser session for memory), drift criteria
//! phase_events, guardian,     what a phase's events say; host and guardian figures; breakers; recoveries;
//!   breakers, recoveries,     per-browser and per-node sections; the model task's figures; the
//!   browsers, grid, model,    notifications sent; the settings `launch --tuned-from` changed;
//!   notifications, tuned,     work the recovery ladder shrank, counted apart
//!   degraded
//! criteria, typed_events,     a phase's criteria; the store's events decoded; numbers as reports print
//!   numbers, atomic           them; replacing a file atomically
//! ```

mod atomic;
mod baseline;
mod breakers;
pub mod browsers;
mod campaign;
pub mod capacity;
mod compare;
mod criteria;
mod degraded;
mod drift;
pub mod grid; // grid hook
mod guardian;
pub mod html;
mod junit;
mod latency;
mod markdown;
mod model;
pub mod nodes;
mod noise;
mod notifications;
mod numbers;
mod phase;
mod phase_events;
mod recoveries;
mod summary;
mod table;
#[cfg(test)]
mod tests;
mod trend;
#[cfg(test)]
mod trend_tests;
pub mod tune;
mod tuned;
mod typed_events;
mod verdict;
mod write;

pub use baseline::{BaselineComparison, BaselineReport};
pub use breakers::{BreakerCommandRecord, BreakerTransition, Breakers};
pub use campaign::{campaign_report, CampaignReport, Interruption, SourceStore, Totals, OUTCOME_INTERRUPTED};
pub use compare::{compare, compare_stores, render_comparison, Comparison, LatencyDelta, PhaseDelta, Tolerance};
pub use criteria::PhaseCriteria;
pub(crate) use criteria::{criteria_latency, evaluate_criteria};
pub use guardian::{EmergencyStop, GuardianSummary};
pub use junit::{render_junit, JUNIT_FILE};
pub use markdown::{render_summary_md, SUMMARY_MD_FILE};
pub use notifications::{NotificationFailure, Notifications};
pub use phase::{phase_report, PhaseReport, TaskReport};
pub use phase_events::{ConsoleReport, ConsoleTop, TopError, Unsupported, ViolationRecord, MAX_MESSAGE_CHARS, TOP_ERRORS};
pub use recoveries::{Recoveries, RecoveryStats};
pub use summary::render_summary;
pub use trend::{DriftReport, Trend};
pub use tuned::TunedReport;
pub use verdict::{campaign_verdict, verdict, Verdict};
pub use write::{
    phase_file_name, write_campaign_reports, write_events_jsonl, write_phase_report, RebuildError, CAMPAIGN_REPORT_FILE, EVENTS_FILE,
    SUMMARY_FILE,
};

// grid.rs reaches these as `super::…`
use numbers::{ratio, round3};
use typed_events::for_each_typed;

use crate::store::StoreReader;
use std::path::Path;

/// `stressctl report ID`: rebuilds every file of the campaign's reports directory from its store —
/// the phase files, `campaign_report.json`, `summary.txt`, `report.html`, `junit.xml`, `summary.md`
/// and `events.jsonl` — byte-identical to
/// the ones the run wrote. Everything is read (and verified) before the first file is replaced, so
/// a damaged store leaves the directory as it was.
pub fn rebuild_reports(r: &StoreReader, dir: &Path) -> Result<CampaignReport, RebuildError> {
    let c = campaign_report(r)?;
    write_events_jsonl(dir, r)?;
    write_campaign_reports(dir, &c).map_err(|source| RebuildError::Write { dir: dir.to_path_buf(), source })?;
    Ok(c)
}
