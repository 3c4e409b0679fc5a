//! The consumer's one retry policy. A transient failure of the store (5xx,
//! timeouts, resets, refused connections) is logged and retried with
//! exponential backoff; a permanent one (refused credentials or permission, a
//! missing bucket, a bad setting, a lost or invalid checkpoint) is returned at
//! once, so the process can stop with one line naming what to fix.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use lake::checkpoint::CheckpointError;
use lake::StoreError;
use tracing::warn;

/// An error that knows whether trying again may help.
pub trait Transient: Display {
    fn is_transient(&self) -> bool;
}

impl Transient for StoreError {
    fn is_transient(&self) -> bool {
        StoreError::is_transient(self)
    }
}

impl Transient for CheckpointError {
    fn is_transient(&self) -> bool {
        CheckpointError::is_transient(self)
    }
}

/// How often to try before giving up on a transient failure.
#[derive(Debug, Clone, Copy)]
pub enum Attempts {
    /// While the process runs: work that cannot be skipped (uploads, commits,
    /// reading the source), which resumes once the store is back.
    Forever,
    /// At most this many: start-up, where an operator waits for an answer.
    AtMost(u32),
}

/// Runs `op` until it succeeds, fails permanently, or `attempts` run out;
/// `what` names the operation in the log line of each retry.
pub async fn retry<T, E, F, Fut>(what: &str, attempts: Attempts, mut op: F) -> Result<T, E>
where
    E: Transient,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 0u32;
    loop {
        let error = match op().await {
            Ok(value) => return Ok(value),
            Err(e) if !e.is_transient() => return Err(e),
            Err(e) => e,
        };
        attempt += 1;
        if matches!(attempts, Attempts::AtMost(most) if attempt >= most) {
            return Err(error);
        }
        warn!(attempt, error = %error, "{what} failed; retrying");
        let metrics = lake::metrics::metrics();
        metrics.retries.with_label_values(&[what]).inc();
        // Waiting for the store is the process at work, not stuck.
        lake::metrics::health().beat();
        tokio::time::sleep(backoff(attempt)).await;
    }
}

/// Exponential backoff from 200 ms, capped at 30 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(8))).min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn failure(transient: bool) -> StoreError {
        if transient {
            StoreError::Status {
                message: "HTTP 503".into(),
                status: 503,
            }
        } else {
            StoreError::Refused("HTTP 403".into())
        }
    }

    // Real time: a few hundred milliseconds of backoff.
    #[tokio::test]
    async fn transient_failures_are_retried_permanent_ones_returned_at_once() {
        let calls = Cell::new(0);
        let result = retry("probe", Attempts::Forever, || async {
            calls.set(calls.get() + 1);
            if calls.get() < 3 {
                Err(failure(true))
            } else {
                Ok(calls.get())
            }
        })
        .await;
        assert_eq!(result.expect("succeeds on the third call"), 3);

        calls.set(0);
        let result: Result<(), _> = retry("probe", Attempts::Forever, || async {
            calls.set(calls.get() + 1);
            Err(failure(false))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.get(), 1, "a 403 is not retried");

        calls.set(0);
        let result: Result<(), _> = retry("probe", Attempts::AtMost(3), || async {
            calls.set(calls.get() + 1);
            Err(failure(true))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.get(), 3);
    }
}
