//! The threads that decode messages ahead of the source: `WORKER_THREADS`
//! decodes at a time on tokio's blocking pool, so the source's task only
//! reads, orders and commits, and decoding uses every core. The same
//! number of threads encodes a commit's Parquet files ([`crate::write`]).
//! The files source decodes on them; the Kafka source still decodes each
//! message on its own task as it arrives.

use std::sync::Arc;

use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct Workers {
    permits: Arc<Semaphore>,
    threads: usize,
}

impl Workers {
    pub fn new(threads: usize) -> Workers {
        let threads = threads.max(1);
        Workers {
            permits: Arc::new(Semaphore::new(threads)),
            threads,
        }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `work`, which borrows and keeps this thread busy (it may use
    /// more threads of its own, as encoding does), telling a multi-threaded
    /// runtime first: it moves its other tasks off this thread, so the
    /// files source's decoding ahead goes on meanwhile instead of waiting
    /// in this thread's queue. A single-threaded runtime just runs it.
    pub fn block_here<R>(work: impl FnOnce() -> R) -> R {
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
            _ => work(),
        }
    }

    /// Runs `work` once one of the threads is free. With one thread it runs
    /// on the caller: handing it off would only add a thread switch.
    pub async fn run<R: Send + 'static>(&self, work: impl FnOnce() -> R + Send + 'static) -> R {
        if self.threads == 1 {
            return work();
        }
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let running = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        });
        match running.await {
            Ok(done) => done,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}
