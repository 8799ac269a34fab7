//! Request bodies of the report routes: JSON (with or without a Content-Type) or a form
//! (`application/x-www-form-urlencoded`, PHP's bracket notation: `grouping[]=day`,
//! `range[from]=2026-11-01`, `filters[0][name]=country`), read into one JSON value.

use axum::http::HeaderMap;
use serde_json::{Map, Value};

/// The body as JSON: a form when the Content-Type says so, else JSON; an empty body is `{}`.
/// Query parameters (for GET) are read like a form.
pub fn read(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Result<Value, String> {
    let is_form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let mut value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else if is_form {
        form(body)
    } else {
        serde_json::from_slice(body).map_err(|e| format!("body: not valid JSON: {e}"))?
    };
    if let (Some(query), Value::Object(target)) = (query.filter(|q| !q.is_empty()), &mut value)
        && let Value::Object(from_query) = form(query.as_bytes())
    {
        for (key, item) in from_query {
            target.entry(key).or_insert(item);
        }
    }
    Ok(value)
}

/// A form body in bracket notation as a JSON object (values are strings; numbered or `[]`
/// keys become arrays), parsed as every Admin API form is (`input::merge_pairs`).
pub fn form(body: &[u8]) -> Value {
    let mut fields = Map::new();
    super::input::merge_pairs(&mut fields, url::form_urlencoded::parse(body));
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_bracket_forms() {
        let value = form(
            b"grouping[]=country&grouping[]=day&range[from]=2026-11-01&filters[0][name]=ip&filters[0][operator]=EQUALS&limit=5",
        );
        assert_eq!(
            value,
            json!({
                "grouping": ["country", "day"],
                "range": {"from": "2026-11-01"},
                "filters": [{"name": "ip", "operator": "EQUALS"}],
                "limit": "5"
            })
        );
    }

    #[test]
    fn json_with_or_without_content_type() {
        let headers = HeaderMap::new();
        assert_eq!(
            read(&headers, None, br#"{"a": 1}"#).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(read(&headers, None, b"  ").unwrap(), json!({}));
        assert!(
            read(&headers, None, b"{nope")
                .unwrap_err()
                .starts_with("body")
        );
        assert_eq!(
            read(&headers, Some("limit=3"), b"").unwrap(),
            json!({"limit": "3"})
        );
    }
}
