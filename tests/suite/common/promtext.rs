//! A strict parser of the Prometheus text exposition format (0.0.4), for tests: it rejects what
//! Prometheus would reject (bad names, unescaped label values, samples without a `# TYPE` before
//! them, a series twice, histogram buckets that are not cumulative or disagree with `_count`),
//! so a test that parses `/metrics` with it checks the format, not only a few substrings.
//!
//! Shared by the unit test of `src/dashboard/metrics.rs` (through `#[path]`) and the
//! integration tests.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name as written (`x_total`, `x_bucket`, …).
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// A parsed exposition.
#[derive(Clone, Debug, Default)]
pub struct Exposition {
    /// Samples in order.
    pub samples: Vec<Sample>,
    /// Family name -> type (`counter`, `gauge`, `histogram`, …).
    pub types: BTreeMap<String, String>,
}

impl Exposition {
    /// The value of the sample `name` with exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.samples.iter().find(|s| s.name == name && s.labels == want).map(|s| s.value)
    }

    /// The declared type of the family a sample name belongs to.
    pub fn type_of(&self, sample_name: &str) -> Option<&str> {
        family_of(sample_name, &self.types).map(|f| self.types[f].as_str())
    }

    /// Every sample that Prometheus treats as a counter (counters, and histograms' `_bucket`,
    /// `_count` and `_sum`), keyed by name and labels.
    pub fn counters(&self) -> BTreeMap<String, f64> {
        self.samples
            .iter()
            .filter(|s| matches!(self.type_of(&s.name), Some("counter" | "histogram")))
            .map(|s| (series_key(&s.name, &s.labels), s.value))
            .collect()
    }
}

/// `name{k="v",…}` with sorted labels.
pub fn series_key(name: &str, labels: &BTreeMap<String, String>) -> String {
    let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", l.join(","))
}

fn family_of<'a>(sample: &str, types: &'a BTreeMap<String, String>) -> Option<&'a String> {
    if let Some((k, _)) = types.get_key_value(sample) {
        return Some(k);
    }
    for suffix in ["_bucket", "_count", "_sum"] {
        if let Some(base) = sample.strip_suffix(suffix) {
            if let Some((k, t)) = types.get_key_value(base) {
                if t == "histogram" || t == "summary" {
                    return Some(k);
                }
            }
        }
    }
    None
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    match chars.next() {
        Some(c) if ok_first(c) => chars.all(|c| ok_first(c) || c.is_ascii_digit()),
        _ => false,
    }
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => {
            if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')) {
                return Err(format!("bad value {s:?}"));
            }
            s.parse::<f64>().map_err(|e| format!("bad value {s:?}: {e}"))
        }
    }
}

/// Parses `{k="v",…}` starting at `s` (after the name); returns the labels and the rest.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let Some(mut rest) = s.strip_prefix('{') else { return Ok((labels, s)) };
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let key = &rest[..eq];
        if !is_name(key, false) {
            return Err(format!("bad label name {key:?}"));
        }
        rest = rest[eq + 1..].strip_prefix('"').ok_or_else(|| format!("label {key} value not quoted"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("label {key} value not terminated")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape in label {key}: {other:?}")),
                },
                Some((_, '\n')) => return Err(format!("raw newline in label {key}")),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(key.to_string(), value).is_some() {
            return Err(format!("label {key} twice"));
        }
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err(format!("expected ',' or '}}' after label {key}"));
        }
    }
}

/// Parses an exposition, strictly (see the module doc).
pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut out = Exposition::default();
    let mut seen_series = BTreeSet::new();
    let mut sampled_families = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let parts: Vec<&str> = c.trim_start().splitn(3, ' ').collect();
            match parts.first().copied() {
                Some("TYPE") => {
                    let (name, t) = (parts.get(1).copied().unwrap_or(""), parts.get(2).copied().unwrap_or(""));
                    if !is_name(name, true) {
                        return Err(at(format!("bad metric name {name:?}")));
                    }
                    if !matches!(t, "counter" | "gauge" | "histogram" | "summary" | "untyped") {
                        return Err(at(format!("bad type {t:?}")));
                    }
                    if sampled_families.contains(name) || out.types.insert(name.to_string(), t.to_string()).is_some() {
                        return Err(at("TYPE after samples or twice".into()));
                    }
                }
                Some("HELP") if !is_name(parts.get(1).copied().unwrap_or(""), true) => {
                    return Err(at("HELP of a bad name".into()));
                }
                _ => {}
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !is_name(name, true) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = parse_labels(&line[name_end..]).map_err(at)?;
        let rest = rest.strip_prefix(' ').ok_or_else(|| at("no space before the value".into()))?;
        let mut fields = rest.split(' ');
        let value = parse_value(fields.next().unwrap_or("")).map_err(at)?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|e| at(format!("bad timestamp: {e}")))?;
        }
        if fields.next().is_some() {
            return Err(at("trailing fields".into()));
        }
        let family = family_of(name, &out.types).ok_or_else(|| at(format!("sample {name} without a # TYPE before it")))?.clone();
        if !seen_series.insert(series_key(name, &labels)) {
            return Err(at("the same series twice".into()));
        }
        sampled_families.insert(family);
        out.samples.push(Sample { name: name.to_string(), labels, value });
    }
    check_histograms(&out)?;
    Ok(out)
}

/// Buckets cumulative, an `+Inf` bucket equal to `_count`, per histogram series.
fn check_histograms(e: &Exposition) -> Result<(), String> {
    for (family, t) in &e.types {
        if t != "histogram" {
            continue;
        }
        let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for s in e.samples.iter().filter(|s| s.name == format!("{family}_bucket")) {
            let mut l = s.labels.clone();
            let le = l.remove("le").ok_or_else(|| format!("{family}_bucket without le"))?;
            groups.entry(series_key(family, &l)).or_default().push((parse_value(&le)?, s.value));
        }
        for (key, mut b) in groups {
            b.sort_by(|x, y| x.0.total_cmp(&y.0));
            if b.windows(2).any(|w| w[1].1 < w[0].1) {
                return Err(format!("{key}: buckets not cumulative: {b:?}"));
            }
            let inf = b.last().filter(|x| x.0.is_infinite()).ok_or_else(|| format!("{key}: no +Inf bucket"))?.1;
            let count = e
                .samples
                .iter()
                .find(|s| s.name == format!("{family}_count") && series_key(family, &s.labels) == key)
                .ok_or_else(|| format!("{key}: no _count"))?
                .value;
            if inf != count {
                return Err(format!("{key}: +Inf bucket {inf} != count {count}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod self_tests {
    use super::*;

    #[test]
    fn rejects_what_prometheus_rejects() {
        assert!(parse("x 1\n").is_err(), "no TYPE");
        assert!(parse("# TYPE x gauge\nx{a=\"1} 1\n").is_err(), "unterminated");
        assert!(parse("# TYPE x gauge\nx 1\nx 2\n").is_err(), "twice");
        assert!(parse("# TYPE x gauge\nx{1a=\"v\"} 1\n").is_err(), "label name");
        assert!(parse("# TYPE x gauge\nx one\n").is_err(), "value");
        let h = "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0.5\n";
        assert!(parse(h).is_err(), "not cumulative");
        let ok = parse("# HELP x_total a\n# TYPE x_total counter\nx_total{a=\"q\\\"\"} 3\n").unwrap();
        assert_eq!(ok.value("x_total", &[("a", "q\"")]), Some(3.0));
    }
}
