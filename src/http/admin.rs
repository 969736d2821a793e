//! The admin listener: health, readiness and metrics. The REST API and the
//! portal mount here too.

use super::AppState;
use crate::error::http::json_error;
use crate::licensing::compliance;
use crate::metrics::{InstanceGauge, PoolGauge};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

/// Alive unless a database thread has ended (then the process is stopping
/// to be restarted: see `app::serve`).
/// The row `/readyz` writes to prove the disk takes writes.
const READY_PROBE: &str = "health.ready_probe";

pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.stopped_thread() {
        None => HttpResponse::Ok().json(serde_json::json!({"status": "ok"})),
        Some(thread) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_thread_ended",
            &format!("the database thread {thread:?} ended; the satellite is restarting"),
        ),
    }
}

/// Ready when a router sent here would be served: the database answers
/// reads and the writer commits a real page to disk (an empty transaction
/// commits on a full disk too, where every router's write would fail).
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    // A load balancer sends routers to the pair's active node only.
    if !state.store.is_active() {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "standby",
            &format!(
                "this node is the standby (for {} s); the active node serves routers, and this \
                 one takes over when it stops",
                state.store.leadership().held_for().as_secs()
            ),
        );
    }
    let read = state.store.ping();
    let now = state.device.clock().unix();
    let write = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state
            .store
            .write(move |c| crate::store::settings::set(c, READY_PROBE, &now.to_string())),
    )
    .await;
    // A page or two still fits in the WAL's allocated space on a full
    // disk; a router's registration does not.
    let free = (state.store.location().embedded_file()).and_then(crate::store::free_bytes);
    if let Some(free) = free.filter(|free| *free < crate::store::MIN_FREE_BYTES) {
        tracing::warn!(free, "not ready: the disk holding the database is full");
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "disk_full",
            &format!("{free} bytes free where the database is; free space on that file system"),
        );
    }
    match (read, write) {
        (Ok(()), Ok(Ok(()))) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        (read, write) => {
            tracing::warn!(
                ?read,
                write_ok = matches!(write, Ok(Ok(()))),
                "not ready: the database does not answer"
            );
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the database does not answer",
            )
        }
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let now = state.device.clock().unix();
    let pools = state
        .store
        .read(|c| compliance::all_accounts(c, &state.catalog.get(), now))
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "metrics: could not read the pools");
            Vec::new()
        });
    let gauges: Vec<PoolGauge> = pools
        .into_iter()
        .map(|r| PoolGauge {
            virtual_account: r.virtual_account,
            tag: r.tag,
            in_use: r.in_use,
            available: r.available,
            shortfall: r.shortfall,
        })
        .collect();
    let instances = state
        .store
        .read(|c| crate::inventory::instance_statuses(c, now))
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "metrics: could not read the product instances");
            Vec::new()
        });
    let instances: Vec<InstanceGauge> = instances
        .into_iter()
        .map(|(virtual_account, status, count)| InstanceGauge {
            virtual_account,
            status,
            count,
        })
        .collect();
    let mut body = state.metrics.render(&state.store, &gauges, &instances);
    match state
        .store
        .read(|c| crate::sync::live::metrics_text(c, now))
    {
        Ok(text) => body.push_str(&text),
        Err(e) => tracing::warn!(error = %e, "metrics: could not read the sync state"),
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}
