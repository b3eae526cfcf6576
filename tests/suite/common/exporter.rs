//! A Prometheus node_exporter for the tests of watched nodes (issue 23): started on a free
//! loopback port, recorded by pid and start time, killed only as that process.

use super::{read_proc, wait_until};
use std::process::Command;
use std::time::Duration;

/// A node_exporter started by a test on 127.0.0.1, killed (by its pid, checked against its start
/// time) when dropped if it still runs.
pub struct Exporter {
    pid: i32,
    start: u64,
    port: u16,
}

impl Exporter {
    /// Debian's prometheus-node-exporter.
    pub const BIN: &'static str = "/usr/bin/prometheus-node-exporter";

    /// Starts one on a free loopback port and waits (bounded) until it answers.
    pub fn start() -> Exporter {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port");
        let child = Command::new(Self::BIN)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start prometheus-node-exporter");
        let pid = child.id() as i32;
        let start = read_proc(pid).map(|p| p.start).expect("the exporter's /proc entry");
        let e = Exporter { pid, start, port };
        let url = e.url("127.0.0.1");
        assert!(
            wait_until(Duration::from_secs(10), || Command::new("curl")
                .args(["-fsS", "--max-time", "2", "-o", "/dev/null", &url])
                .status()
                .is_ok_and(|s| s.success())),
            "node_exporter did not answer on {url}"
        );
        e
    }

    /// Its `/metrics` URL with `host` (a literal host, or `{host}` for a template).
    pub fn url(&self, host: &str) -> String {
        format!("http://{host}:{}/metrics", self.port)
    }

    /// SIGKILL, if the pid is still the process this test started; reaps it.
    pub fn kill(&self) {
        if read_proc(self.pid).is_some_and(|p| p.start == self.start && p.state != 'Z') {
            // SAFETY: kill(2) on the exporter this test started, verified by pid + start time.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
        // SAFETY: waitpid(2) on our own child; WNOHANG after a short wait so a drop never blocks.
        let _ = wait_until(Duration::from_secs(5), || unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), libc::WNOHANG) } != 0);
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.kill();
    }
}
