//! Outbound HTTP for the `curl` and `remote` actions and for trigger checks, guarded against
//! server-side request forgery: loopback, private, link-local, shared, multicast and metadata
//! addresses are refused in every textual form (the URL parser normalises `0x7f.1`,
//! `2130706433`, `[::ffff:127.0.0.1]` …), names are resolved by a resolver that drops refused
//! addresses (so the address checked is the address connected to), every redirect hop is
//! re-checked, and bodies are capped in size and time. Networks on the configured allow-list
//! are exempt (for tests and intranets).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::net::{IpNet, normalise_ip};
use crate::template::check_http_url;

/// Why a fetch did not produce a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("`{url}` is not allowed: {reason}")]
    Blocked { url: String, reason: String },
    #[error("fetching `{url}` failed: {message}")]
    Failed { url: String, message: String },
    #[error("`{url}` answered more than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("`{url}` redirected more than {0} times", MAX_REDIRECTS)]
    TooManyRedirects { url: String },
}

const MAX_REDIRECTS: usize = 5;

/// A fetched response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// The URL that answered (after redirects).
    pub url: String,
}

/// Which addresses a fetch may reach.
#[derive(Debug, Clone, Default)]
pub struct SsrfPolicy {
    /// Networks exempt from the guard.
    pub allow: Vec<IpNet>,
}

impl SsrfPolicy {
    /// `Err(reason)` when `ip` must not be reached.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        let ip = normalise_ip(ip);
        if self.allow.iter().any(|net| net.contains(ip)) {
            return Ok(());
        }
        match blocked_reason(ip) {
            Some(reason) => Err(format!("{ip} is {reason}")),
            None => Ok(()),
        }
    }
}

/// What kind of non-public address `ip` is, if it is one.
pub fn blocked_reason(ip: IpAddr) -> Option<&'static str> {
    match normalise_ip(ip) {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_unspecified() || a == 0 => "an unspecified address",
        _ if ip.is_private() => "a private address",
        (169, 254, _) => "a link-local or metadata address",
        (100, b, _) if (64..128).contains(&b) => "a shared (carrier-grade NAT) address",
        (192, 0, 0) => "an IETF protocol address",
        (198, b, _) if b == 18 || b == 19 => "a benchmarking address",
        _ if ip.is_multicast() || a >= 240 => "a multicast or reserved address",
        _ => return None,
    })
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_multicast() {
        return Some("a multicast address");
    }
    match segments[0] {
        s if s & 0xfe00 == 0xfc00 => return Some("a unique-local (private) address"),
        s if s & 0xffc0 == 0xfe80 => return Some("a link-local address"),
        s if s & 0xffc0 == 0xfec0 => return Some("a site-local address"),
        _ => {}
    }
    // Addresses that embed an IPv4 address: NAT64 (64:ff9b::/96), 6to4 (2002::/16),
    // IPv4-compatible (::a.b.c.d).
    let embedded = if segments[0] == 0x64 && segments[1] == 0xff9b && segments[2..6] == [0; 4] {
        Some(Ipv4Addr::new(
            (segments[6] >> 8) as u8,
            segments[6] as u8,
            (segments[7] >> 8) as u8,
            segments[7] as u8,
        ))
    } else if segments[0] == 0x2002 {
        Some(Ipv4Addr::new(
            (segments[1] >> 8) as u8,
            segments[1] as u8,
            (segments[2] >> 8) as u8,
            segments[2] as u8,
        ))
    } else if segments[..6] == [0; 6] {
        Some(Ipv4Addr::new(
            (segments[6] >> 8) as u8,
            segments[6] as u8,
            (segments[7] >> 8) as u8,
            segments[7] as u8,
        ))
    } else {
        None
    };
    embedded.and_then(v4_reason)
}

/// Resolves names with the system resolver and keeps only addresses the policy allows.
struct GuardedResolver {
    policy: Arc<SsrfPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| policy.check(a.ip()).is_ok())
                .collect();
            if allowed.is_empty() {
                let reason = found
                    .first()
                    .map(|a| policy.check(a.ip()).err().unwrap_or_default())
                    .unwrap_or_else(|| "it does not resolve".into());
                return Err(format!("{host} is not allowed: {reason}").into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// An error with its causes, `outer: inner: innermost`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The guarded HTTP client.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: Arc<SsrfPolicy>,
    max_bytes: usize,
}

impl Fetcher {
    pub fn new(policy: SsrfPolicy, timeout: Duration, max_bytes: usize) -> Result<Fetcher, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("Switchyard/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Fetcher {
            client,
            policy,
            max_bytes,
        })
    }

    /// Checks a URL before any request: http(s), and a literal IP host must be allowed.
    pub fn check_url(&self, url: &str) -> Result<url::Url, FetchError> {
        let blocked = |reason: String| FetchError::Blocked {
            url: url.to_string(),
            reason,
        };
        check_http_url(url).map_err(blocked)?;
        let parsed = url::Url::parse(url).map_err(|e| blocked(e.to_string()))?;
        match parsed.host() {
            Some(url::Host::Ipv4(ip)) => self.policy.check(IpAddr::V4(ip)).map_err(blocked)?,
            Some(url::Host::Ipv6(ip)) => self.policy.check(IpAddr::V6(ip)).map_err(blocked)?,
            Some(url::Host::Domain(domain)) => {
                let lower = domain.to_ascii_lowercase();
                let loopback_allowed = self
                    .policy
                    .allow
                    .iter()
                    .any(|n| n.contains(IpAddr::V4(Ipv4Addr::LOCALHOST)));
                if (lower == "localhost" || lower.ends_with(".localhost")) && !loopback_allowed {
                    return Err(blocked("localhost is a loopback name".into()));
                }
            }
            None => return Err(blocked("it has no host".into())),
        }
        Ok(parsed)
    }

    /// POSTs `body` as JSON to `url` (no redirects followed); returns the status.
    pub async fn post_json(&self, url: &str, body: &serde_json::Value) -> Result<u16, FetchError> {
        let parsed = self.check_url(url)?;
        let response = self
            .client
            .post(parsed)
            .json(body)
            .send()
            .await
            .map_err(|e| FetchError::Failed {
                url: url.to_string(),
                message: chain(&e),
            })?;
        Ok(response.status().as_u16())
    }

    /// GETs `url`, following up to five redirects (each re-checked), reading at most the
    /// configured number of bytes.
    pub async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        let mut current = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let parsed = self.check_url(&current)?;
            let failed = |e: reqwest::Error| FetchError::Failed {
                url: current.clone(),
                message: chain(&e),
            };
            let mut response = self
                .client
                .get(parsed.clone())
                .send()
                .await
                .map_err(failed)?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| FetchError::Failed {
                        url: current.clone(),
                        message: "a redirect without Location".into(),
                    })?;
                current = parsed
                    .join(location)
                    .map_err(|e| FetchError::Failed {
                        url: current.clone(),
                        message: e.to_string(),
                    })?
                    .to_string();
                continue;
            }
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_string();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Failed {
                url: current.clone(),
                message: chain(&e),
            })? {
                if body.len() + chunk.len() > self.max_bytes {
                    return Err(FetchError::TooLarge {
                        url: current,
                        limit: self.max_bytes,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            return Ok(Fetched {
                status: status.as_u16(),
                content_type,
                body,
                url: current,
            });
        }
        Err(FetchError::TooManyRedirects {
            url: url.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetcher(allow: &[&str]) -> Fetcher {
        let policy = SsrfPolicy {
            allow: allow.iter().map(|a| a.parse().unwrap()).collect(),
        };
        Fetcher::new(policy, Duration::from_secs(2), 1024).unwrap()
    }

    #[test]
    fn blocks_every_textual_form_of_internal_addresses() {
        let guard = fetcher(&[]);
        for url in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://0x7f.0.0.1/",
            "http://2130706433/",
            "http://017700000001/",
            "http://0.0.0.0/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:7f00:1::]/",
            "http://localhost:8080/",
            "http://api.localhost/",
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://127.0.0.1/",
        ] {
            assert!(guard.check_url(url).is_err(), "{url} must be blocked");
        }
        for url in [
            "http://93.184.215.14/",
            "https://example.com/x",
            "http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/",
        ] {
            assert!(guard.check_url(url).is_ok(), "{url} must pass");
        }
    }

    #[test]
    fn allow_list_opens_networks() {
        let guard = fetcher(&["127.0.0.0/8"]);
        assert!(guard.check_url("http://127.0.0.1:9/").is_ok());
        assert!(guard.check_url("http://localhost:9/").is_ok());
        assert!(guard.check_url("http://10.0.0.1/").is_err());
    }

    #[tokio::test]
    async fn names_resolving_to_internal_addresses_are_refused() {
        use std::str::FromStr;
        let resolver = GuardedResolver {
            policy: Arc::new(SsrfPolicy::default()),
        };
        // The name check catches `localhost`; the resolver catches any name that resolves to a
        // refused address (here the same name, asked directly).
        let result = resolver.resolve(Name::from_str("localhost").unwrap()).await;
        let error = result
            .err()
            .expect("localhost must not resolve through the guard")
            .to_string();
        assert!(
            error.contains("not allowed") && error.contains("loopback"),
            "{error}"
        );
        let open = GuardedResolver {
            policy: Arc::new(SsrfPolicy {
                allow: vec!["127.0.0.0/8".parse().unwrap()],
            }),
        };
        let addrs: Vec<SocketAddr> = open
            .resolve(Name::from_str("localhost").unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }
}
