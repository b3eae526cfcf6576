//! Time series for the charts: op throughput, success and latency percentiles, and guardian
//! samples, in time buckets of one width.
//!
//! The store keeps one window per session slot and second, and one guardian sample every
//! `sample_interval`: an 8-hour campaign has hundreds of thousands of rows, far more points than a
//! chart can show or a report should carry. The series bucket them: the width is chosen so that
//! the campaign fits in [`MAX_POINTS`] buckets (1 s for a quick campaign, 30 s for an overnight
//! one), and if a live campaign outgrows its plan, neighbouring buckets are merged two by two.
//!
//! Memory stays flat: a bucket keeps a latency histogram only while windows can still arrive for
//! it (the newest [`OPEN_BUCKETS`]); older ones keep their three percentiles. Percentiles are
//! exact per bucket (histograms merged), except after a live merge, where a merged bucket shows
//! the worse of its two percentiles.
//!
//! Everything is a function of the rows fed in, in order: the report built from a store is the
//! same bytes every time.

use crate::guardian::Thresholds;
use crate::guardian::PRESSURE_STALL_PERCENT;
use crate::metrics::{new_histogram, LatencySummary};
use crate::store::HostFigures;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Buckets a chart shows at most before they are merged (a live run longer than planned).
pub const MAX_POINTS: usize = 1000;
/// Buckets, counted back from the newest, that still accept latency histograms: windows of
/// different slots end at different times and reach the store up to about a second late.
pub const OPEN_BUCKETS: i64 = 3;
/// Bucket widths, ms: the smallest that fits the campaign in [`MAX_POINTS`] is used.
const WIDTHS_MS: [i64; 14] =
    [1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000];

/// The bucket width for a campaign spanning `span_ms`.
pub fn bucket_width(span_ms: i64) -> i64 {
    WIDTHS_MS.iter().copied().find(|w| span_ms / w < MAX_POINTS as i64).unwrap_or(WIDTHS_MS[WIDTHS_MS.len() - 1])
}

fn round3(v: f64) -> f64 {
    crate::fmt::round3(v)
}

/// Counts and latencies of the ops of one bucket (all of them, or one browser's).
#[derive(Default)]
struct Part {
    attempted: u64,
    succeeded: u64,
    /// While the bucket is open.
    hist: Option<Box<Histogram<u64>>>,
    /// Once it is closed: p50, p95, p99 in ms (None without latency data).
    closed: Option<[f64; 3]>,
}

impl Part {
    fn open() -> Part {
        Part { hist: Some(Box::new(new_histogram())), ..Part::default() }
    }

    fn add(&mut self, r: &OpsRow<'_>) {
        self.attempted += r.attempted;
        self.succeeded += r.succeeded;
        if let (Some(acc), Some(h)) = (self.hist.as_mut(), r.hist) {
            let _ = acc.add(h);
        }
    }

    fn percentiles(&self) -> Option<[f64; 3]> {
        match &self.hist {
            Some(h) if !h.is_empty() => {
                let s = LatencySummary::of(h);
                Some([s.p50, s.p95, s.p99])
            }
            Some(_) => None,
            None => self.closed,
        }
    }

    /// Keeps the percentiles, drops the histogram. Whether it was open.
    fn close(&mut self) -> bool {
        let Some(h) = self.hist.take() else { return false };
        self.closed = (!h.is_empty()).then(|| {
            let s = LatencySummary::of(&h);
            [s.p50, s.p95, s.p99]
        });
        true
    }

    /// Merges a closed part into this closed one (percentiles: the worse of the two).
    fn merge_closed(&mut self, b: Part) {
        self.attempted += b.attempted;
        self.succeeded += b.succeeded;
        self.closed = match (self.closed, b.closed) {
            (Some(x), Some(y)) => Some([x[0].max(y[0]), x[1].max(y[1]), x[2].max(y[2])]),
            (x, y) => x.or(y),
        };
    }
}

/// Ops of one bucket.
struct OpsBucket {
    /// Earliest window start and latest window end seen: the time the bucket really covers (a
    /// phase that starts mid-bucket must not look slow).
    first_ms: i64,
    last_ms: i64,
    /// Every op.
    all: Part,
    /// Per browser, indexed as [`OpsSeries::browsers`] (shorter when the later ones ran none).
    by_browser: Vec<Part>,
}

impl OpsBucket {
    /// Keeps the percentiles, drops the histograms. Whether it was open.
    fn close(&mut self) -> bool {
        let open = self.all.close();
        for p in &mut self.by_browser {
            p.close();
        }
        open
    }

    /// The time the bucket covers, seconds: whole seconds (windows are about a second long), so a
    /// full bucket is its width.
    fn covered_s(&self, key: i64, width: i64) -> f64 {
        let from = self.first_ms.max(key);
        let to = self.last_ms.min(key + width);
        ((to - from) as f64 / 1000.0).ceil().clamp(1.0, width as f64 / 1000.0)
    }
}

/// Op throughput, success rate and latency over time, in all and per browser.
pub struct OpsSeries {
    width: i64,
    buckets: BTreeMap<i64, OpsBucket>,
    newest: i64,
    /// The browsers seen, in order of appearance (a bucket's `by_browser` index).
    browsers: Vec<String>,
}

/// One window of ops, as the store has it.
pub struct OpsRow<'a> {
    /// Window start, ms since the epoch.
    pub start_ms: i64,
    /// Window end, ms since the epoch.
    pub end_ms: i64,
    /// Ops started.
    pub attempted: u64,
    /// Ops that succeeded.
    pub succeeded: u64,
    /// Latencies (µs), when the window's histogram decoded.
    pub hist: Option<&'a Histogram<u64>>,
}

impl OpsSeries {
    /// Empty series of buckets `width_ms` wide.
    pub fn new(width_ms: i64) -> OpsSeries {
        OpsSeries { width: width_ms.max(1), buckets: BTreeMap::new(), newest: i64::MIN, browsers: Vec::new() }
    }

    /// The bucket width, ms.
    pub fn width(&self) -> i64 {
        self.width
    }

    /// Adds a window (bucketed by its end), run by `browser` (None: no browser, e.g. synthetic
    /// ops, which count in the totals only).
    pub fn add(&mut self, r: &OpsRow<'_>, browser: Option<&str>) {
        let key = r.end_ms.div_euclid(self.width) * self.width;
        let open = key > self.newest.saturating_sub(OPEN_BUCKETS * self.width);
        let b = self.buckets.entry(key).or_insert_with(|| OpsBucket {
            first_ms: r.start_ms,
            last_ms: r.end_ms,
            all: if open { Part::open() } else { Part::default() },
            by_browser: Vec::new(),
        });
        b.all.add(r);
        b.first_ms = b.first_ms.min(r.start_ms);
        b.last_ms = b.last_ms.max(r.end_ms);
        if let Some(name) = browser {
            let i = match self.browsers.iter().position(|n| n == name) {
                Some(i) => i,
                None => {
                    self.browsers.push(name.to_string());
                    self.browsers.len() - 1
                }
            };
            let still_open = b.all.hist.is_some();
            while b.by_browser.len() <= i {
                b.by_browser.push(if still_open { Part::open() } else { Part::default() });
            }
            b.by_browser[i].add(r);
        }
        if key > self.newest {
            self.newest = key;
            self.close_older_than(key - (OPEN_BUCKETS - 1) * self.width);
        }
        if self.buckets.len() > 2 * MAX_POINTS {
            self.coarsen();
        }
    }

    fn close_older_than(&mut self, limit: i64) {
        for (_, b) in self.buckets.range_mut(..limit).rev() {
            if !b.close() {
                break;
            }
        }
    }

    /// Closes every bucket (the data is complete).
    pub fn finish(&mut self) {
        self.close_older_than(i64::MAX);
    }

    /// Doubles the width: buckets merge two by two (percentiles: the worse of the two).
    fn coarsen(&mut self) {
        self.finish();
        let width = self.width * 2;
        let mut merged: BTreeMap<i64, OpsBucket> = BTreeMap::new();
        for (k, b) in std::mem::take(&mut self.buckets) {
            let key = k.div_euclid(width) * width;
            match merged.get_mut(&key) {
                None => {
                    merged.insert(key, b);
                }
                Some(m) => {
                    m.first_ms = m.first_ms.min(b.first_ms);
                    m.last_ms = m.last_ms.max(b.last_ms);
                    m.all.merge_closed(b.all);
                    for (i, p) in b.by_browser.into_iter().enumerate() {
                        match m.by_browser.get_mut(i) {
                            Some(mp) => mp.merge_closed(p),
                            None => m.by_browser.push(p),
                        }
                    }
                }
            }
        }
        self.buckets = merged;
        self.width = width;
    }

    /// The chart columns. A gap of more than two buckets without ops (a cooldown, between
    /// phases) is a `null` point, so the lines break there instead of bridging it.
    pub fn columns(&self) -> OpsColumns {
        let mut c = OpsColumns::default();
        let mut order: Vec<usize> = (0..self.browsers.len()).collect();
        order.sort_by(|a, b| self.browsers[*a].cmp(&self.browsers[*b]));
        c.by_browser = order.iter().map(|i| BrowserColumns { browser: self.browsers[*i].clone(), ..BrowserColumns::default() }).collect();
        let mut prev: Option<i64> = None;
        for (&k, b) in &self.buckets {
            if prev.is_some_and(|p| k - p > 2 * self.width) {
                c.push_gap((prev.unwrap_or(k) + self.width) as f64 / 1000.0);
            }
            prev = Some(k);
            let covered_s = b.covered_s(k, self.width);
            let p = b.all.percentiles();
            c.t.push(k as f64 / 1000.0);
            c.ops_per_s.push(Some(round3(b.all.attempted as f64 / covered_s)));
            c.success_pct.push(success(&b.all));
            c.p50_ms.push(p.map(|p| round3(p[0])));
            c.p95_ms.push(p.map(|p| round3(p[1])));
            c.p99_ms.push(p.map(|p| round3(p[2])));
            for (col, i) in c.by_browser.iter_mut().zip(&order) {
                let part = b.by_browser.get(*i);
                col.ops_per_s.push(Some(round3(part.map_or(0, |p| p.attempted) as f64 / covered_s)));
                col.success_pct.push(part.and_then(success));
                col.p95_ms.push(part.and_then(Part::percentiles).map(|p| round3(p[1])));
            }
        }
        c
    }
}

fn success(p: &Part) -> Option<f64> {
    (p.attempted > 0).then(|| round3(p.succeeded as f64 / p.attempted as f64 * 100.0))
}

/// Op chart columns (uPlot's data layout: one x array, one array per series).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OpsColumns {
    /// Bucket start, seconds since the epoch.
    pub t: Vec<f64>,
    /// Ops started per second.
    pub ops_per_s: Vec<Option<f64>>,
    /// Succeeded / attempted, percent.
    pub success_pct: Vec<Option<f64>>,
    /// Latency p50, ms.
    pub p50_ms: Vec<Option<f64>>,
    /// Latency p95, ms.
    pub p95_ms: Vec<Option<f64>>,
    /// Latency p99, ms.
    pub p99_ms: Vec<Option<f64>>,
    /// The same buckets per browser that ran ops, by name (the pages draw them when there are
    /// two or more: a Chromium and a Firefox run side by side, told apart).
    pub by_browser: Vec<BrowserColumns>,
}

/// One browser's op columns, on [`OpsColumns::t`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BrowserColumns {
    /// `chromium`, `firefox`.
    pub browser: String,
    /// Its ops started per second (0 in a bucket where it ran none).
    pub ops_per_s: Vec<Option<f64>>,
    /// Its success rate, percent.
    pub success_pct: Vec<Option<f64>>,
    /// Its latency p95, ms.
    pub p95_ms: Vec<Option<f64>>,
}

impl OpsColumns {
    fn push_gap(&mut self, t: f64) {
        self.t.push(t);
        self.ops_per_s.push(None);
        self.success_pct.push(None);
        self.p50_ms.push(None);
        self.p95_ms.push(None);
        self.p99_ms.push(None);
        for b in &mut self.by_browser {
            b.ops_per_s.push(None);
            b.success_pct.push(None);
            b.p95_ms.push(None);
        }
    }
}

/// One guardian sample, as the store has it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SampleRow {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// Phase index, when one ran.
    pub phase: Option<u32>,
    /// System CPU, percent.
    pub cpu: f64,
    /// Memory in use, percent.
    pub memory: f64,
    /// Disk of the output dir, percent.
    pub disk: f64,
    /// RSS of the browsers and drivers, bytes.
    pub tree_rss: u64,
    /// Health score, 0–100.
    pub health: f64,
    /// Whether the sample was over a threshold.
    pub violating: bool,
    /// What was left for the host (None in a store from before it was recorded).
    pub host: Option<HostFigures>,
}

/// Guardian samples of one bucket: the worst of each (a spike must not be averaged away).
#[derive(Clone, Copy)]
struct ResBucket {
    cpu: f64,
    memory: f64,
    disk: f64,
    rss: u64,
    health: f64,
    limits: Option<(f64, f64, f64)>,
    /// The host's side (worst of the bucket: highest demand and stall, lowest headroom).
    host: Option<HostBucket>,
}

/// The host's figures of one bucket.
#[derive(Clone, Copy)]
struct HostBucket {
    demand: f64,
    campaign: f64,
    cap: Option<f64>,
    stall: Option<f64>,
}

impl HostBucket {
    fn of(h: &HostFigures) -> HostBucket {
        HostBucket { demand: h.demand(), campaign: h.campaign_cpu, cap: h.cpu_cap, stall: h.stall() }
    }

    fn worst(a: Option<HostBucket>, b: Option<HostBucket>) -> Option<HostBucket> {
        let max = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
        match (a, b) {
            (Some(a), Some(b)) => Some(HostBucket {
                demand: a.demand.max(b.demand),
                campaign: a.campaign.max(b.campaign),
                cap: max(a.cap, b.cap),
                stall: max(a.stall, b.stall),
            }),
            (a, b) => a.or(b),
        }
    }
}

/// Resources over time, with the thresholds in force.
pub struct ResourceSeries {
    width: i64,
    buckets: BTreeMap<i64, ResBucket>,
}

impl ResourceSeries {
    /// Empty series of buckets `width_ms` wide.
    pub fn new(width_ms: i64) -> ResourceSeries {
        ResourceSeries { width: width_ms.max(1), buckets: BTreeMap::new() }
    }

    /// Adds a sample; `limits` are the thresholds in force for it, when known.
    pub fn add(&mut self, s: &SampleRow, limits: Option<&Thresholds>) {
        let key = s.at_ms.div_euclid(self.width) * self.width;
        let lim = limits.map(|t| (t.cpu_percent, t.memory_percent, t.disk_percent));
        let b = self.buckets.entry(key).or_insert(ResBucket {
            cpu: 0.0,
            memory: 0.0,
            disk: 0.0,
            rss: 0,
            health: 100.0,
            limits: lim,
            host: None,
        });
        b.host = HostBucket::worst(b.host, s.host.as_ref().map(HostBucket::of));
        b.cpu = b.cpu.max(s.cpu);
        b.memory = b.memory.max(s.memory);
        b.disk = b.disk.max(s.disk);
        b.rss = b.rss.max(s.tree_rss);
        b.health = b.health.min(s.health);
        b.limits = lim.or(b.limits);
        if self.buckets.len() > 2 * MAX_POINTS {
            self.coarsen();
        }
    }

    fn coarsen(&mut self) {
        let width = self.width * 2;
        let mut merged: BTreeMap<i64, ResBucket> = BTreeMap::new();
        for (k, b) in std::mem::take(&mut self.buckets) {
            let key = k.div_euclid(width) * width;
            merged
                .entry(key)
                .and_modify(|m| {
                    m.cpu = m.cpu.max(b.cpu);
                    m.memory = m.memory.max(b.memory);
                    m.disk = m.disk.max(b.disk);
                    m.rss = m.rss.max(b.rss);
                    m.health = m.health.min(b.health);
                    m.limits = b.limits.or(m.limits);
                    m.host = HostBucket::worst(m.host, b.host);
                })
                .or_insert(b);
        }
        self.buckets = merged;
        self.width = width;
    }

    /// The chart columns; a gap of more than max(3 buckets, 10 s) without samples is a `null`.
    pub fn columns(&self) -> ResourceColumns {
        let mut c = ResourceColumns::default();
        let mut prev: Option<i64> = None;
        let gap = (3 * self.width).max(10_000);
        for (&k, b) in &self.buckets {
            if let Some(p) = prev.filter(|p| k - p > gap) {
                c.t.push((p + self.width) as f64 / 1000.0);
                for col in c.value_columns() {
                    col.push(None);
                }
            }
            prev = Some(k);
            c.t.push(k as f64 / 1000.0);
            c.cpu.push(Some(round3(b.cpu)));
            c.memory.push(Some(round3(b.memory)));
            c.disk.push(Some(round3(b.disk)));
            c.tree_rss_mb.push(Some(round3(b.rss as f64 / (1024.0 * 1024.0))));
            c.health.push(Some(round3(b.health)));
            c.cpu_limit.push(b.limits.map(|l| round3(l.0)));
            c.memory_limit.push(b.limits.map(|l| round3(l.1)));
            c.disk_limit.push(b.limits.map(|l| round3(l.2)));
            let h = b.host;
            c.host_demand.push(h.map(|h| round3(h.demand)));
            c.campaign_cpu.push(h.map(|h| round3(h.campaign)));
            c.cpu_cap.push(h.and_then(|h| h.cap).map(round3));
            c.stall.push(h.and_then(|h| h.stall).map(round3));
            c.stall_limit.push(h.and_then(|h| h.stall).map(|_| PRESSURE_STALL_PERCENT));
        }
        c
    }
}

/// Resource chart columns.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ResourceColumns {
    /// Bucket start, seconds since the epoch.
    pub t: Vec<f64>,
    /// System CPU, percent (worst in the bucket).
    pub cpu: Vec<Option<f64>>,
    /// Memory, percent.
    pub memory: Vec<Option<f64>>,
    /// Disk, percent.
    pub disk: Vec<Option<f64>>,
    /// Browsers' and drivers' RSS, MiB.
    pub tree_rss_mb: Vec<Option<f64>>,
    /// Health score (lowest in the bucket).
    pub health: Vec<Option<f64>>,
    /// CPU threshold in force, percent.
    pub cpu_limit: Vec<Option<f64>>,
    /// Memory threshold in force, percent.
    pub memory_limit: Vec<Option<f64>>,
    /// Disk threshold in force, percent.
    pub disk_limit: Vec<Option<f64>>,
    /// The host's CPU demand (used + waited for, outside the campaign), percent of all cores: what
    /// the CPU threshold judges while the campaign is confined; 100 minus it is the host's headroom.
    pub host_demand: Vec<Option<f64>>,
    /// The campaign's CPU (its cgroup or tree, plus the daemon), percent of all cores.
    pub campaign_cpu: Vec<Option<f64>>,
    /// The campaign's CPU cap (the reservation), percent of all cores; null while unconfined.
    pub cpu_cap: Vec<Option<f64>>,
    /// The host's stall (larger of memory and io full pressure), percent; null without PSI.
    pub stall: Vec<Option<f64>>,
    /// The pressure threshold, percent, where there is PSI.
    pub stall_limit: Vec<Option<f64>>,
}

impl ResourceColumns {
    fn value_columns(&mut self) -> [&mut Vec<Option<f64>>; 13] {
        [
            &mut self.host_demand,
            &mut self.campaign_cpu,
            &mut self.cpu_cap,
            &mut self.stall,
            &mut self.stall_limit,
            &mut self.cpu,
            &mut self.memory,
            &mut self.disk,
            &mut self.tree_rss_mb,
            &mut self.health,
            &mut self.cpu_limit,
            &mut self.memory_limit,
            &mut self.disk_limit,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::record_latency;
    use std::time::Duration;

    fn hist(ms: &[u64]) -> Histogram<u64> {
        let mut h = new_histogram();
        for m in ms {
            record_latency(&mut h, Duration::from_millis(*m));
        }
        h
    }

    #[test]
    fn widths_fit_the_campaign_in_max_points() {
        assert_eq!(bucket_width(60_000), 1_000);
        assert_eq!(bucket_width(8 * 3600 * 1000), 30_000);
        assert!(8 * 3600 * 1000 / bucket_width(8 * 3600 * 1000) < MAX_POINTS as i64);
        assert_eq!(bucket_width(i64::MAX), 7_200_000);
    }

    #[test]
    fn buckets_sum_counts_and_merge_latencies_exactly() {
        let mut s = OpsSeries::new(1000);
        let a = hist(&[10, 10, 10]);
        let b = hist(&[100]);
        s.add(&OpsRow { start_ms: 0, end_ms: 900, attempted: 3, succeeded: 3, hist: Some(&a) }, None);
        s.add(&OpsRow { start_ms: 100, end_ms: 999, attempted: 1, succeeded: 0, hist: Some(&b) }, None);
        s.add(&OpsRow { start_ms: 1000, end_ms: 1999, attempted: 2, succeeded: 2, hist: Some(&a) }, None);
        s.finish();
        let c = s.columns();
        assert_eq!(c.t, vec![0.0, 1.0]);
        assert_eq!(c.ops_per_s, vec![Some(4.0), Some(2.0)]);
        assert_eq!(c.success_pct, vec![Some(75.0), Some(100.0)]);
        // p99 of {10,10,10,100} is 100 ms: the histograms were merged, not averaged
        assert!(c.p99_ms[0].unwrap() >= 99.0 && c.p50_ms[0].unwrap() < 11.0, "{c:?}");
    }

    #[test]
    fn each_browser_has_its_own_columns_on_the_shared_buckets() {
        let mut s = OpsSeries::new(1000);
        let (fast, slow) = (hist(&[10, 10]), hist(&[200]));
        s.add(&OpsRow { start_ms: 0, end_ms: 999, attempted: 2, succeeded: 2, hist: Some(&fast) }, Some("firefox"));
        s.add(&OpsRow { start_ms: 0, end_ms: 999, attempted: 1, succeeded: 0, hist: Some(&slow) }, Some("chromium"));
        s.add(&OpsRow { start_ms: 0, end_ms: 999, attempted: 5, succeeded: 5, hist: None }, None);
        s.add(&OpsRow { start_ms: 1000, end_ms: 1999, attempted: 4, succeeded: 4, hist: Some(&fast) }, Some("firefox"));
        s.finish();
        let c = s.columns();
        assert_eq!(c.ops_per_s, vec![Some(8.0), Some(4.0)], "the totals count every op, synthetic ones too");
        let names: Vec<&str> = c.by_browser.iter().map(|b| b.browser.as_str()).collect();
        assert_eq!(names, vec!["chromium", "firefox"], "by name, whatever came first");
        let (ch, ff) = (&c.by_browser[0], &c.by_browser[1]);
        assert_eq!(ch.ops_per_s, vec![Some(1.0), Some(0.0)], "no op in a bucket is a rate of 0");
        assert_eq!(ff.ops_per_s, vec![Some(2.0), Some(4.0)]);
        assert_eq!(ch.success_pct, vec![Some(0.0), None]);
        assert!(ch.p95_ms[0].is_some_and(|p| p >= 199.0) && ch.p95_ms[1].is_none(), "{ch:?}");
        assert!(ff.p95_ms.iter().all(|p| p.is_some_and(|p| p < 11.0)), "{ff:?}");
        for b in &c.by_browser {
            assert_eq!(b.ops_per_s.len(), c.t.len());
        }
    }

    #[test]
    fn a_long_gap_breaks_the_line() {
        let mut s = OpsSeries::new(1000);
        s.add(&OpsRow { start_ms: 0, end_ms: 999, attempted: 1, succeeded: 1, hist: None }, None);
        s.add(&OpsRow { start_ms: 9000, end_ms: 9999, attempted: 1, succeeded: 1, hist: None }, None);
        let c = s.columns();
        assert_eq!(c.t, vec![0.0, 1.0, 9.0]);
        assert_eq!(c.ops_per_s[1], None);
    }

    #[test]
    fn a_run_longer_than_planned_is_merged_and_stays_bounded() {
        let mut s = OpsSeries::new(1000);
        let h = hist(&[5]);
        for i in 0..3 * MAX_POINTS as i64 {
            s.add(&OpsRow { start_ms: i * 1000, end_ms: i * 1000 + 999, attempted: 10, succeeded: 10, hist: Some(&h) }, None);
        }
        let c = s.columns();
        assert!(c.t.len() <= 2 * MAX_POINTS, "{}", c.t.len());
        assert!(s.width() > 1000);
        // the rate is still per second
        assert!(c.ops_per_s.iter().skip(1).take(10).all(|v| *v == Some(10.0)), "{:?}", &c.ops_per_s[..10]);
        assert!(c.p95_ms.iter().flatten().all(|p| (*p - 5.0).abs() < 0.1));
    }

    #[test]
    fn resources_keep_the_worst_sample_and_the_limits() {
        let mut r = ResourceSeries::new(10_000);
        let t = Thresholds {
            memory_percent: 80.0,
            cpu_percent: 85.0,
            disk_percent: 90.0,
            min_free_memory_mb: 0.0,
            min_free_disk_mb: 0.0,
            consecutive_violations: 3,
        };
        let s = |at_ms, cpu, health| SampleRow { at_ms, cpu, health, memory: 50.0, disk: 10.0, tree_rss: 1 << 20, ..Default::default() };
        r.add(&s(0, 20.0, 90.0), Some(&t));
        r.add(&s(2000, 95.0, 40.0), Some(&t));
        let c = r.columns();
        assert_eq!(c.cpu, vec![Some(95.0)]);
        assert_eq!(c.health, vec![Some(40.0)]);
        assert_eq!(c.cpu_limit, vec![Some(85.0)]);
        assert_eq!(c.tree_rss_mb, vec![Some(1.0)]);
    }
}
