//! Offers and landing pages: where streams send visitors.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::input::Invalid;
use super::ops::Api;
use super::resource::{ApiError, Draft, Field, Kind, Op, Resource, ResourceRules, lifecycle};
use crate::api::AppState;
use crate::store::objects::{RowFilter, SqlValue};
use crate::store::tables;

const TARGET_TYPES: &[&str] = &["local", "external", "preloaded", "action"];

pub static OFFERS: Resource = Resource {
    path: "offers",
    noun: "offer",
    tag: "Offers",
    table: &tables::OFFERS,
    fields: &[
        Field::new("name", Kind::Text).required(),
        Field::new("group_id", Kind::Ref(&tables::GROUPS)),
        Field::new("offer_type", Kind::Enum(TARGET_TYPES)),
        Field::new("url", Kind::Url),
        Field::new("action_type", Kind::Text),
        Field::new("action_payload", Kind::Json),
        Field::new("action_options", Kind::Json),
        Field::new(
            "affiliate_network_id",
            Kind::Ref(&tables::AFFILIATE_NETWORKS),
        ),
        Field::new("payout_value", Kind::Money).column("payout_value_micros"),
        Field::new("payout_currency", Kind::Text),
        Field::new("payout_type", Kind::Enum(&["CPA", "CPC"])),
        Field::new("payout_auto", Kind::Bool),
        Field::new("payout_upsell", Kind::Bool),
        Field::new("country", Kind::TextList),
        Field::new("daily_cap", Kind::Int),
        Field::new("conversion_timezone", Kind::Text),
        Field::new("alternative_offer_id", Kind::Ref(&tables::OFFERS)),
        Field::new("state", Kind::Enum(&["active", "disabled", "deleted"])),
        Field::new("notes", Kind::Text),
        Field::new("file_source", Kind::OptText).read_only(),
        Field::new("created_at", Kind::Time).read_only(),
        Field::new("updated_at", Kind::Time).read_only(),
    ],
    rules: &TargetRules { offer: true },
};

pub static LANDINGS: Resource = Resource {
    path: "landing_pages",
    noun: "landing page",
    tag: "Landing pages",
    table: &tables::LANDINGS,
    fields: &[
        Field::new("name", Kind::Text).required(),
        Field::new("group_id", Kind::Ref(&tables::GROUPS)),
        Field::new("landing_type", Kind::Enum(TARGET_TYPES)),
        Field::new("url", Kind::Url),
        Field::new("action_type", Kind::Text),
        Field::new("action_payload", Kind::Json),
        Field::new("action_options", Kind::Json),
        Field::new("offer_count", Kind::Int),
        Field::new("state", Kind::Enum(&["active", "disabled", "deleted"])),
        Field::new("notes", Kind::Text),
        Field::new("file_source", Kind::OptText).read_only(),
        Field::new("created_at", Kind::Time).read_only(),
        Field::new("updated_at", Kind::Time).read_only(),
    ],
    rules: &TargetRules { offer: false },
};

struct TargetRules {
    offer: bool,
}

#[async_trait]
impl ResourceRules for TargetRules {
    async fn prepare(
        &self,
        state: &AppState,
        draft: &mut Draft<'_>,
        invalid: &mut Invalid,
    ) -> Result<(), ApiError> {
        let type_column = if self.offer {
            "offer_type"
        } else {
            "landing_type"
        };
        super::files::lifecycle::prepare_archive(draft, type_column, invalid);
        let kind = draft
            .effective(type_column)
            .as_str()
            .unwrap_or("external")
            .to_string();
        let action_type = draft
            .effective("action_type")
            .as_str()
            .unwrap_or("")
            .to_string();
        // An external target redirects to its URL; the URL is what clients send.
        if kind == "external" {
            let url = draft.effective("url").as_str().unwrap_or("").to_string();
            if draft.is_create() && url.is_empty() && draft.input.get("action_payload").is_none() {
                invalid.add("url", "url is required for an external target.");
            }
        }
        if !action_type.is_empty() {
            match state.snapshot.registry().action(&action_type) {
                None => invalid.add(
                    "action_type",
                    format!("there is no action named {action_type}."),
                ),
                Some(factory) => {
                    let parse = |column: &str| match draft.effective(column) {
                        Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
                        other => other,
                    };
                    let (payload, options) = (parse("action_payload"), parse("action_options"));
                    let empty =
                        payload.is_null() || payload.as_str().is_some_and(|s| s.trim().is_empty());
                    if !empty && let Err(message) = factory.build(&payload, &options) {
                        invalid.add(
                            "action_payload",
                            format!("the {action_type} action refuses this payload: {message}"),
                        );
                    }
                }
            }
        }
        if self.offer {
            if let Some(zone) = draft.effective("conversion_timezone").as_str()
                && zone.parse::<chrono_tz::Tz>().is_err()
            {
                invalid.add(
                    "conversion_timezone",
                    format!("{zone} is not a time zone name such as Europe/Berlin."),
                );
            }
            // Keitaro's switch: a disabled cap is a cap of zero.
            if let Some(enabled) = draft
                .input
                .get("conversion_cap_enabled")
                .and_then(super::resource::as_bool)
                && !enabled
            {
                draft.set("daily_cap", SqlValue::Int(0));
            }
            if let Some(cap) = draft.effective("daily_cap").as_i64()
                && cap < 0
            {
                invalid.add("daily_cap", "daily_cap must be 0 (no cap) or more.");
            }
            if let (Some(id), Some(alternative)) =
                (draft.id, draft.effective("alternative_offer_id").as_i64())
                && id == alternative
            {
                invalid.add(
                    "alternative_offer_id",
                    "an offer cannot be its own alternative.",
                );
            }
        }
        Ok(())
    }

    /// Unpacks an `archive` sent with the object into its directory.
    async fn after_save(
        &self,
        state: &AppState,
        id: i64,
        input: &Map<String, Value>,
    ) -> Result<(), ApiError> {
        super::files::lifecycle::unpack_archive(state, self.offer, id, input).await
    }

    /// A clone gets a copy of the original's files.
    async fn after_clone(
        &self,
        state: &AppState,
        original: i64,
        copy: i64,
    ) -> Result<(), ApiError> {
        super::files::lifecycle::copy_files(state, self.offer, original, copy).await
    }

    fn extra_schema(&self) -> Vec<(&'static str, Value)> {
        vec![(
            "archive",
            serde_json::json!({
                "type": "string",
                "description": "A ZIP file encoded in base64; its files replace the object's (write only)."
            }),
        )]
    }

    /// Offers also show `affiliate_network` (its name) and `conversion_cap_enabled`.
    async fn decorate(
        &self,
        state: &AppState,
        objects: &mut [Map<String, Value>],
    ) -> Result<(), ApiError> {
        if !self.offer {
            return Ok(());
        }
        let networks = state
            .store
            .object_rows(&tables::AFFILIATE_NETWORKS, &RowFilter::all())
            .await?;
        for object in objects {
            let network = object.get("affiliate_network_id").and_then(Value::as_i64);
            let name = network
                .and_then(|id| {
                    networks
                        .iter()
                        .find(|n| n.get("id").and_then(Value::as_i64) == Some(id))
                })
                .and_then(|n| n.get("name").cloned())
                .unwrap_or(Value::Null);
            object.insert("affiliate_network".into(), name);
            let capped = object.get("daily_cap").and_then(Value::as_i64).unwrap_or(0) > 0;
            object.insert("conversion_cap_enabled".into(), Value::Bool(capped));
        }
        Ok(())
    }
}

pub fn api() -> Api {
    lifecycle(
        &OFFERS,
        &[
            Op::List,
            Op::Create,
            Op::Get,
            Op::Update,
            Op::ArchiveAt,
            Op::Clone,
            Op::Deleted,
            Op::Restore,
        ],
    )
    .merge(lifecycle(
        &LANDINGS,
        &[
            Op::List,
            Op::Create,
            Op::Get,
            Op::Update,
            Op::Archive,
            Op::ClonePut,
            Op::Deleted,
            Op::Restore,
        ],
    ))
}
