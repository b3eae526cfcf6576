//! Writes an 8-hour campaign store for `scripts/bench-drift.sh`: the `overnight` profile's eight
//! phases (8 h, 2–15 sessions) as a run on this machine records them, through the real store API
//! ([`Store`]): one op window per session per second (10 ops shared by the sessions' ~100 ops/s,
//! round-trip and in-page histograms, a GPU error now and then), a guardian sample every 2 s with
//! each browser's RSS (a browser recycled every 1000 ops of its session, growing slowly), and the
//! phase rows. With `--no-drift` the stored config sets `drift_min_phase = "2d"`, so `stressctl
//! report` of that store analyses no phase and not the campaign: the same rows, without the
//! drift analysis.
//!
//! `cargo run --release --example drift_store -- STATE_DIR ID [--no-drift]`
//!
//! `--time STATE_DIR ID` times, in this process, the store reads the drift analysis adds (every
//! phase's and the campaign's time buckets of the windows and browser RSS series) against the
//! whole campaign report, three times each, and prints the fastest and slowest of each: the
//! analysis' share, less disturbed by the other work of a shared machine than two reports' wall
//! times.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use stressctl::config::{Config, OVERNIGHT_PROFILE};
use stressctl::metrics::{encode_histogram, new_histogram, record_latency};
use stressctl::store::{store_path, BrowserRss, CampaignRecord, HostFigures, PhaseStart, SampleRow, Store, StoreReader, WindowRow};

/// Ops per second over all sessions (SwiftShader on this machine's 2 cores).
const OPS_PER_S: u64 = 100;

/// A fixed LCG: the same store on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--time") {
        return time_scans(args.get(1).ok_or("usage: drift_store --time STATE_DIR ID")?, args.get(2).ok_or("no ID")?);
    }
    let (Some(state), Some(id)) = (args.first(), args.get(1)) else {
        return Err("usage: drift_store STATE_DIR ID [--no-drift]".into());
    };
    let no_drift = args.iter().any(|a| a == "--no-drift");
    let text = if no_drift {
        OVERNIGHT_PROFILE.replacen("[campaign]\n", "[campaign]\ndrift_min_phase = \"2d\"\n", 1)
    } else {
        OVERNIGHT_PROFILE.to_string()
    };
    let cfg = Config::parse(&text, "overnight")?;
    let state = PathBuf::from(state);
    let path = store_path(&state, id)?;
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let t0_ms = 1_800_000_000_000u64;
    let rec = CampaignRecord {
        id: id.clone(),
        profile: "overnight".into(),
        config_source: "<profile overnight>".into(),
        config_text: text.clone(),
        started_at: t0,
        output_dir: state.join("out"),
    };
    let store = Store::create(&path, &rec, &path.with_file_name("events.jsonl"))?;
    let mut rng = Lcg(7);
    let (mut windows, mut samples) = (0u64, 0u64);
    let mut start = 0u64;
    // per slot: its browser (pid, start time), ops so far, RSS base
    let mut browsers: Vec<(u32, u64, u64)> = Vec::new();
    let mut next_pid = 1000u32;
    for (idx, p) in cfg.phases.iter().enumerate() {
        let idx = idx as u32;
        let len_s = p.duration.as_secs();
        store.phase_started(PhaseStart {
            idx,
            name: p.name.clone(),
            stress_level: p.stress_level.as_str(),
            task_kind: "webgpu",
            sessions_planned: p.sessions,
            sessions: p.sessions,
            duration_planned: p.duration,
            min_success_rate: p.criteria.min_success_rate,
            max_p95_ms: p.criteria.max_p95.as_millis() as u64,
            notes: vec![],
            started_at: t0 + Duration::from_secs(start),
        });
        let per_slot = (OPS_PER_S / u64::from(p.sessions)).max(1);
        while browsers.len() < p.sessions as usize {
            next_pid += 1;
            browsers.push((next_pid, u64::from(next_pid), 0));
        }
        for s in 0..len_s {
            let now_ms = t0_ms + (start + s) * 1000;
            for slot in 0..p.sessions {
                let (mut rt, mut ip) = (new_histogram(), new_histogram());
                for _ in 0..per_slot {
                    let ms = 15.0 + 10.0 * rng.next();
                    record_latency(&mut ip, Duration::from_micros((ms * 1000.0) as u64));
                    record_latency(&mut rt, Duration::from_micros((ms * 1000.0) as u64 + 2000));
                }
                let gpu = u64::from(rng.next() < 0.001);
                store.window(WindowRow {
                    phase_idx: idx,
                    worker: "w1".into(),
                    slot,
                    task_kind: "webgpu",
                    start_ms: now_ms as i64,
                    end_ms: (now_ms + 1000) as i64,
                    attempted: per_slot,
                    succeeded: per_slot - gpu,
                    failed: gpu,
                    verified: per_slot - gpu,
                    errors: if gpu > 0 { "{\"gpu_error\":1}".into() } else { "{}".into() },
                    hist: encode_histogram(&rt),
                    hist_in_page: encode_histogram(&ip),
                    console: 0,
                });
                windows += 1;
                let b = &mut browsers[slot as usize];
                b.2 += per_slot;
                if b.2 >= 1000 {
                    next_pid += 1;
                    *b = (next_pid, u64::from(next_pid), 0);
                }
            }
            if s % 2 == 0 {
                let live = browsers[..p.sessions as usize]
                    .iter()
                    .map(|&(pid, st, ops)| BrowserRss {
                        pid,
                        start_time: st,
                        rss_bytes: (250 << 20) + ops * 40_000 + (rng.next() * 8e6) as u64,
                    })
                    .collect();
                store.sample(SampleRow {
                    at: t0 + Duration::from_millis((start + s) * 1000),
                    phase_idx: Some(idx),
                    cpu: 60.0 + 30.0 * rng.next(),
                    memory: 40.0,
                    disk: 20.0,
                    tree_rss_bytes: u64::from(p.sessions) * (300 << 20),
                    tree_cpu: 180.0,
                    tree_processes: 4 * p.sessions,
                    health: 80.0,
                    violations: "[]".into(),
                    host: HostFigures { campaign_cpu: 80.0, host_cpu: 10.0, ..Default::default() },
                    browsers: live,
                });
                samples += 1;
            }
        }
        store.phase_progress(idx, p.duration);
        store.phase_ended(idx, "completed", p.duration);
        start += len_s;
    }
    store.campaign_ended("passed", None);
    store.close()?;
    println!("{} windows, {} samples over {} h: {}", windows, samples, start as f64 / 3600.0, path.display());
    Ok(())
}

/// The bucket length the report's drift analysis uses for a series spanning `span_ms` (about 120
/// buckets of whole seconds).
fn bucket_ms(span_ms: u64) -> u64 {
    (span_ms / 120).div_ceil(1000).max(1) * 1000
}

/// `--time`: the drift analysis' store reads against the whole report, in this process.
fn time_scans(state: &str, id: &str) -> Result<(), Box<dyn std::error::Error>> {
    let r = StoreReader::open_campaign(std::path::Path::new(state), id)?;
    let phases = r.phases()?;
    let span: u64 = phases.iter().map(|p| p.elapsed_ms).sum();
    let (mut scans, mut reports) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let t = std::time::Instant::now();
        for p in &phases {
            std::hint::black_box(r.window_buckets(Some(p.idx), bucket_ms(p.elapsed_ms))?);
            std::hint::black_box(r.browser_rss(Some(p.idx))?);
        }
        std::hint::black_box(r.window_buckets(None, bucket_ms(span))?);
        std::hint::black_box(r.browser_rss(None)?);
        scans.push(t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        std::hint::black_box(stressctl::report::campaign_report(&r)?);
        reports.push(t.elapsed().as_secs_f64());
    }
    let range = |v: &[f64]| (v.iter().copied().fold(f64::MAX, f64::min), v.iter().copied().fold(0.0, f64::max));
    let ((s0, s1), (r0, r1)) = (range(&scans), range(&reports));
    println!("drift analysis store reads: {s0:.3}..{s1:.3} s; whole campaign report (drift included): {r0:.3}..{r1:.3} s");
    Ok(())
}
