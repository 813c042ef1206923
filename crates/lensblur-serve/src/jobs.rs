//! A bounded queue for CPU-heavy work (decode, model, refinement, full-resolution render).
//!
//! The work runs on tokio's blocking pool (it parallelises internally on rayon), never on the async
//! runtime. At most `workers` jobs run at once and at most `queue` more wait; a job beyond that is
//! refused at once with 503 + `Retry-After` rather than piling up memory. A job that does not finish
//! within the request timeout answers 504; the work itself cannot be interrupted, so its slot stays
//! taken until it really ends — the queue never admits more than it can hold.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The heavy-job queue.
#[derive(Debug)]
pub struct Jobs {
    running: Arc<Semaphore>,
    admitted: Arc<AtomicUsize>,
    capacity: usize,
    workers: usize,
    /// Mean job duration in ms (exponential moving average), for `Retry-After`.
    mean_ms: Arc<AtomicU64>,
}

/// Releases an admission slot when dropped (after the job, or if the request is abandoned).
struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Jobs {
    /// `workers` jobs at once (≥ 1), `queue` more waiting.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Jobs {
            running: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: workers + queue,
            workers,
            mean_ms: Arc::new(AtomicU64::new(1000)),
        }
    }

    /// Jobs running or waiting now.
    pub fn admitted(&self) -> usize {
        self.admitted.load(Ordering::SeqCst)
    }

    /// Seconds a refused client should wait: the queue's expected drain time, at least 1.
    fn retry_after(&self) -> u64 {
        let ms = self.mean_ms.load(Ordering::Relaxed) * self.capacity as u64 / self.workers as u64;
        ms.div_ceil(1000).max(1)
    }

    /// Runs `f` on the blocking pool once a worker is free, within `timeout` (waiting included).
    pub async fn run<T: Send + 'static>(
        &self,
        timeout: Duration,
        f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_full",
                format!(
                    "{} photos are being processed or waiting; try again shortly",
                    self.capacity
                ),
            );
            e.retry_after = Some(self.retry_after());
            return Err(e);
        }
        let admission = Admission(self.admitted.clone());
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = || {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!(
                    "processing took longer than the {} s limit",
                    timeout.as_secs_f64()
                ),
            )
        };
        let permit = tokio::time::timeout_at(deadline, self.running.clone().acquire_owned())
            .await
            .map_err(|_| timed_out())?
            .map_err(ApiError::internal)?;
        let mean = self.mean_ms.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let _slot = (permit, admission);
            let t = Instant::now();
            let out = f();
            let ms = t.elapsed().as_millis() as u64;
            let old = mean.load(Ordering::Relaxed);
            mean.store((old * 3 + ms) / 4, Ordering::Relaxed);
            out
        });
        match tokio::time::timeout_at(deadline, handle).await {
            Err(_) => Err(timed_out()),
            Ok(Err(join)) => Err(ApiError::internal(format!("worker failed: {join}"))),
            Ok(Ok(out)) => out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_queue_is_refused_and_timeouts_keep_the_slot_until_the_work_ends() {
        let jobs = Arc::new(Jobs::new(1, 1));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let long = {
            let jobs = jobs.clone();
            tokio::spawn(async move {
                jobs.run(Duration::from_millis(200), move || {
                    let _ = rx.recv(); // runs until the test releases it
                    Ok(1)
                })
                .await
            })
        };
        // Wait until it runs, then one more may wait in the queue and a third is refused.
        while jobs.admitted() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let waiting = {
            let jobs = jobs.clone();
            tokio::spawn(async move { jobs.run(Duration::from_secs(30), || Ok(2)).await })
        };
        while jobs.admitted() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused = jobs
            .run(Duration::from_secs(1), || Ok(3))
            .await
            .unwrap_err();
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.code, "queue_full");
        assert!(refused.retry_after.is_some_and(|s| s >= 1));
        // The long job times out for its client…
        let e = long.await.unwrap().unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::GATEWAY_TIMEOUT, "timeout"));
        // …but its slot is held until the work really ends, so the waiting job has not run.
        assert_eq!(jobs.admitted(), 2);
        tx.send(()).unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), 2);
        while jobs.admitted() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
