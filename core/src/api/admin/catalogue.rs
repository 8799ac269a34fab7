//! Catalogue endpoints generated from the plugin registry, so a new script or native plugin
//! appears here by itself; and the plugin listing and reload.

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::ops::{Api, Doc, Shape};
use crate::api::AppState;

pub fn api() -> Api {
    const TAG: &str = "Streams catalogue";
    Api::default()
        .route(
            Method::GET,
            "/stream_filters",
            Doc::new(TAG, "Filter kinds: built-in, scripts and native plugins")
                .response(Shape::Json("A list of filter kinds.")),
            get(stream_filters),
        )
        .route(
            Method::GET,
            "/streams_actions",
            Doc::new(TAG, "Action kinds: built-in, scripts and native plugins")
                .response(Shape::Json("A list of action kinds.")),
            get(stream_actions),
        )
        .alias("/stream_actions", get(stream_actions))
        .route(
            Method::GET,
            "/stream_types",
            Doc::new(TAG, "Stream types").response(Shape::Json("A list of stream types.")),
            get(stream_types),
        )
        .route(
            Method::GET,
            "/stream_schemas",
            Doc::new(TAG, "Stream schemas").response(Shape::Json("A list of stream schemas.")),
            get(stream_schemas),
        )
        .route(
            Method::GET,
            "/plugins",
            Doc::new(
                "Plugins",
                "Every filter, action and trigger kind with its origin and health",
            )
            .response(Shape::Json("The plugin report.")),
            get(plugins),
        )
        .route(
            Method::POST,
            "/plugins/reload",
            Doc::new("Plugins", "Reload scripts and native plugins now")
                .response(Shape::Json("{success, generation, errors}")),
            post(reload_plugins),
        )
}

/// `GET stream_filters`: Keitaro's StreamFilter shape (value, tooltip, modes, group, defaults)
/// plus the kind's origin and payload documentation.
async fn stream_filters(State(state): State<AppState>) -> Json<Value> {
    let registry = state.snapshot.registry();
    let filters: Vec<Value> = registry
        .filters()
        .map(|info| {
            json!({
                "value": info.name,
                "tooltip": info.description,
                "modes": if info.modes { json!({ "accept": "Accept", "reject": "Reject" }) } else { json!({}) },
                "group": info.group,
                "template": "",
                "header_template": "",
                "defaults": info.payload.example.to_string(),
                "payload": info.payload,
                "origin": info.origin.label(),
                "origin_source": info.origin.source(),
            })
        })
        .collect();
    Json(Value::Array(filters))
}

/// `GET streams_actions` (also `stream_actions`): Keitaro's StreamAction shape.
async fn stream_actions(State(state): State<AppState>) -> Json<Value> {
    let registry = state.snapshot.registry();
    let actions: Vec<Value> = registry
        .actions()
        .map(|info| {
            json!({
                "key": info.name,
                "name": info.name,
                "field": match info.payload.kind.as_str() { "string" if info.group == "redirect" => "url", "string" => "text", "number" => "campaign", _ => "none" },
                "type": info.group,
                "description": info.description,
                "aliases": info.aliases,
                "payload": info.payload,
                "origin": info.origin.label(),
                "origin_source": info.origin.source(),
            })
        })
        .collect();
    Json(Value::Array(actions))
}

async fn stream_types() -> Json<Value> {
    Json(json!([
        { "key": "forced", "name": "Forced", "field": null, "type": "stream_type", "description": "Checked first, by position; intercepts matching traffic." },
        { "key": "regular", "name": "Regular", "field": null, "type": "stream_type", "description": "Rotated by the campaign's type: by position, or by weight." },
        { "key": "default", "name": "Default", "field": null, "type": "stream_type", "description": "Taken when no forced or regular stream accepted the click." },
    ]))
}

async fn stream_schemas() -> Json<Value> {
    Json(json!([
        { "key": "landings", "name": "Landings and offers", "field": null, "type": "stream_schema", "description": "Sends the visitor to a landing (then an offer) or straight to an offer, by share." },
        { "key": "redirect", "name": "Redirect", "field": "url", "type": "stream_schema", "description": "Runs a redirect action to the payload URL." },
        { "key": "action", "name": "Action", "field": null, "type": "stream_schema", "description": "Runs any other action (show HTML, 404, another campaign, …)." },
    ]))
}

/// `GET plugins`: every kind with its origin, state and messages; the reload generation and
/// the last reload's errors.
async fn plugins(State(state): State<AppState>) -> Json<Value> {
    Json(serde_json::to_value(state.supervisor.report()).unwrap_or(Value::Null))
}

/// `POST plugins/reload`: reload plugin sources now.
async fn reload_plugins(State(state): State<AppState>) -> Json<Value> {
    let result = state.supervisor.reload().await;
    let report = state.supervisor.report();
    Json(json!({
        "success": result.is_ok(),
        "generation": report.generation,
        "errors": report.last_errors,
    }))
}
