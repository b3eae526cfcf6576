//! A histogram's recorded values read straight from its stored bytes (HdrHistogram V2, as
//! [`super::encode_histogram`] writes it), without building the histogram: a decoded latency
//! histogram is a 180 KB array, which a report that reads an 8-hour store's windows one by one
//! (the drift analysis' time buckets) cannot afford per window, while a window's bytes hold a
//! handful of values.

/// Size of the V2 header: cookie, payload length, normalizing offset, significant digits,
/// lowest and highest trackable value, integer-to-double ratio.
const HEADER: usize = 40;

/// The V2 (uncompressed) cookie.
const COOKIE: u32 = 0x1c84_9303 | 0x10;

/// Appends the recorded values of the histogram in `bytes` to `out` as `(value, count)`, each
/// value the highest equivalent of its bucket (what `value_at_quantile` answers), in increasing
/// order.
pub fn recorded_values(bytes: &[u8], out: &mut Vec<(u64, u64)>) -> Result<(), String> {
    let bad = |what: &str| format!("corrupt histogram: {what}");
    let be32 = |at: usize| bytes.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let be64 = |at: usize| bytes.get(at..at + 8).map(|b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])));
    if be32(0) != Some(COOKIE) {
        return Err(bad("not an uncompressed V2 histogram"));
    }
    let len = be32(4).ok_or_else(|| bad("short header"))? as usize;
    if be32(8) != Some(0) {
        return Err(bad("a normalizing index offset"));
    }
    let digits = be32(12).ok_or_else(|| bad("short header"))?;
    let lowest = be64(16).ok_or_else(|| bad("short header"))?;
    if !(1..=5).contains(&digits) || lowest == 0 {
        return Err(bad("header out of range"));
    }
    let payload = bytes.get(HEADER..HEADER + len).ok_or_else(|| bad("payload shorter than its length"))?;
    // the layout HdrHistogram derives from these (Histogram::new_with_bounds)
    let single_unit = 2 * 10u64.pow(digits);
    let sub_bucket_count_magnitude = 64 - (single_unit - 1).leading_zeros();
    let half_magnitude = sub_bucket_count_magnitude.max(1) - 1;
    let half_count = 1u64 << half_magnitude;
    let unit_magnitude = 63 - lowest.leading_zeros();
    let highest_at = |index: u64| {
        let (bucket, sub) = match (index >> half_magnitude).checked_sub(1) {
            Some(b) => (b, (index & (half_count - 1)) + half_count),
            None => (0, index & (half_count - 1)),
        };
        let shift = bucket + u64::from(unit_magnitude);
        (sub << shift) + (1u64 << shift) - 1
    };
    let mut index = 0u64;
    let mut at = 0;
    while at < payload.len() {
        // LEB128-64b9B: 8 bytes of 7 bits, then a ninth of 8
        let mut v = 0u64;
        let mut i = 0;
        loop {
            let b = *payload.get(at).ok_or_else(|| bad("truncated count"))?;
            at += 1;
            if i == 8 {
                v |= u64::from(b) << 56;
                break;
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        let n = ((v >> 1) as i64) ^ -((v & 1) as i64);
        if n < 0 {
            index += n.unsigned_abs();
        } else {
            if n > 0 {
                out.push((highest_at(index), n as u64));
            }
            index += 1;
        }
    }
    Ok(())
}

/// The value at `quantile` of `(value, count)` pairs sorted by value, as HdrHistogram's
/// `value_at_quantile` picks it (the first value whose cumulative count reaches
/// `ceil(quantile * total)`, at least 1); None when empty.
pub fn quantile_of_sorted(values: &[(u64, u64)], quantile: f64) -> Option<u64> {
    let total: u64 = values.iter().map(|v| v.1).sum();
    if total == 0 {
        return None;
    }
    let target = ((quantile.min(1.0) * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    values
        .iter()
        .find(|v| {
            seen += v.1;
            seen >= target
        })
        .map(|v| v.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{encode_histogram, new_histogram};

    #[test]
    fn values_read_from_the_bytes_are_the_histograms_own() {
        let mut s = 99u64;
        for round in 0..200u64 {
            let mut h = new_histogram();
            let n = 1 + round % 40;
            let scale = [10u64, 1_000, 100_000, 30_000_000, 3_000_000_000][(round % 5) as usize];
            for _ in 0..n {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let v = 1 + (s >> 33) % scale;
                h.record_n(v, 1 + (s >> 60)).unwrap();
            }
            let mut got = Vec::new();
            recorded_values(&encode_histogram(&h), &mut got).unwrap();
            let want: Vec<(u64, u64)> = h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect();
            assert_eq!(got, want, "round {round}");
            for q in [0.5, 0.95, 0.99, 1.0] {
                assert_eq!(quantile_of_sorted(&got, q), Some(h.value_at_quantile(q)), "round {round} q {q}");
            }
        }
        let mut empty = Vec::new();
        recorded_values(&encode_histogram(&new_histogram()), &mut empty).unwrap();
        assert!(empty.is_empty() && quantile_of_sorted(&empty, 0.95).is_none());
        assert!(recorded_values(b"nonsense", &mut empty).is_err());
        let mut cut = encode_histogram(&{
            let mut h = new_histogram();
            h.record(12345).unwrap();
            h
        });
        cut.truncate(cut.len() - 1);
        assert!(recorded_values(&cut, &mut empty).is_err());
    }
}
