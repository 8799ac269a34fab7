//! Keitaro's Click API: the v2 response compared field by field with seed 000's example, v3
//! posted as a form the way Keitaro's PHP client posts it, errors, binary bodies.

use base64::Engine;
use serde_json::{Value, json};
use switchyard::model::{NewCampaign, NewStream, StreamSchema, StreamType};
use switchyard_tests::{Backend, TestDb, TestServer, client, fixed_http_server, test_data};

async fn start(db: &TestDb) -> TestServer {
    let extra = format!(
        "[demo]\nseed = false\n\n[geoip]\ncity_db = \"{}\"\n\n[fetch]\nallow_networks = [\"127.0.0.0/8\"]\n",
        test_data("geoip/GeoIP2-City-Test.mmdb").display()
    );
    TestServer::start(db, &extra).await.unwrap()
}

/// A campaign shaped like the seed's example: two streams whose filters reject, then one that
/// accepts and redirects. Returns (campaign id, token, [stream ids]).
async fn seed_like_campaign(server: &TestServer) -> (i64, String, Vec<i64>) {
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new("api", "Click API", "ebd928ea"))
        .await
        .unwrap();
    let mut ids = Vec::new();
    let region = NewStream::new(
        campaign.id,
        StreamType::Forced,
        StreamSchema::Action,
        "status404",
    )
    .filter("region", "accept", json!(["Bavaria"]));
    ids.push(store.create_stream(&region).await.unwrap().id);
    let mut ip = NewStream::redirect(campaign.id, "ip", "https://never.test/").filter(
        "ip",
        "accept",
        json!("10.0.0.0/8"),
    );
    ip.position = 1;
    ids.push(store.create_stream(&ip).await.unwrap().id);
    let mut accept = NewStream::redirect(
        campaign.id,
        "accept",
        "https://offer.test/?k={keyword}&utm-campaign=aff1&s={subid}",
    );
    accept.position = 2;
    ids.push(store.create_stream(&accept).await.unwrap().id);
    server.reload().await;
    (campaign.id, campaign.token, ids)
}

fn decode_cookie(cookie: &str) -> Value {
    let parts: Vec<&str> = cookie.split('.').collect();
    assert_eq!(parts.len(), 3, "JWT-shaped: header.payload.signature");
    assert_eq!(
        parts[0], "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9",
        "the seed's header: {{\"typ\":\"JWT\",\"alg\":\"HS256\"}}"
    );
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .unwrap();
    let payload: Value = serde_json::from_slice(&payload).unwrap();
    serde_json::from_str(
        payload["data"]
            .as_str()
            .expect("payload.data is a JSON string"),
    )
    .unwrap()
}

async fn v2_matches_the_seed(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = start(&db).await;
    let (campaign_id, token, streams) = seed_like_campaign(&server).await;
    let response = client()
        .get(server.url(&format!("/click_api/v2?token={token}&ip=81.2.69.160&user_agent=HTTPie/0.6.0&keyword=kw1&log=1&info=1")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.unwrap();

    // Every attribute of the seed's example, with its type.
    assert_eq!(body["body"], Value::Null, "a redirect has no body");
    assert_eq!(body["contentType"], "text/html; charset=utf-8");
    let info = &body["info"];
    let sub_id = info["sub_id"].as_str().unwrap().to_string();
    let url = format!("https://offer.test/?k=kw1&utm-campaign=aff1&s={sub_id}");
    assert_eq!(body["headers"], json!([format!("Location: {url}")]));
    assert_eq!(info["campaign_id"], campaign_id);
    assert_eq!(info["stream_id"], streams[2]);
    assert_eq!(info["type"], "location");
    assert_eq!(info["url"], url);
    assert!(sub_id.chars().all(|c| c.is_ascii_alphanumeric()) && sub_id.len() >= 13);
    // The other documented info keys are always present.
    for key in ["landing_id", "offer_id", "token", "is_bot", "uniqueness"] {
        assert!(info.get(key).is_some(), "info.{key} is missing");
    }
    assert_eq!(info["landing_id"], Value::Null);
    assert_eq!(info["offer_id"], json!([]));
    assert_eq!(info["is_bot"], true, "HTTPie's UA is on the crawler list");
    assert_eq!(
        info["uniqueness"],
        json!({"campaign": true, "stream": true, "global": true})
    );
    assert_eq!(body["status"], 302);

    let log: Vec<&str> = body["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let expected = [
        format!("Processing campaign {campaign_id}"),
        "Referrer: ".into(),
        "Source: ".into(),
        "Keyword: kw1".into(),
        "UserAgent: HTTPie/0.6.0".into(),
        "Language: ".into(),
        "Is unique in campaign: yes".into(),
        format!("Checking stream #{}", streams[0]),
        "Filter \"region\": rejected".into(),
        "Not accepted by filters".into(),
        format!("Checking stream #{}", streams[1]),
        "Filter \"ip\": rejected".into(),
        "Not accepted by filters".into(),
        format!("Checking stream #{}", streams[2]),
        "Accepted by filters".into(),
        format!("Stream #{}", streams[2]),
        format!("Send headers: Location: {url}"),
    ];
    assert_eq!(log, expected);

    // The uniqueness cookie has the seed's shape: streams, campaigns, time.
    let cookie = decode_cookie(body["uniqueness_cookie"].as_str().unwrap());
    let stream_key = streams[2].to_string();
    let campaign_key = campaign_id.to_string();
    assert!(cookie["streams"][stream_key.as_str()].is_i64(), "{cookie}");
    assert!(
        cookie["campaigns"][campaign_key.as_str()].is_i64(),
        "{cookie}"
    );
    assert!(cookie["time"].is_i64());
    assert!(body.get("cookies").is_none(), "cookies is a v3 attribute");

    // /api.php is v2; without log/info they are left out.
    let plain: Value = client()
        .get(server.url(&format!("/api.php?token={token}&ip=81.2.69.160")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        plain.get("log").is_none() && plain.get("info").is_none(),
        "{plain}"
    );
    assert_eq!(plain["status"], 302);
    server.stop().await;

    let stored = db
        .rows(
            &format!("SELECT ip, keyword, country_code FROM clicks WHERE sub_id = '{sub_id}'"),
            &["ip", "keyword", "country_code"],
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "the Click API records the click");
    assert_eq!(stored[0]["ip"], "81.2.69.160");
    assert_eq!(stored[0]["keyword"], "kw1");
    assert_eq!(stored[0]["country_code"], "GB");
}

#[tokio::test]
async fn sqlite_v2_matches_the_seed() {
    v2_matches_the_seed(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_v2_matches_the_seed() {
    v2_matches_the_seed(Backend::Postgres).await;
}

#[tokio::test]
async fn v3_form_post_like_the_php_client() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = start(&db).await;
    let (_, token, _) = seed_like_campaign(&server).await;
    let form = |cookie: &str| {
        vec![
            ("token", token.clone()),
            ("info", "1".into()),
            ("ip", "81.2.69.160".into()),
            ("user_agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148".into()),
            ("language", "de".into()),
            ("x_requested_with", "com.example.app".into()),
            ("referrer", "https://www.google.com/search?q=red+shoes".into()),
            ("uniqueness_cookie", cookie.to_string()),
            ("original_headers[Accept-Language]", "de-DE,de;q=0.9".into()),
            ("original_host", "landing.example".into()),
            ("original_method", "GET".into()),
            ("uri", "https://landing.example/page?sub_id_2=from-uri".into()),
            ("sub_id_1", "s1".into()),
        ]
    };
    let first: Value = client()
        .post(server.url("/click_api/v3"))
        .form(&form(""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["status"], 302);
    assert_eq!(first["info"]["uniqueness"]["campaign"], true);
    assert_eq!(first["cookies_ttl"], 24);
    let cookie = first["uniqueness_cookie"].as_str().unwrap().to_string();
    assert_eq!(
        first["cookies"]["_sy_v"], cookie,
        "v3 lists the cookies to set"
    );
    let url = first["info"]["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://offer.test/?k=red%20shoes&"),
        "the keyword comes from the search referrer: {url}"
    );

    let second: Value = client()
        .post(server.url("/click_api/v3"))
        .form(&form(&cookie))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        second["info"]["uniqueness"]["campaign"], false,
        "the cookie remembers the visitor"
    );
    assert_eq!(second["info"]["uniqueness"]["stream"], false);
    let sub_id = second["info"]["sub_id"].as_str().unwrap().to_string();
    server.stop().await;
    let rows = db
        .rows(
            &format!("SELECT language, x_requested_with, search_engine, sub_id_1, sub_id_2, device_type, is_unique_campaign FROM clicks WHERE sub_id = '{sub_id}'"),
            &["language", "x_requested_with", "search_engine", "sub_id_1", "sub_id_2", "device_type", "is_unique_campaign"],
        )
        .await
        .unwrap();
    let click = &rows[0];
    assert_eq!(click["language"], "de");
    assert_eq!(click["x_requested_with"], "com.example.app");
    assert_eq!(click["search_engine"], "google");
    assert_eq!(click["sub_id_1"], "s1");
    assert_eq!(click["sub_id_2"], "from-uri");
    assert_eq!(click["device_type"], "mobile");
    assert_eq!(click["is_unique_campaign"], "0");
}

#[tokio::test]
async fn errors_have_the_documented_shape_and_never_5xx() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = start(&db).await;
    let (_, token, _) = seed_like_campaign(&server).await;
    let http = client();
    for (path, status) in [
        ("/click_api/v2".to_string(), 400),
        ("/click_api/v2?token=unknown".to_string(), 404),
        ("/click_api/v9?token=x".to_string(), 403),
        (format!("/click_api/v2?token={token}&ip=999.1.1.1"), 400),
        (format!("/click_api/v1?token={token}&landing_id=abc"), 400),
    ] {
        let response = http.get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], status, "{path}");
        assert!(
            body["body"]["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "{path}: {body}"
        );
    }
    let bad_json = http
        .post(server.url("/click_api/v2"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    let json_ok: Value = http
        .post(server.url("/click_api/v2"))
        .json(&json!({"token": token, "ip": "81.2.69.160", "original_headers": {"User-Agent": "curl/8"}, "info": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json_ok["status"], 302);
    assert_eq!(
        json_ok["info"]["is_bot"], true,
        "curl's UA is a crawler signature"
    );
    server.stop().await;
}

#[tokio::test]
async fn binary_bodies_are_base64() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = start(&db).await;
    let png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 1, 2, 255];
    let image = fixed_http_server(200, "image/png", png.clone()).await;
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new("pixel", "Pixel", "tok-pixel"))
        .await
        .unwrap();
    let mut stream = NewStream::new(
        campaign.id,
        StreamType::Regular,
        StreamSchema::Action,
        "curl",
    );
    stream.action_payload = json!(format!("{image}/pixel.png"));
    store.create_stream(&stream).await.unwrap();
    let mut text = NewStream::new(
        campaign.id,
        StreamType::Forced,
        StreamSchema::Action,
        "show_text",
    );
    text.action_payload = json!("id={subid}");
    text = text.filter(
        "parameter",
        "accept",
        json!({"name": "as", "value": ["text"]}),
    );
    store.create_stream(&text).await.unwrap();
    server.reload().await;
    let body: Value = client()
        .get(server.url("/click_api/v2?token=tok-pixel&ip=81.2.69.160"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["contentType"], "image/png");
    assert_eq!(body["status"], 200);
    assert_eq!(
        body["headers"],
        json!([]),
        "no Content-Type or Set-Cookie in headers"
    );
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(body["body"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, png);
    let text: Value = client()
        .get(server.url("/click_api/v2?token=tok-pixel&ip=81.2.69.160&as=text&info=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(text["contentType"], "text/plain; charset=utf-8");
    assert_eq!(
        text["body"],
        format!("id={}", text["info"]["sub_id"].as_str().unwrap())
    );
    assert_eq!(text["info"]["type"], "show_text");
    server.stop().await;
}
