//! The store's integrity guarantees, against real SQLite files written through the `Store` API:
//! a damaged byte never yields a report with different numbers (it is an error naming the table
//! and rows, or the report is the original one).

use crate::common::{run, BIN};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};
use stressctl::metrics::{encode_histogram, new_histogram, record_latency};
use stressctl::report::{campaign_report, CampaignReport};
use stressctl::store::{CampaignRecord, EventRow, HostFigures, PhaseStart, SampleRow, Store, StoreReader, WindowRow};

const T0: u64 = 1_750_000_000;
/// Byte-flip trials (each a copy of the store with one damaged byte, then a report build);
/// `STRESSCTL_FLIP_TRIALS` and `STRESSCTL_FLIP_SEED` run a longer or another series.
const TRIALS: usize = 300;

fn at_ms(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(T0 * 1000 + ms)
}

/// A finished campaign of three phases with many windows of several task kinds, samples, task info
/// and events of every kind the report reads. Returns the store file.
fn finished_store(dir: &Path) -> PathBuf {
    let path = dir.join("runs/c1/store.sqlite");
    let rec = CampaignRecord {
        id: "c1".into(),
        profile: "quick".into(),
        config_source: "<profile quick>".into(),
        config_text: stressctl::config::QUICK_PROFILE.into(),
        started_at: at_ms(0),
        output_dir: dir.join("out"),
    };
    let store = Store::create(&path, &rec, &dir.join("out/events.jsonl")).expect("create store");
    let kinds: [&'static str; 3] = ["webgpu", "synthetic", "page"];
    let mut rng = fastrand::Rng::with_seed(7);
    for phase in 0..3u32 {
        let start = u64::from(phase) * 100_000;
        store.phase_started(PhaseStart {
            idx: phase,
            name: ["warmup", "steady", "stress"][phase as usize].into(),
            stress_level: ["low", "moderate", "high"][phase as usize],
            task_kind: kinds[phase as usize],
            sessions_planned: 4,
            sessions: 4,
            duration_planned: Duration::from_secs(60),
            min_success_rate: 0.9,
            max_p95_ms: 3000,
            notes: vec![format!("note of phase {phase}")],
            started_at: at_ms(start),
        });
        store.event(EventRow {
            at: at_ms(start),
            kind: "phase_started",
            corr: format!("c1/{phase}"),
            phase_idx: Some(phase),
            message: format!("phase {phase} started"),
            data: json!({"sessions": 4}),
        });
        store.task_info(phase, kinds[phase as usize], "adapter", json!({"vendor": "google", "architecture": "swiftshader"}));
        for w in 0..16u64 {
            let mut h = new_histogram();
            let n = 20 + rng.u64(0..40);
            for _ in 0..n {
                record_latency(&mut h, Duration::from_micros(500 + rng.u64(0..3_000_000)));
            }
            let failed = rng.u64(0..4).min(n);
            let errors = if failed > 0 { json!({"timeout": failed}) } else { json!({}) };
            store.window(WindowRow {
                phase_idx: phase,
                worker: format!("w{}", w % 4),
                slot: (w % 4) as u32,
                task_kind: kinds[(w % 3) as usize],
                start_ms: (T0 * 1000 + start + w * 1000) as i64,
                end_ms: (T0 * 1000 + start + w * 1000 + 1000) as i64,
                attempted: n,
                succeeded: n - failed,
                failed,
                verified: n - failed,
                errors: errors.to_string(),
                hist: encode_histogram(&h),
                hist_in_page: encode_histogram(&h),
                console: rng.u64(0..3),
            });
        }
        for s in 0..30u64 {
            store.sample(SampleRow {
                at: at_ms(start + s * 2000),
                phase_idx: Some(phase),
                cpu: 30.0 + rng.f64() * 60.0,
                memory: 40.0 + rng.f64() * 10.0,
                disk: 12.5,
                tree_rss_bytes: 300 * 1024 * 1024 + rng.u64(0..100 * 1024 * 1024),
                tree_cpu: 100.0 + rng.f64() * 80.0,
                tree_processes: 6,
                health: 60.0 + rng.f64() * 40.0,
                violations: if s % 7 == 0 { "[\"cpu\"]".into() } else { "[]".into() },
                host: HostFigures {
                    cpu_cap: Some(80.0),
                    campaign_cpu: 20.0 + rng.f64() * 60.0,
                    host_cpu: rng.f64() * 20.0,
                    host_wait: Some(rng.f64() * 10.0),
                    psi_cpu: Some(rng.f64() * 30.0),
                    psi_memory: Some(rng.f64()),
                    psi_io: Some(rng.f64() * 2.0),
                },
                browsers: Vec::new(),
            });
        }
        let ev = |ms: u64, kind: &'static str, message: String, data: serde_json::Value| EventRow {
            at: at_ms(start + ms),
            kind,
            corr: format!("c1/{phase}/w1/{ms}"),
            phase_idx: Some(phase),
            message,
            data,
        };
        for i in 0..25u64 {
            let class = ["timeout", "crash", "gpu_error", "script_error"][(i % 4) as usize];
            store.event(ev(
                i * 10,
                "op_failed",
                format!("op {i} failed"),
                json!({"class": class, "message": format!("failure kind {}", i % 6)}),
            ));
        }
        for i in 0..6u64 {
            store.event(ev(
                300 + i,
                "guardian_violation",
                "cpu high".into(),
                json!({"metric": "cpu", "value": 91.5 + i as f64, "threshold": 90.0}),
            ));
        }
        for i in 0..8u64 {
            let strategy = ["retry", "new_session"][(i % 2) as usize];
            let outcome = if i % 3 == 0 { "failed" } else { "succeeded" };
            let data =
                json!({"class": "timeout", "strategy": strategy, "level": 1 + i % 2, "outcome": outcome, "time_to_recover_ms": 100 * i});
            store.event(ev(400 + i, "recovery_attempted", "recovery".into(), data));
        }
        for (i, (from, to)) in [("closed", "open"), ("open", "half_open"), ("half_open", "closed")].iter().enumerate() {
            store.event(ev(
                500 + i as u64,
                "breaker_transition",
                "breaker".into(),
                json!({"key": format!("worker:w{phase}"), "from": from, "to": to, "reason": "threshold"}),
            ));
        }
        store.phase_progress(phase, Duration::from_secs(60));
        store.phase_ended(phase, "completed", Duration::from_secs(60));
    }
    let campaign_ev = |ms: u64, kind: &'static str, message: &str, data: serde_json::Value| EventRow {
        at: at_ms(ms),
        kind,
        corr: "c1".into(),
        phase_idx: None,
        message: message.into(),
        data,
    };
    store.event(campaign_ev(250_000, "campaign_interrupted", "SIGKILL", json!({"phase": 1, "elapsed_ms": 0})));
    store.event(campaign_ev(250_001, "campaign_resumed", "resumed", json!({"phase": 1})));
    let registry = stressctl::breaker::BreakerRegistry::new(Default::default(), Default::default(), Default::default());
    let _ = registry.gate("w1", "chromium", "webgpu");
    let t0 = std::time::Instant::now();
    let snapshot = serde_json::to_value(registry.snapshot(t0, (t0, at_ms(300_000)))).expect("snapshot json");
    store.event(campaign_ev(300_000, "breaker_snapshot", "final", snapshot));
    store.event(campaign_ev(300_001, "emergency_stop", "cpu 97 % over 95 %", json!({"cause": "guardian", "reason": "cpu"})));
    store.campaign_ended("failed", Some("guardian".into()));
    store.close().expect("close store");
    path
}

/// Offsets worth damaging: a random byte of the record area (cell content) of a random b-tree page,
/// or (one trial in four) any byte of the file.
fn pick_offset(bytes: &[u8], rng: &mut fastrand::Rng) -> usize {
    let page_size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65536,
        n => n as usize,
    };
    let pages = bytes.len() / page_size;
    if rng.u8(0..4) != 0 {
        for _ in 0..100 {
            let page = rng.usize(1..pages);
            let base = page * page_size;
            let kind = bytes[base];
            if matches!(kind, 0x02 | 0x05 | 0x0a | 0x0d) {
                let content = match u16::from_be_bytes([bytes[base + 5], bytes[base + 6]]) {
                    0 => 65536,
                    n => n as usize,
                };
                if content < page_size {
                    return base + rng.usize(content..page_size);
                }
            }
        }
    }
    rng.usize(100..bytes.len())
}

fn build(path: &Path) -> Result<CampaignReport, String> {
    let r = StoreReader::open(path).map_err(|e| e.to_string())?;
    campaign_report(&r).map_err(|e| e.to_string())
}

/// The report and the `events.jsonl` rebuilt from the store.
fn build_all(path: &Path) -> Result<(CampaignReport, String), String> {
    let r = StoreReader::open(path).map_err(|e| e.to_string())?;
    let c = campaign_report(&r).map_err(|e| e.to_string())?;
    let mut lines = String::new();
    r.for_each_event_line(|l| {
        lines.push_str(l);
        lines.push('\n');
    })
    .map_err(|e| e.to_string())?;
    Ok((c, lines))
}

#[test]
fn byte_flips_in_a_finished_store_never_give_a_different_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = finished_store(dir.path());
    assert!(!PathBuf::from(format!("{}-wal", path.display())).exists(), "a closed store is one file");
    let original = build_all(&path).expect("the intact store reports");
    assert!(original.0.totals.ops_attempted > 1000);
    assert!(original.0.phases.iter().all(|p| p.top_errors.len() == 5 && !p.violations.is_empty()));
    assert_eq!(original.1, std::fs::read_to_string(dir.path().join("out/events.jsonl")).unwrap());
    let clean = std::fs::read(&path).unwrap();
    let trial_path = dir.path().join("trial.sqlite");
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let trials = env("STRESSCTL_FLIP_TRIALS").map_or(TRIALS, |n| n as usize);
    let mut rng = fastrand::Rng::with_seed(env("STRESSCTL_FLIP_SEED").unwrap_or(0x5eed));
    let (mut errors, mut same, mut wrong, mut multi_line) = (0, 0, Vec::new(), Vec::new());
    for trial in 0..trials {
        let mut bytes = clean.clone();
        let off = pick_offset(&bytes, &mut rng);
        bytes[off] ^= rng.u8(1..=255);
        std::fs::write(&trial_path, &bytes).unwrap();
        match build_all(&trial_path) {
            Err(e) => {
                if e.contains('\n') {
                    multi_line.push(e);
                }
                errors += 1;
            }
            Ok(r) if r == original => same += 1,
            Ok(_) => wrong.push((trial, off)),
        }
    }
    eprintln!("{trials} trials: {errors} errors, {same} identical reports, {} wrong reports", wrong.len());
    assert!(wrong.is_empty(), "reports with different numbers built without an error (trial, offset): {wrong:?}");
    assert!(multi_line.is_empty(), "every error is one line: {multi_line:?}");
    assert!(errors > trials / 3, "most flips in record data must be detected ({errors} were)");
}

fn report_error(path: &Path) -> String {
    match build(path) {
        Ok(_) => panic!("a report was built from a damaged store"),
        Err(e) => e,
    }
}

#[test]
fn a_damaged_record_is_named_by_table_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = finished_store(dir.path());
    // what a flipped byte does: a value changes, its checksum does not
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("UPDATE windows SET attempted = attempted + 1 WHERE id IN (7, 9); UPDATE events SET message = 'x' WHERE id = 3;")
        .unwrap();
    drop(c);
    let e = report_error(&path);
    assert!(e.contains("is corrupt: table windows: rows 7, 9 fail their checksums"), "{e}");
    assert!(e.contains(&format!("the reports already written in {} are unaffected", dir.path().join("out").display())), "{e}");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("UPDATE windows SET attempted = attempted - 1 WHERE id IN (7, 9)").unwrap();
    drop(c);
    let e = report_error(&path);
    assert!(e.contains("table events: row 3 fails its checksum"), "{e}");
}

/// Moves the last phase-0 entry of the `windows_phase` index to phase 1, as one damaged byte of the
/// index page does (serial type 8, the constant 0, becomes 9, the constant 1); the index stays in
/// order, so SQLite's own check does not notice. Returns the row id whose entry moved.
fn move_index_entry_to_phase_1(path: &Path) -> i64 {
    let c = rusqlite::Connection::open(path).unwrap();
    let root: i64 = c.query_row("SELECT rootpage FROM sqlite_master WHERE name = 'windows_phase'", [], |r| r.get(0)).unwrap();
    let page_size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    drop(c);
    let mut bytes = std::fs::read(path).unwrap();
    let base = ((root - 1) * page_size) as usize;
    assert_eq!(bytes[base], 0x0a, "the index is one leaf page");
    let cells = u16::from_be_bytes([bytes[base + 3], bytes[base + 4]]) as usize;
    let mut last = None;
    for i in 0..cells {
        let p = base + 8 + 2 * i;
        let cell = base + u16::from_be_bytes([bytes[p], bytes[p + 1]]) as usize;
        // payload size (1 byte), record header size (1 byte), serial type of phase_idx, of rowid, then the rowid
        let (phase_type, rowid_type) = (bytes[cell + 2], bytes[cell + 3]);
        let rowid = match rowid_type {
            8 => 0,
            9 => 1,
            1 => i64::from(bytes[cell + 4]),
            t => panic!("rowid of serial type {t}"),
        };
        if phase_type == 8 {
            last = Some((cell + 2, rowid));
        }
    }
    let (at, rowid) = last.expect("a phase-0 entry");
    bytes[at] = 9;
    std::fs::write(path, bytes).unwrap();
    rowid
}

#[test]
fn a_damaged_index_cannot_drop_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = finished_store(dir.path());
    let moved = move_index_entry_to_phase_1(&path);
    let c = rusqlite::Connection::open(&path).unwrap();
    let check: String = c.query_row("PRAGMA quick_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok", "SQLite's page check does not see it");
    let in_phase_0: i64 = c.query_row("SELECT COUNT(*) FROM windows WHERE phase_idx = 0", [], |r| r.get(0)).unwrap();
    assert_eq!(in_phase_0, 15, "the index now hides a row of phase 0");
    drop(c);
    let e = report_error(&path);
    assert!(e.contains(&format!("table windows: its index returned the wrong windows of phase 0 (rows {moved} missing)")), "{e}");
    assert!(e.contains("REINDEX"), "{e}");
    // the repair it names works
    rusqlite::Connection::open(&path).unwrap().execute_batch("REINDEX").unwrap();
    build(&path).expect("reindexed store reports");
}

#[test]
fn events_jsonl_is_rebuilt_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = finished_store(dir.path());
    // a resumed run appends to the same file
    let live = dir.path().join("out/events.jsonl");
    let store = Store::reopen(&path, &live).unwrap();
    store.campaign_resumed();
    store.event(EventRow {
        at: at_ms(400_000),
        kind: "campaign_resumed",
        corr: "c1".into(),
        phase_idx: None,
        message: "quotes \" and\nnewlines, ünïcödé".into(),
        data: json!({"phase": 2, "nested": {"b": [1, 2.5, null], "a": "x"}}),
    });
    store.close().unwrap();
    let r = StoreReader::open(&path).unwrap();
    let rebuilt = dir.path().join("rebuilt");
    stressctl::report::write_events_jsonl(&rebuilt, &r).unwrap();
    let (a, b) = (std::fs::read(&live).unwrap(), std::fs::read(rebuilt.join("events.jsonl")).unwrap());
    assert!(a.len() > 10_000 && a.ends_with(b"\n"));
    assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
    // the whole directory, as `stressctl report` rebuilds it
    let c = stressctl::report::rebuild_reports(&r, &rebuilt).unwrap();
    let names: Vec<String> = std::fs::read_dir(&rebuilt).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    // + campaign_report.json, summary.txt, report.html, events.jsonl and the CI outputs
    assert_eq!(names.len(), c.phases.len() + 6, "{names:?}");
    for f in [stressctl::report::JUNIT_FILE, stressctl::report::SUMMARY_MD_FILE] {
        assert!(names.iter().any(|n| n == f), "{f} missing: {names:?}");
    }
}

#[test]
fn a_damaged_event_stops_the_events_jsonl_rebuild_and_leaves_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = finished_store(dir.path());
    let c = rusqlite::Connection::open(&path).unwrap();
    // no report section reads phase_started events; events.jsonl has them all
    c.execute("UPDATE events SET message = 'x' WHERE kind = 'phase_started' AND phase_idx = 1", []).unwrap();
    drop(c);
    let out = dir.path().join("out");
    let before = std::fs::read(out.join("events.jsonl")).unwrap();
    let r = StoreReader::open(&path).unwrap();
    let e = stressctl::report::rebuild_reports(&r, &out).unwrap_err().to_string();
    assert!(e.contains("table events: row") && e.contains("fails its checksum"), "{e}");
    assert_eq!(std::fs::read(out.join("events.jsonl")).unwrap(), before);
    assert!(!out.join("campaign_report.json").exists(), "nothing written from a damaged store");
}

#[test]
fn a_store_without_checksums_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = finished_store(dir.path());
    rusqlite::Connection::open(&path).unwrap().execute_batch("PRAGMA user_version = 1").unwrap();
    let e = report_error(&path);
    let newer = format!("schema version 1, older than this stressctl's {}", stressctl::store::SCHEMA_VERSION);
    assert!(e.contains(&newer) && e.contains("no record checksums"), "{e}");
}

#[test]
fn unknown_and_invalid_campaign_ids_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    finished_store(dir.path());
    assert!(StoreReader::open_campaign(dir.path(), "c1").is_ok());
    for id in ["nope", "../../x", "", "a/b"] {
        let e = StoreReader::open_campaign(dir.path(), id).err().expect(id);
        assert!(e.is_bad_input(), "{id}: {e}");
    }
}

/// The store of `finished_store` alone, as a backup or a copy holds it (no `-wal`, no `-shm`).
fn lone_store(dir: &Path) -> PathBuf {
    let path = finished_store(dir);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

#[test]
fn a_store_on_a_read_only_mount_still_reports() {
    let dir = tempfile::tempdir().unwrap();
    lone_store(dir.path());
    let (view, out, expected) = (dir.path().join("ro-view"), dir.path().join("rebuilt"), dir.path().join("expected"));
    std::fs::create_dir_all(&view).unwrap();
    // a private mount namespace (as an unprivileged user too: -r) with the state dir bound read-only
    let script = r#"mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" || exit 77
        touch "$2/probe" 2>/dev/null && exit 78
        exec "$3" report c1 --state-dir "$2" --output-dir "$4""#;
    let mut c = Command::new("unshare");
    c.args(["-rm", "sh", "-c", script, "sh"]).arg(dir.path()).arg(&view).arg(BIN).arg(&out);
    let res = run(c, Duration::from_secs(60));
    if res.code() == Some(77) || res.stderr.contains("unshare:") {
        eprintln!("SKIPPED: no read-only bind mount here (unshare -rm: {})", res.stderr.trim());
        return;
    }
    assert_ne!(res.code(), Some(78), "the bind mount is not read-only");
    res.expect_code(0);
    assert!(!dir.path().join("runs/c1/store.sqlite-shm").exists(), "nothing was created beside the store");
    // the same files as a report from the writable store
    let r = StoreReader::open(&dir.path().join("runs/c1/store.sqlite")).unwrap();
    stressctl::report::write_campaign_reports(&expected, &campaign_report(&r).unwrap()).unwrap();
    for name in ["campaign_report.json", "summary.txt", "phase_01_warmup.json"] {
        assert_eq!(std::fs::read(out.join("c1").join(name)).unwrap(), std::fs::read(expected.join(name)).unwrap(), "{name}");
    }
}

#[test]
fn running_out_of_file_descriptors_is_not_called_corruption() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    lone_store(dir.path());
    let mut c = Command::new(BIN);
    c.args(["report", "c1", "--state-dir"]).arg(dir.path()).arg("--output-dir").arg(dir.path().join("rebuilt"));
    // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        c.pre_exec(|| {
            // stdin/out/err, the store and one more: SQLite's -shm cannot be opened
            let lim = libc::rlimit { rlim_cur: 5, rlim_max: 5 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let res = run(c, Duration::from_secs(60));
    res.expect_code(1);
    let err = res.stderr.trim();
    assert!(err.contains("too many open files") && err.contains("not damaged"), "{}", res.describe());
    assert!(!err.contains("corrupt") && err.lines().count() == 1, "{}", res.describe());
}
