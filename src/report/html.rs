//! `report.html`: the campaign in one self-contained page (the styles, the chart library, the
//! dashboard's script and the data inline; no URL to anything), for reading in the morning.
//!
//! The text that matters (verdict, phase table, per-task and per-worker tables) is HTML written
//! here, readable without JavaScript; the charts, the breaker timeline and table, the recovery
//! table and the event list are drawn by the dashboard's own script from the embedded JSON, so
//! they are the charts the live dashboard showed. The time series come from the campaign's store
//! through the dashboard's model, bucketed to at most [`MAX_POINTS`](crate::dashboard::series::MAX_POINTS)
//! points (an 8-hour campaign: 30 s buckets, a few hundred kB); the event list keeps the
//! notable kinds only (the rest are in `events.jsonl`), at most [`MAX_EVENTS`].
//!
//! A pure function of the store: rebuilding it gives the same bytes.

use super::atomic::write_atomic;
use super::campaign::CampaignReport;
use super::numbers::{cut, fmt_ms, pct_counts};
use crate::dashboard::assets;
use crate::dashboard::model::{event_json, Model};
use crate::dashboard::source::StoreFollower;
use crate::events::EventRecord;
use crate::store::StoreReader;
use std::fmt::Write as _;
use std::path::Path;

/// File name of the HTML report.
pub const HTML_FILE: &str = "report.html";
/// Events listed in the report at most (the first ones; `events.jsonl` has them all).
pub const MAX_EVENTS: usize = 1000;
/// Event kinds the report lists (breaker transitions and recoveries have their own views, and
/// op failures are counted in the phase table and listed in `events.jsonl`).
const LISTED: [&str; 19] = [
    "campaign_started",
    "config_tuned",
    "campaign_interrupted",
    "campaign_resumed",
    "phase_started",
    "phase_adjusted",
    "phase_ended",
    "guardian_violation",
    "browser_rss_exceeded",
    "browser_recycled",
    "driver_restarted",
    "breaker_command",
    "fault_injected",
    "auto_recovery_started",
    "auto_recovery_resumed",
    "clock_gap",
    "campaign_halted",
    "emergency_stop",
    "campaign_ended",
];

/// HTML-escapes text.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON that can sit inside `<script>`: `<` is written as `\u003c`, so no `</script>` or `<!--`
/// in the data can end the element.
fn script_json(v: &serde_json::Value) -> String {
    v.to_string().replace('<', "\\u003c")
}

/// uPlot without the URL in its banner comment: the report holds no URL at all.
fn uplot_js() -> String {
    match assets::UPLOT_JS.split_once("*/") {
        Some((banner, rest)) if banner.starts_with("/*!") => {
            format!("/*! uPlot v1.6.32 (github.com/leeoniya/uPlot), MIT licence: see the end of this page */{rest}")
        }
        _ => assets::UPLOT_JS.to_string(),
    }
}

/// The listed events of a store as the pages' JSON, in order, at most [`MAX_EVENTS`].
fn events(store: &Path) -> Result<Vec<serde_json::Value>, crate::store::StoreError> {
    let r = StoreReader::open(store)?;
    let mut out = Vec::new();
    let mut seq = 0u64;
    r.for_each_event(None, &LISTED, |e| {
        if out.len() >= MAX_EVENTS {
            return;
        }
        if let Ok((_, event)) = EventRecord::from_stored(&e) {
            seq += 1;
            let at = humantime::parse_rfc3339_weak(&e.at).unwrap_or(std::time::UNIX_EPOCH);
            let rec = EventRecord { at, corr: e.corr.clone(), phase: e.phase_idx, event };
            if let Ok(v) = serde_json::from_str(&event_json(seq, &rec)) {
                out.push(v);
            }
        }
    })?;
    Ok(out)
}

/// Writes `report.html` into `dir`, its series read from the store the report was built from
/// (without one, the page has the report's tables and empty charts).
pub fn write(dir: &Path, c: &CampaignReport) -> std::io::Result<()> {
    let (model, evs) = match &c.source_store.0 {
        Some(store) => {
            let m = StoreFollower::open(store).and_then(|f| f.read_all(None)).map_err(std::io::Error::other)?;
            (Some(m), events(store).map_err(std::io::Error::other)?)
        }
        None => (None, Vec::new()),
    };
    write_atomic(dir, HTML_FILE, render(c, model.as_ref(), &evs).as_bytes()).map(|_| ())
}

/// The page.
pub fn render(c: &CampaignReport, model: Option<&Model>, events: &[serde_json::Value]) -> String {
    let overview = match model {
        Some(m) => {
            let mut o = m.overview(None);
            // the page draws its watched nodes from the report (`nodes_table`): their series need
            // not travel twice
            o.nodes.clear();
            serde_json::to_value(o).unwrap_or_default()
        }
        None => serde_json::to_value(Model::new(&c.campaign_id, &c.profile, 0, 1000, Default::default(), "store").overview(None))
            .unwrap_or_default(),
    };
    let data = serde_json::json!({
        "overview": overview,
        "breakers": c.breakers.final_snapshot,
        "events": events,
    });
    let mut h = String::with_capacity(256 * 1024);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<link rel=\"icon\" href=\"data:,\">\n<title>stressctl report {id}</title>\n<style>\n{ucss}\n{css}\n</style>\n</head>\n<body data-page=\"report\" data-mode=\"report\">\n<header><h1 id=\"title\">stressctl report · {id} ({profile})</h1><span class=\"state\" id=\"state\"></span></header>\n<main>\n<div id=\"banner\" class=\"banner hidden\"></div>\n",
        id = esc(&c.campaign_id),
        profile = esc(&c.profile),
        ucss = assets::UPLOT_CSS,
        css = assets::DASHBOARD_CSS,
    );
    verdict(&mut h, c);
    h.push_str("<section class=\"cards\" id=\"cards\"></section>\n<h2>Phases</h2>\n");
    phase_table(&mut h, c);
    capacity_section(&mut h, c);
    console_list(&mut h, c);
    h.push_str(CHARTS);
    task_table(&mut h, c);
    drift_list(&mut h, c);
    baseline_list(&mut h, c);
    nodes_table(&mut h, c);
    if let Some(m) = model {
        worker_table(&mut h, m);
    }
    h.push_str(BREAKERS);
    let _ = write!(
        h,
        "<footer><p>Built by stressctl {} from the store of campaign {}; rebuild it with <code>stressctl report {}</code>. Every event is in <code>events.jsonl</code> beside this file.</p><p>Charts: uPlot 1.6.32.</p><pre>{}</pre></footer>\n</main>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&c.campaign_id),
        esc(&c.campaign_id),
        esc(assets::UPLOT_LICENSE)
    );
    let _ = write!(
        h,
        "<script type=\"application/json\" id=\"stressctl-data\">{}</script>\n<script>\n{}\n</script>\n<script>\n{}\n</script>\n</body>\n</html>\n",
        script_json(&data),
        uplot_js(),
        assets::DASHBOARD_JS
    );
    h
}

const CHARTS: &str = r#"<h2>Ops, success and latency</h2>
<div class="charts">
  <div class="chart" id="c-throughput"><h3>Throughput (ops/s) and success (%)</h3><div class="plot"></div></div>
  <div class="chart" id="c-latency"><h3>Latency percentiles (ms)</h3><div class="plot"></div></div>
</div>
<div class="hidden" id="by-browser">
  <h2>Per browser</h2>
  <div class="charts">
    <div class="chart" id="c-browser-ops"><h3>Throughput per browser (ops/s)</h3><div class="plot"></div></div>
    <div class="chart" id="c-browser-p95"><h3>Latency p95 per browser (ms)</h3><div class="plot"></div></div>
  </div>
</div>
<h2>Resources (guardian samples, worst per bucket; dashed: thresholds)</h2>
<div class="charts">
  <div class="chart" id="c-resources"><h3>CPU, memory, disk (%)</h3><div class="plot"></div></div>
  <div class="chart" id="c-browsers"><h3>Browsers' and drivers' RSS (MiB) and health</h3><div class="plot"></div></div>
  <div class="chart" id="c-host"><h3>Host headroom: the host's CPU demand (used + waited for, outside the campaign), the campaign's CPU and its cap, the host's stall (%)</h3><div class="plot"></div></div>
</div>
"#;

const BREAKERS: &str = r#"<h2>Circuit breakers at the end</h2>
<section class="cards" id="breaker-cards"></section>
<div id="breaker-table"></div>
<h2>Breaker state timeline</h2>
<div class="legend"><span><i style="background:#2e9d4c"></i>closed</span><span><i style="background:#f0a400"></i>half-open</span><span><i style="background:#d32f2f"></i>open</span><span><i style="background:#7b1fa2"></i>forced open</span><span><i style="background:#9e9e9e"></i>disabled</span></div>
<div class="timeline" id="timeline"></div>
<h2>Recovery ladder: results per failure class and strategy</h2>
<div id="recoveries"></div>
<h2>Events</h2>
<div id="events"></div>
"#;

fn verdict(h: &mut String, c: &CampaignReport) {
    let v = &c.verdict;
    let _ = write!(
        h,
        "<section class=\"verdict\" id=\"verdict\"><b>Verdict: <span class=\"badge {cls}\">{word}</span></b> outcome {outcome}{reason} · {passed} of {total} phases passed · success {rate}% of {ops} ops · wall time {wall}<ul>",
        cls = if v.passed { "passed" } else { "failed" },
        word = if v.passed { "PASS" } else { "FAIL" },
        outcome = esc(&c.outcome),
        reason = c.stop_reason.as_deref().map(|r| format!(" ({})", esc(r))).unwrap_or_default(),
        passed = v.phases_passed,
        total = v.phases_total,
        rate = pct_counts(c.totals.ops_succeeded, c.totals.ops_attempted),
        ops = c.totals.ops_attempted,
        wall = c.wall_time_s.map(|s| format!("{s:.0} s")).unwrap_or_else(|| "-".into()),
    );
    for r in &v.reasons {
        let _ = write!(h, "<li>{}</li>", esc(r));
    }
    for u in &c.unsupported {
        let _ = write!(h, "<li>unsupported: {} in phase {}: {}</li>", esc(&u.task_kind), esc(&u.phase), esc(&u.message));
    }
    h.push_str("</ul></section>\n");
}

fn phase_table(h: &mut String, c: &CampaignReport) {
    h.push_str("<div id=\"phases\" data-static=\"1\"><table id=\"phase-table\"><tr><th class=\"l\">#</th><th class=\"l\">phase</th><th class=\"l\">level</th><th class=\"l\">task</th><th>sessions</th><th>time s</th><th>ops</th><th>success %</th><th>ops/s</th><th>p50</th><th>p95</th><th>p99</th><th>cpu max %</th><th>mem max %</th><th class=\"l\">result</th></tr>\n");
    for p in &c.phases {
        let result = if p.criteria.passed { "PASS".to_string() } else { format!("FAIL: {}", p.criteria.failures.join("; ")) };
        let status = if p.status == "completed" { String::new() } else { format!(" ({})", p.status) };
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}/{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.0}</td><td class=\"l wrap {}\">{}{}</td></tr>",
            p.index + 1,
            esc(&p.name),
            esc(&p.stress_level),
            esc(&p.task_kind),
            p.sessions,
            p.sessions_planned,
            p.duration_s,
            p.ops_attempted,
            pct_counts(p.ops_succeeded, p.ops_attempted),
            p.throughput_ops_per_s,
            fmt_ms(p.latency_ms.p50),
            fmt_ms(p.latency_ms.p95),
            fmt_ms(p.latency_ms.p99),
            p.resources.cpu_max,
            p.resources.memory_max,
            if p.criteria.passed { "pass" } else { "fail" },
            esc(&result),
            esc(&status),
        );
    }
    h.push_str("</table></div>\n");
}

/// A capacity phase's answers, each with its steps and the curve of throughput (solid) and p95
/// (dashed) against sessions, drawn here as SVG: the report stays one self-contained file.
fn capacity_section(h: &mut String, c: &CampaignReport) {
    let searches: Vec<_> = c.phases.iter().flat_map(|p| p.capacity.iter().map(move |cap| (p, cap))).collect();
    if searches.is_empty() {
        return;
    }
    h.push_str("<h2>Capacity</h2>\n<div id=\"capacity\">\n");
    for (p, cap) in searches {
        let _ = writeln!(h, "<p class=\"capacity-answer\"><b>phase {} {}</b>: {}</p>", p.index + 1, esc(&p.name), esc(&cap.answer));
        h.push_str("<table class=\"capacity-steps\"><tr><th>sessions</th><th>ops</th><th>success %</th><th>ops/s</th><th>p95 ms</th><th class=\"l\">result</th><th>step</th></tr>\n");
        for st in &cap.steps {
            let early = if st.ended_early { " (ended early: settled)" } else { "" };
            let result = if st.passed { format!("holds{early}") } else { format!("fails{early}: {}", st.failures.join("; ")) };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td class=\"l wrap {}\">{}</td><td>{}</td></tr>",
                st.sessions,
                st.attempted,
                esc(&st.success_pct),
                st.ops_per_s,
                st.p95_ms,
                if st.passed { "pass" } else { "fail" },
                esc(&result),
                st.order
            );
        }
        h.push_str("</table>\n");
        h.push_str(&capacity_svg(cap));
    }
    h.push_str("</div>\n");
}

/// The curve of one search: x sessions, throughput on the left scale, p95 on the right; a
/// filled dot for a count that held, a hollow one for a count that failed.
fn capacity_svg(cap: &super::capacity::CapacityReport) -> String {
    let (w, ht, pad) = (560.0_f64, 220.0_f64, 40.0_f64);
    let max_n = cap.steps.iter().map(|s| s.sessions).max().unwrap_or(1).max(1) as f64;
    let max_ops = cap.steps.iter().map(|s| s.ops_per_s).fold(0.0_f64, f64::max).max(1e-9);
    let max_p95 = cap.steps.iter().map(|s| s.p95_ms).fold(0.0_f64, f64::max).max(1e-9);
    let x = |n: u32| pad + (n as f64 / max_n) * (w - 2.0 * pad);
    let y = |v: f64, max: f64| ht - pad + -(v / max) * (ht - 2.0 * pad);
    let line = |f: &dyn Fn(&super::capacity::CapacityStep) -> f64, max: f64| {
        cap.steps.iter().map(|s| format!("{:.1},{:.1}", x(s.sessions), y(f(s), max))).collect::<Vec<_>>().join(" ")
    };
    let mut svg = format!(
        "<svg class=\"capacity-curve\" width=\"{w}\" height=\"{ht}\" viewBox=\"0 0 {w} {ht}\" role=\"img\" aria-label=\"throughput and p95 against sessions\">\n<line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#999\"/>\n<text x=\"{pad}\" y=\"{t}\" font-size=\"11\">ops/s (max {max_ops:.1})</text><text x=\"{r}\" y=\"{t}\" font-size=\"11\" text-anchor=\"end\">p95 ms, dashed (max {max_p95:.1})</text>\n<text x=\"{mid}\" y=\"{bl}\" font-size=\"11\" text-anchor=\"middle\">sessions</text>\n",
        b = ht - pad,
        r = w - pad,
        t = pad - 12.0,
        mid = w / 2.0,
        bl = ht - 8.0,
    );
    svg.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{}\"/>\n",
        line(&|s| s.ops_per_s, max_ops)
    ));
    svg.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"5,4\" points=\"{}\"/>\n",
        line(&|s| s.p95_ms, max_p95)
    ));
    for s in &cap.steps {
        let fill = if s.passed { "#1f77b4" } else { "#fff" };
        svg.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{fill}\" stroke=\"#1f77b4\"><title>{} sessions: {:.1} ops/s, p95 {:.1} ms, {}</title></circle>\n<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>\n",
            x(s.sessions),
            y(s.ops_per_s, max_ops),
            s.sessions,
            s.ops_per_s,
            s.p95_ms,
            if s.passed { "holds" } else { "fails" },
            x(s.sessions),
            ht - pad + 14.0,
            s.sessions
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

/// The browsers' console entries per phase (left out when no page logged any).
fn console_list(h: &mut String, c: &CampaignReport) {
    if c.phases.iter().all(|p| p.browser_console.is_none()) {
        return;
    }
    h.push_str("<h2>Browser console (errors, uncaught exceptions, WebGPU errors)</h2>\n<ul id=\"console\">\n");
    for p in &c.phases {
        let Some(b) = &p.browser_console else { continue };
        let _ = write!(h, "<li>{} {}: {} entries<ul>", p.index + 1, esc(&p.name), b.entries);
        for t in &b.top {
            let _ = write!(h, "<li class=\"wrap\">{}x ({} on failed ops): <code>{}</code></li>", t.count, t.on_failed_ops, esc(&t.text));
        }
        h.push_str("</ul></li>\n");
    }
    h.push_str("</ul>\n");
}

/// The drift and leak trends of the campaign and its long phases, the lines of `summary.txt`
/// (left out when no phase was long enough).
fn drift_list(h: &mut String, c: &CampaignReport) {
    let groups = super::summary::drift_lines(c);
    if groups.is_empty() {
        return;
    }
    h.push_str("<h2>Drift and leaks (Theil–Sen trend per hour, 95 % CI; no drift when the CI contains 0)</h2>\n<ul id=\"drift\">\n");
    for (title, lines) in groups {
        let _ = write!(h, "<li class=\"wrap\"><b>{}</b><ul>", esc(&title));
        for l in lines {
            let _ = write!(h, "<li>{}</li>", esc(&l));
        }
        h.push_str("</ul></li>\n");
    }
    h.push_str("</ul>\n");
}

/// The night's baseline and the last phase against it, the lines of `summary.txt` (left out
/// without a baseline).
fn baseline_list(h: &mut String, c: &CampaignReport) {
    let lines = super::baseline::summary_lines(&c.baseline);
    if lines.is_empty() {
        return;
    }
    h.push_str("<h2>Baseline (before the first phase; the last phase against it)</h2>\n<ul id=\"baseline\">\n");
    for l in lines {
        let _ = writeln!(h, "<li class=\"wrap\">{}</li>", esc(l.trim()));
    }
    h.push_str("</ul>\n");
}

/// The watched nodes (`[[workers]] node_metrics`): peaks, a memory and CPU sparkline of each
/// node's series (0–100 %), and its drains with their reasons (left out when none was watched).
fn nodes_table(h: &mut String, c: &CampaignReport) {
    if c.nodes.is_empty() {
        return;
    }
    h.push_str("<h2>Watched nodes (node_exporter)</h2>\n<table id=\"nodes-table\"><tr><th class=\"l\">node</th><th>samples</th><th>cpu max %</th><th>memory max %</th><th>disk max %</th><th>stall max %</th><th class=\"l\">memory (solid) and cpu (dashed), 0–100 %</th><th class=\"l\">drains</th></tr>\n");
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    for n in &c.nodes {
        let line = |f: &dyn Fn(&super::nodes::NodePoint) -> Option<f64>| -> String {
            let len = n.series.len().max(2) - 1;
            n.series
                .iter()
                .enumerate()
                .filter_map(|(i, p)| f(p).map(|v| format!("{:.1},{:.1}", 200.0 * i as f64 / len as f64, 40.0 - 0.4 * v.clamp(0.0, 100.0))))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mem = line(&|p| Some(p.memory));
        let cpu = line(&|p| p.cpu);
        let mut drains: Vec<String> = n
            .drains
            .iter()
            .map(|d| match &d.reopened_at {
                Some(at) => format!("{}: {} (reopened {at})", d.at, d.reason),
                None => format!("{}: {} (to the end)", d.at, d.reason),
            })
            .collect();
        drains.extend(n.unwatched.iter().map(|u| format!("exporter not answering {u}")));
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"l\"><svg width=\"200\" height=\"40\" viewBox=\"0 0 200 40\"><polyline fill=\"none\" stroke=\"currentColor\" points=\"{mem}\"/>\
             <polyline fill=\"none\" stroke=\"currentColor\" stroke-dasharray=\"3 2\" points=\"{cpu}\"/></svg></td><td class=\"l wrap\">{}</td></tr>",
            esc(&n.worker),
            esc(&n.node),
            n.samples,
            pct(n.cpu_max),
            pct(n.memory_max),
            pct(n.disk_max),
            pct(n.pressure_max),
            esc(&drains.join("; ")),
        );
    }
    h.push_str("</table>\n");
}

/// Per phase and task kind, with what the task reported (adapter, model, …): the per-model view.
fn task_table(h: &mut String, c: &CampaignReport) {
    h.push_str("<h2>Per phase and task kind</h2>\n<table id=\"task-table\"><tr><th class=\"l\">phase</th><th class=\"l\">task</th><th>ops</th><th>success %</th><th>verified</th><th>p50</th><th>p95</th><th>p99</th><th class=\"l\">reported by the task</th></tr>\n");
    for p in &c.phases {
        for (kind, t) in &p.tasks {
            let info: Vec<String> = t.info.iter().map(|(k, v)| format!("{k}: {}", cut(&v.to_string(), 120))).collect();
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
                esc(&p.name),
                esc(kind),
                t.ops_attempted,
                pct_counts(t.ops_succeeded, t.ops_attempted),
                t.verified,
                fmt_ms(t.latency_ms.p50),
                fmt_ms(t.latency_ms.p95),
                fmt_ms(t.latency_ms.p99),
                esc(&info.join(" · "))
            );
        }
    }
    h.push_str("</table>\n");
}

/// Per worker (each worker is one browser endpoint), when there are several.
fn worker_table(h: &mut String, m: &Model) {
    let mut per: std::collections::BTreeMap<&str, (u64, u64)> = std::collections::BTreeMap::new();
    for ((_, _, worker), c) in m.op_counts() {
        let e = per.entry(worker.as_str()).or_default();
        e.0 += c.attempted;
        e.1 += c.succeeded;
    }
    if per.len() < 2 {
        return;
    }
    h.push_str("<h2>Per worker</h2>\n<table id=\"worker-table\"><tr><th class=\"l\">worker</th><th>ops</th><th>success %</th></tr>\n");
    for (w, (a, s)) in per {
        let _ = writeln!(h, "<tr><td class=\"l\">{}</td><td>{a}</td><td>{}</td></tr>", esc(w), pct_counts(s, a));
    }
    h.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::model::{Limits, WindowIn};
    use crate::dashboard::series::{bucket_width, OpsRow, SampleRow};
    use crate::events::Event;
    use crate::store::{CampaignRecord, Store};
    use std::time::{Duration, UNIX_EPOCH};

    /// A small real report (the tables), to render around a model.
    fn small_report(dir: &Path) -> CampaignReport {
        let path = dir.join("store.sqlite");
        let rec = CampaignRecord {
            id: "c-8h".into(),
            profile: "overnight".into(),
            config_source: "<profile overnight>".into(),
            config_text: crate::config::OVERNIGHT_PROFILE.into(),
            started_at: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            output_dir: dir.to_path_buf(),
        };
        let store = Store::create(&path, &rec, &dir.join("events.jsonl")).unwrap();
        store.campaign_ended("failed", Some("a <script> in a reason".into()));
        store.close().unwrap();
        crate::report::campaign_report(&StoreReader::open(&path).unwrap()).unwrap()
    }

    /// An overnight campaign's worth of data: 2 slots' windows every second for 8 h, a sample
    /// every 2 s, a breaker flapping every 3 s, 1000 listed events.
    fn eight_hours() -> (Model, Vec<serde_json::Value>) {
        let t0: i64 = 1_800_000_000_000;
        let span = 8 * 3600 * 1000;
        let mut m = Model::new("c-8h", "overnight", t0, bucket_width(span), Limits::default(), "store");
        let mut h = crate::metrics::new_histogram();
        crate::metrics::record_latency(&mut h, Duration::from_millis(40));
        let rec =
            |ms: i64, event| EventRecord { at: UNIX_EPOCH + Duration::from_millis(ms as u64), corr: String::new(), phase: Some(0), event };
        m.on_event(&rec(
            t0,
            Event::PhaseStarted {
                name: "soak".into(),
                total: 1,
                sessions: 2,
                sessions_planned: 2,
                duration_ms: span as u64,
                task: "webgpu".into(),
            },
        ));
        for s in 0..span / 1000 {
            let end = t0 + s * 1000 + 1000;
            for slot in 0..2 {
                let hist = (s % 60 == 0).then_some(&h);
                m.on_window(&WindowIn {
                    phase: 0,
                    worker: if slot == 0 { "w1" } else { "w2" },
                    task: "webgpu",
                    ops: OpsRow { start_ms: end - 1000, end_ms: end, attempted: 5, succeeded: 4, hist },
                    failed: 1,
                });
            }
            if s % 2 == 0 {
                m.on_sample(SampleRow {
                    at_ms: end,
                    phase: Some(0),
                    cpu: 90.0,
                    memory: 50.0,
                    disk: 20.0,
                    tree_rss: 2 << 30,
                    health: 70.0,
                    violating: false,
                    host: None,
                });
            }
            if s % 3 == 0 {
                let (from, to) = if s % 6 == 0 { ("closed", "open") } else { ("open", "closed") };
                m.on_event(&rec(
                    end,
                    Event::BreakerTransition { key: "worker:w1".into(), from: from.into(), to: to.into(), reason: "r".into() },
                ));
            }
        }
        m.on_event(&rec(t0 + span, Event::CampaignEnded { outcome: "failed".into(), stop_reason: None }));
        m.finish();
        let events = (0..MAX_EVENTS as u64)
            .map(|i| {
                serde_json::from_str(&event_json(i + 1, &rec(t0, Event::ClockGap { gap_ms: 2500, observer: "guardian".into() }))).unwrap()
            })
            .collect();
        (m, events)
    }

    #[test]
    fn an_eight_hour_campaign_stays_under_2_mb_and_renders_the_same_bytes_twice() {
        let dir = tempfile::tempdir().unwrap();
        let c = small_report(dir.path());
        let (m, events) = eight_hours();
        let page = render(&c, Some(&m), &events);
        eprintln!("an 8-hour report.html: {} bytes", page.len());
        assert!(page.len() < 2 * 1024 * 1024, "{} bytes", page.len());
        assert_eq!(page, render(&c, Some(&m), &events));
        let o = m.overview(None);
        assert!(o.ops.t.len() <= crate::dashboard::series::MAX_POINTS, "{}", o.ops.t.len());
        assert!(o.breakers[0].spans.len() <= crate::dashboard::model::MAX_SPANS);
    }

    #[test]
    fn watched_nodes_get_a_table_with_their_series_and_drains() {
        use crate::report::nodes::{NodeDrain, NodePoint, NodeReport};
        let dir = tempfile::tempdir().unwrap();
        let mut c = small_report(dir.path());
        assert!(!render(&c, None, &[]).contains("nodes-table"), "no node watched: no table");
        c.nodes = vec![NodeReport {
            worker: "grid".into(),
            node: "node-1".into(),
            samples: 2,
            memory_max: Some(93.0),
            series: vec![
                NodePoint { at: "t0".into(), cpu: None, memory: 50.0, disk: Some(10.0), pressure: None },
                NodePoint { at: "t1".into(), cpu: Some(100.0), memory: 93.0, disk: Some(10.0), pressure: None },
            ],
            drains: vec![NodeDrain { at: "t1".into(), reason: "node_distress: memory 93 % > 90 %".into(), ..NodeDrain::default() }],
            ..NodeReport::default()
        }];
        let page = render(&c, None, &[]);
        assert!(page.contains("<td class=\"l\">grid/node-1</td><td>2</td>"), "{page}");
        assert!(page.contains("points=\"0.0,20.0 200.0,2.8\""), "the memory line: 50 % then 93 %");
        assert!(page.contains("points=\"200.0,0.0\""), "the cpu line: no rate on the first scrape");
        assert!(page.contains("t1: node_distress: memory 93 % &gt; 90 % (to the end)"));
    }

    #[test]
    fn the_page_has_no_url_and_its_data_cannot_close_the_script() {
        let dir = tempfile::tempdir().unwrap();
        let c = small_report(dir.path());
        let page = render(&c, None, &[serde_json::json!({"message": "</script><script>alert(1)</script>"})]);
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert_eq!(page.matches("</script>").count(), 3, "the data and the two scripts end once each");
        assert!(page.contains("a &lt;script&gt; in a reason"));
    }

    #[test]
    fn the_report_carries_the_per_browser_series_and_their_charts() {
        let dir = tempfile::tempdir().unwrap();
        let c = small_report(dir.path());
        let mut m = Model::new("c-2b", "custom", 0, 1000, Limits::default(), "store");
        let mut h = crate::metrics::new_histogram();
        crate::metrics::record_latency(&mut h, Duration::from_millis(40));
        // a worker the campaign_started event did not name ran Chromium; `ff` is named Firefox
        let workers = vec![crate::events::WorkerInfo {
            id: "ff".into(),
            browser: "firefox".into(),
            webgpu_adapter: "software".into(),
            endpoint: "managed".into(),
        }];
        m.on_event(&EventRecord {
            at: UNIX_EPOCH,
            corr: String::new(),
            phase: None,
            event: Event::CampaignStarted {
                profile: "custom".into(),
                config_source: "c.toml".into(),
                phases: 1,
                planned_ms: 1000,
                pid: 1,
                pass_phase_ratio: None,
                pass_success_rate: None,
                faults: Vec::new(),
                workers,
            },
        });
        for worker in ["ff", "cr"] {
            m.on_window(&WindowIn {
                phase: 0,
                worker,
                task: "webgpu",
                ops: OpsRow { start_ms: 0, end_ms: 1000, attempted: 3, succeeded: 3, hist: Some(&h) },
                failed: 0,
            });
        }
        m.finish();
        let page = render(&c, Some(&m), &[]);
        assert!(page.contains("id=\"c-browser-ops\"") && page.contains("id=\"c-browser-p95\""));
        assert!(page.contains("\"by_browser\":[{\"browser\":\"chromium\""), "the data has both browsers");
        assert!(page.contains("\"browser\":\"firefox\""));
    }
}
