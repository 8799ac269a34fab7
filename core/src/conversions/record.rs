//! Recording a postback: the decision the HTTP endpoint, parked postbacks and held postbacks
//! all run, with no HTTP in it. A postback is logged (`logs/postbacks`) whatever it leads to:
//! refused for a bad parameter, parked while its click is not stored, ignored by a rule, or
//! recorded as a conversion (new, moved to another status, a duplicate, an ignored change),
//! together with the outgoing postbacks it fires, in one store transaction. The offer's daily
//! cap count follows the conversion.

use std::collections::BTreeMap;

use super::outgoing;
use super::{convert, parse_postback};
use crate::config::PostbackConfig;
use crate::outbound::PostbackSender;
use crate::reload::SnapshotCell;
use crate::store::{
    ConversionOutcome, ConversionStatus, ConversionStore, NewConversion, PendingPostback,
    ReceivedPostback, StoreError,
};
use crate::visit::ConversionCaps;

/// What recording a postback needs.
pub struct ConversionDesk<'a> {
    pub store: &'a dyn ConversionStore,
    pub config: &'a PostbackConfig,
    /// The offers (for their daily caps).
    pub snapshot: &'a SnapshotCell,
    /// The offers' conversions today.
    pub caps: &'a ConversionCaps,
    /// Woken when outgoing postbacks were queued.
    pub postbacks: &'a PostbackSender,
}

/// How a postback reached [`ConversionDesk::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Just now (over HTTP, or held while the store was unavailable).
    Received,
    /// Parked earlier, its click now stored.
    Parked,
}

/// What a postback led to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A parameter is wrong, or its currency has no rate: nothing recorded (logged `invalid`).
    Invalid(String),
    /// Its click is not stored yet: parked (logged `pending`).
    Pending(String),
    /// A rule leaves it out (logged `ignored`), with the reason when there is one to show.
    Ignored(Option<String>),
    /// The conversion as recorded, and the status the postback asked for.
    Recorded {
        outcome: ConversionOutcome,
        status: ConversionStatus,
    },
    /// A parked postback whose click went away after it was stored: it stays parked.
    ClickGone,
}

/// A [`Decision`] and the text the postback asked to be answered with (`return`).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub decision: Decision,
    pub answer_text: Option<String>,
}

impl Verdict {
    fn new(decision: Decision, answer_text: Option<&str>) -> Verdict {
        Verdict {
            decision,
            answer_text: answer_text.map(str::to_string),
        }
    }
}

impl ConversionDesk<'_> {
    /// Records a postback received at `now`: logs it, records its conversion (idempotently)
    /// with the outgoing postbacks it fires, or parks it while its click is not stored. An
    /// error is the store's: nothing was recorded, and the postback may be tried again.
    pub async fn record(
        &self,
        params: &BTreeMap<String, String>,
        now: i64,
        arrival: Arrival,
    ) -> Result<Verdict, StoreError> {
        let params_json = serde_json::to_string(params).unwrap_or_default();
        let log = |outcome: &str, message: String, sub_id: &str| {
            ReceivedPostback::unrecorded(sub_id, params, &params_json, outcome, message, now)
        };
        let sub_id_param = params
            .get("subid")
            .or(params.get("sub_id"))
            .cloned()
            .unwrap_or_default();

        let postback = match parse_postback(params) {
            Ok(postback) => postback,
            Err(error) => {
                let entry = log("invalid", error.to_string(), &sub_id_param);
                if let Err(e) = self.store.log_received_postback(&entry).await {
                    tracing::error!(error = %e, "Could not log a postback.");
                }
                return Ok(Verdict::new(Decision::Invalid(error.to_string()), None));
            }
        };
        let text = postback.answer.as_deref();
        // Earlier postbacks of this click still parked: this one goes behind them, so that
        // they apply in the order they came.
        let behind = arrival == Arrival::Received
            && self.store.parked_postbacks_for(&postback.sub_id).await? > 0;
        let click = if behind {
            None
        } else {
            self.store.postback_click(&postback.sub_id).await?
        };
        let Some(click) = click else {
            if arrival == Arrival::Parked {
                return Ok(Verdict::new(Decision::ClickGone, None));
            }
            let message = if behind {
                format!(
                    "earlier postbacks for the sub id `{}` are waiting; this one is recorded after them",
                    postback.sub_id
                )
            } else {
                let hours = self.config.pending_retention.as_secs() / 3_600;
                tracing::info!(sub_id = %postback.sub_id, "A postback names a sub id not stored yet; it waits for its click.");
                format!(
                    "no click has the sub id `{}` yet; the conversion is recorded when it arrives (within {hours} h)",
                    postback.sub_id
                )
            };
            let entry = log("pending", message.clone(), &postback.sub_id);
            let pending = PendingPostback {
                id: 0,
                sub_id: postback.sub_id.clone(),
                params: params_json.clone(),
                received_at: now,
            };
            self.store.park_postback(&pending, &entry).await?;
            return Ok(Verdict::new(Decision::Pending(message), text));
        };
        let Some(status) = postback.status else {
            let message = format!(
                "status `{}` is ignored (ignore_status)",
                postback.original_status
            );
            let entry = log("ignored", message, &postback.sub_id);
            self.store.log_received_postback(&entry).await?;
            return Ok(Verdict::new(Decision::Ignored(None), text));
        };
        if status == ConversionStatus::Rebill && (!click.upsell || postback.tid.is_empty()) {
            let message = if postback.tid.is_empty() {
                "a rebill needs its own tid".to_string()
            } else {
                "the click's offer does not allow upsells, so it takes no rebills".to_string()
            };
            let entry = log("ignored", message.clone(), &postback.sub_id);
            self.store.log_received_postback(&entry).await?;
            return Ok(Verdict::new(Decision::Ignored(Some(message)), text));
        }
        let config = self.config;
        let converted = |amount, currency: &str| convert(amount, currency, config);
        let (revenue, cost) = match (
            postback.payout.map(|p| converted(p, &postback.currency)),
            converted(postback.cost, &postback.currency),
        ) {
            (Some(None), _) | (_, None) => {
                let message = format!(
                    "currency: no rate from {} to {} (set [postback] rates)",
                    postback.currency, config.currency
                );
                let entry = log("invalid", message.clone(), &postback.sub_id);
                self.store.log_received_postback(&entry).await?;
                return Ok(Verdict::new(Decision::Invalid(message), None));
            }
            (revenue, Some(cost)) => (revenue.flatten(), cost),
        };
        let default_revenue =
            converted(click.payout, &click.payout_currency).unwrap_or(click.payout);
        let key = if click.upsell || status == ConversionStatus::Rebill {
            postback.tid.clone()
        } else {
            String::new()
        };
        let new = NewConversion {
            tid: key,
            status,
            original_status: postback.original_status.clone(),
            revenue,
            default_revenue,
            cost,
            currency: if postback.currency.is_empty() {
                config.currency.clone()
            } else {
                postback.currency.clone()
            },
            sub_id_updates: postback.sub_id_updates.clone(),
            params: params_json.clone(),
            at: now,
            click,
        };
        let targets = self
            .store
            .postback_targets(new.click.campaign_id, new.click.ts_id)
            .await?;
        let outgoing = outgoing::plan(&targets, &new, &config.currency);
        let outcome = self.store.record_conversion(&new, &outgoing).await?;
        self.count_for_cap(&new, outcome);
        if matches!(
            outcome,
            ConversionOutcome::Accepted { .. } | ConversionOutcome::Transition { .. }
        ) {
            self.postbacks.wake();
        }
        Ok(Verdict::new(Decision::Recorded { outcome, status }, text))
    }

    /// Keeps the in-memory daily count of the click's offer (for its cap) in step: a new
    /// conversion that is not rejected counts, a counted one that becomes rejected stops
    /// counting.
    fn count_for_cap(&self, new: &NewConversion, outcome: ConversionOutcome) {
        let Some(offer) = new.click.offer_id else {
            return;
        };
        let Some(cap) = self.snapshot.load().offer(offer).and_then(|o| o.cap) else {
            return;
        };
        let delta = match outcome {
            ConversionOutcome::Accepted { .. } if new.status != ConversionStatus::Rejected => 1,
            ConversionOutcome::Transition { .. } if new.status == ConversionStatus::Rejected => -1,
            _ => 0,
        };
        if delta != 0 {
            self.caps.add(offer, cap.timezone, new.at, delta);
        }
    }
}
