//! The dashboard's address and token as written in a config file or on the command line,
//! checked where every other setting is checked (config validation and clap's default), so the
//! config layer never reaches up into the dashboard that serves them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Where `--dashboard` listens when no address is given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// Shortest token accepted: a guessable token would make a non-loopback bind an open one.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Parses a dashboard address: `IP:PORT`, `[IPv6]:PORT` or `localhost:PORT`. The error is the
/// line to print.
pub fn parse_addr(addr: &str) -> Result<SocketAddr, String> {
    let parsed = match addr.strip_prefix("localhost:") {
        Some(port) => port.parse::<u16>().ok().map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p)),
        None => addr.parse::<SocketAddr>().ok(),
    };
    parsed.ok_or_else(|| format!("dashboard address {addr:?} is not IP:PORT (e.g. {DEFAULT_ADDR}, or 127.0.0.1:0 for a free port)"))
}

/// Whether `token` may be a dashboard token: long enough to resist guessing, and printable
/// (it travels in a header and a cookie). The error is the line to print.
pub fn check_token(token: &str) -> Result<(), String> {
    if token.chars().count() < MIN_TOKEN_CHARS {
        return Err(format!("the dashboard token is too short: use at least {MIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 16`)"));
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err("the dashboard token must be printable ASCII without spaces".into());
    }
    Ok(())
}
