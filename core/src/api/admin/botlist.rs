//! The bot list: IPs, CIDR blocks and `a.b.c.d-e.f.g.h` ranges, one per line, whose every visit
//! is a bot. Changes reach the click path at once (the detector's list is swapped).

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use serde_json::{Value, json};

use super::input::{Input, Invalid};
use super::ops::{Api, Doc, Shape};
use super::resource::{ApiError, ApiResult};
use crate::api::AppState;
use crate::net::IpNet;

/// The entries of `value` (newline-, comma- or space-separated), each checked.
fn entries(input: &Input) -> Result<Vec<String>, ApiError> {
    let raw = match input.fields.get("value") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        Some(_) => {
            return Err(Invalid::one(
                "value",
                "value must be text with one IP or CIDR block per line.",
            )
            .into());
        }
        None => return Err(Invalid::one("value", "value is required.").into()),
    };
    let mut out = Vec::new();
    let mut invalid = Invalid::default();
    for entry in raw.split(|c: char| c == '\n' || c == '\r' || c == ',' || c.is_whitespace()) {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        match expand(entry) {
            Some(nets) => out.extend(nets),
            None => invalid.add(
                "value",
                format!("{entry} is not an IP address, a CIDR block or an IPv4 range."),
            ),
        }
    }
    invalid.check()?;
    Ok(out)
}

/// An entry as stored networks: an IP, a CIDR block, or an IPv4 range (split into blocks).
fn expand(entry: &str) -> Option<Vec<String>> {
    if let Some((from, to)) = entry.split_once('-') {
        let from: std::net::Ipv4Addr = from.trim().parse().ok()?;
        let to: std::net::Ipv4Addr = to.trim().parse().ok()?;
        let (mut start, end) = (u32::from(from) as u64, u32::from(to) as u64);
        if start > end {
            return None;
        }
        let mut blocks = Vec::new();
        while start <= end {
            // The largest aligned block starting at `start` that stays within the range.
            let mut size = if start == 0 {
                1u64 << 32
            } else {
                1u64 << start.trailing_zeros().min(32)
            };
            while start + size - 1 > end {
                size >>= 1;
            }
            let prefix = 32 - size.trailing_zeros();
            blocks.push(format!(
                "{}/{prefix}",
                std::net::Ipv4Addr::from(start as u32)
            ));
            start += size;
            if blocks.len() > 64 {
                return None;
            }
        }
        return Some(blocks);
    }
    entry.parse::<IpNet>().ok().map(|_| vec![entry.to_string()])
}

/// Re-reads the stored list into the click path's detector.
/// The stored list as the answer shows it; after a change (`changed`), also made live on the
/// click path. A read changes nothing.
async fn answer(state: &AppState, changed: Option<u64>) -> ApiResult {
    let stored = state.store.bot_list().await?;
    if changed.is_some() {
        state
            .traffic
            .enrichment
            .bots
            .set_bot_list(crate::enrich::bot_networks(&stored));
    }
    let mut body = json!({ "value": stored.join("\n"), "count": stored.len() });
    if let Some(changed) = changed {
        body["success"] = json!(true);
        body["changed"] = json!(changed);
    }
    Ok(Json(body).into_response())
}

pub fn api() -> Api {
    const TAG: &str = "Bot list";
    let list = Shape::Json("{value: entries one per line, count}");
    Api::default()
        .route(
            Method::GET,
            "/botlist",
            Doc::new(TAG, "The bot list").response(list.clone()),
            get(|State(state): State<AppState>| async move { answer(&state, None).await }),
        )
        .route(
            Method::PUT,
            "/botlist",
            Doc::new(TAG, "Replace the bot list with `value`").response(list.clone()),
            put(|State(state): State<AppState>, input: Input| async move {
                let entries = entries(&input)?;
                let added = state.store.replace_bot_list(&entries).await?;
                answer(&state, Some(added)).await
            }),
        )
        .route(
            Method::DELETE,
            "/botlist",
            Doc::new(TAG, "Clear the bot list").response(list.clone()),
            delete(|State(state): State<AppState>| async move {
                let removed = state.store.replace_bot_list(&[]).await?;
                answer(&state, Some(removed)).await
            }),
        )
        .route(
            Method::POST,
            "/botlist/add",
            Doc::new(TAG, "Add the entries of `value`").response(list.clone()),
            post(|State(state): State<AppState>, input: Input| async move {
                let entries = entries(&input)?;
                let added = state.store.add_to_bot_list(&entries).await?;
                answer(&state, Some(added)).await
            }),
        )
        .route(
            Method::POST,
            "/botlist/exclude",
            Doc::new(TAG, "Remove the entries of `value`").response(list),
            post(|State(state): State<AppState>, input: Input| async move {
                let entries = entries(&input)?;
                let removed = state.store.remove_from_bot_list(&entries).await?;
                answer(&state, Some(removed)).await
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_become_blocks() {
        assert_eq!(expand("10.0.0.0-10.0.0.255").unwrap(), vec!["10.0.0.0/24"]);
        assert_eq!(
            expand("10.0.0.1-10.0.0.2").unwrap(),
            vec!["10.0.0.1/32", "10.0.0.2/32"]
        );
        assert_eq!(
            expand("0.0.0.0-255.255.255.255").unwrap(),
            vec!["0.0.0.0/0"]
        );
        assert!(expand("10.0.0.5-10.0.0.1").is_none());
        assert_eq!(expand("2001:db8::/32").unwrap(), vec!["2001:db8::/32"]);
        assert!(expand("example.com").is_none());
    }
}
