//! A Selenium Grid 4 hub's `GET /status`, parsed into what stressctl decides on (nodes, their
//! availability, slots per browser, the sessions in them), and the two bounded HTTP requests the
//! Grid client makes (`GET` JSON, `DELETE`). Parsing is pure, so it is tested on literal answers.

use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// The stereotype capability that names a node stably and lets a session target it (matched by
/// the Grid's default slot matcher like any extension capability).
pub const NODE_CAP: &str = "stressctl:node";

/// The capability every new-session request of stressctl's to a hub carries: a token unique to
/// the request (`<run tag>/<worker>/q<n>`). A hub lists queued requests with the capabilities
/// asked for, and a node's session with them too, so the token finds a request stressctl gave
/// up on — in the queue, to cancel it, or as the session it became — in any browser.
pub const REQUEST_CAP: &str = "stressctl:request";

/// Where a Grid node's Chromium keeps the profile of run `run`'s session `label`: a path on the
/// node (its `/tmp`), named after the run and nothing of this machine. A Grid lists each session
/// with the capabilities its driver answered — not the ones asked for — and the only one of those
/// a session can be recognised by is Chromium's `chrome.userDataDir`: so a session whose id
/// stressctl never learnt (its request was given up) is found in `/status` by this path.
pub fn node_profile_dir(run: &str, label: &str) -> String {
    format!("/tmp/{run}/{label}")
}

/// The tag of the run whose profiles live in `profiles_dir` (`<state>/runs/<id>/profiles`): its
/// id, which names the run without naming anything on this machine.
pub fn run_tag(profiles_dir: &std::path::Path) -> String {
    let id = profiles_dir.parent().and_then(std::path::Path::file_name).map(|n| n.to_string_lossy().into_owned());
    format!("stressctl-{}", id.unwrap_or_else(|| std::process::id().to_string()))
}

/// A node's `availability`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Availability {
    /// Takes new sessions.
    Up,
    /// Its health check failed.
    Down,
    /// Finishes its sessions, takes no new ones.
    Draining,
}

/// One slot of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridSlot {
    /// The stereotype's `browserName`.
    pub browser: String,
    /// The session in it, if any (`reserved` while the hub is still creating one).
    pub session: Option<String>,
    /// The session's Chromium profile on its node (`capabilities.chrome.userDataDir`): a session
    /// of stressctl's has it under [`node_profile_dir`], which identifies one it never got the id
    /// of.
    pub user_data_dir: Option<String>,
    /// The session's [`REQUEST_CAP`] token, when stressctl asked for it.
    pub request: Option<String>,
}

/// One node.
#[derive(Clone, Debug, PartialEq)]
pub struct GridNode {
    /// Stable name: the `stressctl:node` stereotype capability, else the URI's `host:port`.
    pub name: String,
    /// The Grid's node id (a UUID, new at every node start).
    pub id: String,
    /// Where the node listens.
    pub uri: String,
    /// UP, DOWN or DRAINING.
    pub availability: Availability,
    /// Selenium version of the node.
    pub version: String,
    /// Its stereotypes carry `stressctl:node`: a session can be placed on it on purpose.
    pub targetable: bool,
    /// Its slots.
    pub slots: Vec<GridSlot>,
}

impl GridNode {
    /// Slots for `browser` (a stereotype `browserName`) with no session.
    pub fn free_for(&self, browser: &str) -> u32 {
        self.slots.iter().filter(|s| s.browser == browser && s.session.is_none()).count() as u32
    }
}

/// What `/status` says.
#[derive(Clone, Debug, PartialEq)]
pub struct GridStatus {
    /// `value.ready`.
    pub ready: bool,
    /// `value.message`.
    pub message: String,
    /// `value.nodes`.
    pub nodes: Vec<GridNode>,
}

impl GridStatus {
    /// The node whose slot holds `session_id`.
    pub fn node_of_session(&self, session_id: &str) -> Option<&GridNode> {
        self.nodes.iter().find(|n| n.slots.iter().any(|s| s.session.as_deref() == Some(session_id)))
    }

    /// Sessions of run `run`: its Chromium profile ([`node_profile_dir`]) or its request token
    /// ([`REQUEST_CAP`]) names the run; and whether any slot is still `reserved` (a session
    /// being created).
    pub fn sessions_of_run(&self, run: &str) -> (Vec<String>, bool) {
        let slots = self.nodes.iter().flat_map(|n| &n.slots);
        let reserved = slots.clone().any(|s| s.session.as_deref() == Some("reserved"));
        let under = node_profile_dir(run, "");
        let token = format!("{run}/");
        let ids = slots
            .filter(|s| {
                s.user_data_dir.as_deref().is_some_and(|d| d.starts_with(&under))
                    || s.request.as_deref().is_some_and(|r| r.starts_with(&token))
            })
            .filter(|s| s.session.as_deref() != Some("reserved"))
            .filter_map(|s| s.session.clone())
            .collect();
        (ids, reserved)
    }

    /// The session made from the request with token `token`, if a node holds it.
    pub fn session_of_request(&self, token: &str) -> Option<&str> {
        self.nodes.iter().flat_map(|n| &n.slots).find(|s| s.request.as_deref() == Some(token)).and_then(|s| s.session.as_deref())
    }

    /// Slots for `browser` on UP nodes that are free or hold one of `ours`.
    pub fn free_slots(&self, browser: &str, ours: &HashSet<String>) -> u32 {
        self.nodes
            .iter()
            .filter(|n| n.availability == Availability::Up)
            .flat_map(|n| &n.slots)
            .filter(|s| s.browser == browser && s.session.as_ref().is_none_or(|id| ours.contains(id)))
            .count() as u32
    }

    /// Slots per browser over UP nodes, as `chrome 4, firefox 2`.
    pub fn slots_per_browser(&self) -> String {
        let mut m: std::collections::BTreeMap<&str, u32> = Default::default();
        for s in self.nodes.iter().filter(|n| n.availability == Availability::Up).flat_map(|n| &n.slots) {
            *m.entry(s.browser.as_str()).or_default() += 1;
        }
        m.iter().map(|(b, n)| format!("{b} {n}")).collect::<Vec<_>>().join(", ")
    }
}

/// Parses a `/status` answer; Err says why it is not a Grid's (a plain WebDriver has no `nodes`).
pub fn parse_status(v: &Value) -> Result<GridStatus, String> {
    let value = v.get("value").ok_or("no `value`: not a WebDriver status")?;
    let ready = value.get("ready").and_then(Value::as_bool).ok_or("no `value.ready`: not a WebDriver status")?;
    let nodes = value.get("nodes").and_then(Value::as_array).ok_or("no `value.nodes`: a WebDriver endpoint, not a Selenium Grid")?;
    let nodes = nodes.iter().map(parse_node).collect::<Result<Vec<_>, _>>()?;
    Ok(GridStatus { ready, message: value.get("message").and_then(Value::as_str).unwrap_or("").to_string(), nodes })
}

fn parse_node(n: &Value) -> Result<GridNode, String> {
    let s = |k: &str| n.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let uri = s("uri");
    let availability = match n.get("availability").and_then(Value::as_str) {
        Some("UP") => Availability::Up,
        Some("DRAINING") => Availability::Draining,
        Some("DOWN") => Availability::Down,
        other => return Err(format!("node {uri} has availability {other:?}, not UP/DOWN/DRAINING")),
    };
    let mut slots = Vec::new();
    let mut named = None;
    for slot in n.get("slots").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let st = &slot["stereotype"];
        if named.is_none() {
            named = st.get(NODE_CAP).and_then(Value::as_str).map(str::to_string);
        }
        let session = slot.get("session").and_then(|s| s.get("sessionId")).and_then(Value::as_str).map(str::to_string);
        let user_data_dir =
            slot.get("session").and_then(|s| s.pointer("/capabilities/chrome/userDataDir")).and_then(Value::as_str).map(str::to_string);
        let request = slot
            .get("session")
            .and_then(|s| s.pointer(&format!("/capabilities/{REQUEST_CAP}")))
            .and_then(Value::as_str)
            .map(str::to_string);
        let browser = st.get("browserName").and_then(Value::as_str).unwrap_or("").to_string();
        slots.push(GridSlot { browser, session, user_data_dir, request });
    }
    let authority =
        url::Url::parse(&uri).ok().map(|u| format!("{}:{}", u.host_str().unwrap_or(""), u.port_or_known_default().unwrap_or(0)));
    let targetable = named.is_some();
    let name = named.or(authority).unwrap_or_else(|| s("id"));
    Ok(GridNode { name, id: s("id"), uri, availability, version: s("version"), targetable, slots })
}

/// The queued new-session requests of a hub's `GET /se/grid/newsessionqueue/queue` answer that
/// carry a [`REQUEST_CAP`] token, as `(token, request id)`.
pub fn queued_requests(v: &Value) -> Vec<(String, String)> {
    let entries = v.get("value").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    entries
        .iter()
        .filter_map(|e| {
            let id = e.get("requestId").and_then(Value::as_str)?;
            let token = e.get("capabilities").and_then(Value::as_array)?.iter().find_map(|c| c.get(REQUEST_CAP).and_then(Value::as_str))?;
            Some((token.to_string(), id.to_string()))
        })
        .collect()
}

/// `POST url` of the JSON `body` with the hub's registration secret (the header the hub's
/// internal routes ask for; empty when it has none) and a timeout; Ok when it answered 2xx.
pub async fn post_with_secret(url: &str, body: &Value, secret: &str, timeout: Duration) -> Result<Value, String> {
    let (status, body) = request(hyper::Method::POST, url, timeout, Some((body.to_string(), secret))).await?;
    if !status.is_success() {
        return Err(format!("POST {url} answered HTTP {status}"));
    }
    serde_json::from_slice(&body).map_err(|_| format!("POST {url} did not answer JSON"))
}

/// `GET url` with a timeout; the JSON body of a 2xx answer. Errors are one line.
pub async fn get_json(url: &str, timeout: Duration) -> Result<Value, String> {
    let (status, body) = request(hyper::Method::GET, url, timeout, None).await?;
    if !status.is_success() {
        return Err(format!("GET {url} answered HTTP {status}: not a WebDriver endpoint?"));
    }
    serde_json::from_slice(&body).map_err(|_| format!("GET {url} did not answer JSON: not a WebDriver endpoint?"))
}

/// `DELETE url` with a timeout; Ok when it answered 2xx.
pub async fn delete(url: &str, timeout: Duration) -> Result<(), String> {
    let (status, _) = request(hyper::Method::DELETE, url, timeout, None).await?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("DELETE {url} answered HTTP {status}"))
    }
}

/// One bounded request; `json`: a JSON body and the registration secret to send with it.
async fn request(
    method: hyper::Method,
    url: &str,
    timeout: Duration,
    json: Option<(String, &str)>,
) -> Result<(hyper::StatusCode, bytes::Bytes), String> {
    let what = format!("{method} {url}");
    let fut = async {
        let mut b = hyper::Request::builder().method(method).uri(url);
        let body = match json {
            Some((body, secret)) => {
                // the hub refuses JSON whose type does not say utf-8
                b = b.header("Content-Type", "application/json; charset=utf-8").header("X-REGISTRATION-SECRET", secret);
                bytes::Bytes::from(body)
            }
            None => bytes::Bytes::new(),
        };
        let req = b.body(http_body_util::Full::new(body)).map_err(|e| format!("{what}: not a URL: {e}"))?;
        let client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let resp = client.request(req).await.map_err(|e| format!("{what}: {}", crate::fmt::error_chain(&e)))?;
        let status = resp.status();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map_err(|e| format!("{what}: {}", crate::fmt::error_chain(&e)))?
            .to_bytes();
        Ok((status, body))
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!("{what}: no answer within {}", crate::fmt::fmt_duration(timeout))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slot(browser: &str, node: Option<&str>, session: Option<&str>) -> Value {
        let mut st = json!({"browserName": browser, "platformName": "linux"});
        if let Some(n) = node {
            st[NODE_CAP] = json!(n);
        }
        json!({"id": {"hostId": "h", "id": "s"}, "stereotype": st, "session": session.map(|s| json!({"sessionId": s}))})
    }

    #[test]
    fn a_grid_status_gives_nodes_slots_and_sessions() {
        let v = json!({"value": {"ready": true, "message": "Selenium Grid ready.", "nodes": [
            {"id": "u1", "uri": "http://127.0.0.1:5555", "availability": "UP", "version": "4.20.0",
             "slots": [slot("chrome", Some("node-1"), Some("abc")), slot("chrome", Some("node-1"), None), slot("firefox", Some("node-1"), None)]},
            {"id": "u2", "uri": "http://10.0.0.2:5555", "availability": "DOWN", "version": "4.20.0",
             "slots": [slot("chrome", None, None)]},
        ]}});
        let st = parse_status(&v).unwrap();
        assert!(st.ready);
        assert_eq!(st.nodes[0].name, "node-1");
        assert!(st.nodes[0].targetable);
        assert_eq!(st.nodes[1].name, "10.0.0.2:5555", "no stereotype name: host:port");
        assert_eq!(st.nodes[1].availability, Availability::Down);
        assert_eq!(st.node_of_session("abc").map(|n| n.id.as_str()), Some("u1"));
        assert_eq!(st.free_slots("chrome", &HashSet::new()), 1, "the DOWN node's slot does not count");
        assert_eq!(st.free_slots("chrome", &HashSet::from(["abc".to_string()])), 2, "our own session's slot counts");
        assert_eq!(st.slots_per_browser(), "chrome 2, firefox 1");
        assert_eq!(st.nodes[0].free_for("firefox"), 1);
        assert_eq!(st.sessions_of_run("stressctl-r1"), (vec![], false));
    }

    #[test]
    fn a_session_is_known_as_the_runs_by_its_profile_on_the_node() {
        let mut ours = slot("chrome", Some("node-1"), Some("s-ours"));
        ours["session"]["capabilities"] =
            json!({"browserName": "chrome", "chrome": {"userDataDir": node_profile_dir("stressctl-r1", "s3")}});
        let mut other = slot("chrome", Some("node-1"), Some("s-other"));
        other["session"]["capabilities"] =
            json!({"browserName": "chrome", "chrome": {"userDataDir": node_profile_dir("stressctl-r10", "s3")}});
        let v = json!({"value": {"ready": true, "message": "", "nodes": [
            {"id": "u1", "uri": "http://127.0.0.1:5555", "availability": "UP", "version": "4.20.0",
             "slots": [ours, other, slot("chrome", Some("node-1"), Some("reserved"))]}]}});
        let st = parse_status(&v).unwrap();
        assert_eq!(st.sessions_of_run("stressctl-r1"), (vec!["s-ours".to_string()], true));
    }

    #[test]
    fn a_request_is_found_by_its_token_in_the_queue_and_as_the_session_it_became() {
        let q = json!({"value": [
            {"requestId": "r-1", "capabilities": [{"browserName": "chrome", REQUEST_CAP: "stressctl-r1/grid/q7"}]},
            {"requestId": "r-2", "capabilities": [{"browserName": "chrome"}]},
        ]});
        assert_eq!(
            queued_requests(&q),
            vec![("stressctl-r1/grid/q7".to_string(), "r-1".to_string())],
            "another client's request is not ours"
        );
        assert!(queued_requests(&json!({"value": []})).is_empty());
        let mut late = slot("firefox", Some("node-1"), Some("s-late"));
        late["session"]["capabilities"] = json!({"browserName": "firefox", REQUEST_CAP: "stressctl-r1/grid/q7"});
        let v = json!({"value": {"ready": true, "message": "", "nodes": [
            {"id": "u1", "uri": "http://127.0.0.1:5555", "availability": "UP", "version": "4.20.0", "slots": [late]}]}});
        let st = parse_status(&v).unwrap();
        assert_eq!(st.session_of_request("stressctl-r1/grid/q7"), Some("s-late"));
        assert_eq!(st.session_of_request("stressctl-r1/grid/q8"), None);
        assert_eq!(st.sessions_of_run("stressctl-r1").0, vec!["s-late".to_string()], "a Firefox session is the run's by its token");
        assert!(st.sessions_of_run("stressctl-r10").0.is_empty(), "another run's tag is no prefix match");
    }

    #[test]
    fn a_plain_webdriver_or_other_json_is_not_a_grid() {
        let e = parse_status(&json!({"value": {"ready": true, "message": "ChromeDriver ready"}})).unwrap_err();
        assert!(e.contains("not a Selenium Grid"), "{e}");
        assert!(parse_status(&json!({"hello": 1})).unwrap_err().contains("not a WebDriver"));
        let bad = json!({"value": {"ready": true, "nodes": [{"uri": "http://x:1", "availability": "SLEEPY"}]}});
        assert!(parse_status(&bad).unwrap_err().contains("SLEEPY"));
    }
}
