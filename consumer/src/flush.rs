//! When to flush: a micro-batch is written when any limit is reached, so
//! memory is bounded by the limits, not by the backlog in the source.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct FlushLimits {
    pub records: u64,
    pub bytes: u64,
    pub interval: Duration,
}

/// `records` and `bytes` are what is buffered across all partitions;
/// `age` is how long the oldest buffered batch has waited.
pub fn should_flush(limits: &FlushLimits, records: u64, bytes: u64, age: Duration) -> bool {
    if records == 0 && bytes == 0 {
        return false;
    }
    records >= limits.records || bytes >= limits.bytes || age >= limits.interval
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: FlushLimits = FlushLimits {
        records: 100,
        bytes: 1000,
        interval: Duration::from_secs(5),
    };

    #[test]
    fn flushes_on_whichever_limit_comes_first() {
        let young = Duration::from_millis(10);
        assert!(
            !should_flush(&LIMITS, 0, 0, Duration::from_secs(60)),
            "nothing to flush"
        );
        assert!(!should_flush(&LIMITS, 99, 999, young));
        assert!(should_flush(&LIMITS, 100, 1, young));
        assert!(should_flush(&LIMITS, 1, 1000, young));
        assert!(should_flush(&LIMITS, 1, 1, Duration::from_secs(5)));
        // A corrupt batch has bytes but no records: it still flushes.
        assert!(should_flush(&LIMITS, 0, 1, Duration::from_secs(5)));
    }
}
