//! URL templates with Keitaro-style macros: `{name}`, `{name:args}`, and `{_name}` for a raw
//! (not URL-encoded) value. A template is parsed once, when the routing snapshot is built,
//! and expanded per click without re-parsing.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters left as they are when a macro value is URL-encoded (RFC 3986 "unreserved").
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Supplies macro values while a template expands.
pub trait MacroSource {
    /// The value of macro `name` (lower-case, without the `_` raw marker) with its `args`
    /// (the text after `:`, or ""). `None` for an unknown macro, which expands to nothing.
    fn value(&self, name: &str, args: &str) -> Option<Cow<'_, str>>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Macro {
        name: String,
        args: String,
        raw: bool,
    },
}

/// How macro values are escaped when they expand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// URL-encoded (RFC 3986 unreserved characters stay): URL templates.
    Url,
    /// HTML-escaped (`& < > " '`): page content.
    Html,
    /// Verbatim: plain-text content.
    Verbatim,
}

/// A parsed URL template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    escape: Escape,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Template {
    /// Splits `text` into literals and macros. Braces that do not enclose a macro name
    /// (`{}`, `{ x }`, an unclosed `{`) stay literal text.
    pub fn parse(text: &str) -> Result<Template, String> {
        if text.contains(['\r', '\n', '\0']) {
            return Err("a URL may not contain CR, LF or NUL characters".into());
        }
        Ok(Template::parse_content(text, Escape::Url))
    }

    /// Like [`Template::parse`] for page content (HTML, text): line breaks allowed, values
    /// escaped as `escape` says.
    pub fn parse_content(text: &str, escape: Escape) -> Template {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                literal.push_str(&rest[open..]);
                rest = "";
                break;
            };
            let inner = &after[..close];
            let (name, args) = inner.split_once(':').unwrap_or((inner, ""));
            if name.is_empty() || !name.chars().all(is_name_char) {
                literal.push('{');
                rest = after;
                continue;
            }
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            let raw = name.starts_with('_') && name.len() > 1;
            let name = if raw { &name[1..] } else { name };
            parts.push(Part::Macro {
                name: name.to_ascii_lowercase(),
                args: args.to_string(),
                raw,
            });
            rest = &after[close + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Template { parts, escape }
    }

    /// Checks that the template, with every macro empty, is an absolute http(s) URL with a
    /// host: what a redirect target must be. A template that is one macro (`{destination}`)
    /// cannot be checked here and passes; its value is checked when it expands.
    pub fn check_target(&self) -> Result<(), String> {
        if matches!(self.parts.first(), Some(Part::Macro { .. })) {
            return Ok(());
        }
        let skeleton = self.expand(&NoMacros);
        check_http_url(&skeleton)
    }

    /// Expands every macro from `source`, escaped by the template's [`Escape`], or raw for
    /// `{_name}`. In URL templates raw values lose control characters, so the result is always a
    /// safe header value.
    pub fn expand(&self, source: &dyn MacroSource) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Macro { name, args, raw } => {
                    if let Some(value) = source.value(name, args) {
                        match (self.escape, *raw) {
                            (Escape::Url, true) => {
                                out.extend(value.chars().filter(|c| !c.is_control()))
                            }
                            (Escape::Url, false) => {
                                out.extend(utf8_percent_encode(&value, COMPONENT))
                            }
                            (Escape::Html, false) => html_escape_into(&value, &mut out),
                            (Escape::Html, true) | (Escape::Verbatim, _) => out.push_str(&value),
                        }
                    }
                }
            }
        }
        out
    }

    /// The names of the macros used, in order (for validation and documentation).
    pub fn macro_names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Macro { name, .. } => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }
}

/// Appends `text` with `& < > " '` escaped.
pub fn html_escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// A macro source that knows no macros (every macro expands to nothing).
pub struct NoMacroValues;

impl MacroSource for NoMacroValues {
    fn value(&self, _: &str, _: &str) -> Option<Cow<'_, str>> {
        None
    }
}

struct NoMacros;

impl MacroSource for NoMacros {
    fn value(&self, _: &str, _: &str) -> Option<Cow<'_, str>> {
        None
    }
}

/// An absolute `http`/`https` URL with a host and no control characters.
pub fn check_http_url(text: &str) -> Result<(), String> {
    if text.chars().any(|c| c.is_control()) {
        return Err("a URL may not contain control characters".into());
    }
    if plainly_http_url(text) {
        return Ok(());
    }
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{text}` must use http or https, not `{}`",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` has no host"));
    }
    Ok(())
}

/// The common case of [`check_http_url`] decided without parsing (every redirect of the click
/// path is checked): `http(s)://` in lower case, then a host of ASCII letters, digits, `-` and
/// `.` whose labels are non-empty, at most 63 long and not `xn--` (punycode is validated by a
/// parse), whose last label is not a number (that host would be read as IPv4), an optional
/// port of at most 65535, and then `/`, `?`, `#` or the end. `true` only for text the URL
/// parser accepts with that scheme and a non-empty host (a property test holds it to that);
/// anything else goes to the parser.
fn plainly_http_url(text: &str) -> bool {
    let Some(rest) = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
    else {
        return false;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65_535)
    });
    let host = host.strip_suffix('.').unwrap_or(host);
    if !port_ok || host.is_empty() || host.len() > 253 {
        return false;
    }
    let mut last = "";
    for label in host.split('.') {
        let plain = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("xn--"));
        if !plain {
            return false;
        }
        last = label;
    }
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || last.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x"));
    !numeric
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    struct Map(HashMap<String, String>);

    impl MacroSource for Map {
        fn value(&self, name: &str, _: &str) -> Option<Cow<'_, str>> {
            self.0.get(name).map(|v| Cow::Borrowed(v.as_str()))
        }
    }

    fn map(pairs: &[(&str, &str)]) -> Map {
        Map(pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    #[test]
    fn expands_encoded_and_raw() {
        let t =
            Template::parse("https://o.test/a?s={subid}&k={keyword}&r={_raw}&u={unknown}").unwrap();
        let out = t.expand(&map(&[
            ("subid", "abc"),
            ("keyword", "a b&c"),
            ("raw", "x/y?z"),
        ]));
        assert_eq!(out, "https://o.test/a?s=abc&k=a%20b%26c&r=x/y?z&u=");
    }

    #[test]
    fn stray_braces_stay_literal() {
        let t = Template::parse("https://o.test/{}/{ x }/{a-b}/{open").unwrap();
        assert_eq!(t.expand(&map(&[])), "https://o.test/{}/{ x }/{a-b}/{open");
        assert_eq!(t.macro_names().count(), 0);
    }

    #[test]
    fn args_and_case() {
        let t = Template::parse("https://o.test/?d={DATE:Y-m-d}").unwrap();
        assert_eq!(t.macro_names().collect::<Vec<_>>(), ["date"]);
    }

    #[test]
    fn targets_must_be_http() {
        assert!(
            Template::parse("https://o.test/?s={subid}")
                .unwrap()
                .check_target()
                .is_ok()
        );
        assert!(
            Template::parse("{destination}")
                .unwrap()
                .check_target()
                .is_ok()
        );
        for bad in [
            "javascript:alert(1)",
            "ftp://x.test/",
            "/relative",
            "https://",
        ] {
            assert!(
                Template::parse(bad).unwrap().check_target().is_err(),
                "{bad}"
            );
        }
        assert!(Template::parse("https://x.test/\r\nSet-Cookie: a").is_err());
    }

    #[test]
    fn common_redirects_take_the_fast_path_and_odd_ones_the_parser() {
        for plain in [
            "https://offer.example/lp?subid=abc&c=GB",
            "http://a-b.example:8080",
            "https://example.com.#top",
        ] {
            assert!(plainly_http_url(plain), "{plain}");
            assert!(check_http_url(plain).is_ok());
        }
        for (odd, valid) in [
            ("http://999.1.1.1/", false),
            ("http://1.2.3.4/", true),
            ("http://0x7f/", true),
            ("http://xn--nxasmq6b.example/", true),
            ("http://a..b/", true),
            ("http://user@host.example/", true),
            ("HTTP://host.example/", true),
            ("http://host.example:99999/", false),
            ("http://[::1]/", true),
            ("http:///path", true),
        ] {
            assert!(!plainly_http_url(odd), "{odd}");
            assert_eq!(check_http_url(odd).is_ok(), valid, "{odd}");
        }
    }

    proptest! {
        /// What the fast path accepts, the URL parser accepts with the same scheme and a host.
        #[test]
        fn the_fast_path_only_accepts_what_the_parser_does(
            text in "(https?|HTTP|ftp)://[a-zA-Z0-9.:@_\\[\\]\\\\-]{0,24}([/?#][ -~]{0,12})?",
        ) {
            if plainly_http_url(&text) {
                let url = url::Url::parse(&text);
                prop_assert!(url.is_ok(), "{text}: {url:?}");
                let url = url.unwrap();
                prop_assert!(matches!(url.scheme(), "http" | "https"));
                prop_assert!(url.host_str().is_some_and(|h| !h.is_empty()));
            }
        }
    }

    proptest! {
        /// Whatever the values, the expansion keeps the template's scheme and host and holds
        /// no CR, LF or NUL.
        #[test]
        fn expansion_keeps_scheme_and_host(value in any::<String>(), raw in any::<String>()) {
            let t = Template::parse("https://offer.test/p?a={v}&b={_r}").unwrap();
            let out = t.expand(&map(&[("v", &value), ("r", &raw)]));
            prop_assert!(!out.contains(['\r', '\n', '\0']));
            let url = url::Url::parse(&out).unwrap();
            prop_assert_eq!(url.scheme(), "https");
            prop_assert_eq!(url.host_str(), Some("offer.test"));
        }
    }
}
