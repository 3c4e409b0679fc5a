//! The proxy itself: an accept thread, one thread per client connection
//! serving its requests in sequence, and one fresh upstream connection per
//! forwarded request. Shared state sits behind one mutex, so the order in
//! which requests take it is the order the rules see them in.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::http::{
    error_response, read_request, read_response, status_of, write_request, write_response, Message,
};
use super::rules::{ArmedRule, Fault, FaultKind, Injection, Op, Rule};

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
    /// Nothing counted or injected yet; `seed` starts the rules' random draws.
    fn new(upstream: SocketAddr, seed: u64, rules: Vec<ArmedRule>) -> Shared {
        Shared {
            upstream,
            started: Instant::now(),
            stop: AtomicBool::new(false),
            state: Mutex::new(State {
                rules,
                rng: seed,
                requests: HashMap::new(),
                injected: HashMap::new(),
                log: Vec::new(),
            }),
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
            next_request: AtomicU64::new(0),
        }
    }

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
            if armed.picks(op, target, rng) {
                return Some((index, armed.rule.fault.clone()));
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
        let shared = Arc::new(Shared::new(upstream_addr, seed, Vec::new()));
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
        self.shared.state().rules = rules.into_iter().map(ArmedRule::new).collect();
    }

    /// Adds one rule after the existing ones.
    pub fn add_rule(&self, rule: Rule) {
        self.shared.state().rules.push(ArmedRule::new(rule));
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

/// Sends the request to the upstream on a fresh connection and reads its response.
fn forward(shared: &Shared, request: &Message, method: &str) -> io::Result<Message> {
    let mut upstream = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(10))?;
    upstream.set_read_timeout(Some(Duration::from_secs(300)))?;
    upstream.set_nodelay(true)?;
    write_request(&mut upstream, request)?;
    let mut reader = BufReader::new(upstream);
    read_response(&mut reader, method)
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
            Some((rule, fault)) => {
                let exchange = Exchange {
                    op,
                    method: &method,
                    target: &target,
                    request: &request,
                    close,
                    request_id,
                };
                if let After::Closed = inject(&mut client, shared, &exchange, rule, &fault)? {
                    return Ok(());
                }
            }
        }
        if close {
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}

/// One request being served, as `serve` read it.
struct Exchange<'a> {
    op: Op,
    method: &'a str,
    target: &'a str,
    request: &'a Message,
    /// The client asked to close the connection after this exchange.
    close: bool,
    request_id: u64,
}

/// Whether the connection can serve another request after a fault.
enum After {
    Open,
    Closed,
}

/// Applies `fault` (from rule `rule`) to the exchange and records it.
fn inject(
    client: &mut TcpStream,
    shared: &Shared,
    exchange: &Exchange<'_>,
    rule: usize,
    fault: &Fault,
) -> io::Result<After> {
    let &Exchange {
        op,
        method,
        target,
        request,
        close,
        request_id,
    } = exchange;
    match fault {
        Fault::Status(status, code) => {
            shared.record(rule, op, method, target, fault, None);
            client.write_all(&error_response(*status, code, target, method, request_id))?;
            client.flush()?;
            Ok(After::Open)
        }
        Fault::Timeout => {
            shared.record(rule, op, method, target, fault, None);
            hold(client, shared);
            Ok(After::Closed)
        }
        Fault::Reset => {
            shared.record(rule, op, method, target, fault, None);
            reset(client);
            Ok(After::Closed)
        }
        Fault::Slow(delay) => {
            shared.record(rule, op, method, target, fault, None);
            sleep_unless_stopping(*delay, shared);
            relay(client, shared, request, method, close)?;
            Ok(After::Open)
        }
        Fault::LoseResponse | Fault::LoseResponseReset | Fault::LoseResponseTimeout => {
            let upstream = forward(shared, request, method).ok().map(|r| status_of(&r));
            shared.record(rule, op, method, target, fault, upstream);
            match fault {
                Fault::LoseResponse => {
                    let _ = client.shutdown(Shutdown::Both);
                }
                Fault::LoseResponseReset => reset(client),
                _ => hold(client, shared),
            }
            Ok(After::Closed)
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
    fn selection_is_deterministic_and_counted() {
        let proxy_rules = |seed| {
            let rules = vec![
                ArmedRule::new(Rule::new(&[Op::Get], Fault::Reset).first(2)),
                ArmedRule::new(Rule::new(&[Op::Put], Fault::slow_down()).every_nth(3)),
                ArmedRule::new(Rule::new(Op::ALL, Fault::Timeout).probability(0.3).limit(5)),
            ];
            let shared = Shared::new("127.0.0.1:9".parse().expect("addr"), seed, rules);
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
