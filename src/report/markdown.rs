//! The campaign in GitHub-flavoured Markdown (`summary.md`), sized for a CI job's step summary
//! (`$GITHUB_STEP_SUMMARY`): the verdict and why, one table row per phase, what failed, the
//! drift and leak trends, the circuit breakers that opened, and the unsupported APIs. The text summary (`summary.txt`) stays
//! the full account; this is what a reviewer sees on the run's page.
//!
//! A pure function of the campaign report, so `stressctl report ID` rebuilds it byte for byte.

use super::campaign::CampaignReport;
use super::numbers::{fmt_ms, pct_frac};
use std::collections::BTreeMap;

/// File name of the Markdown summary in the reports directory.
pub const SUMMARY_MD_FILE: &str = "summary.md";

/// An unsupported API as the Markdown lists it once: (task kind, browser, the browser's words).
type Refusal<'a> = (&'a str, Option<&'a str>, &'a str);

/// Most breaker transitions listed one by one.
const MAX_TRANSITIONS: usize = 10;

/// A table cell: no pipe or line break may end the cell or the row early.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Inline text that must not start Markdown constructs (`*`, `_`, backticks, `<` of HTML).
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '\\' | '`' | '*' | '_' | '<' | '>' | '[' | ']' | '|') {
            out.push('\\');
        }
        out.push(if ch == '\n' || ch == '\r' { ' ' } else { ch });
    }
    out
}

/// One decimal.
fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// Renders `summary.md`.
pub fn render_summary_md(c: &CampaignReport) -> String {
    let mut out: Vec<String> = Vec::new();
    let v = &c.verdict;
    let (mark, word) = if v.passed { ("✅", "PASSED") } else { ("❌", "FAILED") };
    out.push(format!("## {mark} stressctl campaign `{}`: {word}", c.campaign_id));
    out.push(String::new());
    let wall =
        c.wall_time_s.map(|s| crate::fmt::fmt_duration(std::time::Duration::from_secs_f64(s.max(0.0)))).unwrap_or_else(|| "-".into());
    let stop = c.stop_reason.as_deref().map(|r| format!(" ({})", text(r))).unwrap_or_default();
    out.push(format!("**Profile** {} · **Outcome** {}{stop} · **Wall time** {wall}", text(&c.profile), c.outcome));
    let t = &c.totals;
    out.push(String::new());
    out.push(format!(
        "**Ops** {} attempted, {} succeeded, {} failed ({}% success, {} ops/s)",
        t.ops_attempted,
        t.ops_succeeded,
        t.ops_failed,
        f1(t.success_rate * 100.0),
        f1(t.throughput_ops_per_s)
    ));

    out.push(String::new());
    out.push(format!("### Verdict: {} of {} phases passed ({} planned)", v.phases_passed, v.phases_total, v.phases_planned));
    out.push(String::new());
    for r in &v.reasons {
        out.push(format!("- {}", text(r)));
    }

    out.push(String::new());
    out.push("### Phases".into());
    out.push(String::new());
    out.push("| # | phase | level | task | sessions | ops | success % | ops/s | p95 ms | criteria | result |".into());
    out.push("|--:|---|---|---|--:|--:|--:|--:|--:|---|---|".into());
    for p in &c.phases {
        let cr = &p.criteria;
        let result = match cr.verdict() {
            "unsupported" => "⚠️ UNSUPPORTED",
            "passed" => "✅ PASS",
            _ => "❌ FAIL",
        };
        let sessions = match p.capacity.first() {
            Some(cap) => format!("{}..{}", cap.min_sessions, cap.max_sessions),
            None if p.sessions == p.sessions_planned => p.sessions.to_string(),
            None => format!("{}/{}", p.sessions, p.sessions_planned),
        };
        let rate = if p.ops_attempted > 0 { f1(p.success_rate * 100.0) } else { "-".into() };
        let which = if cr.p95_basis == "in_page" { "in-page p95" } else { "p95" };
        let p95 = match (&p.in_page_latency_ms, cr.p95_basis.as_str()) {
            (Some(l), "in_page") => l.p95,
            _ => p.latency_ms.p95,
        };
        out.push(format!(
            "| {} | {} | {} | {} | {sessions} | {} | {rate} | {} | {} | ≥ {}%, {which} < {} | {result} |",
            p.index + 1,
            cell(&p.name),
            cell(&p.stress_level),
            cell(&p.task_kind),
            p.ops_attempted,
            f1(p.throughput_ops_per_s),
            f1(p95),
            pct_frac(cr.min_success_rate),
            fmt_ms(cr.max_p95_ms as f64)
        ));
    }

    let capacity: Vec<_> = c.phases.iter().flat_map(|p| p.capacity.iter().map(move |cap| (p, cap))).collect();
    if !capacity.is_empty() {
        out.push(String::new());
        out.push("### Capacity".into());
        for (p, cap) in capacity {
            out.push(String::new());
            out.push(format!("**phase {} {}**: {}", p.index + 1, text(&p.name), text(&cap.answer)));
            out.push(String::new());
            out.push("| sessions | ops | success % | ops/s | p95 ms | result |".into());
            out.push("|--:|--:|--:|--:|--:|---|".into());
            for s in &cap.steps {
                let result = if s.passed { "✅ holds" } else { "❌ fails" };
                out.push(format!(
                    "| {} | {} | {} | {} | {} | {result} |",
                    s.sessions,
                    s.attempted,
                    s.success_pct,
                    f1(s.ops_per_s),
                    f1(s.p95_ms)
                ));
            }
        }
    }

    let failing: Vec<_> = c.phases.iter().filter(|p| !p.criteria.passed && !p.criteria.unsupported).collect();
    if !failing.is_empty() {
        out.push(String::new());
        out.push("### What failed".into());
        out.push(String::new());
        for p in failing {
            out.push(format!("- **phase {} {}**: {}", p.index + 1, text(&p.name), text(&p.criteria.failures.join("; "))));
            for e in &p.top_errors {
                out.push(format!("  - {}× `{}` {}", e.count, e.class, text(&e.message)));
            }
        }
    }

    let drift = super::summary::drift_lines(c);
    if !drift.is_empty() {
        out.push(String::new());
        out.push("### Drift and leaks".into());
        out.push(String::new());
        out.push("Theil–Sen trend per hour with its 95 % CI; *no drift* when the CI contains 0.".into());
        out.push(String::new());
        for (title, lines) in drift {
            out.push(format!("- **{}**: {}", text(&title), text(&lines.join("; "))));
        }
    }

    out.push(String::new());
    out.push("### Circuit breakers".into());
    out.push(String::new());
    let b = &c.breakers;
    let mut opens: BTreeMap<&str, usize> = BTreeMap::new();
    for t in b.transitions.iter().filter(|t| t.to == "open") {
        *opens.entry(t.key.as_str()).or_insert(0) += 1;
    }
    if opens.is_empty() {
        out.push(format!("No breaker opened ({} transitions).", b.transitions.len()));
    } else {
        out.push(format!("{} transitions; opened:", b.transitions.len()));
        out.push(String::new());
        out.push("| breaker | opens | state at the end | time open | health |".into());
        out.push("|---|--:|---|--:|--:|".into());
        for (key, n) in &opens {
            let last = b.final_snapshot.as_ref().and_then(|s| s.iter().find(|(scope, name, _)| format!("{scope}:{name}") == *key));
            let (state, open, health) = match last {
                Some((_, _, m)) => {
                    (m.state.as_str().to_string(), fmt_ms(m.total_open_time.as_secs_f64() * 1000.0), format!("{}%", f1(m.health_percent)))
                }
                None => ("-".into(), "-".into(), "-".into()),
            };
            out.push(format!("| `{}` | {n} | {state} | {open} | {health} |", cell(key)));
        }
        out.push(String::new());
        for t in b.transitions.iter().take(MAX_TRANSITIONS) {
            let reason = if t.reason.is_empty() { String::new() } else { format!(" ({})", text(&t.reason)) };
            out.push(format!("- {} `{}`: {} → {}{reason}", t.at, cell(&t.key), t.from, t.to));
        }
        if b.transitions.len() > MAX_TRANSITIONS {
            out.push(format!("- … and {} more (campaign_report.json has them all)", b.transitions.len() - MAX_TRANSITIONS));
        }
    }

    if !c.unsupported.is_empty() {
        out.push(String::new());
        out.push("### Unsupported APIs".into());
        out.push(String::new());
        // one line per (task, browser, message): the phases that met it listed together
        let mut seen: BTreeMap<Refusal, Vec<(u32, &str)>> = BTreeMap::new();
        for u in &c.unsupported {
            seen.entry((&u.task_kind, u.browser.as_deref(), &u.message)).or_default().push((u.phase_index, &u.phase));
        }
        for ((task, browser, message), mut phases) in seen {
            phases.sort();
            let on = browser.map(|b| format!(" on {b}")).unwrap_or_default();
            let names: Vec<String> = phases.into_iter().map(|(_, n)| text(n)).collect();
            out.push(format!("- {task}{on}: {} (phases: {})", text(message), names.join(", ")));
        }
    }
    out.push(String::new());
    out.join("\n")
}
