//! The local control channel: a Unix socket (mode 0600) in the state dir. One JSON request line,
//! one JSON answer line. Requests: `{"cmd":"status"}` and
//! `{"cmd":"stop","force":false,"reason":"..."}`.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a running campaign exposes to the control channel.
pub trait Controlled: Send + Sync + 'static {
    /// The status document.
    fn status(&self) -> Value;
    /// Stop the campaign (graceful, or at once with `force`).
    fn stop(&self, force: bool, reason: String);
}

const MAX_REQUEST: usize = 4096;

/// Binds the socket (replacing a stale file), restricts it to the owner, and serves on `tracker`
/// until `shutdown`; the socket file is removed then.
pub async fn serve(path: &Path, target: Arc<dyn Controlled>, shutdown: CancellationToken, tracker: &TaskTracker) -> std::io::Result<()> {
    if path.as_os_str().len() > 100 {
        return Err(std::io::Error::other(format!(
            "socket path {} is too long for a Unix socket; use a shorter --state-dir",
            path.display()
        )));
    }
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let owned = path.to_path_buf();
    let conns = tracker.clone();
    tracker.spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            let Ok((stream, _)) = accepted else { continue };
            let target = target.clone();
            conns.spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut line = String::new();
                let mut reader = tokio::io::BufReader::new(r.take(MAX_REQUEST as u64));
                let answer = match tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line)).await {
                    Ok(Ok(_)) => handle(target.as_ref(), &line),
                    _ => json!({"ok": false, "error": "no request"}),
                };
                let _ = w.write_all(format!("{answer}\n").as_bytes()).await;
                let _ = w.shutdown().await;
            });
        }
        let _ = std::fs::remove_file(&owned);
    });
    Ok(())
}

fn handle(target: &dyn Controlled, line: &str) -> Value {
    let req: Value = match serde_json::from_str(line.trim()) {
        Ok(v) => v,
        Err(e) => return json!({"ok": false, "error": format!("bad request: {e}")}),
    };
    match req.get("cmd").and_then(Value::as_str) {
        Some("status") => json!({"ok": true, "status": target.status()}),
        Some("stop") => {
            let force = req.get("force").and_then(Value::as_bool).unwrap_or(false);
            let reason = req.get("reason").and_then(Value::as_str).unwrap_or("emergency-stop requested").to_string();
            target.stop(force, reason);
            json!({"ok": true})
        }
        other => json!({"ok": false, "error": format!("unknown command {other:?}")}),
    }
}

/// Sends one request and reads the answer (blocking client for the CLI).
pub fn request(path: &Path, req: &Value, timeout: Duration) -> std::io::Result<Value> {
    let mut s = std::os::unix::net::UnixStream::connect(path)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(format!("{req}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| std::io::Error::other(format!("bad answer from the campaign: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Fake(Mutex<Option<(bool, String)>>);
    impl Controlled for Fake {
        fn status(&self) -> Value {
            json!({"campaign_id": "c1"})
        }
        fn stop(&self, force: bool, reason: String) {
            *self.0.lock().unwrap() = Some((force, reason));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_status_and_stop_on_a_private_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let fake = Arc::new(Fake(Mutex::new(None)));
        let stop = CancellationToken::new();
        serve(&path, fake.clone(), stop.clone(), &TaskTracker::new()).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let p = path.clone();
        let st =
            tokio::task::spawn_blocking(move || request(&p, &json!({"cmd": "status"}), Duration::from_secs(2))).await.unwrap().unwrap();
        assert_eq!(st["status"]["campaign_id"], "c1");
        let p = path.clone();
        let ack = tokio::task::spawn_blocking(move || {
            request(&p, &json!({"cmd": "stop", "force": true, "reason": "test"}), Duration::from_secs(2))
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(ack["ok"], true);
        assert_eq!(*fake.0.lock().unwrap(), Some((true, "test".to_string())));
        let p = path.clone();
        let bad = tokio::task::spawn_blocking(move || request(&p, &json!({"cmd": "nope"}), Duration::from_secs(2))).await.unwrap().unwrap();
        assert_eq!(bad["ok"], false);
        stop.cancel();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!path.exists(), "socket removed at shutdown");
    }
}
