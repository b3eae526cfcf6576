//! `stressctl dashboard [ID]`: serve a recorded campaign's dashboard from its store, read-only,
//! until Ctrl-C or SIGTERM; and where `launch` serves its live dashboard (the `[dashboard]` table
//! under `--dashboard` / `--dashboard-token`).

use super::{runtime, CliError, EXIT_OK};
use crate::cli::{CommonArgs, DashboardArgs, LaunchArgs};
use crate::config::Config;
use crate::dashboard::Listen;
use crate::fmt::say;
use crate::store;
use tokio_util::sync::CancellationToken;

/// `stressctl dashboard`.
pub(super) fn dashboard(common: &CommonArgs, a: &DashboardArgs) -> Result<u8, CliError> {
    let listen = Listen::check(&a.listen, a.token.token.as_deref()).map_err(CliError::usage)?;
    let id = match &a.id {
        Some(id) => id.clone(),
        None => store::list_campaigns(&common.state_dir).pop().ok_or_else(|| {
            CliError::usage(format!("no campaigns recorded in {} (run `stressctl launch` first)", common.state_dir.display()))
        })?,
    };
    let path = store::store_path(&common.state_dir, &id).map_err(|e| CliError::usage(e.to_string()))?;
    if !path.exists() {
        return Err(CliError::usage(format!(
            "no store for campaign {id} in {} (see `stressctl report --list`)",
            common.state_dir.display()
        )));
    }
    let bound = listen.bind().map_err(CliError::usage)?;
    let rt = runtime()?;
    rt.block_on(async {
        let stop = CancellationToken::new();
        {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
                }
                stop.cancel();
            });
        }
        say(&format!("stressctl: dashboard of campaign {id} at {} (read-only; Ctrl-C to stop)", bound.url()));
        crate::dashboard::serve_store(bound, path, stop).await.map_err(|e| CliError::failed(e.to_string()))
    })?;
    Ok(EXIT_OK)
}

/// Where `launch` serves its live dashboard, if it does: `--dashboard [ADDR]` over `[dashboard]
/// enabled/listen`, and `--dashboard-token` (or `STRESSCTL_DASHBOARD_TOKEN`) over `[dashboard]
/// token`/`token_env`. A bad value is bad usage (exit 2) naming the option or key.
pub(super) fn live_listen(cfg: &Config, args: &LaunchArgs) -> Result<Option<Listen>, CliError> {
    let d = &cfg.dashboard;
    let addr = match args.dashboard.as_deref() {
        Some("") => d.listen.as_str(),
        Some(a) => a,
        None if d.enabled => d.listen.as_str(),
        None => return Ok(None),
    };
    let from_env = match &d.token_env {
        Some(name) if args.dashboard_token.token.is_none() => Some(std::env::var(name).map_err(|_| {
            CliError::usage(format!(
                "{}: dashboard.token_env names {name}, which is not set (export it, or give --dashboard-token)",
                cfg.source
            ))
        })?),
        _ => None,
    };
    let token = args.dashboard_token.token.as_deref().or(from_env.as_deref()).or(d.token.as_deref());
    let origin = if args.dashboard.as_deref().is_some_and(|a| !a.is_empty()) {
        "--dashboard".to_string()
    } else {
        format!("{}: dashboard.listen", cfg.source)
    };
    Listen::check(addr, token).map(Some).map_err(|e| CliError::usage(format!("{origin}: {e}")))
}
