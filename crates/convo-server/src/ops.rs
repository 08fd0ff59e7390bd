//! Operations routes: `/healthz`, `/metrics`, `/openapi.json`. No auth: they carry
//! no user data.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::fmt::Write;

use crate::state::Shared;

/// 200 when the database answers, 503 otherwise.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "{\"status\":\"ok\"}"), (status = 503, description = "The database does not answer")))]
pub(crate) async fn healthz(State(st): State<Shared>) -> Response {
    match st.store.ping().await {
        Ok(()) => Json(json!({"status": "ok"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

/// Answers `{}` and touches nothing: every layer of the server (request id, tracing,
/// metrics, timeout, limits) but no auth and no store. The benchmark compares routes
/// against it under the same load.
#[utoipa::path(get, path = "/noop", tag = "operations",
    responses((status = 200, description = "{}")))]
pub(crate) async fn noop() -> Json<serde_json::Value> {
    Json(json!({}))
}

/// Prometheus text: requests by route and status, latency histograms, jobs by
/// state, and whatever the embedding binary appends (e.g. provider latency).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub(crate) async fn metrics(State(st): State<Shared>) -> Response {
    let mut out = String::with_capacity(4096);
    st.metrics.render(&mut out);
    match st.store.job_counts().await {
        Ok(c) => {
            out.push_str("# HELP convo_jobs Background jobs by state.\n# TYPE convo_jobs gauge\n");
            for (state, n) in [
                ("pending", c.pending),
                ("running", c.running),
                ("done", c.done),
                ("failed", c.failed),
            ] {
                let _ = writeln!(out, "convo_jobs{{state=\"{state}\"}} {n}");
            }
        }
        Err(e) => tracing::warn!(error = %e, "job counts for /metrics failed"),
    }
    if let Some(extra) = &st.extra_metrics {
        let text = extra();
        out.push_str(&text);
        if !text.is_empty() && !text.ends_with('\n') {
            out.push('\n');
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// The OpenAPI document of every route.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document")))]
pub(crate) async fn openapi_json() -> Response {
    Json(crate::openapi::openapi()).into_response()
}
