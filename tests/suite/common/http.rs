//! A tiny blocking HTTP/1.1 client for the dashboard tests: `GET` with headers (content-length or
//! chunked bodies), and a Server-Sent Events reader. Loopback only; no dependency beyond std.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// An answer.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
}

impl Response {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics with the body otherwise).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn send(s: &mut TcpStream, method: &str, addr: SocketAddr, path: &str, headers: &[(&str, &str)]) {
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req += &format!("Host: {addr}\r\n");
    }
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes()).unwrap();
}

fn read_head<R: BufRead>(r: &mut R) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap_or_else(|| panic!("bad header {l:?}"));
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    (status, headers)
}

/// Reads one chunk of a chunked body; None at the last (empty) chunk.
fn read_chunk<R: BufRead>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
    let mut buf = vec![0; size];
    r.read_exact(&mut buf)?;
    let mut crlf = [0; 2];
    r.read_exact(&mut crlf)?;
    Ok((size > 0).then_some(buf))
}

/// A request; the whole body is read.
pub fn request(method: &str, addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut s = connect(addr);
    send(&mut s, method, addr, path, headers);
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        while let Some(c) = read_chunk(&mut r).unwrap() {
            body.extend(c);
        }
    } else if let Some(n) = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body).unwrap();
    } else {
        r.read_to_end(&mut body).unwrap();
    }
    Response { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    request("GET", addr, path, &[])
}

/// One Server-Sent Event.
#[derive(Clone, Debug, Default)]
pub struct SseEvent {
    /// `id:`.
    pub id: Option<String>,
    /// `event:` (None for the default `message`).
    pub event: Option<String>,
    /// `data:` lines joined.
    pub data: String,
}

/// A Server-Sent Events stream being read.
pub struct Sse {
    r: BufReader<TcpStream>,
    text: String,
    chunked: bool,
    /// The response status.
    pub status: u16,
    /// The response headers.
    pub headers: Vec<(String, String)>,
}

impl Sse {
    /// Opens `GET path` as an event stream.
    pub fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Sse {
        let mut s = connect(addr);
        let mut h = vec![("Accept", "text/event-stream")];
        h.extend_from_slice(headers);
        send(&mut s, "GET", addr, path, &h);
        let mut r = BufReader::new(s);
        let (status, headers) = read_head(&mut r);
        let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        Sse { r, text: String::new(), chunked, status, headers }
    }

    /// The next event (comments and keep-alives skipped), or None at the end of the stream or
    /// after `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut ev = SseEvent::default();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                    } else if let Some(v) = line.strip_prefix("id:") {
                        ev.id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        ev.event = Some(v.trim().to_string());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                ev.data = data.join("\n");
                return Some(ev);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.r.get_ref().set_read_timeout(Some(left.max(Duration::from_millis(10)))).ok()?;
            let bytes = if self.chunked {
                match read_chunk(&mut self.r) {
                    Ok(Some(b)) => b,
                    Ok(None) => return None,
                    Err(_) => return None,
                }
            } else {
                let mut buf = vec![0; 4096];
                match self.r.read(&mut buf) {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => {
                        buf.truncate(n);
                        buf
                    }
                }
            };
            self.text.push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n"));
        }
    }
}
