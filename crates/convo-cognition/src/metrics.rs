//! Counters of the worker and the provider, cheap to bump (atomics), rendered as
//! Prometheus text for the server's `/metrics`.

use convo_core::JobCounts;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the provider latency buckets, seconds.
const LATENCY_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// What this process's workers did since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    jobs_run: AtomicU64,
    jobs_succeeded: AtomicU64,
    jobs_failed: AtomicU64,
    jobs_retried: AtomicU64,
    jobs_handed_back: AtomicU64,
    provider_calls: AtomicU64,
    provider_errors: AtomicU64,
    tokens: AtomicU64,
    // Per bucket, not cumulative; the last is +Inf.
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_micros: AtomicU64,
}

/// A snapshot of the job counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobTally {
    /// Attempts run.
    pub run: u64,
    /// Attempts that ended done.
    pub succeeded: u64,
    /// Attempts that ended the job as failed.
    pub failed: u64,
    /// Attempts that will be retried.
    pub retried: u64,
}

impl Metrics {
    /// Fresh counters.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn job_started(&self) {
        self.jobs_run.fetch_add(1, Relaxed);
    }

    pub(crate) fn job_succeeded(&self) {
        self.jobs_succeeded.fetch_add(1, Relaxed);
    }

    pub(crate) fn job_failed(&self) {
        self.jobs_failed.fetch_add(1, Relaxed);
    }

    pub(crate) fn job_retried(&self) {
        self.jobs_retried.fetch_add(1, Relaxed);
    }

    pub(crate) fn job_handed_back(&self) {
        self.jobs_handed_back.fetch_add(1, Relaxed);
    }

    /// Records one provider call.
    pub fn record_call(&self, latency: Duration, tokens: u32, ok: bool) {
        self.provider_calls.fetch_add(1, Relaxed);
        if !ok {
            self.provider_errors.fetch_add(1, Relaxed);
        }
        self.tokens.fetch_add(u64::from(tokens), Relaxed);
        let secs = latency.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency_buckets[i].fetch_add(1, Relaxed);
        self.latency_sum_micros.fetch_add(
            latency.as_micros().min(u128::from(u64::MAX)) as u64,
            Relaxed,
        );
    }

    /// The job counters now.
    pub fn jobs(&self) -> JobTally {
        JobTally {
            run: self.jobs_run.load(Relaxed),
            succeeded: self.jobs_succeeded.load(Relaxed),
            failed: self.jobs_failed.load(Relaxed),
            retried: self.jobs_retried.load(Relaxed),
        }
    }

    /// Provider calls made.
    pub fn provider_calls(&self) -> u64 {
        self.provider_calls.load(Relaxed)
    }

    /// Tokens the providers reported.
    pub fn tokens_used(&self) -> u64 {
        self.tokens.load(Relaxed)
    }

    /// The counters in the Prometheus text format.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            &mut out,
            "convo_jobs_run_total",
            "Cognition job attempts started by this process.",
            self.jobs_run.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP convo_job_attempts_total Cognition job attempts by how they ended.\n\
             # TYPE convo_job_attempts_total counter"
        );
        for (outcome, v) in [
            ("succeeded", &self.jobs_succeeded),
            ("failed", &self.jobs_failed),
            ("retried", &self.jobs_retried),
            ("handed_back", &self.jobs_handed_back),
        ] {
            let _ = writeln!(
                out,
                "convo_job_attempts_total{{outcome=\"{outcome}\"}} {}",
                v.load(Relaxed)
            );
        }
        counter(
            &mut out,
            "convo_provider_calls_total",
            "Calls to the cognition provider.",
            self.provider_calls.load(Relaxed),
        );
        counter(
            &mut out,
            "convo_provider_errors_total",
            "Calls to the cognition provider that failed.",
            self.provider_errors.load(Relaxed),
        );
        counter(
            &mut out,
            "convo_provider_tokens_total",
            "Tokens (prompt and reply) the cognition provider reported.",
            self.tokens.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP convo_provider_latency_seconds Time of one provider call.\n\
             # TYPE convo_provider_latency_seconds histogram"
        );
        let mut cumulative = 0;
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += self.latency_buckets[i].load(Relaxed);
            let _ = writeln!(
                out,
                "convo_provider_latency_seconds_bucket{{le=\"{b}\"}} {cumulative}"
            );
        }
        cumulative += self.latency_buckets[LATENCY_BUCKETS.len()].load(Relaxed);
        let _ = writeln!(
            out,
            "convo_provider_latency_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let sum = self.latency_sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "convo_provider_latency_seconds_sum {sum}");
        let _ = writeln!(out, "convo_provider_latency_seconds_count {cumulative}");
        out
    }
}

/// Jobs by state (from [`convo_core::Store::job_counts`]) as a Prometheus gauge.
pub fn render_job_counts(counts: &JobCounts) -> String {
    let mut out = String::from(
        "# HELP convo_jobs Cognition jobs in the queue by state.\n# TYPE convo_jobs gauge\n",
    );
    for (state, n) in [
        ("pending", counts.pending),
        ("running", counts.running),
        ("done", counts.done),
        ("failed", counts.failed),
    ] {
        let _ = writeln!(out, "convo_jobs{{state=\"{state}\"}} {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_cumulative_histogram() {
        let m = Metrics::new();
        m.record_call(Duration::from_millis(3), 10, true);
        m.record_call(Duration::from_millis(700), 20, false);
        m.record_call(Duration::from_secs(100), 0, false);
        let text = m.render_prometheus();
        assert!(
            text.contains("convo_provider_latency_seconds_bucket{le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("convo_provider_latency_seconds_bucket{le=\"1\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("convo_provider_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("convo_provider_latency_seconds_count 3\n"));
        assert!(text.contains("convo_provider_tokens_total 30\n"));
        assert!(text.contains("convo_provider_errors_total 2\n"));
        let counts = render_job_counts(&JobCounts {
            pending: 4,
            ..Default::default()
        });
        assert!(counts.contains("convo_jobs{state=\"pending\"} 4\n"));
    }
}
