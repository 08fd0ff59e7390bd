//! Background cognition jobs, stored durably beside the conversations.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::{Error, ProfileOp, Result, Timestamp};

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Give the conversation a name.
    Name,
    /// Update the user's profile from the conversation.
    Profile,
}

impl JobKind {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Name => "name",
            JobKind::Profile => "profile",
        }
    }
}

impl FromStr for JobKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "name" => Ok(JobKind::Name),
            "profile" => Ok(JobKind::Profile),
            o => Err(Error::invalid(
                "kind",
                format!("{o:?} is not name or profile"),
            )),
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting to run (maybe after a backoff).
    Pending,
    /// Leased by a worker.
    Running,
    /// Finished; its effects are written.
    Done,
    /// Gave up after its attempts; `last_error` says why.
    Failed,
}

impl JobState {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    /// Every state, in life order.
    pub const ALL: [JobState; 4] = [
        JobState::Pending,
        JobState::Running,
        JobState::Done,
        JobState::Failed,
    ];
}

impl FromStr for JobState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(JobState::Pending),
            "running" => Ok(JobState::Running),
            "done" => Ok(JobState::Done),
            "failed" => Ok(JobState::Failed),
            o => Err(Error::invalid(
                "state",
                format!("{o:?} is not pending, running, done or failed"),
            )),
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// `job_…`.
    pub id: String,
    /// What it does.
    pub kind: JobKind,
    /// Whose data it touches.
    pub user: String,
    /// The conversation it reads.
    pub conversation_id: String,
    /// Where it is.
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed before it fails.
    pub max_attempts: u32,
    /// Not before this time.
    pub run_after: Timestamp,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// The last model reply, kept for diagnosis when it could not be understood.
    pub last_reply: Option<String>,
    /// Queued.
    pub created_at: Timestamp,
    /// Last state change.
    pub updated_at: Timestamp,
    /// The worker holding the lease while running.
    pub lease_owner: Option<String>,
}

/// How an attempt ended, as the worker reports it to the store.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// Success: write these effects and mark the job done, in one transaction.
    Done {
        /// A name for the conversation (ignored if a person named it).
        name: Option<String>,
        /// Validated profile operations to apply.
        profile_ops: Vec<ProfileOp>,
        /// Why nothing was applied, when operations were rejected (kept on the job).
        note: Option<String>,
    },
    /// Try again later (unless attempts are used up, then fail).
    Retry {
        /// What went wrong.
        error: String,
        /// The reply, if one came.
        reply: Option<String>,
        /// Earliest next attempt.
        run_after: Timestamp,
    },
    /// Give up now.
    Failed {
        /// Why.
        error: String,
        /// The reply, if one came.
        reply: Option<String>,
    },
}

/// Counts of jobs by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    /// Pending.
    pub pending: u64,
    /// Running.
    pub running: u64,
    /// Done.
    pub done: u64,
    /// Failed.
    pub failed: u64,
}

/// A filter for listing jobs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobQuery {
    /// Only this user's.
    pub user: Option<String>,
    /// Only in this state.
    pub state: Option<JobState>,
    /// Only of this conversation.
    pub conversation_id: Option<String>,
    /// At most this many, newest first (default 100).
    pub limit: Option<u32>,
}
