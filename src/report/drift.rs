//! Robust trends: the Theil–Sen slope of a series (the median of its pairwise slopes) with Sen's
//! rank-based 95 % confidence interval. Pure, deterministic (no resampling), so a rebuilt report
//! says exactly what the run's did.
//!
//! A series may come in segments (one per browser session): slopes are taken only between two
//! points of the same segment, so the drop when a session is recycled is not a trend to learn
//! from, and the interval's width adds the segments' Kendall variances (the seasonal Kendall
//! test's estimator, Hirsch et al. 1982). Why Theil–Sen: up to 29 % of the points can be wild
//! (a GC pause, a stuck window) without moving the slope, where least squares follows them.

/// z for a two-sided 95 % interval.
const Z_95: f64 = 1.959_963_984_540_054;

/// Fewest points (over all segments) a trend is estimated from; below it the interval says
/// nothing.
pub(super) const MIN_POINTS: usize = 5;

/// One point of a series: `x` (hours), `y` (the series' unit).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Point {
    pub(super) x: f64,
    pub(super) y: f64,
}

/// A slope and its 95 % interval, in the series' unit per x unit (per hour).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Slope {
    /// The Theil–Sen estimate.
    pub(super) slope: f64,
    /// Lower end of the 95 % interval.
    pub(super) low: f64,
    /// Upper end of the 95 % interval.
    pub(super) high: f64,
    /// Points the estimate used (all segments).
    pub(super) points: usize,
}

/// The Theil–Sen slope of `segments` (pairs within a segment only) with Sen's 95 % interval;
/// None with fewer than [`MIN_POINTS`] points or no pair of distinct `x`.
pub(super) fn theil_sen(segments: &[Vec<Point>]) -> Option<Slope> {
    let points: usize = segments.iter().map(Vec::len).sum();
    if points < MIN_POINTS {
        return None;
    }
    let mut slopes = Vec::with_capacity(segments.iter().map(|s| s.len() * s.len().saturating_sub(1) / 2).sum());
    let mut var = 0.0;
    for s in segments {
        for (i, a) in s.iter().enumerate() {
            for b in &s[i + 1..] {
                let dx = b.x - a.x;
                if dx != 0.0 && dx.is_finite() {
                    let v = (b.y - a.y) / dx;
                    if v.is_finite() {
                        slopes.push(v);
                    }
                }
            }
        }
        let n = s.len() as f64;
        var += n * (n - 1.0) * (2.0 * n + 5.0) / 18.0;
    }
    if slopes.is_empty() {
        return None;
    }
    slopes.sort_unstable_by(f64::total_cmp);
    let n = slopes.len();
    let slope = median_sorted(&slopes);
    // Sen (1968): the interval's ends are the M1-th and (M2+1)-th ordered slopes (1-based)
    let c = Z_95 * var.sqrt();
    let m1 = ((n as f64 - c) / 2.0).floor();
    let m2 = ((n as f64 + c) / 2.0).ceil();
    let at = |k: f64| slopes[(k.max(1.0) as usize).min(n) - 1];
    Some(Slope { slope, low: at(m1).min(slope), high: at(m2 + 1.0).max(slope), points })
}

/// The median of a sorted, non-empty slice.
fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The median of `v` (None when empty).
pub(super) fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_unstable_by(f64::total_cmp);
    Some(median_sorted(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic noise in -1..1 (a fixed LCG): the tests need no crate and no seed file.
    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    fn series(n: usize, slope: f64, amp: f64, seed: u64) -> Vec<Point> {
        noise(n, seed)
            .into_iter()
            .enumerate()
            .map(|(i, e)| Point { x: i as f64 / 60.0, y: 100.0 + slope * i as f64 / 60.0 + amp * e })
            .collect()
    }

    #[test]
    fn a_flat_noisy_series_has_an_interval_around_zero() {
        // a 95 % interval misses the true slope about once in 20 series: count, over 400
        let mut covered = 0;
        for seed in 1..=400 {
            let s = theil_sen(&[series(120, 0.0, 5.0, seed)]).unwrap();
            assert_eq!(s.points, 120);
            assert!(s.low <= s.slope && s.slope <= s.high, "{s:?}");
            covered += usize::from(s.low <= 0.0 && 0.0 <= s.high);
        }
        assert!((368..=392).contains(&covered), "{covered} of 400 intervals contain 0");
    }

    #[test]
    fn a_ramp_is_recovered_within_its_interval() {
        for (slope, seed) in [(30.0, 3), (-12.0, 4), (2.5, 5)] {
            let s = theil_sen(&[series(120, slope, 1.0, seed)]).unwrap();
            assert!(s.low <= slope && slope <= s.high, "{slope}: {s:?}");
            assert!((s.slope - slope).abs() < 0.1 * slope.abs().max(1.0), "{slope}: {s:?}");
            assert!(s.low > 0.0 || s.high < 0.0, "a clear ramp excludes 0: {s:?}");
        }
    }

    #[test]
    fn outliers_do_not_move_the_slope() {
        let clean = theil_sen(&[series(100, 10.0, 0.5, 7)]).unwrap();
        let mut wild = series(100, 10.0, 0.5, 7);
        for i in (0..100).step_by(7) {
            wild[i].y += if i % 2 == 0 { 5_000.0 } else { -5_000.0 };
        }
        let s = theil_sen(&[wild]).unwrap();
        assert!((s.slope - clean.slope).abs() < 1.0, "{s:?} vs {clean:?}");
        assert!(s.low <= 10.0 && 10.0 <= s.high, "{s:?}");
    }

    #[test]
    fn a_recycle_is_not_a_drop_to_learn_from() {
        // a sawtooth: each session grows 20/h, each recycle falls back to the start
        let sessions: Vec<Vec<Point>> =
            (0..4).map(|k| (0..30).map(|i| Point { x: k as f64 + i as f64 / 30.0, y: 200.0 + 20.0 * i as f64 / 30.0 }).collect()).collect();
        let s = theil_sen(&sessions).unwrap();
        assert!((s.slope - 20.0).abs() < 1e-9, "{s:?}");
        // the same points as one series show hardly any growth
        let flat: Vec<Point> = sessions.concat();
        assert!(theil_sen(&[flat]).unwrap().slope < 20.0);
    }

    #[test]
    fn too_few_points_or_one_instant_say_nothing() {
        assert_eq!(theil_sen(&[series(4, 1.0, 0.0, 1)]), None);
        assert_eq!(theil_sen(&[vec![Point { x: 1.0, y: 1.0 }; 10]]), None);
        assert_eq!(theil_sen(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
