//! `summary.txt`: the campaign in one page, decision-ready.
//!
//! Every figure printed here comes from the [`CampaignReport`]; the recommendations are simple
//! rules over those figures and quote them.

use super::campaign::{CampaignReport, OUTCOME_INTERRUPTED};
use super::criteria::criteria_latency;
use super::numbers::{cut, fmt_ms, pct_counts, pct_frac};
use super::phase::PhaseReport;
use super::recoveries::RecoveryStats;
use super::table::{f1, table, Align};
use std::collections::BTreeMap;

/// Longest phase name shown in a table before it is cut.
const NAME_WIDTH: usize = 28;

fn short_name(name: &str) -> String {
    if name.chars().count() > NAME_WIDTH {
        cut(name, NAME_WIDTH - 1) + "~"
    } else {
        name.to_string()
    }
}

fn fmt_secs(s: f64) -> String {
    let total = s.max(0.0).round() as u64;
    let (h, m, sec) = (total / 3600, total % 3600 / 60, total % 60);
    match (h, m) {
        (0, 0) => format!("{sec}s"),
        (0, _) => format!("{m}m {sec:02}s"),
        _ => format!("{h}h {m:02}m {sec:02}s"),
    }
}

fn pass_fail(p: &PhaseReport) -> String {
    let r = match p.criteria.verdict() {
        "passed" => "PASS",
        "unsupported" => "UNSUPPORTED",
        _ => "FAIL",
    };
    if p.status == "completed" {
        r.to_string()
    } else {
        format!("{r} ({})", p.status)
    }
}

fn phase_label(p: &PhaseReport) -> String {
    format!("phase {} {}", p.index + 1, p.name)
}

fn class_counts(m: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<(&String, &u64)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    v.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

/// The most frequent failure class of some phases: (class, count).
fn top_class<'a>(phases: impl Iterator<Item = &'a PhaseReport>) -> Option<(String, u64)> {
    let mut m: BTreeMap<&str, u64> = BTreeMap::new();
    for p in phases {
        for (k, n) in &p.errors_by_class {
            *m.entry(k.as_str()).or_insert(0) += n;
        }
    }
    let mut v: Vec<(&str, u64)> = m.into_iter().filter(|(_, n)| *n > 0).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.first().map(|(k, n)| (k.to_string(), *n))
}

fn success_ok(p: &PhaseReport) -> bool {
    p.ops_attempted > 0 && p.criteria.failures.iter().all(|f| !f.starts_with("success rate"))
}

fn p95_failed(p: &PhaseReport) -> bool {
    p.ops_attempted > 0 && judged_p95(p) >= p.criteria.max_p95_ms as f64
}

/// The p95 that `max_p95` judged (in-page when the task measured it).
fn judged_p95(p: &PhaseReport) -> f64 {
    criteria_latency(&p.latency_ms, p.in_page_latency_ms.as_ref()).0.p95
}

fn stats_line(k: &str, s: &RecoveryStats) -> Vec<String> {
    vec![
        k.to_string(),
        s.attempts.to_string(),
        s.succeeded.to_string(),
        pct_counts(s.succeeded, s.attempts),
        s.mean_time_to_recover_ms.map(|m| format!("{m:.1}")).unwrap_or_else(|| "-".into()),
    ]
}

fn recovery_table(title: &str, m: &BTreeMap<String, RecoveryStats>) -> Vec<String> {
    let rows: Vec<Vec<String>> = m.iter().map(|(k, s)| stats_line(k, s)).collect();
    table(
        "  ",
        &[
            (title, Align::Left),
            ("attempts", Align::Right),
            ("ok", Align::Right),
            ("success %", Align::Right),
            ("mean ms to recover", Align::Right),
        ],
        &rows,
    )
}

/// Renders `summary.txt`.
pub fn render_summary(c: &CampaignReport) -> String {
    let mut out: Vec<String> = Vec::new();
    header(&mut out, c);
    tuned_section(&mut out, c);
    phases_section(&mut out, c);
    out.extend(capacity_lines(&c.phases));
    failures_section(&mut out, c);
    drift_section(&mut out, c);
    console_section(&mut out, c);
    resources_section(&mut out, c);
    let baseline = super::baseline::summary_lines(&c.baseline);
    if !baseline.is_empty() {
        out.push(String::new());
        out.push("Baseline (before the first phase; the last phase against it)".into());
        out.extend(baseline);
    }
    breakers_section(&mut out, c);
    notifications_section(&mut out, c);
    out.extend(super::grid::summary_lines(&c.grid_nodes)); // grid hook
    out.extend(super::nodes::summary_lines(&c.nodes));
    faults_section(&mut out, c);
    recoveries_section(&mut out, c);
    webgpu_section(&mut out, c);
    model_section(&mut out, c);
    if !c.unsupported.is_empty() {
        out.push(String::new());
        out.push("Unsupported APIs (reported as unsupported, never counted as a pass)".into());
        for u in &c.unsupported {
            let on = u.browser.as_deref().map(|b| format!(" on {b}")).unwrap_or_default();
            out.push(format!("  - phase {} {}, {}{on}: {}", u.phase_index + 1, u.phase, u.task_kind, u.message));
        }
    }
    if !c.interruptions.is_empty() {
        out.push(String::new());
        out.push("Interruptions".into());
        for i in &c.interruptions {
            out.push(format!("  - {} {}: {}", i.at, i.kind, i.message));
        }
    }
    out.push(String::new());
    out.push("Recommendations".into());
    for r in recommendations(c) {
        out.push(format!("  - {r}"));
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

fn header(out: &mut Vec<String>, c: &CampaignReport) {
    let title = format!("stressctl campaign {}", c.campaign_id);
    out.push(title.clone());
    out.push("=".repeat(title.chars().count()));
    out.push(format!("Profile:    {} (config: {})", c.profile, c.config_source));
    out.push(format!("Started:    {}", c.started_at));
    out.push(format!("Ended:      {}", c.ended_at.as_deref().unwrap_or("not recorded (the run did not finish)")));
    out.push(format!("Wall time:  {}", c.wall_time_s.map(fmt_secs).unwrap_or_else(|| "unknown".into())));
    let outcome = c.outcome.replace('_', " ").to_uppercase();
    let why = match (&c.stop_reason, c.outcome.as_str()) {
        (Some(r), _) => format!(": {r}"),
        (None, OUTCOME_INTERRUPTED) => ": the store has no outcome (the run was killed, crashed or is still going)".into(),
        (None, _) => String::new(),
    };
    out.push(format!("Outcome:    {outcome}{why}"));
    if c.resumes > 0 {
        out.push(format!("Resumed:    {} time(s)", c.resumes));
    }
    let t = &c.totals;
    out.push(format!(
        "Ops:        {} attempted, {} succeeded, {} failed ({}% success, {} ops/s over {} of phases)",
        t.ops_attempted,
        t.ops_succeeded,
        t.ops_failed,
        pct_counts(t.ops_succeeded, t.ops_attempted),
        f1(t.throughput_ops_per_s),
        fmt_secs(t.duration_s)
    ));
    out.push(String::new());
    let v = &c.verdict;
    let planned = if v.phases_planned > v.phases_total { format!(", {} planned", v.phases_planned) } else { String::new() };
    out.push(format!(
        "Verdict: {} ({} of {} phases passed{planned})",
        if v.passed { "PASS" } else { "FAIL" },
        v.phases_passed,
        v.phases_total
    ));
    for r in &v.reasons {
        out.push(format!("  - {r}"));
    }
    for p in &c.phases {
        for cap in &p.capacity {
            out.push(format!("Capacity, phase {}: {}", p.index + 1, cap.answer));
        }
    }
}

fn phases_section(out: &mut Vec<String>, c: &CampaignReport) {
    out.push(String::new());
    out.push("Phases".into());
    if c.phases.is_empty() {
        out.push("  no phase was started".into());
        return;
    }
    let rows: Vec<Vec<String>> = c
        .phases
        .iter()
        .map(|p| {
            let sessions = match p.capacity.first() {
                // a capacity phase: the range it searched (its answer is in the Capacity section)
                Some(cap) => format!("{}..{}", cap.min_sessions, cap.max_sessions),
                None if p.sessions == p.sessions_planned => p.sessions.to_string(),
                None => format!("{}/{}", p.sessions, p.sessions_planned),
            };
            vec![
                (p.index + 1).to_string(),
                short_name(&p.name),
                p.stress_level.clone(),
                p.task_kind.clone(),
                sessions,
                p.ops_attempted.to_string(),
                pct_counts(p.ops_succeeded, p.ops_attempted),
                f1(p.throughput_ops_per_s),
                f1(p.latency_ms.p50),
                f1(p.latency_ms.p95),
                f1(p.latency_ms.p99),
                pass_fail(p),
            ]
        })
        .collect();
    out.extend(table(
        "  ",
        &[
            ("#", Align::Right),
            ("name", Align::Left),
            ("level", Align::Left),
            ("task", Align::Left),
            ("sessions", Align::Right),
            ("ops", Align::Right),
            ("success %", Align::Right),
            ("ops/s", Align::Right),
            ("p50 ms", Align::Right),
            ("p95 ms", Align::Right),
            ("p99 ms", Align::Right),
            ("result", Align::Left),
        ],
        &rows,
    ));
    if c.phases.iter().any(|p| p.sessions != p.sessions_planned && p.capacity.is_empty()) {
        out.push("  sessions shown as run/planned where the phase was scaled down".into());
    }
    out.extend(super::latency::lines(c));
    if c.phases.iter().any(|p| p.tasks.values().any(|t| t.synthetic && t.ops_attempted > 0)) {
        out.push("  task `synthetic` ran without a browser: it exercises the orchestrator only".into());
    }
    for p in c.phases.iter().filter(|p| !p.notes.is_empty()) {
        out.push(format!("  note, {}: {}", phase_label(p), p.notes.join("; ")));
    }
    for p in &c.phases {
        if let Some(line) = p.tasks.get("webgpu").and_then(|t| super::degraded::webgpu_line(&t.info)) {
            out.push(format!("  {}: {line}", phase_label(p)));
        }
    }
    let per_browser: Vec<(&PhaseReport, Vec<String>)> =
        c.phases.iter().map(|p| (p, super::browsers::text_lines(&p.browsers))).filter(|(_, l)| !l.is_empty()).collect();
    if !per_browser.is_empty() {
        out.push("  per browser:".into());
        for (p, lines) in per_browser {
            out.push(format!("  {}", phase_label(p)));
            out.extend(lines);
        }
    }
}

/// `summary.txt`'s capacity section: each search's answer, then its curve (throughput and p95
/// against sessions, in the order of the counts). Empty without a capacity phase.
fn capacity_lines(phases: &[PhaseReport]) -> Vec<String> {
    let mut out = Vec::new();
    for p in phases.iter().filter(|p| !p.capacity.is_empty()) {
        for c in &p.capacity {
            out.push(format!("  phase {} {}: {}", p.index + 1, p.name, c.answer));
            let rows: Vec<Vec<String>> = c
                .steps
                .iter()
                .map(|s| {
                    vec![
                        s.sessions.to_string(),
                        s.attempted.to_string(),
                        s.success_pct.clone(),
                        f1(s.ops_per_s),
                        f1(s.p95_ms),
                        match (s.passed, s.ended_early) {
                            (true, false) => "holds".into(),
                            (true, true) => "holds (settled early)".into(),
                            (false, false) => "fails".into(),
                            (false, true) => "fails (settled early)".into(),
                        },
                        s.order.to_string(),
                    ]
                })
                .collect();
            out.extend(table(
                "    ",
                &[
                    ("sessions", Align::Right),
                    ("ops", Align::Right),
                    ("success %", Align::Right),
                    ("ops/s", Align::Right),
                    (if c.steps.iter().all(|s| s.p95_basis == "in_page") { "in-page p95 ms" } else { "p95 ms" }, Align::Right),
                    ("result", Align::Left),
                    ("step", Align::Right),
                ],
                &rows,
            ));
            out.push(format!(
                "    each step {}s, the first {}s not measured; counts {}..{} {}",
                c.step_s,
                c.warmup_s,
                c.min_sessions,
                c.max_sessions,
                if c.step == 0 { "doubling, then bisecting".to_string() } else { format!("+{} per step, then bisecting", c.step) }
            ));
        }
    }
    if !out.is_empty() {
        out.insert(0, "Capacity (the most sessions the phase's criteria held at, measured step by step)".into());
        out.insert(0, String::new());
    }
    out
}

/// The trends of the campaign and of each phase long enough to have them, in words, and the
/// drift criteria that could not be judged. Nothing when no phase was analysed.
pub(super) fn drift_lines(c: &CampaignReport) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    if let Some(d) = &c.drift {
        out.push((format!("campaign (buckets of {} s)", d.bucket_s), d.lines()));
    }
    for p in &c.phases {
        let mut lines = p.drift.as_ref().map(|d| d.lines()).unwrap_or_default();
        lines.extend(p.criteria.not_judged.iter().cloned());
        if !lines.is_empty() {
            let bucket = p.drift.as_ref().map(|d| format!(" (buckets of {} s)", d.bucket_s)).unwrap_or_default();
            out.push((format!("{}{bucket}", phase_label(p)), lines));
        }
    }
    out
}

fn drift_section(out: &mut Vec<String>, c: &CampaignReport) {
    let groups = drift_lines(c);
    if groups.is_empty() {
        return;
    }
    out.push(String::new());
    out.push("Drift and leaks (Theil–Sen trend per hour, 95 % CI; \"no drift\" when the CI contains 0)".into());
    for (title, lines) in groups {
        out.push(format!("  {title}:"));
        out.extend(lines.into_iter().map(|l| format!("    - {l}")));
    }
}

fn failures_section(out: &mut Vec<String>, c: &CampaignReport) {
    out.push(String::new());
    out.push("What failed and why".into());
    let failing: Vec<&PhaseReport> = c.phases.iter().filter(|p| !p.criteria.passed && !p.criteria.unsupported).collect();
    let unsupported = c.phases.iter().filter(|p| p.criteria.unsupported).count();
    if failing.is_empty() && unsupported == 0 {
        out.push("  nothing: every phase met its criteria".into());
    } else if failing.is_empty() {
        out.push(format!("  no phase failed its criteria; {unsupported} unsupported (see Unsupported APIs)"));
    }
    for p in &failing {
        out.push(format!(
            "  {} ({} sessions, {} level: min success {}%, p95 < {}):",
            phase_label(p),
            p.sessions,
            p.stress_level,
            pct_frac(p.criteria.min_success_rate),
            fmt_ms(p.criteria.max_p95_ms as f64)
        ));
        for f in &p.criteria.failures {
            out.push(format!("    - {f}"));
        }
        if !p.errors_by_class.is_empty() {
            out.push(format!("    - errors by class: {}", class_counts(&p.errors_by_class)));
        }
        for e in &p.top_errors {
            out.push(format!("    - {}x [{}] {}", e.count, e.class, e.message));
        }
    }
    let passing_failed: BTreeMap<String, u64> =
        c.phases.iter().filter(|p| p.criteria.passed).flat_map(|p| p.errors_by_class.iter()).fold(BTreeMap::new(), |mut m, (k, n)| {
            *m.entry(k.clone()).or_insert(0) += n;
            m
        });
    if !passing_failed.is_empty() {
        out.push(format!("  failed ops in passing phases: {}", class_counts(&passing_failed)));
    }
}

/// The host's headroom per phase: what the processes outside the campaign used and waited for,
/// against the CPU threshold that judges it while confined, and the host's stall against the
/// pressure threshold. Left out for stores from before the host figures were recorded.
fn host_headroom(out: &mut Vec<String>, c: &CampaignReport) {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), f1);
    let pair =
        |a: Option<f64>, b: Option<f64>| if a.is_none() && b.is_none() { "-".to_string() } else { format!("{} / {}", opt(a), opt(b)) };
    let rows: Vec<Vec<String>> = c
        .phases
        .iter()
        .filter_map(|p| {
            let h = p.resources.host.as_ref()?;
            Some(vec![
                (p.index + 1).to_string(),
                short_name(&p.name),
                format!("{} / {}", f1(h.host_cpu_avg), f1(h.host_cpu_max)),
                pair(h.host_wait_avg, h.host_wait_max),
                format!("{} ({})", f1(h.host_demand_max), opt(h.cpu_limit)),
                f1((100.0 - h.host_demand_max).max(0.0)),
                format!("{} / {} ({})", f1(h.campaign_cpu_avg), f1(h.campaign_cpu_max), opt(h.cpu_cap_percent)),
                format!("{} ({})", opt(h.stall_max), opt(h.stall_limit)),
            ])
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    out.push("  host headroom (cpu in % of all cores; limits in parentheses):".into());
    out.extend(table(
        "  ",
        &[
            ("#", Align::Right),
            ("name", Align::Left),
            ("host cpu avg/max", Align::Right),
            ("waited avg/max", Align::Right),
            ("demand max (limit)", Align::Right),
            ("headroom min", Align::Right),
            ("campaign cpu avg/max (cap)", Align::Right),
            ("stall max (limit)", Align::Right),
        ],
        &rows,
    ));
}

fn resources_section(out: &mut Vec<String>, c: &CampaignReport) {
    out.push(String::new());
    out.push("Resources".into());
    if let Some(conf) = &c.confinement {
        out.push(format!("  confinement: {conf}"));
    }
    let rows: Vec<Vec<String>> = c
        .phases
        .iter()
        .map(|p| {
            let r = &p.resources;
            if r.samples == 0 {
                return vec![
                    (p.index + 1).to_string(),
                    short_name(&p.name),
                    "0".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "0".into(),
                ];
            }
            vec![
                (p.index + 1).to_string(),
                short_name(&p.name),
                r.samples.to_string(),
                format!("{} / {}", f1(r.cpu_avg), f1(r.cpu_max)),
                format!("{} / {}", f1(r.memory_avg), f1(r.memory_max)),
                format!("{} / {}", f1(r.tree_rss_mb_avg), f1(r.tree_rss_mb_max)),
                f1(r.health_min),
                format!("{}", p.violations.len()),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.extend(table(
            "  ",
            &[
                ("#", Align::Right),
                ("name", Align::Left),
                ("samples", Align::Right),
                ("cpu % avg/max", Align::Right),
                ("mem % avg/max", Align::Right),
                ("tree RSS MiB avg/max", Align::Right),
                ("health min", Align::Right),
                ("violations", Align::Right),
            ],
            &rows,
        ));
    }
    host_headroom(out, c);
    let g = &c.guardian;
    out.push(format!("  guardian: {} samples, {} over a threshold, {} violation events", g.samples, g.violating_samples, g.violations));
    if g.emergency_stops.is_empty() {
        out.push("  emergency stops: none".into());
    } else {
        out.push(format!("  emergency stops: {}", g.emergency_stops.len()));
        for e in &g.emergency_stops {
            out.push(format!("    - {}: {}", e.at, e.message));
        }
    }
}

/// Notifications: counts, and each one not delivered (nothing without `[[notify]]`).
fn notifications_section(out: &mut Vec<String>, c: &CampaignReport) {
    let n = &c.notifications;
    if n.sent + n.failed + n.dropped == 0 {
        return;
    }
    out.push(String::new());
    out.push("Notifications".into());
    out.push(format!("  {} delivered, {} failed, {} dropped (queue full)", n.sent, n.failed, n.dropped));
    for f in &n.failures {
        out.push(format!("    - {} {} to {}: {} ({} attempt(s))", f.at, f.event, f.target, f.error, f.attempts));
    }
}

/// The settings `launch --tuned-from` changed: each one old -> new, with its measurement.
fn tuned_section(out: &mut Vec<String>, c: &CampaignReport) {
    let Some(t) = &c.tuned else { return };
    out.push(String::new());
    out.push(format!("Tuned from {} (launch --tuned-from)", t.from.join(", ")));
    for s in &t.settings {
        let kept = if s.old == s.new { " (unchanged: the config's own value or the same)" } else { "" };
        out.push(format!("  {}: {} -> {}{kept}", s.key, s.old, s.new));
        out.push(format!("      from {}", s.source));
    }
}

/// Times each breaker key went to `open`, most first.
fn opens_by_key(c: &CampaignReport) -> Vec<(String, usize)> {
    let mut m: BTreeMap<&str, usize> = BTreeMap::new();
    for t in c.breakers.transitions.iter().filter(|t| t.to == "open") {
        *m.entry(t.key.as_str()).or_insert(0) += 1;
    }
    let mut v: Vec<(String, usize)> = m.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Most transitions listed one by one.
const MAX_TRANSITIONS_SHOWN: usize = 10;

fn breakers_section(out: &mut Vec<String>, c: &CampaignReport) {
    let b = &c.breakers;
    if b.transitions.is_empty() && b.final_snapshot.is_none() && b.commands.is_empty() {
        return;
    }
    out.push(String::new());
    out.push("Circuit breakers".into());
    let opens = opens_by_key(c);
    out.push(format!(
        "  {} transitions; opened: {}",
        b.transitions.len(),
        if opens.is_empty() { "never".to_string() } else { opens.iter().map(|(k, n)| format!("{k} {n}x")).collect::<Vec<_>>().join(", ") }
    ));
    for t in b.transitions.iter().take(MAX_TRANSITIONS_SHOWN) {
        let reason = if t.reason.is_empty() { String::new() } else { format!(" ({})", t.reason) };
        out.push(format!("    - {} {}: {} -> {}{}", t.at, t.key, t.from, t.to, reason));
    }
    if b.transitions.len() > MAX_TRANSITIONS_SHOWN {
        out.push(format!("    … and {} more (campaign_report.json has them all)", b.transitions.len() - MAX_TRANSITIONS_SHOWN));
    }
    for cmd in &b.commands {
        let who = cmd.uid.map_or_else(|| "an operator".to_string(), |u| format!("uid {u}"));
        let why = if cmd.reason.is_empty() { String::new() } else { format!(": {}", cmd.reason) };
        out.push(format!("    * {} operator command: {} by {who} on {}{why}", cmd.at, cmd.action, cmd.keys.join(", ")));
    }
    if let Some(snap) = &b.final_snapshot {
        let rows: Vec<Vec<String>> = snap
            .iter()
            .map(|(scope, name, m)| {
                vec![
                    format!("{scope}:{}", short_name(name)),
                    m.state.as_str().to_string(),
                    m.calls.to_string(),
                    m.failures.to_string(),
                    m.rejected.to_string(),
                    m.opens.to_string(),
                    fmt_ms(m.total_open_time.as_secs_f64() * 1000.0),
                    format!("{}%", f1(m.health_percent)),
                ]
            })
            .collect();
        let a = &snap.aggregate;
        out.push(format!(
            "  final: {} breakers: {} closed, {} open, {} half-open{}{}; average health {}%",
            a.total,
            a.closed,
            a.open,
            a.half_open,
            if a.forced_open > 0 { format!(", {} forced open", a.forced_open) } else { String::new() },
            if a.disabled > 0 { format!(", {} disabled", a.disabled) } else { String::new() },
            f1(a.average_health)
        ));
        if !rows.is_empty() {
            use Align::{Left, Right};
            let headers = [
                ("scope", Left),
                ("state", Left),
                ("calls", Right),
                ("failures", Right),
                ("rejected", Right),
                ("opens", Right),
                ("time open", Right),
                ("health", Right),
            ];
            out.extend(table("    ", &headers, &rows));
        }
    }
}

fn faults_section(out: &mut Vec<String>, c: &CampaignReport) {
    let injected: u64 = c.phases.iter().flat_map(|p| p.faults_injected.values()).sum();
    if c.faults_planned.is_empty() && injected == 0 {
        return;
    }
    out.push(String::new());
    out.push("Faults".into());
    for f in &c.faults_planned {
        out.push(format!("  planned: {f}"));
    }
    let rows: Vec<Vec<String>> = c
        .phases
        .iter()
        .flat_map(|p| p.faults_injected.iter().map(move |(kind, n)| vec![short_name(&p.name), kind.clone(), n.to_string()]))
        .collect();
    if rows.is_empty() {
        out.push("  injected: none (no phase ran while a fault was due)".into());
    } else {
        use Align::{Left, Right};
        out.extend(table("  ", &[("phase", Left), ("fault", Left), ("injected", Right)], &rows));
    }
}

fn recoveries_section(out: &mut Vec<String>, c: &CampaignReport) {
    let r = &c.recoveries;
    if r.attempts == 0 {
        return;
    }
    out.push(String::new());
    out.push("Recoveries".into());
    out.push(format!("  {} attempts, {} succeeded ({}%)", r.attempts, r.succeeded, pct_counts(r.succeeded, r.attempts)));
    out.extend(recovery_table("by class", &r.by_class));
    out.extend(recovery_table("by strategy", &r.by_strategy));
}

/// What the browsers' consoles said, per phase: errors and uncaught exceptions are a warning
/// sign even in a phase whose ops all passed (a WebGPU validation error the workload survived).
fn console_section(out: &mut Vec<String>, c: &CampaignReport) {
    let phases: Vec<_> = c.phases.iter().filter_map(|p| p.browser_console.as_ref().map(|b| (p, b))).collect();
    if phases.is_empty() {
        return;
    }
    out.push(String::new());
    out.push("Browser console (errors, uncaught exceptions, WebGPU errors and device losses)".into());
    for (p, b) in phases {
        out.push(format!("  {}: {} entr{}", phase_label(p), b.entries, if b.entries == 1 { "y" } else { "ies" }));
        for t in &b.top {
            let failed = if t.on_failed_ops > 0 { format!(", {} on failed ops", t.on_failed_ops) } else { String::new() };
            out.push(format!("    - {}x{failed}: {}", t.count, t.text));
        }
    }
}

fn model_section(out: &mut Vec<String>, c: &CampaignReport) {
    let mut lines = Vec::new();
    for p in &c.phases {
        if let Some(t) = p.tasks.get("model") {
            lines.extend(super::model::summary_lines(&p.name, &t.info, t.latency_ms.p50, t.latency_ms.p95));
        }
    }
    if !lines.is_empty() {
        out.push(String::new());
        out.push("Models (each inference checked against the wasm provider; set-up not in the latencies)".into());
        out.extend(lines);
    }
}

fn webgpu_section(out: &mut Vec<String>, c: &CampaignReport) {
    // browser -> adapter line -> phase names
    let mut adapters: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut retries: BTreeMap<String, u64> = BTreeMap::new();
    let (mut succeeded, mut verified, mut any) = (0u64, 0u64, false);
    for p in &c.phases {
        let Some(t) = p.tasks.get("webgpu") else { continue };
        any = true;
        succeeded += t.ops_succeeded;
        verified += t.verified;
        let mut found = false;
        for (b, r) in &p.browsers {
            *retries.entry(b.clone()).or_insert(0) += r.adapter_retries;
            if let Some(a) = r.adapter.as_ref().filter(|a| a.get("api").is_none()) {
                found = true;
                adapters.entry(b.clone()).or_default().entry(super::browsers::adapter_line(a)).or_default().push(p.name.clone());
            }
        }
        // stores written before adapters were kept per browser: the task's one adapter
        if let (false, Some(a)) = (found, t.info.get("adapter")) {
            let b = if p.browsers.len() == 1 { p.browsers.keys().next().cloned().unwrap_or_default() } else { "chromium".into() };
            adapters.entry(b).or_default().entry(super::browsers::adapter_line(a)).or_default().push(p.name.clone());
        }
    }
    if !any {
        return;
    }
    out.push(String::new());
    out.push("WebGPU".into());
    if adapters.is_empty() {
        out.push("  adapter: not reported (no WebGPU op succeeded)".into());
    }
    for (b, lines) in &adapters {
        for (line, phases) in lines {
            out.push(format!("  {b}: {line} (phases: {})", phases.join(", ")));
        }
    }
    for (b, n) in retries.iter().filter(|(_, n)| **n > 0) {
        out.push(format!("  {b}: requestAdapter() answered null {n}× in fresh browsers and was asked again (bounded retry, ~2 s)"));
    }
    out.push(format!(
        "  results verified against the CPU reference: {verified} of {succeeded} successful ops ({}%)",
        pct_counts(verified, succeeded)
    ));
}

/// Recommendations: simple rules over the report's own figures.
pub(crate) fn recommendations(c: &CampaignReport) -> Vec<String> {
    let mut rec = Vec::new();
    let phases = &c.phases;
    let t = &c.totals;

    if c.outcome == OUTCOME_INTERRUPTED {
        rec.push("the campaign has no recorded outcome (killed, crashed or still running): `stressctl launch --resume` continues it from its last checkpoint".to_string());
    }
    if phases.is_empty() || t.ops_attempted == 0 {
        rec.push("no ops were recorded: check the setup with `stressctl check` before the next campaign".to_string());
        return rec;
    }
    if let Some(e) = c.guardian.emergency_stops.first() {
        rec.push(format!(
            "the guardian stopped the campaign ({}): lower sessions in the phases before the stop, or run on a host with more headroom",
            e.message
        ));
    }

    // success rate: a run of failing phases to the end after a passing one = saturation
    let with_ops: Vec<&PhaseReport> = phases.iter().filter(|p| p.ops_attempted > 0).collect();
    let mut covered: Vec<u32> = Vec::new();
    if let Some(k) = with_ops.iter().position(|p| !success_ok(p)) {
        if with_ops[k..].iter().all(|p| !success_ok(p)) {
            let first = with_ops[k];
            let last_ok = with_ops[..k].iter().rev().find(|p| success_ok(p));
            let top = top_class(with_ops[k..].iter().copied());
            let top_txt = top.map(|(cl, n)| format!("; most failures were {cl} ({n})")).unwrap_or_default();
            match last_ok {
                Some(ok) if first.sessions > ok.sessions => {
                    rec.push(format!(
                        "success rate fell below {}% from phase {} on ({}% at {} sessions){}: the host saturates at {} sessions; keep sessions ≤ {} (phase {} held {}%)",
                        pct_frac(first.criteria.min_success_rate),
                        first.name,
                        pct_counts(first.ops_succeeded, first.ops_attempted),
                        first.sessions,
                        top_txt,
                        first.sessions,
                        ok.sessions,
                        ok.name,
                        pct_counts(ok.ops_succeeded, ok.ops_attempted)
                    ));
                    covered.extend(with_ops[k..].iter().map(|p| p.index));
                }
                Some(ok) => {
                    rec.push(format!(
                        "success rate fell below {}% from phase {} on ({}%) at no more sessions than phase {} ({}): load alone does not explain it{}; look at the top errors",
                        pct_frac(first.criteria.min_success_rate),
                        first.name,
                        pct_counts(first.ops_succeeded, first.ops_attempted),
                        ok.name,
                        ok.sessions,
                        top_txt
                    ));
                    covered.extend(with_ops[k..].iter().map(|p| p.index));
                }
                None => {
                    rec.push(format!(
                        "success rate was below the minimum in every phase (phase {}: {}%){}: fix that failure before raising the load",
                        first.name,
                        pct_counts(first.ops_succeeded, first.ops_attempted),
                        top_txt
                    ));
                    covered.extend(with_ops.iter().map(|p| p.index));
                }
            }
        }
    }
    for p in with_ops.iter().filter(|p| !success_ok(p) && !covered.contains(&p.index)) {
        let top = top_class(std::iter::once(*p))
            .map(|(cl, n)| format!(": most failures were {cl} ({n} of {})", p.ops_failed))
            .unwrap_or_default();
        rec.push(format!(
            "success rate in phase {} was {}% against {}%{}",
            p.name,
            pct_counts(p.ops_succeeded, p.ops_attempted),
            pct_frac(p.criteria.min_success_rate),
            top
        ));
    }

    // p95 over the limit: point at the most sessions that kept p95 within its limit
    for p in phases.iter().filter(|p| p95_failed(p)) {
        let best = phases.iter().filter(|q| q.ops_attempted > 0 && !p95_failed(q) && q.sessions < p.sessions).map(|q| q.sessions).max();
        match best {
            Some(n) => rec.push(format!(
                "p95 in phase {} was {} against {} at {} sessions: reduce sessions to ≤ {} or raise max_p95",
                p.name,
                fmt_ms(judged_p95(p)),
                fmt_ms(p.criteria.max_p95_ms as f64),
                p.sessions,
                n
            )),
            None => rec.push(format!(
                "p95 in phase {} was {} against {} even at {} session(s): raise max_p95 or lighten the task",
                p.name,
                fmt_ms(judged_p95(p)),
                fmt_ms(p.criteria.max_p95_ms as f64),
                p.sessions
            )),
        }
    }

    // unsupported APIs: drop a task only where it was mostly unsupported; a few unsupported ops
    // among mostly passing ones (a fresh browser's first answer) are noted, not a reason to drop it
    let mut unsupported: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for u in &c.unsupported {
        let v = unsupported.entry(u.task_kind.as_str()).or_default();
        if !v.contains(&u.phase.as_str()) {
            v.push(u.phase.as_str());
        }
    }
    for (kind, ph) in &unsupported {
        let of_kind = c.phases.iter().filter(|p| p.task_kind == *kind);
        let (ops, ok, unsup) = of_kind.fold((0u64, 0u64, 0u64), |(o, s, u), p| {
            (o + p.ops_attempted, s + p.ops_succeeded, u + p.errors_by_class.get("api_unsupported").copied().unwrap_or(0))
        });
        if ok * 2 > ops {
            rec.push(format!(
                "{kind}: {unsup} of {ops} ops found the API unavailable (phases: {}) while {}% passed: look at those ops' messages; the task itself runs here",
                ph.join(", "),
                pct_counts(ok, ops)
            ));
        } else {
            rec.push(format!(
                "{kind} is unsupported by this browser (phases: {}): it is reported as unsupported, not passed; use a browser with that API or drop those phases",
                ph.join(", ")
            ));
        }
    }

    // failure classes that point at the host
    let mut classes: BTreeMap<&str, u64> = BTreeMap::new();
    for p in phases {
        for (k, n) in &p.errors_by_class {
            *classes.entry(k.as_str()).or_insert(0) += n;
        }
    }
    let max_rss = phases.iter().map(|p| p.resources.tree_rss_mb_max).fold(0.0, f64::max);
    if let Some(n) = classes.get("resource_exhaustion").filter(|n| **n > 0) {
        rec.push(format!("{n} ops ran out of resources: lower sessions or the workload size"));
    }
    if let Some(n) = classes.get("crash").filter(|n| **n > 0) {
        rec.push(format!(
            "{n} ops lost their session or browser (crash): check the browser logs; the process tree peaked at {} MiB",
            f1(max_rss)
        ));
    }

    // guardian pressure without a stop
    if c.guardian.emergency_stops.is_empty() && c.guardian.violating_samples > 0 {
        let worst = phases
            .iter()
            .filter(|p| p.resources.violating_samples > 0)
            .max_by_key(|p| (p.resources.violating_samples, std::cmp::Reverse(p.index)));
        let where_ = worst
            .map(|p| {
                format!(
                    ", most in phase {} ({} samples, {} sessions, CPU max {}%, memory max {}%)",
                    p.name,
                    p.resources.violating_samples,
                    p.sessions,
                    f1(p.resources.cpu_max),
                    f1(p.resources.memory_max)
                )
            })
            .unwrap_or_default();
        rec.push(format!(
            "{} of {} guardian samples crossed a threshold{}: the host is near its limits there",
            c.guardian.violating_samples, c.guardian.samples, where_
        ));
    }

    // breakers and recoveries
    let opens = opens_by_key(c);
    if !opens.is_empty() {
        rec.push(format!(
            "circuit breakers opened ({}): their targets failed repeatedly; see the transitions above",
            opens.iter().map(|(k, n)| format!("{k} {n}x")).collect::<Vec<_>>().join(", ")
        ));
    }
    for (strategy, s) in &c.recoveries.by_strategy {
        if s.attempts >= 3 && s.succeeded * 2 < s.attempts {
            rec.push(format!(
                "recovery by {strategy} succeeded in only {} of {} attempts: the failures it meets are not transient; start the ladder higher for them",
                s.succeeded, s.attempts
            ));
        }
    }

    if phases.iter().all(|p| p.task_kind == "synthetic") {
        rec.push("every phase ran the synthetic task: these figures exercise the orchestrator, not a browser".to_string());
    }

    let max_sessions = phases.iter().map(|p| p.sessions).max().unwrap_or(0);
    if phases.iter().all(|p| p.criteria.passed) && c.guardian.emergency_stops.is_empty() {
        if t.ops_failed == 0 {
            rec.push(format!("no failures: the next campaign can raise sessions (highest this run: {max_sessions})"));
        } else {
            let top = top_class(phases.iter()).map(|(cl, n)| format!(", mostly {cl} ({n})")).unwrap_or_default();
            rec.push(format!(
                "every phase met its criteria with {} failed ops{top}: the next campaign can raise sessions carefully (highest this run: {max_sessions})",
                t.ops_failed
            ));
        }
    }
    if rec.is_empty() {
        rec.push("nothing stands out in the data: repeat the campaign to confirm before changing it".to_string());
    }
    rec
}
