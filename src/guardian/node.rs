//! The guardian's view of a remote node: what its Prometheus node_exporter says, and whether the
//! node is to be drained.
//!
//! The orchestrator's own host is read from /proc ([`super::sampler`]); a node on another machine
//! only through its exporter's `/metrics` (the Prometheus text format). This module holds the pure
//! parts: [`parse`] reads the counters and gauges one scrape gives, [`NodeReading::between`] turns
//! two scrapes into percentages (CPU and pressure are counters, so a rate needs the previous
//! scrape), and [`NodeJudge`] decides when a node is drained and when it is given work again.
//!
//! Why drain rather than stop: one node out of several running out of memory is the node's
//! problem, not the campaign's; its work can move to the others. Only the orchestrator's own
//! host (the guardian as before) or the last node stops the campaign.

use super::{Metric, Thresholds, Violation, PRESSURE_STALL_PERCENT};
use std::time::{Duration, Instant};

/// The figures of one scrape that the guardian judges. Counters are seconds since the node booted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeScrape {
    /// Sum over CPUs and modes of `node_cpu_seconds_total`.
    pub cpu_total_seconds: f64,
    /// The part of it in `idle` and `iowait` (not running anything).
    pub cpu_idle_seconds: f64,
    /// `node_memory_MemTotal_bytes`.
    pub memory_total_bytes: f64,
    /// `node_memory_MemAvailable_bytes`.
    pub memory_available_bytes: f64,
    /// `node_filesystem_size_bytes{mountpoint="/"}`; 0 when the exporter does not list `/`.
    pub root_size_bytes: f64,
    /// `node_filesystem_avail_bytes{mountpoint="/"}`.
    pub root_avail_bytes: f64,
    /// `node_pressure_memory_stalled_seconds_total` (the `full` memory stall), where the node's
    /// kernel has PSI.
    pub memory_stalled_seconds: Option<f64>,
    /// `node_pressure_io_stalled_seconds_total` (the `full` io stall).
    pub io_stalled_seconds: Option<f64>,
}

/// Reads a node_exporter `/metrics` text (Prometheus text format 0.0.4: `name{labels} value
/// [timestamp]` lines, `#` comments). Err when the memory gauges are missing: not a
/// node_exporter, or one whose meminfo collector is off, which leaves nothing to judge by.
pub fn parse(text: &str) -> Result<NodeScrape, String> {
    let mut s = NodeScrape::default();
    let (mut mem_total, mut mem_avail) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, labels, value)) = sample_line(line) else { continue };
        match name {
            "node_cpu_seconds_total" => {
                s.cpu_total_seconds += value;
                if matches!(label(labels, "mode"), Some("idle" | "iowait")) {
                    s.cpu_idle_seconds += value;
                }
            }
            "node_memory_MemTotal_bytes" => mem_total = Some(value),
            "node_memory_MemAvailable_bytes" => mem_avail = Some(value),
            "node_filesystem_size_bytes" if label(labels, "mountpoint") == Some("/") => s.root_size_bytes = value,
            "node_filesystem_avail_bytes" if label(labels, "mountpoint") == Some("/") => s.root_avail_bytes = value,
            "node_pressure_memory_stalled_seconds_total" => s.memory_stalled_seconds = Some(value),
            "node_pressure_io_stalled_seconds_total" => s.io_stalled_seconds = Some(value),
            _ => {}
        }
    }
    match (mem_total, mem_avail) {
        (Some(t), Some(a)) if t > 0.0 => {
            s.memory_total_bytes = t;
            s.memory_available_bytes = a;
            Ok(s)
        }
        _ => Err("no node_memory_MemTotal_bytes/node_memory_MemAvailable_bytes: not a node_exporter /metrics?".into()),
    }
}

/// Splits `name{a="b",c="d"} value [timestamp]` into the name, the label text and the value.
fn sample_line(line: &str) -> Option<(&str, &str, f64)> {
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line[open..].rfind('}')? + open;
            (&line[..open], &line[open + 1..close], &line[close + 1..])
        }
        None => {
            let sp = line.find(char::is_whitespace)?;
            (&line[..sp], "", &line[sp..])
        }
    };
    let value = rest.split_whitespace().next()?;
    let v = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some((name.trim(), labels, v))
}

/// The value of label `key` in a label text `a="b",c="d"` (escapes are left as written: the
/// labels read here never have any).
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let mut rest = labels;
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let k = rest[..eq].trim().trim_start_matches(',').trim();
        let after = rest[eq + 1..].strip_prefix('"')?;
        // the closing quote: the first one not escaped
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let end = end?;
        if k == key {
            return Some(&after[..end]);
        }
        rest = after[end + 1..].trim_start_matches(',');
    }
    None
}

/// A node's state in percent, as the guardian judges it.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct NodeReading {
    /// CPU busy (not idle, not iowait), percent of all its cores, since the previous scrape;
    /// None on the first scrape (a counter needs two).
    pub cpu_percent: Option<f64>,
    /// Memory in use (total less available), percent of total.
    pub memory_percent: f64,
    /// Used percent of the root filesystem; None when the exporter does not list `/`.
    pub disk_percent: Option<f64>,
    /// The larger of the memory and io `full` stall since the previous scrape, percent of the time;
    /// None without PSI or on the first scrape.
    pub pressure_percent: Option<f64>,
}

impl NodeReading {
    /// The reading of `cur`, with the rates since `prev` (the node's previous scrape, `elapsed`
    /// before). A counter that went back (the node rebooted, the exporter restarted) gives no rate.
    pub fn between(prev: Option<&NodeScrape>, cur: &NodeScrape, elapsed: Duration) -> NodeReading {
        let memory_percent = 100.0 * (1.0 - cur.memory_available_bytes / cur.memory_total_bytes).clamp(0.0, 1.0);
        let disk_percent = (cur.root_size_bytes > 0.0).then(|| 100.0 * (1.0 - cur.root_avail_bytes / cur.root_size_bytes).clamp(0.0, 1.0));
        let cpu_percent = prev.and_then(|p| {
            let total = cur.cpu_total_seconds - p.cpu_total_seconds;
            let idle = cur.cpu_idle_seconds - p.cpu_idle_seconds;
            (total > 0.0 && idle >= 0.0).then(|| (100.0 * (1.0 - idle / total)).clamp(0.0, 100.0))
        });
        let secs = elapsed.as_secs_f64();
        let rate = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if secs > 0.0 && b >= a => Some((100.0 * (b - a) / secs).clamp(0.0, 100.0)),
            _ => None,
        };
        let pressure_percent = prev.and_then(|p| {
            let mem = rate(p.memory_stalled_seconds, cur.memory_stalled_seconds);
            let io = rate(p.io_stalled_seconds, cur.io_stalled_seconds);
            match (mem, io) {
                (Some(m), Some(i)) => Some(m.max(i)),
                (m, i) => m.or(i),
            }
        });
        NodeReading { cpu_percent, memory_percent, disk_percent, pressure_percent }
    }

    /// The metrics over their limits in `t`, worst (largest excess over the limit) first. A node
    /// is judged on its total CPU (it runs nothing but the campaign's browsers, there is no
    /// confinement to see through) and on the pressure stall, like the host.
    pub fn violations(&self, t: &Thresholds) -> Vec<Violation> {
        let mut out: Vec<Violation> = [
            (Metric::Memory, Some(self.memory_percent), t.memory_percent),
            (Metric::Cpu, self.cpu_percent, t.cpu_percent),
            (Metric::Disk, self.disk_percent, t.disk_percent),
            (Metric::Pressure, self.pressure_percent, PRESSURE_STALL_PERCENT),
        ]
        .into_iter()
        .filter_map(|(metric, v, threshold)| {
            v.filter(|v| metric.violates(*v, threshold)).map(|value| Violation { metric, value, threshold })
        })
        .collect();
        out.sort_by(|a, b| (b.value - b.threshold).total_cmp(&(a.value - a.threshold)));
        out
    }
}

/// The reason a node is drained for a violation: `node_distress: memory 93 % > 90 %`.
pub fn distress_reason(v: &Violation) -> String {
    format!("node_distress: {} {:.0} % > {:.0} %", v.metric.as_str(), v.value, v.threshold)
}

/// What one observation of a node asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeVerdict {
    /// Nothing changes.
    Keep,
    /// Drain it: force its breaker open, with this reason.
    Drain(String),
    /// It has been under the limits (and answering) for the recovery time: give it work again.
    Reopen(String),
}

/// One node's streaks: `consecutive_violations` bad observations in a row drain it; being good
/// for `recovery` without a break reopens it.
#[derive(Clone, Debug, Default)]
pub struct NodeJudge {
    streak: u32,
    drained: bool,
    good_since: Option<Instant>,
}

impl NodeJudge {
    /// Whether the node is drained now.
    pub fn drained(&self) -> bool {
        self.drained
    }

    /// One observation at `now`: `bad` is the drain reason when the node is over a limit (or
    /// unwatched, where that drains), None when it is fine. `needed` bad ones in a row drain
    /// (0 counts as 1); `recovery` good ones without a break reopen.
    pub fn observe(&mut self, bad: Option<String>, needed: u32, recovery: Duration, now: Instant) -> NodeVerdict {
        match bad {
            Some(reason) => {
                self.good_since = None;
                self.streak = self.streak.saturating_add(1);
                if !self.drained && self.streak >= needed.max(1) {
                    self.drained = true;
                    return NodeVerdict::Drain(reason);
                }
                NodeVerdict::Keep
            }
            None => {
                self.streak = 0;
                if !self.drained {
                    return NodeVerdict::Keep;
                }
                let since = *self.good_since.get_or_insert(now);
                if now.duration_since(since) >= recovery {
                    self.drained = false;
                    self.good_since = None;
                    return NodeVerdict::Reopen(format!(
                        "node_recovered: under the limits for {}",
                        crate::fmt::fmt_duration(now.duration_since(since))
                    ));
                }
                NodeVerdict::Keep
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real `/metrics` of Debian's prometheus-node-exporter 1.5.0 on this project's build host.
    const CAPTURED: &str = include_str!("../../tests/fixtures/node_exporter_metrics.txt");

    fn thresholds(memory: f64) -> Thresholds {
        Thresholds {
            memory_percent: memory,
            cpu_percent: 85.0,
            disk_percent: 90.0,
            min_free_memory_mb: 0.0,
            min_free_disk_mb: 0.0,
            consecutive_violations: 2,
        }
    }

    #[test]
    fn a_captured_node_exporter_page_gives_every_figure() {
        let s = parse(CAPTURED).expect("parses");
        // the captured figures, as node_exporter printed them (two CPUs, 8 modes each)
        assert_eq!(s.memory_total_bytes, 2.5324961792e10);
        assert_eq!(s.memory_available_bytes, 2.3897255936e10);
        assert_eq!(s.root_size_bytes, 2.70553174016e11);
        assert_eq!(s.root_avail_bytes, 4.118192128e10);
        assert!((s.cpu_idle_seconds - (3359.55 + 30.29 + 3353.66 + 27.9)).abs() < 1e-6, "{}", s.cpu_idle_seconds);
        assert!(s.cpu_total_seconds > s.cpu_idle_seconds);
        assert_eq!(s.memory_stalled_seconds, Some(2.776933));
        assert_eq!(s.io_stalled_seconds, Some(31.142948));
        let r = NodeReading::between(None, &s, Duration::from_secs(2));
        assert!((r.memory_percent - 100.0 * (1.0 - 2.3897255936e10 / 2.5324961792e10)).abs() < 1e-9);
        assert!((r.disk_percent.unwrap() - 100.0 * (1.0 - 4.118192128e10 / 2.70553174016e11)).abs() < 1e-9);
        assert_eq!(r.cpu_percent, None, "one scrape gives no CPU rate");
        assert_eq!(r.pressure_percent, None);
    }

    #[test]
    fn text_format_details() {
        let text = "# HELP x y\n# TYPE node_memory_MemTotal_bytes gauge\nnode_memory_MemTotal_bytes 1000 1700000000000\n\
                    node_memory_MemAvailable_bytes 250\n\
                    node_filesystem_avail_bytes{device=\"a,b\",fstype=\"ext4\",mountpoint=\"/\"} 10\n\
                    node_filesystem_size_bytes{device=\"x\",mountpoint=\"/boot\"} 99\n\
                    node_filesystem_size_bytes{device=\"a\\\"q\",mountpoint=\"/\"} 40\n";
        let s = parse(text).unwrap();
        assert_eq!((s.memory_total_bytes, s.memory_available_bytes, s.root_avail_bytes, s.root_size_bytes), (1000.0, 250.0, 10.0, 40.0));
        let r = NodeReading::between(None, &s, Duration::from_secs(1));
        assert_eq!((r.memory_percent, r.disk_percent), (75.0, Some(75.0)));
        assert!(parse("# nothing\nfoo 1\n").is_err());
        assert!(parse("<html>not found</html>").is_err());
    }

    #[test]
    fn rates_between_two_scrapes() {
        let a = NodeScrape {
            cpu_total_seconds: 100.0,
            cpu_idle_seconds: 60.0,
            memory_total_bytes: 100.0,
            memory_available_bytes: 7.0,
            memory_stalled_seconds: Some(1.0),
            io_stalled_seconds: Some(5.0),
            ..NodeScrape::default()
        };
        // 2 s later, 2 cores: 4 CPU-seconds, 1 of them idle; memory stalled 1.4 s of 2
        let b = NodeScrape { cpu_total_seconds: 104.0, cpu_idle_seconds: 61.0, memory_stalled_seconds: Some(2.4), ..a.clone() };
        let r = NodeReading::between(Some(&a), &b, Duration::from_secs(2));
        assert_eq!(r.cpu_percent, Some(75.0));
        assert!((r.pressure_percent.unwrap() - 70.0).abs() < 1e-9);
        assert_eq!(r.memory_percent, 93.0);
        let v = r.violations(&thresholds(90.0));
        let metrics: Vec<Metric> = v.iter().map(|v| v.metric).collect();
        assert_eq!(metrics, [Metric::Pressure, Metric::Memory], "worst excess first (10 over against 3 over)");
        assert_eq!(distress_reason(&v[1]), "node_distress: memory 93 % > 90 %");
        // a counter that went back (exporter restarted) gives no rate
        let reset = NodeScrape { cpu_total_seconds: 1.0, cpu_idle_seconds: 0.5, memory_stalled_seconds: Some(0.0), ..b.clone() };
        let r = NodeReading::between(Some(&b), &reset, Duration::from_secs(2));
        assert_eq!(r.cpu_percent, None, "the CPU counters went back");
        assert_eq!(r.pressure_percent, Some(0.0), "io did not go back; memory did: only io's rate");
        assert!(NodeReading { memory_percent: 50.0, ..r }.violations(&thresholds(90.0)).is_empty());
    }

    #[test]
    fn drained_after_a_streak_reopened_after_the_recovery_time_under_the_limits() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let rec = Duration::from_secs(10);
        let bad = || Some("node_distress: memory 93 % > 90 %".to_string());
        let mut j = NodeJudge::default();
        assert_eq!(j.observe(bad(), 3, rec, s(0)), NodeVerdict::Keep);
        assert_eq!(j.observe(None, 3, rec, s(1)), NodeVerdict::Keep, "a good sample breaks the streak");
        assert_eq!(j.observe(bad(), 3, rec, s(2)), NodeVerdict::Keep);
        assert_eq!(j.observe(bad(), 3, rec, s(3)), NodeVerdict::Keep);
        assert_eq!(j.observe(bad(), 3, rec, s(4)), NodeVerdict::Drain("node_distress: memory 93 % > 90 %".into()));
        assert!(j.drained());
        assert_eq!(j.observe(bad(), 3, rec, s(5)), NodeVerdict::Keep, "drained once");
        assert_eq!(j.observe(None, 3, rec, s(6)), NodeVerdict::Keep);
        assert_eq!(j.observe(bad(), 3, rec, s(12)), NodeVerdict::Keep, "over again: the good time starts over");
        assert_eq!(j.observe(None, 3, rec, s(13)), NodeVerdict::Keep);
        assert_eq!(j.observe(None, 3, rec, s(22)), NodeVerdict::Keep);
        assert_eq!(j.observe(None, 3, rec, s(23)), NodeVerdict::Reopen("node_recovered: under the limits for 10s".into()));
        assert!(!j.drained());
        assert_eq!(j.observe(None, 3, rec, s(24)), NodeVerdict::Keep);
    }
}
