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
/// keys become arrays).
pub fn form(body: &[u8]) -> Value {
    let mut root = Value::Object(Map::new());
    for (key, value) in url::form_urlencoded::parse(body) {
        let mut path: Vec<String> = Vec::new();
        match key.find('[') {
            Some(open) if key.ends_with(']') => {
                path.push(key[..open].to_string());
                for part in key[open + 1..key.len() - 1].split("][") {
                    path.push(part.to_string());
                }
            }
            _ => path.push(key.to_string()),
        }
        insert(&mut root, &path, Value::String(value.into_owned()));
    }
    arrays(root)
}

fn insert(node: &mut Value, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    let Value::Object(map) = node else { return };
    let key = if first.is_empty() {
        // `[]`: the next free position.
        map.len().to_string()
    } else {
        first.clone()
    };
    if rest.is_empty() {
        map.insert(key, value);
    } else {
        insert(
            map.entry(key).or_insert_with(|| Value::Object(Map::new())),
            rest,
            value,
        );
    }
}

/// Objects whose keys are 0, 1, 2 … become arrays, recursively.
fn arrays(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let numbered =
                !map.is_empty() && (0..map.len()).all(|i| map.contains_key(&i.to_string()));
            if numbered {
                let mut map = map;
                Value::Array(
                    (0..map.len())
                        .map(|i| arrays(map.remove(&i.to_string()).unwrap_or(Value::Null)))
                        .collect(),
                )
            } else {
                Value::Object(map.into_iter().map(|(k, v)| (k, arrays(v))).collect())
            }
        }
        other => other,
    }
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
