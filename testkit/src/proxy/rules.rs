//! What the proxy does to which request: the kinds of S3 request ([`Op`]),
//! the faults ([`Fault`]) and the rules that pick requests for them
//! ([`Rule`]), with the per-rule counters that make every pick deterministic.

use std::fmt;
use std::time::Duration;

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

/// A rule with its counters, which restart whenever the rules are replaced.
pub(super) struct ArmedRule {
    pub(super) rule: Rule,
    pub(super) matched: u64,
    pub(super) fired: u64,
}

impl ArmedRule {
    pub(super) fn new(rule: Rule) -> ArmedRule {
        ArmedRule {
            rule,
            matched: 0,
            fired: 0,
        }
    }

    /// Whether this rule takes the request. `rng` is only drawn from by a
    /// probability rule that matches and is under its limit, so the draws,
    /// and with them every later decision, depend only on the request order.
    pub(super) fn picks(&mut self, op: Op, target: &str, rng: &mut u64) -> bool {
        let rule = &self.rule;
        if !rule.ops.contains(&op) {
            return false;
        }
        if let Some(fragment) = &rule.path_contains {
            if !target.contains(fragment.as_str()) {
                return false;
            }
        }
        self.matched += 1;
        if rule.limit.is_some_and(|limit| self.fired >= limit) {
            return false;
        }
        let picked = match rule.select {
            Select::Always => true,
            Select::Probability(p) => unit_interval(rng) < p,
            // Not `is_multiple_of`: that needs Rust 1.87, the workspace's rust-version is 1.85.
            #[allow(clippy::manual_is_multiple_of)]
            Select::EveryNth(n) => self.matched % n.max(1) == 0,
            Select::FirstN(n) => self.matched <= n,
        };
        if picked {
            self.fired += 1;
        }
        picked
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
}
