//! Conversions out: S2S postbacks per campaign (GET or POST, per status) and per traffic
//! source, expanded with the conversion's macros and sent off the request path — a bounded
//! queue, a worker with a few requests in flight, retries with exponential backoff — through
//! the SSRF-guarded fetcher. Every postback's fate is logged (`logs/sent_postbacks`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};

use crate::fetch::Fetcher;
use crate::model::unix_now;
use crate::store::{SentPostback, Store};

/// How many postbacks may wait to be sent; beyond it a postback is logged as dropped.
const QUEUE_CAPACITY: usize = 4_096;
/// How many are sent at once.
const IN_FLIGHT: usize = 16;

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

/// Queues postbacks for the sending worker.
#[derive(Clone)]
pub struct PostbackSender {
    tx: mpsc::Sender<OutgoingPostback>,
    store: Arc<dyn Store>,
}

impl PostbackSender {
    /// Starts the worker: `attempts` tries per postback, waiting `retry_base`, then twice as
    /// long each time.
    pub fn start(
        store: Arc<dyn Store>,
        fetcher: Fetcher,
        retry_base: Duration,
        attempts: u32,
    ) -> PostbackSender {
        let (tx, mut rx) = mpsc::channel::<OutgoingPostback>(QUEUE_CAPACITY);
        let worker_store = store.clone();
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(IN_FLIGHT));
            while let Some(postback) = rx.recv().await {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let store = worker_store.clone();
                let fetcher = fetcher.clone();
                tokio::spawn(async move {
                    let entry = deliver(&fetcher, &postback, retry_base, attempts.max(1)).await;
                    if let Err(error) = store.log_sent_postback(&entry).await {
                        tracing::error!(error = %error, url = %entry.url, "Could not log a sent postback.");
                    }
                    drop(permit);
                });
            }
        });
        PostbackSender { tx, store }
    }

    /// Queues a postback; a full queue logs it as dropped instead.
    pub async fn send(&self, postback: OutgoingPostback) {
        if let Err(
            mpsc::error::TrySendError::Full(postback) | mpsc::error::TrySendError::Closed(postback),
        ) = self.tx.try_send(postback)
        {
            tracing::warn!(url = %postback.url, "The postback queue is full; the postback is dropped.");
            let entry = SentPostback {
                id: 0,
                conversion_id: Some(postback.conversion_id),
                origin: postback.origin.to_string(),
                method: postback.method.clone(),
                url: postback.url.clone(),
                body: String::new(),
                http_status: None,
                attempts: 0,
                error: "dropped: the queue is full".into(),
                created_at: unix_now(),
            };
            if let Err(error) = self.store.log_sent_postback(&entry).await {
                tracing::error!(error = %error, "Could not log a dropped postback.");
            }
        }
    }
}

/// Sends one postback with retries; returns its log entry.
async fn deliver(
    fetcher: &Fetcher,
    postback: &OutgoingPostback,
    retry_base: Duration,
    attempts: u32,
) -> SentPostback {
    let mut entry = SentPostback {
        id: 0,
        conversion_id: Some(postback.conversion_id),
        origin: postback.origin.to_string(),
        method: postback.method.clone(),
        url: postback.url.clone(),
        body: if postback.method == "POST" {
            postback.body.to_string()
        } else {
            String::new()
        },
        http_status: None,
        attempts: 0,
        error: String::new(),
        created_at: unix_now(),
    };
    let mut wait = retry_base;
    for attempt in 1..=attempts {
        entry.attempts = i64::from(attempt);
        let result = if postback.method == "POST" {
            fetcher.post_json(&postback.url, &postback.body).await
        } else {
            fetcher.get(&postback.url).await.map(|f| f.status)
        };
        match result {
            Ok(status) => {
                entry.http_status = Some(i64::from(status));
                if (200..300).contains(&status) {
                    entry.error.clear();
                    return entry;
                }
                entry.error = format!("answered {status}");
            }
            Err(error) => {
                entry.error = error.to_string();
                if matches!(error, crate::fetch::FetchError::Blocked { .. }) {
                    // A refused address stays refused: no retries.
                    return entry;
                }
            }
        }
        if attempt < attempts {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
    }
    entry
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
