//! Extension routes for operators and users: background jobs, and erasing a user.

use axum::Json;
use axum::extract::{Path, State};
use convo_core::{JobCounts, JobQuery, JobState, UserId};
use serde_json::Value;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::QueryParams;
use crate::openapi as doc;
use crate::state::Shared;

use super::{list, tagged};

/// Whose jobs a caller sees: a user key its user's; an admin key the named user's,
/// or everyone's when it names none.
fn job_owner(caller: &Caller) -> ApiResult<Option<&UserId>> {
    if caller.admin {
        Ok(caller.user_opt())
    } else {
        caller.user().map(Some)
    }
}

/// Jobs, newest first, by state and conversation.
#[utoipa::path(get, path = "/v1/convo/jobs", tag = "convo",
    params(("state" = Option<String>, Query, description = "pending, running, done or failed"),
        ("conversation_id" = Option<String>, Query), ("limit" = Option<u32>, Query, description = "1-1000, default 100")),
    responses((status = 200, body = doc::ListObject), (status = 400, body = doc::ErrorBody)))]
pub(crate) async fn list_jobs(
    State(st): State<Shared>,
    caller: Caller,
    q: QueryParams,
) -> ApiResult<Json<Value>> {
    let query = JobQuery {
        user: job_owner(&caller)?.map(|u| u.as_str().to_string()),
        state: q.str("state").map(str::parse::<JobState>).transpose()?,
        conversation_id: q.str("conversation_id").map(str::to_string),
        limit: Some(q.u32_in("limit", 1, 1000)?.unwrap_or(100)),
    };
    let jobs = st.store.list_jobs(&query).await?;
    let data = jobs
        .iter()
        .map(|j| tagged("convo.job", j))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(list(data)))
}

/// Jobs by state (the caller's; everyone's for an admin naming no user).
#[utoipa::path(get, path = "/v1/convo/jobs/counts", tag = "convo",
    responses((status = 200, body = doc::JobCountsObject)))]
pub(crate) async fn job_counts(State(st): State<Shared>, caller: Caller) -> ApiResult<Json<Value>> {
    let counts = match job_owner(&caller)? {
        None => st.store.job_counts().await?,
        Some(user) => {
            // The store counts globally; a user's counts come from their own jobs.
            let mut c = JobCounts::default();
            for state in JobState::ALL {
                let n = st
                    .store
                    .list_jobs(&JobQuery {
                        user: Some(user.as_str().to_string()),
                        state: Some(state),
                        conversation_id: None,
                        limit: Some(u32::MAX),
                    })
                    .await?
                    .len() as u64;
                match state {
                    JobState::Pending => c.pending = n,
                    JobState::Running => c.running = n,
                    JobState::Done => c.done = n,
                    JobState::Failed => c.failed = n,
                }
            }
            c
        }
    };
    Ok(Json(tagged("convo.job_counts", &counts)?))
}

/// One job (another user's is a 404).
#[utoipa::path(get, path = "/v1/convo/jobs/{job_id}", tag = "convo",
    params(("job_id" = String, Path)),
    responses((status = 200, body = doc::JobObject), (status = 404, body = doc::ErrorBody)))]
pub(crate) async fn get_job(
    State(st): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let job = st.store.get_job(&id).await?;
    if let Some(owner) = job_owner(&caller)?
        && job.user != owner.as_str()
    {
        return Err(convo_core::Error::JobNotFound(id).into());
    }
    Ok(Json(tagged("convo.job", &job)?))
}

/// Erases a user and everything of theirs (admin keys only; local mode counts as
/// admin). Answers what was removed.
#[utoipa::path(delete, path = "/v1/convo/users/{user}", tag = "convo",
    params(("user" = String, Path)),
    responses((status = 200, body = doc::ErasureObject), (status = 403, body = doc::ErrorBody)))]
pub(crate) async fn erase_user(
    State(st): State<Shared>,
    caller: Caller,
    Path(user): Path<String>,
) -> ApiResult<Json<Value>> {
    if !caller.admin {
        return Err(ApiError::forbidden("Erasing a user needs an admin key."));
    }
    let user = UserId::new(user)?;
    let receipt = st.store.erase_user(&user).await?;
    if receipt.api_keys > 0 {
        // Keys went with the user: let the next request re-check the auth mode.
        st.forget_key_mode();
    }
    let mut v = tagged("convo.user.erased", &receipt)?;
    if let Value::Object(o) = &mut v {
        o.insert("user".into(), Value::String(user.as_str().to_string()));
    }
    Ok(Json(v))
}
