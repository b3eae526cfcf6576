//! The latency section of the summary: per phase and task, the in-page latency (what the workload
//! took in the page, `performance.now()` around it) beside the round trip (what the driver saw),
//! p50/p90/p95/p99/max, and which of the two each phase's `max_p95` judged.

use super::campaign::CampaignReport;
use super::table::{f1, table, Align};
use crate::metrics::LatencySummary;

fn cells(l: Option<&LatencySummary>) -> [String; 5] {
    match l {
        Some(l) => [f1(l.p50), f1(l.p90), f1(l.p95), f1(l.p99), f1(l.max)],
        None => std::array::from_fn(|_| "-".to_string()),
    }
}

/// The section's lines (none when no phase ran an op).
pub(super) fn lines(c: &CampaignReport) -> Vec<String> {
    let mut rows = Vec::new();
    for p in &c.phases {
        for (kind, t) in p.tasks.iter().filter(|(_, t)| t.ops_attempted > 0) {
            for (which, l) in [("in_page", t.in_page_latency_ms.as_ref()), ("round_trip", Some(&t.latency_ms))] {
                if which == "in_page" && l.is_none() {
                    continue;
                }
                let judged = if p.criteria.p95_basis == which { "max_p95" } else { "" };
                let mut row = vec![(p.index + 1).to_string(), kind.clone(), which.to_string()];
                row.extend(cells(l));
                row.push(judged.to_string());
                rows.push(row);
            }
        }
    }
    if rows.is_empty() {
        return Vec::new();
    }
    let mut out = vec![
        String::new(),
        "  latency per phase and task, ms (in_page: the workload in the page; round_trip: what the driver saw, \
         an op of a batch gets its in-page time plus an equal share of the call's overhead):"
            .to_string(),
    ];
    out.extend(table(
        "  ",
        &[
            ("#", Align::Right),
            ("task", Align::Left),
            ("latency", Align::Left),
            ("p50", Align::Right),
            ("p90", Align::Right),
            ("p95", Align::Right),
            ("p99", Align::Right),
            ("max", Align::Right),
            ("judged", Align::Left),
        ],
        &rows,
    ));
    out
}
