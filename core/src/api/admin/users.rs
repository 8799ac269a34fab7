//! Users, their API keys and their per-resource access.
//!
//! The bootstrap key (`[admin] api_key`) acts as an ADMIN. Creating a user also creates an API
//! key for it, shown once in the answer's `api_key` (stored as SHA-256 only); `POST
//! users/{id}/api_key` replaces it. A USER's `access_data` gives, per resource, one of
//! `full_access`, `read_only`, `to_groups_and_selected` or `created_by_user_groups_and_selected`
//! (the last is treated like the third: objects are not tracked by creator), with the ids in
//! `<resource>_groups` and `<resource>_selected`. Users, the bot list, integrations, logs and
//! plugins are for ADMINs only.

use async_trait::async_trait;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::IntoResponse;
use axum::routing::{delete, post, put};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::input::{Input, Invalid};
use super::ops::{Api, Doc, Shape};
use super::resource::{
    ApiError, ApiResult, Draft, Field, Kind, Op, Resource, ResourceRules, lifecycle, load,
    present_one,
};
use crate::api::AppState;
use crate::ids::random_token;
use crate::model::unix_now;
use crate::store::objects::{ChildRows, ObjectWrite, RowFilter, SqlValue};
use crate::store::tables;

/// The resources a USER's access is given for, as `access_data` names them.
pub const ACCESS_RESOURCES: &[&str] = &[
    "campaigns",
    "offers",
    "landings",
    "traffic_sources",
    "streams",
    "affiliate_networks",
    "domains",
];

pub const ACCESS_TYPES: &[&str] = &[
    "full_access",
    "read_only",
    "to_groups_and_selected",
    "created_by_user_groups_and_selected",
];

pub static USERS: Resource = Resource {
    path: "users",
    noun: "user",
    tag: "Users",
    table: &tables::USERS,
    fields: &[
        Field::new("login", Kind::Text).required(),
        Field::new("type", Kind::Enum(&["USER", "ADMIN"])).required(),
        Field::new("access_data", Kind::Object).column("access"),
        Field::new("preferences", Kind::Object),
        Field::new("state", Kind::Enum(&["active", "disabled"])),
        Field::new("created_at", Kind::Time).read_only(),
        Field::new("updated_at", Kind::Time).read_only(),
    ],
    rules: &UserRules,
};

struct UserRules;

/// PBKDF2-HMAC-SHA256, as `pbkdf2-sha256$iterations$salt$hash` (hex).
fn hash_password(password: &str) -> String {
    let salt = random_token(16);
    let iterations = 50_000;
    format!(
        "pbkdf2-sha256${iterations}${salt}${}",
        pbkdf2(password, &salt, iterations)
    )
}

fn pbkdf2(password: &str, salt: &str, iterations: u32) -> String {
    let prf =
        || Hmac::<Sha256>::new_from_slice(password.as_bytes()).expect("HMAC takes any key length");
    let mut mac = prf();
    mac.update(salt.as_bytes());
    mac.update(&1u32.to_be_bytes());
    let mut u = mac.finalize().into_bytes();
    let mut out = u;
    for _ in 1..iterations {
        let mut mac = prf();
        mac.update(&u);
        u = mac.finalize().into_bytes();
        for (o, b) in out.iter_mut().zip(u.iter()) {
            *o ^= b;
        }
    }
    out.iter().map(|b| format!("{b:02x}")).collect()
}

fn access_problem(access: &Map<String, Value>) -> Option<String> {
    for (key, value) in access {
        if let Some(resource) = key.strip_suffix("_access_type") {
            if !ACCESS_RESOURCES.contains(&resource) {
                return Some(format!(
                    "{key} names no resource; known: {}.",
                    ACCESS_RESOURCES.join(", ")
                ));
            }
            if !value.as_str().is_some_and(|v| ACCESS_TYPES.contains(&v)) {
                return Some(format!(
                    "{key} must be one of: {}.",
                    ACCESS_TYPES.join(", ")
                ));
            }
        } else if key.ends_with("_groups") || key.ends_with("_selected") {
            let ids_ok = value
                .as_array()
                .is_some_and(|items| items.iter().all(|i| super::resource::as_int(i).is_some()));
            if !ids_ok {
                return Some(format!("{key} must be a list of ids."));
            }
        }
    }
    None
}

#[async_trait]
impl ResourceRules for UserRules {
    async fn prepare(
        &self,
        state: &AppState,
        draft: &mut Draft<'_>,
        invalid: &mut Invalid,
    ) -> Result<(), ApiError> {
        if let Some(SqlValue::Text(login)) = draft
            .values
            .iter()
            .find(|(c, _)| *c == "login")
            .map(|(_, v)| v.clone())
        {
            let login = login.trim().to_string();
            if login.is_empty() || login.len() > 100 || login.chars().any(char::is_control) {
                invalid.add("login", "login must be 1 to 100 printable characters.");
            }
            let taken = state
                .store
                .object_rows(
                    &tables::USERS,
                    &RowFilter::all().equal("login", SqlValue::Text(login.clone())),
                )
                .await?
                .iter()
                .any(|row| row.get("id").and_then(Value::as_i64) != draft.id);
            if taken {
                invalid.add("login", format!("the login {login} is already used."));
            }
            draft.set("login", SqlValue::Text(login));
        }
        let password = draft
            .input
            .get("new_password")
            .and_then(Value::as_str)
            .unwrap_or("");
        let confirmation = draft
            .input
            .get("new_password_confirmation")
            .and_then(Value::as_str)
            .unwrap_or("");
        if draft.is_create() && password.is_empty() {
            invalid.add("new_password", "new_password is required.");
        }
        if !password.is_empty() {
            if password.len() < 8 {
                invalid.add(
                    "new_password",
                    "new_password must be at least 8 characters long.",
                );
            } else if password != confirmation {
                invalid.add(
                    "new_password_confirmation",
                    "new_password_confirmation does not match new_password.",
                );
            } else {
                draft.set("password_hash", SqlValue::Text(hash_password(password)));
            }
        }
        if let Value::String(text) = draft.effective("access")
            && let Ok(Value::Object(access)) = serde_json::from_str::<Value>(&text)
            && let Some(problem) = access_problem(&access)
        {
            invalid.add("access_data", problem);
        }
        if draft.is_create() && !draft.has("access") {
            let defaults: Map<String, Value> = ACCESS_RESOURCES
                .iter()
                .map(|r| (format!("{r}_access_type"), json!("read_only")))
                .collect();
            draft.set(
                "access",
                SqlValue::Text(Value::Object(defaults).to_string()),
            );
        }
        Ok(())
    }

    fn affects_routing(&self) -> bool {
        false
    }
}

/// Creates a fresh key for `user_id` (replacing its keys); returns the key, to be shown once.
async fn issue_key(state: &AppState, user_id: i64) -> Result<String, ApiError> {
    let key = random_token(40);
    // The user's keys are its child rows: one write replaces them all in one transaction.
    state
        .store
        .object_write(&ObjectWrite {
            table: &tables::USERS,
            id: Some(user_id),
            values: Vec::new(),
            children: vec![ChildRows {
                table: &tables::API_KEYS,
                parent_column: "user_id",
                rows: vec![vec![
                    ("name", SqlValue::Text("admin api".into())),
                    ("scope", SqlValue::Text("admin".into())),
                    ("key_hash", SqlValue::Text(crate::secrets::sha256_hex(&key))),
                    ("created_at", SqlValue::Int(unix_now())),
                ]],
            }],
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {user_id} not found")))?;
    Ok(key)
}

async fn with_key(state: &AppState, row: &Map<String, Value>, key: String) -> ApiResult {
    let mut object = present_one(state, &USERS, row).await?;
    object["api_key"] = Value::String(key);
    Ok(Json(object).into_response())
}

pub fn api() -> Api {
    let users = &USERS;
    lifecycle(users, &[Op::List, Op::Get, Op::Update])
        .route(
            Method::POST,
            "/users",
            Doc::new(
                "Users",
                "Create a user; the answer's api_key is its key, shown only here",
            )
            .request(Shape::Object(users))
            .response(Shape::Object(users)),
            post(|State(state): State<AppState>, input: Input| async move {
                let row = super::resource::create(&state, &USERS, &input).await?;
                let id = row.get("id").and_then(Value::as_i64).unwrap_or(0);
                let key = issue_key(&state, id).await?;
                with_key(&state, &row, key).await
            }),
        )
        .route(
            Method::DELETE,
            "/users/{id}",
            Doc::new("Users", "Delete a user and its keys"),
            delete(
                |State(state): State<AppState>, Path(id): Path<i64>| async move {
                    load(&state, &USERS, id).await?;
                    state.store.object_delete(&tables::USERS, id).await?;
                    Ok::<_, ApiError>(Json(json!({ "success": true })).into_response())
                },
            ),
        )
        .route(
            Method::PUT,
            "/users/{id}/access",
            Doc::new("Users", "Set a user's access_data")
                .request(Shape::Json("{access_data: {...}}"))
                .response(Shape::Object(users)),
            put(
                |State(state): State<AppState>, Path(id): Path<i64>, input: Input| async move {
                    let mut fields = Map::new();
                    let access = input
                        .fields
                        .get("access_data")
                        .cloned()
                        .unwrap_or(Value::Object(input.fields.clone()));
                    fields.insert("access_data".into(), access);
                    let row = super::resource::update(
                        &state,
                        &USERS,
                        id,
                        &Input {
                            fields,
                            form: false,
                        },
                    )
                    .await?;
                    super::resource::respond(&state, &USERS, &row).await
                },
            ),
        )
        .route(
            Method::POST,
            "/users/{id}/api_key",
            Doc::new(
                "Users",
                "Replace a user's API key; the new key is in the answer's api_key",
            )
            .response(Shape::Object(users)),
            post(
                |State(state): State<AppState>, Path(id): Path<i64>| async move {
                    let row = load(&state, &USERS, id).await?;
                    let key = issue_key(&state, id).await?;
                    with_key(&state, &row, key).await
                },
            ),
        )
}

/// Who is calling: the bootstrap key's admin, or a stored user.
#[derive(Debug, Clone)]
pub enum Principal {
    Admin,
    User {
        admin: bool,
        access: Map<String, Value>,
    },
}

/// The user of a presented key, if any (active users only).
pub async fn principal_of_key(
    state: &AppState,
    presented: &str,
) -> Result<Option<Principal>, ApiError> {
    if crate::secrets::key_matches(presented, &state.secrets.admin_api_key_hash) {
        return Ok(Some(Principal::Admin));
    }
    let hash = crate::secrets::sha256_hex(presented);
    let keys = state
        .store
        .object_rows(
            &tables::API_KEYS,
            &RowFilter::all().equal("key_hash", SqlValue::Text(hash.clone())),
        )
        .await?;
    let Some(user_id) = keys
        .iter()
        .find(|k| {
            k.get("key_hash")
                .and_then(Value::as_str)
                .is_some_and(|h| crate::secrets::key_matches(presented, h))
        })
        .and_then(|k| k.get("user_id").and_then(Value::as_i64))
    else {
        return Ok(None);
    };
    let Some(user) = state
        .store
        .object_rows(&tables::USERS, &RowFilter::id(user_id))
        .await?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    if user.get("state").and_then(Value::as_str) != Some("active") {
        return Ok(None);
    }
    let access = user
        .get("access")
        .and_then(Value::as_str)
        .and_then(|t| serde_json::from_str::<Map<String, Value>>(t).ok())
        .unwrap_or_default();
    Ok(Some(Principal::User {
        admin: user.get("type").and_then(Value::as_str) == Some("ADMIN"),
        access,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_matches_rfc_7914_vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256("passwd", "salt", 1, 64) starts with these 32 bytes.
        assert_eq!(
            pbkdf2("passwd", "salt", 1),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }

    #[test]
    fn access_data_is_checked() {
        let ok: Map<String, Value> = serde_json::from_value(
            json!({"campaigns_access_type": "read_only", "campaigns_groups": [1, "2"]}),
        )
        .unwrap();
        assert!(access_problem(&ok).is_none());
        let bad: Map<String, Value> =
            serde_json::from_value(json!({"campaigns_access_type": "all"})).unwrap();
        assert!(access_problem(&bad).is_some());
        let bad: Map<String, Value> =
            serde_json::from_value(json!({"rockets_access_type": "read_only"})).unwrap();
        assert!(access_problem(&bad).is_some());
    }
}
