//! Admin API input as real clients send it: a JSON body (with or without a Content-Type), a
//! form-encoded body (PHP-style `a[b]=c` and `a[]=x` nesting understood), and the query string;
//! all merged into one JSON object (body over query). Field checks accumulate into [`Invalid`],
//! answered as Keitaro's 406 `{field: [messages]}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// The request's fields, whatever encoding they came in.
#[derive(Debug, Default)]
pub struct Input {
    pub fields: Map<String, Value>,
    /// True when the fields came form-encoded (every value a string).
    pub form: bool,
}

impl<S: Send + Sync> FromRequest<S> for Input {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let input = read(request, state).await?;
        // PostgreSQL cannot store NUL in text, and no field has a use for one.
        if let Some(field) = field_with_nul(&input.fields) {
            return Err(
                Invalid::one(&field, format!("{field} must not contain NUL characters."))
                    .into_response(),
            );
        }
        Ok(input)
    }
}

/// The first top-level field whose name or value (at any depth) holds a NUL character.
fn field_with_nul(fields: &Map<String, Value>) -> Option<String> {
    fn holds_nul(value: &Value) -> bool {
        match value {
            Value::String(text) => text.contains('\0'),
            Value::Array(items) => items.iter().any(holds_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
            _ => false,
        }
    }
    fields
        .iter()
        .find(|(name, value)| name.contains('\0') || holds_nul(value))
        .map(|(name, _)| name.replace('\0', ""))
}

/// Reads the query and the body into one object.
async fn read<S: Send + Sync>(request: Request, state: &S) -> Result<Input, Response> {
    let mut fields = Map::new();
    if let Some(query) = request.uri().query() {
        merge_pairs(&mut fields, url::form_urlencoded::parse(query.as_bytes()));
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let method = request.method().clone();
    let body = Bytes::from_request(request, state)
        .await
        .map_err(IntoResponse::into_response)?;
    let text = body.trim_ascii();
    if text.is_empty() {
        return Ok(Input {
            fields,
            form: false,
        });
    }
    // A JSON body is read as JSON whatever its label: PHP clients post `json_encode($params)`
    // through curl's CURLOPT_POSTFIELDS, which labels it a form (seed 002's own examples).
    let looks_json = matches!(text.first(), Some(b'{' | b'['));
    let parsed = looks_json.then(|| serde_json::from_slice::<Value>(text));
    if is_form && !matches!(parsed, Some(Ok(Value::Object(_) | Value::Array(_)))) {
        merge_pairs(&mut fields, url::form_urlencoded::parse(text));
        return Ok(Input { fields, form: true });
    }
    if let Some(parsed) = parsed {
        match parsed {
            Ok(Value::Object(body)) => {
                fields.extend(body);
                return Ok(Input {
                    fields,
                    form: false,
                });
            }
            Ok(Value::Array(items)) => {
                // `PUT botlist`-style bodies and list payloads: kept under `items`.
                fields.insert("items".into(), Value::Array(items));
                return Ok(Input {
                    fields,
                    form: false,
                });
            }
            Ok(_) => return Err(bad_request("the JSON body must be an object".into())),
            Err(error) => {
                return Err(bad_request(format!("the body is not valid JSON: {error}")));
            }
        }
    }
    if method == Method::GET {
        return Ok(Input {
            fields,
            form: false,
        });
    }
    merge_pairs(&mut fields, url::form_urlencoded::parse(text));
    Ok(Input { fields, form: true })
}

/// Adds form pairs to `fields`, building nested objects and arrays from PHP-style keys
/// (`filters[0][name]=ip`, `country[]=US`). A repeated plain key becomes an array.
pub fn merge_pairs<'a>(
    fields: &mut Map<String, Value>,
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) {
    for (key, value) in pairs {
        let (head, path) = split_key(&key);
        if head.is_empty() {
            continue;
        }
        let value = Value::String(value.into_owned());
        if path.is_empty() {
            match fields.get_mut(head) {
                Some(Value::Array(items)) => items.push(value),
                Some(existing) => {
                    let first = existing.take();
                    *existing = Value::Array(vec![first, value]);
                }
                None => {
                    fields.insert(head.to_string(), value);
                }
            }
            continue;
        }
        let slot = fields.entry(head.to_string()).or_insert(Value::Null);
        insert_path(slot, &path, value);
    }
}

/// `a[b][]` -> ("a", ["b", ""]).
fn split_key(key: &str) -> (&str, Vec<&str>) {
    let Some(open) = key.find('[') else {
        return (key, Vec::new());
    };
    let head = &key[..open];
    let mut path = Vec::new();
    let mut rest = &key[open..];
    while let Some(stripped) = rest.strip_prefix('[') {
        let Some(close) = stripped.find(']') else {
            break;
        };
        path.push(&stripped[..close]);
        rest = &stripped[close + 1..];
    }
    (head, path)
}

/// Nesting depth past which form keys are ignored (a hostile key cannot recurse deeply).
const MAX_FORM_DEPTH: usize = 6;

fn insert_path(slot: &mut Value, path: &[&str], value: Value) {
    if path.len() > MAX_FORM_DEPTH {
        return;
    }
    let Some((first, rest)) = path.split_first() else {
        *slot = value;
        return;
    };
    let is_index = first.is_empty() || first.parse::<usize>().is_ok();
    if is_index {
        if !slot.is_array() {
            *slot = Value::Array(Vec::new());
        }
        let Value::Array(items) = slot else { return };
        let index = if first.is_empty() {
            // `a[]=x`, and `a[][k]=v` starting a new element.
            items.len()
        } else {
            first
                .parse::<usize>()
                .unwrap_or(items.len())
                .min(items.len())
        };
        if index == items.len() {
            // Ids in forms are small; an absurd index appends instead of allocating.
            items.push(Value::Null);
        }
        insert_path(&mut items[index], rest, value);
    } else {
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(map) = slot else { return };
        let child = map.entry(first.to_string()).or_insert(Value::Null);
        insert_path(child, rest, value);
    }
}

/// Per-field validation messages: Keitaro's 406 `{"field": ["message", …]}`.
#[derive(Debug, Default)]
pub struct Invalid {
    pub fields: Map<String, Value>,
}

impl Invalid {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let entry = self
            .fields
            .entry(field.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(messages) = entry {
            messages.push(Value::String(message.into()));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn one(field: &str, message: impl Into<String>) -> Self {
        let mut invalid = Invalid::default();
        invalid.add(field, message);
        invalid
    }

    /// `Ok(())` when nothing was added.
    pub fn check(self) -> Result<(), Invalid> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        (StatusCode::NOT_ACCEPTABLE, Json(Value::Object(self.fields))).into_response()
    }
}

/// A 400 `{"error": message}` (for handlers that answer a `Response` directly).
pub fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Map<String, Value> {
        let mut fields = Map::new();
        merge_pairs(&mut fields, url::form_urlencoded::parse(body.as_bytes()));
        fields
    }

    #[test]
    fn php_style_nesting() {
        let fields = parse(
            "name=x&filters[0][name]=country&filters[0][payload][]=US&filters[0][payload][]=DE&tags[]=a&tags[]=b",
        );
        assert_eq!(
            Value::Object(fields),
            serde_json::json!({
                "name": "x",
                "filters": [{"name": "country", "payload": ["US", "DE"]}],
                "tags": ["a", "b"],
            })
        );
    }

    #[test]
    fn reads_report_bracket_forms() {
        let fields = parse(
            "grouping[]=country&grouping[]=day&range[from]=2026-11-01&filters[0][name]=ip&filters[0][operator]=EQUALS&limit=5",
        );
        assert_eq!(
            Value::Object(fields),
            serde_json::json!({
                "grouping": ["country", "day"],
                "range": {"from": "2026-11-01"},
                "filters": [{"name": "ip", "operator": "EQUALS"}],
                "limit": "5"
            })
        );
    }

    async fn extract(query: Option<&str>, body: &'static str) -> Result<Input, Response> {
        let uri = match query {
            Some(q) => format!("/x?{q}"),
            None => "/x".to_string(),
        };
        let request = axum::http::Request::post(uri)
            .body(axum::body::Body::from(body))
            .unwrap();
        Input::from_request(request, &()).await
    }

    #[tokio::test]
    async fn json_with_or_without_content_type() {
        let input = extract(None, r#"{"a": 1}"#).await.unwrap();
        assert_eq!(Value::Object(input.fields), serde_json::json!({"a": 1}));
        let input = extract(None, "  ").await.unwrap();
        assert_eq!(Value::Object(input.fields), serde_json::json!({}));
        let refused = extract(None, "{nope").await.unwrap_err();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(refused.into_body(), 1024)
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&body).contains("body"));
        let input = extract(Some("limit=3"), "").await.unwrap();
        assert_eq!(
            Value::Object(input.fields),
            serde_json::json!({"limit": "3"})
        );
    }

    async fn extract_labelled_form(body: &'static str) -> Input {
        let request = axum::http::Request::post("/x")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(body))
            .unwrap();
        Input::from_request(request, &()).await.unwrap()
    }

    /// PHP's `curl_setopt($ch, CURLOPT_POSTFIELDS, json_encode($params))` labels JSON a form.
    #[tokio::test]
    async fn json_labelled_as_a_form_is_json() {
        let input =
            extract_labelled_form(r#"{"grouping": ["country"], "range": {"interval": "today"}}"#)
                .await;
        assert!(!input.form);
        assert_eq!(
            Value::Object(input.fields),
            serde_json::json!({"grouping": ["country"], "range": {"interval": "today"}})
        );
        // A real form stays a form, even one whose first byte is a brace.
        let input = extract_labelled_form("name=a&grouping[]=country").await;
        assert!(input.form);
        assert_eq!(input.fields["grouping"], serde_json::json!(["country"]));
        let input = extract_labelled_form("{odd=1").await;
        assert!(input.form);
        assert_eq!(input.fields["{odd"], serde_json::json!("1"));
    }

    #[test]
    fn repeated_plain_keys_become_arrays_and_junk_is_harmless() {
        let fields = parse("offers=offer_id&offers=share&a[999999999]=x&[x]=y&b[c=d");
        assert_eq!(fields["offers"], serde_json::json!(["offer_id", "share"]));
        assert_eq!(fields["a"], serde_json::json!(["x"]));
        assert!(!fields.contains_key(""));
        let deep = format!("z{}=1", "[a]".repeat(50));
        assert_eq!(parse(&deep)["z"], Value::Null);
    }
}
