//! Reading filter payloads the way real clients send them (arrays, plain strings with one value
//! per line or comma, objects, null) and compiling them into matchers.

use std::net::IpAddr;

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::net::{IpNet, normalise_ip};

/// The payload's values as strings: an array's items, a string split on newlines and commas,
/// an object's `value`/`values`/`list` member, nothing for null. Blank items are dropped.
pub fn strings(payload: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect(payload, &mut out);
    out.retain(|s| !s.trim().is_empty());
    out.iter_mut().for_each(|s| *s = s.trim().to_string());
    out
}

fn collect(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push(b.to_string()),
        Value::Number(n) => out.push(n.to_string()),
        Value::String(s) => {
            // One value per line, or per comma within a line; a `/regex/` line keeps its
            // commas (`/^a{1,3}$/`).
            for line in s.split(['\n', '\r']) {
                if line.trim().starts_with('/') {
                    out.push(line.to_string());
                } else {
                    out.extend(line.split(',').map(str::to_string));
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect(item, out)),
        Value::Object(map) => {
            for key in ["value", "values", "list", "payload"] {
                if let Some(inner) = map.get(key) {
                    collect(inner, out);
                    return;
                }
            }
        }
    }
}

/// Compiles a `/pattern/flags` regex with size limits (linear-time engine).
pub fn regex(text: &str) -> Result<Option<Regex>, String> {
    let text = text.trim();
    let Some(body) = text.strip_prefix('/') else {
        return Ok(None);
    };
    let Some(end) = body.rfind('/') else {
        return Ok(None);
    };
    let (pattern, flags) = (&body[..end], &body[end + 1..]);
    if !flags.chars().all(|c| "imsxu".contains(c)) {
        return Ok(None);
    }
    RegexBuilder::new(pattern)
        .case_insensitive(flags.contains('i'))
        .multi_line(flags.contains('m'))
        .dot_matches_new_line(flags.contains('s'))
        .ignore_whitespace(flags.contains('x'))
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map(Some)
        .map_err(|e| format!("`{text}` is not a valid regular expression: {e}"))
}

enum TextPattern {
    /// Lower-cased exact value.
    Exact(String),
    /// Lower-cased glob with `*` (any run) and `?` (one character).
    Mask(String),
    Regex(Regex),
    /// `@empty`: matches an empty value.
    Empty,
}

/// Case-insensitive matching of a text against a list: exact values, masks, `/regex/`.
pub struct TextMatcher {
    patterns: Vec<TextPattern>,
}

impl TextMatcher {
    pub fn new(values: &[String]) -> Result<TextMatcher, String> {
        let mut patterns = Vec::with_capacity(values.len());
        for value in values {
            patterns.push(if let Some(re) = regex(value)? {
                TextPattern::Regex(re)
            } else if value == "@empty" {
                TextPattern::Empty
            } else if value.contains(['*', '?']) {
                TextPattern::Mask(value.to_lowercase())
            } else {
                TextPattern::Exact(value.to_lowercase())
            });
        }
        Ok(TextMatcher { patterns })
    }

    pub fn from_payload(payload: &Value) -> Result<TextMatcher, String> {
        TextMatcher::new(&strings(payload))
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn matches(&self, text: &str) -> bool {
        let mut lower: Option<String> = None;
        self.patterns.iter().any(|pattern| match pattern {
            TextPattern::Regex(re) => re.is_match(text),
            TextPattern::Empty => text.is_empty(),
            // ASCII text (nearly all) is decided without a lower-case copy.
            TextPattern::Exact(value) if text.is_ascii() => value.eq_ignore_ascii_case(text),
            TextPattern::Exact(value) => {
                *value == *lower.get_or_insert_with(|| text.to_lowercase())
            }
            TextPattern::Mask(mask) => glob(mask, lower.get_or_insert_with(|| text.to_lowercase())),
        })
    }
}

/// `*` matches any run of characters, `?` exactly one. Iterative, linear in practice.
pub fn glob(mask: &str, text: &str) -> bool {
    let (m, t): (Vec<char>, Vec<char>) = (mask.chars().collect(), text.chars().collect());
    let (mut mi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if mi < m.len() && (m[mi] == '?' || m[mi] == t[ti]) {
            mi += 1;
            ti += 1;
        } else if mi < m.len() && m[mi] == '*' {
            star = Some((mi, ti));
            mi += 1;
        } else if let Some((star_mi, star_ti)) = star {
            mi = star_mi + 1;
            ti = star_ti + 1;
            star = Some((star_mi, star_ti + 1));
        } else {
            return false;
        }
    }
    m[mi..].iter().all(|c| *c == '*')
}

enum IpPattern {
    Net(IpNet),
    Range(IpAddr, IpAddr),
    /// IPv4 by octet: each an inclusive range (`*` = 0-255).
    Octets([(u8, u8); 4]),
}

/// Matches an address against single IPs, CIDR blocks, ranges `a-b` and IPv4 masks
/// (`22.33.0-20.*`, `10.*.*.*`).
pub struct IpMatcher {
    patterns: Vec<IpPattern>,
}

impl IpMatcher {
    pub fn from_payload(payload: &Value) -> Result<IpMatcher, String> {
        let mut patterns = Vec::new();
        for value in strings(payload) {
            patterns.push(parse_ip_pattern(&value)?);
        }
        Ok(IpMatcher { patterns })
    }

    pub fn matches(&self, ip: IpAddr) -> bool {
        let ip = normalise_ip(ip);
        self.patterns.iter().any(|pattern| match pattern {
            IpPattern::Net(net) => net.contains(ip),
            IpPattern::Range(from, to) => match (ip, from, to) {
                (IpAddr::V4(ip), IpAddr::V4(a), IpAddr::V4(b)) => (*a..=*b).contains(&ip),
                (IpAddr::V6(ip), IpAddr::V6(a), IpAddr::V6(b)) => (*a..=*b).contains(&ip),
                _ => false,
            },
            IpPattern::Octets(ranges) => match ip {
                IpAddr::V4(v4) => v4
                    .octets()
                    .iter()
                    .zip(ranges)
                    .all(|(o, (lo, hi))| (*lo..=*hi).contains(o)),
                IpAddr::V6(_) => false,
            },
        })
    }
}

fn parse_ip_pattern(text: &str) -> Result<IpPattern, String> {
    if text.contains('/') || text.parse::<IpAddr>().is_ok() {
        return text.parse::<IpNet>().map(IpPattern::Net);
    }
    if let Some((a, b)) = text.split_once('-')
        && let (Ok(a), Ok(b)) = (a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>())
    {
        let (a, b) = (normalise_ip(a), normalise_ip(b));
        if a.is_ipv4() != b.is_ipv4() {
            return Err(format!("`{text}` mixes IPv4 and IPv6"));
        }
        return Ok(IpPattern::Range(a.min(b), a.max(b)));
    }
    let octets: Vec<&str> = text.split('.').collect();
    let bad = || format!("`{text}` is not an IP, CIDR block, range (a-b) or mask (22.33.0-20.*)");
    if octets.len() != 4 {
        return Err(bad());
    }
    let mut ranges = [(0u8, 255u8); 4];
    for (slot, octet) in ranges.iter_mut().zip(octets) {
        *slot = match octet.trim() {
            "*" => (0, 255),
            part => match part.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (
                        lo.parse::<u8>().map_err(|_| bad())?,
                        hi.parse::<u8>().map_err(|_| bad())?,
                    );
                    (lo.min(hi), lo.max(hi))
                }
                None => {
                    let v = part.parse::<u8>().map_err(|_| bad())?;
                    (v, v)
                }
            },
        };
    }
    Ok(IpPattern::Octets(ranges))
}

/// Version comparison values: `10`, `10.3`, `>=10`, `<9.1`, masks and regexes.
pub struct VersionMatcher {
    comparisons: Vec<(std::cmp::Ordering, bool, Vec<u64>)>,
    /// Plain numeric versions: `10` accepts `10`, `10.3`, `10.3.1`.
    prefixes: Vec<Vec<u64>>,
    text: TextMatcher,
}

fn version_parts(text: &str) -> Vec<u64> {
    text.split(['.', '_'])
        .map_while(|p| p.trim().parse::<u64>().ok())
        .collect()
}

impl VersionMatcher {
    pub fn from_payload(payload: &Value) -> Result<VersionMatcher, String> {
        let mut comparisons = Vec::new();
        let mut prefixes = Vec::new();
        let mut plain = Vec::new();
        for value in strings(payload) {
            let (op, rest) = if let Some(rest) = value.strip_prefix(">=") {
                (Some((std::cmp::Ordering::Greater, true)), rest)
            } else if let Some(rest) = value.strip_prefix("<=") {
                (Some((std::cmp::Ordering::Less, true)), rest)
            } else if let Some(rest) = value.strip_prefix('>') {
                (Some((std::cmp::Ordering::Greater, false)), rest)
            } else if let Some(rest) = value.strip_prefix('<') {
                (Some((std::cmp::Ordering::Less, false)), rest)
            } else {
                (None, value.as_str())
            };
            match op {
                Some((ordering, or_equal)) => {
                    let parts = version_parts(rest);
                    if parts.is_empty() {
                        return Err(format!(
                            "`{value}` compares with something that is not a version"
                        ));
                    }
                    comparisons.push((ordering, or_equal, parts));
                }
                None if value.chars().all(|c| c.is_ascii_digit() || c == '.') => {
                    prefixes.push(version_parts(&value));
                }
                None => plain.push(value.clone()),
            }
        }
        Ok(VersionMatcher {
            comparisons,
            prefixes,
            text: TextMatcher::new(&plain)?,
        })
    }

    pub fn matches(&self, version: &str) -> bool {
        if self.text.matches(version) {
            return true;
        }
        let actual = version_parts(version);
        if actual.is_empty() {
            return false;
        }
        if self
            .prefixes
            .iter()
            .any(|p| !p.is_empty() && actual.starts_with(p))
        {
            return true;
        }
        self.comparisons.iter().any(|(ordering, or_equal, wanted)| {
            // Compared component by component over the wanted version's length: a longer
            // actual version is cut (`10.3.1` is in the 10.3 line), a shorter one is padded
            // with zeros (`10` is 10.0, below 10.3).
            let order = (0..wanted.len())
                .map(|i| actual.get(i).copied().unwrap_or(0).cmp(&wanted[i]))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal);
            order == *ordering || (*or_equal && order == std::cmp::Ordering::Equal)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_shapes() {
        assert_eq!(strings(&json!(["US", " de ", ""])), ["US", "de"]);
        assert_eq!(strings(&json!("US,DE\nFR")), ["US", "DE", "FR"]);
        assert_eq!(strings(&json!({"value": ["a"]})), ["a"]);
        assert_eq!(strings(&json!(null)), Vec::<String>::new());
        assert_eq!(strings(&json!([1, 2])), ["1", "2"]);
        assert_eq!(strings(&json!("/a,b/i")), ["/a,b/i"]);
    }

    #[test]
    fn text_matching() {
        let m =
            TextMatcher::new(&["Chrome".into(), "fire*".into(), "/^op(era)?$/i".into()]).unwrap();
        assert!(m.matches("chrome"));
        assert!(m.matches("Firefox"));
        assert!(m.matches("OPERA"));
        assert!(!m.matches("Chromium"));
        let empty = TextMatcher::new(&["@empty".into()]).unwrap();
        assert!(empty.matches(""));
        assert!(!empty.matches("x"));
        assert!(TextMatcher::new(&["/(/".into()]).is_err());
    }

    #[test]
    fn globbing() {
        assert!(glob("*.google.*", "www.google.com"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*", ""));
        assert!(!glob("abc", "abcd"));
    }

    #[test]
    fn ip_patterns() {
        let m = IpMatcher::from_payload(&json!(
            "1.2.3.4\n10.0.0.0/8\n22.33.0-20.*\n5.5.5.1-5.5.5.9\n2001:db8::/32"
        ))
        .unwrap();
        for hit in [
            "1.2.3.4",
            "10.9.8.7",
            "22.33.20.255",
            "5.5.5.5",
            "2001:db8::1",
            "::ffff:1.2.3.4",
        ] {
            assert!(m.matches(hit.parse().unwrap()), "{hit}");
        }
        for miss in ["1.2.3.5", "22.33.21.0", "5.5.5.10", "2001:db9::1"] {
            assert!(!m.matches(miss.parse().unwrap()), "{miss}");
        }
        assert!(IpMatcher::from_payload(&json!(["1.2.3"])).is_err());
        assert!(IpMatcher::from_payload(&json!(["300.1.1.1"])).is_err());
    }

    #[test]
    fn versions() {
        let m = VersionMatcher::from_payload(&json!([">=14", "<5", "9.1"])).unwrap();
        assert!(m.matches("14.2"));
        assert!(m.matches("15"));
        assert!(m.matches("4.4.2"));
        assert!(m.matches("9.1"));
        assert!(!m.matches("13.9"));
        assert!(!m.matches(""));
    }
}
