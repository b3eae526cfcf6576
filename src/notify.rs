//! Notifications: a JSON POST to each `[[notify]]` URL when the night goes wrong (halted,
//! emergency stop, guardian trip, a breaker opening) and when it ends (the verdict).
//!
//! The campaign never waits for a receiver: [`Notifier::notice`] puts the notice on each
//! target's bounded queue (dropping it, counted, when the queue is full) and returns; each target
//! has its own task that sends one notice at a time, each attempt bounded by the target's
//! `timeout`, a failed attempt retried `retries` times after a full-jitter backoff (500 ms doubling,
//! capped at 5 s). Every delivery's result goes to a callback (the campaign records it as an event
//! and so counts it in the report); a receiver that hangs or answers 500 costs the campaign
//! nothing but its queue. At the end, [`Notifier::drain`] gives the last notices a bounded time.
//!
//! Why a layer of its own above `config`: it needs the typed `[[notify]]` entries and an HTTP
//! client, and nothing of the campaign (the callback keeps events out of it).

use crate::config::{NotifyConfig, NotifyOn};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Notices waiting per target at most; one more is dropped (and counted). A night sends a
/// handful, so only a receiver that is down for long fills it.
pub const QUEUE: usize = 64;
/// First and longest pause between attempts.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Why notifications cannot start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `token_env` names a variable that is not set.
    #[error("notify[{index}].token_env: the environment variable {name} is not set; export it or remove token_env")]
    TokenMissing {
        /// The entry.
        index: usize,
        /// The variable.
        name: String,
    },
    /// The TLS roots for `https://` could not be loaded.
    #[error("notify: cannot load the system's TLS roots for https:// URLs: {0}")]
    Tls(String),
}

/// Where a campaign's reports are (sent with every notice so the receiver can link them).
#[derive(Clone, Debug, Serialize)]
pub struct ReportPaths {
    /// The campaign's report directory.
    pub dir: PathBuf,
    /// `summary.txt`.
    pub summary: PathBuf,
    /// `campaign_report.json`.
    pub json: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
}

impl ReportPaths {
    /// The paths of the reports in `dir`.
    pub fn in_dir(dir: &Path) -> ReportPaths {
        ReportPaths {
            dir: dir.to_path_buf(),
            summary: dir.join("summary.txt"),
            json: dir.join("campaign_report.json"),
            html: dir.join("report.html"),
        }
    }
}

/// Something to tell people.
#[derive(Clone, Debug)]
pub struct Notice {
    /// What it is about (decides which targets get it).
    pub on: NotifyOn,
    /// Why, one line.
    pub reason: String,
    /// The figures that go with it (ops, success rate, the breaker, the metric...).
    pub figures: Value,
}

/// The JSON body of a notification.
#[derive(Clone, Debug, Serialize)]
pub struct Payload {
    /// Always `stressctl`, so a shared receiver can route it.
    pub source: &'static str,
    /// `halted`, `emergency_stop`, `guardian_trip`, `verdict`, `breaker_open`, or `test`.
    pub event: String,
    /// The campaign.
    pub campaign_id: String,
    /// When the notice was made, RFC 3339 UTC.
    pub at: String,
    /// Why, one line.
    pub reason: String,
    /// The figures.
    pub figures: Value,
    /// Where the reports are (the verdict's are written right after it is sent).
    pub reports: Option<ReportPaths>,
    /// True for `stressctl check`'s test notification.
    pub test: bool,
}

/// How one notice fared at one target.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The target, scheme and host only ([`NotifyConfig::target`]).
    pub target: String,
    /// The notice's `event`.
    pub event: String,
    /// Attempts made (0 when it was dropped from a full queue).
    pub attempts: u32,
    /// None when delivered (a 2xx answer); else why not, of the last attempt.
    pub error: Option<String>,
}

/// Counts over every target.
#[derive(Debug, Default)]
pub struct Counts {
    /// Delivered.
    pub sent: AtomicU64,
    /// Given up after every attempt.
    pub failed: AtomicU64,
    /// Dropped from a full queue.
    pub dropped: AtomicU64,
}

type Client =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Full<Bytes>>;

/// The callback each [`Delivery`] goes to.
pub type OnDelivery = Arc<dyn Fn(Delivery) + Send + Sync>;

/// One `[[notify]]` target with its resolved token.
#[derive(Clone)]
struct Target {
    cfg: NotifyConfig,
    token: Option<String>,
}

/// The targets' queues and tasks of one campaign.
pub struct Notifier {
    /// Per target: what it takes, and its queue.
    queues: Vec<(Vec<NotifyOn>, String, mpsc::Sender<Payload>)>,
    tracker: TaskTracker,
    /// Cancelled when [`drain`](Self::drain)'s time is up: the attempts in flight end at once.
    give_up: CancellationToken,
    campaign_id: String,
    reports: ReportPaths,
    on_delivery: OnDelivery,
    /// Counts over every target.
    pub counts: Arc<Counts>,
}

/// The HTTP(S) client every target shares.
fn client() -> Result<Client, NotifyError> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| NotifyError::Tls(e.to_string()))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https))
}

/// Reads each target's token from its `token_env`.
fn targets(cfgs: &[NotifyConfig]) -> Result<Vec<Target>, NotifyError> {
    cfgs.iter()
        .enumerate()
        .map(|(index, cfg)| {
            let token = match &cfg.token_env {
                Some(name) => Some(std::env::var(name).map_err(|_| NotifyError::TokenMissing { index, name: name.clone() })?),
                None => None,
            };
            Ok(Target { cfg: cfg.clone(), token })
        })
        .collect()
}

/// Checks that every `token_env` is set: `launch` refuses to start otherwise (exit 2), rather
/// than find out at the first notice in the middle of the night.
pub fn check_tokens(cfgs: &[NotifyConfig]) -> Result<(), NotifyError> {
    targets(cfgs).map(|_| ())
}

impl Notifier {
    /// Starts one task per target (on the current tokio runtime). None without targets.
    pub fn start(
        cfgs: &[NotifyConfig],
        campaign_id: &str,
        reports: ReportPaths,
        on_delivery: OnDelivery,
    ) -> Result<Option<Notifier>, NotifyError> {
        if cfgs.is_empty() {
            return Ok(None);
        }
        let client = client()?;
        let tracker = TaskTracker::new();
        let give_up = CancellationToken::new();
        let counts = Arc::new(Counts::default());
        let mut queues = Vec::new();
        for t in targets(cfgs)? {
            let (tx, mut rx) = mpsc::channel::<Payload>(QUEUE);
            queues.push((t.cfg.on.clone(), t.cfg.target(), tx));
            let (client, give_up, counts, on_delivery) = (client.clone(), give_up.clone(), counts.clone(), on_delivery.clone());
            tracker.spawn(async move {
                while let Some(p) = rx.recv().await {
                    let d = tokio::select! {
                        d = deliver(&client, &t, &p) => d,
                        _ = give_up.cancelled() => Delivery { target: t.cfg.target(), event: p.event.clone(), attempts: 1, error: Some("the campaign ended before it was delivered".into()) },
                    };
                    record(&counts, &d);
                    on_delivery(d);
                }
            });
        }
        tracker.close();
        Ok(Some(Notifier { queues, tracker, give_up, campaign_id: campaign_id.to_string(), reports, on_delivery, counts }))
    }

    /// Queues `n` for every target that takes it; never waits.
    pub fn notice(&self, n: Notice) {
        let payload = Payload {
            source: "stressctl",
            event: n.on.as_str().to_string(),
            campaign_id: self.campaign_id.clone(),
            at: crate::fmt::rfc3339(SystemTime::now()),
            reason: n.reason,
            figures: n.figures,
            reports: Some(self.reports.clone()),
            test: false,
        };
        for (on, target, tx) in &self.queues {
            if !on.contains(&n.on) {
                continue;
            }
            if tx.try_send(payload.clone()).is_err() {
                let d = Delivery {
                    target: target.clone(),
                    event: payload.event.clone(),
                    attempts: 0,
                    error: Some(format!("queue full ({QUEUE} waiting): dropped")),
                };
                record(&self.counts, &d);
                (self.on_delivery)(d);
            }
        }
    }

    /// Closes the queues and waits up to `within` for what is queued to be delivered; then the
    /// attempts still in flight are given up (and recorded as failed).
    pub async fn drain(self, within: Duration) {
        let Notifier { queues, tracker, give_up, .. } = self;
        drop(queues);
        if tokio::time::timeout(within, tracker.wait()).await.is_err() {
            give_up.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
        }
    }

    /// The longest [`drain`](Self::drain) worth waiting for `cfgs`: every attempt of one notice
    /// with its backoffs, capped at 30 s.
    pub fn drain_time(cfgs: &[NotifyConfig]) -> Duration {
        cfgs.iter().map(|c| c.timeout * (c.retries + 1) + BACKOFF_CAP * c.retries).max().unwrap_or_default().min(Duration::from_secs(30))
    }
}

fn record(counts: &Counts, d: &Delivery) {
    let c = match (&d.error, d.attempts) {
        (None, _) => &counts.sent,
        (Some(_), 0) => &counts.dropped,
        (Some(_), _) => &counts.failed,
    };
    c.fetch_add(1, Ordering::Relaxed);
    match &d.error {
        None => {
            tracing::info!(target: "stressctl::notify", "notification {} delivered to {} ({} attempt(s))", d.event, d.target, d.attempts)
        }
        Some(e) => {
            tracing::warn!(target: "stressctl::notify", "notification {} to {} failed after {} attempt(s): {e}", d.event, d.target, d.attempts)
        }
    }
}

/// Sends `p` to `t`, retrying a failed attempt `retries` times.
async fn deliver(client: &Client, t: &Target, p: &Payload) -> Delivery {
    let mut rng = fastrand::Rng::new();
    let mut attempts = 0;
    let mut last = String::new();
    for n in 0..=t.cfg.retries {
        if n > 0 {
            tokio::time::sleep(crate::recovery::backoff(BACKOFF_BASE, BACKOFF_CAP, n - 1, &mut rng)).await;
        }
        attempts += 1;
        match post(client, t, p).await {
            Ok(()) => return Delivery { target: t.cfg.target(), event: p.event.clone(), attempts, error: None },
            Err(e) => last = e,
        }
    }
    Delivery { target: t.cfg.target(), event: p.event.clone(), attempts, error: Some(last) }
}

/// One attempt: POST the JSON, a 2xx answer within the timeout is success.
async fn post(client: &Client, t: &Target, p: &Payload) -> Result<(), String> {
    let body = serde_json::to_vec(p).map_err(|e| e.to_string())?;
    let mut req = hyper::Request::post(&t.cfg.url)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, concat!("stressctl/", env!("CARGO_PKG_VERSION")));
    if let Some(token) = &t.token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let req = req.body(Full::new(Bytes::from(body))).map_err(|e| format!("cannot build the request: {e}"))?;
    let attempt = async {
        let resp = client.request(req).await.map_err(|e| format!("{e}"))?;
        let status = resp.status();
        // read (and drop) the answer so the connection can be reused
        let _ = resp.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("answered {status}"))
        }
    };
    match tokio::time::timeout(t.cfg.timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {}", crate::fmt::fmt_duration(t.cfg.timeout))),
    }
}

/// Sends `stressctl check`'s test notification to every target, once each (no retries), and
/// returns how each fared.
pub async fn send_test(cfgs: &[NotifyConfig]) -> Result<Vec<Delivery>, NotifyError> {
    let client = client()?;
    let mut out = Vec::new();
    for t in targets(cfgs)? {
        let p = Payload {
            source: "stressctl",
            event: "test".into(),
            campaign_id: String::new(),
            at: crate::fmt::rfc3339(SystemTime::now()),
            reason: "stressctl check: test notification".into(),
            figures: Value::Null,
            reports: None,
            test: true,
        };
        let r = post(&client, &t, &p).await;
        out.push(Delivery { target: t.cfg.target(), event: "test".into(), attempts: 1, error: r.err() });
    }
    Ok(out)
}
