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
//!
//! `rules` decides what happens to a request, `http` reads and writes the
//! messages, `server` runs the threads and applies the decisions.

mod http;
mod rules;
mod server;

pub use rules::{Fault, FaultKind, Injection, Op, Rule, Select};
pub use server::FaultProxy;
