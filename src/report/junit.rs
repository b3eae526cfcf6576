//! The campaign as JUnit XML (`junit.xml`), the format CI servers (Jenkins, GitLab, GitHub test
//! reporters) read: one `<testsuite>` per campaign, one `<testcase>` per phase criterion (success
//! rate, p95, and the drift criteria where set) and per campaign criterion (phase ratio, overall success rate, plan completed). A
//! criterion that failed is a `<failure>` whose message carries the figures; a phase whose task was
//! unsupported is `<skipped>` with the browser's words. Written with `quick-junit`.
//!
//! Like every report it is a pure function of the store: no "now", no random uuid, times from the
//! stored durations, so `stressctl report ID` rebuilds it byte for byte.

use super::campaign::CampaignReport;
use super::criteria::{p95_excess, success_shortfall};
use super::numbers::{fmt_ms, pct_counts, pct_frac};
use super::phase::PhaseReport;
use super::verdict::{phases_ok, rate_ok};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// File name of the JUnit report in the reports directory.
pub const JUNIT_FILE: &str = "junit.xml";

/// A duration from stored seconds (0 for a missing or negative one).
fn secs(s: Option<f64>) -> Duration {
    Duration::from_secs_f64(s.filter(|s| s.is_finite() && *s > 0.0).unwrap_or(0.0))
}

/// A testcase that held (`figures` go to its system-out) or failed (`why` is the message, the
/// figures its description).
fn judged(name: String, classname: &str, time: Duration, why: Option<String>, figures: String, ty: &str) -> TestCase {
    let status = match &why {
        None => TestCaseStatus::success(),
        Some(w) => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(w.as_str()).set_type(ty).set_description(figures.as_str());
            s
        }
    };
    let mut t = TestCase::new(name, status);
    t.set_classname(classname).set_time(time);
    if why.is_none() {
        t.set_system_out(figures);
    }
    t
}

/// A phase's two criteria as testcases.
fn phase_cases(c: &CampaignReport, p: &PhaseReport) -> [TestCase; 2] {
    let classname = format!("{}.phase_{:02}_{}", c.profile, u64::from(p.index) + 1, p.name);
    let label = format!("phase {} {}", p.index + 1, p.name);
    let cr = &p.criteria;
    let which = if cr.p95_basis == "in_page" { "in-page p95" } else { "p95" };
    let names = [
        format!("{label}: success rate >= {}%", pct_frac(cr.min_success_rate)),
        format!("{label}: {which} < {}", fmt_ms(cr.max_p95_ms as f64)),
    ];
    let time = secs(Some(p.duration_s));
    if cr.unsupported {
        // neither passed nor failed: the browser's words say why
        return names.map(|n| {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!("unsupported: {}", cr.failures.join("; "))).set_type("unsupported");
            let mut t = TestCase::new(n, s);
            t.set_classname(classname.as_str()).set_time(time);
            t
        });
    }
    // the successes the phase's criteria counted: not those under the ladder's adjusted settings
    let degraded = p.ops_succeeded_degraded;
    let succeeded = p.ops_succeeded.saturating_sub(degraded);
    let p95 = if cr.p95_basis == "in_page" { p.in_page_latency_ms.as_ref().unwrap_or(&p.latency_ms).p95 } else { p.latency_ms.p95 };
    let none = (p.ops_attempted == 0).then(|| "no ops were attempted".to_string());
    let mut rate_why = none.clone().or_else(|| success_shortfall(p.ops_attempted, succeeded, cr.min_success_rate));
    if let (Some(w), true) = (&mut rate_why, degraded > 0) {
        w.push_str(&format!("; {degraded} op(s) succeeded only under the recovery ladder's adjusted settings (degraded)"));
    }
    let p95_why = none.or_else(|| p95_excess(p95, &cr.p95_basis, cr.max_p95_ms));
    let rate_figures = format!(
        "success rate {}% ({succeeded} of {} ops; min {}%), {} ops/s over {}s, status {}",
        pct_counts(succeeded, p.ops_attempted),
        p.ops_attempted,
        pct_frac(cr.min_success_rate),
        p.throughput_ops_per_s,
        p.duration_s,
        p.status
    );
    let p95_figures = format!(
        "{which} {} (limit {}); round trip p50 {} p95 {} p99 {} over {} ops",
        fmt_ms(p95),
        fmt_ms(cr.max_p95_ms as f64),
        fmt_ms(p.latency_ms.p50),
        fmt_ms(p.latency_ms.p95),
        fmt_ms(p.latency_ms.p99),
        p.ops_attempted
    );
    let [rate_name, p95_name] = names;
    [
        judged(rate_name, &classname, time, rate_why, rate_figures, "phase_criterion"),
        judged(p95_name, &classname, time, p95_why, p95_figures, "phase_criterion"),
    ]
}

/// A capacity phase's searches as testcases, judged as its criteria are: each holds when its
/// lowest count held; the answer (the count, its figures, why the next count fails) is the
/// system-out or the failure message.
fn capacity_cases(c: &CampaignReport, p: &PhaseReport) -> Vec<TestCase> {
    let classname = format!("{}.phase_{:02}_{}", c.profile, u64::from(p.index) + 1, p.name);
    let time = secs(Some(p.duration_s));
    p.capacity
        .iter()
        .map(|cap| {
            let on = cap.browser.as_deref().map(|b| format!(" on {b}")).unwrap_or_default();
            let name = format!("phase {} {}: capacity{on}, the lowest count ({}) holds", p.index + 1, p.name, cap.min_sessions);
            let curve: Vec<String> = cap
                .steps
                .iter()
                .map(|s| {
                    format!(
                        "{} sessions: {} ops/s, p95 {}, success {}%, {}",
                        s.sessions,
                        s.ops_per_s,
                        fmt_ms(s.p95_ms),
                        s.success_pct,
                        if s.passed { "holds" } else { "fails" }
                    )
                })
                .collect();
            let figures = format!("{}\n{}", cap.answer, curve.join("\n"));
            let why = cap.max_sustainable.is_none().then(|| cap.answer.clone());
            judged(name, &classname, time, why, figures, "capacity")
        })
        .collect()
}

/// A phase's drift criteria that were set, as testcases: a failure when the whole interval lay
/// above the limit (the criteria's own sentence), skipped when the phase could not be judged.
fn drift_cases(c: &CampaignReport, p: &PhaseReport) -> Vec<TestCase> {
    let classname = format!("{}.phase_{:02}_{}", c.profile, u64::from(p.index) + 1, p.name);
    let label = format!("phase {} {}", p.index + 1, p.name);
    let cr = &p.criteria;
    let time = secs(Some(p.duration_s));
    let checks = [
        (
            "max_rss_growth_mb_per_h",
            "browser memory growth",
            "MiB/h",
            "browser memory grew",
            cr.max_rss_growth_mb_per_h,
            p.drift.as_ref().and_then(|d| d.browser_rss.as_ref()),
        ),
        (
            "max_p95_drift_pct_per_h",
            "in-page p95 drift",
            "%/h",
            "in-page p95 drifted",
            cr.max_p95_drift_pct_per_h,
            p.drift.as_ref().and_then(|d| d.in_page_p95.as_ref()),
        ),
    ];
    let mut out = Vec::new();
    for (key, what, unit, failure_prefix, limit, trend) in checks {
        let Some(limit) = limit else { continue };
        let name = format!("{label}: {what} <= {limit} {unit}");
        let skipped = cr
            .unsupported
            .then(|| format!("unsupported: {}", cr.failures.join("; ")))
            .or_else(|| cr.not_judged.iter().find(|n| n.starts_with(key)).cloned());
        if let Some(why) = skipped {
            let mut s = TestCaseStatus::skipped();
            s.set_message(why).set_type(if cr.unsupported { "unsupported" } else { "not_judged" });
            let mut t = TestCase::new(name, s);
            t.set_classname(classname.as_str()).set_time(time);
            out.push(t);
            continue;
        }
        let why = cr.failures.iter().find(|f| f.starts_with(failure_prefix)).cloned();
        let figures = trend
            .map_or_else(|| "no trend".to_string(), |t| format!("{what} {} over {} points (limit {limit} {unit})", t.describe(), t.points));
        out.push(judged(name, &classname, time, why, figures, "phase_criterion"));
    }
    out
}

/// The campaign verdict's three conditions as testcases, judged as the verdict judges them.
fn campaign_cases(c: &CampaignReport) -> [TestCase; 3] {
    let v = &c.verdict;
    let classname = format!("{}.campaign", c.profile);
    let time = secs(c.wall_time_s);
    let judged_phases: Vec<&PhaseReport> = c.phases.iter().filter(|p| !p.criteria.unsupported).collect();
    let failing: Vec<&str> = judged_phases.iter().filter(|p| !p.criteria.passed).map(|p| p.name.as_str()).collect();
    let unsupported: Vec<&str> = c.phases.iter().filter(|p| p.criteria.unsupported).map(|p| p.name.as_str()).collect();
    let left_out = if unsupported.is_empty() { String::new() } else { format!("; unsupported (left out): {}", unsupported.join(", ")) };

    let ratio_figures = format!(
        "{} of {} phases passed ({}%; required {}%){}{left_out}",
        v.phases_passed,
        v.phases_total,
        pct_counts(u64::from(v.phases_passed), u64::from(v.phases_total)),
        pct_frac(v.required_phase_ratio),
        if failing.is_empty() { String::new() } else { format!("; failing: {}", failing.join(", ")) }
    );
    let ratio_why = (!phases_ok(v.phases_passed, v.phases_total, v.required_phase_ratio)).then(|| {
        if v.phases_total == 0 {
            format!("no phase ran a supported task{left_out}")
        } else {
            format!(
                "{} of {} phases passed ({}%), below the required {}%",
                v.phases_passed,
                v.phases_total,
                pct_counts(u64::from(v.phases_passed), u64::from(v.phases_total)),
                pct_frac(v.required_phase_ratio)
            )
        }
    });

    let attempted: u64 = judged_phases.iter().map(|p| p.ops_attempted).sum();
    // as the verdict counts them: not the successes under the ladder's adjusted settings
    let succeeded: u64 = judged_phases.iter().map(|p| p.ops_succeeded.saturating_sub(p.ops_succeeded_degraded)).sum();
    let rate_figures = format!(
        "overall success rate {}% ({succeeded} of {attempted} ops; required {}%)",
        pct_counts(succeeded, attempted),
        pct_frac(v.required_success_rate)
    );
    let rate_why = (!rate_ok(succeeded, attempted, v.required_success_rate)).then(|| {
        if attempted == 0 {
            "no ops were attempted".to_string()
        } else {
            format!(
                "overall success rate {}% ({succeeded} of {attempted} ops) below the required {}%",
                pct_counts(succeeded, attempted),
                pct_frac(v.required_success_rate)
            )
        }
    });

    let plan_figures = format!(
        "{} of {} planned phases run; outcome {}{}",
        c.phases.iter().filter(|p| p.status == "completed").count(),
        v.phases_planned.max(c.phases.len() as u32),
        c.outcome,
        c.stop_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
    );
    let plan_why = (!v.plan_completed)
        .then(|| v.reasons.iter().find(|r| r.starts_with("the plan did not complete")).cloned().unwrap_or_else(|| plan_figures.clone()));
    [
        judged(
            format!("campaign: at least {}% of phases pass", pct_frac(v.required_phase_ratio)),
            &classname,
            time,
            ratio_why,
            ratio_figures,
            "campaign_criterion",
        ),
        judged(
            format!("campaign: overall success rate >= {}%", pct_frac(v.required_success_rate)),
            &classname,
            time,
            rate_why,
            rate_figures,
            "campaign_criterion",
        ),
        judged("campaign: the plan ran to its end".to_string(), &classname, time, plan_why, plan_figures, "campaign_criterion"),
    ]
}

/// `junit.xml` of campaign `c`: one testsuite (the campaign), its phases' criteria then the
/// campaign's, in order.
pub fn render_junit(c: &CampaignReport) -> std::io::Result<String> {
    let mut suite = TestSuite::new(format!("stressctl {} {}", c.profile, c.campaign_id));
    suite.set_time(secs(c.wall_time_s));
    suite.add_property(("campaign_id", c.campaign_id.as_str()));
    suite.add_property(("started_at", c.started_at.as_str()));
    suite.add_property(("outcome", c.outcome.as_str()));
    suite.add_property(("verdict", if c.verdict.passed { "passed" } else { "failed" }));
    for p in &c.phases {
        if p.capacity.is_empty() {
            suite.add_test_cases(phase_cases(c, p));
        } else {
            suite.add_test_cases(capacity_cases(c, p));
        }
        suite.add_test_cases(drift_cases(c, p));
    }
    suite.add_test_cases(campaign_cases(c));
    let mut report = Report::new("stressctl");
    report.set_time(secs(c.wall_time_s));
    report.add_test_suite(suite);
    let mut xml = report.to_string().map_err(std::io::Error::other)?;
    if !xml.ends_with('\n') {
        xml.push('\n');
    }
    Ok(xml)
}
