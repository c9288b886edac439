//! The runtime fault API of a service, served on its own admin listener (127.0.0.1 by
//! default), never on the traffic port: a load test must not be able to switch faults on.
//!
//! - `GET /admin/faults`: the active faults, `[{id, since_unix_nano, source, fault}]`.
//! - `POST /admin/faults` with one fault: switches it on, answers `201 {"id": N}`.
//! - `PUT /admin/faults` with a list of faults: replaces every active fault.
//! - `DELETE /admin/faults`: switches every fault off, answers `{"cleared": N}`.
//! - `DELETE /admin/faults/{id}`: switches one off (`204`, or `404` for an unknown id).
//! - `GET /admin/faults/history`: every window so far, `[{id, start_unix_nano,
//!   end_unix_nano, what, source, service, route, fault}]`.
//!
//! A fault is the JSON form of [`tracelab_scenario::Fault`]. The `tracelab-fault-source`
//! request header names who switches it on (`timeline` for the incident player); `api` when
//! absent.
//!
//! Every instance of a service has an admin API of its own, as every process of a real
//! deployment would: a fault switched on here is on this instance only. A fault that names an
//! instance (`"instance": 2`) is accepted only by that instance's API; one that names none
//! is accepted by any, and the incident player sends it to every instance.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use tracelab_scenario::{Fault, Scenario};

use crate::faults::FaultTable;

/// The request header naming who switches a fault on.
pub const SOURCE_HEADER: &str = "tracelab-fault-source";

/// What the admin API needs: the service, the scenario (to check routes) and its faults.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// The service's name.
    pub service: String,
    /// Which instance of the service this is; `None` for a process started without one.
    pub instance: Option<u32>,
    /// The scenario, to check that a fault's route exists.
    pub scenario: Arc<Scenario>,
    /// The service's faults.
    pub faults: Arc<FaultTable>,
    /// How far its injected waits overran their draws (`GET /admin/timing`).
    pub timing: Arc<tracelab_timer::OverrunRecorder>,
}

/// Why an admin request was refused. Clients get a short message; nothing else.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The body is not the JSON of a fault (or of a list of faults).
    #[error("bad fault JSON: {0}")]
    BadJson(String),
    /// The fault is well-formed but cannot apply here.
    #[error("{0}")]
    Invalid(String),
    /// No active fault has this id.
    #[error("no active fault with id {0}")]
    UnknownId(u64),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match self {
            AdminError::BadJson(_) => StatusCode::BAD_REQUEST,
            AdminError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AdminError::UnknownId(_) => StatusCode::NOT_FOUND,
        };
        let body = serde_json::json!({ "error": self.to_string() });
        (status, axum::Json(body)).into_response()
    }
}

/// The admin router.
pub fn admin_app(state: AdminState) -> Router {
    Router::new()
        .route(
            "/admin/faults",
            get(list).post(add).put(replace).delete(clear),
        )
        .route("/admin/faults/history", get(history))
        .route("/admin/timing", get(timing))
        .route("/admin/faults/{id}", delete(remove))
        .with_state(state)
}

/// The service's injected-latency error so far, in microseconds: how far its waits overran
/// what the scenario drew (`count`, `p50_us`, `p99_us`, `max_us`, `mean_us`).
async fn timing(State(state): State<AdminState>) -> Response {
    let o = state.timing.summary();
    axum::Json(serde_json::json!({
        "service": state.service,
        "count": o.count,
        "p50_us": o.p50_us,
        "p99_us": o.p99_us,
        "max_us": o.max_us,
        "mean_us": o.mean_us,
    }))
    .into_response()
}

async fn list(State(state): State<AdminState>) -> Response {
    axum::Json(state.faults.list()).into_response()
}

async fn history(State(state): State<AdminState>) -> Response {
    axum::Json(state.faults.history()).into_response()
}

async fn add(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let fault: Fault =
        serde_json::from_slice(&body).map_err(|e| AdminError::BadJson(e.to_string()))?;
    state.check(&fault)?;
    let id = state.faults.add(fault, &source(&headers));
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "id": id })),
    )
        .into_response())
}

async fn replace(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let faults: Vec<Fault> =
        serde_json::from_slice(&body).map_err(|e| AdminError::BadJson(e.to_string()))?;
    // Every fault is checked before any is switched on, so a bad list changes nothing.
    for fault in &faults {
        state.check(fault)?;
    }
    state.faults.clear();
    let source = source(&headers);
    for fault in faults {
        state.faults.add(fault, &source);
    }
    Ok(axum::Json(state.faults.list()).into_response())
}

async fn clear(State(state): State<AdminState>) -> Response {
    let cleared = state.faults.clear();
    axum::Json(serde_json::json!({ "cleared": cleared })).into_response()
}

async fn remove(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let id: u64 = id
        .parse()
        .map_err(|_| AdminError::Invalid(format!("fault id must be a number, found `{id}`")))?;
    if state.faults.remove(id) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(AdminError::UnknownId(id))
    }
}

impl AdminState {
    fn check(&self, fault: &Fault) -> Result<(), AdminError> {
        if fault.service != self.service {
            return Err(AdminError::Invalid(format!(
                "this is service `{}`; the fault is for `{}`",
                self.service, fault.service
            )));
        }
        if let Some(wanted) = fault.instance {
            let replicas = self
                .scenario
                .services
                .get(&self.service)
                .map_or(1, |s| s.replicas.max(1));
            if wanted >= replicas {
                return Err(AdminError::Invalid(format!(
                    "service `{}` has no instance {wanted}: it has {replicas} (0 to {})",
                    self.service,
                    replicas - 1
                )));
            }
            match self.instance {
                Some(own) if own == wanted => {}
                Some(own) => {
                    return Err(AdminError::Invalid(format!(
                        "this is instance {own} of `{}`; the fault is for instance {wanted}: \
                         send it to that instance's admin API (services.json lists them)",
                        self.service
                    )));
                }
                None => {
                    return Err(AdminError::Invalid(format!(
                        "this process runs `{}` without an instance index (`--instance`); the \
                         fault is for instance {wanted}",
                        self.service
                    )));
                }
            }
        }
        if let Some((field, message)) = fault.problems().into_iter().next() {
            return Err(AdminError::Invalid(format!("{field}: {message}")));
        }
        if let Some(route) = &fault.route
            && self.scenario.route(&self.service, route).is_none()
        {
            return Err(AdminError::Invalid(format!(
                "service `{}` has no route {route}",
                self.service
            )));
        }
        Ok(())
    }
}

fn source(headers: &HeaderMap) -> String {
    headers
        .get(SOURCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .unwrap_or("api")
        .to_owned()
}
