//! Comparing two campaign reports (`stressctl report A --compare B`): phases matched by name,
//! regressions flagged against a [`Tolerance`].

use super::campaign::CampaignReport;
use super::numbers::{pct_counts, round3};
use super::phase::PhaseReport;
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
    /// This phase's regressions, one sentence each.
    pub regressions: Vec<String>,
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
    LatencyDelta { base, new, change_pct: change_pct(base, new) }
}

fn delta(b: &PhaseReport, n: &PhaseReport, tol: &Tolerance) -> PhaseDelta {
    // exact rates from counts where there are ops, the rounded field otherwise
    let rate = |p: &PhaseReport| if p.ops_attempted > 0 { p.ops_succeeded as f64 / p.ops_attempted as f64 } else { p.success_rate };
    let (br, nr) = (rate(b), rate(n));
    let points = (nr - br) * 100.0;
    let mut regressions = Vec::new();
    if -points > tol.success_rate_points + 1e-9 {
        regressions.push(format!(
            "success rate {}% -> {}% ({:.1} points, tolerance {} points)",
            pct_counts(b.ops_succeeded, b.ops_attempted),
            pct_counts(n.ops_succeeded, n.ops_attempted),
            points,
            tol.success_rate_points
        ));
    }
    let tp = change_pct(b.throughput_ops_per_s, n.throughput_ops_per_s);
    if let Some(c) = tp.filter(|c| -c > tol.throughput_pct) {
        regressions.push(format!(
            "throughput {:.1} -> {:.1} ops/s ({c:.1}%, tolerance {}%)",
            b.throughput_ops_per_s, n.throughput_ops_per_s, tol.throughput_pct
        ));
    }
    let (p50, p95, p99) = (
        latency(b.latency_ms.p50, n.latency_ms.p50),
        latency(b.latency_ms.p95, n.latency_ms.p95),
        latency(b.latency_ms.p99, n.latency_ms.p99),
    );
    for (label, d) in [("p50", &p50), ("p95", &p95), ("p99", &p99)] {
        if d.base < LATENCY_FLOOR_MS && d.new < LATENCY_FLOOR_MS {
            continue;
        }
        if let Some(c) = d.change_pct.filter(|c| *c > tol.latency_pct) {
            regressions.push(format!("{label} {:.1} -> {:.1} ms (+{c:.1}%, tolerance {}%)", d.base, d.new, tol.latency_pct));
        }
    }
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
        regressions,
    }
}

/// Compares `new` against `base`. Phases are matched by name (the k-th phase of a name in one run
/// with the k-th of that name in the other).
pub fn compare(base: &CampaignReport, new: &CampaignReport, tolerance: &Tolerance) -> Comparison {
    let mut base_by_name: BTreeMap<&str, Vec<&PhaseReport>> = BTreeMap::new();
    for p in &base.phases {
        base_by_name.entry(p.name.as_str()).or_default().push(p);
    }
    let mut used: BTreeMap<&str, usize> = BTreeMap::new();
    let mut phases = Vec::new();
    let mut regressions = Vec::new();
    let mut unmatched = Vec::new();
    for n in &new.phases {
        let k = used.entry(n.name.as_str()).or_insert(0);
        match base_by_name.get(n.name.as_str()).and_then(|v| v.get(*k)) {
            Some(b) => {
                *k += 1;
                let d = delta(b, n, tolerance);
                regressions.extend(d.regressions.iter().map(|r| format!("{}: {r}", d.name)));
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
    Comparison { base_id: base.campaign_id.clone(), new_id: new.campaign_id.clone(), tolerance: *tolerance, phases, regressions, unmatched }
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
        "Tolerance: success rate -{} points, throughput -{}%, latency +{}% (latencies under 1 ms ignored)",
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
    if !c.unmatched.is_empty() {
        out.push(String::new());
        out.push("Unmatched phases:".into());
        out.extend(c.unmatched.iter().map(|u| format!("  - {u}")));
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}
