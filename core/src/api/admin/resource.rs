//! The shape shared by the Admin API's object resources (campaigns, streams, offers, landing
//! pages, affiliate networks, traffic sources, groups, domains): a [`Resource`] declares its API
//! fields and the columns behind them; the generic code here parses and checks input against
//! those declarations, renders rows, and serves the life cycle (list, get, create, update, clone,
//! enable/disable, archive, list deleted, restore). Resource-specific rules live in
//! [`ResourceRules`] implementations beside each resource.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use chrono::TimeZone;
use serde_json::{Map, Value};

use super::input::{Input, Invalid};
use super::ops::{Api, Doc, Shape};
use crate::api::AppState;
use crate::model::{Money, unix_now};

use crate::store::objects::{ObjectWrite, RowFilter, SqlValue, Within};

pub use super::schema::{Draft, Field, Kind, PlainRules, Resource, ResourceRules};
pub use crate::api::{ApiError, ApiResult};

/// `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn show_time(at: i64) -> Value {
    chrono::Utc
        .timestamp_opt(at, 0)
        .single()
        .map(|t| Value::String(t.format("%Y-%m-%d %H:%M:%S").to_string()))
        .unwrap_or(Value::Null)
}

/// An amount as Keitaro shows it: at least four decimals (`10.0000`), more when needed.
pub fn show_money(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let magnitude = micros.unsigned_abs();
    let fraction = format!("{:06}", magnitude % 1_000_000);
    let kept = fraction.trim_end_matches('0');
    let digits = if kept.len() <= 4 {
        &fraction[..4]
    } else {
        kept
    };
    format!("{sign}{}.{digits}", magnitude / 1_000_000)
}

/// A row as the API shows it.
pub fn render(resource: &Resource, row: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), row.get("id").cloned().unwrap_or(Value::Null));
    for field in resource.fields {
        let raw = row.get(field.column).cloned().unwrap_or(Value::Null);
        let value = match field.kind {
            Kind::Json | Kind::Object | Kind::TextList => match &raw {
                Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
                _ => Value::Null,
            },
            Kind::Money => raw
                .as_i64()
                .map(|m| Value::String(show_money(m)))
                .unwrap_or(Value::Null),
            Kind::Time => raw.as_i64().map(show_time).unwrap_or(Value::Null),
            _ => raw,
        };
        out.insert(field.name.to_string(), value);
    }
    out
}

/// Parses the writable fields present in `input` into column values, checking types and
/// required fields (on create). Unknown fields are ignored.
pub fn parse_fields(
    resource: &Resource,
    input: &Input,
    create: bool,
    invalid: &mut Invalid,
) -> Vec<(&'static str, SqlValue)> {
    let mut values = Vec::new();
    for field in resource.fields.iter().filter(|f| f.writable) {
        let Some(raw) = input.fields.get(field.name) else {
            if create && field.required {
                invalid.add(field.name, format!("{} is required.", field.name));
            }
            continue;
        };
        if input.form && mangled_form_value(field, raw) {
            tracing::warn!(
                field = field.name,
                "Ignoring a nested field that arrived mangled in a form body."
            );
            continue;
        }
        match parse_value(field, raw) {
            Ok(value) => {
                if field.required && value_is_blank(&value) {
                    invalid.add(field.name, format!("{} must not be empty.", field.name));
                    continue;
                }
                values.push((field.column, value));
            }
            Err(message) => invalid.add(field.name, message),
        }
    }
    values
}

/// A form client that flattens a nested value (keitaropy sends `parameters={"a": …}` as
/// `parameters=a&parameters=b`) leaves only key names: such a value is not the client's intent.
fn mangled_form_value(field: &Field, raw: &Value) -> bool {
    let nested = matches!(field.kind, Kind::Object | Kind::Json);
    let flattened = match raw {
        Value::Array(items) => items.iter().all(Value::is_string),
        Value::String(text) => {
            matches!(field.kind, Kind::Object)
                && !text.trim_start().starts_with('{')
                && !text.trim().is_empty()
        }
        _ => false,
    };
    nested && flattened
}

fn value_is_blank(value: &SqlValue) -> bool {
    match value {
        SqlValue::Null => true,
        SqlValue::Text(t) => t.trim().is_empty(),
        _ => false,
    }
}

/// One field's value from JSON or form text.
pub fn parse_value(field: &Field, raw: &Value) -> Result<SqlValue, String> {
    let name = field.name;
    let null_ok = !field.required
        && matches!(
            field.kind,
            Kind::Ref(_) | Kind::OptText | Kind::OptEnum(_) | Kind::Json
        );
    let is_null =
        raw.is_null() || (null_ok && raw.as_str().is_some_and(|s| s.is_empty() || s == "null"));
    if is_null {
        return match field.kind {
            Kind::Json => Ok(SqlValue::Text("null".into())),
            _ if null_ok => Ok(SqlValue::Null),
            Kind::Text | Kind::Url => Ok(SqlValue::Text(String::new())),
            _ => Err(format!("{name} must not be null.")),
        };
    }
    match field.kind {
        Kind::Int | Kind::Ref(_) => as_int(raw)
            .map(SqlValue::Int)
            .ok_or_else(|| format!("{name} must be an integer.")),
        Kind::Real => as_real(raw)
            .map(SqlValue::Real)
            .ok_or_else(|| format!("{name} must be a number.")),
        Kind::Bool => as_bool(raw)
            .map(SqlValue::Bool)
            .ok_or_else(|| format!("{name} must be true or false (or 1 or 0).")),
        Kind::Text | Kind::OptText => as_text(raw)
            .map(SqlValue::Text)
            .ok_or_else(|| format!("{name} must be a string.")),
        Kind::Enum(allowed) | Kind::OptEnum(allowed) => {
            let text = as_text(raw).ok_or_else(|| format!("{name} must be a string."))?;
            if allowed.contains(&text.as_str()) {
                Ok(SqlValue::Text(text))
            } else {
                Err(format!("{name} must be one of: {}.", allowed.join(", ")))
            }
        }
        Kind::Url => {
            let text = as_text(raw).ok_or_else(|| format!("{name} must be a string."))?;
            check_url(&text).map_err(|m| format!("{name} {m}"))?;
            Ok(SqlValue::Text(text))
        }
        Kind::Json => Ok(SqlValue::Text(raw.to_string())),
        Kind::Object => match raw {
            Value::Object(_) => Ok(SqlValue::Text(raw.to_string())),
            Value::Array(items) if items.is_empty() => Ok(SqlValue::Text("{}".into())),
            Value::String(text) => match serde_json::from_str::<Value>(text) {
                Ok(value @ Value::Object(_)) => Ok(SqlValue::Text(value.to_string())),
                _ => Err(format!("{name} must be an object.")),
            },
            _ => Err(format!("{name} must be an object.")),
        },
        Kind::TextList => {
            let items: Vec<Value> = match raw {
                Value::Array(items) => items.clone(),
                Value::String(text) if text.is_empty() => Vec::new(),
                Value::String(text) => match serde_json::from_str::<Value>(text) {
                    Ok(Value::Array(items)) => items,
                    _ => text
                        .split(',')
                        .map(|s| Value::String(s.trim().to_string()))
                        .collect(),
                },
                _ => return Err(format!("{name} must be a list of strings.")),
            };
            let mut texts = Vec::new();
            for item in items {
                texts.push(Value::String(
                    as_text(&item).ok_or_else(|| format!("{name} must be a list of strings."))?,
                ));
            }
            Ok(SqlValue::Text(Value::Array(texts).to_string()))
        }
        Kind::Money => {
            let amount = match raw {
                Value::String(text) => text.trim().parse::<Money>().ok(),
                Value::Number(n) => n.as_f64().and_then(|x| x.to_string().parse::<Money>().ok()),
                _ => None,
            };
            amount
                .map(|m| SqlValue::Int(m.micros()))
                .ok_or_else(|| format!("{name} must be a decimal amount."))
        }
        Kind::Time => Err(format!("{name} cannot be set.")),
    }
}

pub fn as_int(raw: &Value) -> Option<i64> {
    match raw {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|x| x.fract() == 0.0 && x.abs() < 9e15)
                .map(|x| x as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(*b as i64),
        _ => None,
    }
}

pub fn as_real(raw: &Value) -> Option<f64> {
    match raw {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    }
}

pub fn as_bool(raw: &Value) -> Option<bool> {
    match raw {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "on" | "yes" => Some(true),
            "0" | "false" | "off" | "no" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

pub fn as_text(raw: &Value) -> Option<String> {
    match raw {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Empty, or an absolute http(s) URL (macros such as `{subid}` allowed).
pub fn check_url(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Ok(());
    }
    let lower = text.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err("must be an http:// or https:// URL.".into());
    }
    if text.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters.".into());
    }
    Ok(())
}

/// Whether every referenced id exists (any state).
async fn check_refs(
    state: &AppState,
    resource: &Resource,
    values: &[(&'static str, SqlValue)],
    invalid: &mut Invalid,
) -> Result<(), ApiError> {
    for field in resource.fields {
        let Kind::Ref(table) = field.kind else {
            continue;
        };
        let Some((_, SqlValue::Int(id))) = values.iter().find(|(c, _)| *c == field.column) else {
            continue;
        };
        if state
            .store
            .object_rows(table, &RowFilter::id(*id))
            .await?
            .is_empty()
        {
            invalid.add(field.name, format!("{} {id} does not exist.", field.name));
        }
    }
    Ok(())
}

/// The stored row of `id`, or 404.
pub async fn load(
    state: &AppState,
    resource: &Resource,
    id: i64,
) -> Result<Map<String, Value>, ApiError> {
    state
        .store
        .object_rows(resource.table, &RowFilter::id(id))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::NotFound(format!("{} {id} not found", resource.noun)))
}

/// Refuses changes to objects declared in the campaigns directory.
pub fn refuse_file_managed(resource: &Resource, row: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(file) = row.get("file_source").and_then(Value::as_str)
        && !file.is_empty()
    {
        return Err(ApiError::Conflict(format!(
            "this {} is managed by the file {file}; change it there",
            resource.noun
        )));
    }
    Ok(())
}

/// Rendered and decorated rows.
pub async fn present(
    state: &AppState,
    resource: &Resource,
    rows: &[Map<String, Value>],
) -> Result<Vec<Map<String, Value>>, ApiError> {
    let mut objects: Vec<Map<String, Value>> = rows.iter().map(|r| render(resource, r)).collect();
    resource.rules.decorate(state, &mut objects).await?;
    Ok(objects)
}

pub async fn present_one(
    state: &AppState,
    resource: &Resource,
    row: &Map<String, Value>,
) -> Result<Value, ApiError> {
    Ok(present(state, resource, std::slice::from_ref(row))
        .await?
        .into_iter()
        .next()
        .map(Value::Object)
        .unwrap_or(Value::Null))
}

/// Rebuilds the routing snapshot after a change, so it serves within the request.
pub async fn changed(state: &AppState, resource: &Resource) {
    if resource.rules.affects_routing() {
        // A failed rebuild keeps the previous snapshot and is logged; the write stands.
        let _ = state.snapshot.rebuild(&*state.store).await;
    }
}

/// Creates an object from `input`; returns its stored row.
pub async fn create(
    state: &AppState,
    resource: &Resource,
    input: &Input,
) -> Result<Map<String, Value>, ApiError> {
    save(state, resource, None, input).await
}

/// Updates the fields present in `input`; returns the stored row.
pub async fn update(
    state: &AppState,
    resource: &Resource,
    id: i64,
    input: &Input,
) -> Result<Map<String, Value>, ApiError> {
    save(state, resource, Some(id), input).await
}

/// The create and update path: parse, let the rules check and complete the draft, check
/// references, then write the object and its children in one transaction and rebuild routing.
async fn save(
    state: &AppState,
    resource: &Resource,
    id: Option<i64>,
    input: &Input,
) -> Result<Map<String, Value>, ApiError> {
    let existing = match id {
        Some(id) => {
            let row = load(state, resource, id).await?;
            refuse_file_managed(resource, &row)?;
            Some(row)
        }
        None => None,
    };
    let mut invalid = Invalid::default();
    let values = parse_fields(resource, input, id.is_none(), &mut invalid);
    let mut draft = Draft {
        id,
        input: &input.fields,
        existing: existing.as_ref(),
        values,
        children: Vec::new(),
    };
    resource
        .rules
        .prepare(state, &mut draft, &mut invalid)
        .await?;
    check_refs(state, resource, &draft.values, &mut invalid).await?;
    invalid.check()?;
    let now = unix_now();
    let stamps: &[&'static str] = if id.is_none() {
        &["created_at", "updated_at"]
    } else {
        &["updated_at"]
    };
    for stamp in stamps {
        if resource.table.column(stamp).is_some() {
            draft.set(stamp, SqlValue::Int(now));
        }
    }
    let written = state
        .store
        .object_write(&ObjectWrite {
            table: resource.table,
            id,
            values: draft.values,
            children: draft.children,
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{} not found", resource.noun)))?;
    let event = if id.is_none() { "created" } else { "updated" };
    let after = async {
        resource.rules.after_write(state, written, event).await?;
        resource
            .rules
            .after_save(state, written, &input.fields)
            .await
    }
    .await;
    // The row is written: routing follows it even when a later step (files) failed.
    changed(state, resource).await;
    after?;
    load(state, resource, written).await
}

/// Sets an object's state (`active`, `disabled`, `deleted`).
pub async fn set_state(
    state: &AppState,
    resource: &Resource,
    id: i64,
    new_state: &str,
) -> Result<Map<String, Value>, ApiError> {
    let existing = load(state, resource, id).await?;
    refuse_file_managed(resource, &existing)?;
    state
        .store
        .object_write(&ObjectWrite {
            table: resource.table,
            id: Some(id),
            values: vec![
                ("state", SqlValue::Text(new_state.to_string())),
                ("updated_at", SqlValue::Int(unix_now())),
            ],
            children: Vec::new(),
        })
        .await?;
    resource.rules.after_write(state, id, new_state).await?;
    changed(state, resource).await;
    load(state, resource, id).await
}

/// Copies an object (with the values the rules change) through the create path, so the copy
/// passes the same checks.
pub async fn clone_object(
    state: &AppState,
    resource: &Resource,
    id: i64,
) -> Result<Map<String, Value>, ApiError> {
    let row = load(state, resource, id).await?;
    let mut input = render(resource, &row);
    resource
        .rules
        .decorate(state, std::slice::from_mut(&mut input))
        .await?;
    input.remove("id");
    let changes = resource.rules.clone_values(&row);
    for (column, value) in changes {
        if let Some(field) = resource.fields.iter().find(|f| f.column == column) {
            input.insert(field.name.to_string(), value.to_json());
        }
    }
    input.insert("state".into(), Value::String("active".into()));
    let copy = create(
        state,
        resource,
        &Input {
            fields: input,
            form: false,
        },
    )
    .await?;
    if let Some(copy_id) = copy.get("id").and_then(Value::as_i64) {
        resource.rules.after_clone(state, id, copy_id).await?;
    }
    Ok(copy)
}

/// A life-cycle operation a resource serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `GET /{path}`: the objects not archived.
    List,
    /// `GET /{path}/{id}`.
    Get,
    /// `POST /{path}`.
    Create,
    /// `PUT /{path}/{id}`.
    Update,
    /// `DELETE /{path}/{id}`: archive, answering with the archived object.
    Archive,
    /// `DELETE /{path}/{id}/archive` (offers).
    ArchiveAt,
    /// `POST /{path}/{id}/clone`.
    Clone,
    /// `PUT /{path}/{id}/clone` (landing pages).
    ClonePut,
    /// `GET /{path}/deleted`.
    Deleted,
    /// `POST /{path}/{id}/restore`.
    Restore,
    /// `POST /{path}/{id}/enable` and `…/disable`.
    EnableDisable,
}

/// The life-cycle routes of a resource under `/{path}`, documented.
pub fn lifecycle(resource: &'static Resource, ops: &[Op]) -> Api {
    use axum::routing::{delete, get, post, put};
    let path = resource.path;
    let tag = resource.tag;
    let noun = resource.noun;
    let one = format!("/{path}/{{id}}");
    let mut api = Api::default();
    for op in ops {
        api =
            match op {
                Op::List => {
                    api.route(
                        Method::GET,
                        &format!("/{path}"),
                        Doc::new(tag, format!("List {path} (not archived)"))
                            .response(Shape::List(resource)),
                        get(
                            move |State(state): State<AppState>,
                                  scope: Option<Extension<Within>>| async move {
                                list(&state, resource, RowFilter::live(), scope).await
                            },
                        ),
                    )
                }
                Op::Create => api.route(
                    Method::POST,
                    &format!("/{path}"),
                    Doc::new(tag, format!("Create a {noun}"))
                        .request(Shape::Object(resource))
                        .response(Shape::Object(resource)),
                    post(
                        move |State(state): State<AppState>, input: Input| async move {
                            let row = create(&state, resource, &input).await?;
                            respond(&state, resource, &row).await
                        },
                    ),
                ),
                Op::Get => api.route(
                    Method::GET,
                    &one,
                    Doc::new(tag, format!("Get a {noun}")).response(Shape::Object(resource)),
                    get(
                        move |State(state): State<AppState>, Path(id): Path<i64>| async move {
                            let row = load(&state, resource, id).await?;
                            respond(&state, resource, &row).await
                        },
                    ),
                ),
                Op::Update => {
                    api.route(
                        Method::PUT,
                        &one,
                        Doc::new(
                            tag,
                            format!("Update a {noun} (fields not sent keep their values)"),
                        )
                        .request(Shape::Object(resource))
                        .response(Shape::Object(resource)),
                        put(
                            move |State(state): State<AppState>,
                                  Path(id): Path<i64>,
                                  input: Input| async move {
                                let row = update(&state, resource, id, &input).await?;
                                respond(&state, resource, &row).await
                            },
                        ),
                    )
                }
                Op::Archive => api.route(
                    Method::DELETE,
                    &one,
                    Doc::new(tag, format!("Move a {noun} to the archive"))
                        .response(Shape::Object(resource)),
                    delete(
                        move |State(state): State<AppState>, Path(id): Path<i64>| async move {
                            state_route(&state, resource, id, "deleted").await
                        },
                    ),
                ),
                Op::ArchiveAt => api.route(
                    Method::DELETE,
                    &format!("{one}/archive"),
                    Doc::new(tag, format!("Move a {noun} to the archive"))
                        .response(Shape::Object(resource)),
                    delete(
                        move |State(state): State<AppState>, Path(id): Path<i64>| async move {
                            state_route(&state, resource, id, "deleted").await
                        },
                    ),
                ),
                Op::Clone | Op::ClonePut => {
                    let handler = move |State(state): State<AppState>, Path(id): Path<i64>| async move {
                        let row = clone_object(&state, resource, id).await?;
                        respond(&state, resource, &row).await
                    };
                    let (method, router) = if *op == Op::Clone {
                        (Method::POST, post(handler))
                    } else {
                        (Method::PUT, put(handler))
                    };
                    api.route(
                        method,
                        &format!("{one}/clone"),
                        Doc::new(tag, format!("Clone a {noun} (named \"… Copy\")"))
                            .response(Shape::Object(resource)),
                        router,
                    )
                }
                Op::Deleted => {
                    api.route(
                        Method::GET,
                        &format!("/{path}/deleted"),
                        Doc::new(tag, format!("List archived {path}"))
                            .response(Shape::List(resource)),
                        get(
                            move |State(state): State<AppState>,
                                  scope: Option<Extension<Within>>| async move {
                                list(&state, resource, RowFilter::deleted(), scope).await
                            },
                        ),
                    )
                }
                Op::Restore => api.route(
                    Method::POST,
                    &format!("{one}/restore"),
                    Doc::new(tag, format!("Restore an archived {noun}"))
                        .response(Shape::Object(resource)),
                    post(
                        move |State(state): State<AppState>, Path(id): Path<i64>| async move {
                            state_route(&state, resource, id, "active").await
                        },
                    ),
                ),
                Op::EnableDisable => api
                    .route(
                        Method::POST,
                        &format!("{one}/enable"),
                        Doc::new(tag, format!("Enable a {noun}")).response(Shape::Object(resource)),
                        post(
                            move |State(state): State<AppState>, Path(id): Path<i64>| async move {
                                state_route(&state, resource, id, "active").await
                            },
                        ),
                    )
                    .route(
                        Method::POST,
                        &format!("{one}/disable"),
                        Doc::new(tag, format!("Disable a {noun}"))
                            .response(Shape::Object(resource)),
                        post(
                            move |State(state): State<AppState>, Path(id): Path<i64>| async move {
                                state_route(&state, resource, id, "disabled").await
                            },
                        ),
                    ),
            };
    }
    api
}

/// One object, rendered and decorated.
pub async fn respond(state: &AppState, resource: &Resource, row: &Map<String, Value>) -> ApiResult {
    Ok(Json(present_one(state, resource, row).await?).into_response())
}

pub async fn state_route(
    state: &AppState,
    resource: &Resource,
    id: i64,
    new_state: &str,
) -> ApiResult {
    let row = set_state(state, resource, id, new_state).await?;
    Ok(Json(present_one(state, resource, &row).await?).into_response())
}

/// A list of `resource`'s rows matching `filter`, within the caller's scope when it has one.
pub async fn list(
    state: &AppState,
    resource: &Resource,
    filter: RowFilter,
    scope: Option<Extension<Within>>,
) -> ApiResult {
    let filter = filter.within(scope.as_ref().map(|Extension(within)| within.clone()));
    let rows = state.store.object_rows(resource.table, &filter).await?;
    let objects = present(state, resource, &rows).await?;
    Ok(scoped(Json(objects).into_response(), scope.is_some()))
}

/// The mark of a list answer its handler filtered by the caller's scope (the request's
/// `Within`, see `access`).
#[derive(Debug, Clone, Copy)]
pub struct Scoped;

/// Marks a list answer as filtered by the caller's scope (see `access::scoped_answer`).
pub fn scoped(mut response: Response, filtered: bool) -> Response {
    if filtered {
        response.extensions_mut().insert(Scoped);
    }
    response
}
