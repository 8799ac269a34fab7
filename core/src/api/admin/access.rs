//! What a caller may do: ADMINs (and the bootstrap key) everything; a USER what its
//! `access_data` grants per resource (see `users.rs`). Decided per request from the method and
//! path, before the handler runs. Under `to_groups_and_selected` a single object is checked
//! here and a list is filtered by its handler's query: the middleware hands the grant's
//! [`Within`] to the handler (a request extension), the handler marks its answer
//! `resource::Scoped`, and an answer
//! without that mark is refused rather than shown unfiltered.

use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::resource::{ApiError, Scoped};
use super::users::Principal;
use crate::api::AppState;
use crate::store::objects::{RowFilter, Table, Within};
use crate::store::tables;

/// The outcome of an access check.
#[derive(Debug)]
pub enum Decision {
    Allow,
    Deny(String),
    /// Allowed, but only these objects may be shown of the list the handler answers.
    FilterList(Within),
}

fn ids(access: &Map<String, Value>, key: &str) -> Vec<i64> {
    access
        .get(key)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(super::resource::as_int).collect())
        .unwrap_or_default()
}

/// The access resource and table a path's first segment belongs to.
fn resource_of(segment: &str) -> Option<(&'static str, &'static Table)> {
    Some(match segment {
        "campaigns" => ("campaigns", &tables::CAMPAIGNS),
        "offers" => ("offers", &tables::OFFERS),
        "landing_pages" => ("landings", &tables::LANDINGS),
        "traffic_sources" => ("traffic_sources", &tables::TRAFFIC_SOURCES),
        "streams" | "stream" => ("streams", &tables::STREAMS),
        "affiliate_networks" => ("affiliate_networks", &tables::AFFILIATE_NETWORKS),
        "domains" => ("domains", &tables::DOMAINS),
        _ => return None,
    })
}

/// Whether `principal` may make this request. `path` is below `/admin_api/v1`.
pub async fn decide(
    state: &AppState,
    principal: &Principal,
    method: &Method,
    path: &str,
) -> Result<Decision, ApiError> {
    let access = match principal {
        Principal::Admin | Principal::User { admin: true, .. } => return Ok(Decision::Allow),
        Principal::User { access, .. } => access,
    };
    // Decoded as the router decodes them (`/campaigns/%35` is campaign 5).
    let decoded: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let first = segments.first().copied().unwrap_or("");
    let reading = *method == Method::GET;
    let grant = |resource: &str| {
        access
            .get(&format!("{resource}_access_type"))
            .and_then(Value::as_str)
            .unwrap_or("read_only")
            .to_string()
    };
    match first {
        "stream_filters" | "streams_actions" | "stream_actions" | "stream_types"
        | "stream_schemas" | "openapi.json" => {
            return Ok(Decision::Allow);
        }
        "groups" if reading => return Ok(Decision::Allow),
        // Reports read clicks of every campaign: a USER needs full or read-only campaign access;
        // changing clicks (costs, clean) needs full access.
        "report" | "clicks" | "conversions" => {
            let campaigns = grant("campaigns");
            // Reading: report/build, report/definition, the logs; changing: labels, costs, clean.
            let writes = matches!(segments.get(1), Some(&"clean") | Some(&"update_costs"))
                || (first == "report" && segments.get(1) == Some(&"labels") && !reading);
            return Ok(match (campaigns.as_str(), writes) {
                ("full_access", _) | ("read_only", false) => Decision::Allow,
                _ => Decision::Deny(
                    "this key's user may not read or change the clicks of every campaign".into(),
                ),
            });
        }
        _ => {}
    }
    let Some((resource, table)) = resource_of(first) else {
        return Ok(Decision::Deny(format!("only ADMIN users may use /{first}")));
    };
    // `campaigns/{id}/streams` reads; `campaigns/{id}/update_costs` changes the campaign.
    let writes = !reading;
    let kind = grant(resource);
    match kind.as_str() {
        "full_access" => Ok(Decision::Allow),
        "read_only" if !writes => Ok(Decision::Allow),
        "read_only" => Ok(Decision::Deny(format!(
            "this key's user may only read {resource}"
        ))),
        _ => {
            let scope = Within {
                ids: ids(access, &format!("{resource}_selected")),
                groups: ids(access, &format!("{resource}_groups")),
            };
            match segments.get(1).and_then(|s| s.parse::<i64>().ok()) {
                Some(id) => {
                    let row = state
                        .store
                        .object_rows(table, &RowFilter::id(id))
                        .await?
                        .into_iter()
                        .next();
                    match row {
                        // A missing object is the handler's 404.
                        None => Ok(Decision::Allow),
                        Some(row) if scope.covers(&row) => Ok(Decision::Allow),
                        Some(_) => Ok(Decision::Deny(format!(
                            "{resource} {id} is outside this key's user's groups and selection"
                        ))),
                    }
                }
                None if reading => Ok(Decision::FilterList(scope)),
                None => Ok(Decision::Deny(format!(
                    "this key's user may change only selected {resource}, not create them"
                ))),
            }
        }
    }
}

/// A list answer under a scope: kept when its handler filtered it by the scope (marked
/// `resource::Scoped`) or when it is an error; any other answer is refused, never shown unfiltered.
pub fn scoped_answer(response: Response) -> Response {
    if response.extensions().get::<Scoped>().is_some() || !response.status().is_success() {
        return response;
    }
    (
        axum::http::StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({ "error": "this answer is outside this key's user's groups and selection" })),
    )
        .into_response()
}
