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

/// Where the test page server listens when `[server] listen` is not given: loopback only, on a
/// free port (browsers on this machine only).
pub const DEFAULT_SERVER_LISTEN: &str = "127.0.0.1:0";

/// Parses `[server] listen`: `IP:PORT`, `[IPv6]:PORT` or `localhost:PORT`. The error is the
/// line to print.
pub fn parse_server_listen(addr: &str) -> Result<SocketAddr, String> {
    parse_addr(addr).map_err(|_| {
        format!("{addr:?} is not IP:PORT: e.g. \"0.0.0.0:8099\" (every interface), \"192.0.2.10:0\" (a free port on one address), or {DEFAULT_SERVER_LISTEN:?}")
    })
}

/// Parses `[server] advertise`: an `http://` or `https://` base URL with a host, no user, query
/// or fragment. Returned with a path that ends in `/` (the run's prefix is appended to it).
pub fn parse_server_advertise(s: &str) -> Result<url::Url, String> {
    const HOW: &str = "write the base URL the browsers are given, e.g. \"http://192.0.2.10:8099\"";
    let mut u = url::Url::parse(s).map_err(|e| format!("not a URL ({e}): {HOW}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("must be an http:// or https:// URL: {HOW}"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("the host is missing: {HOW}"));
    }
    if !u.username().is_empty() || u.password().is_some() || u.query().is_some() || u.fragment().is_some() {
        return Err(format!("a base URL has no user, ?query or #fragment: {HOW}"));
    }
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    Ok(u)
}

/// Whether a URL host names this machine's loopback (`localhost`, 127.0.0.0/8, `::1`). Any other
/// name counts as another machine: stressctl does not resolve it to find out.
pub fn host_is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost") || d.eq_ignore_ascii_case("localhost."),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// The host of a WebDriver URL when it is on another machine (not loopback); None for a local
/// or unparsable one.
pub fn remote_host(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host()?;
    (!host_is_loopback(&host)).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        assert!(parse_server_listen("0.0.0.0:8099").is_ok());
        assert!(parse_server_listen("[::]:0").is_ok());
        assert_eq!(parse_server_listen("localhost:0").unwrap().ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(parse_server_listen("0.0.0.0").is_err());
        assert!(parse_server_listen("host:80").is_err());
        assert_eq!(parse_server_advertise("http://192.0.2.1:8099").unwrap().as_str(), "http://192.0.2.1:8099/");
        assert_eq!(parse_server_advertise("https://lab.example/stress").unwrap().as_str(), "https://lab.example/stress/");
        for bad in ["ftp://x/", "http://", "http://u:p@h/", "http://h/?q", "192.0.2.1:8099", "not a url"] {
            assert!(parse_server_advertise(bad).is_err(), "{bad}");
        }
        assert_eq!(remote_host("http://127.0.0.1:4444"), None);
        assert_eq!(remote_host("http://localhost:4444"), None);
        assert_eq!(remote_host("http://[::1]:4444"), None);
        assert_eq!(remote_host("http://10.0.0.2:4444").as_deref(), Some("10.0.0.2"));
        assert_eq!(remote_host("http://node-1:4444").as_deref(), Some("node-1"));
    }
}
