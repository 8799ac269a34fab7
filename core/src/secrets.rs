//! Secrets that are not configured are generated on first start, stored in
//! `<data_dir>/secrets.toml` (mode 0600), and shown once. The admin API key and the keys of
//! the click dialects are stored only as SHA-256 hashes, so they can never be shown again.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{ConfiguredSecrets, Dialect};
use crate::ids::random_token;

const FILE_NAME: &str = "secrets.toml";
const TOKEN_LENGTH: usize = 32;

/// The secrets the running tracker uses.
#[derive(Clone)]
pub struct Secrets {
    /// SHA-256 (hex) of the bootstrap Admin API key.
    pub admin_api_key_hash: String,
    pub postback_key: String,
    pub signing_key: String,
    /// SHA-256 (hex) of the key of each enabled click dialect.
    pub dialect_key_hashes: Vec<(Dialect, String)>,
}

impl Secrets {
    /// The key hash of `dialect`, if the dialect is enabled.
    pub fn dialect_key_hash(&self, dialect: Dialect) -> Option<&str> {
        self.dialect_key_hashes
            .iter()
            .find(|(d, _)| *d == dialect)
            .map(|(_, hash)| hash.as_str())
    }
}

/// True when `presented` is the key whose SHA-256 (hex) is `expected_hash`; the hashes are
/// compared in constant time, and an empty key never matches.
pub fn key_matches(presented: &str, expected_hash: &str) -> bool {
    use subtle::ConstantTimeEq;
    !presented.is_empty()
        && bool::from(
            sha256_hex(presented)
                .as_bytes()
                .ct_eq(expected_hash.as_bytes()),
        )
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { .. }")
    }
}

/// A secret made on this start, to be shown to the operator once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub name: &'static str,
    pub value: String,
    /// Stored only as a hash: this is the one chance to copy it.
    pub hashed: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSecrets {
    admin_api_key_sha256: Option<String>,
    postback_key: Option<String>,
    signing_key: Option<String>,
    open_api_token_sha256: Option<String>,
    hoqu_secure_key_sha256: Option<String>,
    rest_clicks_token_sha256: Option<String>,
}

impl StoredSecrets {
    fn dialect_slot(&mut self, dialect: Dialect) -> &mut Option<String> {
        match dialect {
            Dialect::OpenApi => &mut self.open_api_token_sha256,
            Dialect::Hoqu => &mut self.hoqu_secure_key_sha256,
            Dialect::RestClicks => &mut self.rest_clicks_token_sha256,
        }
    }
}

/// What the operator is told a generated dialect key is.
fn dialect_key_label(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::OpenApi => "open_api token",
        Dialect::Hoqu => "hoqu secure_key",
        Dialect::RestClicks => "rest_clicks token",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read or write {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path} is not a valid secrets file: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The hex SHA-256 of `text` (how API keys are stored and compared).
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Configured secrets win; the rest come from the secrets file, or are generated and saved.
pub fn resolve(
    configured: &ConfiguredSecrets,
    data_dir: &Path,
) -> Result<(Secrets, Vec<Generated>), SecretsError> {
    let path = data_dir.join(FILE_NAME);
    let io = |e: std::io::Error| SecretsError::Io {
        path: path.clone(),
        message: e.to_string(),
    };
    let mut stored: StoredSecrets = match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| SecretsError::Invalid {
            path: path.clone(),
            message: e.message().to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => StoredSecrets::default(),
        Err(e) => return Err(io(e)),
    };
    let mut generated = Vec::new();
    let mut changed = false;

    // A hashed key: configured (hashed here), stored (as a hash), or generated and shown once.
    let mut hashed_key = |configured: &Option<String>,
                          slot: &mut Option<String>,
                          name: &'static str| match configured {
        Some(key) => sha256_hex(key),
        None => match slot {
            Some(hash) => hash.clone(),
            None => {
                let key = random_token(TOKEN_LENGTH);
                let hash = sha256_hex(&key);
                generated.push(Generated {
                    name,
                    value: key,
                    hashed: true,
                });
                *slot = Some(hash.clone());
                changed = true;
                hash
            }
        },
    };
    let admin_api_key_hash = hashed_key(
        &configured.admin_api_key,
        &mut stored.admin_api_key_sha256,
        "admin API key",
    );
    let dialect_key_hashes = configured
        .dialect_keys
        .iter()
        .map(|(dialect, key)| {
            let hash = hashed_key(
                key,
                stored.dialect_slot(*dialect),
                dialect_key_label(*dialect),
            );
            (*dialect, hash)
        })
        .collect();
    let mut take = |configured: &Option<String>, slot: &mut Option<String>, name: &'static str| {
        if let Some(value) = configured {
            return value.clone();
        }
        if let Some(value) = slot {
            return value.clone();
        }
        let value = random_token(TOKEN_LENGTH);
        *slot = Some(value.clone());
        changed = true;
        if name == "postback key" {
            generated.push(Generated {
                name,
                value: value.clone(),
                hashed: false,
            });
        }
        value
    };
    let postback_key = take(
        &configured.postback_key,
        &mut stored.postback_key,
        "postback key",
    );
    let signing_key = take(
        &configured.signing_key,
        &mut stored.signing_key,
        "signing key",
    );

    if changed {
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let text = toml::to_string(&stored).map_err(|e| SecretsError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_private(
            &path,
            &format!("# Generated by Switchyard on first start. Keep this file private.\n{text}"),
        )
        .map_err(io)?;
    }
    Ok((
        Secrets {
            admin_api_key_hash,
            postback_key,
            signing_key,
            dialect_key_hashes,
        },
        generated,
    ))
}

/// Writes through a temporary file and a rename, readable by the owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let temp = path.with_extension("toml.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_keys_are_generated_hashed_and_compared_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let configured = ConfiguredSecrets {
            dialect_keys: vec![
                (Dialect::OpenApi, None),
                (
                    Dialect::Hoqu,
                    Some("00000000-0000-0000-0000-000000000000".into()),
                ),
            ],
            ..ConfiguredSecrets::default()
        };
        let (secrets, shown) = resolve(&configured, dir.path()).unwrap();
        let token = shown.iter().find(|g| g.name == "open_api token").unwrap();
        assert!(token.hashed);
        assert!(
            !shown.iter().any(|g| g.name == "hoqu secure_key"),
            "configured keys are not shown"
        );
        let hash = secrets.dialect_key_hash(Dialect::OpenApi).unwrap();
        assert!(key_matches(&token.value, hash));
        assert!(!key_matches("wrong", hash));
        assert!(!key_matches("", hash));
        assert!(key_matches(
            "00000000-0000-0000-0000-000000000000",
            secrets.dialect_key_hash(Dialect::Hoqu).unwrap()
        ));
        assert!(secrets.dialect_key_hash(Dialect::RestClicks).is_none());
        let file = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(!file.contains(&token.value), "only the hash is stored");
        assert!(file.contains(hash));

        let (again, shown_again) = resolve(&configured, dir.path()).unwrap();
        assert!(shown_again.is_empty());
        assert_eq!(again.dialect_key_hash(Dialect::OpenApi), Some(hash));
    }

    #[test]
    fn generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (first, shown) = resolve(&ConfiguredSecrets::default(), dir.path()).unwrap();
        assert_eq!(shown.len(), 2, "admin key and postback key are shown");
        let admin = shown.iter().find(|g| g.name == "admin API key").unwrap();
        assert_eq!(sha256_hex(&admin.value), first.admin_api_key_hash);
        let file = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(
            !file.contains(&admin.value),
            "the admin key itself is never stored"
        );

        let (second, shown_again) = resolve(&ConfiguredSecrets::default(), dir.path()).unwrap();
        assert!(shown_again.is_empty());
        assert_eq!(second.admin_api_key_hash, first.admin_api_key_hash);
        assert_eq!(second.postback_key, first.postback_key);
        assert_eq!(second.signing_key, first.signing_key);
    }

    #[test]
    fn configured_secrets_win() {
        let dir = tempfile::tempdir().unwrap();
        let configured = ConfiguredSecrets {
            admin_api_key: Some("configured-admin-key-123".into()),
            postback_key: Some("configured-postback-key".into()),
            signing_key: Some("configured-signing-key".into()),
            dialect_keys: Vec::new(),
        };
        let (secrets, shown) = resolve(&configured, dir.path()).unwrap();
        assert!(shown.is_empty());
        assert_eq!(secrets.postback_key, "configured-postback-key");
        assert_eq!(
            secrets.admin_api_key_hash,
            sha256_hex("configured-admin-key-123")
        );
        assert!(!dir.path().join(FILE_NAME).exists(), "nothing to store");
    }
}
