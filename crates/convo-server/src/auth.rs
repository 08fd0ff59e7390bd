//! Who is calling: `Authorization: Bearer <key>`, or local single-user mode when the
//! store holds no key at all.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use convo_core::{Timestamp, UserId};

use crate::error::{ApiError, ApiResult};
use crate::keys::{self, KeyProblem};
use crate::state::Shared;

/// The header naming the user an admin key (or local mode) acts for.
pub const USER_HEADER: &str = "x-convo-user";

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The user whose data the request touches, when one is known.
    user: Option<UserId>,
    /// May act for any user and erase users (admin keys, and local mode).
    pub admin: bool,
}

impl Caller {
    /// The user the request acts for; an admin key without `X-Convo-User` is a 400.
    pub fn user(&self) -> ApiResult<&UserId> {
        self.user.as_ref().ok_or_else(|| {
            ApiError::bad_request(
                "X-Convo-User",
                "An admin key must name the user it acts for in the X-Convo-User header.",
            )
        })
    }

    /// The user, if one was named (admins may omit it on operator routes).
    pub fn user_opt(&self) -> Option<&UserId> {
        self.user.as_ref()
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn named_user(headers: &HeaderMap) -> ApiResult<Option<UserId>> {
    match headers.get(USER_HEADER) {
        None => Ok(None),
        Some(v) => {
            let s = v.to_str().map_err(|_| {
                ApiError::bad_request("X-Convo-User", "X-Convo-User must be visible ASCII.")
            })?;
            UserId::new(s)
                .map(Some)
                .map_err(|e| ApiError::bad_request("X-Convo-User", e.to_string()))
        }
    }
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> ApiResult<Self> {
        let local = |state: &Shared| -> ApiResult<Caller> {
            let user = match named_user(&parts.headers)? {
                Some(u) => u,
                None => UserId::new(state.config.local_user.as_str())?,
            };
            Ok(Caller {
                user: Some(user),
                admin: true,
            })
        };
        let Some(secret) = bearer(&parts.headers) else {
            if state.keys_exist().await? {
                return Err(ApiError::unauthorized(
                    "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
                ));
            }
            return local(state);
        };
        match keys::check(state.store.as_ref(), secret, Timestamp::now()).await? {
            Ok(key) => {
                state.note_keys_exist(true);
                let user = if key.admin {
                    match named_user(&parts.headers)? {
                        Some(u) => Some(u),
                        None => key.user.map(UserId::new).transpose()?,
                    }
                } else {
                    key.user.map(UserId::new).transpose()?
                };
                Ok(Caller {
                    user,
                    admin: key.admin,
                })
            }
            Err(problem) => {
                // Local mode accepts any bearer: the SDK always sends one.
                if !state.keys_exist().await? {
                    return local(state);
                }
                // The secret itself is never echoed or logged.
                Err(ApiError::unauthorized(match problem {
                    KeyProblem::Unknown => "Incorrect API key provided.",
                    KeyProblem::Revoked => "This API key has been revoked.",
                    KeyProblem::Expired => "This API key has expired.",
                }))
            }
        }
    }
}
