//! Integration settings: the AVScan key, the IMKLO URL and Facebook ad-account integrations
//! with the campaigns they are assigned to. Stored as JSON documents in the `meta` table; the
//! tracker keeps them for the clients that manage them and makes no outbound calls with them.
//! Facebook tokens are write-only: answers show them masked.

use std::sync::LazyLock;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::input::{Input, Invalid};
use super::ops::{Api, Doc, Shape};
use super::resource::{ApiError, ApiResult, as_bool, as_int, as_text};
use crate::api::AppState;
use crate::store::objects::RowFilter;
use crate::store::tables;

const FACEBOOK_KEY: &str = "integration.facebook";

/// Serialises read-modify-write of the Facebook document.
static FACEBOOK_LOCK: LazyLock<Mutex<()>> = LazyLock::new(|| Mutex::new(()));

#[derive(Debug, Default, Serialize, Deserialize)]
struct FacebookDoc {
    next_id: i64,
    items: Vec<FacebookIntegration>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FacebookIntegration {
    id: i64,
    name: String,
    ad_account_id: String,
    token: String,
    proxy_enabled: bool,
    proxy: Value,
    campaigns: Vec<i64>,
}

impl FacebookIntegration {
    fn show(&self) -> Value {
        let count = self.token.chars().count();
        let masked = if count > 4 {
            let tail: String = self.token.chars().skip(count - 4).collect();
            format!("…{tail}")
        } else {
            String::new()
        };
        json!({
            "id": self.id,
            "integration": "facebook",
            "name": self.name,
            "ad_account_id": self.ad_account_id,
            "token": masked,
            "proxy_enabled": self.proxy_enabled,
            "proxy": self.proxy,
            "last_error": "",
            "last_raw_error": "",
        })
    }

    /// Applies the fields present in `input`.
    fn apply(&mut self, input: &Input, invalid: &mut Invalid) {
        for (field, slot) in [
            ("name", &mut self.name),
            ("ad_account_id", &mut self.ad_account_id),
            ("token", &mut self.token),
        ] {
            if let Some(raw) = input.fields.get(field) {
                match as_text(raw) {
                    Some(text) => *slot = text,
                    None => invalid.add(field, format!("{field} must be a string.")),
                }
            }
        }
        if let Some(raw) = input.fields.get("proxy_enabled") {
            match as_bool(raw) {
                Some(flag) => self.proxy_enabled = flag,
                None => invalid.add("proxy_enabled", "proxy_enabled must be true or false."),
            }
        }
        if let Some(proxy) = input.fields.get("proxy") {
            if proxy.is_object() || proxy.is_null() {
                self.proxy = proxy.clone();
            } else {
                invalid.add("proxy", "proxy must be an object.");
            }
        }
    }
}

async fn load_doc(state: &AppState) -> Result<FacebookDoc, ApiError> {
    Ok(state
        .store
        .meta_get(FACEBOOK_KEY)
        .await?
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default())
}

async fn save_doc(state: &AppState, doc: &FacebookDoc) -> Result<(), ApiError> {
    let text = serde_json::to_string(doc).map_err(|e| ApiError::Internal(e.to_string()))?;
    state.store.meta_set(FACEBOOK_KEY, &text).await?;
    Ok(())
}

/// Changes one integration under the document lock and saves the document.
async fn change_integration<T>(
    state: &AppState,
    id: i64,
    change: impl FnOnce(&mut FacebookIntegration) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let _guard = FACEBOOK_LOCK.lock().await;
    let mut doc = load_doc(state).await?;
    let found = doc
        .items
        .iter_mut()
        .find(|i| i.id == id)
        .ok_or_else(|| not_found(id))?;
    let out = change(found)?;
    save_doc(state, &doc).await?;
    Ok(out)
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("facebook integration {id} not found"))
}

/// A single text setting kept under `meta` key `integration.NAME`.
async fn setting(state: &AppState, name: &'static str, input: Option<&Input>) -> ApiResult {
    let key = format!("integration.{name}");
    if let Some(input) = input {
        let Some(value) = input.fields.get(name).and_then(as_text) else {
            return Err(Invalid::one(name, format!("{name} is required.")).into());
        };
        if name == "imklo_api_url"
            && let Err(message) = super::resource::check_url(&value)
        {
            return Err(Invalid::one(name, format!("{name} {message}")).into());
        }
        state.store.meta_set(&key, &value).await?;
    }
    let value = state.store.meta_get(&key).await?.unwrap_or_default();
    Ok(Json(json!({ name: value })).into_response())
}

async fn campaign_id(state: &AppState, input: &Input) -> Result<i64, ApiError> {
    let Some(id) = input.fields.get("campaign_id").and_then(as_int) else {
        return Err(Invalid::one("campaign_id", "campaign_id is required.").into());
    };
    if state
        .store
        .object_rows(&tables::CAMPAIGNS, &RowFilter::id(id))
        .await?
        .is_empty()
    {
        return Err(Invalid::one("campaign_id", format!("campaign {id} does not exist.")).into());
    }
    Ok(id)
}

pub fn api() -> Api {
    const TAG: &str = "Integrations";
    let fb = Shape::Json("A Facebook integration (token masked).");
    Api::default()
        .route(
            Method::GET,
            "/integrations/avscan",
            Doc::new(TAG, "The AVScan key").response(Shape::Json("{avscan_key}")),
            get(|State(state): State<AppState>| async move {
                setting(&state, "avscan_key", None).await
            }),
        )
        .route(
            Method::PUT,
            "/integrations/avscan",
            Doc::new(TAG, "Set the AVScan key")
                .query("avscan_key", true)
                .response(Shape::Json("{avscan_key}")),
            put(|State(state): State<AppState>, input: Input| async move {
                setting(&state, "avscan_key", Some(&input)).await
            }),
        )
        .route(
            Method::GET,
            "/integrations/imklo",
            Doc::new(TAG, "The IMKLO URL").response(Shape::Json("{imklo_api_url}")),
            get(|State(state): State<AppState>| async move {
                setting(&state, "imklo_api_url", None).await
            }),
        )
        .route(
            Method::PUT,
            "/integrations/imklo",
            Doc::new(TAG, "Set the IMKLO URL")
                .query("imklo_api_url", true)
                .response(Shape::Json("{imklo_api_url}")),
            put(|State(state): State<AppState>, input: Input| async move {
                setting(&state, "imklo_api_url", Some(&input)).await
            }),
        )
        .route(
            Method::GET,
            "/integrations/facebook",
            Doc::new(TAG, "Facebook integrations").response(Shape::Json("{data: [integration]}")),
            get(|State(state): State<AppState>| async move {
                let doc = load_doc(&state).await?;
                let data: Vec<Value> = doc.items.iter().map(FacebookIntegration::show).collect();
                Ok::<_, ApiError>(Json(json!({ "data": data })).into_response())
            }),
        )
        .route(
            Method::POST,
            "/integrations/facebook",
            Doc::new(TAG, "Create a Facebook integration")
                .request(Shape::Json(
                    "{name, ad_account_id, token, proxy_enabled, proxy}",
                ))
                .response(fb.clone()),
            post(|State(state): State<AppState>, input: Input| async move {
                let _guard = FACEBOOK_LOCK.lock().await;
                let mut doc = load_doc(&state).await?;
                let mut integration = FacebookIntegration {
                    id: doc.next_id + 1,
                    name: String::new(),
                    ad_account_id: String::new(),
                    token: String::new(),
                    proxy_enabled: false,
                    proxy: Value::Null,
                    campaigns: Vec::new(),
                };
                let mut invalid = Invalid::default();
                integration.apply(&input, &mut invalid);
                if integration.name.trim().is_empty() {
                    invalid.add("name", "name is required.");
                }
                invalid.check()?;
                doc.next_id += 1;
                let shown = integration.show();
                doc.items.push(integration);
                save_doc(&state, &doc).await?;
                Ok::<_, ApiError>(Json(shown).into_response())
            }),
        )
        .route(
            Method::GET,
            "/integrations/facebook/{id}",
            Doc::new(TAG, "A Facebook integration").response(fb.clone()),
            get(
                |State(state): State<AppState>, Path(id): Path<i64>| async move {
                    let doc = load_doc(&state).await?;
                    let found = doc
                        .items
                        .iter()
                        .find(|i| i.id == id)
                        .ok_or_else(|| not_found(id))?;
                    Ok::<_, ApiError>(Json(found.show()).into_response())
                },
            ),
        )
        .route(
            Method::PUT,
            "/integrations/facebook/{id}",
            Doc::new(TAG, "Update a Facebook integration").response(fb.clone()),
            put(
                |State(state): State<AppState>, Path(id): Path<i64>, input: Input| async move {
                    let shown = change_integration(&state, id, |found| {
                        let mut invalid = Invalid::default();
                        found.apply(&input, &mut invalid);
                        invalid.check()?;
                        Ok(found.show())
                    })
                    .await?;
                    Ok::<_, ApiError>(Json(shown).into_response())
                },
            ),
        )
        .route(
            Method::DELETE,
            "/integrations/facebook/{id}",
            Doc::new(TAG, "Delete a Facebook integration").response(Shape::Json("{success}")),
            delete(
                |State(state): State<AppState>, Path(id): Path<i64>| async move {
                    let _guard = FACEBOOK_LOCK.lock().await;
                    let mut doc = load_doc(&state).await?;
                    let before = doc.items.len();
                    doc.items.retain(|i| i.id != id);
                    if doc.items.len() == before {
                        return Err(not_found(id));
                    }
                    save_doc(&state, &doc).await?;
                    Ok(Json(json!({ "success": true })).into_response())
                },
            ),
        )
        .route(
            Method::GET,
            "/integrations/facebook/{id}/campaign",
            Doc::new(TAG, "Campaigns assigned to a Facebook integration")
                .response(Shape::Json("[{name, value}]")),
            get(
                |State(state): State<AppState>, Path(id): Path<i64>| async move {
                    let doc = load_doc(&state).await?;
                    let found = doc
                        .items
                        .iter()
                        .find(|i| i.id == id)
                        .ok_or_else(|| not_found(id))?;
                    let campaigns = state
                        .store
                        .object_rows(
                            &tables::CAMPAIGNS,
                            &RowFilter {
                                ids: Some(found.campaigns.clone()),
                                ..RowFilter::all()
                            },
                        )
                        .await?;
                    let options: Vec<Value> = campaigns
                        .iter()
                        .map(|c| json!({ "name": c.get("name"), "value": c.get("id") }))
                        .collect();
                    Ok::<_, ApiError>(Json(options).into_response())
                },
            ),
        )
        .route(
            Method::POST,
            "/integrations/facebook/{id}/campaign",
            Doc::new(TAG, "Assign a campaign to a Facebook integration")
                .request(Shape::Json("{campaign_id}")),
            post(
                |State(state): State<AppState>, Path(id): Path<i64>, input: Input| async move {
                    let campaign = campaign_id(&state, &input).await?;
                    change_integration(&state, id, |found| {
                        if !found.campaigns.contains(&campaign) {
                            found.campaigns.push(campaign);
                        }
                        Ok(())
                    })
                    .await?;
                    Ok::<_, ApiError>(Json(json!({ "success": true })).into_response())
                },
            ),
        )
        .route(
            Method::DELETE,
            "/integrations/facebook/{id}/campaign",
            Doc::new(TAG, "Unassign a campaign from a Facebook integration")
                .request(Shape::Json("{campaign_id}")),
            delete(
                |State(state): State<AppState>, Path(id): Path<i64>, input: Input| async move {
                    let Some(campaign) = input.fields.get("campaign_id").and_then(as_int) else {
                        return Err(ApiError::from(Invalid::one(
                            "campaign_id",
                            "campaign_id is required.",
                        )));
                    };
                    change_integration(&state, id, |found| {
                        found.campaigns.retain(|c| *c != campaign);
                        Ok(())
                    })
                    .await?;
                    Ok(Json(json!({ "success": true })).into_response())
                },
            ),
        )
}
