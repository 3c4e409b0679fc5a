//! A fault-injecting HTTP/1.1 proxy on loopback, to put in front of the moto
//! S3 server: requests are forwarded unchanged (the `Host` header too: moto
//! does not verify SigV4 signatures), unless a [`Rule`] picks the request for
//! a [`Fault`]: an S3 error status, a connection that never answers, a reset,
//! a slow answer, or a request that reaches the server while its response is
//! lost on the way back.
//!
//! Rules can be changed at any time ([`FaultProxy::set_rules`]) and are
//! matched per kind of S3 request ([`Op`]). Every decision is deterministic
//! given the seed and the order in which requests arrive. Every injected
//! fault is counted and logged, so a test can assert that its faults fired.
//!
//! Plain std threads: one for accepting, one per client connection, and one
//! fresh upstream connection per forwarded request.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The kind of an S3 request, from its method, path (path-style addressing:
/// `/bucket/key`), query and headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `PUT /bucket/key` without a precondition.
    Put,
    /// `PUT /bucket/key` with `If-None-Match` (create only if absent).
    PutIfNoneMatch,
    /// `PUT /bucket/key` with `If-Match` (replace only the given ETag).
    PutIfMatch,
    /// `GET /bucket/key`.
    Get,
    /// `GET /bucket` or `GET /bucket?list-type=2…`.
    List,
    /// `HEAD /bucket/key`.
    Head,
    /// `HEAD /bucket`.
    HeadBucket,
    /// `PUT /bucket`.
    CreateBucket,
    /// `DELETE /bucket/key` (or a multipart abort), `POST /bucket?delete`.
    Delete,
    /// `POST /bucket/key?uploads`.
    CreateMultipart,
    /// `PUT /bucket/key?partNumber=…&uploadId=…`.
    UploadPart,
    /// `POST /bucket/key?uploadId=…`.
    CompleteMultipart,
    /// Anything else.
    Other,
}

impl Op {
    /// Every kind of request.
    pub const ALL: &'static [Op] = &[
        Op::Put,
        Op::PutIfNoneMatch,
        Op::PutIfMatch,
        Op::Get,
        Op::List,
        Op::Head,
        Op::HeadBucket,
        Op::CreateBucket,
        Op::Delete,
        Op::CreateMultipart,
        Op::UploadPart,
        Op::CompleteMultipart,
        Op::Other,
    ];
    /// Every request on objects and listings: all but the bucket-level
    /// `HEAD /bucket` and `PUT /bucket` of start-up.
    pub const OBJECTS: &'static [Op] = &[
        Op::Put,
        Op::PutIfNoneMatch,
        Op::PutIfMatch,
        Op::Get,
        Op::List,
        Op::Head,
        Op::Delete,
        Op::CreateMultipart,
        Op::UploadPart,
        Op::CompleteMultipart,
    ];
    /// Both kinds of conditional PUT.
    pub const CONDITIONAL_PUTS: &'static [Op] = &[Op::PutIfNoneMatch, Op::PutIfMatch];
    /// Every single-request object PUT, conditional or not.
    pub const PUTS: &'static [Op] = &[Op::Put, Op::PutIfNoneMatch, Op::PutIfMatch];
    /// The steps of a multipart upload.
    pub const MULTIPART: &'static [Op] =
        &[Op::CreateMultipart, Op::UploadPart, Op::CompleteMultipart];

    /// Classifies a request. `target` is the request-target (`/bucket/key?query`).
    pub fn classify(method: &str, target: &str, headers: &[(String, String)]) -> Op {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let params: Vec<&str> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').map_or(p, |(k, _)| k))
            .collect();
        let has = |name: &str| params.contains(&name);
        let header = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        // Path style: the first segment is the bucket, the rest the key.
        let trimmed = path.trim_start_matches('/');
        let bucket_level = match trimmed.split_once('/') {
            None => true,
            Some((_, key)) => key.is_empty(),
        };
        match method.to_ascii_uppercase().as_str() {
            "GET" if bucket_level || has("list-type") => Op::List,
            "GET" => Op::Get,
            "HEAD" if bucket_level => Op::HeadBucket,
            "HEAD" => Op::Head,
            "PUT" if bucket_level => Op::CreateBucket,
            "PUT" if has("partNumber") && has("uploadId") => Op::UploadPart,
            "PUT" if header("if-none-match") => Op::PutIfNoneMatch,
            "PUT" if header("if-match") => Op::PutIfMatch,
            "PUT" => Op::Put,
            "DELETE" => Op::Delete,
            "POST" if has("uploads") => Op::CreateMultipart,
            "POST" if has("uploadId") => Op::CompleteMultipart,
            "POST" if has("delete") => Op::Delete,
            _ => Op::Other,
        }
    }
}

/// What happens to a request a rule picks.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer this status with an S3 XML error body of this code (e.g.
    /// `503 SlowDown`, `500 InternalError`); the request is not forwarded.
    Status(u16, String),
    /// Read the request, never answer, keep the connection open until the
    /// client gives up (its own timeout) or the proxy stops; not forwarded.
    Timeout,
    /// Read the request, then close the connection with a TCP reset
    /// (RST, `SO_LINGER` 0) without answering; not forwarded.
    Reset,
    /// Wait this long, then forward normally.
    Slow(Duration),
    /// Forward the request (so a write happens), then close the connection
    /// cleanly (FIN) instead of returning the response: the client sees the
    /// connection closed before the response ("incomplete message").
    LoseResponse,
    /// Forward the request, then reset the connection (RST): the client sees
    /// "connection reset by peer" for a request the server executed.
    LoseResponseReset,
    /// Forward the request, then never answer: the client times out for a
    /// request the server executed (the usual shape of a lost response).
    LoseResponseTimeout,
}

impl Fault {
    /// `503 SlowDown`.
    pub fn slow_down() -> Fault {
        Fault::Status(503, "SlowDown".into())
    }

    /// `500 InternalError`.
    pub fn internal_error() -> Fault {
        Fault::Status(500, "InternalError".into())
    }

    /// The counter this fault is counted under.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Status(..) => FaultKind::Status,
            Fault::Timeout => FaultKind::Timeout,
            Fault::Reset => FaultKind::Reset,
            Fault::Slow(_) => FaultKind::Slow,
            Fault::LoseResponse => FaultKind::LoseResponse,
            Fault::LoseResponseReset => FaultKind::LoseResponseReset,
            Fault::LoseResponseTimeout => FaultKind::LoseResponseTimeout,
        }
    }
}

/// [`Fault`] without its parameters: what injections are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    Status,
    Timeout,
    Reset,
    Slow,
    LoseResponse,
    LoseResponseReset,
    LoseResponseTimeout,
}

/// Which of the matching requests a rule picks.
#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    /// Every matching request.
    Always,
    /// Each matching request with this probability, from the proxy's seeded generator.
    Probability(f64),
    /// The n-th, 2n-th, 3n-th … matching request.
    EveryNth(u64),
    /// The first n matching requests.
    FirstN(u64),
}

/// One fault rule. Rules are tried in order; the first that matches a request
/// and picks it decides its fate, otherwise the request is forwarded.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub ops: Vec<Op>,
    /// Only requests whose request-target (path and query) contains this.
    pub path_contains: Option<String>,
    pub fault: Fault,
    pub select: Select,
    /// At most this many injections by this rule.
    pub limit: Option<u64>,
}

impl Rule {
    /// A rule for every request of these kinds; narrow it with the builders.
    pub fn new(ops: &[Op], fault: Fault) -> Rule {
        Rule {
            ops: ops.to_vec(),
            path_contains: None,
            fault,
            select: Select::Always,
            limit: None,
        }
    }

    pub fn probability(mut self, p: f64) -> Rule {
        self.select = Select::Probability(p);
        self
    }

    pub fn every_nth(mut self, n: u64) -> Rule {
        self.select = Select::EveryNth(n.max(1));
        self
    }

    pub fn first(mut self, n: u64) -> Rule {
        self.select = Select::FirstN(n);
        self
    }

    pub fn path_contains(mut self, fragment: &str) -> Rule {
        self.path_contains = Some(fragment.to_string());
        self
    }

    pub fn limit(mut self, max: u64) -> Rule {
        self.limit = Some(max);
        self
    }
}

/// One injected fault, for diagnostics.
#[derive(Debug, Clone)]
pub struct Injection {
    /// Which rule (index in the rule list at the time).
    pub rule: usize,
    pub op: Op,
    pub method: String,
    pub target: String,
    pub fault: Fault,
    /// For the `LoseResponse*` faults: the status the server answered (and
    /// the client never saw); `None` if the upstream exchange failed.
    pub upstream_status: Option<u16>,
    /// Time since the proxy started.
    pub at: Duration,
}

impl fmt::Display for Injection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>8.3}s rule {} {:?} on {:?} {} {}",
            self.at.as_secs_f64(),
            self.rule,
            self.fault,
            self.op,
            self.method,
            self.target
        )?;
        if let Some(status) = self.upstream_status {
            write!(f, " (server answered {status}, not delivered)")?;
        }
        Ok(())
    }
}

struct ArmedRule {
    rule: Rule,
    matched: u64,
    fired: u64,
}

struct State {
    rules: Vec<ArmedRule>,
    rng: u64,
    requests: HashMap<Op, u64>,
    injected: HashMap<(Op, FaultKind), u64>,
    log: Vec<Injection>,
}

struct Shared {
    upstream: SocketAddr,
    started: Instant,
    stop: AtomicBool,
    state: Mutex<State>,
    /// Open client connections, shut down when the proxy stops.
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_connection: AtomicU64,
    next_request: AtomicU64,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Counts the request and decides its fault, if any.
    fn decide(&self, op: Op, target: &str) -> Option<(usize, Fault)> {
        let mut state = self.state();
        *state.requests.entry(op).or_default() += 1;
        let State { rules, rng, .. } = &mut *state;
        for (index, armed) in rules.iter_mut().enumerate() {
            let rule = &armed.rule;
            if !rule.ops.contains(&op) {
                continue;
            }
            if let Some(fragment) = &rule.path_contains {
                if !target.contains(fragment.as_str()) {
                    continue;
                }
            }
            armed.matched += 1;
            if rule.limit.is_some_and(|limit| armed.fired >= limit) {
                continue;
            }
            let picked = match rule.select {
                Select::Always => true,
                Select::Probability(p) => unit_interval(rng) < p,
                Select::EveryNth(n) => armed.matched % n.max(1) == 0,
                Select::FirstN(n) => armed.matched <= n,
            };
            if picked {
                armed.fired += 1;
                return Some((index, rule.fault.clone()));
            }
        }
        None
    }

    fn record(
        &self,
        rule: usize,
        op: Op,
        method: &str,
        target: &str,
        fault: &Fault,
        upstream: Option<u16>,
    ) {
        let mut state = self.state();
        *state.injected.entry((op, fault.kind())).or_default() += 1;
        let at = self.started.elapsed();
        state.log.push(Injection {
            rule,
            op,
            method: method.to_string(),
            target: target.to_string(),
            fault: fault.clone(),
            upstream_status: upstream,
            at,
        });
    }
}

/// splitmix64 mapped to [0, 1).
fn unit_interval(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The proxy; stops (and cuts every open connection) on drop.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`: use it as `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy in front of `upstream` (`http://host:port`, as `Moto::endpoint`), seed 0.
    pub fn start(upstream: &str) -> FaultProxy {
        FaultProxy::start_seeded(upstream, 0)
    }

    /// Like [`FaultProxy::start`], with the seed of the probability rules.
    pub fn start_seeded(upstream: &str, seed: u64) -> FaultProxy {
        let authority = upstream
            .trim()
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the proxy forwards plain http, not {upstream:?}"))
            .trim_end_matches('/');
        let upstream_addr = authority
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .unwrap_or_else(|| panic!("cannot resolve the upstream {upstream:?}"));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(Shared {
            upstream: upstream_addr,
            started: Instant::now(),
            stop: AtomicBool::new(false),
            state: Mutex::new(State {
                rules: Vec::new(),
                rng: seed,
                requests: HashMap::new(),
                injected: HashMap::new(),
                log: Vec::new(),
            }),
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
            next_request: AtomicU64::new(0),
        });
        let accept_shared = shared.clone();
        let accept = std::thread::Builder::new()
            .name("fault-proxy-accept".into())
            .spawn(move || accept_loop(listener, accept_shared))
            .expect("spawn the proxy's accept thread");
        FaultProxy {
            endpoint: format!("http://{addr}"),
            shared,
            addr,
            accept: Some(accept),
        }
    }

    /// Replaces the rules (and their counters of matched requests); the
    /// injection counts and the log are kept.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        self.shared.state().rules = rules
            .into_iter()
            .map(|rule| ArmedRule {
                rule,
                matched: 0,
                fired: 0,
            })
            .collect();
    }

    /// Adds one rule after the existing ones.
    pub fn add_rule(&self, rule: Rule) {
        self.shared.state().rules.push(ArmedRule {
            rule,
            matched: 0,
            fired: 0,
        });
    }

    /// No more faults: every request is forwarded.
    pub fn clear_rules(&self) {
        self.set_rules(Vec::new());
    }

    /// Reseeds the generator of the probability rules.
    pub fn set_seed(&self, seed: u64) {
        self.shared.state().rng = seed;
    }

    /// Faults of this kind injected so far, over all requests.
    pub fn injected(&self, kind: FaultKind) -> u64 {
        self.shared
            .state()
            .injected
            .iter()
            .filter(|((_, k), _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }

    /// Faults of this kind injected into requests of this kind.
    pub fn injected_on(&self, op: Op, kind: FaultKind) -> u64 {
        self.shared
            .state()
            .injected
            .get(&(op, kind))
            .copied()
            .unwrap_or_default()
    }

    /// All faults injected so far.
    pub fn injected_total(&self) -> u64 {
        self.shared.state().injected.values().sum()
    }

    /// Requests of this kind seen so far (faulted or not).
    pub fn requests(&self, op: Op) -> u64 {
        self.shared
            .state()
            .requests
            .get(&op)
            .copied()
            .unwrap_or_default()
    }

    /// Every injection so far, in order.
    pub fn injections(&self) -> Vec<Injection> {
        self.shared.state().log.clone()
    }

    /// Times each rule fired, in rule order.
    pub fn fired_per_rule(&self) -> Vec<u64> {
        self.shared.state().rules.iter().map(|r| r.fired).collect()
    }

    /// One paragraph for a test's output: requests per kind, injections per
    /// kind and fault.
    pub fn summary(&self) -> String {
        let state = self.shared.state();
        let mut requests: Vec<_> = state.requests.iter().collect();
        requests.sort();
        let mut injected: Vec<_> = state.injected.iter().collect();
        injected.sort();
        let requests = requests
            .iter()
            .map(|(op, n)| format!("{op:?}={n}"))
            .collect::<Vec<_>>()
            .join(" ");
        let injected = injected
            .iter()
            .map(|((op, kind), n)| format!("{kind:?}@{op:?}={n}"))
            .collect::<Vec<_>>()
            .join(" ");
        format!("requests: {requests}\ninjected: {injected}")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let connections = std::mem::take(
            &mut *self
                .shared
                .connections
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for (_, stream) in connections {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping() {
            return;
        }
        let Ok(stream) = stream else { continue };
        let id = shared.next_connection.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            shared
                .connections
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, clone);
        }
        let conn_shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("fault-proxy-conn-{id}"))
            .spawn(move || {
                let _ = serve(stream, &conn_shared);
                conn_shared
                    .connections
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
            });
        if spawned.is_err() {
            shared
                .connections
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        }
    }
}

/// An HTTP/1.1 message head and body.
struct Message {
    /// Request line or status line.
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("close"))
            || self.start.ends_with("HTTP/1.0")
    }
}

const MAX_HEAD: usize = 64 * 1024;

/// A start line and its headers.
type Head = (String, Vec<(String, String)>);

/// Reads the start line and headers; `None` on a clean end of stream before any byte.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut start = String::new();
    let mut total = 0;
    loop {
        start.clear();
        let n = reader.read_line(&mut start)?;
        if n == 0 {
            return Ok(None);
        }
        total += n;
        // Tolerate blank lines before a request (RFC 9112 §2.2).
        if !start.trim().is_empty() {
            break;
        }
        if total > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "end of stream inside a message head",
            ));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    Ok(Some((
        start.trim_end_matches(['\r', '\n']).to_string(),
        headers,
    )))
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    })
}

fn content_length(headers: &[(String, String)]) -> io::Result<Option<usize>> {
    match headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        None => Ok(None),
        Some((_, v)) => v
            .parse()
            .map(Some)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length")),
    }
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "chunked body cut",
            ));
        }
        let size = line
            .trim()
            .split(';')
            .next()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers, then the final blank line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

/// Reads one request from the client; `None` when the client closed the connection.
fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Message>> {
    let Some((start, headers)) = read_head(reader)? else {
        return Ok(None);
    };
    let body = if is_chunked(&headers) {
        read_chunked(reader)?
    } else {
        let len = content_length(&headers)?.unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        body
    };
    Ok(Some(Message {
        start,
        headers,
        body,
    }))
}

/// Reads one response to a request with `method`, the upstream closing afterwards.
fn read_response(reader: &mut impl BufRead, method: &str) -> io::Result<Message> {
    let Some((start, headers)) = read_head(reader)? else {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "upstream closed without answering",
        ));
    };
    let status: u16 = start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let no_body = method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&status)
        || status == 204
        || status == 304;
    let body = if no_body {
        Vec::new()
    } else if is_chunked(&headers) {
        read_chunked(reader)?
    } else if let Some(len) = content_length(&headers)? {
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        body
    } else {
        let mut body = Vec::new();
        reader.read_to_end(&mut body)?;
        body
    };
    Ok(Message {
        start,
        headers,
        body,
    })
}

fn status_of(response: &Message) -> u16 {
    response
        .start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Sends the request to the upstream on a fresh connection and reads its response.
fn forward(shared: &Shared, request: &Message, method: &str) -> io::Result<Message> {
    let mut upstream = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(10))?;
    upstream.set_read_timeout(Some(Duration::from_secs(300)))?;
    upstream.set_nodelay(true)?;
    let mut head = String::with_capacity(512);
    head.push_str(&request.start);
    head.push_str("\r\n");
    for (name, value) in &request.headers {
        // One request per upstream connection; the body is re-framed with a length.
        if name.eq_ignore_ascii_case("connection")
            || name.eq_ignore_ascii_case("keep-alive")
            || name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("content-length")
        {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let has_length = request.header("content-length").is_some() || is_chunked(&request.headers);
    if has_length || !request.body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes())?;
    upstream.write_all(&request.body)?;
    upstream.flush()?;
    let mut reader = BufReader::new(upstream);
    read_response(&mut reader, method)
}

/// Writes the upstream's response to the client, re-framed with a length.
fn write_response(
    client: &mut TcpStream,
    response: &Message,
    method: &str,
    close: bool,
) -> io::Result<()> {
    let head_request = method.eq_ignore_ascii_case("HEAD");
    let status = status_of(response);
    let mut head = String::with_capacity(512);
    head.push_str(&response.start);
    head.push_str("\r\n");
    for (name, value) in &response.headers {
        let framing = name.eq_ignore_ascii_case("transfer-encoding")
            || (!head_request && name.eq_ignore_ascii_case("content-length"));
        if framing
            || name.eq_ignore_ascii_case("connection")
            || name.eq_ignore_ascii_case("keep-alive")
        {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !head_request && !(100..200).contains(&status) && status != 204 && status != 304 {
        head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    client.write_all(head.as_bytes())?;
    if !head_request {
        client.write_all(&response.body)?;
    }
    client.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        412 => "Precondition Failed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

fn error_response(status: u16, code: &str, target: &str, method: &str, request_id: u64) -> Vec<u8> {
    let path = target.split('?').next().unwrap_or(target);
    let message = match code {
        "SlowDown" => "Please reduce your request rate.",
        "InternalError" => "We encountered an internal error. Please try again.",
        "ServiceUnavailable" => "Service is unable to handle request.",
        _ => "Injected fault.",
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
         <Resource>{path}</Resource><RequestId>FAULTPROXY{request_id:08}</RequestId></Error>"
    );
    let head_request = method.eq_ignore_ascii_case("HEAD");
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/xml\r\nx-amz-request-id: FAULTPROXY{request_id:08}\r\nContent-Length: {}\r\n\r\n",
        reason(status),
        if head_request { 0 } else { body.len() }
    )
    .into_bytes();
    if !head_request {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Closes with RST instead of FIN.
fn reset(stream: &TcpStream) {
    let socket = socket2::SockRef::from(stream);
    let _ = socket.set_linger(Some(Duration::ZERO));
    // Dropping the last handle closes it; shutting down would send a FIN first.
}

/// Keeps the connection open without answering until the client closes it or the proxy stops.
fn hold(client: &mut TcpStream, shared: &Shared) {
    let _ = client.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 4096];
    loop {
        if shared.stopping() {
            return;
        }
        match client.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {} // A pipelined request on a dead exchange: ignored.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn sleep_unless_stopping(duration: Duration, shared: &Shared) {
    let deadline = Instant::now() + duration;
    while !shared.stopping() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Serves one client connection: requests in sequence (keep-alive).
fn serve(client: TcpStream, shared: &Shared) -> io::Result<()> {
    client.set_nodelay(true)?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    loop {
        if shared.stopping() {
            return Ok(());
        }
        let Some(request) = read_request(&mut reader)? else {
            return Ok(());
        };
        let mut parts = request.start.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let op = Op::classify(&method, &target, &request.headers);
        let close = request.wants_close();
        let decision = shared.decide(op, &target);
        let request_id = shared.next_request.fetch_add(1, Ordering::SeqCst);
        match decision {
            None => {
                relay(&mut client, shared, &request, &method, close)?;
            }
            Some((rule, fault)) => match &fault {
                Fault::Status(status, code) => {
                    shared.record(rule, op, &method, &target, &fault, None);
                    client
                        .write_all(&error_response(*status, code, &target, &method, request_id))?;
                    client.flush()?;
                }
                Fault::Timeout => {
                    shared.record(rule, op, &method, &target, &fault, None);
                    hold(&mut client, shared);
                    return Ok(());
                }
                Fault::Reset => {
                    shared.record(rule, op, &method, &target, &fault, None);
                    reset(&client);
                    return Ok(());
                }
                Fault::Slow(delay) => {
                    shared.record(rule, op, &method, &target, &fault, None);
                    sleep_unless_stopping(*delay, shared);
                    relay(&mut client, shared, &request, &method, close)?;
                }
                Fault::LoseResponse | Fault::LoseResponseReset | Fault::LoseResponseTimeout => {
                    let upstream = forward(shared, &request, &method)
                        .ok()
                        .map(|r| status_of(&r));
                    shared.record(rule, op, &method, &target, &fault, upstream);
                    match fault {
                        Fault::LoseResponse => {
                            let _ = client.shutdown(Shutdown::Both);
                        }
                        Fault::LoseResponseReset => reset(&client),
                        _ => hold(&mut client, shared),
                    }
                    return Ok(());
                }
            },
        }
        if close {
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}

/// Forwards and answers; a failed upstream exchange is a 502 to the client.
fn relay(
    client: &mut TcpStream,
    shared: &Shared,
    request: &Message,
    method: &str,
    close: bool,
) -> io::Result<()> {
    match forward(shared, request, method) {
        Ok(response) => write_response(client, &response, method, close),
        Err(e) => {
            let body = format!("fault proxy: upstream {} failed: {e}", shared.upstream);
            let head = format!(
                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                if method.eq_ignore_ascii_case("HEAD") { 0 } else { body.len() }
            );
            client.write_all(head.as_bytes())?;
            if !method.eq_ignore_ascii_case("HEAD") {
                client.write_all(body.as_bytes())?;
            }
            client.flush()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_s3_requests() {
        let none: Vec<(String, String)> = Vec::new();
        let inm = vec![("If-None-Match".to_string(), "*".to_string())];
        let im = vec![("if-match".to_string(), "\"abc\"".to_string())];
        assert_eq!(Op::classify("GET", "/lake/a/b.json", &none), Op::Get);
        assert_eq!(
            Op::classify("GET", "/lake?list-type=2&prefix=raw%2F", &none),
            Op::List
        );
        assert_eq!(Op::classify("GET", "/lake/", &none), Op::List);
        assert_eq!(Op::classify("HEAD", "/lake", &none), Op::HeadBucket);
        assert_eq!(Op::classify("HEAD", "/lake/k", &none), Op::Head);
        assert_eq!(Op::classify("PUT", "/lake", &none), Op::CreateBucket);
        assert_eq!(Op::classify("PUT", "/lake/k", &none), Op::Put);
        assert_eq!(Op::classify("PUT", "/lake/k", &inm), Op::PutIfNoneMatch);
        assert_eq!(Op::classify("PUT", "/lake/k", &im), Op::PutIfMatch);
        assert_eq!(
            Op::classify("PUT", "/lake/k?partNumber=1&uploadId=x", &none),
            Op::UploadPart
        );
        assert_eq!(
            Op::classify("POST", "/lake/k?uploads", &none),
            Op::CreateMultipart
        );
        assert_eq!(
            Op::classify("POST", "/lake/k?uploadId=x", &none),
            Op::CompleteMultipart
        );
        assert_eq!(Op::classify("POST", "/lake?delete", &none), Op::Delete);
        assert_eq!(Op::classify("DELETE", "/lake/k", &none), Op::Delete);
    }

    #[test]
    fn selection_is_deterministic_and_counted() {
        let proxy_rules = |seed| {
            let shared = Shared {
                upstream: "127.0.0.1:9".parse().expect("addr"),
                started: Instant::now(),
                stop: AtomicBool::new(false),
                state: Mutex::new(State {
                    rules: vec![
                        ArmedRule {
                            rule: Rule::new(&[Op::Get], Fault::Reset).first(2),
                            matched: 0,
                            fired: 0,
                        },
                        ArmedRule {
                            rule: Rule::new(&[Op::Put], Fault::slow_down()).every_nth(3),
                            matched: 0,
                            fired: 0,
                        },
                        ArmedRule {
                            rule: Rule::new(Op::ALL, Fault::Timeout).probability(0.3).limit(5),
                            matched: 0,
                            fired: 0,
                        },
                    ],
                    rng: seed,
                    requests: HashMap::new(),
                    injected: HashMap::new(),
                    log: Vec::new(),
                }),
                connections: Mutex::new(HashMap::new()),
                next_connection: AtomicU64::new(0),
                next_request: AtomicU64::new(0),
            };
            (0..60)
                .map(|i| {
                    let op = if i % 2 == 0 { Op::Get } else { Op::Put };
                    shared.decide(op, "/b/k").map(|(rule, _)| rule)
                })
                .collect::<Vec<_>>()
        };
        let a = proxy_rules(1);
        assert_eq!(a, proxy_rules(1));
        assert_eq!(a[0], Some(0));
        assert_eq!(a[2], Some(0));
        assert_eq!(a[5], Some(1)); // the third PUT
        assert_eq!(a.iter().filter(|r| **r == Some(2)).count(), 5);
    }

    /// A tiny upstream that answers every request with its method, target
    /// and body, for checking the forwarding itself.
    fn echo_server() -> (String, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = std::thread::spawn(move || {
            for stream in listener.incoming().take(4) {
                let Ok(stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut stream = stream;
                if let Ok(Some(req)) = read_request(&mut reader) {
                    let host = req.header("host").unwrap_or_default().to_string();
                    let body = format!(
                        "{} host={host} body={}",
                        req.start,
                        String::from_utf8_lossy(&req.body)
                    );
                    // Chunked, to exercise the re-framing.
                    let out = format!(
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: \"e1\"\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(out.as_bytes());
                }
            }
        });
        (format!("http://{addr}"), handle)
    }

    fn exchange(
        stream: &mut TcpStream,
        reader: &mut BufReader<TcpStream>,
        request: &str,
    ) -> io::Result<Message> {
        stream.write_all(request.as_bytes())?;
        read_response(reader, request.split_whitespace().next().unwrap_or("GET"))
    }

    #[test]
    fn forwards_keeps_alive_and_injects() {
        let (upstream, _server) = echo_server();
        let proxy = FaultProxy::start(&upstream);
        let port = proxy.endpoint.rsplit(':').next().expect("port").to_string();
        let mut stream =
            TcpStream::connect(("127.0.0.1", port.parse::<u16>().expect("port"))).expect("connect");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let put = format!(
            "PUT /b/k HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 5\r\n\r\nhello"
        );
        let response = exchange(&mut stream, &mut reader, &put).expect("forwarded");
        assert_eq!(status_of(&response), 200);
        assert_eq!(response.header("etag"), Some("\"e1\""));
        let text = String::from_utf8_lossy(&response.body).to_string();
        assert_eq!(
            text,
            format!("PUT /b/k HTTP/1.1 host=127.0.0.1:{port} body=hello")
        );

        proxy.set_rules(vec![Rule::new(&[Op::Get], Fault::slow_down()).first(1)]);
        let get = "GET /b/k HTTP/1.1\r\nHost: x\r\n\r\n";
        let response = exchange(&mut stream, &mut reader, get).expect("an error response");
        assert_eq!(status_of(&response), 503);
        assert!(String::from_utf8_lossy(&response.body).contains("<Code>SlowDown</Code>"));
        // Same connection, next GET is forwarded.
        let response = exchange(&mut stream, &mut reader, get).expect("forwarded");
        assert_eq!(status_of(&response), 200);
        assert_eq!(proxy.injected(FaultKind::Status), 1);
        assert_eq!(proxy.requests(Op::Get), 2);

        proxy.set_rules(vec![Rule::new(&[Op::Put], Fault::LoseResponse)]);
        let err = exchange(&mut stream, &mut reader, &put);
        assert!(err.is_err(), "the response is lost");
        assert_eq!(proxy.injected_on(Op::Put, FaultKind::LoseResponse), 1);
        assert_eq!(proxy.injections()[1].upstream_status, Some(200));

        // A reset is a reset (RST), not a clean close: the client reads ECONNRESET.
        proxy.set_rules(vec![Rule::new(&[Op::Get], Fault::Reset)]);
        let mut stream =
            TcpStream::connect(("127.0.0.1", port.parse::<u16>().expect("port"))).expect("connect");
        stream.write_all(get.as_bytes()).expect("send");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        let err = stream.read(&mut buf).expect_err("reset");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
        assert_eq!(proxy.injected(FaultKind::Reset), 1);
    }
}
