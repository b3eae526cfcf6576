//! A Prometheus node_exporter for the tests of watched nodes (issue 23): started on a free
//! loopback port as this test's own child, killed only as that child (never by name).

use super::wait_until;
use std::process::Command;
use std::time::Duration;

/// A node_exporter started by a test on 127.0.0.1, killed (by its pid, checked against its start
/// time) when dropped if it still runs.
pub struct Exporter {
    /// Our own child: unreaped until [`Exporter::kill`] waits for it, so its pid cannot be reused.
    child: std::process::Child,
    port: u16,
}

impl Exporter {
    /// Debian's prometheus-node-exporter.
    pub const BIN: &'static str = "/usr/bin/prometheus-node-exporter";

    /// Starts one on a free loopback port and waits (bounded) until it answers.
    pub fn start() -> Exporter {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port");
        Exporter::start_on(port)
    }

    /// Starts one on `port` (one that was killed coming back at the same URL) and waits
    /// (bounded) until it answers.
    pub fn start_on(port: u16) -> Exporter {
        let child = Command::new(Self::BIN)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start prometheus-node-exporter");
        let e = Exporter { child, port };
        let url = e.url("127.0.0.1");
        let answers =
            || Command::new("curl").args(["-fsS", "--max-time", "2", "-o", "/dev/null", &url]).status().is_ok_and(|s| s.success());
        assert!(wait_until(Duration::from_secs(10), answers), "node_exporter did not answer on {url}");
        e
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its `/metrics` URL with `host` (a literal host, or `{host}` for a template).
    pub fn url(&self, host: &str) -> String {
        format!("http://{host}:{}/metrics", self.port)
    }

    /// SIGKILL (our own child, by its pid) and reap it; nothing when it already ended.
    pub fn kill(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.kill();
    }
}
