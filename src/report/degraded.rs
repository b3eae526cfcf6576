//! Work the recovery ladder's adjusted-settings rung shrank, counted apart as *degraded*: `webgpu`
//! ops at the reduced matrix size (the slots write them per worker and slot as task info
//! `degraded/<worker>/s<slot>`, folded here into the task's `degraded`), and `model` inferences on
//! lighter settings ([`super::model`]). Their successes are not successes of the configured work,
//! so neither the phase's criteria nor the campaign verdict count them, unless the campaign ran
//! with `[recovery] degraded_counts_as_pass = true` (each record says so).

use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Folds a `webgpu` task's `degraded/...` records into one `degraded` entry: `ops`, `succeeded`,
/// `slots`, the `sizes` run instead of `configured_size`, and `counts_as_pass`. Info without
/// such records is returned as it was.
pub(super) fn fold_webgpu(info: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    let (records, mut out): (BTreeMap<String, Value>, BTreeMap<String, Value>) =
        info.into_iter().partition(|(k, _)| k.starts_with("degraded/"));
    if records.is_empty() {
        return out;
    }
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    let mut sizes: Vec<u64> = records.values().map(|v| n(v, "size")).collect();
    sizes.sort_unstable();
    sizes.dedup();
    out.insert(
        "degraded".into(),
        json!({
            "ops": records.values().map(|v| n(v, "ops")).sum::<u64>(),
            "succeeded": records.values().map(|v| n(v, "succeeded")).sum::<u64>(),
            "slots": records.len(),
            "sizes": sizes,
            "configured_size": records.values().map(|v| n(v, "configured_size")).max().unwrap_or(0),
            "counts_as_pass": records.values().all(|v| v["counts_as_pass"].as_bool() == Some(true)),
        }),
    );
    out
}

/// Degraded successes of a task of kind `kind` (its folded info) that do not count towards a
/// pass: `webgpu` ops and `model` inferences under adjusted settings, unless the campaign counts
/// them (`counts_as_pass`). 0 for other kinds.
pub(super) fn not_counted(kind: &str, info: &BTreeMap<String, Value>) -> u64 {
    if kind != "webgpu" && kind != "model" {
        return 0;
    }
    info.get("degraded").filter(|d| d["counts_as_pass"].as_bool() != Some(true)).and_then(|d| d["succeeded"].as_u64()).unwrap_or(0)
}

/// The criteria's sentence about degraded successes of `kind` left out.
pub(super) fn criteria_line(kind: &str, n: u64) -> String {
    let what = if kind == "model" { "inference(s)" } else { "webgpu op(s) at a reduced matrix size" };
    format!("{n} {what} succeeded only under the recovery ladder's adjusted settings (degraded): not counted as successes")
}

/// The summary's line about a `webgpu` task's degraded ops, if it had any.
pub(super) fn webgpu_line(info: &BTreeMap<String, Value>) -> Option<String> {
    let d = info.get("degraded").filter(|d| d["ops"].as_u64().is_some_and(|n| n > 0))?;
    let sizes: Vec<String> = d["sizes"].as_array().into_iter().flatten().map(|s| format!("{s}x{s}")).collect();
    let c = &d["configured_size"];
    let counted = if d["counts_as_pass"].as_bool() == Some(true) {
        "counted as successes ([recovery] degraded_counts_as_pass)"
    } else {
        "not counted as successes"
    };
    Some(format!(
        "DEGRADED (recovery ladder, adjusted settings): {} webgpu ops ({} succeeded) at {} instead of the configured {c}x{c}, in {} slot(s); {counted}",
        d["ops"],
        d["succeeded"],
        sizes.join(", "),
        d["slots"]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webgpu_records_fold_into_one_entry_and_only_uncounted_successes_are_left_out() {
        let rec = |ops: u64, ok: u64, counts: bool| json!({"worker": "local", "slot": 0, "size": 32, "configured_size": 128, "ops": ops, "succeeded": ok, "counts_as_pass": counts});
        let mut info = BTreeMap::new();
        info.insert("adapter".to_string(), json!({"kind": "software"}));
        info.insert("degraded/local/s0".to_string(), rec(30, 29, false));
        info.insert("degraded/local/s1".to_string(), rec(10, 10, false));
        let folded = fold_webgpu(info);
        assert!(folded.keys().all(|k| !k.starts_with("degraded/")), "{folded:?}");
        let d = &folded["degraded"];
        assert_eq!((d["ops"].as_u64(), d["succeeded"].as_u64(), d["slots"].as_u64()), (Some(40), Some(39), Some(2)));
        assert_eq!(d["sizes"], json!([32]));
        assert_eq!(not_counted("webgpu", &folded), 39);
        assert_eq!(not_counted("page", &folded), 0, "only webgpu and model work is degraded");
        let line = webgpu_line(&folded).unwrap();
        assert!(
            line.contains("40 webgpu ops (39 succeeded) at 32x32 instead of the configured 128x128, in 2 slot(s); not counted"),
            "{line}"
        );

        let mut info = BTreeMap::new();
        info.insert("degraded/local/s0".to_string(), rec(5, 5, true));
        let folded = fold_webgpu(info);
        assert_eq!(not_counted("webgpu", &folded), 0, "degraded_counts_as_pass: counted");
        assert!(webgpu_line(&folded).unwrap().contains("counted as successes ([recovery] degraded_counts_as_pass)"));
        // no records: nothing added
        assert!(!fold_webgpu(BTreeMap::new()).contains_key("degraded"));
    }
}
