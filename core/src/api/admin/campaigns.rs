//! Campaigns: the objects a tracking link (`/ALIAS`) and a Click API token resolve to.

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::get;
use serde_json::{Map, Value};

use super::input::Invalid;
use super::ops::{Api, Doc, Shape};
use super::resource::{
    ApiError, Draft, Field, Kind, Op, Resource, ResourceRules, lifecycle, list, load,
};
use crate::api::AppState;
use crate::ids::random_token;
use crate::store::objects::{RowFilter, SqlValue};
use crate::store::tables;

pub static CAMPAIGNS: Resource = Resource {
    path: "campaigns",
    noun: "campaign",
    tag: "Campaigns",
    table: &tables::CAMPAIGNS,
    fields: &[
        Field::new("alias", Kind::Text).required(),
        Field::new("name", Kind::Text).required(),
        Field::new("type", Kind::Enum(&["position", "weight"])),
        Field::new("cookies_ttl", Kind::Int),
        Field::new("position", Kind::Int),
        Field::new("state", Kind::Enum(&["active", "disabled", "deleted"])),
        Field::new("cost_type", Kind::Enum(&["CPC", "CPUC", "CPM"])),
        Field::new("cost_value", Kind::Money).column("cost_value_micros"),
        Field::new("cost_currency", Kind::Text),
        Field::new("cost_auto", Kind::Bool),
        Field::new("group_id", Kind::Ref(&tables::GROUPS)),
        Field::new("bind_visitors", Kind::OptEnum(&["s", "sl", "slo"])),
        Field::new("traffic_source_id", Kind::Ref(&tables::TRAFFIC_SOURCES)),
        Field::new("token", Kind::Text),
        Field::new("domain_id", Kind::Ref(&tables::DOMAINS)),
        Field::new("parameters", Kind::Object),
        Field::new("uniqueness_method", Kind::Enum(&["ip", "ip_ua"])),
        Field::new("uniqueness_use_cookies", Kind::Bool),
        Field::new("traffic_loss", Kind::Real),
        Field::new("postbacks", Kind::Json),
        Field::new("notes", Kind::Text),
        Field::new("file_source", Kind::OptText).read_only(),
        Field::new("created_at", Kind::Time).read_only(),
        Field::new("updated_at", Kind::Time).read_only(),
    ],
    rules: &CampaignRules,
};

struct CampaignRules;

/// Aliases are one path segment of these characters.
fn alias_problem(alias: &str, reserved: &[String]) -> Option<String> {
    if alias.is_empty() || alias.len() > 100 {
        return Some("alias must be 1 to 100 characters long.".into());
    }
    if !alias
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Some("alias may hold only letters, digits, '-', '_' and '.'.".into());
    }
    if alias.starts_with('.') || alias.starts_with('_') {
        return Some("alias must not start with '.' or '_'.".into());
    }
    let lower = alias.to_ascii_lowercase();
    if reserved.contains(&lower) {
        return Some(format!(
            "alias {alias} is a path the tracker itself serves."
        ));
    }
    None
}

/// First path segments of the tracker's own routes and the REST clicks base path.
fn reserved_aliases(state: &AppState) -> Vec<String> {
    crate::config::reserved_aliases(Some(&state.config.dialects.rest_clicks_base_path))
}

/// Checks an S2S postback list: `[{url, method GET|POST, statuses[]}]`.
fn postbacks_problem(raw: &Value) -> Option<String> {
    let Value::Array(items) = raw else {
        return Some("postbacks must be a list of {url, method, statuses}.".into());
    };
    for (i, item) in items.iter().enumerate() {
        let Some(url) = item.get("url").and_then(Value::as_str) else {
            return Some(format!("postbacks[{i}].url is required."));
        };
        if let Err(message) = super::resource::check_url(url) {
            return Some(format!("postbacks[{i}].url {message}"));
        }
        let method = item.get("method").and_then(Value::as_str).unwrap_or("GET");
        if !matches!(method.to_ascii_uppercase().as_str(), "GET" | "POST") {
            return Some(format!("postbacks[{i}].method must be GET or POST."));
        }
    }
    None
}

#[async_trait]
impl ResourceRules for CampaignRules {
    async fn prepare(
        &self,
        state: &AppState,
        draft: &mut Draft<'_>,
        invalid: &mut Invalid,
    ) -> Result<(), ApiError> {
        let others = state
            .store
            .object_rows(&tables::CAMPAIGNS, &RowFilter::all())
            .await?;
        let others: Vec<&Map<String, Value>> = others
            .iter()
            .filter(|row| row.get("id").and_then(Value::as_i64) != draft.id)
            .collect();
        if let Some(alias) = draft
            .values
            .iter()
            .find(|(c, _)| *c == "alias")
            .and_then(|(_, v)| match v {
                SqlValue::Text(t) => Some(t.trim().to_string()),
                _ => None,
            })
        {
            if let Some(problem) = alias_problem(&alias, &reserved_aliases(state)) {
                invalid.add("alias", problem);
            } else if others.iter().any(|row| {
                row.get("alias")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a.eq_ignore_ascii_case(&alias))
            }) {
                invalid.add(
                    "alias",
                    format!("alias {alias} is already used by another campaign."),
                );
            }
            draft.set("alias", SqlValue::Text(alias));
        }
        match draft
            .values
            .iter()
            .find(|(c, _)| *c == "token")
            .map(|(_, v)| v.clone())
        {
            Some(SqlValue::Text(token))
                if !token.trim().is_empty()
                    && others.iter().any(|row| {
                        row.get("token").and_then(Value::as_str) == Some(token.trim())
                    }) =>
            {
                invalid.add("token", "token is already used by another campaign.");
            }
            Some(SqlValue::Text(token)) if !token.trim().is_empty() => {}
            _ if draft.is_create() => draft.set("token", SqlValue::Text(random_token(32))),
            Some(_) => {
                // An empty token on update keeps the stored one.
                draft.values.retain(|(c, _)| *c != "token");
            }
            None => {}
        }
        if let Some(ttl) = draft.effective("cookies_ttl").as_i64()
            && !(0..=8760).contains(&ttl)
        {
            invalid.add("cookies_ttl", "cookies_ttl must be hours from 0 to 8760.");
        }
        if let Some(loss) = draft.effective("traffic_loss").as_f64()
            && !(0.0..=100.0).contains(&loss)
        {
            invalid.add(
                "traffic_loss",
                "traffic_loss must be a percentage from 0 to 100.",
            );
        }
        if let Some(raw) = draft.input.get("postbacks")
            && let Some(problem) = postbacks_problem(raw)
        {
            invalid.add("postbacks", problem);
        }
        if draft.is_create() && !draft.has("position") {
            draft.set("position", SqlValue::Int(9999));
        }
        Ok(())
    }

    fn clone_values(&self, row: &Map<String, Value>) -> Vec<(&'static str, SqlValue)> {
        let name = row.get("name").and_then(Value::as_str).unwrap_or("");
        vec![
            ("name", SqlValue::Text(format!("{name} Copy"))),
            ("alias", SqlValue::Text(random_token(8))),
            ("token", SqlValue::Text(random_token(32))),
        ]
    }

    /// The copy gets the original's streams (Keitaro's clone copies them).
    async fn after_clone(
        &self,
        state: &AppState,
        original: i64,
        copy: i64,
    ) -> Result<(), ApiError> {
        super::stream_copy::copy_streams(state, original, copy).await
    }
}

pub fn api() -> Api {
    lifecycle(
        &CAMPAIGNS,
        &[
            Op::List,
            Op::Create,
            Op::Deleted,
            Op::Get,
            Op::Update,
            Op::Archive,
            Op::Clone,
            Op::EnableDisable,
            Op::Restore,
        ],
    )
    .route(
        Method::GET,
        "/campaigns/{id}/streams",
        Doc::new("Streams", "List a campaign's streams (not archived)")
            .response(Shape::List(&super::streams::STREAMS)),
        get(
            |State(state): State<AppState>, Path(id): Path<i64>| async move {
                load(&state, &CAMPAIGNS, id).await?;
                list(
                    &state,
                    &super::streams::STREAMS,
                    RowFilter::live().equal("campaign_id", SqlValue::Int(id)),
                    // Access was decided on the campaign itself.
                    None,
                )
                .await
            },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases() {
        let reserved = vec!["admin_api".to_string(), "api.php".to_string()];
        assert!(alias_problem("summer-sale_1", &reserved).is_none());
        assert!(alias_problem("", &reserved).is_some());
        assert!(alias_problem("a/b", &reserved).is_some());
        assert!(alias_problem("a b", &reserved).is_some());
        assert!(alias_problem("Admin_API", &reserved).is_some());
        assert!(alias_problem("api.php", &reserved).is_some());
        assert!(alias_problem("..", &reserved).is_some());
        assert!(alias_problem("_lp", &reserved).is_some());
    }

    #[test]
    fn postbacks() {
        assert!(postbacks_problem(&serde_json::json!([])).is_none());
        assert!(
            postbacks_problem(
                &serde_json::json!([{"url": "https://a.example/pb?s={subid}", "method": "POST"}])
            )
            .is_none()
        );
        assert!(postbacks_problem(&serde_json::json!([{"url": "ftp://x"}])).is_some());
        assert!(postbacks_problem(&serde_json::json!([{"method": "GET"}])).is_some());
        assert!(postbacks_problem(&serde_json::json!({"url": "x"})).is_some());
    }
}
