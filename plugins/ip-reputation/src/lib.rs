//! An example native filter: `native:ip_reputation` matches clicks whose IP has a reputation
//! score of at least `min_score` in a list file.
//!
//! Payload: `{"list": "/etc/switchyard/bad_ips.txt", "min_score": 50}`. The list has one
//! `IP SCORE` pair a line (`203.0.113.7 80`); blank lines and `#` comments are ignored. The
//! file is read once, when the stream's filter is built (at start and on every reload), never
//! per click.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::IpAddr;

use switchyard_plugin_sdk::serde_json::Value;
use switchyard_plugin_sdk::{Click, NativeFilter, PayloadDoc, export_plugin};

/// The score at or above which an IP matches when the payload names none.
const DEFAULT_MIN_SCORE: u64 = 50;

/// A built `ip_reputation` filter: the list's scores and the threshold.
struct IpReputation {
    scores: HashMap<IpAddr, u64>,
    min_score: u64,
}

/// Reads an `IP SCORE` list. The error names the line.
fn parse_list(text: &str, path: &str) -> Result<HashMap<IpAddr, u64>, String> {
    let mut scores = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(ip), Some(score), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(format!(
                "{path}:{}: expected `IP SCORE`, got `{line}`",
                index + 1
            ));
        };
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("{path}:{}: `{ip}` is not an IP address", index + 1))?;
        let score: u64 = score.parse().map_err(|_| {
            format!(
                "{path}:{}: `{score}` is not a whole number score",
                index + 1
            )
        })?;
        scores.insert(ip.to_canonical(), score);
    }
    Ok(scores)
}

impl NativeFilter for IpReputation {
    const NAME: &'static str = "ip_reputation";
    const GROUP: &'static str = "traffic";
    const DESCRIPTION: &'static str =
        "The visitor's IP has a reputation score of at least `min_score` in a list file.";
    const PAYLOAD: PayloadDoc = PayloadDoc {
        kind: "object",
        example: r#"{"list": "/etc/switchyard/bad_ips.txt", "min_score": 50}"#,
        notes: "`list`: a file of `IP SCORE` lines (`#` comments allowed), read when the stream is built. `min_score`: default 50.",
    };

    fn build(payload: &Value) -> Result<Self, String> {
        let path = payload
            .get("list")
            .and_then(Value::as_str)
            .filter(|p| !p.trim().is_empty())
            .ok_or("the payload needs `list`: the path of an `IP SCORE` file")?;
        let min_score = match payload.get("min_score") {
            None | Some(Value::Null) => DEFAULT_MIN_SCORE,
            Some(value) => value
                .as_u64()
                .ok_or_else(|| format!("`min_score` must be a whole number ≥ 0, got {value}"))?,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the list {path}: {e}"))?;
        Ok(IpReputation {
            scores: parse_list(&text, path)?,
            min_score,
        })
    }

    fn matches(&self, click: &Click<'_>) -> Result<bool, String> {
        let Ok(ip) = click.ip().parse::<IpAddr>() else {
            return Ok(false);
        };
        Ok(self
            .scores
            .get(&ip.to_canonical())
            .is_some_and(|score| *score >= self.min_score))
    }
}

export_plugin! {
    name: "ip-reputation",
    version: env!("CARGO_PKG_VERSION"),
    filters: [IpReputation],
    actions: [],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_with_comments_and_name_bad_lines() {
        let scores =
            parse_list("# bad\n203.0.113.7 80\n\n2001:db8::1 10 # meh\n", "l.txt").unwrap();
        assert_eq!(scores[&"203.0.113.7".parse::<IpAddr>().unwrap()], 80);
        assert_eq!(scores.len(), 2);
        let error = parse_list("1.2.3.4 80\nnot-an-ip 5\n", "l.txt").unwrap_err();
        assert!(error.starts_with("l.txt:2:"), "{error}");
        assert!(parse_list("1.2.3.4\n", "l.txt").is_err());
    }
}
