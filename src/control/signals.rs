//! Signals that stop a campaign: SIGINT (Ctrl-C), SIGTERM and SIGHUP (terminal closed, ssh
//! dropped) all request a graceful stop — reports written, lock and socket removed; a second one
//! kills the browsers and drivers at once. Without a SIGHUP handler the kernel's default action
//! would kill the daemon outright and leave its browsers, lock and socket behind.

use super::{StopCause, StopSignal};
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tracing::Instrument;

/// A handled signal: how tokio names it, the cause it records, its name for people.
type Handled = (fn() -> SignalKind, StopCause, &'static str);

/// The signals handled.
const HANDLED: [Handled; 3] = [
    (SignalKind::interrupt, StopCause::Interrupted, "SIGINT (Ctrl-C)"),
    (SignalKind::terminate, StopCause::Terminated, "SIGTERM"),
    (SignalKind::hangup, StopCause::Hangup, "SIGHUP"),
];

/// Installs the handlers on the current runtime. First signal: graceful stop. Second: kill at
/// once. Errors when a handler cannot be installed (the caller refuses to start without them).
pub fn install(stop: Arc<StopSignal>) -> std::io::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (kind, cause, name) in HANDLED {
        let mut s = signal(kind())?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send((cause.clone(), name)).is_err() {
                    break;
                }
            }
        });
    }
    tokio::spawn(
        async move {
            let mut seen = 0;
            while let Some((cause, name)) = rx.recv().await {
                seen += 1;
                if seen == 1 {
                    tracing::warn!(target: "stressctl::campaign", "{name}: stopping gracefully");
                    crate::fmt::warn(&format!(
                        "\nstressctl: {name}: stopping gracefully (in-flight ops get the grace period; press Ctrl-C again to kill at once)"
                    ));
                    stop.request(cause, format!("stopped by {name}"), false);
                } else {
                    tracing::warn!(target: "stressctl::campaign", "{name} again: killing browsers and drivers now");
                    crate::fmt::warn("\nstressctl: killing browsers and drivers now");
                    stop.force();
                }
            }
        }
        .in_current_span(),
    );
    Ok(())
}
