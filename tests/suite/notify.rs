//! Notifications (`[[notify]]`) against real HTTP receivers on 127.0.0.1: one that answers 200,
//! one that answers 500, one that never answers. Synthetic campaigns: no browser is needed to
//! trip the guardian or end a campaign.

use crate::common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a receiver answers.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Ok,
    Fail,
    Hang,
}

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Got {
    head: String,
    body: Value,
}

/// A receiver on 127.0.0.1 that records every request; it stops with the test (bounded: at most
/// two minutes).
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn start(answer: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (got.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut held: Vec<TcpStream> = Vec::new(); // the hanging receiver's connections
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                        if let Some(req) = read_request(&mut stream) {
                            g.lock().unwrap().push(req);
                        }
                        match answer {
                            Answer::Ok => {
                                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                            }
                            Answer::Fail => {
                                let _ = stream
                                    .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\nboom");
                            }
                            Answer::Hang => held.push(stream),
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Receiver { addr, got, stop }
    }

    fn url(&self) -> String {
        format!("http://{}/hook/secret-path", self.addr)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads one HTTP/1.1 request (head and a Content-Length body).
fn read_request(s: &mut TcpStream) -> Option<Got> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or(Value::Null);
    Some(Got { head, body })
}

fn notify_table(url: &str, extra: &str) -> String {
    format!("\n[[notify]]\nurl = \"{url}\"\n{extra}\n")
}

#[test]
fn notifications_arrive_for_a_guardian_trip_and_a_verdict() {
    let rx = Receiver::start(Answer::Ok);
    let sb = Sandbox::new("notify-trip");
    // memory in use is always above 1 %: the guardian trips after three samples
    let safety =
        "[safety]\nsample_interval = \"250ms\"\nmemory_percent = 1\ncpu_percent = 100\ndisk_percent = 100\nconsecutive_violations = 3\n";
    let cfg = sb.write(
        "n.toml",
        &format!(
            "[campaign]\nname = \"notify\"\nprogressive_escalation = false\nauto_recovery = false\n\n{safety}{}{}{}",
            synthetic_task("1ms", 0.0),
            phase("long", "60s", 1, ""),
            notify_table(&rx.url(), "on = [\"guardian_trip\", \"verdict\"]\ntoken_env = \"STRESSCTL_TEST_NOTIFY_TOKEN\"")
        ),
    );
    let mut cmd = sb.launch(&cfg);
    cmd.env("STRESSCTL_TEST_NOTIFY_TOKEN", "s3cret-token-for-the-test");
    let out = run(cmd, Duration::from_secs(90));
    out.expect_code(1);
    let id = out.campaign_id();
    let got = rx.got();
    let events: Vec<&str> = got.iter().filter_map(|g| g.body["event"].as_str()).collect();
    assert_eq!(events, ["guardian_trip", "verdict"], "{got:?}");
    for g in &got {
        assert!(g.head.starts_with("POST /hook/secret-path HTTP/1.1"), "{}", g.head);
        assert!(g.head.contains("authorization: Bearer s3cret-token-for-the-test"), "{}", g.head);
        assert!(g.head.to_ascii_lowercase().contains("content-type: application/json"), "{}", g.head);
        assert_eq!(g.body["campaign_id"], id.as_str());
        assert_eq!(g.body["source"], "stressctl");
        assert!(g.body["figures"]["ops_attempted"].as_u64().unwrap_or(0) > 0, "{}", g.body);
        let summary = g.body["reports"]["summary"].as_str().expect("reports.summary");
        assert!(summary.ends_with(&format!("{id}/summary.txt")), "{summary}");
    }
    let trip = &got[0].body;
    assert!(trip["reason"].as_str().unwrap_or_default().contains("memory"), "{trip}");
    assert_eq!(trip["figures"]["cause"], "guardian");
    assert_eq!(got[1].body["figures"]["outcome"], "emergency_stopped");
    let dir = sb.campaign_dir();
    let r = read_json(&dir.join("campaign_report.json"));
    assert_eq!(r["notifications"]["sent"], 2, "{}", r["notifications"]);
    assert_eq!(r["notifications"]["failed"], 0);
    let summary = std::fs::read_to_string(dir.join("summary.txt")).expect("summary");
    assert!(summary.contains("2 delivered, 0 failed, 0 dropped"), "{summary}");
    let text = std::fs::read_to_string(dir.join("events.jsonl")).expect("events");
    assert!(!text.contains("s3cret") && !text.contains("secret-path"), "the token and the URL's path stay out of the record");
}

#[test]
fn a_receiver_that_fails_or_hangs_is_counted_and_the_campaign_goes_on() {
    let failing = Receiver::start(Answer::Fail);
    let hanging = Receiver::start(Answer::Hang);
    let sb = Sandbox::new("notify-bad");
    let cfg = sb.write(
        "n.toml",
        &format!(
            "{}{}{}{}{}",
            header("notify-bad", ""),
            synthetic_task("1ms", 0.0),
            phase("short", "2s", 2, ""),
            notify_table(&failing.url(), "on = [\"verdict\"]\ntimeout = \"500ms\"\nretries = 2"),
            notify_table(&hanging.url(), "on = [\"verdict\"]\ntimeout = \"500ms\"\nretries = 1")
        ),
    );
    let out = run(sb.launch(&cfg), Duration::from_secs(90));
    out.expect_code(0);
    assert_eq!(failing.got().len(), 3, "one attempt and two retries");
    assert_eq!(hanging.got().len(), 2, "one attempt and one retry");
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let n = &r["notifications"];
    assert_eq!((n["sent"].as_u64(), n["failed"].as_u64()), (Some(0), Some(2)), "{n}");
    let errors: Vec<&str> = n["failures"].as_array().expect("failures").iter().filter_map(|f| f["error"].as_str()).collect();
    assert!(errors.iter().any(|e| e.contains("500")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("no answer within 500ms")), "{errors:?}");
    assert!(r["totals"]["ops_succeeded"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn check_sends_a_test_notification_and_bad_notify_settings_exit_2() {
    let rx = Receiver::start(Answer::Ok);
    let sb = Sandbox::new("notify-check");
    let base = format!("{}{}{}", header("notify-check", ""), synthetic_task("1ms", 0.0), phase("p", "2s", 1, ""));
    let cfg = sb.write("ok.toml", &format!("{base}{}", notify_table(&rx.url(), "")));
    let out = run(sb.cmd(["check", "--config", cfg.to_str().unwrap()]), Duration::from_secs(120));
    assert!(out.stdout.contains("test notification delivered to http://127.0.0.1:"), "{}", out.describe());
    let got = rx.got();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].body["event"].as_str(), got[0].body["test"].as_bool()), (Some("test"), Some(true)));

    let bad = sb.write("bad.toml", &format!("{base}{}", notify_table("ftp//nowhere", "")));
    let out = run(sb.cmd(["check", "--config", bad.to_str().unwrap()]), Duration::from_secs(30));
    out.expect_code(2);
    assert!(out.stderr.contains("notify[0].url"), "{}", out.describe());
    let out = run(sb.launch(&bad), Duration::from_secs(30));
    out.expect_code(2);
    assert!(out.stderr.contains("notify[0].url"), "{}", out.describe());

    let no_token = sb.write("tok.toml", &format!("{base}{}", notify_table(&rx.url(), "token_env = \"STRESSCTL_TEST_UNSET_TOKEN_VAR\"")));
    let mut cmd = sb.launch(&no_token);
    cmd.env_remove("STRESSCTL_TEST_UNSET_TOKEN_VAR");
    let out = run(cmd, Duration::from_secs(30));
    out.expect_code(2);
    assert!(out.stderr.contains("notify[0].token_env") && out.stderr.contains("STRESSCTL_TEST_UNSET_TOKEN_VAR"), "{}", out.describe());
}
