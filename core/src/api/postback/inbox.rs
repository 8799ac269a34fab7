//! Postbacks held while the store cannot take them. A postback that meets an unreachable,
//! locked or full database (or one slower than [`STORE_WAIT`]) is appended to a journal of its
//! own (`data/journal/postbacks/`, the click journal's format and durability) and answered
//! 200 `{"status": "pending"}`, like a parked one; [`drain`] applies the held postbacks in the
//! order they came, with the time they came, as soon as the store answers again. While any
//! are held, new postbacks go behind them, so a lead and its sale keep their order. Applying
//! is idempotent (a conversion is keyed by sub id and tid), so a postback applied just before
//! a crash and applied again at the next start is counted once (and logged `duplicate`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Answer, answer, desk};
use crate::api::AppState;
use crate::conversions::Arrival;
use crate::conversions::parse_postback;
use crate::journal::{Journal, JournalReader};
use crate::store::StoreError;

/// The longest a postback waits for the store before it is held instead.
pub(super) const STORE_WAIT: Duration = Duration::from_secs(3);

/// `attempt`, given at most [`STORE_WAIT`]; past it, the store counts as unavailable (the
/// attempt is dropped: its transaction, if any, rolls back).
pub(super) async fn within_store_wait<T>(
    attempt: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(STORE_WAIT, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Connect(format!(
                "no answer within {} ms",
                STORE_WAIT.as_millis()
            )))
        })
}

/// One held postback: its parameters and when it came.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Held {
    received_at: i64,
    params: BTreeMap<String, String>,
}

/// The appending side, in the app state; cheap to clone.
#[derive(Clone)]
pub struct Inbox {
    journal: Journal,
    /// Postbacks an earlier run held and did not apply.
    recovered: u64,
    /// Postbacks applied (or let go) since start. Held = recovered + appended - drained,
    /// counted where each happens, so no cancelled request can skew it.
    drained: Arc<AtomicU64>,
}

impl Inbox {
    /// The inbox over `journal`, which `reader` (handed to [`drain`]) reads; `recovered`
    /// postbacks of an earlier run wait in it.
    pub fn new(journal: Journal, reader: &JournalReader) -> Inbox {
        Inbox {
            journal,
            recovered: reader.recovered(),
            drained: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many postbacks wait for the store.
    pub fn held(&self) -> u64 {
        let appended = self.journal.stats().appended;
        (self.recovered + appended).saturating_sub(self.drained.load(Ordering::Relaxed))
    }

    /// Holds a postback received at `received_at`; answers as Keitaro answers an accepted
    /// postback (or 400 for one that can never be recorded: it is held anyway, so that it is
    /// logged `invalid` once the store is back). 503 when even the journal cannot take it.
    pub(super) async fn hold(
        &self,
        params: BTreeMap<String, String>,
        received_at: i64,
        why: &str,
    ) -> Answer {
        let parsed = parse_postback(&params);
        let held = Held {
            received_at,
            params,
        };
        if let Err(error) = self.journal.append_value(&held).await {
            tracing::error!(%error, "A postback could be neither recorded nor held; it is refused (503) so that the sender retries.");
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                json!({"error": "the postback cannot be recorded now; retry later"}),
            );
        }
        match parsed {
            Err(error) => answer(
                StatusCode::BAD_REQUEST,
                None,
                json!({"error": error.to_string()}),
            ),
            Ok(postback) => {
                let message = format!("{why}; the postback is recorded when it can be");
                answer(
                    StatusCode::OK,
                    postback.answer.as_deref(),
                    json!({"status": "pending", "message": message}),
                )
            }
        }
    }
}

/// Applies the held postbacks, in order, as the store takes them; until `stop` (what is left
/// stays held for the next start).
pub(crate) async fn drain(
    state: AppState,
    inbox: Inbox,
    mut reader: JournalReader,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let set_aside = crate::recorder::SetAside::in_data_dir(&state.config.server.data_dir);
    loop {
        let records = match reader.read(100) {
            Ok(records) => records,
            Err(error) => {
                tracing::error!(%error, "Reading held postbacks failed; retrying.");
                if sleep_or_stop(&mut stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        if records.is_empty() {
            tokio::select! {
                _ = reader.changed() => continue,
                _ = stop.changed() => return,
            }
        }
        for record in records {
            match postcard::from_bytes::<Held>(&record.payload) {
                Ok(held) => {
                    if !apply(&state, held, &mut stop).await {
                        return;
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "A held postback could not be decoded; it is kept in set-aside/undecodable-postbacks.journal.");
                    if let Err(error) =
                        set_aside.keep_record("undecodable-postbacks.journal", &record.payload)
                    {
                        tracing::error!(%error, "A held postback that could not be decoded could not be set aside either; it is lost.");
                    }
                }
            }
            if let Err(error) = reader.confirm(record.end) {
                tracing::error!(%error, "Confirming a held postback failed; it is applied again (idempotently) at the next start.");
            }
            inbox.drained.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How many times a held postback is tried while the store answers pings before it is
/// logged `invalid` and dropped (an error that outlives a reachable store is not an outage).
const TRIES_WHILE_REACHABLE: u32 = 5;

/// Applies one held postback, waiting for the store as long as it is unavailable; false when
/// `stop` came first.
async fn apply(
    state: &AppState,
    held: Held,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    let mut delay = Duration::from_millis(100);
    let mut tries_while_reachable = 0;
    loop {
        if *stop.borrow() {
            return false;
        }
        let desk = desk(state);
        let attempt = desk.record(&held.params, held.received_at, Arrival::Received);
        let error = match within_store_wait(attempt).await {
            Ok(_) => return true,
            Err(error) => error,
        };
        let reachable = within_store_wait(state.store.ping()).await.is_ok();
        if reachable {
            tries_while_reachable += 1;
        }
        let hopeless = error.is_about_the_data()
            || matches!(error, StoreError::Corrupt(_))
            || tries_while_reachable >= TRIES_WHILE_REACHABLE;
        if hopeless {
            // It would fail for ever: logged `invalid`, like a parked one that cannot be
            // recorded, so it does not hold back the postbacks behind it. Only once that log
            // is written is it let go.
            if super::parked::log_unrecordable(state, &held.params, &error).await {
                return true;
            }
        } else {
            tracing::debug!(%error, "Held postbacks wait for the store.");
        }
        if sleep_or_stop(stop, delay).await {
            return false;
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Sleeps `delay`; true when `stop` came first.
async fn sleep_or_stop(stop: &mut tokio::sync::watch::Receiver<bool>, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_held_postback_reads_back(
            received_at in any::<i64>(),
            params in prop::collection::btree_map(".{0,12}", ".{0,40}", 0..8),
        ) {
            let held = Held { received_at, params };
            let bytes = postcard::to_allocvec(&held).unwrap();
            prop_assert_eq!(postcard::from_bytes::<Held>(&bytes).unwrap(), held);
        }
    }
}
