//! The list's query string: `filter[…]`, `sort_by`/`sort_order` and the `query[…]` expansions.

use crate::store::{LogCondition, LogField, LogValue};

use super::super::{parse_id, parse_time};

/// The `query[…]` expansions a response carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Expansions {
    pub link: bool,
    pub metrics: bool,
    pub profile: bool,
    pub contacts: bool,
}

pub(super) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// `filter[name]` -> `name`.
pub(super) fn bracketed<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    key.strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')
}

pub(super) fn expansions(
    pairs: &[(String, String)],
    errors: &mut Vec<(String, String)>,
) -> Expansions {
    let mut out = Expansions::default();
    for (key, value) in pairs {
        let Some(name) = bracketed(key, "query") else {
            continue;
        };
        let on = match value.trim() {
            "1" | "true" => true,
            "0" | "false" | "" => false,
            _ => {
                errors.push((key.clone(), format!("The {key} must be 1 or 0.")));
                continue;
            }
        };
        match name {
            "link" => out.link = on,
            "metrics" => out.metrics = on,
            "profile" => out.profile = on,
            "contacts" => out.contacts = on,
            other => errors.push((
                key.clone(),
                format!("Unknown query `{other}` (use link, metrics, profile or contacts)."),
            )),
        }
    }
    out
}

/// A `sort_by` name and the field it sorts.
pub(super) fn sort_field(name: &str) -> Option<LogField> {
    Some(match name {
        "clickId" => LogField::SubId,
        "createTime" => LogField::CreateTime,
        "ip" => LogField::Ip,
        "latitude" => LogField::Latitude,
        "longitude" => LogField::Longitude,
        "referrer" => LogField::Referrer,
        "tag" => LogField::ProfileTag,
        "time" => LogField::CreatedAt,
        "uri" => LogField::RequestUrl,
        "userAgent" => LogField::UserAgent,
        "utmCampaign" => LogField::UtmCampaign,
        "utmContent" => LogField::UtmContent,
        "utmMedium" => LogField::UtmMedium,
        "utmSource" => LogField::UtmSource,
        "utmTerm" => LogField::UtmTerm,
        "updateTime" => LogField::UpdateTime,
        _ => return None,
    })
}

/// Text filters compared for equality; repeated values of one filter are OR-ed.
pub(super) fn text_filter(name: &str) -> Option<LogField> {
    Some(match name {
        "bannerId" | "bannerIdFilter" => LogField::CreativeId,
        "countryName" => LogField::CountryName,
        "ip" => LogField::Ip,
        "referrer" => LogField::Referrer,
        "tag" => LogField::ProfileTag,
        "uri" => LogField::RequestUrl,
        "userAgent" => LogField::UserAgent,
        "utmCampaign" => LogField::UtmCampaign,
        "utmContent" => LogField::UtmContent,
        "utmMedium" => LogField::UtmMedium,
        "utmSource" => LogField::UtmSource,
        "utmTerm" => LogField::UtmTerm,
        "uuid" => LogField::Uuid,
        _ => return None,
    })
}

/// Every filter of the list, as conditions.
pub(super) fn filters(
    pairs: &[(String, String)],
    errors: &mut Vec<(String, String)>,
) -> Vec<LogCondition> {
    let mut any_of: Vec<(LogField, Vec<LogValue>)> = Vec::new();
    let mut conditions = Vec::new();
    for (key, value) in pairs {
        let Some(name) = bracketed(key, "filter") else {
            continue;
        };
        let value = value.trim();
        let mut fail = |message: String| errors.push((key.clone(), message));
        if let Some(field) = text_filter(name) {
            let value = LogValue::Text(value.to_string());
            match any_of.iter_mut().find(|(f, _)| *f == field) {
                Some((_, values)) => values.push(value),
                None => any_of.push((field, vec![value])),
            }
            continue;
        }
        match name {
            "countryCode" => {
                let value = LogValue::Text(value.to_ascii_uppercase());
                match any_of.iter_mut().find(|(f, _)| *f == LogField::CountryCode) {
                    Some((_, values)) => values.push(value),
                    None => any_of.push((LogField::CountryCode, vec![value])),
                }
            }
            // Link ids are campaign ids; any other identifier (the seed's examples are 24-hex
            // ids) names no link here and matches nothing.
            "linkId" => {
                let entry = match any_of.iter_mut().find(|(f, _)| *f == LogField::CampaignId) {
                    Some((_, values)) => values,
                    None => {
                        any_of.push((LogField::CampaignId, Vec::new()));
                        &mut any_of.last_mut().expect("just pushed").1
                    }
                };
                if let Some(id) = parse_id(value) {
                    entry.push(LogValue::Int(id));
                }
            }
            "clickStartTime" | "clickEndTime" => {
                let end = name == "clickEndTime";
                match parse_time(value, end) {
                    Some(at) if end => {
                        conditions.push(LogCondition::AtMost(LogField::CreatedAt, at))
                    }
                    Some(at) => conditions.push(LogCondition::AtLeast(LogField::CreatedAt, at)),
                    None => fail(format!(
                        "The {key} must be a date and time (2021-01-01T00:00:00+00:00)."
                    )),
                }
            }
            "latitude" | "longitude" => match value.parse::<f64>() {
                Ok(degrees) if degrees.is_finite() && degrees.abs() <= 180.0 => {
                    let field = if name == "latitude" {
                        LogField::Latitude
                    } else {
                        LogField::Longitude
                    };
                    conditions.push(LogCondition::Near(field, degrees));
                }
                _ => fail(format!("The {key} must be a number of degrees.")),
            },
            "registration" => match value {
                "1" | "true" => conditions.push(LogCondition::HasProfile(true)),
                "0" | "false" => conditions.push(LogCondition::HasProfile(false)),
                _ => fail(format!("The {key} must be 1 or 0.")),
            },
            "profileName" => conditions.push(LogCondition::ProfileNameContains(value.into())),
            "profileContacts" => conditions.push(LogCondition::ProfileContact(value.into())),
            "profileCountryName" => conditions.push(LogCondition::ProfileCountry(value.into())),
            other => fail(format!("Unknown filter `{other}`.")),
        }
    }
    conditions.extend(
        any_of
            .into_iter()
            .map(|(field, values)| LogCondition::AnyOf(field, values)),
    );
    conditions
}
