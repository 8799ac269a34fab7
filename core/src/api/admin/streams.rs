//! Streams (Keitaro's "flows") with their filters, triggers, landings and offers, and the
//! stream event log.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::input::Invalid;
use super::ops::{Api, Doc, Shape};
use super::resource::{
    ApiError, Draft, Field, Kind, Op, Resource, ResourceRules, as_bool, as_int, lifecycle, present,
    scoped, show_time,
};
use crate::api::AppState;
use crate::model::unix_now;
use crate::store::objects::{ChildRows, RowFilter, SqlValue, Within};
use crate::store::tables;

pub static STREAMS: Resource = Resource {
    path: "streams",
    noun: "stream",
    tag: "Streams",
    table: &tables::STREAMS,
    fields: &[
        Field::new("campaign_id", Kind::Ref(&tables::CAMPAIGNS)).required(),
        Field::new("type", Kind::Enum(&["forced", "regular", "default"])).required(),
        Field::new("name", Kind::Text),
        Field::new("position", Kind::Int),
        Field::new("weight", Kind::Int),
        Field::new(
            "schema",
            Kind::Enum(&["landings", "redirect", "action", "offers"]),
        ),
        Field::new("action_type", Kind::Text),
        Field::new("action_payload", Kind::Json),
        Field::new("action_options", Kind::Json),
        Field::new("collect_clicks", Kind::Bool),
        Field::new("filter_or", Kind::Bool),
        Field::new("comments", Kind::Text),
        Field::new("state", Kind::Enum(&["active", "disabled", "deleted"])),
        Field::new("created_at", Kind::Time).read_only(),
        Field::new("updated_at", Kind::Time).read_only(),
    ],
    rules: &StreamRules,
};

struct StreamRules;

/// A list field's object items; `None` when the field is absent or holds no objects at all
/// (form clients such as keitaropy send nested lists mangled, e.g. `offers=share`: such a
/// field is ignored with a warning instead of wiping the stream's list).
fn object_items<'a>(
    input: &'a Map<String, Value>,
    field: &str,
) -> Option<Vec<&'a Map<String, Value>>> {
    let raw = input.get(field)?;
    let items: Vec<&Value> = match raw {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => map.values().collect(),
        Value::Null => return Some(Vec::new()),
        other => vec![other],
    };
    let objects: Vec<&Map<String, Value>> = items.iter().filter_map(|v| v.as_object()).collect();
    if objects.is_empty() && !items.is_empty() {
        tracing::warn!(
            field,
            "Ignoring a stream list field that holds no objects (a mangled form field?)."
        );
        return None;
    }
    Some(objects)
}

fn payload_of(item: &Map<String, Value>) -> Value {
    match item.get("payload") {
        None => Value::Null,
        // Form clients send JSON payloads as text.
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(value @ (Value::Array(_) | Value::Object(_))) => value,
            _ => Value::String(text.clone()),
        },
        Some(value) => value.clone(),
    }
}

impl StreamRules {
    fn filters(
        &self,
        state: &AppState,
        items: &[&Map<String, Value>],
        invalid: &mut Invalid,
    ) -> ChildRows {
        let registry = state.snapshot.registry();
        let mut rows = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let key = format!("filters[{i}]");
            let Some(name) = item.get("name").and_then(as_text_ref) else {
                invalid.add(&format!("{key}.name"), "name is required.");
                continue;
            };
            let mode = match item.get("mode").and_then(as_text_ref).unwrap_or("accept") {
                "accept" | "allow" => "accept",
                "reject" | "deny" => "reject",
                other => {
                    invalid.add(
                        &format!("{key}.mode"),
                        format!("mode {other} must be accept or reject."),
                    );
                    continue;
                }
            };
            let payload = payload_of(item);
            match registry.filter(name) {
                None => invalid.add(
                    &format!("{key}.name"),
                    format!("there is no filter named {name}."),
                ),
                Some(factory) => {
                    if let Err(message) = factory.build(&payload) {
                        invalid.add(
                            &format!("{key}.payload"),
                            format!("the {name} filter refuses this payload: {message}"),
                        );
                    }
                }
            }
            rows.push(vec![
                ("position", SqlValue::Int(i as i64)),
                ("name", SqlValue::Text(name.to_string())),
                ("mode", SqlValue::Text(mode.to_string())),
                ("payload", SqlValue::Text(payload.to_string())),
            ]);
        }
        ChildRows::of_stream(&tables::STREAM_FILTERS, rows)
    }

    fn triggers(&self, items: &[&Map<String, Value>], invalid: &mut Invalid) -> ChildRows {
        let mut rows = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let key = format!("triggers[{i}]");
            let condition = item.get("condition").and_then(as_text_ref).unwrap_or("");
            if !crate::model::is_known_condition(condition) {
                invalid.add(
                    &format!("{key}.condition"),
                    format!(
                        "condition must be {}, script:NAME or native:NAME.",
                        crate::model::CONDITIONS.join(", ")
                    ),
                );
            }
            let action = item.get("action").and_then(as_text_ref).unwrap_or("");
            if !crate::model::ACTIONS.contains(&action) {
                invalid.add(
                    &format!("{key}.action"),
                    format!(
                        "action must be one of {}.",
                        crate::model::ACTIONS.join(", ")
                    ),
                );
            }
            let target_kind = item.get("target").and_then(as_text_ref).unwrap_or("stream");
            let selected_page = item
                .get("selected_page")
                .and_then(as_text_ref)
                .unwrap_or("");
            let target = if target_kind == "selected_page" {
                selected_page
            } else {
                ""
            };
            if let Err(message) = super::resource::check_url(target) {
                invalid.add(
                    &format!("{key}.selected_page"),
                    format!("selected_page {message}"),
                );
            }
            let interval = item.get("interval").and_then(as_int).unwrap_or(300);
            if let Err(message) = crate::model::check_interval(interval) {
                invalid.add(&format!("{key}.interval"), format!("{message}."));
            }
            let mut payload = Map::new();
            payload.insert("target_kind".into(), Value::String(target_kind.to_string()));
            for name in [
                "pattern",
                "alternative_urls",
                "grab_from_page",
                "av_settings",
                "webhook_url",
                "params",
            ] {
                if let Some(value) = item.get(name) {
                    payload.insert(name.into(), value.clone());
                }
            }
            for name in ["reverse", "scan_page"] {
                if let Some(flag) = item.get(name).and_then(as_bool) {
                    payload.insert(name.into(), Value::Bool(flag));
                }
            }
            let enabled = item.get("enabled").and_then(as_bool).unwrap_or(true);
            rows.push(vec![
                ("position", SqlValue::Int(i as i64)),
                ("condition", SqlValue::Text(condition.to_string())),
                ("action", SqlValue::Text(action.to_string())),
                ("target", SqlValue::Text(target.to_string())),
                ("interval_seconds", SqlValue::Int(interval)),
                (
                    "payload",
                    SqlValue::Text(Value::Object(payload).to_string()),
                ),
                ("enabled", SqlValue::Bool(enabled)),
            ]);
        }
        ChildRows::of_stream(&tables::STREAM_TRIGGERS, rows)
    }

    async fn targets(
        &self,
        state: &AppState,
        field: &str,
        id_field: &'static str,
        items: &[&Map<String, Value>],
        invalid: &mut Invalid,
    ) -> Result<ChildRows, ApiError> {
        let (table, child) = if id_field == "landing_id" {
            (&tables::LANDINGS, &tables::STREAM_LANDINGS)
        } else {
            (&tables::OFFERS, &tables::STREAM_OFFERS)
        };
        let now = unix_now();
        let mut rows = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let key = format!("{field}[{i}]");
            let Some(target) = item.get(id_field).and_then(as_int) else {
                invalid.add(
                    &format!("{key}.{id_field}"),
                    format!("{id_field} is required."),
                );
                continue;
            };
            if state
                .store
                .object_rows(table, &RowFilter::id(target))
                .await?
                .is_empty()
            {
                invalid.add(
                    &format!("{key}.{id_field}"),
                    format!("{id_field} {target} does not exist."),
                );
            }
            let share = item
                .get("share")
                .or_else(|| item.get("weight"))
                .and_then(as_int)
                .unwrap_or(100);
            if !(0..=100_000).contains(&share) {
                invalid.add(&format!("{key}.share"), "share must be 0 or more.");
            }
            let target_state = item.get("state").and_then(as_text_ref).unwrap_or("active");
            if !matches!(target_state, "active" | "disabled") {
                invalid.add(&format!("{key}.state"), "state must be active or disabled.");
            }
            rows.push(vec![
                (id_field, SqlValue::Int(target)),
                ("share", SqlValue::Int(share)),
                ("state", SqlValue::Text(target_state.to_string())),
                ("created_at", SqlValue::Int(now)),
                ("updated_at", SqlValue::Int(now)),
            ]);
        }
        Ok(ChildRows::of_stream(child, rows))
    }
}

/// An item that names one of the stream's current children by `id` keeps that id (clients
/// update a filter by sending it back with its id); other items get new ids.
async fn keep_ids(
    state: &AppState,
    stream: Option<i64>,
    mut rows: ChildRows,
    items: &[&Map<String, Value>],
) -> Result<ChildRows, ApiError> {
    let Some(stream) = stream else {
        return Ok(rows);
    };
    if rows.rows.len() != items.len() {
        // Some items were refused: the request fails before anything is written.
        return Ok(rows);
    }
    let current: HashSet<i64> = state
        .store
        .object_rows(
            rows.table,
            &RowFilter::all().equal("stream_id", SqlValue::Int(stream)),
        )
        .await?
        .iter()
        .filter_map(|row| row.get("id").and_then(Value::as_i64))
        .collect();
    let mut kept = HashSet::new();
    for (row, item) in rows.rows.iter_mut().zip(items) {
        if let Some(id) = item.get("id").and_then(as_int)
            && current.contains(&id)
            && kept.insert(id)
        {
            row.push(("id", SqlValue::Int(id)));
        }
    }
    Ok(rows)
}

fn as_text_ref(value: &Value) -> Option<&str> {
    value.as_str()
}

/// The campaign a `campaign` action sends to (payload: an id, or an alias).
fn campaign_target(payload: &Value, campaigns: &[Map<String, Value>]) -> Option<i64> {
    let text = match payload {
        Value::Number(n) => return n.as_i64(),
        Value::String(s) => s.trim().to_string(),
        Value::Object(map) => return map.get("campaign_id").and_then(as_int),
        _ => return None,
    };
    if let Ok(id) = text.parse::<i64>() {
        return Some(id);
    }
    campaigns
        .iter()
        .find(|c| c.get("alias").and_then(Value::as_str) == Some(text.as_str()))
        .and_then(|c| c.get("id").and_then(Value::as_i64))
}

/// Whether `from` reaches itself through `campaign` actions once `edge` is added.
fn makes_loop(edges: &HashMap<i64, HashSet<i64>>, from: i64, to: i64) -> bool {
    let mut seen = HashSet::new();
    let mut pending = vec![to];
    while let Some(next) = pending.pop() {
        if next == from {
            return true;
        }
        if seen.insert(next)
            && let Some(targets) = edges.get(&next)
        {
            pending.extend(targets.iter().copied());
        }
    }
    false
}

#[async_trait]
impl ResourceRules for StreamRules {
    async fn prepare(
        &self,
        state: &AppState,
        draft: &mut Draft<'_>,
        invalid: &mut Invalid,
    ) -> Result<(), ApiError> {
        // Older clients send the weight as `chance` or `share`.
        if !draft.has("weight") {
            for alias in ["chance", "share"] {
                if let Some(raw) = draft.input.get(alias) {
                    match as_int(raw) {
                        Some(weight) => draft.set("weight", SqlValue::Int(weight)),
                        None => invalid.add(alias, format!("{alias} must be an integer.")),
                    }
                    break;
                }
            }
        }
        if let Some(weight) = draft.effective("weight").as_i64()
            && !(0..=1_000_000).contains(&weight)
        {
            invalid.add("weight", "weight must be 0 or more.");
        }
        if draft.effective("schema").as_str() == Some("offers") {
            draft.set("schema", SqlValue::Text("landings".into()));
        }
        let registry = state.snapshot.registry();
        let action_type = draft.effective("action_type");
        let action_type = action_type.as_str().unwrap_or("http").to_string();
        let schema = draft
            .effective("schema")
            .as_str()
            .unwrap_or("redirect")
            .to_string();
        if schema != "landings" {
            match registry.action(&action_type) {
                None => invalid.add(
                    "action_type",
                    format!("there is no action named {action_type}."),
                ),
                Some(factory) => {
                    let payload = match draft.effective("action_payload") {
                        Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
                        other => other,
                    };
                    let options = match draft.effective("action_options") {
                        Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
                        other => other,
                    };
                    if let Err(message) = factory.build(&payload, &options) {
                        invalid.add(
                            "action_payload",
                            format!("the {action_type} action refuses this payload: {message}"),
                        );
                    } else if action_type == "campaign" {
                        self.check_loop(state, draft, &payload, invalid).await?;
                    }
                }
            }
        }
        if let Some(items) = object_items(draft.input, "filters") {
            let rows = self.filters(state, &items, invalid);
            draft
                .children
                .push(keep_ids(state, draft.id, rows, &items).await?);
        }
        if let Some(items) = object_items(draft.input, "triggers") {
            let rows = self.triggers(&items, invalid);
            draft
                .children
                .push(keep_ids(state, draft.id, rows, &items).await?);
        }
        if let Some(items) = object_items(draft.input, "landings") {
            let rows = self
                .targets(state, "landings", "landing_id", &items, invalid)
                .await?;
            draft
                .children
                .push(keep_ids(state, draft.id, rows, &items).await?);
        }
        if let Some(items) = object_items(draft.input, "offers") {
            let rows = self
                .targets(state, "offers", "offer_id", &items, invalid)
                .await?;
            draft
                .children
                .push(keep_ids(state, draft.id, rows, &items).await?);
        }
        Ok(())
    }

    async fn decorate(
        &self,
        state: &AppState,
        objects: &mut [Map<String, Value>],
    ) -> Result<(), ApiError> {
        let ids: Vec<i64> = objects
            .iter()
            .filter_map(|o| o.get("id").and_then(Value::as_i64))
            .collect();
        let children = |table| {
            let filter = RowFilter::children_of("stream_id", ids.clone());
            async move { state.store.object_rows(table, &filter).await }
        };
        let filters = children(&tables::STREAM_FILTERS).await?;
        let triggers = children(&tables::STREAM_TRIGGERS).await?;
        let landings = children(&tables::STREAM_LANDINGS).await?;
        let offers = children(&tables::STREAM_OFFERS).await?;
        let of = |rows: &[Map<String, Value>],
                  id: Option<i64>,
                  show: &dyn Fn(&Map<String, Value>) -> Value| {
            Value::Array(
                rows.iter()
                    .filter(|r| r.get("stream_id").and_then(Value::as_i64) == id)
                    .map(show)
                    .collect(),
            )
        };
        for object in objects.iter_mut() {
            let id = object.get("id").and_then(Value::as_i64);
            if let Some(weight) = object.get("weight").cloned() {
                object.insert("chance".into(), weight);
            }
            object.insert("filters".into(), of(&filters, id, &show_filter));
            object.insert("triggers".into(), of(&triggers, id, &show_trigger));
            object.insert("landings".into(), of(&landings, id, &show_target));
            object.insert("offers".into(), of(&offers, id, &show_target));
        }
        Ok(())
    }

    async fn after_write(&self, state: &AppState, id: i64, event: &str) -> Result<(), ApiError> {
        let event = match event {
            "created" => "stream_created",
            "updated" => "stream_updated",
            "active" => "stream_enabled",
            "disabled" => "stream_disabled",
            "deleted" => "stream_archived",
            other => other,
        };
        state
            .store
            .add_stream_event(id, event, &json!({ "source": "admin_api" }))
            .await
            .map_err(ApiError::from)?;
        Ok(())
    }

    fn clone_values(&self, row: &Map<String, Value>) -> Vec<(&'static str, SqlValue)> {
        let name = row.get("name").and_then(Value::as_str).unwrap_or("");
        vec![("name", SqlValue::Text(format!("{name} Copy")))]
    }

    fn extra_schema(&self) -> Vec<(&'static str, Value)> {
        vec![
            (
                "filters",
                json!({ "type": "array", "items": { "type": "object", "properties": {
                "id": { "type": "integer" }, "name": { "type": "string" },
                "mode": { "type": "string", "enum": ["accept", "reject"] }, "payload": {} } } }),
            ),
            (
                "triggers",
                json!({ "type": "array", "items": { "type": "object", "properties": {
                "condition": { "type": "string" }, "target": { "type": "string" }, "selected_page": { "type": "string" },
                "pattern": { "type": "string" }, "action": { "type": "string" }, "interval": { "type": "integer" },
                "alternative_urls": { "type": "string" }, "grab_from_page": { "type": "string" },
                "reverse": { "type": "boolean" }, "enabled": { "type": "boolean" } } } }),
            ),
            (
                "landings",
                json!({ "type": "array", "items": { "type": "object", "properties": {
                "landing_id": { "type": "integer" }, "share": { "type": "integer" }, "state": { "type": "string" } } } }),
            ),
            (
                "offers",
                json!({ "type": "array", "items": { "type": "object", "properties": {
                "offer_id": { "type": "integer" }, "share": { "type": "integer" }, "state": { "type": "string" } } } }),
            ),
            (
                "chance",
                json!({ "type": "integer", "description": "The weight, as older clients call it." }),
            ),
        ]
    }
}

impl StreamRules {
    async fn check_loop(
        &self,
        state: &AppState,
        draft: &Draft<'_>,
        payload: &Value,
        invalid: &mut Invalid,
    ) -> Result<(), ApiError> {
        let campaigns = state
            .store
            .object_rows(&tables::CAMPAIGNS, &RowFilter::all())
            .await?;
        let Some(target) = campaign_target(payload, &campaigns) else {
            invalid.add(
                "action_payload",
                "the campaign action needs a campaign id or alias.",
            );
            return Ok(());
        };
        if !campaigns
            .iter()
            .any(|c| c.get("id").and_then(Value::as_i64) == Some(target))
        {
            invalid.add(
                "action_payload",
                format!("campaign {target} does not exist."),
            );
            return Ok(());
        }
        let Some(from) = draft.effective("campaign_id").as_i64() else {
            return Ok(());
        };
        let streams = state
            .store
            .object_rows(&tables::STREAMS, &RowFilter::live())
            .await?;
        let mut edges: HashMap<i64, HashSet<i64>> = HashMap::new();
        for stream in &streams {
            if stream.get("id").and_then(Value::as_i64) == draft.id
                || stream.get("action_type").and_then(Value::as_str) != Some("campaign")
            {
                continue;
            }
            let payload = stream
                .get("action_payload")
                .and_then(Value::as_str)
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(Value::Null);
            if let (Some(source), Some(to)) = (
                stream.get("campaign_id").and_then(Value::as_i64),
                campaign_target(&payload, &campaigns),
            ) {
                edges.entry(source).or_default().insert(to);
            }
        }
        if makes_loop(&edges, from, target) {
            invalid.add(
                "action_payload",
                format!("sending campaign {from} to campaign {target} would make a loop."),
            );
        }
        Ok(())
    }
}

fn show_filter(row: &Map<String, Value>) -> Value {
    json!({
        "id": row.get("id"),
        "stream_id": row.get("stream_id"),
        "name": row.get("name"),
        "mode": row.get("mode"),
        "payload": row.get("payload").and_then(Value::as_str).and_then(|t| serde_json::from_str::<Value>(t).ok()),
    })
}

fn show_trigger(row: &Map<String, Value>) -> Value {
    let payload: Map<String, Value> = row
        .get("payload")
        .and_then(Value::as_str)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let mut out = json!({
        "id": row.get("id"),
        "stream_id": row.get("stream_id"),
        "condition": row.get("condition"),
        "action": row.get("action"),
        "target": payload.get("target_kind").cloned().unwrap_or_else(|| json!("stream")),
        "selected_page": row.get("target"),
        "interval": row.get("interval_seconds"),
        "enabled": row.get("enabled"),
    });
    for (key, value) in payload {
        if key != "target_kind" {
            out[key] = value;
        }
    }
    out
}

fn show_target(row: &Map<String, Value>) -> Value {
    let mut out = row.clone();
    for stamp in ["created_at", "updated_at"] {
        if let Some(at) = row.get(stamp).and_then(Value::as_i64) {
            out.insert(stamp.into(), show_time(at));
        }
    }
    Value::Object(out)
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    query: Option<String>,
}

pub fn api() -> Api {
    let events = |State(state): State<AppState>,
                  Path(id): Path<i64>,
                  Query(query): Query<EventsQuery>| async move {
        let limit = query.limit.unwrap_or(100).clamp(1, 1_000);
        let events = state
            .store
            .stream_events(id, limit)
            .await
            .map_err(ApiError::from)?;
        Ok::<_, ApiError>(Json(events).into_response())
    };
    lifecycle(
        &STREAMS,
        &[
            Op::Create,
            Op::Deleted,
            Op::Get,
            Op::Update,
            Op::Archive,
            Op::EnableDisable,
            Op::Restore,
        ],
    )
    .route(
        Method::GET,
        "/streams/search",
        Doc::new(
            "Streams",
            "Search streams by name, action payload or comments",
        )
        .query("query", true)
        .response(Shape::List(&STREAMS)),
        get(
            |State(state): State<AppState>,
             scope: Option<Extension<Within>>,
             Query(query): Query<SearchQuery>| async move {
                let needle = query.query.unwrap_or_default().to_lowercase();
                let within = scope.as_ref().map(|Extension(within)| within.clone());
                let rows = state
                    .store
                    .object_rows(&tables::STREAMS, &RowFilter::live().within(within))
                    .await?;
                let found: Vec<Map<String, Value>> = rows
                    .into_iter()
                    .filter(|row| {
                        !needle.is_empty()
                            && ["name", "action_payload", "comments"].iter().any(|c| {
                                row.get(*c)
                                    .and_then(Value::as_str)
                                    .is_some_and(|t| t.to_lowercase().contains(&needle))
                            })
                    })
                    .collect();
                let answer = Json(present(&state, &STREAMS, &found).await?).into_response();
                Ok::<_, ApiError>(scoped(answer, scope.is_some()))
            },
        ),
    )
    .route(
        Method::GET,
        "/streams/{id}/events",
        Doc::new(
            "Streams",
            "A stream's events (trigger checks and changes), newest first",
        )
        .query("limit", false),
        get(events),
    )
    // Keitaro's route table also lists the singular form.
    .alias("/stream/{id}/events", get(events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops() {
        let mut edges: HashMap<i64, HashSet<i64>> = HashMap::new();
        edges.entry(2).or_default().insert(3);
        assert!(makes_loop(&edges, 1, 1));
        assert!(!makes_loop(&edges, 1, 2));
        edges.entry(3).or_default().insert(1);
        assert!(makes_loop(&edges, 1, 2));
    }

    #[test]
    fn mangled_lists_are_ignored() {
        let input: Map<String, Value> = serde_json::from_value(json!({
            "offers": ["offer_id", "share"],
            "landings": [{"landing_id": 1}],
            "filters": null,
        }))
        .unwrap();
        assert!(object_items(&input, "offers").is_none());
        assert_eq!(object_items(&input, "landings").unwrap().len(), 1);
        assert_eq!(object_items(&input, "filters").unwrap().len(), 0);
        assert!(object_items(&input, "triggers").is_none());
    }
}
