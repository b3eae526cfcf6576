//! Drift and leak verdicts: for every phase of at least `[campaign] drift_min_phase` and for the
//! campaign, the trends of browser memory per session (between recycles), in-page p95, GPU errors
//! and failure rate ([`super::drift`]), and the phase criteria `max_rss_growth_mb_per_h` and
//! `max_p95_drift_pct_per_h` judged on them: a phase fails only when the whole 95 % interval lies
//! above the limit, so noise never fails a night.

use super::drift::{median, theil_sen, Point, Slope};
use super::numbers::round3;
use crate::store::{PhaseInfo, StoreError, StoreReader};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A series is gathered into about this many time buckets (at least 1 s each): enough points for
/// a trend, enough ops per bucket for a p95.
const BUCKETS: u64 = 120;

/// Milliseconds per hour: slopes are per hour.
const HOUR_MS: f64 = 3_600_000.0;

/// One trend: the Theil–Sen slope per hour and its 95 % interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// Slope, in `unit`.
    pub slope: f64,
    /// Lower end of the 95 % interval.
    pub ci_low: f64,
    /// Upper end of the 95 % interval.
    pub ci_high: f64,
    /// `MiB/h`, `%/h` (of the median), `errors/min per h`, `pp/h` (percentage points).
    pub unit: String,
    /// Points the trend was estimated from (buckets; for memory, buckets of each session).
    pub points: u64,
    /// `rising` or `falling` when the interval excludes 0, else `no drift`.
    pub direction: String,
}

impl Trend {
    fn of(s: Slope, scale: f64, unit: &str) -> Trend {
        let (slope, ci_low, ci_high) = (round3(s.slope * scale), round3(s.low * scale), round3(s.high * scale));
        let direction = if ci_low > 0.0 {
            "rising"
        } else if ci_high < 0.0 {
            "falling"
        } else {
            "no drift"
        };
        Trend { slope, ci_low, ci_high, unit: unit.into(), points: s.points as u64, direction: direction.into() }
    }

    /// "+12.3 MiB/h (95 % CI 10.1…14.2)", or "no drift (… CI …)".
    pub fn describe(&self) -> String {
        let ci = format!("95 % CI {}…{}", signed(self.ci_low), signed(self.ci_high));
        if self.direction == "no drift" {
            format!("no drift ({} {}, {ci})", signed(self.slope), self.unit)
        } else {
            format!("{} {} ({ci})", signed(self.slope), self.unit)
        }
    }
}

/// A figure with its sign ("+1.5", "-0.2", "0").
fn signed(v: f64) -> String {
    if v > 0.0 {
        format!("+{v}")
    } else {
        format!("{v}")
    }
}

/// The trends of a phase or of the campaign. A trend is absent where its series had too few
/// points (or, for memory, no local browser was measured).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// Length of the time buckets the series were gathered into, seconds.
    pub bucket_s: f64,
    /// Browser memory (RSS of each local browser's process tree), per session between recycles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_rss: Option<Trend>,
    /// Browser sessions the memory trend followed.
    #[serde(default)]
    pub browser_sessions: u64,
    /// In-page p95 per bucket, percent of its median per hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_page_p95: Option<Trend>,
    /// The median of the buckets' in-page p95, ms (what the percentages are of).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_page_p95_median_ms: Option<f64>,
    /// GPU errors (`gpu_error` failures: adapter or device lost, validation) per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_errors: Option<Trend>,
    /// Failure rate per bucket, percentage points per hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<Trend>,
}

impl DriftReport {
    /// The trends in words, one line each ("browser memory +12 MiB/h (95 % CI …)").
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(t) = &self.browser_rss {
            out.push(format!("browser memory {} over {} session(s)", t.describe(), self.browser_sessions));
        }
        if let Some(t) = &self.in_page_p95 {
            let of = self.in_page_p95_median_ms.map(|m| format!(" of the median {m} ms")).unwrap_or_default();
            out.push(format!("in-page p95 {}{of}", t.describe()));
        }
        if let Some(t) = &self.gpu_errors {
            out.push(format!("GPU errors {}", t.describe()));
        }
        if let Some(t) = &self.failure_rate {
            out.push(format!("failure rate {}", t.describe()));
        }
        out
    }
}

/// What the drift analysis needs of the stored config: the shortest phase it analyses and each
/// phase's drift criteria (by index).
#[derive(Clone, Debug, Default)]
pub(super) struct DriftSettings {
    /// `[campaign] drift_min_phase`.
    pub(super) min_phase: Duration,
    /// Per phase index: `(max_rss_growth_mb_per_h, max_p95_drift_pct_per_h)`.
    pub(super) limits: Vec<(Option<f64>, Option<f64>)>,
}

impl DriftSettings {
    /// From the config the campaign stored (defaults, no limits, when it does not parse).
    pub(super) fn of(r: &StoreReader) -> Result<DriftSettings, StoreError> {
        let text = r.campaign()?.config_text;
        Ok(match crate::config::Config::parse(&text, "stored config") {
            Ok(cfg) => DriftSettings {
                min_phase: cfg.campaign.drift_min_phase(),
                limits: cfg.phases.iter().map(|p| (p.criteria.max_rss_growth_mb_per_h, p.criteria.max_p95_drift_pct_per_h)).collect(),
            },
            Err(_) => DriftSettings { min_phase: crate::config::DRIFT_MIN_PHASE, limits: Vec::new() },
        })
    }

    /// Phase `idx`'s limits.
    pub(super) fn limits_of(&self, idx: u32) -> (Option<f64>, Option<f64>) {
        self.limits.get(idx as usize).copied().unwrap_or((None, None))
    }
}

/// The bucket length for a series spanning `span_ms`.
fn bucket_ms(span_ms: u64) -> u64 {
    (span_ms / BUCKETS).div_ceil(1000).max(1) * 1000
}

/// The trends of phase `p` (None: of the whole campaign, spanning `span_ms`).
pub(super) fn analyse(r: &StoreReader, phase: Option<u32>, span_ms: u64) -> Result<DriftReport, StoreError> {
    let bucket = bucket_ms(span_ms);
    let buckets = r.window_buckets(phase, bucket)?;
    let rss = r.browser_rss(phase)?;
    // hours from the first bucket that holds a window or a sample
    let first_sample = rss.values().filter_map(|s| s.first()).map(|(at, _)| at / bucket * bucket).min();
    let t0 = buckets.first().map(|b| b.start_ms).into_iter().chain(first_sample).min().unwrap_or(0);
    let x = |ms: u64| (ms.saturating_sub(t0) as f64 + bucket as f64 / 2.0) / HOUR_MS;
    let minutes = bucket as f64 / 60_000.0;

    let p95: Vec<Point> =
        buckets.iter().filter_map(|b| b.in_page_p95_us.map(|us| Point { x: x(b.start_ms), y: us as f64 / 1000.0 })).collect();
    let p95_median = median(&p95.iter().map(|p| p.y).collect::<Vec<_>>());
    let in_page_p95 = match p95_median {
        Some(m) if m > 0.0 => theil_sen(&[p95]).map(|s| Trend::of(s, 100.0 / m, "%/h")),
        _ => None,
    };
    let with_ops: Vec<_> = buckets.iter().filter(|b| b.attempted > 0).collect();
    let gpu: Vec<Point> = with_ops.iter().map(|b| Point { x: x(b.start_ms), y: b.gpu_errors as f64 / minutes }).collect();
    let fail: Vec<Point> = with_ops.iter().map(|b| Point { x: x(b.start_ms), y: 100.0 * b.failed as f64 / b.attempted as f64 }).collect();

    // memory: each browser's samples, one median per bucket, a segment per browser
    let segments: Vec<Vec<Point>> = rss
        .values()
        .map(|samples| {
            let mut seg: Vec<Point> = Vec::new();
            let mut i = 0;
            while i < samples.len() {
                let start = samples[i].0 / bucket * bucket;
                let mut ys = Vec::new();
                while i < samples.len() && samples[i].0 / bucket * bucket == start {
                    ys.push(samples[i].1 as f64 / (1024.0 * 1024.0));
                    i += 1;
                }
                if let Some(y) = median(&ys) {
                    seg.push(Point { x: x(start), y });
                }
            }
            seg
        })
        .collect();
    Ok(DriftReport {
        bucket_s: round3(bucket as f64 / 1000.0),
        browser_rss: theil_sen(&segments).map(|s| Trend::of(s, 1.0, "MiB/h")),
        browser_sessions: segments.iter().filter(|s| s.len() >= 2).count() as u64,
        in_page_p95,
        in_page_p95_median_ms: p95_median.map(round3),
        gpu_errors: theil_sen(&[gpu]).map(|s| Trend::of(s, 1.0, "errors/min per h")),
        failure_rate: theil_sen(&[fail]).map(|s| Trend::of(s, 1.0, "pp/h")),
    })
}

/// Phase `p`'s drift report, when it ran at least `settings.min_phase`.
pub(super) fn phase_drift(r: &StoreReader, p: &PhaseInfo, settings: &DriftSettings) -> Result<Option<DriftReport>, StoreError> {
    if p.elapsed_ms < settings.min_phase.as_millis() as u64 {
        return Ok(None);
    }
    analyse(r, Some(p.idx), p.elapsed_ms).map(Some)
}

/// The drift criteria's failures (`failures`) and the criteria that could not be judged
/// (`not_judged`) of a phase with `drift` (None: not analysed) that ran `elapsed_ms`.
pub(super) fn judge(
    (rss_limit, p95_limit): (Option<f64>, Option<f64>),
    drift: Option<&DriftReport>,
    elapsed_ms: u64,
    settings: &DriftSettings,
) -> (Vec<String>, Vec<String>) {
    let (mut failures, mut not_judged) = (Vec::new(), Vec::new());
    let checks = [
        ("max_rss_growth_mb_per_h", "browser memory grew", rss_limit, drift.and_then(|d| d.browser_rss.as_ref())),
        ("max_p95_drift_pct_per_h", "in-page p95 drifted", p95_limit, drift.and_then(|d| d.in_page_p95.as_ref())),
    ];
    for (key, what, limit, trend) in checks {
        let Some(limit) = limit else { continue };
        match (drift, trend) {
            (None, _) => not_judged.push(format!(
                "{key} not judged: the phase ran {}, shorter than drift_min_phase {}",
                crate::fmt::fmt_duration(Duration::from_millis(elapsed_ms)),
                crate::fmt::fmt_duration(settings.min_phase)
            )),
            (Some(_), None) => not_judged.push(format!("{key} not judged: too few points for a trend")),
            (Some(_), Some(t)) if t.ci_low > limit => failures.push(format!(
                "{what} {} {} (95 % CI {}…{}), all of it above the limit of {limit} {}",
                signed(t.slope),
                t.unit,
                signed(t.ci_low),
                signed(t.ci_high),
                t.unit
            )),
            _ => {}
        }
    }
    (failures, not_judged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trend(slope: f64, low: f64, high: f64) -> Trend {
        Trend::of(Slope { slope, low, high, points: 40 }, 1.0, "MiB/h")
    }

    #[test]
    fn a_phase_fails_only_when_the_whole_interval_is_above_the_limit() {
        let settings = DriftSettings { min_phase: Duration::from_secs(300), limits: Vec::new() };
        let drift = |t: Trend| DriftReport {
            bucket_s: 3.0,
            browser_rss: Some(t),
            browser_sessions: 2,
            in_page_p95: None,
            in_page_p95_median_ms: None,
            gpu_errors: None,
            failure_rate: None,
        };
        let above = drift(trend(60.0, 51.0, 70.0));
        let (f, n) = judge((Some(50.0), None), Some(&above), 600_000, &settings);
        assert_eq!(f, ["browser memory grew +60 MiB/h (95 % CI +51…+70), all of it above the limit of 50 MiB/h"]);
        assert!(n.is_empty());
        // the interval reaches below the limit: not a failure
        let straddles = drift(trend(60.0, 40.0, 70.0));
        assert_eq!(judge((Some(50.0), None), Some(&straddles), 600_000, &settings), (vec![], vec![]));
        // unset: not judged at all; set but the phase is too short or has no trend: said so
        assert_eq!(judge((None, None), Some(&above), 600_000, &settings), (vec![], vec![]));
        let (f, n) = judge((Some(50.0), Some(10.0)), None, 120_000, &settings);
        assert!(f.is_empty() && n.len() == 2, "{n:?}");
        assert!(n[0].contains("max_rss_growth_mb_per_h not judged: the phase ran 2m"), "{n:?}");
        assert!(n[1].contains("max_p95_drift_pct_per_h not judged: too few") || n[1].contains("shorter"), "{n:?}");
    }

    #[test]
    fn a_trend_says_its_direction_from_its_interval() {
        assert_eq!(trend(1.0, -0.5, 2.0).direction, "no drift");
        assert_eq!(trend(1.0, 0.5, 2.0).direction, "rising");
        assert_eq!(trend(-1.0, -2.0, -0.5).direction, "falling");
        assert_eq!(trend(1.0, -0.5, 2.0).describe(), "no drift (+1 MiB/h, 95 % CI -0.5…+2)");
        assert_eq!(trend(12.25, 10.0, 14.5).describe(), "+12.25 MiB/h (95 % CI +10…+14.5)");
        assert_eq!(bucket_ms(300_000), 3000);
        assert_eq!(bucket_ms(8 * 3_600_000), 240_000);
        assert_eq!(bucket_ms(20_000), 1000);
    }
}
