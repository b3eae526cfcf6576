//! Confinement of the campaign's browser and driver tree, so that it dies with stressctl and
//! cannot take the host's reservation of CPU and memory.
//!
//! Two mechanisms, each used where this process may, detected at run time:
//!
//! * [`pidns`]: every managed driver runs under a tiny init of its own PID namespace, tied to
//!   stressctl by a pipe. When stressctl exits — even SIGKILLed — the init exits and the kernel
//!   kills every process of the namespace: the driver and all the browsers it started. Needs
//!   `CAP_SYS_ADMIN`; without it drivers are plain children, and what a SIGKILL leaves is reaped
//!   by the next `launch` from the identities recorded in the store.
//! * [`cgroup`]: a per-run cgroup (v2, or v1 controllers) capping the tree at
//!   `100 − safety.reserve_percent` % of all cores and of memory. While it is in force the guardian
//!   judges the host by its CPU demand *outside* the campaign instead of total CPU (see
//!   `guardian`).
//! * [`priority`]: stressctl's own latency-sensitive threads (the live dashboard's) run at a
//!   higher priority than the browsers, so they answer on a host the campaign saturates: a nice
//!   value, and on cgroup v1 the run's orchestrator directory ([`raise_orchestrator_thread`]).
//!
//! A run installs its cgroup process-wide with [`start_run`] (one campaign per process): drivers
//! spawned while it is installed are born inside it, and guardian samplers read it. Dropping the
//! returned [`RunConfinement`] uninstalls it and removes the cgroup.

pub mod cgroup;
pub mod pidns;
pub mod priority;

use cgroup::{Plan, Reservation, RunCgroup};

use std::sync::{Arc, Mutex};

/// The run cgroup in force in this process.
static INSTALLED: Mutex<Option<Arc<RunCgroup>>> = Mutex::new(None);

fn slot() -> std::sync::MutexGuard<'static, Option<Arc<RunCgroup>>> {
    INSTALLED.lock().unwrap_or_else(|e| e.into_inner())
}

/// The run cgroup in force now, if any: drivers spawned now join it, and the guardian reads the
/// reservation and the campaign's memory from it.
pub fn installed() -> Option<Arc<RunCgroup>> {
    slot().clone()
}

/// Puts the calling thread ahead of the campaign's browsers: nice value `nice`
/// ([`priority::raise_current_thread`]) and, when `nice` is negative and the run's cgroup has a
/// v1 orchestrator directory, that directory too ([`RunCgroup::join_orchestrator`]; a nice value
/// alone does not reach the browsers' cgroup from a root-cgroup autogroup). `nice = 0` leaves the
/// thread at the browsers' priority. Err (one line per refusal) when either step was refused; the
/// other still applies.
pub fn raise_orchestrator_thread(nice: i32) -> Result<(), String> {
    let mut why = Vec::new();
    if let Err(e) = priority::raise_current_thread(nice) {
        why.push(e);
    }
    if nice < 0 {
        if let Some(cg) = installed() {
            if let Err(e) = cg.join_orchestrator() {
                why.push(format!("cannot join the orchestrator cgroup: {e}"));
            }
        }
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(why.join("; "))
    }
}

/// A run's confinement, from [`start_run`] until it is dropped (after the pool has shut down).
#[derive(Debug)]
pub struct RunConfinement {
    cgroup: Option<Arc<RunCgroup>>,
    /// Why there is no cgroup (one line), when there is none.
    why_not: Option<String>,
    /// Whether drivers run in their own PID namespaces.
    pid_namespaces: bool,
}

/// Creates and installs the cgroup of run `run_id`, keeping `reserve_percent` % of CPU and memory
/// for the host. Never fails: where confinement is impossible the result says why, and the run
/// goes on unconfined (the guardian then judges total CPU, as before).
pub fn start_run(run_id: &str, reserve_percent: u32) -> RunConfinement {
    let pid_namespaces = pidns::available();
    let name = format!("{run_id}-{}", std::process::id());
    match RunCgroup::create(&Plan::detect(), &name, reserve_percent) {
        Ok(cg) => {
            let cg = Arc::new(cg);
            *slot() = Some(cg.clone());
            tracing::info!(target: "stressctl::confine", "campaign confined: {}", cg.reservation().mechanism);
            RunConfinement { cgroup: Some(cg), why_not: None, pid_namespaces }
        }
        Err(e) => {
            tracing::warn!(target: "stressctl::confine", "campaign not confined: {e}");
            RunConfinement { cgroup: None, why_not: Some(e), pid_namespaces }
        }
    }
}

/// `80% CPU (1.6 of 2 cores) and 6348 MiB memory`: the caps of `r`, for people.
pub fn caps_text(r: &Reservation) -> String {
    let cpu = r
        .cpu_cap_percent
        .map_or("unlimited CPU".to_string(), |c| format!("{c:.0}% CPU ({:.1} of {} cores)", c / 100.0 * f64::from(r.cpus), r.cpus));
    let mem = r.memory_cap_bytes.map_or("unlimited memory".to_string(), |m| format!("{} MiB memory", m >> 20));
    format!("{cpu} and {mem}")
}

impl RunConfinement {
    /// The reservation in force (None: not confined).
    pub fn reservation(&self) -> Option<&Reservation> {
        self.cgroup.as_deref().map(RunCgroup::reservation)
    }

    /// One line for the log and the `confinement` event.
    pub fn describe(&self) -> String {
        let tree = if self.pid_namespaces {
            "browsers die with stressctl (PID namespace per driver)"
        } else {
            "no PID namespaces (needs CAP_SYS_ADMIN): a SIGKILLed stressctl leaves browsers for the next launch to reap"
        };
        match (self.reservation(), &self.why_not) {
            (Some(r), _) => format!(
                "reserve {}% for the host: campaign capped at {}; guardian judges the host's CPU demand outside the campaign; {tree}",
                r.reserve_percent,
                caps_text(r)
            ),
            (None, why) => format!("not confined ({}): guardian judges total CPU; {tree}", why.as_deref().unwrap_or("unknown reason")),
        }
    }

    /// How the run is confined (the cgroup mechanism), or why it is not: the `confinement`
    /// event's `mechanism` field.
    pub fn mechanism(&self) -> String {
        match (self.reservation(), &self.why_not) {
            (Some(r), _) => r.mechanism.clone(),
            (None, why) => why.clone().unwrap_or_default(),
        }
    }

    /// Whether drivers run in their own PID namespaces (browsers die with stressctl).
    pub fn pid_namespaces(&self) -> bool {
        self.pid_namespaces
    }
}

impl Drop for RunConfinement {
    /// Uninstalls the cgroup and removes it (killing anything still inside: by now the pool has
    /// shut down, so this only catches what escaped it).
    fn drop(&mut self) {
        let Some(cg) = self.cgroup.take() else { return };
        {
            let mut s = slot();
            if s.as_ref().is_some_and(|x| Arc::ptr_eq(x, &cg)) {
                *s = None;
            }
        }
        // the last holder (a sampler mid-sample, at worst) removes it on drop
        if let Ok(cg) = Arc::try_unwrap(cg) {
            let left = cg.remove();
            if !left.is_empty() {
                tracing::warn!(target: "stressctl::confine", "cannot remove the run's cgroup: {}", left.join("; "));
            }
        }
    }
}

/// What `stressctl check` reports about confinement, tried for real.
#[derive(Debug)]
pub struct Support {
    /// `Ok` when drivers can run in their own PID namespaces; else why not.
    pub pid_namespace: Result<(), String>,
    /// The reservation a run would get (a cgroup was created and removed); else why not.
    pub cgroup: Result<Reservation, String>,
}

/// Tries both mechanisms for real (an empty PID namespace, a cgroup created and removed).
pub fn check(reserve_percent: u32) -> Support {
    let pid_namespace = pidns::probe().map_err(|e| e.to_string());
    let cgroup = RunCgroup::create(&Plan::detect(), &format!("check-{}", std::process::id()), reserve_percent).map(|cg| {
        let r = cg.reservation().clone();
        drop(cg);
        r
    });
    Support { pid_namespace, cgroup }
}
