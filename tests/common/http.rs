//! A minimal HTTP/1.1 client and origin server for integration tests (loopback only, bounded
//! timeouts). Hand-written so tests see exact bytes: status lines, header order, framing.

#[allow(unused_imports)]
use std::io::Read as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Clone, Debug, Default)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            reason: String::new(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn with_header(mut self, k: &str, v: &str) -> Response {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

type Head = (String, Vec<(String, String)>);

fn read_head<R: BufRead>(r: &mut R) -> std::io::Result<Option<Head>> {
    let mut first = String::new();
    if r.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "eof in headers",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok(Some((first.trim_end().to_string(), headers)))
}

fn read_body<R: BufRead>(
    r: &mut R,
    headers: &[(String, String)],
    until_eof: bool,
) -> std::io::Result<Vec<u8>> {
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut out = Vec::new();
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            if n == 0 {
                let mut end = String::new();
                r.read_line(&mut end)?;
                return Ok(out);
            }
            let mut chunk = vec![0; n];
            r.read_exact(&mut chunk)?;
            out.extend_from_slice(&chunk);
            let mut crlf = [0; 2];
            r.read_exact(&mut crlf)?;
        }
    }
    if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    if until_eof {
        r.read_to_end(&mut body)?;
    }
    Ok(body)
}

/// Send one request (`Connection: close`) and read the whole response.
pub fn send(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let s =
        TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect {port}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    exchange(s, port, method, target, headers, body)
}

/// The same over TLS (certificate not verified: tests use self-signed certificates).
pub fn send_tls(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let s =
        TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect {port}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut b = SslConnector::builder(SslMethod::tls()).unwrap_or_else(|e| panic!("tls: {e}"));
    b.set_verify(SslVerifyMode::NONE);
    let tls = b
        .build()
        .connect("localhost", s)
        .unwrap_or_else(|e| panic!("tls handshake: {e}"));
    exchange(tls, port, method, target, headers, body)
}

fn exchange<S: Read + Write>(
    mut s: S,
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut req = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("Connection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .unwrap_or_else(|e| panic!("write: {e}"));
    s.write_all(body)
        .unwrap_or_else(|e| panic!("write body: {e}"));
    let mut r = BufReader::new(s);
    let (status_line, headers) = read_head(&mut r)
        .unwrap_or_else(|e| panic!("read head: {e}"))
        .unwrap_or_else(|| panic!("no response"));
    let mut parts = status_line.splitn(3, ' ');
    let _version = parts.next();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let reason = parts.next().unwrap_or("").to_string();
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        read_body(&mut r, &headers, true).unwrap_or_else(|e| panic!("read body: {e}"))
    };
    Response {
        status,
        reason,
        headers,
        body,
    }
}

pub fn get(port: u16, target: &str, headers: &[(&str, &str)]) -> Response {
    send(port, "GET", target, headers, b"")
}

/// What an origin does with a request.
pub enum Reply {
    Full(Response),
    /// Wait, then answer.
    Delay(Duration, Response),
    /// Stream `chunks` with chunked encoding, pausing between them.
    Stream(u16, Vec<Vec<u8>>, Duration),
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// An HTTP/1.1 origin on an ephemeral loopback port, keep-alive aware, recording requests.
pub struct Origin {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Request>>>,
    pub hits: Arc<AtomicUsize>,
    /// TCP connections accepted.
    pub conns: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Origin {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (rq, h, st, cn) = (requests.clone(), hits.clone(), stop.clone(), conns.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                cn.fetch_add(1, Ordering::SeqCst);
                let (rq, h, handler) = (rq.clone(), h.clone(), handler.clone());
                thread::spawn(move || serve(conn, &*handler, &rq, &h));
            }
        });
        Origin {
            port,
            requests,
            hits,
            conns,
            stop,
        }
    }

    /// An origin that echoes the request as JSON (method, path, query, headers, body).
    pub fn echo() -> Origin {
        Origin::start(|r| Reply::Full(echo_response(r)))
    }

    pub fn last(&self) -> Request {
        self.requests
            .lock()
            .map(|v| v.last().cloned())
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("origin saw no request"))
    }

    pub fn count(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

pub fn echo_response(r: &Request) -> Response {
    let headers: serde_json::Map<String, serde_json::Value> = r
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), serde_json::Value::String(v.clone())))
        .collect();
    let v = serde_json::json!({
        "method": r.method,
        "path": r.path(),
        "query": r.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&r.body),
        "body_len": r.body.len(),
    });
    Response::new(200, v.to_string())
        .with_header("Content-Type", "application/json")
        .with_header("X-Origin", "yes")
}

fn serve(conn: TcpStream, handler: &Handler, requests: &Mutex<Vec<Request>>, hits: &AtomicUsize) {
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
    conn.set_nodelay(true).ok();
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    loop {
        let Ok(Some((line, headers))) = read_head(&mut r) else {
            return;
        };
        let mut parts = line.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let Ok(body) = read_body(&mut r, &headers, false) else {
            return;
        };
        let req = Request {
            method,
            target,
            headers,
            body,
        };
        hits.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut v) = requests.lock() {
            v.push(req.clone());
        }
        let ok = match handler(&req) {
            Reply::Full(resp) => write_full(&mut w, &resp),
            Reply::Delay(d, resp) => {
                thread::sleep(d);
                write_full(&mut w, &resp)
            }
            Reply::Stream(status, chunks, pause) => {
                let mut ok = w
                    .write_all(
                        format!("HTTP/1.1 {status} OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                            .as_bytes(),
                    )
                    .is_ok();
                for c in chunks {
                    ok &= w.write_all(format!("{:x}\r\n", c.len()).as_bytes()).is_ok();
                    ok &= w.write_all(&c).is_ok();
                    ok &= w.write_all(b"\r\n").is_ok();
                    let _ = w.flush();
                    thread::sleep(pause);
                }
                ok && w.write_all(b"0\r\n\r\n").is_ok()
            }
        };
        if !ok {
            return;
        }
    }
}

fn write_full(w: &mut TcpStream, resp: &Response) -> bool {
    let reason = if resp.reason.is_empty() {
        "OK"
    } else {
        resp.reason.as_str()
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason);
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", resp.body.len()));
    // One write: a head and body in two segments meet delayed ACKs on keep-alive connections.
    let mut out = head.into_bytes();
    out.extend_from_slice(&resp.body);
    w.write_all(&out).is_ok()
}

/// A keep-alive HTTP/1.1 client: one connection, requests one after another (for tests that
/// send thousands of requests).
pub struct KeepAlive {
    port: u16,
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl KeepAlive {
    pub fn new(port: u16) -> KeepAlive {
        let s = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect {port}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(20))).ok();
        s.set_nodelay(true).ok();
        let w = s.try_clone().unwrap_or_else(|e| panic!("clone: {e}"));
        KeepAlive {
            port,
            w,
            r: BufReader::new(s),
        }
    }

    pub fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
            self.port
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut out = req.into_bytes();
        out.extend_from_slice(body);
        self.w
            .write_all(&out)
            .unwrap_or_else(|e| panic!("write: {e}"));
        let (status_line, headers) = read_head(&mut self.r)
            .unwrap_or_else(|e| panic!("read head: {e}"))
            .unwrap_or_else(|| panic!("connection closed"));
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let body =
            read_body(&mut self.r, &headers, false).unwrap_or_else(|e| panic!("read body: {e}"));
        Response {
            status,
            reason: String::new(),
            headers,
            body,
        }
    }

    pub fn get(&mut self, target: &str) -> Response {
        self.send("GET", target, &[], b"")
    }
}

/// What a raw-socket client got back: the first response, or nothing (`status: None`) when the
/// connection closed (or stayed silent for `wait`) without one.
#[derive(Debug)]
pub struct RawReply {
    pub status: Option<u16>,
    pub head: String,
    pub body: Vec<u8>,
}

/// Write `bytes` as they are (a hostile client's request) and read the first response.
pub fn raw(port: u16, bytes: &[u8], wait: Duration) -> RawReply {
    let mut s =
        TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect {port}: {e}"));
    s.set_read_timeout(Some(wait)).ok();
    let _ = s.write_all(bytes);
    let mut r = BufReader::new(s);
    let none = RawReply {
        status: None,
        head: String::new(),
        body: Vec::new(),
    };
    let Ok(Some((status_line, headers))) = read_head(&mut r) else {
        return none;
    };
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok());
    let mut head = status_line.clone();
    for (k, v) in &headers {
        head.push_str(&format!("\r\n{k}: {v}"));
    }
    let body = read_body(&mut r, &headers, false).unwrap_or_default();
    RawReply { status, head, body }
}

/// A load-test client: one keep-alive connection at a time, reconnecting when a response says
/// `Connection: close`. Every failure is returned as text, never a panic.
pub struct LoadClient {
    port: u16,
    conn: Option<(TcpStream, BufReader<TcpStream>)>,
}

impl LoadClient {
    pub fn new(port: u16) -> LoadClient {
        LoadClient { port, conn: None }
    }

    /// GET `target`: the status, and whether the server closed the connection after it.
    pub fn get(&mut self, target: &str) -> Result<(u16, bool), String> {
        if self.conn.is_none() {
            let s = TcpStream::connect(("127.0.0.1", self.port))
                .map_err(|e| format!("connect: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(20))).ok();
            s.set_nodelay(true).ok();
            let w = s.try_clone().map_err(|e| format!("clone: {e}"))?;
            self.conn = Some((w, BufReader::new(s)));
        }
        let result = self.exchange(target);
        if !matches!(result, Ok((_, false))) {
            self.conn = None;
        }
        result
    }

    fn exchange(&mut self, target: &str) -> Result<(u16, bool), String> {
        let Some((w, r)) = self.conn.as_mut() else {
            return Err("no connection".into());
        };
        let req = format!(
            "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.port
        );
        w.write_all(req.as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let (status_line, headers) = read_head(r)
            .map_err(|e| format!("read head: {e}"))?
            .ok_or("closed before a response")?;
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(format!("bad status line {status_line:?}"))?;
        read_body(r, &headers, false).map_err(|e| format!("read body: {e}"))?;
        let close = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
        Ok((status, close))
    }
}
