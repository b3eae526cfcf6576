//! Store unit tests: campaign ids and the `events.jsonl` line format.

use super::*;
use serde_json::json;

#[test]
fn generated_and_plain_ids_are_valid() {
    for id in ["20261123T172546Z-3f9a", "check-20261123T172546Z-3f9a", "nightly_2.1", "a", &"x".repeat(MAX_CAMPAIGN_ID_LEN)] {
        assert_eq!(validate_campaign_id(id), Ok(()), "{id}");
    }
}

#[test]
fn ids_that_could_leave_the_runs_directory_are_refused() {
    let long = "x".repeat(MAX_CAMPAIGN_ID_LEN + 1);
    for id in ["", "../../x", "..", ".", ".hidden", "a/b", "/abs", "a\\b", "a b", "tab\there", "nl\n", "nul\0", "ä", long.as_str()] {
        let e = validate_campaign_id(id).expect_err(id);
        assert!(!e.is_empty() && !e.contains('\n'), "{id:?}: {e}");
    }
    let e = store_path(Path::new("/state"), "../../x").unwrap_err();
    assert!(matches!(e, StoreError::InvalidId { .. }) && e.is_bad_input(), "{e:?}");
    assert!(e.to_string().contains("\"../../x\": '/' is not allowed"), "{e}");
    assert_eq!(store_path(Path::new("/state"), "c1").unwrap(), Path::new("/state/runs/c1/store.sqlite"));
}

#[test]
fn the_events_jsonl_line_is_the_format_the_run_always_wrote() {
    // what the writer appended before this function existed: a json! map (sorted keys), compact
    let old = |at: &str, kind: &str, corr: &str, phase: Option<u32>, message: &str, data: &serde_json::Value| {
        json!({"at": at, "kind": kind, "corr": corr, "phase": phase, "message": message, "data": data}).to_string()
    };
    let data = json!({"z": 1, "a": [1.5, -0.25, 1e300, null], "msg": "quote \" backslash \\ nl \n tab \t ctl \u{1} é 😀", "n": -3});
    for (phase, message) in [(Some(3), "op failed: \"x\"\n"), (None, "")] {
        let line = event_jsonl_line("2025-06-15T16:26:40.000Z", "op_failed", "c1/3/w1/7", phase.map(i64::from), message, &data.to_string());
        assert_eq!(line, old("2025-06-15T16:26:40.000Z", "op_failed", "c1/3/w1/7", phase, message, &data));
        assert!(!line.contains('\n'));
    }
}

#[test]
fn bad_input_is_told_apart_from_failures() {
    assert!(StoreError::NotFound("x".into()).is_bad_input());
    assert!(!StoreError::TooManyOpenFiles { path: "s".into() }.is_bad_input());
    assert!(!StoreError::Corrupt { path: "s".into(), detail: "d".into(), reports: None }.is_bad_input());
}
