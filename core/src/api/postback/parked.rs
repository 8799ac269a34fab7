//! Parked postbacks: a postback whose sub id is not stored yet waits in `pending_postbacks`
//! (logged `pending`) and is applied, with the time it came, once its click is stored, or
//! logged `expired` after `postback.pending_hours`.

use std::collections::BTreeMap;

use super::desk;
use crate::api::AppState;
use crate::conversions::{Arrival, Decision};
use crate::model::unix_now;
use crate::store::{ReceivedPostback, StoreError};

/// How often parked postbacks are checked for their click.
const PARKED_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// How often parked postbacks past their retention are expired.
const EXPIRY_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Applies parked postbacks once their click is stored (in the order they came, with the
/// time they came), and logs the ones whose click never came within `postback.pending_hours`
/// as `expired`; until `stop`. Applying is idempotent like any postback, so two nodes doing it
/// at once count the conversion once.
pub(crate) async fn apply_parked(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut last_expiry: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PARKED_POLL) => {}
            _ = stop.changed() => return,
        }
        let ready = match state.store.ready_postbacks(100).await {
            Ok(ready) => ready,
            Err(error) => {
                tracing::debug!(%error, "Parked postbacks cannot be read now.");
                continue;
            }
        };
        for pending in ready {
            let params = serde_json::from_str(&pending.params).unwrap_or_default();
            let applied = desk(&state)
                .record(&params, pending.received_at, Arrival::Parked)
                .await;
            match applied {
                Ok(verdict) if verdict.decision == Decision::ClickGone => {}
                Ok(_) => {
                    if let Err(error) = state.store.unpark_postback(pending.id).await {
                        tracing::warn!(%error, "An applied postback stays parked; applying it again changes nothing.");
                    }
                }
                Err(error)
                    if error.is_about_the_data() || matches!(error, StoreError::Corrupt(_)) =>
                {
                    // It would fail for ever: logged as invalid and dropped, so it does not
                    // hold back the parked postbacks behind it.
                    if log_unrecordable(&state, &params, &error).await {
                        let _ = state.store.unpark_postback(pending.id).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "A parked postback could not be applied yet.");
                    break;
                }
            }
        }
        if last_expiry.is_none_or(|at| at.elapsed() >= EXPIRY_EVERY) {
            last_expiry = Some(tokio::time::Instant::now());
            expire_parked(&state).await;
        }
    }
}

/// Logs and removes the parked postbacks past their retention.
async fn expire_parked(state: &AppState) {
    let retention = state.config.postback.pending_retention;
    let before = unix_now() - retention.as_secs() as i64;
    let Ok(stale) = state.store.stale_postbacks(before, 1_000).await else {
        return;
    };
    for pending in stale {
        if !matches!(state.store.unpark_postback(pending.id).await, Ok(true)) {
            continue;
        }
        let params: BTreeMap<String, String> =
            serde_json::from_str(&pending.params).unwrap_or_default();
        let message = format!(
            "no click with the sub id `{}` arrived within {} h",
            pending.sub_id,
            retention.as_secs() / 3_600
        );
        let entry = ReceivedPostback::unrecorded(
            &pending.sub_id,
            &params,
            &pending.params,
            "expired",
            message,
            unix_now(),
        );
        if let Err(error) = state.store.log_received_postback(&entry).await {
            tracing::error!(%error, "Could not log an expired postback.");
        }
        tracing::warn!(sub_id = %pending.sub_id, "A parked postback expired: its click never arrived.");
    }
}

/// Logs a postback the store refuses for its data (it would fail for ever) as `invalid`;
/// false when even the log cannot be written.
pub(super) async fn log_unrecordable(
    state: &AppState,
    params: &BTreeMap<String, String>,
    error: &StoreError,
) -> bool {
    let sub_id = params
        .get("subid")
        .or(params.get("sub_id"))
        .map_or("", |s| s);
    tracing::error!(%error, sub_id, "A postback cannot be recorded; it is logged as invalid.");
    let params_json = serde_json::to_string(params).unwrap_or_default();
    let entry = ReceivedPostback::unrecorded(
        sub_id,
        params,
        &params_json,
        "invalid",
        error.to_string(),
        unix_now(),
    );
    state.store.log_received_postback(&entry).await.is_ok()
}
