//! Telling a change from noise when two campaigns are compared: a percentile bootstrap over the
//! phases' op windows (each slot's ~1 s of ops). Each side's windows are resampled with
//! replacement, the statistic recomputed, and the 2.5th and 97.5th percentiles of the change
//! between the two sides give a 95 % interval. A change counts as a regression only when that
//! whole interval lies beyond the tolerance; a point estimate beyond it whose interval still
//! reaches the tolerance is "within noise".
//!
//! Deterministic (a fixed seed): `report A --compare B` says the same twice.

use crate::store::WindowPoint;
use std::collections::BTreeMap;

/// Resamples per interval.
pub(super) const RESAMPLES: usize = 1000;

/// Fewer windows than this on either side: no interval, the fixed tolerance alone decides.
pub(super) const MIN_WINDOWS: usize = 5;

/// The seed: the same comparison gives the same interval.
const SEED: u64 = 0x5eed_c0de;

/// A 95 % interval of a change (points or percent), lowest first.
pub type Interval = [f64; 2];

/// The 2.5th and 97.5th percentiles of `v` (sorted in place).
fn percentiles(v: &mut [f64]) -> Interval {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    [at(0.025), at(0.975)]
}

/// The 95 % bootstrap interval of `change(stat(base'), stat(new'))` where base' and new' are
/// resamples of `base` and `new`; None when either side has fewer than [`MIN_WINDOWS`] items or a
/// statistic is undefined in too many resamples.
pub(super) fn interval<T>(
    base: &[T],
    new: &[T],
    stat: impl Fn(&mut dyn Iterator<Item = &T>) -> Option<f64>,
    change: impl Fn(f64, f64) -> Option<f64>,
) -> Option<Interval> {
    if base.len() < MIN_WINDOWS || new.len() < MIN_WINDOWS {
        return None;
    }
    let mut rng = fastrand::Rng::with_seed(SEED);
    let mut changes = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        let b = stat(&mut (0..base.len()).map(|_| &base[rng.usize(..base.len())]));
        let n = stat(&mut (0..new.len()).map(|_| &new[rng.usize(..new.len())]));
        if let Some(c) = b.zip(n).and_then(|(b, n)| change(b, n)) {
            changes.push(c);
        }
    }
    (changes.len() * 10 >= RESAMPLES * 9).then(|| percentiles(&mut changes))
}

/// Success rate over windows (exact counts): succeeded / attempted.
pub(super) fn success_rate(w: &mut dyn Iterator<Item = &WindowPoint>) -> Option<f64> {
    let (a, s) = w.fold((0u64, 0u64), |(a, s), w| (a + w.attempted, s + w.succeeded));
    (a > 0).then(|| s as f64 / a as f64)
}

/// Ops per second of the phase, one figure per second of its clock (every slot's windows that
/// started in that second, summed): what the bootstrap resamples for throughput.
pub(super) fn ops_per_second(windows: &[WindowPoint]) -> Vec<f64> {
    let mut by_second: BTreeMap<u64, u64> = BTreeMap::new();
    for w in windows {
        *by_second.entry(w.start_ms / 1000).or_insert(0) += w.attempted;
    }
    by_second.into_values().map(|n| n as f64).collect()
}

/// Mean of the items.
pub(super) fn mean(v: &mut dyn Iterator<Item = &f64>) -> Option<f64> {
    let (n, sum) = v.fold((0usize, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| sum / n as f64)
}

/// Change in percent of `base` (None when base is 0).
pub(super) fn pct_change(base: f64, new: f64) -> Option<f64> {
    (base > 0.0).then(|| (new - base) / base * 100.0)
}

/// Change in percentage points of two rates (0..=1).
pub(super) fn points_change(base: f64, new: f64) -> Option<f64> {
    Some((new - base) * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(rates: &[(u64, u64)]) -> Vec<WindowPoint> {
        rates
            .iter()
            .enumerate()
            .map(|(i, &(a, s))| WindowPoint {
                start_ms: i as u64 * 1000,
                end_ms: i as u64 * 1000 + 1000,
                attempted: a,
                succeeded: s,
                latency: None,
            })
            .collect()
    }

    #[test]
    fn a_steady_change_has_a_tight_interval_and_a_noisy_one_a_wide_one() {
        // every window 100 % -> every window 90 %: -10 points, no doubt
        let base = windows(&[(100, 100); 20]);
        let new = windows(&[(100, 90); 20]);
        let [lo, hi] = interval(&base, &new, success_rate, points_change).expect("enough windows");
        assert!((lo + 10.0).abs() < 1e-9 && (hi + 10.0).abs() < 1e-9, "[{lo}, {hi}]");
        // the same mean drop, but windows swing between 60 % and 100 %: the interval reaches 0
        let noisy: Vec<(u64, u64)> = (0..20).map(|i| if i % 4 == 0 { (100, 60) } else { (100, 100) }).collect();
        let noisy = windows(&noisy[..6]);
        let [lo, hi] = interval(&base, &noisy, success_rate, points_change).expect("enough windows");
        assert!(lo < -10.0 && hi > -2.0, "[{lo}, {hi}]");
        // the same again: a fixed seed
        assert_eq!(interval(&base, &noisy, success_rate, points_change), Some([lo, hi]));
    }

    #[test]
    fn too_few_windows_give_no_interval() {
        let base = windows(&[(10, 10); 4]);
        assert_eq!(interval(&base, &base, success_rate, points_change), None);
        assert_eq!(ops_per_second(&windows(&[(3, 3), (4, 4)])), [3.0, 4.0]);
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        let [lo, hi] = interval(&v, &v.map(|x| x * 2.0), mean, pct_change).expect("5 each");
        assert!(lo < 100.0 && hi > 100.0 && lo > 0.0, "[{lo}, {hi}]");
    }
}
