//! Affiliate networks, traffic sources, groups and domains: resources that are mostly their
//! fields.

use async_trait::async_trait;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use serde_json::{Map, Value};

use super::input::{Input, Invalid};
use super::ops::{Api, Doc, Shape};
use super::resource::{
    ApiError, ApiResult, Draft, Field, Kind, Op, PlainRules, Resource, ResourceRules, lifecycle,
    load, present, respond,
};
use crate::api::AppState;
use crate::store::objects::{RowFilter, SqlValue};
use crate::store::tables;

const STATES: &[&str] = &["active", "disabled", "deleted"];

pub static AFFILIATE_NETWORKS: Resource = Resource {
    path: "affiliate_networks",
    noun: "affiliate network",
    tag: "Affiliate networks",
    table: &tables::AFFILIATE_NETWORKS,
    fields: &[
        Field::new("name", Kind::Text).required(),
        Field::new("postback_url", Kind::Text),
        Field::new("offer_param", Kind::Text),
        Field::new("template_name", Kind::Text),
        Field::new("notes", Kind::Text),
        Field::new("state", Kind::Enum(STATES)),
        Field::new("created_at", Kind::Time).read_only(),
        Field::new("updated_at", Kind::Time).read_only(),
    ],
    rules: &NetworkRules,
};

struct NetworkRules;

#[async_trait]
impl ResourceRules for NetworkRules {
    /// Adds `offers`: how many offers use the network.
    async fn decorate(
        &self,
        state: &AppState,
        objects: &mut [Map<String, Value>],
    ) -> Result<(), ApiError> {
        let offers = state
            .store
            .object_rows(&tables::OFFERS, &RowFilter::live())
            .await?;
        for object in objects {
            let id = object.get("id").and_then(Value::as_i64);
            let count = offers
                .iter()
                .filter(|o| o.get("affiliate_network_id").and_then(Value::as_i64) == id)
                .count();
            object.insert("offers".into(), Value::from(count));
        }
        Ok(())
    }
}

pub static TRAFFIC_SOURCES: Resource = Resource {
    path: "traffic_sources",
    noun: "traffic source",
    tag: "Traffic sources",
    table: &tables::TRAFFIC_SOURCES,
    fields: &[
        Field::new("name", Kind::Text).required(),
        Field::new("postback_url", Kind::Text),
        Field::new("postback_statuses", Kind::TextList),
        Field::new("template_name", Kind::Text),
        Field::new("parameters", Kind::Object),
        Field::new("traffic_loss", Kind::Real),
        Field::new("update_in_campaigns", Kind::Text),
        Field::new("notes", Kind::Text),
        Field::new("state", Kind::Enum(STATES)),
        Field::new("created_at", Kind::Time).read_only(),
        Field::new("updated_at", Kind::Time).read_only(),
    ],
    rules: &SourceRules,
};

struct SourceRules;

#[async_trait]
impl ResourceRules for SourceRules {
    async fn prepare(
        &self,
        _state: &AppState,
        draft: &mut Draft<'_>,
        invalid: &mut Invalid,
    ) -> Result<(), ApiError> {
        if let Some(loss) = draft.effective("traffic_loss").as_f64()
            && !(0.0..=100.0).contains(&loss)
        {
            invalid.add(
                "traffic_loss",
                "traffic_loss must be a percentage from 0 to 100.",
            );
        }
        if let Some(url) = draft.effective("postback_url").as_str()
            && let Err(message) = super::resource::check_url(url)
        {
            invalid.add("postback_url", format!("postback_url {message}"));
        }
        Ok(())
    }

    /// Keitaro shows `accept_parameters` (true when parameters are declared).
    async fn decorate(
        &self,
        _state: &AppState,
        objects: &mut [Map<String, Value>],
    ) -> Result<(), ApiError> {
        for object in objects {
            let any = object
                .get("parameters")
                .and_then(Value::as_object)
                .is_some_and(|p| !p.is_empty());
            object.insert("accept_parameters".into(), Value::Bool(any));
        }
        Ok(())
    }
}

const GROUP_TYPES: &[&str] = &["campaigns", "offers", "landings"];

pub static GROUPS: Resource = Resource {
    path: "groups",
    noun: "group",
    tag: "Groups",
    table: &tables::GROUPS,
    fields: &[
        Field::new("name", Kind::Text).required(),
        Field::new("position", Kind::Int),
        Field::new("type", Kind::Enum(GROUP_TYPES)).required(),
    ],
    rules: &PlainRules,
};

pub static DOMAINS: Resource = Resource {
    path: "domains",
    noun: "domain",
    tag: "Domains",
    table: &tables::DOMAINS,
    fields: &[
        Field::new("name", Kind::Text).required(),
        Field::new("default_campaign", Kind::Ref(&tables::CAMPAIGNS)).column("default_campaign_id"),
        Field::new("wildcard", Kind::Bool),
        Field::new("catch_not_found", Kind::Bool),
        Field::new("ssl_redirect", Kind::Bool),
        Field::new("allow_indexing", Kind::Bool),
        Field::new("group_id", Kind::Ref(&tables::GROUPS)),
        Field::new("notes", Kind::Text),
        Field::new("state", Kind::Enum(STATES)),
        Field::new("created_at", Kind::Time).read_only(),
        Field::new("updated_at", Kind::Time).read_only(),
    ],
    rules: &DomainRules,
};

struct DomainRules;

#[async_trait]
impl ResourceRules for DomainRules {
    async fn prepare(
        &self,
        state: &AppState,
        draft: &mut Draft<'_>,
        invalid: &mut Invalid,
    ) -> Result<(), ApiError> {
        if let Some(SqlValue::Text(name)) = draft
            .values
            .iter()
            .find(|(c, _)| *c == "name")
            .map(|(_, v)| v.clone())
        {
            let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
            let valid = !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
                });
            if !valid {
                invalid.add(
                    "name",
                    "name must be a domain name such as tracker.example.com.",
                );
            } else {
                let taken = state
                    .store
                    .object_rows(
                        &tables::DOMAINS,
                        &RowFilter::all().equal("name", SqlValue::Text(name.clone())),
                    )
                    .await?
                    .iter()
                    .any(|row| row.get("id").and_then(Value::as_i64) != draft.id);
                if taken {
                    invalid.add("name", format!("the domain {name} already exists."));
                }
                draft.set("name", SqlValue::Text(name));
            }
        }
        Ok(())
    }

    /// Adds `network_status` (no DNS lookups are made: always `unchecked` until `check`) and
    /// `campaigns_count`.
    async fn decorate(
        &self,
        state: &AppState,
        objects: &mut [Map<String, Value>],
    ) -> Result<(), ApiError> {
        let campaigns = state
            .store
            .object_rows(&tables::CAMPAIGNS, &RowFilter::live())
            .await?;
        for object in objects {
            let id = object.get("id").and_then(Value::as_i64);
            let count = campaigns
                .iter()
                .filter(|c| c.get("domain_id").and_then(Value::as_i64) == id)
                .count();
            object.insert("campaigns_count".into(), Value::from(count));
            object.insert("network_status".into(), Value::String("unchecked".into()));
        }
        Ok(())
    }

    fn affects_routing(&self) -> bool {
        false
    }
}

#[derive(serde::Deserialize)]
struct GroupQuery {
    #[serde(rename = "type")]
    group_type: Option<String>,
}

/// The routes of this module's resources.
pub fn api() -> Api {
    let groups = &GROUPS;
    lifecycle(
        &AFFILIATE_NETWORKS,
        &[
            Op::List,
            Op::Create,
            Op::Get,
            Op::Update,
            Op::Archive,
            Op::Clone,
            Op::Deleted,
            Op::Restore,
        ],
    )
    .merge(lifecycle(
        &TRAFFIC_SOURCES,
        &[
            Op::List,
            Op::Create,
            Op::Get,
            Op::Update,
            Op::Archive,
            Op::Clone,
            Op::Deleted,
            Op::Restore,
        ],
    ))
    .merge(lifecycle(
        &DOMAINS,
        &[
            Op::List,
            Op::Create,
            Op::Get,
            Op::Update,
            Op::Archive,
            Op::Deleted,
            Op::Restore,
        ],
    ))
    .route(
        Method::POST,
        "/domains/{id}/check",
        Doc::new(
            "Domains",
            "Check a domain (answers the domain; no DNS lookup is made)",
        )
        .response(Shape::Object(&DOMAINS)),
        post(
            |State(state): State<AppState>, Path(id): Path<i64>| async move {
                let row = load(&state, &DOMAINS, id).await?;
                respond(&state, &DOMAINS, &row).await
            },
        ),
    )
    .route(
        Method::GET,
        "/groups",
        Doc::new(
            "Groups",
            "List groups of a type (campaigns, offers or landings)",
        )
        .query("type", true)
        .response(Shape::List(groups)),
        get(
            |State(state): State<AppState>, Query(query): Query<GroupQuery>| async move {
                let mut filter = RowFilter::all();
                if let Some(kind) = query.group_type.filter(|k| !k.is_empty()) {
                    if !GROUP_TYPES.contains(&kind.as_str()) {
                        return Err(ApiError::Invalid(Invalid::one(
                            "type",
                            "type must be one of: campaigns, offers, landings.",
                        )));
                    }
                    filter = filter.equal("type", SqlValue::Text(kind));
                }
                let rows = state.store.object_rows(&tables::GROUPS, &filter).await?;
                Ok(Json(present(&state, &GROUPS, &rows).await?).into_response())
            },
        ),
    )
    .merge(lifecycle(groups, &[Op::Create]))
    .route(
        Method::PUT,
        "/groups/{id}",
        Doc::new("Groups", "Update a group")
            .request(Shape::Object(groups))
            .response(Shape::Object(groups)),
        put(
            |State(state): State<AppState>, Path(id): Path<i64>, input: Input| async move {
                let row = super::resource::update(&state, &GROUPS, id, &input).await?;
                group_with_count(&state, row).await
            },
        ),
    )
    .route(
        Method::DELETE,
        "/groups/{id}/delete",
        Doc::new(
            "Groups",
            "Delete a group (its objects keep existing, without a group)",
        ),
        delete(
            |State(state): State<AppState>, Path(id): Path<i64>| async move {
                load(&state, &GROUPS, id).await?;
                state.store.object_delete(&tables::GROUPS, id).await?;
                let _ = state.snapshot.rebuild(&*state.store).await;
                Ok::<_, ApiError>(Json(serde_json::json!({ "success": true })).into_response())
            },
        ),
    )
}

/// A group with `count`: how many objects of its type it holds.
async fn group_with_count(state: &AppState, row: Map<String, Value>) -> ApiResult {
    let table = match row.get("type").and_then(Value::as_str) {
        Some("offers") => &tables::OFFERS,
        Some("landings") => &tables::LANDINGS,
        _ => &tables::CAMPAIGNS,
    };
    let id = row.get("id").and_then(Value::as_i64).unwrap_or(0);
    let count = state
        .store
        .object_rows(
            table,
            &RowFilter::live().equal("group_id", SqlValue::Int(id)),
        )
        .await?
        .len();
    let mut object = super::resource::render(&GROUPS, &row);
    object.insert("count".into(), Value::from(count));
    Ok(Json(Value::Object(object)).into_response())
}
