//! Conversions out: S2S postbacks per campaign (GET or POST, per status) and per traffic
//! source, expanded with the conversion's macros and sent off the request path through the
//! SSRF-guarded fetcher. Every postback is first queued in the database, in the transaction
//! that records its conversion (`outgoing_postbacks`, keyed by a digest of its conversion,
//! target and content, so queueing the same delivery twice sends it once), then sent by a worker with a few requests in
//! flight, retried with exponential backoff, and removed when it succeeded or ran out of tries,
//! in one transaction with its entry in `logs/sent_postbacks`. A restart resumes the queue;
//! a worker claims a postback for ten minutes before sending it, so several nodes never send
//! one at once (a node that dies mid-send leaves it to be sent again after the claim: delivery
//! is at least once). Shutdown waits a bounded time for the postbacks being sent.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::Digest;
use tokio::sync::{Notify, Semaphore, watch};

use crate::fetch::Fetcher;
use crate::store::{OutgoingQueue, QueuedPostback, SentPostback};

/// How many are sent at once.
const IN_FLIGHT: usize = 16;
/// How long a worker holds a postback it is sending before another may take it: longer than
/// any one try (the fetcher's timeout for each of its redirect hops).
const CLAIM_MS: i64 = 10 * 60_000;
/// The longest the worker sleeps between looks at the queue.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// One postback to send.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingPostback {
    pub conversion_id: i64,
    /// `campaign` or `traffic_source`.
    pub origin: &'static str,
    /// `GET` or `POST` (the macros as a JSON body).
    pub method: String,
    /// The URL with the macros expanded.
    pub url: String,
    pub body: Value,
}

impl OutgoingPostback {
    /// The delivery's identity: the same conversion, target and content is one delivery.
    fn delivery_key(&self) -> String {
        let mut digest = sha2::Sha256::new();
        let conversion = self.conversion_id.to_string();
        let body = self.body.to_string();
        let parts: [&str; 5] = [&conversion, self.origin, &self.method, &self.url, &body];
        for part in parts {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl OutgoingPostback {
    /// The row that queues this postback, due at once (queueing the same delivery twice
    /// sends it once).
    pub fn queued(&self, created_at: i64) -> QueuedPostback {
        QueuedPostback {
            id: 0,
            delivery_key: self.delivery_key(),
            conversion_id: self.conversion_id,
            origin: self.origin.to_string(),
            method: self.method.clone(),
            url: self.url.clone(),
            body: if self.method == "POST" {
                self.body.to_string()
            } else {
                String::new()
            },
            attempts: 0,
            next_at: now_ms(),
            created_at,
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The conversion's values that postback URLs may use as `{name}`.
pub type Macros = Vec<(&'static str, String)>;

/// Replaces `{name}` by the URL-encoded value of each macro; unknown names stay as written.
pub fn expand(template: &str, macros: &Macros) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match macros.iter().find(|(n, _)| *n == name) {
                    Some((_, value)) => {
                        out.extend(url::form_urlencoded::byte_serialize(value.as_bytes()))
                    }
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether a postback configured for `statuses` fires for `status` (none listed: all).
pub fn fires(statuses: &[String], status: &str) -> bool {
    statuses.is_empty() || statuses.iter().any(|s| s.eq_ignore_ascii_case(status))
}

/// The handle on the sending worker.
#[derive(Clone)]
pub struct PostbackSender {
    wake: Arc<Notify>,
    slots: Arc<Semaphore>,
    stop: Arc<watch::Sender<bool>>,
}

impl PostbackSender {
    /// Starts the worker: `attempts` tries per postback, waiting `retry_base`, then twice as
    /// long each time. Postbacks queued before a restart are sent too.
    pub fn start(
        store: Arc<dyn OutgoingQueue>,
        fetcher: Fetcher,
        retry_base: Duration,
        attempts: u32,
    ) -> PostbackSender {
        let wake = Arc::new(Notify::new());
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        let (stop, stopped) = watch::channel(false);
        let worker = Worker {
            store,
            fetcher,
            retry_base,
            attempts: i64::from(attempts.max(1)),
            slots: slots.clone(),
            sending: std::sync::Mutex::new(std::collections::HashSet::new()),
        };
        tokio::spawn(worker.run(wake.clone(), stopped));
        PostbackSender {
            wake,
            slots,
            stop: Arc::new(stop),
        }
    }

    /// Wakes the worker: postbacks were queued (see [`OutgoingPostback::queued`]).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops taking postbacks and waits, at most `bound`, for the ones being sent to finish,
    /// so that a postback delivered just before shutdown is not left claimed and sent again
    /// after the next start. Returns how many were still being sent at the bound.
    pub async fn shutdown(&self, bound: Duration) -> usize {
        self.stop.send_replace(true);
        let all = IN_FLIGHT as u32;
        match tokio::time::timeout(bound, self.slots.acquire_many(all)).await {
            Ok(Ok(permits)) => {
                // Kept: nothing is sent after shutdown.
                permits.forget();
                0
            }
            _ => IN_FLIGHT - self.slots.available_permits(),
        }
    }
}

/// The sending side.
struct Worker {
    store: Arc<dyn OutgoingQueue>,
    fetcher: Fetcher,
    retry_base: Duration,
    attempts: i64,
    slots: Arc<Semaphore>,
    /// Postbacks this process is sending now (never taken twice, even past a claim).
    sending: std::sync::Mutex<std::collections::HashSet<i64>>,
}

impl Worker {
    async fn run(self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        let this = Arc::new(self);
        while !*stop.borrow() {
            let now = now_ms();
            let due = match this
                .store
                .due_outgoing_postbacks(now, IN_FLIGHT as i64 * 4)
                .await
            {
                Ok(due) => due,
                Err(error) => {
                    tracing::debug!(%error, "The postback queue cannot be read now.");
                    Vec::new()
                }
            };
            for postback in due {
                let Ok(permit) = this.slots.clone().acquire_owned().await else {
                    return;
                };
                if *stop.borrow() {
                    return;
                }
                if !this.sending().insert(postback.id) {
                    continue;
                }
                let claimed = this
                    .store
                    .claim_outgoing_postback(postback.id, postback.next_at, now_ms() + CLAIM_MS)
                    .await;
                if !matches!(claimed, Ok(true)) {
                    this.sending().remove(&postback.id);
                    continue;
                }
                let worker = this.clone();
                let wake = wake.clone();
                tokio::spawn(async move {
                    let id = postback.id;
                    worker.deliver(postback).await;
                    worker.sending().remove(&id);
                    drop(permit);
                    wake.notify_one();
                });
            }
            let sleep = match this.store.next_outgoing_postback_at().await {
                Ok(Some(next)) => Duration::from_millis(
                    (next - now_ms()).clamp(5, IDLE_POLL.as_millis() as i64) as u64,
                ),
                _ => IDLE_POLL,
            };
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                _ = stop.changed() => {}
            }
        }
    }

    fn sending(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<i64>> {
        self.sending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One try; then the postback is finished (sent, refused, out of tries) or put back with
    /// its next try's time.
    async fn deliver(&self, mut postback: QueuedPostback) {
        postback.attempts += 1;
        let result = if postback.method == "POST" {
            let body: Value = serde_json::from_str(&postback.body).unwrap_or(Value::Null);
            self.fetcher.post_json(&postback.url, &body).await
        } else {
            self.fetcher.get(&postback.url).await.map(|f| f.status)
        };
        let (http_status, error, last) = match result {
            Ok(status) if (200..300).contains(&status) => (Some(status), String::new(), true),
            Ok(status) => (Some(status), format!("answered {status}"), false),
            // A refused address stays refused: no retries.
            Err(error @ crate::fetch::FetchError::Blocked { .. }) => {
                (None, error.to_string(), true)
            }
            Err(error) => (None, error.to_string(), false),
        };
        let outcome = if last || postback.attempts >= self.attempts {
            let entry = SentPostback {
                id: 0,
                conversion_id: Some(postback.conversion_id),
                origin: postback.origin.clone(),
                method: postback.method.clone(),
                url: postback.url.clone(),
                body: postback.body.clone(),
                http_status: http_status.map(i64::from),
                attempts: postback.attempts,
                error,
                created_at: postback.created_at,
            };
            self.store
                .finish_outgoing_postback(postback.id, &entry)
                .await
        } else {
            let wait = self
                .retry_base
                .saturating_mul(1 << (postback.attempts - 1).min(20));
            self.store
                .retry_outgoing_postback(
                    postback.id,
                    postback.attempts,
                    now_ms() + wait.as_millis() as i64,
                )
                .await
        };
        if let Err(error) = outcome {
            tracing::error!(%error, url = %postback.url, "A postback's progress could not be saved; it is tried again after its claim.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_and_encodes_macros() {
        let macros: Macros = vec![("subid", "a b&c".into()), ("payout", "1.5".into())];
        assert_eq!(
            expand(
                "http://n.test/pb?s={subid}&p={payout}&x={unknown}&{",
                &macros
            ),
            "http://n.test/pb?s=a+b%26c&p=1.5&x={unknown}&{"
        );
    }

    #[test]
    fn statuses_select_postbacks() {
        assert!(fires(&[], "sale"));
        assert!(fires(&["lead".into(), "SALE".into()], "sale"));
        assert!(!fires(&["lead".into()], "rejected"));
    }
}
