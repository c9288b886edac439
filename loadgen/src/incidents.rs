//! The incident player: switches a scenario's incidents on and off through each service's
//! admin API at the right moments of the run, and records every window as ground truth.
//!
//! Every incident is its own task that sleeps until its start, so overlapping incidents need
//! no bookkeeping; the player goes through the same admin API as a person with `curl`, so what
//! a timeline does can always be done by hand.

use std::collections::HashMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracelab_scenario::{Fault, Incident};

/// The request header that marks the player's faults in a service's fault history.
pub const SOURCE_HEADER: &str = "tracelab-fault-source";

/// One incident window of a run, as a line of the run directory's `incidents.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentWindow {
    /// When the fault was switched on, in nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// When it was switched off (or the run ended with it still on).
    pub end_unix_nano: u64,
    /// What happened, in a few words.
    pub what: String,
    /// The service the fault was on.
    pub service: String,
    /// The instance (index) the fault was on; every instance of the service when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<u32>,
    /// The route, when the fault was on one route.
    pub route: Option<String>,
    /// Who switched it on: `timeline` (the scenario) or `api` (by hand).
    pub source: String,
    /// The fault.
    pub fault: Fault,
}

/// Plays `timeline` from `start`: each incident's fault is POSTed to the admin API of every
/// instance it is on (`admin` maps a service name to the admin base URL of each of its
/// instances, `http://127.0.0.1:PORT`, in instance order) at `start + at` and DELETEd at
/// `start + at + duration`. A fault naming an instance goes to that instance's API alone;
/// one naming none, to every instance's. Cancelling `stop` switches every active incident
/// off at once and skips the ones not started yet. Returns the windows that were applied, by
/// start time; an incident every admin API refused is logged and left out.
pub async fn play(
    timeline: Vec<Incident>,
    admin: HashMap<String, Vec<String>>,
    start: Instant,
    stop: CancellationToken,
) -> Vec<IncidentWindow> {
    let client = reqwest::Client::new();
    let tasks = timeline.into_iter().map(|incident| {
        let bases = admin_bases(&admin, &incident);
        let client = client.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            if bases.is_empty() {
                tracing::warn!(service = %incident.fault.service, instance = ?incident.fault.instance, "no admin API for the incident's service");
                return None;
            }
            one(&client, &bases, incident, start, stop).await
        })
    });
    let mut windows: Vec<IncidentWindow> = futures_join(tasks).await;
    windows.sort_by_key(|w| w.start_unix_nano);
    windows
}

async fn futures_join(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<Option<IncidentWindow>>>,
) -> Vec<IncidentWindow> {
    let mut out = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        if let Ok(Some(window)) = task.await {
            out.push(window);
        }
    }
    out
}

/// The admin APIs an incident's fault goes to: every instance's, or the one it names.
fn admin_bases(admin: &HashMap<String, Vec<String>>, incident: &Incident) -> Vec<String> {
    let all = admin
        .get(&incident.fault.service)
        .map_or(&[][..], Vec::as_slice);
    match incident.fault.instance {
        None => all.to_vec(),
        Some(index) => all
            .get(usize::try_from(index).unwrap_or(usize::MAX))
            .cloned()
            .into_iter()
            .collect(),
    }
}

async fn one(
    client: &reqwest::Client,
    bases: &[String],
    incident: Incident,
    start: Instant,
    stop: CancellationToken,
) -> Option<IncidentWindow> {
    tokio::select! {
        _ = tokio::time::sleep_until(start + incident.at) => {}
        _ = stop.cancelled() => return None,
    }
    let body = serde_json::to_vec(&incident.fault).ok()?;
    // Every instance at once, so that a whole-service incident starts everywhere together.
    let switched_on = futures::future::join_all(
        bases
            .iter()
            .map(|base| switch_on(client, base, body.clone(), &incident)),
    )
    .await;
    let started = unix_nanos();
    let on: Vec<(&String, u64)> = bases
        .iter()
        .zip(switched_on)
        .filter_map(|(base, id)| Some((base, id?)))
        .collect();
    if on.is_empty() {
        return None;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(start + incident.at + incident.duration) => {}
        _ = stop.cancelled() => {}
    }
    for (base, id) in on {
        if let Err(error) = client
            .delete(format!("{base}/admin/faults/{id}"))
            .send()
            .await
        {
            tracing::warn!(%error, what = %incident.description(), "incident not switched off");
        }
    }
    Some(IncidentWindow {
        start_unix_nano: started,
        end_unix_nano: unix_nanos(),
        what: incident.description(),
        service: incident.fault.service.clone(),
        instance: incident.fault.instance,
        route: incident.fault.route.clone(),
        source: "timeline".to_owned(),
        fault: incident.fault,
    })
}

/// POSTs the fault to one admin API; its id there, or `None` (logged) when refused.
async fn switch_on(
    client: &reqwest::Client,
    base: &str,
    body: Vec<u8>,
    incident: &Incident,
) -> Option<u64> {
    let response = client
        .post(format!("{base}/admin/faults"))
        .header(SOURCE_HEADER, "timeline")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    match response {
        Ok(response) if response.status().is_success() => {
            let bytes = response.bytes().await.ok()?;
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()?
                .get("id")?
                .as_u64()
        }
        Ok(response) => {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            tracing::warn!(%status, %text, %base, what = %incident.description(), "incident refused");
            None
        }
        Err(error) => {
            tracing::warn!(%error, %base, what = %incident.description(), "incident not applied");
            None
        }
    }
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
