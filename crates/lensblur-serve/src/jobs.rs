//! A bounded queue for CPU-heavy work (decode, model, refinement, full-resolution render).
//!
//! The work runs on tokio's blocking pool (it parallelises internally on rayon), never on the async
//! runtime. At most `workers` jobs run at once and at most `queue` more wait; a job beyond that is
//! refused at once with 503 + `Retry-After` rather than piling up memory; so is a job whose expected
//! wait (jobs ahead × mean job time) already reaches the timeout. A job that does not finish
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
        let ahead = self.admitted.fetch_add(1, Ordering::SeqCst);
        // Jobs ahead of this one, per worker, times the mean job time, plus its own run: when
        // that reaches the timeout the job would most likely time out, so refuse it now (503)
        // instead of letting the client wait for a 504.
        let mean = Duration::from_millis(self.mean_ms.load(Ordering::Relaxed));
        let expected_wait =
            mean * (ahead.saturating_sub(self.workers - 1) as u32).div_ceil(self.workers as u32);
        if ahead >= self.capacity || expected_wait + mean >= timeout {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_full",
                format!(
                    "{ahead} photos are being processed or waiting (about {:.0} s of work); try again shortly",
                    expected_wait.as_secs_f64()
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
        jobs.mean_ms.store(10, Ordering::Relaxed); // short jobs: admission is by count here
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_would_wait_past_its_timeout_is_refused_at_once() {
        let jobs = Arc::new(Jobs::new(1, 100));
        jobs.mean_ms.store(10_000, Ordering::Relaxed); // jobs take ~10 s
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let running = {
            let jobs = jobs.clone();
            tokio::spawn(async move {
                jobs.run(Duration::from_secs(60), move || {
                    let _ = rx.recv();
                    Ok(())
                })
                .await
            })
        };
        while jobs.admitted() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let t = Instant::now();
        let e = jobs
            .run(Duration::from_secs(5), || Ok(()))
            .await
            .unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::SERVICE_UNAVAILABLE, "queue_full")
        );
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "refused only after waiting"
        );
        // With a timeout longer than the expected wait it is queued (and runs).
        let queued = {
            let jobs = jobs.clone();
            tokio::spawn(async move { jobs.run(Duration::from_secs(60), || Ok(())).await })
        };
        while jobs.admitted() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tx.send(()).unwrap();
        running.await.unwrap().unwrap();
        queued.await.unwrap().unwrap();
    }
}
