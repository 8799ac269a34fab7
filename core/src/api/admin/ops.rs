//! The Admin API's operation table. Every route is registered through [`Api`], which records
//! the operation (method, path, summary, tag, request and response shapes) as it adds the axum
//! route; the OpenAPI 3 document served at `openapi.json` is generated from that record and the
//! resources' field declarations, so the document cannot drift from the routes.

use axum::Router;
use axum::http::Method;
use axum::routing::MethodRouter;
use serde_json::{Map, Value, json};

use super::schema::{Field, Kind, Resource};
use crate::api::AppState;

/// What a request or response body looks like, for the document.
#[derive(Debug, Clone)]
pub enum Shape {
    None,
    /// One object of a resource.
    Object(&'static Resource),
    /// A list of a resource's objects.
    List(&'static Resource),
    /// A free-form JSON value described in words.
    Json(&'static str),
}

/// One documented operation.
#[derive(Debug, Clone)]
pub struct Operation {
    pub method: Method,
    /// The path under `/admin_api/v1`, with `{id}`-style parameters.
    pub path: String,
    pub summary: String,
    pub tag: &'static str,
    pub request: Shape,
    pub response: Shape,
    /// Query parameters (name, required).
    pub query: Vec<(&'static str, bool)>,
}

/// Routes and their documentation, built together.
pub struct Api {
    router: Router<AppState>,
    pub operations: Vec<Operation>,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            router: Router::new(),
            operations: Vec::new(),
        }
    }
}

/// Documentation for one route.
pub struct Doc {
    pub summary: String,
    pub tag: &'static str,
    pub request: Shape,
    pub response: Shape,
    pub query: Vec<(&'static str, bool)>,
}

impl Doc {
    pub fn new(tag: &'static str, summary: impl Into<String>) -> Self {
        Doc {
            summary: summary.into(),
            tag,
            request: Shape::None,
            response: Shape::Json("A JSON value."),
            query: Vec::new(),
        }
    }

    pub fn request(mut self, shape: Shape) -> Self {
        self.request = shape;
        self
    }

    pub fn response(mut self, shape: Shape) -> Self {
        self.response = shape;
        self
    }

    pub fn query(mut self, name: &'static str, required: bool) -> Self {
        self.query.push((name, required));
        self
    }
}

impl Api {
    /// Adds `handler` for `method` at `path` and records its documentation.
    pub fn route(
        mut self,
        method: Method,
        path: &str,
        doc: Doc,
        handler: MethodRouter<AppState>,
    ) -> Self {
        self.router = self.router.route(path, handler);
        self.operations.push(Operation {
            method,
            path: path.to_string(),
            summary: doc.summary,
            tag: doc.tag,
            request: doc.request,
            response: doc.response,
            query: doc.query,
        });
        self
    }

    /// Adds routes without documenting them (aliases of documented routes).
    pub fn alias(mut self, path: &str, handler: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, handler);
        self
    }

    pub fn merge(mut self, other: Api) -> Self {
        self.router = self.router.merge(other.router);
        self.operations.extend(other.operations);
        self
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<Operation>) {
        (self.router, self.operations)
    }
}

fn field_schema(field: &Field) -> Value {
    match field.kind {
        Kind::Int => json!({ "type": "integer" }),
        Kind::Ref(table) => {
            json!({ "type": "integer", "nullable": true, "description": format!("An id of {}.", table.name) })
        }
        Kind::Real => json!({ "type": "number" }),
        Kind::Text | Kind::Url => json!({ "type": "string" }),
        Kind::OptText => json!({ "type": "string", "nullable": true }),
        Kind::Enum(values) => json!({ "type": "string", "enum": values }),
        Kind::OptEnum(values) => json!({ "type": "string", "enum": values, "nullable": true }),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::Json => json!({ "description": "Any JSON value." }),
        Kind::Object => json!({ "type": "object" }),
        Kind::TextList => json!({ "type": "array", "items": { "type": "string" } }),
        Kind::Money => {
            json!({ "type": "string", "description": "A decimal amount (a number is accepted on input)." })
        }
        Kind::Time => json!({ "type": "string", "description": "YYYY-MM-DD HH:MM:SS (UTC)." }),
    }
}

fn schema_name(resource: &Resource) -> String {
    let mut name = String::new();
    for part in resource.noun.split(' ') {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name
}

fn resource_schemas(resource: &Resource) -> (Value, Value) {
    let mut props = Map::new();
    props.insert("id".into(), json!({ "type": "integer" }));
    let mut request_props = Map::new();
    let mut required = Vec::new();
    for field in resource.fields {
        props.insert(field.name.into(), field_schema(field));
        if field.writable {
            request_props.insert(field.name.into(), field_schema(field));
            if field.required {
                required.push(field.name);
            }
        }
    }
    for (name, schema) in resource.rules.extra_schema() {
        props.insert(name.into(), schema.clone());
        request_props.insert(name.into(), schema);
    }
    (
        json!({ "type": "object", "properties": props }),
        json!({ "type": "object", "properties": request_props, "required": required }),
    )
}

fn shape_schema(shape: &Shape, request: bool) -> Option<Value> {
    match shape {
        Shape::None => None,
        Shape::Object(r) => Some(json!({
            "$ref": format!("#/components/schemas/{}{}", schema_name(r), if request { "Request" } else { "" })
        })),
        Shape::List(r) => Some(json!({
            "type": "array",
            "items": { "$ref": format!("#/components/schemas/{}", schema_name(r)) }
        })),
        Shape::Json(description) => Some(json!({ "description": description })),
    }
}

/// The OpenAPI 3.0 document of `operations`.
pub fn openapi(operations: &[Operation], version: &str) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert(
        "Error".into(),
        json!({ "type": "object", "properties": { "error": { "type": "string" } }, "required": ["error"] }),
    );
    schemas.insert(
        "ValidationErrors".into(),
        json!({
            "type": "object",
            "description": "Each invalid field with its messages.",
            "additionalProperties": { "type": "array", "items": { "type": "string" } }
        }),
    );
    for op in operations {
        for shape in [&op.request, &op.response] {
            if let Shape::Object(r) | Shape::List(r) = shape {
                let (object, request) = resource_schemas(r);
                schemas.insert(schema_name(r), object);
                schemas.insert(format!("{}Request", schema_name(r)), request);
            }
        }
        let mut parameters = Vec::new();
        for segment in op.path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let schema = if name == "id" {
                    json!({ "type": "integer" })
                } else {
                    json!({ "type": "string" })
                };
                parameters.push(
                    json!({ "name": name, "in": "path", "required": true, "schema": schema }),
                );
            }
        }
        for (name, required) in &op.query {
            parameters.push(json!({ "name": name, "in": "query", "required": required, "schema": { "type": "string" } }));
        }
        let mut responses = Map::new();
        let ok = match shape_schema(&op.response, false) {
            Some(schema) => {
                json!({ "description": "Success", "content": { "application/json": { "schema": schema } } })
            }
            None => json!({ "description": "Success" }),
        };
        responses.insert("200".into(), ok);
        let error = |description: &str| json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
        responses.insert("400".into(), error("The request is malformed."));
        responses.insert(
            "401".into(),
            error("The Api-Key header is missing or wrong."),
        );
        responses.insert("403".into(), error("The key's user may not do this."));
        if op.path.contains('{') {
            responses.insert("404".into(), error("No such object."));
        }
        if op.method != Method::GET {
            responses.insert(
                "406".into(),
                json!({ "description": "Fields are not acceptable.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ValidationErrors" } } } }),
            );
            responses.insert("409".into(), error("The change conflicts with stored state (a unique value, a file-managed object)."));
        }
        let mut operation = json!({
            "tags": [op.tag],
            "summary": op.summary,
            "operationId": operation_id(op),
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(schema) = shape_schema(&op.request, true) {
            operation["requestBody"] = json!({
                "required": false,
                "content": {
                    "application/json": { "schema": schema.clone() },
                    "application/x-www-form-urlencoded": { "schema": schema },
                }
            });
        }
        let entry = paths
            .entry(op.path.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[op.method.as_str().to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Switchyard Admin API",
            "version": version,
            "description": "Keitaro-compatible Admin API v1 of the Switchyard tracker. Every operation needs the Api-Key header."
        },
        "servers": [{ "url": "/admin_api/v1" }],
        "security": [{ "ApiKeyAuth": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "ApiKeyAuth": { "type": "apiKey", "in": "header", "name": "Api-Key" } },
            "schemas": schemas,
        }
    })
}

fn operation_id(op: &Operation) -> String {
    let mut id = op.method.as_str().to_ascii_lowercase();
    for segment in op.path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.push_str(&segment.replace(['{', '}'], "").replace('.', "_"));
    }
    id
}

/// A small page that lists the operations from the document (no external assets).
pub const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchyard Admin API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
h2{border-bottom:1px solid #ccc;margin-top:2rem}code{background:#f4f4f4;padding:0 .3em}
.m{display:inline-block;width:4.5rem;font-weight:bold}details{margin:.3rem 0}pre{background:#f8f8f8;padding:.5rem;overflow:auto}</style>
</head><body><h1>Switchyard Admin API v1</h1>
<p>Every request needs the <code>Api-Key</code> header. The machine-readable document is
<a href="openapi.json">openapi.json</a> (it needs the key too; this page asks for it).</p>
<p><label>Api-Key <input id="key" type="password"></label> <button id="load">Load</button></p>
<div id="out"></div>
<script>
document.getElementById('load').onclick = async () => {
  const out = document.getElementById('out');
  const res = await fetch('openapi.json', { headers: { 'Api-Key': document.getElementById('key').value } });
  if (!res.ok) { out.textContent = 'The document could not be loaded: HTTP ' + res.status; return; }
  const doc = await res.json();
  const byTag = {};
  for (const [path, ops] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(ops))
    (byTag[op.tags[0]] ||= []).push([method, path, op]);
  out.textContent = '';
  for (const [tag, ops] of Object.entries(byTag)) {
    const h = document.createElement('h2'); h.textContent = tag; out.appendChild(h);
    for (const [method, path, op] of ops) {
      const d = document.createElement('details'); const s = document.createElement('summary');
      const m = document.createElement('span'); m.className = 'm'; m.textContent = method.toUpperCase();
      const c = document.createElement('code'); c.textContent = path;
      s.append(m, c, ' — ' + op.summary); d.appendChild(s);
      const pre = document.createElement('pre'); pre.textContent = JSON.stringify(op, null, 2); d.appendChild(pre);
      out.appendChild(d);
    }
  }
};
</script></body></html>
"#;
