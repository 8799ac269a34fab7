//! An example native action in the style of a vendor integration: `native:signed_redirect`
//! redirects to the payload's URL with the click's sub id and an HMAC-SHA256 signature
//! appended, so the vendor can check that the click came through this tracker.
//!
//! Payload: `{"url": "https://vendor.example/go?offer=7", "key": "shared secret",
//! "param": "sub_id", "status": 302}` (`param` and `status` optional). For a click `abc` the
//! visitor goes to `https://vendor.example/go?offer=7&sub_id=abc&sy_sig=<hex>`, where `<hex>` is
//! the lower-case hex HMAC-SHA256, keyed with `key`, of everything before `&sy_sig=` (the URL
//! without its `#fragment`, which is kept after the signature).

#![forbid(unsafe_code)]

use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchyard_plugin_sdk::serde_json::Value;
use switchyard_plugin_sdk::{Click, NativeAction, PayloadDoc, Reply, export_plugin};

/// A built `signed_redirect` action.
struct SignedRedirect {
    /// The target URL without its fragment.
    base: String,
    /// `#fragment` or "".
    fragment: String,
    key: Vec<u8>,
    param: String,
    status: u16,
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex HMAC-SHA256 of `message` under `key`.
fn sign(key: &[u8], message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message.as_bytes());
    hex(&mac.finalize().into_bytes())
}

impl SignedRedirect {
    /// The signed URL for a click.
    fn target(&self, sub_id: &str) -> String {
        let separator = if !self.base.contains('?') {
            "?"
        } else if self.base.ends_with('?') || self.base.ends_with('&') {
            ""
        } else {
            "&"
        };
        let unsigned = format!(
            "{}{separator}{}={}",
            self.base,
            self.param,
            encode_component(sub_id)
        );
        let signature = sign(&self.key, &unsigned);
        format!("{unsigned}&sy_sig={signature}{}", self.fragment)
    }
}

impl NativeAction for SignedRedirect {
    const NAME: &'static str = "signed_redirect";
    const GROUP: &'static str = "redirect";
    const DESCRIPTION: &'static str = "Redirects to a vendor URL with the click's sub id and an HMAC-SHA256 signature (`sy_sig`) appended.";
    const PAYLOAD: PayloadDoc = PayloadDoc {
        kind: "object",
        example: r#"{"url": "https://vendor.example/go?offer=7", "key": "a shared secret", "param": "sub_id", "status": 302}"#,
        notes: "`url`: absolute http(s) URL. `key`: the shared HMAC key (at least 16 bytes). `param`: the sub id's parameter name (default `sub_id`). `status`: 301, 302, 303, 307 or 308 (default 302). The signature covers everything before `&sy_sig=`.",
    };

    fn build(payload: &Value, _options: &Value) -> Result<Self, String> {
        let url = payload
            .get("url")
            .and_then(Value::as_str)
            .map(str::trim)
            .ok_or("the payload needs `url`")?;
        let lower = url.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
            .ok_or_else(|| format!("`url` must be an absolute http(s) URL, got `{url}`"))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("`url` has no host: `{url}`"));
        }
        if url.chars().any(|c| c.is_control() || c == ' ') {
            return Err("`url` contains spaces or control characters".into());
        }
        let key = payload
            .get("key")
            .and_then(Value::as_str)
            .ok_or("the payload needs `key`, the shared HMAC key")?;
        if key.len() < 16 {
            return Err("`key` must be at least 16 bytes long".into());
        }
        let param = match payload.get("param") {
            None | Some(Value::Null) => "sub_id".to_string(),
            Some(Value::String(name))
                if !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                name.clone()
            }
            Some(other) => {
                return Err(format!(
                    "`param` must be a parameter name (letters, digits, `_`, `-`), got {other}"
                ));
            }
        };
        let status = match payload.get("status") {
            None | Some(Value::Null) => 302,
            Some(value) => match value.as_u64() {
                Some(code @ (301 | 302 | 303 | 307 | 308)) => code as u16,
                _ => {
                    return Err(format!(
                        "`status` must be 301, 302, 303, 307 or 308, got {value}"
                    ));
                }
            },
        };
        let (base, fragment) = match url.find('#') {
            Some(at) => (url[..at].to_string(), url[at..].to_string()),
            None => (url.to_string(), String::new()),
        };
        Ok(SignedRedirect {
            base,
            fragment,
            key: key.as_bytes().to_vec(),
            param,
            status,
        })
    }

    fn run(&self, click: &Click<'_>) -> Result<Reply, String> {
        Ok(Reply::Redirect {
            url: self.target(click.sub_id()),
            status: self.status,
        })
    }
}

export_plugin! {
    name: "signed-redirect",
    version: env!("CARGO_PKG_VERSION"),
    filters: [],
    actions: [SignedRedirect],
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_plugin_sdk::serde_json::json;

    fn build(payload: Value) -> Result<SignedRedirect, String> {
        SignedRedirect::build(&payload, &Value::Null)
    }

    #[test]
    fn urls_get_the_sub_id_and_a_signature_over_what_precedes_it() {
        let action =
            build(json!({"url": "https://v.test/go?o=7#top", "key": "0123456789abcdef"})).unwrap();
        let url = action.target("a b");
        let (unsigned, rest) = url.split_once("&sy_sig=").unwrap();
        assert_eq!(unsigned, "https://v.test/go?o=7&sub_id=a%20b");
        let (signature, fragment) = rest.split_once('#').unwrap();
        assert_eq!(fragment, "top");
        assert_eq!(signature, sign(b"0123456789abcdef", unsigned));
        assert_eq!(signature.len(), 64);
        let bare =
            build(json!({"url": "http://v.test", "key": "0123456789abcdef", "param": "cid"}))
                .unwrap();
        assert!(bare.target("x").starts_with("http://v.test?cid=x&sy_sig="));
    }

    #[test]
    fn payloads_are_checked() {
        assert!(build(json!({"url": "javascript:alert(1)", "key": "0123456789abcdef"})).is_err());
        assert!(build(json!({"url": "https://v.test/", "key": "short"})).is_err());
        assert!(
            build(json!({"url": "https://v.test/", "key": "0123456789abcdef", "status": 200}))
                .is_err()
        );
        assert!(
            build(json!({"url": "https://v.test/", "key": "0123456789abcdef", "param": "a&b"}))
                .is_err()
        );
    }
}
