//! Store unit tests: campaign ids, the `events.jsonl` line format, and reading an older schema.

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

/// Makes a store look as an older schema version wrote it: drops `cols` of `sealed`'s table,
/// reseals its rows over the columns that version checksummed (`sealed`) and sets the version.
fn downgrade(path: &Path, sealed: &schema::Table, cols: &[&str], version: i64) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    let tx = conn.transaction().unwrap();
    for col in cols {
        tx.execute_batch(&format!("ALTER TABLE {} DROP COLUMN {col}", sealed.name)).unwrap();
    }
    reseal(&tx, sealed, "1 = 1", []).unwrap();
    tx.execute_batch(&format!("PRAGMA user_version = {version}")).unwrap();
    tx.commit().unwrap();
}

/// A store as schema 2 wrote it (samples without the host figures, checksummed over their own
/// columns), made from a current one.
fn downgrade_to_v2(path: &Path) {
    let host = ["cpu_cap", "campaign_cpu", "host_cpu", "host_wait", "psi_cpu", "psi_memory", "psi_io", "browsers"];
    downgrade(path, &schema::SAMPLES_V2, &host, 2);
}

#[test]
fn a_schema_2_store_is_read_and_verified_without_host_figures_but_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let rec = CampaignRecord::quick_for_test("c-v2", std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000), dir.path());
    let store = Store::create(&path, &rec, &dir.path().join("events.jsonl")).unwrap();
    for cpu in [30.0, 50.0] {
        store.sample(SampleRow {
            at: SystemTime::now(),
            phase_idx: Some(0),
            cpu,
            memory: 1.0,
            disk: 1.0,
            tree_rss_bytes: 1,
            tree_cpu: 1.0,
            tree_processes: 1,
            health: 99.0,
            violations: "[]".into(),
            host: HostFigures { campaign_cpu: 20.0, host_cpu: 10.0, ..Default::default() },
            browsers: Vec::new(),
        });
    }
    store.close().unwrap();
    assert!(StoreReader::open(&path).unwrap().phase_resources(0).unwrap().host.is_some());

    downgrade_to_v2(&path);
    let r = StoreReader::open(&path).unwrap();
    let res = r.phase_resources(0).unwrap();
    assert_eq!((res.samples, res.cpu_max, res.host), (2, 50.0, None));
    assert_eq!(r.samples_after(0, 10).unwrap().len(), 2);
    drop(r);
    let e = Store::reopen(&path, &dir.path().join("events.jsonl")).err().expect("a v2 store is not written to");
    assert!(e.to_string().contains("can be read") && e.to_string().contains("not resumed"), "{e}");
    // its rows are still verified
    rusqlite::Connection::open(&path).unwrap().execute("UPDATE samples SET cpu = 99.0 WHERE id = 2", []).unwrap();
    let e = StoreReader::open(&path).unwrap().phase_resources(0).unwrap_err();
    assert!(e.to_string().contains("table samples: row 2 fails its checksum"), "{e}");
}

/// Stores as schemas 4 and 3 wrote them: windows without the console count (4) and without the
/// in-page histogram too (3), checksummed over their own columns. They are read and verified
/// (no console counts, no in-page latencies), not resumed.
#[test]
fn schema_3_and_4_stores_read_their_windows_without_the_later_columns() {
    use crate::metrics::{encode_histogram, new_histogram, record_latency};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let rec = CampaignRecord::quick_for_test("c-v3", std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000), dir.path());
    let store = Store::create(&path, &rec, &dir.path().join("events.jsonl")).unwrap();
    let mut h = new_histogram();
    record_latency(&mut h, Duration::from_millis(7));
    store.window(WindowRow {
        phase_idx: 0,
        worker: "w1".into(),
        slot: 0,
        task_kind: "webgpu",
        start_ms: 0,
        end_ms: 1000,
        attempted: 1,
        succeeded: 1,
        failed: 0,
        verified: 1,
        errors: "{}".into(),
        hist: encode_histogram(&h),
        hist_in_page: encode_histogram(&h),
        console: 2,
    });
    store.close().unwrap();
    let w = &StoreReader::open(&path).unwrap().phase_windows(0).unwrap()["webgpu"];
    assert_eq!((w.in_page.len(), w.console), (1, 2));

    downgrade(&path, &schema::WINDOWS_V4, &["console"], 4);
    // schema 4: in-page latencies, no console count
    let w = &StoreReader::open(&path).unwrap().phase_windows(0).unwrap()["webgpu"];
    assert_eq!((w.in_page.len(), w.console), (1, 0));

    downgrade(&path, &schema::WINDOWS_V3, &["hist_in_page"], 3);
    let r = StoreReader::open(&path).unwrap();
    let w = &r.phase_windows(0).unwrap()["webgpu"];
    assert_eq!((w.attempted, w.hist.len(), w.in_page.len()), (1, 1, 0));
    let after = r.windows_after(0, 10).unwrap();
    assert_eq!((after.len(), after[0].hist_in_page.is_none()), (1, true));
    drop(r);
    assert!(Store::reopen(&path, &dir.path().join("events.jsonl")).is_err(), "a v3 store is not written to");
    rusqlite::Connection::open(&path).unwrap().execute("UPDATE windows SET attempted = 9 WHERE id = 1", []).unwrap();
    let e = StoreReader::open(&path).unwrap().phase_windows(0).unwrap_err();
    assert!(e.to_string().contains("table windows: row 1 fails its checksum"), "{e}");
}

#[test]
fn a_table_version_says_which_columns_it_has() {
    assert!(schema::WINDOWS.has("console") && schema::WINDOWS.has("hist_in_page") && schema::WINDOWS.has("hist"));
    assert!(!schema::WINDOWS_V4.has("console") && schema::WINDOWS_V4.has("hist_in_page"));
    assert!(!schema::WINDOWS_V3.has("hist_in_page") && schema::WINDOWS_V3.has("hist"), "a whole name, not a prefix");
    assert!(schema::SAMPLES.has("cpu_cap") && !schema::SAMPLES_V2.has("cpu_cap"));
}

/// Schema 6 stores each live browser's RSS with a sample; a schema 5 store has none and its
/// samples verify over their own columns.
#[test]
fn browser_rss_is_stored_per_sample_and_a_schema_5_store_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let rec = CampaignRecord::quick_for_test("c-v5", std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000), dir.path());
    let store = Store::create(&path, &rec, &dir.path().join("events.jsonl")).unwrap();
    for (i, rss) in [100u64, 110, 120].into_iter().enumerate() {
        store.sample(SampleRow {
            at: std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + i as u64),
            phase_idx: Some(0),
            cpu: 1.0,
            memory: 1.0,
            disk: 1.0,
            tree_rss_bytes: 1,
            tree_cpu: 1.0,
            tree_processes: 1,
            health: 99.0,
            violations: "[]".into(),
            host: HostFigures::default(),
            browsers: vec![BrowserRss { pid: 7, start_time: 70, rss_bytes: rss }, BrowserRss { pid: 8, start_time: 80, rss_bytes: 5 }],
        });
    }
    store.close().unwrap();
    let rss = StoreReader::open(&path).unwrap().browser_rss(Some(0)).unwrap();
    assert_eq!(rss[&(7, 70)].iter().map(|(_, r)| *r).collect::<Vec<_>>(), [100, 110, 120]);
    assert_eq!(rss[&(8, 80)].len(), 3);
    assert!(StoreReader::open(&path).unwrap().browser_rss(Some(1)).unwrap().is_empty());

    downgrade(&path, &schema::SAMPLES_V5, &["browsers"], 5);
    let r = StoreReader::open(&path).unwrap();
    assert!(r.browser_rss(None).unwrap().is_empty());
    assert_eq!(r.phase_resources(0).unwrap().samples, 3);
}
