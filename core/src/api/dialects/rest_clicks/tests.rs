use crate::store::{LogCondition, LogField, LogValue};

use super::profile::{looks_like_email, looks_like_phone};
use super::query::{filters, sort_field};
use super::*;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn every_documented_filter_is_understood() {
    let mut errors = Vec::new();
    let conditions = filters(
        &pairs(&[
            ("filter[bannerId]", "b1"),
            ("filter[bannerIdFilter]", "b2"),
            ("filter[clickStartTime]", "2021-01-01T00:00:00 00:00"),
            ("filter[clickEndTime]", "2021-01-31T23:59:59+00:00"),
            ("filter[countryCode]", "us"),
            ("filter[countryName]", "United States"),
            ("filter[ip]", "185.155.96.184"),
            ("filter[linkId]", "7"),
            ("filter[latitude]", "37.751"),
            ("filter[longitude]", "-97.822"),
            ("filter[registration]", "1"),
            ("filter[profileName]", "Mary Jane Smith"),
            ("filter[profileContacts]", "a@b.example"),
            ("filter[profileCountryName]", "United States"),
            ("filter[referrer]", "https://twitter.com"),
            ("filter[tag]", "61"),
            ("filter[uri]", "https://my.stage.org/register?referral=1"),
            ("filter[userAgent]", "Mozilla/5.0"),
            ("filter[utmCampaign]", "sport"),
            ("filter[utmContent]", "UEFA"),
            ("filter[utmContent]", "banner"),
            ("filter[utmMedium]", "banner"),
            ("filter[utmSource]", "youtube.com"),
            ("filter[utmTerm]", "bitcoin"),
            ("filter[uuid]", "9"),
            ("limit", "10"),
        ]),
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert!(conditions.contains(&LogCondition::AtLeast(LogField::CreatedAt, 1_609_459_200)));
    assert!(conditions.contains(&LogCondition::AnyOf(
        LogField::CreativeId,
        vec![LogValue::Text("b1".into()), LogValue::Text("b2".into())]
    )));
    assert!(conditions.contains(&LogCondition::AnyOf(
        LogField::UtmContent,
        vec![
            LogValue::Text("UEFA".into()),
            LogValue::Text("banner".into())
        ]
    )));
    assert!(conditions.contains(&LogCondition::AnyOf(
        LogField::CountryCode,
        vec![LogValue::Text("US".into())]
    )));
    assert!(conditions.contains(&LogCondition::HasProfile(true)));
}

#[test]
fn unknown_and_malformed_filters_are_named() {
    let mut errors = Vec::new();
    filters(
        &pairs(&[
            ("filter[nope]", "1"),
            ("filter[longitude]", "999"),
            ("filter[latitude]", "north"),
            ("filter[registration]", "maybe"),
            ("filter[clickStartTime]", "soon"),
        ]),
        &mut errors,
    );
    let named: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        named,
        [
            "filter[nope]",
            "filter[longitude]",
            "filter[latitude]",
            "filter[registration]",
            "filter[clickStartTime]"
        ]
    );
}

#[test]
fn every_listed_sort_field_is_known() {
    for name in [
        "clickId",
        "createTime",
        "ip",
        "latitude",
        "longitude",
        "referrer",
        "tag",
        "time",
        "uri",
        "userAgent",
        "utmCampaign",
        "utmContent",
        "utmMedium",
        "utmSource",
        "utmTerm",
        "updateTime",
    ] {
        assert!(sort_field(name).is_some(), "{name}");
    }
    assert!(sort_field("password").is_none());
}

#[test]
fn profiles_are_validated_field_by_field() {
    let good = json!({"profile": {
        "firstName": "Mary", "lastName": "Smith", "middleName": "Jane", "enabled": true,
        "uuid": null,
        "contacts": [
            {"key": "email", "value": "client@email.com", "uuid": null},
            {"key": "phone", "value": "+9876543210", "uuid": null}
        ]
    }});
    let profile = parse_profile(good.as_object().unwrap()).unwrap();
    assert_eq!(profile.contacts.len(), 2);
    assert_eq!(profile.uuid, None);

    let long = "x".repeat(256);
    let bad = json!({"profile": {
        "firstName": long, "middleName": "J", "enabled": "yes", "uuid": null,
        "contacts": [{"key": "fax", "value": "1"}, {"key": "email", "value": "nope"}]
    }});
    let error = parse_profile(bad.as_object().unwrap()).unwrap_err();
    let fields: Vec<&str> = error.fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        fields,
        [
            "profile.firstName",
            "profile.lastName",
            "profile.contacts.0.key",
            "profile.contacts.1.value",
            "profile.enabled"
        ]
    );
    assert!(looks_like_phone("+1 (555) 010-9999"));
    assert!(!looks_like_phone("12+34"));
    assert!(looks_like_email("a.b@c.example"));
    assert!(!looks_like_email("a@b"));
}
