//! Comparing two campaign reports (`stressctl report A --compare B`): phases matched by name,
//! regressions flagged against a [`Tolerance`]. With the two stores ([`compare_stores`]), a change
//! beyond the tolerance is a regression only when its 95 % bootstrap interval over the phases'
//! windows ([`super::noise`]) lies beyond the tolerance too; otherwise it is "within noise".

use super::campaign::CampaignReport;
use super::noise::{self, Interval};
use super::numbers::{pct_counts, round3};
use super::phase::PhaseReport;
use crate::store::{StoreError, StoreReader, WindowPoint};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How much worse a phase may get before it counts as a regression.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    /// Success rate drop allowed, in percentage points.
    pub success_rate_points: f64,
    /// Throughput drop allowed, in percent.
    pub throughput_pct: f64,
    /// p50/p95/p99 increase allowed, in percent.
    pub latency_pct: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance { success_rate_points: 2.0, throughput_pct: 10.0, latency_pct: 10.0 }
    }
}

/// A latency percentile in both runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyDelta {
    /// Base, ms.
    pub base: f64,
    /// New, ms.
    pub new: f64,
    /// Change in percent of base (null when base is 0).
    pub change_pct: Option<f64>,
    /// 95 % bootstrap interval of the change (of the windows' mean percentile), percent; absent
    /// without the stores or with too few windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_pct: Option<Interval>,
}

/// One phase present in both runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseDelta {
    /// Phase name.
    pub name: String,
    /// Base success rate (0..=1).
    pub base_success_rate: f64,
    /// New success rate (0..=1).
    pub new_success_rate: f64,
    /// new - base, in percentage points.
    pub success_rate_change_points: f64,
    /// Base throughput, ops/s.
    pub base_throughput: f64,
    /// New throughput, ops/s.
    pub new_throughput: f64,
    /// Change in percent of base (null when base is 0).
    pub throughput_change_pct: Option<f64>,
    /// Median.
    pub p50: LatencyDelta,
    /// 95th percentile.
    pub p95: LatencyDelta,
    /// 99th percentile.
    pub p99: LatencyDelta,
    /// 95 % bootstrap interval of the success-rate change, points (see [`LatencyDelta::interval_pct`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate_interval_points: Option<Interval>,
    /// 95 % bootstrap interval of the throughput change, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_interval_pct: Option<Interval>,
    /// This phase's regressions, one sentence each.
    pub regressions: Vec<String>,
    /// Changes beyond the tolerance whose interval still reaches it: noise, not regressions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub within_noise: Vec<String>,
}

/// The comparison of two campaigns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Base campaign id.
    pub base_id: String,
    /// New campaign id.
    pub new_id: String,
    /// Tolerance applied.
    pub tolerance: Tolerance,
    /// Matched phases, in the new campaign's order.
    pub phases: Vec<PhaseDelta>,
    /// Every regression, `phase: what`.
    pub regressions: Vec<String>,
    /// Every change beyond the tolerance that is within noise, `phase: what`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub within_noise: Vec<String>,
    /// Phases present in only one campaign (`only in base: x`, `only in new: y`).
    pub unmatched: Vec<String>,
}

impl Comparison {
    /// Whether anything regressed beyond the tolerance.
    pub fn has_regressions(&self) -> bool {
        !self.regressions.is_empty()
    }
}

/// Latencies below this (in both runs) are noise and never flagged.
const LATENCY_FLOOR_MS: f64 = 1.0;

fn change_pct(base: f64, new: f64) -> Option<f64> {
    (base > 0.0).then(|| round3((new - base) / base * 100.0))
}

fn latency(base: f64, new: f64) -> LatencyDelta {
    LatencyDelta { base, new, change_pct: change_pct(base, new), interval_pct: None }
}

/// The two sides' windows of a matched phase, when the stores were read.
type Windows<'a> = Option<(&'a [WindowPoint], &'a [WindowPoint])>;

/// ` (95% interval a..b)` in `unit`.
fn said(iv: Option<Interval>, unit: &str) -> String {
    iv.map(|[lo, hi]| format!(", 95% interval {lo:+.1}{unit}..{hi:+.1}{unit}")).unwrap_or_default()
}

/// Sorts a change beyond the tolerance: a regression when there is no interval or the interval
/// lies beyond the tolerance (`beyond`), else within noise.
fn judge(
    sentence: String,
    iv: Option<Interval>,
    beyond: impl Fn(Interval) -> bool,
    regressions: &mut Vec<String>,
    noise: &mut Vec<String>,
) {
    match iv {
        Some(i) if !beyond(i) => noise.push(format!("{sentence}: within noise")),
        _ => regressions.push(sentence),
    }
}

fn delta(b: &PhaseReport, n: &PhaseReport, tol: &Tolerance, windows: Windows) -> PhaseDelta {
    // exact rates from counts where there are ops, the rounded field otherwise
    let rate = |p: &PhaseReport| if p.ops_attempted > 0 { p.ops_succeeded as f64 / p.ops_attempted as f64 } else { p.success_rate };
    let (br, nr) = (rate(b), rate(n));
    let points = (nr - br) * 100.0;
    let rate_iv = windows.and_then(|(wb, wn)| noise::interval(wb, wn, noise::success_rate, noise::points_change));
    let tp_iv = windows
        .and_then(|(wb, wn)| noise::interval(&noise::ops_per_second(wb), &noise::ops_per_second(wn), noise::mean, noise::pct_change));
    let (mut regressions, mut within_noise) = (Vec::new(), Vec::new());
    if -points > tol.success_rate_points + 1e-9 {
        let sentence = format!(
            "success rate {}% -> {}% ({:.1} points{}, tolerance {} points)",
            pct_counts(b.ops_succeeded, b.ops_attempted),
            pct_counts(n.ops_succeeded, n.ops_attempted),
            points,
            said(rate_iv, ""),
            tol.success_rate_points
        );
        judge(sentence, rate_iv, |[_, hi]| -hi > tol.success_rate_points + 1e-9, &mut regressions, &mut within_noise);
    }
    let tp = change_pct(b.throughput_ops_per_s, n.throughput_ops_per_s);
    if let Some(c) = tp.filter(|c| -c > tol.throughput_pct) {
        let sentence = format!(
            "throughput {:.1} -> {:.1} ops/s ({c:.1}%{}, tolerance {}%)",
            b.throughput_ops_per_s,
            n.throughput_ops_per_s,
            said(tp_iv, "%"),
            tol.throughput_pct
        );
        judge(sentence, tp_iv, |[_, hi]| -hi > tol.throughput_pct, &mut regressions, &mut within_noise);
    }
    let mut lat = [
        ("p50", latency(b.latency_ms.p50, n.latency_ms.p50)),
        ("p95", latency(b.latency_ms.p95, n.latency_ms.p95)),
        ("p99", latency(b.latency_ms.p99, n.latency_ms.p99)),
    ];
    for (label, d) in &mut lat {
        // each window's own percentile, averaged: what the bootstrap resamples
        let pick = |w: &WindowPoint| {
            w.latency.as_ref().map(|l| match *label {
                "p50" => l.p50,
                "p95" => l.p95,
                _ => l.p99,
            })
        };
        d.interval_pct = windows.and_then(|(wb, wn)| {
            let (vb, vn): (Vec<f64>, Vec<f64>) = (wb.iter().filter_map(pick).collect(), wn.iter().filter_map(pick).collect());
            noise::interval(&vb, &vn, noise::mean, noise::pct_change)
        });
        if d.base < LATENCY_FLOOR_MS && d.new < LATENCY_FLOOR_MS {
            continue;
        }
        if let Some(c) = d.change_pct.filter(|c| *c > tol.latency_pct) {
            let sentence =
                format!("{label} {:.1} -> {:.1} ms (+{c:.1}%{}, tolerance {}%)", d.base, d.new, said(d.interval_pct, "%"), tol.latency_pct);
            judge(sentence, d.interval_pct, |[lo, _]| lo > tol.latency_pct, &mut regressions, &mut within_noise);
        }
    }
    let round = |iv: Option<Interval>| iv.map(|[a, b]| [round3(a), round3(b)]);
    for (_, d) in &mut lat {
        d.interval_pct = round(d.interval_pct);
    }
    let [(_, p50), (_, p95), (_, p99)] = lat;
    PhaseDelta {
        name: n.name.clone(),
        base_success_rate: round3(br),
        new_success_rate: round3(nr),
        success_rate_change_points: round3(points),
        base_throughput: b.throughput_ops_per_s,
        new_throughput: n.throughput_ops_per_s,
        throughput_change_pct: tp,
        p50,
        p95,
        p99,
        success_rate_interval_points: round(rate_iv),
        throughput_interval_pct: round(tp_iv),
        regressions,
        within_noise,
    }
}

/// Compares `new` against `base` as [`compare`] does, and tells each change beyond the tolerance
/// from noise with a bootstrap over the phases' windows, read from the two stores.
pub fn compare_stores(
    base_store: &StoreReader,
    base: &CampaignReport,
    new_store: &StoreReader,
    new: &CampaignReport,
    tolerance: &Tolerance,
) -> Result<Comparison, StoreError> {
    let points = |r: &StoreReader, c: &CampaignReport| -> Result<BTreeMap<u32, Vec<WindowPoint>>, StoreError> {
        c.phases.iter().map(|p| Ok((p.index, r.phase_window_points(p.index)?))).collect()
    };
    let (wb, wn) = (points(base_store, base)?, points(new_store, new)?);
    Ok(compare_with(base, new, tolerance, Some((&wb, &wn))))
}

/// Compares `new` against `base`. Phases are matched by name (the k-th phase of a name in one run
/// with the k-th of that name in the other).
pub fn compare(base: &CampaignReport, new: &CampaignReport, tolerance: &Tolerance) -> Comparison {
    compare_with(base, new, tolerance, None)
}

/// Per phase index, its windows, for each side.
pub(super) type SideWindows<'a> = Option<(&'a BTreeMap<u32, Vec<WindowPoint>>, &'a BTreeMap<u32, Vec<WindowPoint>>)>;

pub(super) fn compare_with(base: &CampaignReport, new: &CampaignReport, tolerance: &Tolerance, windows: SideWindows) -> Comparison {
    let mut base_by_name: BTreeMap<&str, Vec<&PhaseReport>> = BTreeMap::new();
    for p in &base.phases {
        base_by_name.entry(p.name.as_str()).or_default().push(p);
    }
    let mut used: BTreeMap<&str, usize> = BTreeMap::new();
    let mut phases = Vec::new();
    let mut regressions = Vec::new();
    let mut within_noise = Vec::new();
    let mut unmatched = Vec::new();
    for n in &new.phases {
        let k = used.entry(n.name.as_str()).or_insert(0);
        match base_by_name.get(n.name.as_str()).and_then(|v| v.get(*k)) {
            Some(b) => {
                *k += 1;
                let w = windows.and_then(|(wb, wn)| Some((wb.get(&b.index)?.as_slice(), wn.get(&n.index)?.as_slice())));
                let d = delta(b, n, tolerance, w);
                regressions.extend(d.regressions.iter().map(|r| format!("{}: {r}", d.name)));
                within_noise.extend(d.within_noise.iter().map(|r| format!("{}: {r}", d.name)));
                phases.push(d);
            }
            None => unmatched.push(format!("only in new: {}", n.name)),
        }
    }
    for p in &base.phases {
        let k = used.get(p.name.as_str()).copied().unwrap_or(0);
        let pos = base_by_name.get(p.name.as_str()).and_then(|v| v.iter().position(|q| q.index == p.index)).unwrap_or(0);
        if pos >= k {
            unmatched.push(format!("only in base: {}", p.name));
        }
    }
    Comparison {
        base_id: base.campaign_id.clone(),
        new_id: new.campaign_id.clone(),
        tolerance: *tolerance,
        phases,
        regressions,
        within_noise,
        unmatched,
    }
}

fn signed(v: Option<f64>) -> String {
    match v {
        Some(c) => format!("{c:+.1}%"),
        None => "n/a".into(),
    }
}

/// Renders a comparison: a table of matched phases, then the regressions and unmatched phases.
pub fn render_comparison(c: &Comparison) -> String {
    let mut out = Vec::new();
    out.push(format!("Comparison: base {} -> new {}", c.base_id, c.new_id));
    out.push(format!(
        "Tolerance: success rate -{} points, throughput -{}%, latency +{}% (latencies under 1 ms ignored); a change is a regression when its 95% bootstrap interval over the windows lies beyond the tolerance",
        c.tolerance.success_rate_points, c.tolerance.throughput_pct, c.tolerance.latency_pct
    ));
    out.push(String::new());
    let headers = ["phase", "success % base -> new", "Δ points", "ops/s base -> new", "Δ ops/s", "p50 Δ", "p95 Δ", "p99 Δ", ""];
    let rows: Vec<Vec<String>> = c
        .phases
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                format!("{:.1} -> {:.1}", d.base_success_rate * 100.0, d.new_success_rate * 100.0),
                format!("{:+.1}", d.success_rate_change_points),
                format!("{:.1} -> {:.1}", d.base_throughput, d.new_throughput),
                signed(d.throughput_change_pct),
                signed(d.p50.change_pct),
                signed(d.p95.change_pct),
                signed(d.p99.change_pct),
                if d.regressions.is_empty() { "ok".into() } else { "REGRESSED".into() },
            ]
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from("  ");
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = " ".repeat(widths[i].saturating_sub(cell.chars().count()));
            if i == 0 || i == cells.len() - 1 {
                s.push_str(cell);
                s.push_str(&pad);
            } else {
                s.push_str(&pad);
                s.push_str(cell);
            }
        }
        s.trim_end().to_string()
    };
    out.push(line(headers.to_vec()));
    for r in &rows {
        out.push(line(r.iter().map(String::as_str).collect()));
    }
    out.push(String::new());
    if c.regressions.is_empty() {
        out.push("No regressions beyond the tolerance.".into());
    } else {
        out.push(format!("Regressions ({}):", c.regressions.len()));
        out.extend(c.regressions.iter().map(|r| format!("  - {r}")));
    }
    if !c.within_noise.is_empty() {
        out.push(String::new());
        out.push(format!(
            "Beyond the tolerance but within noise ({}; the 95% interval over the windows reaches the tolerance):",
            c.within_noise.len()
        ));
        out.extend(c.within_noise.iter().map(|r| format!("  - {r}")));
    }
    if !c.unmatched.is_empty() {
        out.push(String::new());
        out.push("Unmatched phases:".into());
        out.extend(c.unmatched.iter().map(|u| format!("  - {u}")));
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}
