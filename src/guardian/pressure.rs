//! Pressure stall information (PSI, `/proc/pressure/{cpu,memory,io}`, Linux ≥ 4.20 with
//! `CONFIG_PSI`): the share of recent time in which tasks waited for a resource. `some` = at least
//! one task waited; `full` = every non-idle task waited at once, i.e. nothing useful ran — the
//! signal systemd-oomd acts on.
//!
//! The guardian judges `full` of memory and io as host distress (see [`Pressure::host_stall`]).
//! System-wide CPU pressure is recorded but not judged: a capped campaign keeps more runnable
//! threads than cores and throttles them, so `cpu some` is high from the campaign's own load
//! (measured here: ~60 % with a capped busy campaign and an idle host), and `cpu full` is not
//! defined system-wide.

use serde::Serialize;
use std::path::Path;

/// The 10-second averages of one resource's stall, percent of time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Stall {
    /// Some task waited (`some avg10`).
    pub some: f64,
    /// Every non-idle task waited at once (`full avg10`; 0 where the kernel has no `full` line).
    pub full: f64,
}

/// System-wide pressure, one sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Pressure {
    /// CPU.
    pub cpu: Stall,
    /// Memory (reclaim, swap-in, thrashing).
    pub memory: Stall,
    /// Block I/O.
    pub io: Stall,
}

impl Pressure {
    /// The host's stall, percent: the larger of memory `full` and io `full` — the share of time
    /// in which nothing on the host could run for lack of memory or disk.
    pub fn host_stall(&self) -> f64 {
        self.memory.full.max(self.io.full)
    }
}

/// Parses one `/proc/pressure/<resource>` file (`some avg10=… avg60=… avg300=… total=…`, then a
/// `full` line on most kernels). None if there is no `some` line with an `avg10`.
pub fn parse(text: &str) -> Option<Stall> {
    let avg10 = |line: &str| line.split_whitespace().find_map(|f| f.strip_prefix("avg10=")?.parse::<f64>().ok()).filter(|v| v.is_finite());
    let mut some = None;
    let mut full = 0.0;
    for line in text.lines() {
        if line.starts_with("some ") {
            some = avg10(line);
        } else if line.starts_with("full ") {
            full = avg10(line).unwrap_or(0.0);
        }
    }
    Some(Stall { some: some?, full })
}

/// Reads `<dir>/{cpu,memory,io}`; None unless all three are readable.
pub fn read_from(dir: &Path) -> Option<Pressure> {
    let one = |name: &str| std::fs::read_to_string(dir.join(name)).ok().and_then(|t| parse(&t));
    Some(Pressure { cpu: one("cpu")?, memory: one("memory")?, io: one("io")? })
}

/// The host's pressure now; None where the kernel has no PSI.
pub fn read() -> Option<Pressure> {
    read_from(Path::new("/proc/pressure"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_some_and_full() {
        let t = "some avg10=13.65 avg60=19.87 avg300=10.15 total=39870661\nfull avg10=1.50 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(parse(t), Some(Stall { some: 13.65, full: 1.5 }));
        // kernels before 5.13 have no cpu `full` line
        assert_eq!(parse("some avg10=2.00 avg60=0 avg300=0 total=1\n"), Some(Stall { some: 2.0, full: 0.0 }));
        for bad in ["", "full avg10=1.0", "some avg60=1 total=2", "some avg10=x"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn host_stall_is_memory_or_io_full() {
        let p = Pressure {
            cpu: Stall { some: 90.0, full: 0.0 },
            memory: Stall { some: 50.0, full: 12.0 },
            io: Stall { some: 30.0, full: 20.0 },
        };
        assert_eq!(p.host_stall(), 20.0);
    }

    #[test]
    fn reads_this_kernel_or_nothing() {
        match read() {
            Some(p) => assert!(p.host_stall() >= 0.0 && p.cpu.some >= 0.0),
            None => assert!(!Path::new("/proc/pressure/memory").exists()),
        }
        assert_eq!(read_from(Path::new("/nonexistent-psi")), None);
    }
}
