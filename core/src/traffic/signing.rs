//! HS256-signed tokens (JWT-shaped, like Keitaro's `uniqueness_cookie`) for visitor cookies
//! and landing -> offer tokens. Verification is constant-time; any tampering, a wrong key or
//! malformed text simply fails (`None`), never an error on the click path.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const HEADER: &str = r#"{"typ":"JWT","alg":"HS256"}"#;

/// Signs and verifies tokens with the tracker's signing key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { .. }")
    }
}

impl Signer {
    pub fn new(key: &str) -> Self {
        Signer {
            key: key.as_bytes().to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length")
    }

    /// `base64url(header).base64url(payload).base64url(HMAC-SHA256)`.
    pub fn sign(&self, payload: &serde_json::Value) -> String {
        let mut token = URL_SAFE_NO_PAD.encode(HEADER);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(payload.to_string()));
        let mut mac = self.mac();
        mac.update(token.as_bytes());
        let signature = mac.finalize().into_bytes();
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        token
    }

    /// The payload of a token this key signed; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<serde_json::Value> {
        if token.len() > 8 * 1024 {
            return None;
        }
        let (signed, signature) = token.rsplit_once('.')?;
        let (_, payload) = signed.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        mac.verify_slice(&signature).ok()?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        serde_json::from_slice(&payload).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_tampering() {
        let signer = Signer::new("k1-0123456789abcdef");
        let token = signer.sign(&serde_json::json!({"a": 1}));
        assert_eq!(signer.verify(&token).unwrap()["a"], 1);
        assert!(Signer::new("other-key-0123456789").verify(&token).is_none());
        let mut bytes = token.clone().into_bytes();
        let middle = bytes.len() / 2;
        bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
        assert!(signer.verify(&String::from_utf8(bytes).unwrap()).is_none());
        assert!(signer.verify("").is_none());
        assert!(signer.verify("a.b").is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_verifies(text in ".{0,300}") {
            let signer = Signer::new("k1-0123456789abcdef");
            prop_assert!(signer.verify(&text).is_none());
        }
    }
}
