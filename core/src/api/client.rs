//! Facts about the client taken from the connection and headers.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use axum::http::header::{
    ACCEPT_LANGUAGE, AsHeaderName, COOKIE, HOST, HeaderName, REFERER, USER_AGENT,
};

use super::AppState;
use crate::net::{IpNet, normalise_ip};
use crate::traffic::Visit;

// Header names as values: looking a header up by `&str` parses the name on every call.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Builds the `Visit` of an HTTP request: client IP, UA, referrer, language, query, headers,
/// host, scheme and the visitor cookie named `cookie_name`.
pub fn visit_from_request(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    query: Option<&str>,
    cookie_name: &str,
) -> Visit {
    let trusted = &state.config.server.trusted_proxies;
    let from_proxy = trusted
        .iter()
        .any(|net| net.contains(normalise_ip(peer.ip())));
    let forwarded = |name: HeaderName| {
        from_proxy
            .then(|| header_text(headers, name))
            .filter(|v| !v.is_empty())
    };
    let host = forwarded(X_FORWARDED_HOST)
        .or_else(|| Some(header_text(headers, HOST)).filter(|h| !h.is_empty()))
        .unwrap_or_else(|| state.config.server.listen.to_string());
    let scheme = forwarded(X_FORWARDED_PROTO)
        .filter(|p| p == "https")
        .unwrap_or_else(|| "http".into());
    // Forwarding headers of a trusted proxy were consumed choosing the IP; keep the rest.
    let visit_headers = headers
        .iter()
        .filter(|(name, _)| {
            !(from_proxy
                && matches!(
                    name.as_str(),
                    "x-forwarded-for" | "x-real-ip" | "forwarded" | "via"
                ))
        })
        .filter_map(|(name, value)| {
            value
                .to_str()
                .ok()
                .map(|v| (name.as_str().to_string(), v.to_string()))
        })
        .collect();
    Visit {
        ip: client_ip(peer, headers, trusted),
        user_agent: header_text(headers, USER_AGENT),
        referrer: header_text(headers, REFERER),
        language: language(headers),
        query: query
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default(),
        headers: visit_headers,
        host: host
            .chars()
            .filter(|c| !c.is_control() && !c.is_whitespace())
            .collect(),
        scheme,
        cookie: cookie(headers, cookie_name),
    }
}

/// The value of cookie `name` from the Cookie headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The visitor's IP: the peer's, unless the peer is a trusted proxy, in which case the
/// right-most X-Forwarded-For address that is not itself a trusted proxy (or X-Real-IP).
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer_ip = normalise_ip(peer.ip());
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer_ip) {
        return peer_ip;
    }
    // Right to left: the last header's last address first.
    let forwarded = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .rev()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.rsplit(','))
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .map(normalise_ip)
        .find(|ip| !is_trusted(*ip));
    if let Some(ip) = forwarded {
        return ip;
    }
    headers
        .get(X_REAL_IP)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        .map(normalise_ip)
        .unwrap_or(peer_ip)
}

/// The primary language subtag of the first Accept-Language entry (`en-US,en;q=0.9` -> `en`).
pub fn language(headers: &HeaderMap) -> String {
    headers
        .get(ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|tag| tag.split(';').next().unwrap_or("").trim())
        .and_then(|tag| tag.split(['-', '_']).next())
        .filter(|tag| {
            tag.len() <= 8 && tag.chars().all(|c| c.is_ascii_alphabetic()) && !tag.is_empty()
        })
        .map(str::to_ascii_lowercase)
        .unwrap_or_default()
}

/// A header as text, or "" when absent or not valid text.
pub fn header_text(headers: &HeaderMap, name: impl AsHeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn forwarded_headers_only_from_trusted_proxies() {
        let proxy: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let stranger: SocketAddr = "203.0.113.9:4000".parse().unwrap();
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&[("x-forwarded-for", "198.51.100.1, 203.0.113.7, 10.0.0.3")]);
        assert_eq!(client_ip(proxy, &h, &trusted).to_string(), "203.0.113.7");
        assert_eq!(client_ip(stranger, &h, &trusted).to_string(), "203.0.113.9");
        assert_eq!(client_ip(proxy, &h, &[]).to_string(), "10.0.0.5");
        let real = headers(&[("x-real-ip", "198.51.100.2")]);
        assert_eq!(
            client_ip(proxy, &real, &trusted).to_string(),
            "198.51.100.2"
        );
        // Several headers read as one list, right to left.
        let two = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", "203.0.113.8, 10.0.0.4"),
        ]);
        assert_eq!(client_ip(proxy, &two, &trusted).to_string(), "203.0.113.8");
        let trusted_last = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", "10.0.0.4"),
        ]);
        assert_eq!(
            client_ip(proxy, &trusted_last, &trusted).to_string(),
            "198.51.100.1"
        );
        let junk = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(client_ip(proxy, &junk, &trusted).to_string(), "10.0.0.5");
    }

    #[test]
    fn language_is_the_primary_subtag() {
        assert_eq!(
            language(&headers(&[("accept-language", "en-US,en;q=0.9")])),
            "en"
        );
        assert_eq!(language(&headers(&[("accept-language", "DE")])), "de");
        assert_eq!(language(&headers(&[("accept-language", "*")])), "");
        assert_eq!(language(&headers(&[])), "");
    }
}
