//! The campaign report (`campaign_report.json`): the campaign row, every phase's report, the
//! verdict, totals and the campaign-wide sections, put together.

use super::breakers::{breakers, Breakers};
use super::grid; // grid hook
use super::guardian::{guardian, GuardianSummary};
use super::numbers::{per_second, ratio, round3};
use super::phase::{build_phase, PhaseReport};
use super::phase_events::Unsupported;
use super::recoveries::{recoveries, Recoveries};
use super::trend::{analyse, DriftReport, DriftSettings};
use super::typed_events::last_typed;
use super::verdict::{judge, plan, PhaseTally, Verdict};
use crate::events::Event;
use crate::store::{StoreError, StoreReader};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Outcome reported when the store has none (the run died or is still going).
pub const OUTCOME_INTERRUPTED: &str = "interrupted";

/// Sums over all phases.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Ops attempted.
    pub ops_attempted: u64,
    /// Ops that succeeded.
    pub ops_succeeded: u64,
    /// Ops that failed.
    pub ops_failed: u64,
    /// succeeded / attempted (0 when no ops).
    pub success_rate: f64,
    /// Sum of the phases' durations, seconds.
    pub duration_s: f64,
    /// attempted / duration_s.
    pub throughput_ops_per_s: f64,
}

/// A campaign interruption or resume (events `campaign_interrupted`, `campaign_resumed`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interruption {
    /// RFC 3339.
    pub at: String,
    /// `campaign_interrupted` or `campaign_resumed`.
    pub kind: String,
    /// Message.
    pub message: String,
}

/// The campaign report (`campaign_report.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignReport {
    /// Campaign id.
    pub campaign_id: String,
    /// Profile.
    pub profile: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339 (null when the campaign did not end).
    pub ended_at: Option<String>,
    /// ended_at - started_at, seconds (null when not ended).
    pub wall_time_s: Option<f64>,
    /// passed | failed | halted | emergency_stopped, or `interrupted` when the store has none.
    pub outcome: String,
    /// Why it stopped.
    pub stop_reason: Option<String>,
    /// Times resumed.
    pub resumes: u32,
    /// Where the config came from.
    pub config_source: String,
    /// Verdict from the phases.
    pub verdict: Verdict,
    /// Sums over phases.
    pub totals: Totals,
    /// Every phase started, by index.
    pub phases: Vec<PhaseReport>,
    /// Circuit breakers.
    pub breakers: Breakers,
    /// Recovery attempts.
    pub recoveries: Recoveries,
    /// Resource guardian.
    pub guardian: GuardianSummary,
    /// Interruptions and resumes.
    pub interruptions: Vec<Interruption>,
    /// Unsupported APIs.
    pub unsupported: Vec<Unsupported>,
    /// The faults the config planned, one line each (schedule, worker, phases).
    #[serde(default)]
    pub faults_planned: Vec<String>,
    /// How the campaign was confined (the reservation kept for the host, PID namespaces), as
    /// recorded when it started; null in stores from before confinement.
    #[serde(default)]
    pub confinement: Option<String>,
    /// The night's baseline and the last phase against it; null when the campaign took none
    /// (`launch --no-baseline`, or a store from before baselines).
    #[serde(default)]
    pub baseline: Option<super::baseline::BaselineReport>,
    /// Notifications sent to `[[notify]]` receivers (all zero without any).
    #[serde(default)]
    pub notifications: super::notifications::Notifications,
    /// The settings `launch --tuned-from` changed (absent when the campaign ran untuned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuned: Option<super::tuned::TunedReport>,
    /// Trends over the whole campaign (browser memory per session, in-page p95, GPU errors,
    /// failure rate); absent when its phases ran less than `drift_min_phase` together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftReport>,
    /// grid hook: per Selenium Grid node (empty without a Grid worker).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grid_nodes: Vec<grid::GridNodeReport>,
    /// The nodes watched through their node_exporters (`[[workers]] node_metrics`): resource
    /// series, peaks and drains (empty when none was watched).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<super::nodes::NodeReport>,
    /// The store this report was built from (not written to the JSON): `report.html` reads its
    /// time series from it.
    #[serde(skip)]
    pub source_store: SourceStore,
}

/// The campaign report, from the store. A phase still marked `running` is reported as
/// `interrupted` (nothing runs while a report of the whole campaign is built).
pub fn campaign_report(r: &StoreReader) -> Result<CampaignReport, StoreError> {
    let c = r.campaign()?;
    let mut unsupported = BTreeSet::new();
    let mut phases = Vec::new();
    let settings = DriftSettings::of(r)?;
    let infos = r.phases()?;
    for p in &infos {
        let mut pr = build_phase(r, p, &settings, &mut unsupported)?;
        if pr.status == "running" {
            pr.status = "interrupted".into();
        }
        phases.push(pr);
    }
    let plan = plan(r)?;
    let tallies: Vec<PhaseTally> = phases.iter().map(PhaseTally::of_report).collect();
    let v = judge(&plan, &tallies, c.outcome.as_deref(), c.stop_reason.as_deref());

    let attempted: u64 = phases.iter().map(|p| p.ops_attempted).sum();
    let succeeded: u64 = phases.iter().map(|p| p.ops_succeeded).sum();
    let failed: u64 = phases.iter().map(|p| p.ops_failed).sum();
    let duration_s = round3(phases.iter().map(|p| p.duration_s).sum());
    let totals = Totals {
        ops_attempted: attempted,
        ops_succeeded: succeeded,
        ops_failed: failed,
        success_rate: round3(ratio(succeeded, attempted)),
        duration_s,
        throughput_ops_per_s: per_second(attempted, duration_s),
    };

    let mut interruptions = Vec::new();
    r.for_each_event(None, &["campaign_interrupted", "campaign_resumed"], |e| {
        interruptions.push(Interruption { at: e.at, kind: e.kind, message: e.message })
    })?;

    // the campaign as a whole, when its phases ran at least `drift_min_phase` together
    let span_ms: u64 = infos.iter().map(|p| p.elapsed_ms).sum();
    let drift = if !infos.is_empty() && span_ms >= settings.min_phase.as_millis() as u64 { Some(analyse(r, None, span_ms)?) } else { None };
    let breakers = breakers(r)?;
    let baseline = super::baseline::baseline(r, &phases)?;
    let grid_nodes = grid::grid_nodes(r, phases.len() as u32, &breakers)?; // grid hook
    Ok(CampaignReport {
        grid_nodes,
        nodes: super::nodes::nodes(r)?,
        wall_time_s: wall_time_s(&c.started_at, c.ended_at.as_deref()),
        campaign_id: c.id,
        profile: c.profile,
        started_at: c.started_at,
        ended_at: c.ended_at,
        outcome: c.outcome.unwrap_or_else(|| OUTCOME_INTERRUPTED.to_string()),
        stop_reason: c.stop_reason,
        resumes: c.resumes,
        config_source: c.config_source,
        verdict: v,
        totals,
        phases,
        breakers,
        recoveries: recoveries(r)?,
        guardian: guardian(r)?,
        interruptions,
        unsupported: unsupported.into_iter().collect(),
        faults_planned: plan.faults,
        confinement: confinement(r)?,
        baseline,
        notifications: super::notifications::notifications(r)?,
        tuned: super::tuned::tuned(r)?,
        drift,
        source_store: SourceStore(Some(r.path().to_path_buf())),
    })
}

/// The last `confinement` event's description (a resumed run records its own).
fn confinement(r: &StoreReader) -> Result<Option<String>, StoreError> {
    match last_typed(r, "confinement")? {
        Some(Event::Confinement { description, .. }) => Ok(Some(description)),
        _ => Ok(None),
    }
}

/// ended - started, seconds (None when not ended or a time does not parse).
fn wall_time_s(started: &str, ended: Option<&str>) -> Option<f64> {
    let s = humantime::parse_rfc3339_weak(started).ok()?;
    let e = humantime::parse_rfc3339_weak(ended?).ok()?;
    e.duration_since(s).ok().map(|d| round3(d.as_secs_f64()))
}

/// Where a report was read from. Not part of its content: two reports of the same campaign are
/// equal wherever they were read from (and one read back from JSON has none).
#[derive(Clone, Debug, Default)]
pub struct SourceStore(pub Option<std::path::PathBuf>);

impl PartialEq for SourceStore {
    fn eq(&self, _: &SourceStore) -> bool {
        true
    }
}
