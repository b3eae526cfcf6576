//! The breakers of a campaign, keyed `worker:<id>`, `browser:<name>`, `task:<kind>` and
//! `hardware:<class>` (the GPU adapter class a worker's sessions reported), shared by every task
//! that runs ops.
//!
//! Each breaker sits in its own `Mutex`, held only for the state update; no lock is ever held
//! while taking another. An op resolves its breakers once with [`BreakerRegistry::gate_on`] and
//! then goes through the [`OpGate`], so the per-op path hashes no strings.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::{glob_match, Breaker, BreakerConfig, BreakerMetrics, BreakerState, ManualCommand, Outcome, Permit, Transition};

/// How many breakers are in each state, and their mean health.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AggregateCounts {
    /// Breakers in all.
    pub total: usize,
    /// Open (rejecting until their deadline).
    pub open: usize,
    /// Half-open (probing).
    pub half_open: usize,
    /// Closed (healthy).
    pub closed: usize,
    /// Forced open by hand or by a node's availability.
    pub forced_open: usize,
    /// Disabled (never reject).
    pub disabled: usize,
    /// Mean of the breakers' health, percent (100 with no breaker).
    pub average_health: f64,
}

/// Every breaker's state and counters at one moment: what the reports, `status` and the dashboard
/// show, in one typed shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistrySnapshot {
    /// Counts over all breakers.
    pub aggregate: AggregateCounts,
    /// `worker:<id>` breakers, by id.
    pub workers: BTreeMap<String, BreakerMetrics>,
    /// `browser:<name>` breakers, by name.
    pub browsers: BTreeMap<String, BreakerMetrics>,
    /// `task:<kind>` breakers, by kind.
    pub tasks: BTreeMap<String, BreakerMetrics>,
    /// `hardware:<class>` breakers, by adapter class (`swiftshader`, `lavapipe`, `nvidia`, ...):
    /// the seeds' health JSON name.
    #[serde(default)]
    pub hardware_classes: BTreeMap<String, BreakerMetrics>,
}

impl RegistrySnapshot {
    /// Every breaker as (scope prefix, name, metrics), workers first.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &String, &BreakerMetrics)> {
        let w = self.workers.iter().map(|(k, m)| ("worker", k, m));
        let b = self.browsers.iter().map(|(k, m)| ("browser", k, m));
        let t = self.tasks.iter().map(|(k, m)| ("task", k, m));
        let h = self.hardware_classes.iter().map(|(k, m)| ("hardware", k, m));
        w.chain(b).chain(t).chain(h)
    }
}

/// The four scopes, in the order a gate asks them: the most specific first, so that a broken
/// worker does not touch the shared breakers, and the scarce shared probe slots are taken last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    Worker = 0,
    Browser = 1,
    Task = 2,
    Hardware = 3,
}

impl Scope {
    const ALL: [Scope; 4] = [Scope::Worker, Scope::Browser, Scope::Task, Scope::Hardware];

    fn prefix(self) -> &'static str {
        match self {
            Scope::Worker => "worker",
            Scope::Browser => "browser",
            Scope::Task => "task",
            Scope::Hardware => "hardware",
        }
    }

    /// `worker:w1` -> (Worker, "w1").
    fn parse(key: &str) -> Option<(Scope, &str)> {
        let (prefix, name) = key.split_once(':')?;
        let scope = Scope::ALL.into_iter().find(|s| s.prefix() == prefix)?;
        (!name.is_empty()).then_some((scope, name))
    }
}

/// A breaker and its full key.
#[derive(Debug)]
struct Entry {
    key: String,
    breaker: Mutex<Breaker>,
}

impl Entry {
    fn lock(&self) -> MutexGuard<'_, Breaker> {
        // A panic while holding the lock cannot leave a breaker half-updated in a way that
        // matters more than losing the breaker would, so carry on with it.
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the breaker's queued transitions to `out`, tagged with the key.
    fn drain(&self, breaker: &mut Breaker, out: &mut Vec<(String, Transition)>) {
        out.extend(breaker.drain_transitions().into_iter().map(|t| (self.key.clone(), t)));
    }
}

type Map = RwLock<HashMap<String, Arc<Entry>>>;

/// The breakers of one campaign. `Send + Sync`: share it in an `Arc`.
#[derive(Debug)]
pub struct BreakerRegistry {
    configs: [BreakerConfig; 4],
    /// Per scope, keyed by the name without the scope prefix.
    maps: [Map; 4],
}

impl BreakerRegistry {
    /// An empty registry; breakers are created on first use with their scope's config. The
    /// hardware scope takes the task's config until [`with_hardware`](Self::with_hardware).
    pub fn new(worker: BreakerConfig, browser: BreakerConfig, task: BreakerConfig) -> BreakerRegistry {
        let hardware = task.clone();
        BreakerRegistry { configs: [worker, browser, task, hardware], maps: Default::default() }
    }

    /// The registry with `hardware:<class>` breakers on `config` (`[breaker.hardware]`).
    pub fn with_hardware(mut self, config: BreakerConfig) -> BreakerRegistry {
        self.configs[Scope::Hardware as usize] = config;
        self
    }

    /// The breakers of `worker:<worker>`, `browser:<browser>` and `task:<task>`, created if new.
    pub fn gate(&self, worker: &str, browser: &str, task: &str) -> OpGate {
        self.gate_on(worker, browser, task, None)
    }

    /// [`gate`](Self::gate), and `hardware:<class>` too once the worker's adapter class is known
    /// (ops before the first adapter report pass no hardware breaker).
    pub fn gate_on(&self, worker: &str, browser: &str, task: &str, hardware: Option<&str>) -> OpGate {
        OpGate {
            entries: [self.entry(Scope::Worker, worker), self.entry(Scope::Browser, browser), self.entry(Scope::Task, task)],
            hardware: hardware.map(|h| self.entry(Scope::Hardware, h)),
        }
    }

    /// The state at `now` of the breaker with this key, if it exists.
    pub fn state(&self, key: &str, now: Instant) -> Option<BreakerState> {
        Some(self.find(key)?.lock().state(now))
    }

    /// `ids` reordered for the scheduler: workers whose breaker is closed (or disabled, or not
    /// created yet) first, then half-open ones, then open and forced-open ones. The order within
    /// each rank is kept.
    pub fn prefer_workers<'a>(&self, ids: &'a [String], now: Instant) -> Vec<&'a str> {
        let rank = |state: BreakerState| match state {
            BreakerState::Closed | BreakerState::Disabled => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open | BreakerState::ForcedOpen => 2,
        };
        let entries: Vec<Option<Arc<Entry>>> = {
            let workers = read(&self.maps[Scope::Worker as usize]);
            ids.iter().map(|id| workers.get(id.as_str()).cloned()).collect()
        };
        let mut ranked: Vec<(u8, &str)> =
            ids.iter().zip(entries).map(|(id, entry)| (entry.map_or(0, |e| rank(e.lock().state(now))), id.as_str())).collect();
        ranked.sort_by_key(|&(rank, _)| rank); // stable
        ranked.into_iter().map(|(_, id)| id).collect()
    }

    /// Forces the breaker with this key open (creating it if new) and returns the transitions
    /// it went through; `None` if the key has no `worker:`, `browser:` or `task:` prefix.
    pub fn force_open(&self, key: &str, now: Instant) -> Option<Vec<Transition>> {
        self.control(key, |b| b.force_open(now))
    }

    /// Disables the breaker with this key, like [`force_open`](Self::force_open).
    pub fn disable(&self, key: &str, now: Instant) -> Option<Vec<Transition>> {
        self.control(key, |b| b.disable(now))
    }

    /// Resets the breaker with this key to `Closed`, like [`force_open`](Self::force_open).
    pub fn reset(&self, key: &str, now: Instant) -> Option<Vec<Transition>> {
        self.control(key, |b| b.reset(now))
    }

    /// Applies an operator's command to the breaker with this key (creating it if new), with
    /// `why` as the reason of the transition; `None` if the key has no scope prefix.
    pub fn command(&self, key: &str, cmd: ManualCommand, now: Instant, why: String) -> Option<Vec<Transition>> {
        self.control(key, |b| b.command(cmd, now, why))
    }

    /// Creates the breaker with this key if it is new, so that it is listed (and can be
    /// commanded) before its first op; false if the key has no scope prefix.
    pub fn ensure(&self, key: &str) -> bool {
        Scope::parse(key).map(|(scope, name)| self.entry(scope, name)).is_some()
    }

    /// Every breaker's key, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.entries().iter().map(|e| e.key.clone()).collect();
        keys.sort();
        keys
    }

    /// The keys of the breakers that `pattern` names ([`glob_match`]), sorted.
    pub fn matching(&self, pattern: &str) -> Vec<String> {
        self.keys().into_iter().filter(|k| glob_match(pattern, k)).collect()
    }

    /// Takes every queued transition of every breaker. Gates hand out transitions as they go;
    /// this is for the ones nobody has collected yet, e.g. at the end of a phase.
    pub fn drain_transitions(&self) -> Vec<(String, Transition)> {
        let mut out = Vec::new();
        for entry in self.entries() {
            entry.drain(&mut entry.lock(), &mut out);
        }
        out
    }

    /// Every breaker's metrics, grouped by scope, with the aggregate counts the dashboard and the
    /// reports show (`{"aggregate":{..},"workers":{<id>:metrics},"browsers":{..},"tasks":{..}}` as
    /// JSON). `anchor` pairs an `Instant` with its wall-clock time, to render transition times.
    pub fn snapshot(&self, now: Instant, anchor: (Instant, SystemTime)) -> RegistrySnapshot {
        let mut groups: [BTreeMap<String, BreakerMetrics>; 4] = Default::default();
        let mut agg = AggregateCounts::default();
        let mut health = 0.0;
        for (scope, group) in Scope::ALL.into_iter().zip(&mut groups) {
            let entries: Vec<(String, Arc<Entry>)> =
                read(&self.maps[scope as usize]).iter().map(|(k, e)| (k.clone(), Arc::clone(e))).collect();
            for (name, entry) in entries {
                // Copy under the lock, render outside it.
                let mut copy = entry.lock().clone();
                copy.advance(now);
                let m = copy.report(now, anchor);
                agg.total += 1;
                health += m.health_percent;
                *match m.state {
                    BreakerState::Closed => &mut agg.closed,
                    BreakerState::Open => &mut agg.open,
                    BreakerState::HalfOpen => &mut agg.half_open,
                    BreakerState::ForcedOpen => &mut agg.forced_open,
                    BreakerState::Disabled => &mut agg.disabled,
                } += 1;
                group.insert(name, m);
            }
        }
        agg.average_health = if agg.total == 0 { 100.0 } else { health / agg.total as f64 };
        let [workers, browsers, tasks, hardware_classes] = groups;
        RegistrySnapshot { aggregate: agg, workers, browsers, tasks, hardware_classes }
    }

    fn entry(&self, scope: Scope, name: &str) -> Arc<Entry> {
        let map = &self.maps[scope as usize];
        if let Some(entry) = read(map).get(name) {
            return Arc::clone(entry);
        }
        let mut map = map.write().unwrap_or_else(PoisonError::into_inner);
        let entry = map.entry(name.to_owned()).or_insert_with(|| {
            let breaker = Breaker::new(self.configs[scope as usize].clone());
            Arc::new(Entry { key: format!("{}:{name}", scope.prefix()), breaker: Mutex::new(breaker) })
        });
        Arc::clone(entry)
    }

    fn find(&self, key: &str) -> Option<Arc<Entry>> {
        let (scope, name) = Scope::parse(key)?;
        read(&self.maps[scope as usize]).get(name).cloned()
    }

    fn entries(&self) -> Vec<Arc<Entry>> {
        self.maps.iter().flat_map(|map| read(map).values().cloned().collect::<Vec<_>>()).collect()
    }

    fn control(&self, key: &str, f: impl FnOnce(&mut Breaker)) -> Option<Vec<Transition>> {
        let (scope, name) = Scope::parse(key)?;
        let entry = self.entry(scope, name);
        let mut breaker = entry.lock();
        f(&mut breaker);
        Some(breaker.drain_transitions())
    }
}

fn read(map: &Map) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Entry>>> {
    map.read().unwrap_or_else(PoisonError::into_inner)
}

/// The worker, browser, task (and hardware, once known) breakers of one kind of op, resolved
/// once. Cheap to clone.
#[derive(Clone, Debug)]
pub struct OpGate {
    entries: [Arc<Entry>; 3],
    /// `hardware:<class>`, when the worker's adapter class is known.
    hardware: Option<Arc<Entry>>,
}

/// Permission from every breaker of a gate; hand it back to [`OpGate::record`] of the same
/// gate (with [`Outcome::Ignored`] if the op did not run).
#[must_use = "record the permit's outcome (Outcome::Ignored if the op did not run)"]
#[derive(Debug)]
pub struct OpPermit {
    /// `Some` for each breaker of the gate (worker, browser, task, hardware); an array of options
    /// so that no permit is ever lost on the way.
    permits: [Option<Permit>; 4],
}

/// Why [`OpGate::try_acquire`] refused an op.
#[derive(Clone, Debug, PartialEq)]
pub struct GateRejected {
    /// The key of the breaker that refused, e.g. `worker:w1`.
    pub key: String,
    /// Its state: `Open`, `HalfOpen` or `ForcedOpen`.
    pub state: BreakerState,
    /// For `Open`, the time left until its deadline.
    pub retry_after: Option<Duration>,
    /// Transitions that were queued on the breakers asked (e.g. another breaker moving from
    /// `Open` to `HalfOpen`), so that none goes unseen.
    pub transitions: Vec<(String, Transition)>,
}

impl fmt::Display for GateRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rejected by {} ({})", self.key, self.state)?;
        if let Some(after) = self.retry_after {
            write!(f, ", retry in {after:?}")?;
        }
        Ok(())
    }
}

impl std::error::Error for GateRejected {}

impl OpGate {
    /// The three keys: worker, browser, task.
    pub fn keys(&self) -> [&str; 3] {
        [&self.entries[0].key, &self.entries[1].key, &self.entries[2].key]
    }

    /// The `hardware:<class>` key, when the gate has one.
    pub fn hardware_key(&self) -> Option<&str> {
        self.hardware.as_deref().map(|e| e.key.as_str())
    }

    /// Worker, browser, task, then hardware when known.
    fn all(&self) -> impl Iterator<Item = &Arc<Entry>> {
        self.entries.iter().chain(self.hardware.iter())
    }

    /// Asks the worker, browser, task and (once known) hardware breakers, in that order. If one
    /// refuses, the permits already taken are released (as [`Outcome::Ignored`]) so no half-open
    /// probe slot leaks.
    pub fn try_acquire(&self, now: Instant) -> Result<OpPermit, GateRejected> {
        let mut permits = [None, None, None, None];
        for (i, entry) in self.all().enumerate() {
            // Bound first, so the guard is dropped before the error path locks again.
            let acquired = entry.lock().acquire(now);
            match acquired {
                Ok(permit) => permits[i] = Some(permit),
                Err(rejected) => {
                    let mut transitions = Vec::new();
                    for (entry, permit) in self.all().take(i + 1).zip(permits) {
                        let mut breaker = entry.lock();
                        if let Some(permit) = permit {
                            breaker.record(permit, Outcome::Ignored, now);
                        }
                        entry.drain(&mut breaker, &mut transitions);
                    }
                    return Err(GateRejected {
                        key: entry.key.clone(),
                        state: rejected.state,
                        retry_after: rejected.retry_after,
                        transitions,
                    });
                }
            }
        }
        Ok(OpPermit { permits })
    }

    /// Records the op's outcome on every breaker of the gate; returns the transitions queued on them
    /// since they were last drained (including `Open -> HalfOpen` from the acquire), oldest
    /// first per breaker.
    pub fn record(&self, permit: OpPermit, outcome: Outcome, now: Instant) -> Vec<(String, Transition)> {
        self.record_each(permit, [outcome; 4], now)
    }

    /// Records an op with a separate outcome per scope (worker, browser, task, hardware), so that
    /// a failure is held against the scope it belongs to: a driver that cannot be reached is the
    /// worker's fault, not the browser's or the task's; a GPU error the task's and the adapter
    /// class's (`Outcome::Ignored` leaves a scope untouched; a gate without a hardware breaker
    /// ignores the fourth outcome).
    pub fn record_each(&self, permit: OpPermit, outcomes: [Outcome; 4], now: Instant) -> Vec<(String, Transition)> {
        let mut transitions = Vec::new();
        for ((entry, permit), outcome) in self.all().zip(permit.permits).zip(outcomes) {
            let mut breaker = entry.lock();
            if let Some(permit) = permit {
                breaker.record(permit, outcome, now);
            }
            if breaker.undrained > 0 {
                entry.drain(&mut breaker, &mut transitions);
            }
        }
        transitions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;
    use BreakerState::{Closed, Disabled, ForcedOpen, HalfOpen, Open};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Opens on the first failure, closes on the first probe success.
    fn touchy() -> BreakerConfig {
        BreakerConfig { failure_threshold: 1, success_threshold: 1, ..BreakerConfig::default() }
    }

    /// Never opens on its own.
    fn sturdy() -> BreakerConfig {
        BreakerConfig { failure_threshold: 1000, failure_rate_threshold: 100.0, ..BreakerConfig::default() }
    }

    fn anchor(t0: Instant) -> (Instant, SystemTime) {
        (t0, UNIX_EPOCH + secs(1_700_000_000))
    }

    fn op(gate: &OpGate, outcome: Outcome, now: Instant) -> Vec<(String, Transition)> {
        let permit = gate.try_acquire(now).expect("permitted");
        gate.record(permit, outcome, now)
    }

    fn edges(ts: &[(String, Transition)]) -> Vec<(&str, BreakerState, BreakerState)> {
        ts.iter().map(|(k, t)| (k.as_str(), t.from, t.to)).collect()
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<BreakerRegistry>();
        check::<OpGate>();
        check::<OpPermit>();
        check::<GateRejected>();
    }

    #[test]
    fn keys_and_lookup() {
        let t0 = Instant::now();
        let reg = BreakerRegistry::new(sturdy(), sturdy(), sturdy());
        assert_eq!(reg.state("worker:w1", t0), None);
        let gate = reg.gate("w1", "chromium", "webgpu");
        assert_eq!(gate.keys(), ["worker:w1", "browser:chromium", "task:webgpu"]);
        assert_eq!(reg.state("worker:w1", t0), Some(Closed));
        assert_eq!(reg.state("browser:chromium", t0), Some(Closed));
        assert_eq!(reg.state("task:webgpu", t0), Some(Closed));
        for bad in ["w1", "worker:", "gpu:w1", "browser:firefox"] {
            assert_eq!(reg.state(bad, t0), None, "{bad}");
        }
        // A second gate shares the breakers.
        let again = reg.gate("w1", "chromium", "webgpu");
        assert!(Arc::ptr_eq(&gate.entries[2], &again.entries[2]));
    }

    #[test]
    fn each_scope_gets_its_own_config() {
        let t0 = Instant::now();
        let reg = BreakerRegistry::new(touchy(), sturdy(), sturdy());
        let gate = reg.gate("w1", "chromium", "webgpu");
        let ts = op(&gate, Outcome::Failure, t0);
        assert_eq!(edges(&ts), [("worker:w1", Closed, Open)]);
        let rejected = gate.try_acquire(t0 + secs(1)).expect_err("worker open");
        assert_eq!((rejected.key.as_str(), rejected.state, rejected.retry_after), ("worker:w1", Open, Some(secs(9))));
        assert_eq!(rejected.to_string(), "rejected by worker:w1 (open), retry in 9s");
        assert_eq!(reg.state("browser:chromium", t0), Some(Closed));
    }

    #[test]
    fn a_rejection_releases_the_permits_already_taken() {
        let t0 = Instant::now();
        // worker:w2 and task:webgpu open on one failure; the browser never opens.
        let reg = BreakerRegistry::new(touchy(), sturdy(), BreakerConfig { failure_threshold: 1, ..BreakerConfig::default() });
        let w1 = reg.gate("w1", "chromium", "webgpu");
        let w2 = reg.gate("w2", "chromium", "webgpu");
        let ts = op(&w2, Outcome::Failure, t0);
        assert_eq!(edges(&ts), [("worker:w2", Closed, Open), ("task:webgpu", Closed, Open)]);

        // Just after 10 s both are half-open with one probe slot each. w1 takes the task's slot.
        let t1 = t0 + secs(10) + Duration::from_nanos(1);
        let p1 = w1.try_acquire(t1).expect("w1 probes the task");
        // w2 gets its worker probe slot and a browser permit, then the task refuses:
        // both must be handed back.
        let rejected = w2.try_acquire(t1).expect_err("task slot taken");
        assert_eq!((rejected.key.as_str(), rejected.state, rejected.retry_after), ("task:webgpu", HalfOpen, None));
        assert_eq!(edges(&rejected.transitions), [("worker:w2", Open, HalfOpen), ("task:webgpu", Open, HalfOpen)]);
        let snap = serde_json::to_value(reg.snapshot(t1, anchor(t0))).unwrap();
        assert_eq!(snap["workers"]["w2"]["calls"], 1);
        assert_eq!(snap["workers"]["w2"]["rejected"], 0);
        assert_eq!(snap["tasks"]["webgpu"]["rejected"], 1);

        // The task probe succeeds (success_threshold 2: still half-open, slot free again).
        assert!(w1.record(p1, Outcome::Success, t1).is_empty());
        assert_eq!(reg.state("task:webgpu", t1), Some(HalfOpen));
        // Had w2's worker slot leaked, worker:w2 would refuse here.
        let p2 = w2.try_acquire(t1).expect("w2's worker slot was released");
        let ts = w2.record(p2, Outcome::Success, t1);
        assert_eq!(edges(&ts), [("worker:w2", HalfOpen, Closed), ("task:webgpu", HalfOpen, Closed)]);
        let snap = serde_json::to_value(reg.snapshot(t1, anchor(t0))).unwrap();
        assert_eq!(snap["browsers"]["chromium"]["calls"], 3);
        assert_eq!(snap["browsers"]["chromium"]["rejected"], 0);
    }

    #[test]
    fn a_rejection_by_the_worker_does_not_touch_the_shared_breakers() {
        let t0 = Instant::now();
        let reg = BreakerRegistry::new(sturdy(), sturdy(), sturdy());
        let gate = reg.gate("w1", "chromium", "webgpu");
        reg.force_open("worker:w1", t0).expect("valid key");
        let rejected = gate.try_acquire(t0).expect_err("forced open");
        assert_eq!((rejected.key.as_str(), rejected.state, rejected.retry_after), ("worker:w1", ForcedOpen, None));
        assert!(rejected.transitions.is_empty());
        let snap = serde_json::to_value(reg.snapshot(t0, anchor(t0))).unwrap();
        assert_eq!(snap["browsers"]["chromium"]["rejected"], 0);
        assert_eq!(snap["tasks"]["webgpu"]["rejected"], 0);
    }

    #[test]
    fn manual_control_by_key() {
        let t0 = Instant::now();
        let reg = BreakerRegistry::new(sturdy(), sturdy(), sturdy());
        // Works before first use, so a worker can be kept out from the start.
        let ts = reg.force_open("worker:w9", t0).expect("valid key");
        assert_eq!(ts.iter().map(|t| (t.from, t.to)).collect::<Vec<_>>(), [(Closed, ForcedOpen)]);
        assert_eq!(reg.state("worker:w9", t0), Some(ForcedOpen));
        assert_eq!(reg.force_open("worker:w9", t0).map(|ts| ts.len()), Some(0));
        assert_eq!(reg.disable("browser:firefox", t0).map(|ts| ts.len()), Some(1));
        assert_eq!(reg.state("browser:firefox", t0), Some(Disabled));
        assert_eq!(reg.reset("worker:w9", t0).map(|ts| ts.len()), Some(1));
        assert_eq!(reg.state("worker:w9", t0), Some(Closed));
        assert_eq!(reg.reset("gpu:x", t0), None);
        assert_eq!(reg.force_open("worker:", t0), None);
    }

    #[test]
    fn the_hardware_scope_gates_and_counts_only_what_is_held_against_it() {
        let t0 = Instant::now();
        let reg = BreakerRegistry::new(sturdy(), sturdy(), sturdy()).with_hardware(touchy());
        assert_eq!(reg.gate("w1", "chromium", "webgpu").hardware_key(), None, "no class known: no hardware breaker");
        let gate = reg.gate_on("w1", "chromium", "webgpu", Some("swiftshader"));
        assert_eq!(gate.hardware_key(), Some("hardware:swiftshader"));
        // a GPU error: the task and the adapter class, not the worker or the browser
        let gpu_error = [Outcome::Ignored, Outcome::Ignored, Outcome::Failure, Outcome::Failure];
        let p = gate.try_acquire(t0).expect("closed");
        let ts = gate.record_each(p, gpu_error, t0);
        assert_eq!(edges(&ts), [("hardware:swiftshader", Closed, Open)], "touchy opens at the first failure");
        let r = gate.try_acquire(t0).expect_err("the hardware breaker refuses");
        assert_eq!((r.key.as_str(), r.state), ("hardware:swiftshader", Open));
        // another class is not touched
        let other = reg.gate_on("w2", "firefox", "webgpu", Some("lavapipe"));
        let p = other.try_acquire(t0).expect("lavapipe is closed");
        let _ = other.record(p, Outcome::Success, t0);
        let snap = reg.snapshot(t0, anchor(t0));
        assert_eq!(snap.hardware_classes.keys().collect::<Vec<_>>(), ["lavapipe", "swiftshader"]);
        assert_eq!(snap.hardware_classes["swiftshader"].state, Open);
        assert_eq!(snap.workers["w1"].failures, 0);
        assert!(reg.keys().contains(&"hardware:lavapipe".to_string()));
        assert_eq!(reg.command("hardware:swiftshader", ManualCommand::Reset, t0, "r".into()).map(|t| t.len()), Some(1));
    }

    #[test]
    fn commands_keys_and_patterns() {
        let t0 = Instant::now();
        let reg = BreakerRegistry::new(sturdy(), sturdy(), sturdy());
        assert!(reg.ensure("worker:grid/n1") && reg.ensure("worker:grid/n2") && reg.ensure("worker:w1"));
        assert!(!reg.ensure("gpu:x"));
        let _ = reg.gate("w1", "chromium", "webgpu");
        assert_eq!(reg.keys(), ["browser:chromium", "task:webgpu", "worker:grid/n1", "worker:grid/n2", "worker:w1"]);
        assert_eq!(reg.matching("worker:grid/*"), ["worker:grid/n1", "worker:grid/n2"]);
        assert!(reg.matching("worker:nope").is_empty());
        let ts = reg.command("worker:grid/n1", ManualCommand::Open, t0, "operator open".into()).expect("valid key");
        assert_eq!(ts.iter().map(|t| (t.from, t.to, t.reason.as_str())).collect::<Vec<_>>(), [(Closed, ForcedOpen, "operator open")]);
        assert_eq!(reg.state("worker:grid/n1", t0), Some(ForcedOpen));
        assert_eq!(reg.prefer_workers(&["grid/n1".to_string(), "grid/n2".to_string()], t0), ["grid/n2", "grid/n1"]);
        let ts = reg.command("worker:grid/n1", ManualCommand::Close, t0, "operator close".into()).expect("valid key");
        assert_eq!(ts.len(), 1);
        assert_eq!(reg.state("worker:grid/n1", t0), Some(Closed));
    }

    #[test]
    fn prefer_workers_ranks_closed_then_half_open_then_open() {
        let t0 = Instant::now() + secs(3600);
        let reg = BreakerRegistry::new(touchy(), sturdy(), sturdy());
        op(&reg.gate("w1", "chromium", "webgpu"), Outcome::Failure, t0); // open until 10 s
        op(&reg.gate("w2", "chromium", "webgpu"), Outcome::Success, t0); // closed
        op(&reg.gate("w3", "chromium", "webgpu"), Outcome::Failure, t0 - secs(5)); // half-open from 5 s
        reg.force_open("worker:w4", t0);
        reg.disable("worker:w6", t0);
        op(&reg.gate("w7", "chromium", "webgpu"), Outcome::Failure, t0); // open, like w1
        let ids: Vec<String> = ["w1", "w2", "w3", "w4", "w5", "w6", "w7"].map(String::from).to_vec();
        // w5 has no breaker yet: it counts as closed.
        assert_eq!(reg.prefer_workers(&ids, t0 + secs(6)), ["w2", "w5", "w6", "w3", "w1", "w4", "w7"]);
        // At 10 s w1 and w7 are still open (the deadline is exclusive); just after, half-open too.
        assert_eq!(reg.prefer_workers(&ids, t0 + secs(10)), ["w2", "w5", "w6", "w3", "w1", "w4", "w7"]);
        let after = t0 + secs(10) + Duration::from_nanos(1);
        assert_eq!(reg.prefer_workers(&ids, after), ["w2", "w5", "w6", "w1", "w3", "w7", "w4"]);
        assert!(reg.prefer_workers(&[], t0).is_empty());
    }

    #[test]
    fn snapshot_shape() {
        let t0 = Instant::now() + secs(3600);
        let reg = BreakerRegistry::new(touchy(), sturdy(), sturdy());
        let empty = serde_json::to_value(reg.snapshot(t0, anchor(t0))).unwrap();
        assert_eq!(
            empty,
            serde_json::json!({
                "aggregate": {"total": 0, "open": 0, "half_open": 0, "closed": 0, "forced_open": 0, "disabled": 0, "average_health": 100.0},
                "workers": {}, "browsers": {}, "tasks": {}, "hardware_classes": {}
            })
        );

        op(&reg.gate("w1", "chromium", "webgpu"), Outcome::Failure, t0);
        op(&reg.gate("w2", "chromium", "webgpu"), Outcome::Success, t0);
        op(&reg.gate("w3", "firefox", "webnn"), Outcome::Failure, t0 - secs(20));
        reg.force_open("worker:w4", t0);
        reg.disable("task:page", t0);
        let snap = serde_json::to_value(reg.snapshot(t0 + Duration::from_millis(1500), anchor(t0))).unwrap();

        let keys = |v: &serde_json::Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(keys(&snap), ["aggregate", "browsers", "hardware_classes", "tasks", "workers"]);
        assert_eq!(keys(&snap["workers"]), ["w1", "w2", "w3", "w4"]);
        assert_eq!(keys(&snap["browsers"]), ["chromium", "firefox"]);
        assert_eq!(keys(&snap["tasks"]), ["page", "webgpu", "webnn"]);
        let agg = &snap["aggregate"];
        assert_eq!(keys(agg), ["average_health", "closed", "disabled", "forced_open", "half_open", "open", "total"]);
        // 9 breakers: w1 open, w3 half-open (its 10 s have passed), w4 forced open, task:page disabled.
        assert_eq!((agg["total"].as_u64(), agg["open"].as_u64(), agg["half_open"].as_u64()), (Some(9), Some(1), Some(1)));
        assert_eq!((agg["closed"].as_u64(), agg["forced_open"].as_u64(), agg["disabled"].as_u64()), (Some(5), Some(1), Some(1)));
        // Health: w1 0%, w3 0%, chromium 50%, firefox 0%, webgpu 50%, webnn 0%, the rest 100%.
        assert_eq!(agg["average_health"].as_f64(), Some(400.0 / 9.0));

        let w1 = &snap["workers"]["w1"];
        assert_eq!(w1["state"], "open");
        assert_eq!(w1["total_open_time_ms"], 1500);
        assert_eq!(w1["history"][0]["at"], "2023-11-14T22:13:20.000Z");
        assert_eq!(w1["history"][0]["to"], "open");
        let fields = keys(w1);
        for f in ["calls", "successes", "failures", "rejected", "opens", "recoveries", "total_open_time_ms", "mean_open_time_ms"] {
            assert!(fields.contains(&f.to_string()), "{f} missing from {fields:?}");
        }
        for f in ["health_percent", "window_calls", "open_timeout_ms", "consecutive_opens", "history", "history_dropped", "state"] {
            assert!(fields.contains(&f.to_string()), "{f} missing from {fields:?}");
        }
        assert_eq!(snap["workers"]["w3"]["state"], "half_open");
        assert_eq!(snap["workers"]["w4"]["state"], "forced_open");
        assert_eq!(snap["tasks"]["page"]["state"], "disabled");

        // The snapshot is a query: w3's move to half-open is still queued for the gates.
        let queued = reg.drain_transitions();
        assert!(!edges(&queued).contains(&("worker:w3", Open, HalfOpen)));
        let p = reg.gate("w3", "firefox", "webnn").try_acquire(t0 + secs(2)).expect("probe");
        let ts = reg.gate("w3", "firefox", "webnn").record(p, Outcome::Success, t0 + secs(2));
        assert_eq!(edges(&ts), [("worker:w3", Open, HalfOpen), ("worker:w3", HalfOpen, Closed)]);
    }

    #[test]
    fn concurrent_ops_add_up() {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::thread;

        const THREADS: u64 = 4;
        const OPS: u64 = 10_000;
        // Short timeouts on a microsecond clock, so the breakers cycle many times.
        let config = BreakerConfig {
            recovery_timeout: Duration::from_millis(1),
            max_recovery_timeout: Duration::from_millis(8),
            half_open_max_calls: 2,
            ..BreakerConfig::default()
        };
        // The browser and task breakers see the same outcomes; different thresholds and timeouts
        // keep them out of step, so that each scope gets to reject ops.
        let browser = BreakerConfig { failure_threshold: 2, ..config.clone() };
        let task = BreakerConfig {
            failure_threshold: 2,
            recovery_timeout: Duration::from_millis(3),
            max_recovery_timeout: Duration::from_millis(12),
            ..config.clone()
        };
        let reg = BreakerRegistry::new(config, browser, task);
        let clock = AtomicU64::new(0);
        let t0 = Instant::now();

        #[derive(Default)]
        struct Tally {
            recorded: u64,
            ignored: u64,
            rejected: HashMap<String, u64>,
            transitions: u64,
        }
        let tallies: Vec<Tally> = thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|i| {
                    let (reg, clock) = (&reg, &clock);
                    s.spawn(move || {
                        let gate = reg.gate(&format!("w{i}"), "chromium", "webgpu");
                        let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ (i + 1);
                        let mut tally = Tally::default();
                        for _ in 0..OPS {
                            let now = t0 + Duration::from_micros(10 * clock.fetch_add(1, Ordering::Relaxed));
                            // xorshift64
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            let outcome = match rng % 100 {
                                0..=29 => Outcome::Failure,
                                30..=34 => Outcome::Ignored,
                                _ => Outcome::Success,
                            };
                            match gate.try_acquire(now) {
                                Ok(permit) => {
                                    if outcome == Outcome::Ignored {
                                        tally.ignored += 1;
                                    } else {
                                        tally.recorded += 1;
                                    }
                                    tally.transitions += gate.record(permit, outcome, now).len() as u64;
                                }
                                Err(rejected) => {
                                    *tally.rejected.entry(rejected.key).or_default() += 1;
                                    tally.transitions += rejected.transitions.len() as u64;
                                }
                            }
                        }
                        tally
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("no panic")).collect()
        });

        let now = t0 + Duration::from_micros(10 * clock.load(Ordering::Relaxed));
        let snap = serde_json::to_value(reg.snapshot(now, anchor(t0))).unwrap();
        let n = |v: &serde_json::Value| v.as_u64().expect("a count");
        let recorded: u64 = tallies.iter().map(|t| t.recorded).sum();
        let rejected = |key: &str| tallies.iter().map(|t| t.rejected.get(key).copied().unwrap_or(0)).sum::<u64>();

        let mut transitions_seen: u64 = tallies.iter().map(|t| t.transitions).sum();
        transitions_seen += reg.drain_transitions().len() as u64;
        let mut transitions_made = 0;
        for (i, tally) in tallies.iter().enumerate() {
            let accepted = tally.recorded + tally.ignored;
            let rejections: u64 = tally.rejected.values().sum();
            assert_eq!(accepted + rejections, OPS);
            let m = &snap["workers"][format!("w{i}")];
            assert_eq!(n(&m["calls"]), tally.recorded);
            assert_eq!(n(&m["rejected"]), rejected(&format!("worker:w{i}")));
        }
        // A snapshot shows an open breaker past its deadline as half-open, with that transition in
        // its history, before any acquire has made it; at t0 every deadline is still ahead.
        let unadvanced = serde_json::to_value(reg.snapshot(t0, anchor(t0))).unwrap();
        for (group, name) in
            [("workers", "w0"), ("workers", "w1"), ("workers", "w2"), ("workers", "w3"), ("browsers", "chromium"), ("tasks", "webgpu")]
        {
            let m = &snap[group][name];
            assert_eq!(n(&m["successes"]) + n(&m["failures"]), n(&m["calls"]));
            let m = &unadvanced[group][name];
            transitions_made += n(&m["history_dropped"]) + m["history"].as_array().map_or(0, |h| h.len() as u64);
        }
        // Every op the gate let through was recorded on all three breakers.
        assert_eq!(n(&snap["browsers"]["chromium"]["calls"]), recorded);
        assert_eq!(n(&snap["tasks"]["webgpu"]["calls"]), recorded);
        assert_eq!(n(&snap["browsers"]["chromium"]["rejected"]), rejected("browser:chromium"));
        assert_eq!(n(&snap["tasks"]["webgpu"]["rejected"]), rejected("task:webgpu"));
        // Every transition was handed out exactly once.
        assert_eq!(transitions_seen, transitions_made);
        // And the run did exercise the breakers.
        assert!(n(&snap["tasks"]["webgpu"]["opens"]) > 10, "{}", snap["tasks"]["webgpu"]);
        assert!(n(&snap["tasks"]["webgpu"]["recoveries"]) > 0, "{}", snap["tasks"]["webgpu"]);
        let rejections: Vec<_> = tallies.iter().map(|t| &t.rejected).collect();
        for scope in ["worker:", "browser:", "task:"] {
            assert!(rejections.iter().flat_map(|r| r.keys()).any(|k| k.starts_with(scope)), "no {scope} rejections: {rejections:?}");
        }
    }
}
