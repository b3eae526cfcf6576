//! The local control channel: a Unix socket (mode 0600) in the state dir. One JSON request line,
//! one JSON answer line. Requests: `{"cmd":"status"}`,
//! `{"cmd":"stop","force":false,"reason":"..."}`, `{"cmd":"breakers"}` (every breaker, as
//! [`BreakerRow`]s) and `{"cmd":"breaker","action":"open","scopes":["worker:w1"],"reason":"..."}`
//! ([`BreakerRequest`]; who asked is the peer's uid from `SO_PEERCRED`, never the request's word).
//!
//! Whoever can connect must never be able to take the campaign down, so the server spends a
//! bounded number of descriptors and no CPU on connections that do nothing:
//! - at most [`MAX_CONNECTIONS`] are open at once, and never more than a quarter of the
//!   process's descriptor limit, so the store, the logs and the drivers keep the other three
//!   quarters whatever clients do; a connection beyond that is accepted and
//!   closed at once with a one-line `busy` answer, unless it can take the place of the oldest
//!   connection that has sent no request for [`IDLE_GRACE`] (so idle connections can never lock
//!   out `stressctl status`);
//! - a connection has [`REQUEST_TIMEOUT`] to send its request (at most [`MAX_REQUEST`] bytes)
//!   and read the answer;
//! - when `accept` fails for lack of descriptors (`EMFILE`, `ENFILE`), a descriptor held in
//!   reserve is released so that the waiting connections can be accepted and refused (the
//!   "reserve fd" trick of libuv and nginx) instead of the loop spinning on them, and the loop
//!   backs off (100 ms doubling to 1 s) when even that does not help; each episode is logged
//!   once.
//!
//! [`raise_nofile_limit`] raises the process's soft descriptor limit to its hard limit, so that the
//! store, logs and sockets have room on systems whose soft default is small (1024).

use super::breakers::{BreakerDone, BreakerRefusal, BreakerRequest, BreakerRow};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a running campaign exposes to the control channel.
pub trait Controlled: Send + Sync + 'static {
    /// The status document.
    fn status(&self) -> Value;
    /// Stop the campaign (graceful, or at once with `force`).
    fn stop(&self, force: bool, reason: String);
    /// Every breaker of the campaign now.
    fn breakers(&self) -> Vec<BreakerRow>;
    /// Applies an operator's breaker command (all of it, or nothing when a scope is unknown).
    fn breaker_command(&self, req: BreakerRequest) -> Result<BreakerDone, BreakerRefusal>;
}

/// Control connections open at once. The CLI opens one per command and closes it within
/// milliseconds, so 64 is far more than operators need and a small, fixed share of descriptors.
/// A low descriptor limit lowers it further (see [`connection_cap`]).
pub const MAX_CONNECTIONS: usize = 64;
/// How long a connection has to send its request and read the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection younger than this is never displaced by a newer one: the CLI sends its request
/// right after connecting, so only a connection idle for longer can be a squatter.
pub const IDLE_GRACE: Duration = Duration::from_millis(100);
/// The longest request line read; a longer one is answered `bad request`.
pub const MAX_REQUEST: usize = 4096;
/// First and longest pause of the accept loop after an accept error it cannot work around.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Waiting connections refused in one go while out of descriptors, before the loop yields.
const MAX_SHED: usize = 1024;

/// How many control connections may be open at once: [`MAX_CONNECTIONS`], or a quarter of the
/// soft descriptor limit if that is lower (at least 4).
fn connection_cap() -> usize {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 { lim.rlim_cur } else { 1024 };
    usize::try_from(soft / 4).unwrap_or(usize::MAX).clamp(4, MAX_CONNECTIONS)
}

/// Binds the socket (replacing a stale file), restricts it to the owner, and serves on `tracker`
/// until `shutdown`. The socket file is removed then, or when the runtime drops the server (a run
/// that ended on an error without cancelling `shutdown` leaves no socket behind either).
pub async fn serve(path: &Path, target: Arc<dyn Controlled>, shutdown: CancellationToken, tracker: &TaskTracker) -> std::io::Result<()> {
    if path.as_os_str().len() > 100 {
        return Err(std::io::Error::other(format!(
            "socket path {} is too long for a Unix socket; use a shorter --state-dir",
            path.display()
        )));
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let socket_file = RemoveOnDrop(path.to_path_buf());
    let conns = tracker.clone();
    tracker.spawn(async move {
        let _socket_file = socket_file;
        accept_loop(&listener, target, &shutdown, &conns).await;
    });
    Ok(())
}

/// Removes the socket file when the server ends, however it ends.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One open control connection, as the accept loop sees it.
#[derive(Debug)]
struct Conn {
    /// When it was accepted: only connections idle past [`IDLE_GRACE`] may be displaced.
    accepted: Instant,
    /// Set once its whole request is in: it is doing real work and is never displaced.
    busy: AtomicBool,
    /// Set when its task has ended (its descriptor is closed): its place is free.
    done: AtomicBool,
    /// Cancelled to make it give its place to a newer connection.
    evict: CancellationToken,
}

impl Conn {
    fn new(accepted: Instant) -> Arc<Conn> {
        Arc::new(Conn { accepted, busy: AtomicBool::new(false), done: AtomicBool::new(false), evict: CancellationToken::new() })
    }
}

/// What to do with a newly accepted connection.
#[derive(Debug)]
enum Admit {
    /// Serve it.
    Yes(Arc<Conn>),
    /// Serve it in the place of this idle connection, which is told to go.
    Displace { new: Arc<Conn>, old: Arc<Conn> },
    /// Every place is taken by a connection that is working or still young: refuse it.
    Refuse,
}

/// The open connections, oldest first, and the cap.
#[derive(Debug)]
struct Admission {
    live: Vec<Arc<Conn>>,
    cap: usize,
}

impl Admission {
    fn new(cap: usize) -> Admission {
        Admission { live: Vec::with_capacity(cap), cap }
    }

    /// Decides on a connection accepted at `now` and records it if it is let in.
    fn admit(&mut self, now: Instant) -> Admit {
        self.live.retain(|c| !c.done.load(Ordering::Acquire));
        if self.live.len() < self.cap {
            let new = Conn::new(now);
            self.live.push(new.clone());
            return Admit::Yes(new);
        }
        let idle =
            self.live.iter().position(|c| !c.busy.load(Ordering::Acquire) && now.saturating_duration_since(c.accepted) >= IDLE_GRACE);
        match idle {
            Some(i) => {
                let old = self.live.remove(i);
                let new = Conn::new(now);
                self.live.push(new.clone());
                Admit::Displace { new, old }
            }
            None => Admit::Refuse,
        }
    }
}

/// The answer a refused or displaced connection gets. `busy` tells [`request`] to try again.
fn busy_answer(why: &str) -> Value {
    json!({"ok": false, "busy": true, "error": format!("{why}; try again")})
}

/// Accepts until `shutdown`; see the module doc for the limits it keeps.
async fn accept_loop(listener: &UnixListener, target: Arc<dyn Controlled>, shutdown: &CancellationToken, conns: &TaskTracker) {
    let cap = connection_cap();
    let mut admission = Admission::new(cap);
    let mut reserve = Reserve::open();
    let mut trouble = Trouble::default();
    let mut refused: u64 = 0;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                trouble.failed(&e);
                let shed = if is_out_of_descriptors(&e) { shed_waiting(listener, &mut reserve).await } else { 0 };
                if shed == 0 {
                    // Nothing could be done about it now: wait instead of spinning on the error.
                    let pause = trouble.pause();
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    reserve.refill();
                }
                continue;
            }
        };
        trouble.recovered();
        reserve.refill();
        let conn = match admission.admit(Instant::now()) {
            Admit::Yes(conn) => conn,
            Admit::Displace { new, old } => {
                old.evict.cancel();
                new
            }
            Admit::Refuse => {
                refused += 1;
                if refused.is_power_of_two() {
                    tracing::warn!("control socket: {refused} connection(s) refused so far: {cap} are open and busy");
                }
                refuse(stream, &format!("the campaign's control socket has {cap} connections open"));
                continue;
            }
        };
        conns.spawn(serve_connection(stream, conn, target.clone(), shutdown.clone()));
    }
}

/// Reads one request from `stream`, answers it and closes, within [`REQUEST_TIMEOUT`].
async fn serve_connection(stream: UnixStream, conn: Arc<Conn>, target: Arc<dyn Controlled>, shutdown: CancellationToken) {
    /// Frees the connection's place however the task ends.
    struct Done(Arc<Conn>);
    impl Drop for Done {
        fn drop(&mut self) {
            self.0.done.store(true, Ordering::Release);
        }
    }
    let _done = Done(conn.clone());
    let uid = stream.peer_cred().ok().map(|c| c.uid());
    let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
    let (r, mut w) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(r.take(MAX_REQUEST as u64));
    let mut line = String::new();
    let answer = tokio::select! {
        _ = conn.evict.cancelled() => busy_answer("this idle connection made room for a newer one"),
        _ = shutdown.cancelled() => json!({"ok": false, "error": "the campaign is shutting down"}),
        read = tokio::time::timeout_at(deadline, reader.read_line(&mut line)) => match read {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {
                conn.busy.store(true, Ordering::Release);
                handle(target.as_ref(), &line, uid)
            }
            Err(_) => json!({"ok": false, "error": format!("no request within {REQUEST_TIMEOUT:?}")}),
        },
    };
    let write = async {
        w.write_all(format!("{answer}\n").as_bytes()).await?;
        w.shutdown().await
    };
    let _ = tokio::time::timeout_at(deadline + Duration::from_secs(1), write).await;
}

/// Closes a connection at once with a one-line `busy` answer; never waits.
fn refuse(stream: UnixStream, why: &str) {
    let Ok(stream) = stream.into_std() else { return };
    // The socket is non-blocking. Read what the client already sent, so that closing does not
    // reset the connection before it reads the answer.
    let mut sink = [0u8; 512];
    let _ = (&stream).read(&mut sink);
    let _ = (&stream).write_all(format!("{}\n", busy_answer(why)).as_bytes());
}

/// Whether an accept error concerns only the connection being accepted (it is gone).
fn is_per_connection(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::ECONNRESET | libc::EPERM))
}

/// Whether an accept error means the process or the system is out of descriptors.
fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// The reserve-fd trick: gives up the reserved descriptor, accepts and refuses every connection
/// waiting in the backlog (so their clients get an answer instead of the loop spinning on
/// them), and takes the reserve back. Returns how many were refused.
///
/// Called right after `accept` failed: the listener is known to be readable then, so each poll
/// below runs the `accept` syscall, and an empty backlog (`EAGAIN`) ends the loop at once.
async fn shed_waiting(listener: &UnixListener, reserve: &mut Reserve) -> usize {
    if !reserve.release() {
        return 0;
    }
    let mut shed = 0;
    for _ in 0..MAX_SHED {
        // Poll accept once: a waiting connection is accepted, an empty backlog ends the loop.
        let next = tokio::select! {
            biased;
            a = listener.accept() => Some(a),
            _ = std::future::ready(()) => None,
        };
        match next {
            Some(Ok((stream, _))) => {
                refuse(stream, "the campaign is out of file descriptors");
                shed += 1;
            }
            Some(Err(e)) if is_per_connection(&e) => {}
            _ => break,
        }
    }
    reserve.refill();
    shed
}

/// One descriptor (`/dev/null`) held so that it can be given up when the process runs out.
struct Reserve(Option<std::fs::File>);

impl Reserve {
    fn open() -> Reserve {
        let mut r = Reserve(None);
        r.refill();
        r
    }

    /// Takes the reserve back if it is not held (fails quietly while descriptors are short).
    fn refill(&mut self) {
        if self.0.is_none() {
            self.0 = std::fs::File::open("/dev/null").ok();
        }
    }

    /// Closes the reserve; false if it was not held.
    fn release(&mut self) -> bool {
        self.0.take().is_some()
    }
}

/// An episode of accept errors: logged once when it starts and once when it ends, with a pause
/// that doubles from [`BACKOFF_FIRST`] to [`BACKOFF_MAX`].
#[derive(Default)]
struct Trouble {
    errors: u64,
    pause: Option<Duration>,
}

impl Trouble {
    fn failed(&mut self, e: &std::io::Error) {
        if self.errors == 0 {
            tracing::warn!("control socket: accept failed: {e}; refusing control connections and backing off until it recovers");
        }
        self.errors += 1;
    }

    fn pause(&mut self) -> Duration {
        let next = match self.pause {
            None => BACKOFF_FIRST,
            Some(p) => (p * 2).min(BACKOFF_MAX),
        };
        self.pause = Some(next);
        next
    }

    fn recovered(&mut self) {
        if self.errors > 0 {
            tracing::warn!("control socket: accepting again after {} failed accept(s)", self.errors);
            *self = Trouble::default();
        }
    }
}

fn handle(target: &dyn Controlled, line: &str, uid: Option<u32>) -> Value {
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
        Some("breakers") => json!({"ok": true, "breakers": target.breakers()}),
        Some("breaker") => match serde_json::from_value::<BreakerRequest>(req.clone()) {
            Ok(mut r) => {
                r.uid = uid;
                match target.breaker_command(r) {
                    Ok(done) => json!({"ok": true, "done": done}),
                    Err(refusal) => json!({"ok": false, "error": refusal.to_string(), "refusal": refusal}),
                }
            }
            Err(e) => json!({"ok": false, "error": format!("bad breaker request: {e}")}),
        },
        other => json!({"ok": false, "error": format!("unknown command {other:?}")}),
    }
}

/// Sends one request and reads the answer (blocking client for the CLI). A connection the
/// campaign refused because it was busy (a `busy` answer, or closed without an answer) is tried
/// again until `timeout` has passed.
pub fn request(path: &Path, req: &Value, timeout: Duration) -> std::io::Result<Value> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        let busy = match request_once(path, req, left) {
            Ok(answer) if answer.get("busy").and_then(Value::as_bool) == Some(true) => std::io::Error::other(format!(
                "the campaign is busy: {}",
                answer.get("error").and_then(Value::as_str).unwrap_or("no reason given")
            )),
            Ok(answer) => return Ok(answer),
            Err(e) if is_refusal(&e) => e,
            Err(e) => return Err(e),
        };
        if Instant::now() + pause >= deadline {
            return Err(busy);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Whether a client error means the server closed the connection without answering (refused or
/// displaced while busy), which is worth another try; a missing socket or a timeout is not.
fn is_refusal(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::UnexpectedEof)
}

fn request_once(path: &Path, req: &Value, timeout: Duration) -> std::io::Result<Value> {
    let mut s = std::os::unix::net::UnixStream::connect(path)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(format!("{req}\n").as_bytes())?;
    let mut line = String::new();
    if BufReader::new(s).read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the campaign closed the connection without an answer"));
    }
    serde_json::from_str(&line).map_err(|e| std::io::Error::other(format!("bad answer from the campaign: {e}")))
}

/// The descriptor limits of this process after [`raise_nofile_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft limit before.
    pub was: u64,
    /// The soft limit now.
    pub soft: u64,
    /// The hard limit (unchanged).
    pub hard: u64,
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit.
///
/// Why: the soft default is often 1024 while the hard limit is far higher; a campaign holds the
/// store (database, WAL, shared memory), log files, the events file, driver pipes and control
/// connections, and running out makes the store impossible to open. Children (drivers,
/// browsers) inherit the raised limit; Chromium and chromedriver use epoll, not `select`, so a
/// limit above 1024 does not hurt them. Call it once at startup, before the store is opened.
/// An unlimited hard limit is left alone (Linux refuses an unlimited soft limit for this
/// resource), as is a soft limit already at the hard one. Both outcomes are logged, so callers
/// may ignore the result.
pub fn raise_nofile_limit() -> std::io::Result<NofileLimit> {
    let failed = |what: &str| {
        let e = std::io::Error::last_os_error();
        tracing::warn!("cannot {what} the descriptor limit: {e}; keeping it as it is");
        e
    };
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(failed("read"));
    }
    let was = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max && lim.rlim_max != libc::RLIM_INFINITY {
        let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(failed("raise"));
        }
        lim = raised;
    }
    tracing::debug!("descriptor limit: soft {was} -> {}, hard {}", lim.rlim_cur, lim.rlim_max);
    Ok(NofileLimit { was, soft: lim.rlim_cur, hard: lim.rlim_max })
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
        fn breakers(&self) -> Vec<BreakerRow> {
            Vec::new()
        }
        /// Echoes the uid it was given as the one key, so the test sees what the server read.
        fn breaker_command(&self, req: BreakerRequest) -> Result<BreakerDone, BreakerRefusal> {
            if req.scopes.iter().any(|s| s == "worker:nope") {
                return Err(BreakerRefusal::UnknownScopes { unknown: vec!["worker:nope".into()], known: vec!["worker:w1".into()] });
            }
            Ok(BreakerDone { keys: vec![format!("uid {:?} {}", req.uid, req.action)], transitions: Vec::new() })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn breaker_commands_carry_the_peer_uid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let stop = CancellationToken::new();
        serve(&path, Arc::new(Fake(Mutex::new(None))), stop.clone(), &TaskTracker::new()).await.unwrap();
        let p = path.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let req = json!({"cmd": "breaker", "action": "open", "scopes": ["worker:w1"], "reason": "r", "uid": 0});
            request(&p, &req, Duration::from_secs(2))
        })
        .await
        .unwrap()
        .unwrap();
        // SAFETY: getuid has no preconditions.
        let me = unsafe { libc::getuid() };
        assert_eq!(ok["done"]["keys"][0], format!("uid Some({me}) open"), "{ok}");
        let p = path.clone();
        let refused = tokio::task::spawn_blocking(move || {
            request(&p, &json!({"cmd": "breaker", "action": "close", "scopes": ["worker:nope"]}), Duration::from_secs(2))
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(refused["ok"], false);
        assert_eq!(refused["refusal"]["refusal"], "unknown_scopes", "{refused}");
        let p = path.clone();
        let bad = tokio::task::spawn_blocking(move || {
            request(&p, &json!({"cmd": "breaker", "action": "explode", "scopes": ["worker:w1"]}), Duration::from_secs(2))
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(bad["ok"], false);
        stop.cancel();
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

    #[test]
    fn the_socket_file_goes_with_the_runtime_even_without_a_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let never = CancellationToken::new();
        rt.block_on(serve(&path, Arc::new(Fake(Mutex::new(None))), never.clone(), &TaskTracker::new())).unwrap();
        assert!(path.exists());
        drop(rt);
        assert!(!path.exists(), "socket left behind by a run that ended without cancelling the server");
    }

    #[test]
    fn admission_caps_displaces_only_old_idle_connections_and_refuses_the_rest() {
        let t0 = Instant::now();
        let mut a = Admission::new(3);
        let conns: Vec<Arc<Conn>> = (0..3)
            .map(|i| match a.admit(t0 + Duration::from_millis(i)) {
                Admit::Yes(c) => c,
                other => panic!("connection {i} under the cap: {other:?}"),
            })
            .collect();
        // Full, and every connection is younger than the grace: refused.
        assert!(matches!(a.admit(t0 + Duration::from_millis(50)), Admit::Refuse));
        // A connection that is working is never displaced; the oldest idle one is.
        conns[0].busy.store(true, Ordering::Release);
        let later = t0 + IDLE_GRACE + Duration::from_millis(10);
        match a.admit(later) {
            Admit::Displace { old, .. } => assert!(Arc::ptr_eq(&old, &conns[1])),
            other => panic!("expected to displace the oldest idle connection: {other:?}"),
        }
        // A finished connection frees its place.
        conns[2].done.store(true, Ordering::Release);
        assert!(matches!(a.admit(later), Admit::Yes(_)));
        // Now: conns[0] busy, and two young ones: refused.
        assert!(matches!(a.admit(later), Admit::Refuse));
        assert_eq!(a.live.len(), 3);
    }

    /// Waits up to `within` for a line on each of `conns` (non-blocking polls) and returns how
    /// many answered `busy`.
    fn busy_answers(conns: &[std::os::unix::net::UnixStream], want: usize, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        let mut answered = vec![false; conns.len()];
        let mut busy = 0;
        for s in conns {
            s.set_nonblocking(true).unwrap();
        }
        while busy < want && Instant::now() < deadline {
            for (s, done) in conns.iter().zip(answered.iter_mut()).filter(|(_, d)| !**d) {
                let mut buf = [0u8; 512];
                if let Ok(n) = (&*s).read(&mut buf) {
                    *done = true;
                    if String::from_utf8_lossy(&buf[..n]).contains("\"busy\":true") {
                        busy += 1;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        busy
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_connections_are_capped_and_never_lock_out_a_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let stop = CancellationToken::new();
        serve(&path, Arc::new(Fake(Mutex::new(None))), stop.clone(), &TaskTracker::new()).await.unwrap();
        let cap = connection_cap();
        let p = path.clone();
        let (busy, st, took, held) = tokio::task::spawn_blocking(move || {
            // Hold three times the cap open without sending anything: all but `cap` of them are
            // answered `busy` and closed at once (refused, or displaced once idle).
            let held: Vec<_> = (0..3 * cap).map(|_| std::os::unix::net::UnixStream::connect(&p).unwrap()).collect();
            let busy = busy_answers(&held, 2 * cap, Duration::from_secs(5));
            std::thread::sleep(IDLE_GRACE);
            // A real request still gets through at once, displacing an idle connection.
            let t = Instant::now();
            let st = request(&p, &json!({"cmd": "status"}), Duration::from_secs(2));
            (busy, st, t.elapsed(), held)
        })
        .await
        .unwrap();
        assert_eq!(busy, 2 * cap);
        assert_eq!(st.unwrap()["status"]["campaign_id"], "c1");
        assert!(took < Duration::from_secs(1), "status took {took:?}");
        drop(held);
        stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_closed_after_the_request_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let stop = CancellationToken::new();
        serve(&path, Arc::new(Fake(Mutex::new(None))), stop.clone(), &TaskTracker::new()).await.unwrap();
        let mut s = UnixStream::connect(&path).await.unwrap();
        let mut answer = String::new();
        let read = tokio::time::timeout(REQUEST_TIMEOUT + Duration::from_secs(2), s.read_to_string(&mut answer)).await;
        assert!(read.is_ok(), "still open after the request timeout");
        assert!(answer.contains("no request within 5s"), "{answer}");
        stop.cancel();
    }

    #[tokio::test]
    async fn shedding_refuses_every_waiting_connection_and_keeps_the_reserve() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let clients: Vec<_> = (0..6).map(|_| std::os::unix::net::UnixStream::connect(&path).unwrap()).collect();
        // As in the accept loop, shedding follows an accept that found the listener readable.
        let (first, _) = listener.accept().await.unwrap();
        refuse(first, "test");
        let mut reserve = Reserve::open();
        assert_eq!(shed_waiting(&listener, &mut reserve).await, 5);
        assert!(reserve.0.is_some(), "the reserve is taken back");
        assert_eq!(busy_answers(&clients, 6, Duration::from_secs(2)), 6);
        // Nothing waiting: nothing shed, and no wait.
        assert_eq!(shed_waiting(&listener, &mut reserve).await, 0);
        // Without a reserve there is nothing to give up.
        let mut empty = Reserve(None);
        let _late = std::os::unix::net::UnixStream::connect(&path).unwrap();
        assert_eq!(shed_waiting(&listener, &mut empty).await, 0);
    }

    #[test]
    fn accept_trouble_backs_off_from_100ms_to_1s_and_starts_over_after_recovery() {
        let mut t = Trouble::default();
        let e = std::io::Error::from_raw_os_error(libc::EMFILE);
        assert!(is_out_of_descriptors(&e) && !is_per_connection(&e));
        let pauses: Vec<_> = (0..6)
            .map(|_| {
                t.failed(&e);
                t.pause().as_millis()
            })
            .collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1000, 1000]);
        t.recovered();
        t.failed(&e);
        assert_eq!(t.pause(), BACKOFF_FIRST);
        assert!(is_per_connection(&std::io::Error::from_raw_os_error(libc::ECONNABORTED)));
    }

    #[test]
    fn request_retries_a_busy_campaign_until_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            for i in 0..3 {
                let (mut s, _) = listener.accept().unwrap();
                let mut line = String::new();
                BufReader::new(&s).read_line(&mut line).unwrap();
                let answer = if i < 2 { busy_answer("full") } else { json!({"ok": true, "status": {"n": i}}) };
                s.write_all(format!("{answer}\n").as_bytes()).unwrap();
            }
            // Then stay busy for good.
            loop {
                let Ok((mut s, _)) = listener.accept() else { break };
                let mut line = String::new();
                if BufReader::new(&s).read_line(&mut line).is_err() {
                    break;
                }
                let _ = s.write_all(format!("{}\n", busy_answer("full")).as_bytes());
            }
        });
        let st = request(&path, &json!({"cmd": "status"}), Duration::from_secs(2)).unwrap();
        assert_eq!(st["status"]["n"], 2);
        let t = Instant::now();
        let err = request(&path, &json!({"cmd": "status"}), Duration::from_millis(300)).unwrap_err();
        assert!(err.to_string().contains("busy") && err.to_string().contains("full"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(1), "gave up after {:?}", t.elapsed());
        drop(server);
    }

    #[test]
    fn raise_nofile_limit_lifts_the_soft_limit_to_the_hard_one() {
        let lim = raise_nofile_limit().unwrap();
        assert!(lim.soft >= lim.was);
        if lim.hard != libc::RLIM_INFINITY {
            assert_eq!(lim.soft, lim.hard);
        }
        assert_eq!(raise_nofile_limit().unwrap().was, lim.soft, "idempotent");
    }
}
