//! One attempt of a claimed job: read the conversation, ask the provider, decide how
//! the attempt ends, and report it to the store.

use convo_core::{Conversation, Item, Job, JobKind, JobOutcome, Profile, Timestamp, UserId};
use std::time::Duration;
use tokio::sync::watch;

use super::{Attempt, STOP_GRACE, Worker};
use crate::grounding;
use crate::prompt::{self, PromptBudget};
use crate::reply::parse_reply;
use crate::{CognitionError, ProviderError};

impl Worker {
    /// Runs one attempt of a claimed job and reports it.
    pub(super) async fn process(
        &self,
        job: &Job,
        shutdown: Option<&watch::Receiver<bool>>,
    ) -> Result<Attempt, CognitionError> {
        self.inner.metrics.job_started();
        let Some(outcome) = self.attempt(job, shutdown).await else {
            self.inner.metrics.job_handed_back();
            return Ok(Attempt::HandedBack);
        };
        let attempt = match &outcome {
            JobOutcome::Done { .. } => Attempt::Done,
            JobOutcome::Retry { .. } if job.attempts >= job.max_attempts => Attempt::Failed,
            JobOutcome::Retry { .. } => Attempt::Retried,
            JobOutcome::Failed { .. } => Attempt::Failed,
        };
        if let JobOutcome::Retry { error, .. } | JobOutcome::Failed { error, .. } = &outcome {
            tracing::warn!(
                job = %job.id, kind = %job.kind, attempt = job.attempts,
                max = job.max_attempts, "cognition attempt failed: {error}"
            );
        }
        let accepted = self
            .inner
            .store
            .finish_job(&job.id, &self.inner.id, outcome)
            .await?;
        if !accepted {
            tracing::info!(
                job = %job.id, conversation = %job.conversation_id,
                "job gone or lease lost (conversation deleted?); nothing written"
            );
            return Ok(Attempt::Lost);
        }
        match attempt {
            Attempt::Done => self.inner.metrics.job_succeeded(),
            Attempt::Retried => self.inner.metrics.job_retried(),
            Attempt::Failed => self.inner.metrics.job_failed(),
            _ => {}
        }
        Ok(attempt)
    }

    /// Decides how an attempt ends; `None` when a stop interrupted it.
    async fn attempt(
        &self,
        job: &Job,
        shutdown: Option<&watch::Receiver<bool>>,
    ) -> Option<JobOutcome> {
        let done = |note: &str| JobOutcome::Done {
            name: None,
            profile_ops: vec![],
            note: Some(note.to_string()),
        };
        if !self.inner.provider.is_enabled() {
            return Some(done(
                "cognition is off (provider \"none\"); nothing was done",
            ));
        }
        let (conversation, items, profile) = match self.load(job).await {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return Some(done("a person named this conversation; name kept")),
            Err(outcome) => return Some(outcome),
        };
        if items.is_empty()
            && conversation
                .chat_log
                .as_deref()
                .is_none_or(|l| l.trim().is_empty())
        {
            return Some(done("the conversation is empty; nothing to do"));
        }
        let request = if self.inner.provider.reads_prompt() {
            prompt::build_request(
                &conversation,
                &items,
                &profile,
                PromptBudget {
                    max_prompt_tokens: self.inner.config.max_prompt_tokens,
                    max_reply_tokens: self.inner.config.max_reply_tokens,
                },
                self.inner.config.temperature,
            )
        } else {
            prompt::light_request(&conversation, &items)
        };
        let reply = match self.call(&request, shutdown).await? {
            Ok(reply) => reply,
            Err(e) => {
                let reply = e.reply().map(str::to_string);
                return Some(if e.is_retryable() {
                    self.retry(job, e.to_string(), reply, e.retry_after())
                } else {
                    JobOutcome::Failed {
                        error: e.to_string(),
                        reply,
                    }
                });
            }
        };
        let parsed = match parse_reply(&reply.text) {
            Ok(p) => p,
            Err(e) => return Some(self.retry(job, e.to_string(), Some(e.reply), None)),
        };
        Some(match job.kind {
            JobKind::Name => match parsed.name {
                Some(name) => JobOutcome::Done {
                    name: Some(name),
                    profile_ops: vec![],
                    note: None,
                },
                None => self.retry(job, "the reply gave no name".into(), Some(reply.text), None),
            },
            JobKind::Profile => match parsed.operations {
                Some(Ok(ops)) => {
                    let statements = self
                        .inner
                        .config
                        .ground_profile
                        .then(|| {
                            grounding::user_statements(&items, conversation.chat_log.as_deref())
                        })
                        .flatten();
                    let (ops, dropped) = match statements {
                        Some(s) => grounding::keep_grounded(ops, &s),
                        None => (ops, 0),
                    };
                    JobOutcome::Done {
                        name: None,
                        profile_ops: ops,
                        note: (dropped > 0).then(|| {
                            format!(
                                "{dropped} profile operation(s) dropped: not grounded in \
                                 anything the user said about themselves"
                            )
                        }),
                    }
                }
                // Rejected as a whole: recorded on the job, nothing written.
                Some(Err(why)) => JobOutcome::Done {
                    name: None,
                    profile_ops: vec![],
                    note: Some(format!("profile operations rejected: {why}")),
                },
                None => self.retry(
                    job,
                    "the reply gave no list of profile operations".into(),
                    Some(reply.text),
                    None,
                ),
            },
        })
    }

    /// The conversation, its items and (for profile jobs) the profile; `Ok(None)` when
    /// a naming job has nothing to do because a person named the conversation.
    async fn load(
        &self,
        job: &Job,
    ) -> Result<Option<(Conversation, Vec<Item>, Profile)>, JobOutcome> {
        let store = &self.inner.store;
        let user = UserId::new(job.user.clone()).map_err(|e| JobOutcome::Failed {
            error: e.to_string(),
            reply: None,
        })?;
        let read_failed = |e: convo_core::Error| {
            if e.is_not_found() {
                JobOutcome::Failed {
                    error: format!("the conversation is gone: {e}"),
                    reply: None,
                }
            } else {
                self.retry(
                    job,
                    format!("cannot read the conversation: {e}"),
                    None,
                    None,
                )
            }
        };
        let conversation = store
            .get_conversation(&user, &job.conversation_id)
            .await
            .map_err(read_failed)?;
        if job.kind == JobKind::Name && conversation.name_set_by_person {
            return Ok(None);
        }
        let items = store
            .all_items(&user, &job.conversation_id)
            .await
            .map_err(read_failed)?;
        // A naming job discards operations, so it spares the model the profile.
        let profile = match job.kind {
            JobKind::Profile => store.get_profile(&user).await.map_err(read_failed)?,
            JobKind::Name => Profile::default(),
        };
        Ok(Some((conversation, items, profile)))
    }

    /// Calls the provider under the timeout; the outer `None` means a stop interrupted
    /// the call.
    async fn call(
        &self,
        request: &crate::CognitionRequest,
        shutdown: Option<&watch::Receiver<bool>>,
    ) -> Option<Result<crate::ProviderReply, ProviderError>> {
        // The provider enforces the per-call timeout itself; this is a safety net for
        // one that does not (its one retry of a cut reply included).
        let budget = self.inner.config.timeout() * 2 + Duration::from_secs(1);
        let started = std::time::Instant::now();
        let call = async {
            match tokio::time::timeout(budget, self.inner.provider.complete(request)).await {
                Ok(r) => r,
                Err(_) => Err(ProviderError::Timeout(budget)),
            }
        };
        let result = match shutdown {
            None => call.await,
            Some(rx) => {
                let mut rx = rx.clone();
                let grace = (self.inner.config.timeout() / 2).min(STOP_GRACE);
                tokio::select! {
                    r = call => r,
                    _ = async {
                        let _ = rx.wait_for(|stop| *stop).await;
                        tokio::time::sleep(grace).await;
                    } => return None,
                }
            }
        };
        let (latency, tokens) = match &result {
            Ok(r) => (r.latency, r.tokens()),
            Err(_) => (started.elapsed(), 0),
        };
        self.inner
            .metrics
            .record_call(latency, tokens, result.is_ok());
        Some(result)
    }

    /// A retry after the provider's `Retry-After`, or after an exponential backoff with
    /// jitter.
    fn retry(
        &self,
        job: &Job,
        error: String,
        reply: Option<String>,
        retry_after: Option<Duration>,
    ) -> JobOutcome {
        let delay = match retry_after {
            Some(d) => d,
            None => backoff(
                job.attempts,
                self.inner.config.backoff_base_secs,
                self.inner.config.backoff_max_secs,
            ),
        };
        let at = Timestamp::now().unix_ms() + delay.as_millis().min(i64::MAX as u128) as i64;
        JobOutcome::Retry {
            error,
            reply,
            run_after: Timestamp::from_unix_ms(at),
        }
    }
}

/// `base * 2^(attempt-1)`, at most `max`, with "equal jitter": between half and all of
/// it, so retries of many jobs spread out but never come early.
pub(crate) fn backoff(attempt: u32, base_secs: f64, max_secs: f64) -> Duration {
    let base = base_secs.max(0.0);
    let exp = base * 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
    let capped = exp.min(max_secs.max(base));
    let jittered = capped * (0.5 + rand::random::<f64>() * 0.5);
    Duration::from_secs_f64(jittered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        for attempt in 1..=10 {
            let d = backoff(attempt, 2.0, 60.0).as_secs_f64();
            let full = (2.0 * 2f64.powi(attempt as i32 - 1)).min(60.0);
            assert!(d >= full / 2.0 - 1e-9 && d <= full + 1e-9, "{attempt}: {d}");
        }
    }
}
