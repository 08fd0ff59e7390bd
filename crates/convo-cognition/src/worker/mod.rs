//! The job worker: claims jobs from the store's durable queue, asks the provider, and
//! reports each attempt back to the store, which writes the effects with the job's
//! completion in one transaction (and only while this worker holds the lease).
//!
//! Nothing is held across a model call: no lock, no transaction. A slow provider
//! occupies only its own task.

use convo_core::{Job, JobQuery, JobState, Store, Timestamp};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

mod attempt;

use crate::{CognitionConfig, CognitionError, Metrics, Provider};

/// What the worker's runs did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkSummary {
    /// Attempts that ended done (effects written).
    pub done: u64,
    /// Attempts that will be retried later.
    pub retried: u64,
    /// Attempts that ended their job as failed.
    pub failed: u64,
    /// Jobs handed back to the queue at a graceful stop.
    pub handed_back: u64,
    /// Attempts whose report the store refused: the conversation was deleted or the
    /// lease was lost meanwhile; nothing was written.
    pub lost: u64,
    /// Jobs left pending because they may not run before the backoff horizon
    /// (`run_until_empty` only).
    pub left_pending: u64,
}

impl WorkSummary {
    fn add(&mut self, other: WorkSummary) {
        self.done += other.done;
        self.retried += other.retried;
        self.failed += other.failed;
        self.handed_back += other.handed_back;
        self.lost += other.lost;
        self.left_pending = self.left_pending.max(other.left_pending);
    }

    fn count(&mut self, a: Attempt) {
        match a {
            Attempt::Done => self.done += 1,
            Attempt::Retried => self.retried += 1,
            Attempt::Failed => self.failed += 1,
            Attempt::HandedBack => self.handed_back += 1,
            Attempt::Lost => self.lost += 1,
        }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Done; effects written.
    Done,
    /// Back in the queue, to run after a backoff.
    Retried,
    /// The job failed (permanently, or its attempts are used up).
    Failed,
    /// Interrupted by a stop; the job goes back to the queue.
    HandedBack,
    /// The store refused the report (conversation deleted, lease lost).
    Lost,
}

/// Runs cognition jobs. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    provider: Arc<dyn Provider>,
    config: CognitionConfig,
    id: String,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.inner.id)
            .field("store", &self.inner.store.describe())
            .field("provider", &self.inner.provider)
            .field("config", &self.inner.config)
            .finish()
    }
}

/// Longest wait for an in-flight call after a stop is asked for (half the call
/// timeout when that is shorter).
const STOP_GRACE: Duration = Duration::from_secs(5);

impl Worker {
    /// A worker over a store and a provider, with a fresh id (`w-<pid>-<random>`).
    pub fn new(
        store: Arc<dyn Store>,
        provider: Arc<dyn Provider>,
        config: CognitionConfig,
    ) -> Self {
        let id = format!(
            "w-{}-{:06x}",
            std::process::id(),
            rand::random::<u32>() & 0xff_ffff
        );
        Worker {
            inner: Arc::new(Inner {
                store,
                provider,
                config,
                id,
                metrics: Arc::new(Metrics::new()),
            }),
        }
    }

    /// The same worker reporting into shared counters (the server's `/metrics`).
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Self {
        self.rebuild(|i| i.metrics = metrics)
    }

    /// The same worker under another id (leases are taken in its name).
    pub fn with_id(self, id: impl Into<String>) -> Self {
        let id = id.into();
        self.rebuild(|i| i.id = id)
    }

    fn rebuild(self, change: impl FnOnce(&mut Inner)) -> Self {
        let i = &self.inner;
        let mut inner = Inner {
            store: i.store.clone(),
            provider: i.provider.clone(),
            config: i.config.clone(),
            id: i.id.clone(),
            metrics: i.metrics.clone(),
        };
        change(&mut inner);
        Worker {
            inner: Arc::new(inner),
        }
    }

    /// The id leases are taken in.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Claims one runnable job and runs one attempt of it; `None` when no job is
    /// runnable now.
    pub async fn run_one(&self) -> Result<Option<(Job, Attempt)>, CognitionError> {
        let Some(job) = self.claim().await? else {
            return Ok(None);
        };
        let attempt = self.process(&job, None).await?;
        Ok(Some((job, attempt)))
    }

    /// Runs jobs with `concurrency` tasks until the queue is empty: nothing pending or
    /// running. Jobs waiting for a backoff are waited for, unless they may not run
    /// before `backoff_max_secs` from now (they are then left pending and counted).
    /// For `convo work` without `--follow`.
    pub async fn run_until_empty(&self) -> Result<WorkSummary, CognitionError> {
        let mut tasks = JoinSet::new();
        for _ in 0..self.inner.config.concurrency.max(1) {
            let w = self.clone();
            tasks.spawn(async move { w.drain().await });
        }
        let mut summary = WorkSummary::default();
        let mut first_error = None;
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(Ok(s)) => summary.add(s),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(CognitionError::Config(format!(
                        "a worker task panicked: {e}"
                    )));
                }
            }
        }
        if let Some(e) = first_error {
            // Whatever this worker still holds goes back to the queue.
            let _ = self.inner.store.release_jobs(&self.inner.id).await;
            return Err(e);
        }
        Ok(summary)
    }

    /// Runs jobs with `concurrency` tasks until `shutdown` turns true (or its sender is
    /// dropped). In-flight calls get a short grace to finish; jobs still in flight after
    /// it are handed back to the queue (their attempt is not counted).
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<WorkSummary, CognitionError> {
        let mut tasks = JoinSet::new();
        for _ in 0..self.inner.config.concurrency.max(1) {
            let w = self.clone();
            let rx = shutdown.clone();
            tasks.spawn(async move { w.follow(rx).await });
        }
        let mut summary = WorkSummary::default();
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(s) => summary.add(s),
                Err(e) => tracing::error!(worker = %self.inner.id, "a worker task panicked: {e}"),
            }
        }
        let released = self.inner.store.release_jobs(&self.inner.id).await?;
        summary.handed_back = summary.handed_back.max(released);
        tracing::info!(worker = %self.inner.id, ?summary, "worker stopped");
        Ok(summary)
    }

    async fn claim(&self) -> Result<Option<Job>, CognitionError> {
        let lease = self.inner.config.lease();
        Ok(self
            .inner
            .store
            .claim_job(&self.inner.id, lease, Timestamp::now())
            .await?)
    }

    /// One task of `run_until_empty`.
    async fn drain(&self) -> Result<WorkSummary, CognitionError> {
        let mut summary = WorkSummary::default();
        loop {
            if let Some(job) = self.claim().await? {
                summary.count(self.process(&job, None).await?);
                continue;
            }
            let counts = self.inner.store.job_counts().await?;
            if counts.pending == 0 && counts.running == 0 {
                return Ok(summary);
            }
            let mut wait = self.inner.config.poll_interval();
            if counts.running == 0 {
                // Only backoffs (or jobs queued behind them) remain: wait for the
                // soonest, unless it is past the horizon.
                let soonest = self.soonest_pending().await?;
                let now = Timestamp::now().unix_ms();
                let horizon = (self.inner.config.backoff_max_secs.max(0.0) * 1000.0) as i64;
                match soonest {
                    Some(at) if at.unix_ms() - now > horizon => {
                        summary.left_pending = counts.pending;
                        return Ok(summary);
                    }
                    Some(at) => {
                        let until = Duration::from_millis((at.unix_ms() - now).max(0) as u64);
                        wait = wait.min(until.max(Duration::from_millis(5)));
                    }
                    None => {}
                }
            }
            tokio::time::sleep(wait).await;
        }
    }

    async fn soonest_pending(&self) -> Result<Option<Timestamp>, CognitionError> {
        let pending = self
            .inner
            .store
            .list_jobs(&JobQuery {
                state: Some(JobState::Pending),
                limit: Some(10_000),
                ..Default::default()
            })
            .await?;
        Ok(pending.iter().map(|j| j.run_after).min())
    }

    /// One task of `run`.
    async fn follow(&self, mut shutdown: watch::Receiver<bool>) -> WorkSummary {
        let mut summary = WorkSummary::default();
        let mut store_failures = 0u32;
        loop {
            if *shutdown.borrow() {
                return summary;
            }
            let idle = match self.claim().await {
                Ok(Some(job)) => match self.process(&job, Some(&shutdown)).await {
                    Ok(a) => {
                        store_failures = 0;
                        summary.count(a);
                        None
                    }
                    Err(e) => {
                        store_failures += 1;
                        tracing::warn!(worker = %self.inner.id, job = %job.id, "cannot report a job: {e}");
                        Some(self.store_backoff(store_failures))
                    }
                },
                Ok(None) => {
                    store_failures = 0;
                    Some(self.inner.config.poll_interval())
                }
                Err(CognitionError::Store(convo_core::Error::Closed)) => return summary,
                Err(e) => {
                    store_failures += 1;
                    tracing::warn!(worker = %self.inner.id, "cannot claim a job: {e}");
                    Some(self.store_backoff(store_failures))
                }
            };
            if let Some(wait) = idle {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return summary,
                }
            }
        }
    }

    fn store_backoff(&self, failures: u32) -> Duration {
        let ms = 100u64.saturating_mul(1 << failures.min(6));
        Duration::from_millis(ms).min(Duration::from_secs(5))
    }
}
