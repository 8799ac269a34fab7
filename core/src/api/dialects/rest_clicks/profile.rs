//! A click's client profile as a request gives it: every field checked, named by its path.

use serde_json::{Map, Value};

use crate::store::{NewProfile, ProfileContact};

use super::super::DialectError;

/// The seed's limit on profile and contact strings.
pub(super) const MAX_PROFILE_TEXT: usize = 255;
/// Contacts one profile may hold.
const MAX_CONTACTS: usize = 50;

/// Validates `{"profile": {…}}`, naming each bad field by its path (`profile.contacts.0.key`).
pub(super) fn parse_profile(fields: &Map<String, Value>) -> Result<NewProfile, DialectError> {
    let Some(Value::Object(profile)) = fields.get("profile") else {
        return Err(DialectError::field(
            "profile",
            "The profile field is required and must be an object.",
        ));
    };
    let mut errors: Vec<(String, String)> = Vec::new();
    let e = &mut errors;
    let first_name = profile_text(profile, "profile", "firstName", Presence::Required, e);
    let last_name = profile_text(profile, "profile", "lastName", Presence::Required, e);
    let middle_name = profile_text(profile, "profile", "middleName", Presence::Required, e);
    let uuid = profile_text(profile, "profile", "uuid", Presence::RequiredOrNull, e);
    let country_name = profile_text(profile, "profile", "countryName", Presence::Optional, e);
    let tag = profile_text(profile, "profile", "tag", Presence::Optional, e);
    let mut contacts = Vec::new();
    match profile.get("contacts") {
        Some(Value::Array(list)) if list.len() <= MAX_CONTACTS => {
            for (index, item) in list.iter().enumerate() {
                let path = format!("profile.contacts.{index}");
                let Value::Object(contact) = item else {
                    e.push((path.clone(), format!("The {path} must be an object.")));
                    continue;
                };
                let key = profile_text(contact, &path, "key", Presence::Required, e);
                let value = profile_text(contact, &path, "value", Presence::Required, e);
                let contact_uuid = profile_text(contact, &path, "uuid", Presence::Optional, e);
                let (Some(key), Some(value)) = (key, value) else {
                    continue;
                };
                let problem = match key.as_str() {
                    "email" if !looks_like_email(&value) => Some("an email address"),
                    "phone" if !looks_like_phone(&value) => Some("a phone number"),
                    "email" | "phone" => None,
                    _ => {
                        e.push((
                            format!("{path}.key"),
                            format!("The {path}.key must be email or phone."),
                        ));
                        continue;
                    }
                };
                if let Some(kind) = problem {
                    e.push((
                        format!("{path}.value"),
                        format!("The {path}.value must be {kind}."),
                    ));
                    continue;
                }
                contacts.push(ProfileContact {
                    key,
                    value,
                    uuid: contact_uuid,
                });
            }
        }
        Some(Value::Array(_)) => e.push((
            "profile.contacts".into(),
            format!("The profile.contacts may hold at most {MAX_CONTACTS} contacts."),
        )),
        None => e.push((
            "profile.contacts".into(),
            "The profile.contacts field is required.".into(),
        )),
        Some(_) => e.push((
            "profile.contacts".into(),
            "The profile.contacts must be an array.".into(),
        )),
    }
    let enabled = match profile.get("enabled") {
        Some(Value::Bool(b)) => Some(*b),
        None => {
            e.push((
                "profile.enabled".into(),
                "The profile.enabled field is required.".into(),
            ));
            None
        }
        Some(_) => {
            e.push((
                "profile.enabled".into(),
                "The profile.enabled must be true or false.".into(),
            ));
            None
        }
    };
    if !errors.is_empty() {
        return Err(DialectError::fields(errors));
    }
    Ok(NewProfile {
        uuid,
        first_name: first_name.unwrap_or_default(),
        last_name: last_name.unwrap_or_default(),
        middle_name: middle_name.unwrap_or_default(),
        enabled: enabled.unwrap_or(true),
        country_name: country_name.unwrap_or_default(),
        tag: tag.unwrap_or_default(),
        contacts,
    })
}

/// Whether a profile field must be present, and whether it may be null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Required,
    RequiredOrNull,
    Optional,
}

/// A string field of the profile (numbers accepted where a field may be absent or null, such as
/// a numeric `tag`); at most 255 characters.
fn profile_text(
    map: &Map<String, Value>,
    path: &str,
    name: &str,
    presence: Presence,
    errors: &mut Vec<(String, String)>,
) -> Option<String> {
    let field = format!("{path}.{name}");
    let lenient = presence != Presence::Required;
    match map.get(name) {
        None if presence != Presence::Optional => {
            errors.push((field.clone(), format!("The {field} field is required.")));
            None
        }
        None => None,
        Some(Value::Null) if lenient => None,
        Some(Value::String(s)) if s.chars().count() <= MAX_PROFILE_TEXT => Some(s.clone()),
        Some(Value::String(_)) => {
            errors.push((
                field.clone(),
                format!("The {field} may not be greater than {MAX_PROFILE_TEXT} characters."),
            ));
            None
        }
        Some(Value::Number(n)) if lenient => Some(n.to_string()),
        _ => {
            errors.push((field.clone(), format!("The {field} must be a string.")));
            None
        }
    }
}

/// `local@domain.tld`, loosely: one `@`, something on each side, a dot in the domain, no spaces.
pub(super) fn looks_like_email(value: &str) -> bool {
    match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !value.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// Digits with an optional leading `+` and the usual separators; 5 to 20 digits.
pub(super) fn looks_like_phone(value: &str) -> bool {
    let digits = value.chars().filter(char::is_ascii_digit).count();
    (5..=20).contains(&digits)
        && value
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || " -().".contains(c) || (c == '+' && i == 0))
}
