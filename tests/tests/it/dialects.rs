//! The other vendors' click APIs ("dialects") against the running server on SQLite and
//! PostgreSQL: each seed's documented requests, response shapes and error cases replayed, and
//! clicks created through a dialect found in the clicks table (what Keitaro's log and reports
//! read) and through the other dialects.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard::model::{NewCampaign, NewStream, ObjectState, StreamSchema, StreamType};
use switchyard_tests::{Backend, TestDb, TestServer, client, test_data};

const OPEN_API_TOKEN: &str = "open-api-token-0123456789";
const HOQU_KEY: &str = "00000000-0000-0000-0000-000000000000";
const REST_TOKEN: &str = "rest-clicks-token-0123456789";
const REST_BASE: &str = "/partner/v2";
const OPEN_API: &str = "/backend/open-api/v1/users/clicks";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
/// In the GeoIP test database: London, United Kingdom (51.5142, -0.0931).
const LONDON: &str = "81.2.69.160";
/// In the GeoIP test database: Milton, Washington, United States (47.2513, -122.3149).
const MILTON: &str = "216.160.83.56";

fn config(extra: &str) -> String {
    format!(
        "[demo]\nseed = false\n\n[geoip]\ncity_db = \"{}\"\n\n[dialects]\nopen_api_token = \"{OPEN_API_TOKEN}\"\nhoqu_secure_key = \"{HOQU_KEY}\"\nrest_clicks_token = \"{REST_TOKEN}\"\nrest_clicks_base_path = \"{REST_BASE}\"\nrest_clicks_campaign = \"partner\"\n{extra}",
        test_data("geoip/GeoIP2-City-Test.mmdb").display()
    )
}

async fn start(db: &TestDb) -> TestServer {
    TestServer::start(db, &config("")).await.unwrap()
}

/// The objects the dialects click through.
struct World {
    /// `partner`: a stream to `offer` for GB visitors only, a stream to `second`.
    campaign: i64,
    /// `capped`: a stream to `offer` with `limit` total 1.
    capped: i64,
    /// `paused`: a disabled campaign.
    paused: i64,
    /// Active, redirects to https://adv.test/?click_id={subid}.
    offer: i64,
    /// Active, with a daily conversion cap of 1 that is reached.
    second: i64,
    /// Disabled.
    inactive: i64,
    /// Active, but no stream sends traffic to it.
    unused: i64,
}

async fn world(server: &TestServer, db: &TestDb) -> World {
    let store = server.store();
    let offer = server
        .external_offer("Test Offer", "https://adv.test/?click_id={subid}")
        .await;
    let second = server
        .external_offer("Capped Offer", "https://second.test/?c={subid}")
        .await;
    let inactive = server
        .external_offer("Old Offer", "https://old.test/")
        .await;
    let unused = server
        .external_offer("Unused", "https://unused.test/")
        .await;
    db.execute(&format!(
        "UPDATE offers SET state = 'disabled' WHERE id = {inactive}"
    ))
    .await
    .unwrap();
    db.execute(&format!(
        "UPDATE offers SET daily_cap = 1 WHERE id = {second}"
    ))
    .await
    .unwrap();
    db.execute(&format!(
        "INSERT INTO conversions (sub_id, tid, offer_id, status, created_at, updated_at) \
         VALUES ('earlier-click', '', {second}, 'lead', {now}, {now})",
        now = switchyard::model::unix_now()
    ))
    .await
    .unwrap();

    let campaign = store
        .create_campaign(&NewCampaign::new("partner", "Partner", "tok-partner"))
        .await
        .unwrap()
        .id;
    let mut gb = NewStream::new(
        campaign,
        StreamType::Regular,
        StreamSchema::Landings,
        "http",
    )
    .filter("country", "accept", json!(["GB"]));
    gb.offers = vec![(offer, 100), (inactive, 100)];
    store.create_stream(&gb).await.unwrap();
    let mut any = NewStream::new(
        campaign,
        StreamType::Regular,
        StreamSchema::Landings,
        "http",
    );
    any.position = 2;
    any.offers = vec![(second, 100)];
    store.create_stream(&any).await.unwrap();

    let capped = store
        .create_campaign(&NewCampaign::new("capped", "Capped", "tok-capped"))
        .await
        .unwrap()
        .id;
    let mut limited = NewStream::new(capped, StreamType::Regular, StreamSchema::Landings, "http")
        .filter("limit", "accept", json!({"total": 1}));
    limited.offers = vec![(offer, 100)];
    store.create_stream(&limited).await.unwrap();

    let paused = store
        .create_campaign(&NewCampaign {
            state: ObjectState::Disabled,
            ..NewCampaign::new("paused", "Paused", "tok-paused")
        })
        .await
        .unwrap()
        .id;
    server.reload().await;
    World {
        campaign,
        capped,
        paused,
        offer,
        second,
        inactive,
        unused,
    }
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

/// Waits until `sql` (a COUNT AS n) reaches `expected` (clicks from Keitaro's paths are written
/// asynchronously).
async fn wait_for_count(db: &TestDb, sql: &str, expected: i64) {
    for _ in 0..100 {
        if db.count(sql).await.unwrap() == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{sql} never reached {expected}");
}

// ---------------------------------------------------------------------------------------------
// Seed 003: GET /api/click/create

fn hoqu_url(server: &TestServer, pairs: &[(&str, String)]) -> String {
    reqwest::Url::parse_with_params(
        &server.url("/api/click/create"),
        pairs.iter().map(|(k, v)| (*k, v.as_str())),
    )
    .unwrap()
    .to_string()
}

/// The seed's request: every documented parameter, optional ones mostly empty.
fn hoqu_request(offer: i64, campaign: i64, ip: &str, ua: &str) -> Vec<(&'static str, String)> {
    vec![
        ("secure_key", HOQU_KEY.to_string()),
        ("offer_id", offer.to_string()),
        ("campaign_id", campaign.to_string()),
        ("promo_id", "522".to_string()),
        ("user_ip", ip.to_string()),
        ("user_useragent", ua.to_string()),
        ("user_referrer", "https://vk.com".to_string()),
        ("utm_source", "yandex_direct".to_string()),
        ("utm_medium", String::new()),
        ("utm_campaign", "spring".to_string()),
        ("utm_term", String::new()),
        ("utm_content", String::new()),
        ("subid1", "s1".to_string()),
        ("subid2", String::new()),
        ("subid3", String::new()),
        ("subid4", String::new()),
        ("subid5", String::new()),
        ("subid6", "s6".to_string()),
    ]
}

async fn get_json(url: &str) -> (StatusCode, Value) {
    let response = client().get(url).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status} {url}: {text}"));
    (status, body)
}

async fn hoqu_replays_the_seed(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = start(&db).await;
    let w = world(&server, &db).await;

    // 200: the documented success shape.
    let request = hoqu_request(w.offer, w.campaign, LONDON, "Mazila Chrome/7.7.7");
    let (status, first) = get_json(&hoqu_url(&server, &request)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        keys(&first),
        BTreeSet::from(["data".into(), "status".into(), "code".into()])
    );
    assert_eq!(first["status"], "success");
    assert_eq!(first["code"], 200);
    let data = &first["data"];
    assert_eq!(
        keys(data),
        BTreeSet::from(["click_id", "params", "exists", "session_id"].map(String::from))
    );
    let click_id = data["click_id"].as_str().unwrap().to_string();
    assert_eq!(data["params"], json!({ "click_id": click_id }));
    assert_eq!(data["exists"], false);
    let session = data["session_id"].as_str().unwrap().to_string();
    assert_eq!(session.len(), 36, "UUID-shaped: {session}");
    assert_eq!(session.matches('-').count(), 4);

    // The same IP + user agent + campaign (+ offer) within 300 s: the same click, exists: true.
    let (status, again) = get_json(&hoqu_url(&server, &request)).await;
    assert_eq!(status, 200);
    assert_eq!(again["data"]["click_id"], click_id.as_str());
    assert_eq!(again["data"]["exists"], true);
    assert_eq!(again["data"]["session_id"], session.as_str());
    // Another user agent is another click.
    let other = hoqu_request(w.offer, w.campaign, LONDON, "Other Browser/1.0");
    let (_, other) = get_json(&hoqu_url(&server, &other)).await;
    assert_eq!(other["data"]["exists"], false);
    assert_ne!(other["data"]["click_id"], click_id.as_str());

    // The click is stored, routed and enriched, without the secure key.
    let rows = db
        .rows(
            &format!("SELECT campaign_id, offer_id, stream_id, creative_id, sub_id_1, sub_id_6, source, utm_source, utm_campaign, referrer, country_code, destination, params FROM clicks WHERE sub_id = '{click_id}'"),
            &["campaign_id", "offer_id", "stream_id", "creative_id", "sub_id_1", "sub_id_6", "source", "utm_source", "utm_campaign", "referrer", "country_code", "destination", "params"],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["campaign_id"], w.campaign.to_string());
    assert_eq!(row["offer_id"], w.offer.to_string());
    assert_ne!(row["stream_id"], "NULL");
    assert_eq!(row["creative_id"], "522", "promo_id is the creative");
    assert_eq!(row["sub_id_1"], "s1");
    assert_eq!(row["sub_id_6"], "s6");
    assert_eq!(row["source"], "yandex_direct");
    assert_eq!(row["utm_source"], "yandex_direct");
    assert_eq!(row["utm_campaign"], "spring");
    assert_eq!(row["referrer"], "https://vk.com");
    assert_eq!(row["country_code"], "GB");
    assert_eq!(
        row["destination"],
        format!("https://adv.test/?click_id={click_id}")
    );
    assert!(!row["params"].contains(HOQU_KEY), "{}", row["params"]);

    // 202 trafficback answers, exactly as documented.
    let trafficback =
        |reason: &str| json!({ "reason": reason, "status": "trafficback", "code": 202 });
    for (request, reason) in [
        (
            hoqu_request(w.inactive, w.campaign, LONDON, "UA-1"),
            "offer_inactive",
        ),
        (
            hoqu_request(w.offer, w.paused, LONDON, "UA-2"),
            "campaign_inactive",
        ),
        (
            hoqu_request(w.offer, w.campaign, MILTON, "UA-3"),
            "targeting",
        ),
        (
            hoqu_request(w.second, w.campaign, MILTON, "UA-4"),
            "overcap",
        ),
    ] {
        let (status, body) = get_json(&hoqu_url(&server, &request)).await;
        assert_eq!(
            (status.as_u16(), &body),
            (202, &trafficback(reason)),
            "{reason}"
        );
    }
    // A stream's `limit` is a cap too: the first click passes, the next is over the cap.
    let (status, _) = get_json(&hoqu_url(
        &server,
        &hoqu_request(w.offer, w.capped, MILTON, "UA-5"),
    ))
    .await;
    assert_eq!(status, 200);
    let (status, body) = get_json(&hoqu_url(
        &server,
        &hoqu_request(w.offer, w.capped, MILTON, "UA-6"),
    ))
    .await;
    assert_eq!((status.as_u16(), body), (202, trafficback("overcap")));

    // 400: the documented message names the field.
    let invalid = |field: &str| json!({ "message": format!("Field request.{field} is not valid"), "status": "error", "code": 400 });
    let with = |name: &'static str, value: &str| {
        let mut request = hoqu_request(w.offer, w.campaign, LONDON, "UA-7");
        request.retain(|(k, _)| *k != name);
        if !value.is_empty() {
            request.push((name, value.to_string()));
        }
        request
    };
    for (name, value) in [
        ("offer_id", "abc"),
        ("offer_id", ""),
        ("offer_id", "999999"),
        ("campaign_id", "-1"),
        ("campaign_id", "999999"),
        ("promo_id", ""),
        ("promo_id", "0"),
        ("user_ip", "111.222.333.444"),
        ("user_useragent", ""),
    ] {
        let (status, body) = get_json(&hoqu_url(&server, &with(name, value))).await;
        assert_eq!(
            (status.as_u16(), &body),
            (400, &invalid(name)),
            "{name}={value}"
        );
    }
    // 403: the key, and offers no stream of the campaign sends traffic to.
    let denied = json!({ "message": "Access denied", "status": "error", "code": 403 });
    for key in ["", "wrong-key-0000000000", &HOQU_KEY[1..]] {
        let (status, body) = get_json(&hoqu_url(&server, &with("secure_key", key))).await;
        assert_eq!((status.as_u16(), &body), (403, &denied), "key {key:?}");
    }
    let (status, body) = get_json(&hoqu_url(
        &server,
        &hoqu_request(w.unused, w.campaign, LONDON, "UA-8"),
    ))
    .await;
    assert_eq!(
        (status.as_u16(), body),
        (
            403,
            json!({ "message": "Click api disabled for this offer", "status": "error", "code": 403 })
        )
    );

    // Concurrent identical requests: one click, every answer names it.
    let request = hoqu_request(w.offer, w.campaign, LONDON, "Burst/1.0");
    let url = hoqu_url(&server, &request);
    let answers = futures_join(8, || {
        let url = url.clone();
        async move { get_json(&url).await }
    })
    .await;
    let ids: BTreeSet<String> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            body["data"]["click_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(
        answers
            .iter()
            .filter(|(_, b)| b["data"]["exists"] == false)
            .count(),
        1,
        "exactly one answer created the click"
    );
    let burst = ids.into_iter().next().unwrap();
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) AS n FROM clicks WHERE sub_id = '{burst}'"
        ))
        .await
        .unwrap(),
        1
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM clicks WHERE user_agent = 'Burst/1.0'")
            .await
            .unwrap(),
        1
    );

    // 500: a storage failure answers the documented shape, nothing more.
    db.execute("DROP TABLE dialect_click_keys").await.unwrap();
    let (status, body) = get_json(&hoqu_url(
        &server,
        &hoqu_request(w.offer, w.campaign, LONDON, "UA-9"),
    ))
    .await;
    assert_eq!(
        (status.as_u16(), body),
        (
            500,
            json!({ "message": "Something bad happened on the server side, administration notified", "status": "error", "code": 500 })
        )
    );
    server.stop().await;
}

/// Runs `count` copies of `make()` concurrently.
async fn futures_join<F, Fut>(count: usize, make: F) -> Vec<(StatusCode, Value)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (StatusCode, Value)> + Send + 'static,
{
    let handles: Vec<_> = (0..count).map(|_| tokio::spawn(make())).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn sqlite_hoqu_replays_the_seed() {
    hoqu_replays_the_seed(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_hoqu_replays_the_seed() {
    hoqu_replays_the_seed(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------------
// Seed 001: /backend/open-api/v1/users/clicks

/// One row of the seed's example response.
const SEED_001_ROW: &str = r#"{
    "id": 184568, "hash": "12e9d2d9f07cb9a097bac01a127c9e00", "group_hash": "12e9d2d9f07cb9a097bac01a127c9e00",
    "offer_id": 3, "offer_name": "Test Offer", "offer_url_id": 132, "advertiser_id": 1, "advertiser_name": "PlayGamesl",
    "aff_group_id": null, "brand_id": 1, "affiliate_id": 513, "affiliate_name": "John Doe", "device_model": "",
    "device_brand": "", "sale_status": "New", "advertiser_external_id": null, "adv_sub": null, "adv_sub2": null,
    "adv_sub3": null, "adv_sub4": null, "adv_sub5": null, "device_os": "UNK", "aff_sub": "", "aff_sub2": "",
    "aff_sub3": "", "aff_sub4": "", "aff_sub5": "", "aff_sub6": "", "aff_sub7": "", "aff_sub8": "", "aff_sub9": "",
    "aff_sub10": "", "aff_sub11": "", "aff_sub12": "", "aff_sub13": "", "aff_sub14": "", "aff_sub15": "",
    "aff_sub16": "", "aff_sub17": "", "aff_sub18": "", "aff_sub19": "", "aff_sub20": "", "affiliate_source": "",
    "user_agent": "Google Chrome", "browser": "Google Chrome", "ip": "111.222.333.444", "device_os_version": "UNK",
    "platform": "", "mobile_carrier": "UNK", "country_code": "NL", "region_code": "NH", "external_id": null,
    "has_conversions": true, "requested_link": "<http://example.com/offer/3?affiliate_id=513>",
    "redirected_link": "<https://second.example.net/{free_1}?aff_id={free_2}>", "is_unique": true,
    "created_at": "2024-10-10 11:24:09"
}"#;

fn open_api(server: &TestServer, path_and_query: &str) -> String {
    server.url(&format!("{OPEN_API}{path_and_query}"))
}

async fn open_api_get(url: &str) -> (StatusCode, Value) {
    let response = client()
        .get(url)
        .bearer_auth(OPEN_API_TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn open_api_create(server: &TestServer, body: Value) -> (StatusCode, Value) {
    let response = client()
        .post(open_api(server, ""))
        .bearer_auth(OPEN_API_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn open_api_replays_the_seed(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = start(&db).await;
    let w = world(&server, &db).await;

    // Bearer auth: missing and wrong tokens are 401 with a challenge.
    for token in [None, Some("wrong-token-0123456789")] {
        let mut request = client().get(open_api(&server, ""));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let body: Value = response.json().await.unwrap();
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let wrong_scheme = client()
        .get(open_api(&server, ""))
        .header("authorization", format!("Basic {OPEN_API_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_scheme.status(), 401);
    // Another dialect's token is not this one's.
    let other = client()
        .get(open_api(&server, ""))
        .bearer_auth(REST_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 401);

    // Creating clicks: an affiliate's click on an offer.
    let (status, created) = open_api_create(
        &server,
        json!({
            "offer_id": w.offer, "affiliate_id": 513, "ip": LONDON, "user_agent": CHROME,
            "aff_sub": "a1", "aff_sub2": 22, "aff_sub20": "a20", "affiliate_source": "newsletter",
            "adv_sub": "adv-1", "external_id": "ext-9",
            "requested_link": "http://example.com/offer/3?affiliate_id=513&utm_source=mail",
        }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let row = &created["data"];
    let seed_row: Value = serde_json::from_str(SEED_001_ROW).unwrap();
    assert_eq!(
        keys(row),
        keys(&seed_row),
        "every field of the seed's rows, no other"
    );
    let hash = row["hash"].as_str().unwrap().to_string();
    assert_eq!(row["offer_id"], w.offer);
    assert_eq!(row["offer_name"], "Test Offer");
    assert_eq!(row["affiliate_id"], 513);
    assert_eq!(
        row["affiliate_name"],
        Value::Null,
        "no traffic source 513 is stored"
    );
    assert_eq!(row["aff_sub"], "a1");
    assert_eq!(row["aff_sub2"], "22");
    assert_eq!(row["aff_sub3"], "");
    assert_eq!(row["aff_sub20"], "a20");
    assert_eq!(row["adv_sub"], "adv-1");
    assert_eq!(row["adv_sub2"], Value::Null);
    assert_eq!(row["affiliate_source"], "newsletter");
    assert_eq!(row["external_id"], "ext-9");
    assert_eq!(row["ip"], LONDON);
    assert_eq!(row["user_agent"], CHROME);
    assert_eq!(row["browser"], "Chrome");
    assert_eq!(row["device_os"], "Windows");
    assert_eq!(row["platform"], "desktop");
    assert_eq!(row["mobile_carrier"], "UNK");
    assert_eq!(row["country_code"], "GB");
    assert_eq!(row["region_code"], "ENG");
    assert_eq!(row["sale_status"], "New");
    assert_eq!(row["has_conversions"], false);
    assert_eq!(row["is_unique"], true);
    assert_eq!(
        row["requested_link"],
        "http://example.com/offer/3?affiliate_id=513&utm_source=mail"
    );
    assert_eq!(
        row["redirected_link"],
        format!("https://adv.test/?click_id={hash}")
    );
    let created_at = row["created_at"].as_str().unwrap();
    assert_eq!(created_at.len(), 19, "2024-10-10 11:24:09: {created_at}");
    assert_eq!(&created_at[10..11], " ");
    let id = row["id"].as_i64().unwrap();

    // Two more clicks, one of another affiliate, one on another offer (through its campaign).
    let (status, _) = open_api_create(
        &server,
        json!({"offer_id": w.offer, "affiliate_id": 600, "ip": MILTON, "user_agent": CHROME}),
    )
    .await;
    assert_eq!(status, 201);
    let form = client()
        .post(open_api(&server, ""))
        .bearer_auth(OPEN_API_TOKEN)
        .form(&[
            ("offer_id", w.second.to_string()),
            ("affiliate_id", "513".into()),
            ("ip", MILTON.into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 201, "a form body works too");

    // The envelope, filters and pagination.
    let (status, page) = open_api_get(&open_api(&server, "")).await;
    assert_eq!(status, 200);
    assert_eq!(
        keys(&page),
        BTreeSet::from(["data", "total", "per_page", "page", "pages"].map(String::from))
    );
    assert_eq!(
        (
            page["total"].as_i64(),
            page["per_page"].as_i64(),
            page["page"].as_i64(),
            page["pages"].as_i64()
        ),
        (Some(3), Some(200), Some(1), Some(1))
    );
    assert_eq!(page["data"].as_array().unwrap().len(), 3);
    assert_eq!(page["data"][2]["id"], id, "newest first");
    let total = |query: &str| {
        let url = open_api(&server, query);
        async move {
            let (status, body) = open_api_get(&url).await;
            assert_eq!(status, 200, "{body}");
            body["total"].as_i64().unwrap()
        }
    };
    assert_eq!(total("?affiliate_id=513").await, 2);
    assert_eq!(total(&format!("?offer_id={}", w.offer)).await, 2);
    assert_eq!(
        total(&format!("?affiliate_id=513&offer_id={}", w.second)).await,
        1
    );
    assert_eq!(total("?created_from=2024-07-08%2013:40:00").await, 3);
    assert_eq!(total("?created_to=2024-07-20%2013:40:00").await, 0);
    assert_eq!(
        total("?created_at_from=2024-07-08&created_at_to=2999-01-01").await,
        3
    );
    assert_eq!(
        total("?created_from=&affiliate_id=").await,
        3,
        "empty values filter nothing"
    );
    let (_, second_page) = open_api_get(&open_api(&server, "?per_page=2&page=2")).await;
    assert_eq!(
        (
            second_page["total"].as_i64(),
            second_page["pages"].as_i64(),
            second_page["page"].as_i64()
        ),
        (Some(3), Some(2), Some(2))
    );
    assert_eq!(second_page["data"].as_array().unwrap().len(), 1);
    assert_eq!(second_page["data"][0]["id"], id);

    // One click by id, in the same envelope.
    let (status, one) = open_api_get(&open_api(&server, &format!("/{id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(one["total"], 1);
    assert_eq!(one["data"][0]["hash"], hash.as_str());
    let (status, missing) = open_api_get(&open_api(&server, "/99999999")).await;
    assert_eq!(status, 404, "{missing}");
    assert!(missing["message"].is_string());

    // A conversion on the click shows.
    db.execute(&format!(
        "INSERT INTO conversions (sub_id, tid, status, created_at, updated_at) VALUES ('{hash}', 't1', 'lead', 1, 1)"
    ))
    .await
    .unwrap();
    let (_, one) = open_api_get(&open_api(&server, &format!("/{id}"))).await;
    assert_eq!(one["data"][0]["has_conversions"], true);

    // Bad input: 400 naming each field, never a 5xx.
    for (query, fields) in [
        ("/abc", vec!["id"]),
        ("?offer_id=abc", vec!["offer_id"]),
        (
            "?affiliate_id=-3&created_from=yesterday",
            vec!["affiliate_id", "created_from"],
        ),
        ("?per_page=0&page=0", vec!["page", "per_page"]),
        ("?per_page=100000", vec!["per_page"]),
    ] {
        let (status, body) = open_api_get(&open_api(&server, query)).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(
            keys(&body["errors"]),
            fields.iter().map(|f| f.to_string()).collect(),
            "{query}: {body}"
        );
    }
    for (body, fields) in [
        (json!({}), vec!["ip", "offer_id"]),
        (
            json!({"offer_id": "x", "ip": "1.2.3"}),
            vec!["ip", "offer_id"],
        ),
        (json!({"offer_id": 999999, "ip": LONDON}), vec!["offer_id"]),
        (
            json!({"offer_id": w.inactive, "ip": LONDON}),
            vec!["offer_id"],
        ),
        (
            json!({"offer_id": w.unused, "ip": LONDON}),
            vec!["offer_id"],
        ),
        (
            json!({"offer_id": w.offer, "campaign_id": w.paused, "ip": LONDON}),
            vec!["campaign_id"],
        ),
        (
            json!({"offer_id": w.offer, "ip": LONDON, "requested_link": "javascript:alert(1)"}),
            vec!["requested_link"],
        ),
        (
            json!({"offer_id": w.offer, "ip": LONDON, "aff_sub": ["x"]}),
            vec!["aff_sub"],
        ),
        (
            json!({"offer_id": w.offer, "ip": LONDON, "user_agent": "x".repeat(3000)}),
            vec!["user_agent"],
        ),
    ] {
        let (status, answer) = open_api_create(&server, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(
            keys(&answer["errors"]),
            fields.iter().map(|f| f.to_string()).collect(),
            "{body}: {answer}"
        );
    }
    let not_json = client()
        .post(open_api(&server, ""))
        .bearer_auth(OPEN_API_TOKEN)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn sqlite_open_api_replays_the_seed() {
    open_api_replays_the_seed(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_open_api_replays_the_seed() {
    open_api_replays_the_seed(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------------
// Seed 004: [base]/clicks

/// The seed's Click object example.
const SEED_004_CLICK: &str = r#"{
  "clickId": "6006dda272f002519c3eb505", "time": "2021-01-01T00:00:00+00:00", "referrer": "https://twitter.com",
  "ip": "185.155.96.184",
  "uri": "https://my.stage.org/register?referral=1&utm_campaign=sport&utm_content=UEFA&utm_medium=banner&utm_source=youtube.com&utm_term=bitcoin",
  "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.1.2 Safari/605.1.15",
  "utmCampaign": "sport", "utmContent": "UEFA", "utmMedium": "banner", "utmSource": "youtube.com", "utmTerm": "bitcoin",
  "profileId": "6006dda272f002519c3eb505", "linkId": "6006dda272f002519c3eb505", "bannerId": "6006dda272f002519c3eb505",
  "bannerName": "Tight Spreads", "bannerCdnFileUrl": "https://s3.eu-west-2.amazonaws.com/stage.org/en/200x200/Tight+Spreads.png",
  "latitude": "37.751", "longitude": "-97.822", "countryCode": "US", "countryName": "United States",
  "createTime": "2021-01-01T00:00:00+00:00", "updateTime": "2021-01-01T00:00:00+00:00", "uuid": null
}"#;

/// The seed's "Update a click" body.
const SEED_004_UPDATE: &str = r#"{
  "profile": {
    "firstName": "Mary", "lastName": "Smith", "middleName": "Jane", "enabled": true, "uuid": null,
    "contacts": [
      { "key": "email", "value": "client@email.com", "uuid": null },
      { "key": "phone", "value": "+9876543210", "uuid": null }
    ]
  }
}"#;

fn rest(server: &TestServer, path_and_query: &str) -> String {
    server.url(&format!("{REST_BASE}/clicks{path_and_query}"))
}

async fn rest_send(
    request: reqwest::RequestBuilder,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = request.bearer_auth(REST_TOKEN).send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}"))
    };
    (status, headers, body)
}

async fn rest_get(server: &TestServer, path_and_query: &str) -> (StatusCode, Value) {
    let (status, _, body) = rest_send(client().get(rest(server, path_and_query))).await;
    (status, body)
}

async fn rest_clicks_replays_the_seed(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = start(&db).await;
    let w = world(&server, &db).await;
    let http = client();

    // Bearer auth.
    let anonymous = http.get(rest(&server, "")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = http
        .delete(rest(&server, "/x"))
        .bearer_auth(OPEN_API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // Only under the configured base path.
    assert_eq!(
        http.get(server.url("/clicks"))
            .bearer_auth(REST_TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Add a new click: the seed's own body. Its uri names no campaign alias, so the configured
    // campaign records it; its IP is not in the test GeoIP database.
    let seed_body = json!({
        "ip": "185.155.96.184",
        "uri": "https://my.stage.org/register?referral=1",
        "locale": null,
        "referrer": "https://twitter.com",
        "time": "2021-01-01T00:00:00+00:00",
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.1.2 Safari/605.1.15",
        "uuid": null
    });
    let (status, _, seed_click) = rest_send(http.post(rest(&server, "")).json(&seed_body)).await;
    assert_eq!(status, 201, "{seed_click}");
    let seed_shape: Value = serde_json::from_str(SEED_004_CLICK).unwrap();
    assert_eq!(
        keys(&seed_click),
        keys(&seed_shape),
        "the seed's Click object, field for field"
    );
    assert_eq!(seed_click["time"], "2021-01-01T00:00:00+00:00");
    assert_eq!(seed_click["referrer"], "https://twitter.com");
    assert_eq!(
        seed_click["uri"],
        "https://my.stage.org/register?referral=1"
    );
    assert_eq!(seed_click["linkId"], w.campaign.to_string());
    assert_eq!(seed_click["latitude"], Value::Null);
    assert_eq!(seed_click["uuid"], Value::Null);
    assert_eq!(seed_click["profileId"], Value::Null);
    assert_ne!(
        seed_click["createTime"], seed_click["time"],
        "created now, clicked in 2021"
    );

    // UTM fields come from the uri; latitude, longitude and country from the IP; the campaign
    // from the uri's first path segment.
    let (status, _, click) = rest_send(http.post(rest(&server, "")).json(&json!({
        "ip": MILTON,
        "uri": "https://tracker.test/capped?referral=1&utm_campaign=sport&utm_content=UEFA&utm_medium=banner&utm_source=youtube.com&utm_term=bitcoin",
        "locale": "en_US",
        "referrer": "https://twitter.com",
        "userAgent": CHROME,
        "uuid": "u-1",
    }))).await;
    assert_eq!(status, 201, "{click}");
    assert_eq!(click["utmCampaign"], "sport");
    assert_eq!(click["utmContent"], "UEFA");
    assert_eq!(click["utmMedium"], "banner");
    assert_eq!(click["utmSource"], "youtube.com");
    assert_eq!(click["utmTerm"], "bitcoin");
    assert_eq!(click["latitude"], "47.2513");
    assert_eq!(click["longitude"], "-122.3149");
    assert_eq!(click["countryCode"], "US");
    assert_eq!(click["countryName"], "United States");
    assert_eq!(click["linkId"], w.capped.to_string());
    assert_eq!(click["uuid"], "u-1");
    let click_id = click["clickId"].as_str().unwrap().to_string();
    let seed_id = seed_click["clickId"].as_str().unwrap().to_string();

    // Get click details, with every query expansion.
    let (status, details) = rest_get(
        &server,
        &format!("/{click_id}?query[link]=1&query[profile]=1&query[metrics]=1&query[contacts]=1"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(details["clickId"], click_id.as_str());
    assert_eq!(details["link"]["linkId"], w.capped.to_string());
    assert_eq!(details["link"]["alias"], "capped");
    assert_eq!(details["metrics"]["clicks"], 1);
    assert_eq!(details["metrics"]["registrations"], 0);
    assert_eq!(details["profile"], Value::Null);
    assert_eq!(details["contacts"], json!([]));
    let (status, plain) = rest_get(&server, &format!("/{click_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        keys(&plain),
        keys(&seed_shape),
        "no expansions unless asked"
    );

    // Update a click: the seed's body attaches the profile; PATCH works like PUT.
    let update: Value = serde_json::from_str(SEED_004_UPDATE).unwrap();
    let (status, _, updated) = rest_send(
        http.put(rest(&server, &format!("/{click_id}")))
            .json(&update),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    let profile_id = updated["profileId"]
        .as_str()
        .expect("a profile")
        .to_string();
    let (_, expanded) = rest_get(
        &server,
        &format!("/{click_id}?query[profile]=1&query[contacts]=1&query[metrics]=1"),
    )
    .await;
    assert_eq!(expanded["profile"]["firstName"], "Mary");
    assert_eq!(expanded["profile"]["middleName"], "Jane");
    assert_eq!(expanded["profile"]["enabled"], true);
    assert_eq!(
        expanded["contacts"],
        json!([
            {"key": "email", "value": "client@email.com", "uuid": null},
            {"key": "phone", "value": "+9876543210", "uuid": null}
        ])
    );
    assert_eq!(expanded["metrics"]["registrations"], 1);
    let mut patch = update.clone();
    patch["profile"]["lastName"] = json!("Smith-Jones");
    patch["profile"]["tag"] = json!(61);
    patch["profile"]["countryName"] = json!("United States");
    patch["profile"]["contacts"] =
        json!([{"key": "email", "value": "a31b1402@privaterelay.appleid.com"}]);
    let (status, _, patched) = rest_send(
        http.patch(rest(&server, &format!("/{click_id}")))
            .json(&patch),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        patched["profileId"],
        profile_id.as_str(),
        "the same profile, updated"
    );
    let (_, again) = rest_get(&server, &format!("/{click_id}?query[profile]=1")).await;
    assert_eq!(again["profile"]["lastName"], "Smith-Jones");
    assert_eq!(again["profile"]["tag"], "61");

    // Update errors: field by field, with the documented length limits.
    for (body, field) in [
        (json!({}), "profile"),
        (json!({"profile": "Mary"}), "profile"),
        (
            json!({"profile": {"lastName": "S", "middleName": "J", "enabled": true, "uuid": null, "contacts": []}}),
            "profile.firstName",
        ),
        (
            json!({"profile": {"firstName": "x".repeat(256), "lastName": "S", "middleName": "J", "enabled": true, "uuid": null, "contacts": []}}),
            "profile.firstName",
        ),
        (
            json!({"profile": {"firstName": "M", "lastName": "S", "middleName": "J", "enabled": true, "contacts": []}}),
            "profile.uuid",
        ),
        (
            json!({"profile": {"firstName": "M", "lastName": "S", "middleName": "J", "enabled": "yes", "uuid": null, "contacts": []}}),
            "profile.enabled",
        ),
        (
            json!({"profile": {"firstName": "M", "lastName": "S", "middleName": "J", "enabled": true, "uuid": null}}),
            "profile.contacts",
        ),
        (
            json!({"profile": {"firstName": "M", "lastName": "S", "middleName": "J", "enabled": true, "uuid": null, "contacts": [{"key": "fax", "value": "1"}]}}),
            "profile.contacts.0.key",
        ),
        (
            json!({"profile": {"firstName": "M", "lastName": "S", "middleName": "J", "enabled": true, "uuid": null, "contacts": [{"key": "email", "value": "y".repeat(256)}]}}),
            "profile.contacts.0.value",
        ),
        (
            json!({"profile": {"firstName": "M", "lastName": "S", "middleName": "J", "enabled": true, "uuid": "z".repeat(256), "contacts": []}}),
            "profile.uuid",
        ),
    ] {
        let (status, _, answer) =
            rest_send(http.put(rest(&server, &format!("/{click_id}"))).json(&body)).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["errors"].get(field).is_some(), "{field} in {answer}");
    }
    let (status, _, _) = rest_send(http.put(rest(&server, "/no-such-click")).json(&update)).await;
    assert_eq!(status, 404);

    // The list: the seed's example request (every filter and expansion) is understood.
    let seed_list = "?limit=10&offset=0&sort_by=createTime&sort_order=desc&filter[bannerId]=6006dda272f002519c3eb505&filter[clickStartTime]=2021-01-01T00:00:00+00:00&filter[clickEndTime]=2021-01-31T23:59:59+00:00&filter[countryCode]=US&filter[countryName]=United States&filter[ip]=185.155.96.184&filter[linkId]=6006dda272f002519c3eb505&filter[latitude]=37.751&filter[longitude]=-97.822&filter[registration]=1&filter[profileName]=Mary Jane Smith&filter[profileContacts]=a31b1402@privaterelay.appleid.com&filter[profileCountryName]=United States&filter[referrer]=https://twitter.com&filter[tag]=61&filter[uri]=https://my.my.stage.org/register?referral=1&filter[userAgent]=Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.1.2 Safari/605.1.15&filter[utmCampaign]=sport&filter[utmContent]=UEFA&filter[utmContent]=banner&filter[utmContent]=youtube.com&filter[utmContent]=bitcoin&filter[uuid]=9&query[link]=1&query[profile]=1&query[metrics]=1&query[contacts]=1";
    let (status, headers, listed) = rest_send(http.get(rest(&server, seed_list))).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed,
        json!([]),
        "no click matches all of the example's filters"
    );
    assert_eq!(headers["x-total-count"], "0");

    // Each filter on its own.
    let ids = |body: &Value| -> Vec<String> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|c| c["clickId"].as_str().unwrap().to_string())
            .collect()
    };
    let only = |id: &str| vec![id.to_string()];
    for (query, expected) in [
        ("?filter[utmCampaign]=sport", only(&click_id)),
        (
            "?filter[utmContent]=UEFA&filter[utmContent]=other",
            only(&click_id),
        ),
        ("?filter[registration]=1", only(&click_id)),
        ("?filter[registration]=0", only(&seed_id)),
        ("?filter[profileName]=mary smith-jones", vec![]),
        ("?filter[profileName]=Mary Jane", only(&click_id)),
        (
            "?filter[profileContacts]=A31B1402@privaterelay.appleid.com",
            only(&click_id),
        ),
        ("?filter[profileCountryName]=united states", only(&click_id)),
        ("?filter[tag]=61", only(&click_id)),
        ("?filter[countryCode]=us", only(&click_id)),
        ("?filter[countryName]=United States", only(&click_id)),
        (
            "?filter[latitude]=47.2513&filter[longitude]=-122.3149",
            only(&click_id),
        ),
        ("?filter[latitude]=37.751", vec![]),
        (&format!("?filter[linkId]={}", w.capped), only(&click_id)),
        ("?filter[ip]=185.155.96.184", only(&seed_id)),
        (
            "?filter[referrer]=https://twitter.com&sort_by=time&sort_order=asc",
            vec![seed_id.clone(), click_id.clone()],
        ),
        (
            "?filter[uri]=https://my.stage.org/register?referral=1",
            only(&seed_id),
        ),
        (
            "?filter[userAgent]=Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.1.2 Safari/605.1.15",
            only(&seed_id),
        ),
        ("?filter[uuid]=u-1", only(&click_id)),
        (
            "?filter[clickStartTime]=2021-01-01T00:00:00+00:00&filter[clickEndTime]=2021-01-31T23:59:59+00:00",
            only(&seed_id),
        ),
        (
            "?filter[clickStartTime]=2021-02-01T00:00:00%2B00:00",
            only(&click_id),
        ),
        ("?filter[bannerId]=nothing", vec![]),
        ("?filter[linkId]=6006dda272f002519c3eb505", vec![]),
        (
            "?sort_by=time&sort_order=desc",
            vec![click_id.clone(), seed_id.clone()],
        ),
        (
            "?sort_by=time&sort_order=asc&limit=1&offset=1",
            only(&click_id),
        ),
    ] {
        let (status, body) = rest_get(&server, query).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(ids(&body), expected, "{query}");
    }
    // Every listed sort field, both directions.
    for field in [
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
        for order in ["asc", "desc"] {
            let (status, body) =
                rest_get(&server, &format!("?sort_by={field}&sort_order={order}")).await;
            assert_eq!(status, 200, "{field} {order}: {body}");
            assert_eq!(body.as_array().unwrap().len(), 2);
        }
    }
    let (_, by_latitude) = rest_get(&server, "?sort_by=latitude&sort_order=asc").await;
    assert_eq!(
        ids(&by_latitude),
        vec![click_id.clone(), seed_id.clone()],
        "unknown coordinates sort last"
    );

    // List errors name the parameter.
    for (query, field) in [
        ("?filter[password]=x", "filter[password]"),
        ("?filter[longitude]=999", "filter[longitude]"),
        ("?filter[latitude]=north", "filter[latitude]"),
        ("?filter[clickStartTime]=soon", "filter[clickStartTime]"),
        ("?filter[registration]=maybe", "filter[registration]"),
        ("?sort_by=password", "sort_by"),
        ("?sort_order=sideways", "sort_order"),
        ("?limit=0", "limit"),
        ("?limit=5000", "limit"),
        ("?offset=-1", "offset"),
        ("?query[everything]=1", "query[everything]"),
        ("?query[link]=yes", "query[link]"),
    ] {
        let (status, body) = rest_get(&server, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["errors"].get(field).is_some(), "{field} in {body}");
    }

    // Create errors.
    for (body, fields) in [
        (json!({}), vec!["ip", "uri"]),
        (json!({"ip": "nope", "uri": "not a url"}), vec!["ip", "uri"]),
        (
            json!({"ip": LONDON, "uri": "ftp://files.test/partner"}),
            vec!["uri"],
        ),
        (
            json!({"ip": LONDON, "uri": "https://x.test/partner", "time": "tomorrow"}),
            vec!["time"],
        ),
        (
            json!({"ip": LONDON, "uri": "https://x.test/partner", "time": "2999-01-01T00:00:00+00:00"}),
            vec!["time"],
        ),
        (
            json!({"ip": LONDON, "uri": "https://x.test/partner", "uuid": "u".repeat(256)}),
            vec!["uuid"],
        ),
        (
            json!({"ip": LONDON, "uri": "https://x.test/partner", "userAgent": {"a": 1}}),
            vec!["userAgent"],
        ),
    ] {
        let (status, _, answer) = rest_send(http.post(rest(&server, "")).json(&body)).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(
            keys(&answer["errors"]),
            fields.iter().map(|f| f.to_string()).collect(),
            "{body}: {answer}"
        );
    }
    let (status, _, answer) = rest_send(http.post(rest(&server, "")).body("[1, 2]")).await;
    assert_eq!(status, 400, "{answer}");

    // Delete a click: 204 without a body, then it is gone everywhere.
    let (status, _, body) = rest_send(http.delete(rest(&server, &format!("/{click_id}")))).await;
    assert_eq!((status.as_u16(), body), (204, Value::Null));
    assert_eq!(rest_get(&server, &format!("/{click_id}")).await.0, 404);
    assert_eq!(
        rest_send(http.delete(rest(&server, &format!("/{click_id}"))))
            .await
            .0,
        404
    );
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) AS n FROM clicks WHERE sub_id = '{click_id}'"
        ))
        .await
        .unwrap(),
        0
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM click_profiles")
            .await
            .unwrap(),
        0,
        "a profile no click uses is removed with its last click"
    );
    server.stop().await;
}

#[tokio::test]
async fn sqlite_rest_clicks_replays_the_seed() {
    rest_clicks_replays_the_seed(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_rest_clicks_replays_the_seed() {
    rest_clicks_replays_the_seed(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------------
// One click store

/// A click created through a dialect is an ordinary click: its row in `clicks` (what Keitaro's
/// log and reports read) has its sub id, campaign, stream, offer and enrichment; and clicks
/// from Keitaro's Click API and the other dialects show in every dialect's listing.
async fn one_click_store(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = start(&db).await;
    let w = world(&server, &db).await;
    let http = client();

    let (_, hoqu) = get_json(&hoqu_url(
        &server,
        &hoqu_request(w.offer, w.campaign, LONDON, CHROME),
    ))
    .await;
    let hoqu_id = hoqu["data"]["click_id"].as_str().unwrap().to_string();
    let (_, _, rest_click) = rest_send(http.post(rest(&server, "")).json(&json!({
        "ip": LONDON, "uri": "https://tracker.test/partner?sub_id_3=from-uri&utm_source=mail", "userAgent": CHROME
    }))).await;
    let rest_id = rest_click["clickId"].as_str().unwrap().to_string();
    let (_, open) = open_api_create(
        &server,
        json!({"offer_id": w.offer, "ip": LONDON, "user_agent": CHROME, "aff_sub5": "five"}),
    )
    .await;
    let open_id = open["data"]["hash"].as_str().unwrap().to_string();

    for (sub_id, sub_field, sub_value) in [
        (&hoqu_id, "sub_id_1", "s1"),
        (&rest_id, "sub_id_3", "from-uri"),
        (&open_id, "sub_id_5", "five"),
    ] {
        let rows = db
            .rows(
                &format!("SELECT campaign_id, stream_id, offer_id, country_code, city, device_type, browser, is_unique_campaign, {sub_field} FROM clicks WHERE sub_id = '{sub_id}'"),
                &["campaign_id", "stream_id", "offer_id", "country_code", "city", "device_type", "browser", "is_unique_campaign", sub_field],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{sub_id} is in the clicks table");
        let row = &rows[0];
        assert_eq!(row["campaign_id"], w.campaign.to_string(), "{sub_id}");
        assert_ne!(row["stream_id"], "NULL", "{sub_id} went through a stream");
        assert_eq!(row["country_code"], "GB");
        assert_eq!(row["city"], "London");
        assert_eq!(row["device_type"], "desktop");
        assert_eq!(row["browser"], "Chrome");
        assert_eq!(row[sub_field], sub_value);
    }
    assert_eq!(
        db.count(&format!("SELECT COUNT(*) AS n FROM clicks WHERE sub_id = '{hoqu_id}' AND is_unique_campaign = {}", if backend == Backend::Postgres { "TRUE" } else { "1" })).await.unwrap(),
        1,
        "the first click of this visitor is unique"
    );

    // A Keitaro Click API click (recorded asynchronously) shows in both listings.
    let keitaro: Value = http
        .get(server.url(&format!("/click_api/v2?token=tok-partner&ip={MILTON}&user_agent=Keitaro-Client&info=1&sub_id_2=k2&utm_term=kw")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keitaro_id = keitaro["info"]["sub_id"].as_str().unwrap().to_string();
    wait_for_count(
        &db,
        &format!("SELECT COUNT(*) AS n FROM clicks WHERE sub_id = '{keitaro_id}'"),
        1,
    )
    .await;
    let (_, page) = open_api_get(&server.url(OPEN_API)).await;
    assert_eq!(page["total"], 4);
    let row = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["hash"] == keitaro_id.as_str())
        .expect("the Click API click is listed");
    assert_eq!(row["aff_sub2"], "k2");
    assert_eq!(row["country_code"], "US");
    assert_eq!(
        row["requested_link"],
        Value::Null,
        "the Click API call gave no uri"
    );
    let (_, listed) = rest_get(&server, "?filter[utmTerm]=kw").await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["clickId"], keitaro_id.as_str());
    assert_eq!(listed[0]["countryName"], "United States");
    // And a dialect click can be annotated whichever dialect made it.
    let (status, _, _) = rest_send(
        http.put(rest(&server, &format!("/{hoqu_id}")))
            .json(&serde_json::from_str::<Value>(SEED_004_UPDATE).unwrap()),
    )
    .await;
    assert_eq!(status, 200);
    let (_, registered) = rest_get(&server, "?filter[registration]=1").await;
    assert_eq!(registered[0]["clickId"], hoqu_id.as_str());
    server.stop().await;

    // The requested link of a campaign link is recorded too.
    let server = start(&db).await;
    let response = http
        .get(server.url("/partner?utm_source=direct"))
        .header("user-agent", CHROME)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success() || response.status().is_redirection());
    server.stop().await;
    let rows = db
        .rows(
            "SELECT request_url, utm_source FROM clicks WHERE utm_source = 'direct'",
            &["request_url", "utm_source"],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0]["request_url"].ends_with("/partner?utm_source=direct"),
        "{}",
        rows[0]["request_url"]
    );
}

#[tokio::test]
async fn sqlite_one_click_store() {
    one_click_store(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_one_click_store() {
    one_click_store(Backend::Postgres).await;
}

/// Each dialect can be switched off: its routes are gone (a campaign alias is still reached).
#[tokio::test]
async fn dialects_can_be_switched_off() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let extra = "[dialects]\nopen_api_enabled = false\nhoqu_enabled = false\nrest_clicks_enabled = false\nrest_clicks_base_path = \"\"\n";
    let server = TestServer::start(&db, &format!("[demo]\nseed = false\n{extra}"))
        .await
        .unwrap();
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new("clicks", "Alias clicks", "tok-clicks"))
        .await
        .unwrap();
    store
        .create_stream(&NewStream::redirect(
            campaign.id,
            "r",
            "https://alias.test/",
        ))
        .await
        .unwrap();
    server.reload().await;
    let http = client();
    for path in [OPEN_API, "/api/click/create?secure_key=x"] {
        let response = http
            .get(server.url(path))
            .bearer_auth("anything-0123456789")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let alias = http.get(server.url("/clicks")).send().await.unwrap();
    assert_eq!(
        alias.status(),
        302,
        "with rest clicks off, /clicks is the campaign alias"
    );
    assert_eq!(alias.headers()["location"], "https://alias.test/");
    server.stop().await;
    let secrets = std::fs::read_to_string(db.dir.path().join("data/secrets.toml")).unwrap();
    for name in [
        "open_api_token_sha256",
        "hoqu_secure_key_sha256",
        "rest_clicks_token_sha256",
    ] {
        assert!(
            !secrets.contains(name),
            "no keys for switched-off dialects:\n{secrets}"
        );
    }
}

/// Every dialect route answers 401 (Bearer dialects) or 403 (HOQU) without its own key, and
/// never reaches the store: nothing is created.
#[tokio::test]
async fn every_dialect_route_requires_its_key() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = start(&db).await;
    let w = world(&server, &db).await;
    let http = client();
    let bearer_routes = [
        ("GET", OPEN_API.to_string(), OPEN_API_TOKEN),
        ("POST", OPEN_API.to_string(), OPEN_API_TOKEN),
        ("GET", format!("{OPEN_API}/1"), OPEN_API_TOKEN),
        ("GET", format!("{REST_BASE}/clicks"), REST_TOKEN),
        ("POST", format!("{REST_BASE}/clicks"), REST_TOKEN),
        ("GET", format!("{REST_BASE}/clicks/x"), REST_TOKEN),
        ("PUT", format!("{REST_BASE}/clicks/x"), REST_TOKEN),
        ("PATCH", format!("{REST_BASE}/clicks/x"), REST_TOKEN),
        ("DELETE", format!("{REST_BASE}/clicks/x"), REST_TOKEN),
    ];
    let body = json!({"offer_id": w.offer, "ip": LONDON, "uri": "https://t.test/partner"});
    for (method, path, own) in &bearer_routes {
        let method: reqwest::Method = method.parse().unwrap();
        let foreign = if *own == OPEN_API_TOKEN {
            REST_TOKEN
        } else {
            OPEN_API_TOKEN
        };
        for token in [None, Some(foreign), Some("x"), Some(&own[..own.len() - 1])] {
            let mut request = http.request(method.clone(), server.url(path)).json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} with {token:?}");
        }
    }
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let mut request = hoqu_request(w.offer, w.campaign, LONDON, CHROME);
        request.retain(|(k, _)| *k != "secure_key");
        request.push(("secure_key", REST_TOKEN.to_string()));
        let response = http
            .request(method.clone(), hoqu_url(&server, &request))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method}");
    }
    server.stop().await;
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM clicks").await.unwrap(),
        0
    );
}

/// A click created through a dialect is a Keitaro click: it appears in the Admin API's
/// `clicks/log` with its campaign, offer and geography.
async fn dialect_clicks_appear_in_the_keitaro_clicks_log(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = TestServer::start(
        &db,
        &config("[admin]\napi_key = \"test-admin-key-0123456789\"\n"),
    )
    .await
    .unwrap();
    let w = world(&server, &db).await;
    let (status, created) = get_json(&hoqu_url(
        &server,
        &hoqu_request(w.offer, w.campaign, LONDON, CHROME),
    ))
    .await;
    assert_eq!(status, 200, "{created}");
    let click_id = created["data"]["click_id"].as_str().unwrap().to_string();
    let log: Value = reqwest::Client::new()
        .post(server.url("/admin_api/v1/clicks/log"))
        .header("Api-Key", "test-admin-key-0123456789")
        .json(&json!({
            "range": {"interval": "today"},
            "columns": ["sub_id", "campaign_id", "offer_id", "country_code", "city"],
            "filters": [{"name": "sub_id", "operator": "EQUALS", "expression": click_id}],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log["total"], 1, "{log}");
    let row = &log["rows"][0];
    assert_eq!(row["sub_id"], click_id.as_str());
    assert_eq!(row["campaign_id"], w.campaign);
    assert_eq!(row["offer_id"], w.offer);
    assert_eq!(row["country_code"], "GB");
    assert_eq!(row["city"], "London");
    server.stop().await;
}

#[tokio::test]
async fn sqlite_dialect_clicks_appear_in_the_keitaro_clicks_log() {
    dialect_clicks_appear_in_the_keitaro_clicks_log(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_dialect_clicks_appear_in_the_keitaro_clicks_log() {
    dialect_clicks_appear_in_the_keitaro_clicks_log(Backend::Postgres).await;
}
