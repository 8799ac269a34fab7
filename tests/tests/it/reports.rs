//! Keitaro's `clicks/log` over HTTP: columns, filters, sorting, paging, ranges, and requests
//! that name unknown fields or try to smuggle SQL.

use serde_json::{Value, json};
use switchyard::model::{NewCampaign, NewStream};
use switchyard_tests::{Backend, TestDb, TestServer, client, test_data};

const ADMIN_KEY: &str = "test-admin-key-0123456789";

async fn log(server: &TestServer, body: Value) -> (u16, Value) {
    let response = client()
        .post(server.url("/admin_api/v1/clicks/log"))
        .header("Api-Key", ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn clicks_log_filters_sorts_and_pages(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let extra = format!(
        "[demo]\nseed = false\n\n[admin]\napi_key = \"{ADMIN_KEY}\"\n\n[geoip]\ncity_db = \"{}\"\n",
        test_data("geoip/GeoIP2-City-Test.mmdb").display()
    );
    let config = db.config_behind_proxy(&extra).unwrap();
    let server = TestServer::from_config(config).await.unwrap();
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new("log", "Log", "tok-log"))
        .await
        .unwrap();
    store
        .create_stream(&NewStream::redirect(
            campaign.id,
            "all",
            "https://offer.test/",
        ))
        .await
        .unwrap();
    server.reload().await;
    let http = client();
    for (ip, keyword) in [
        ("81.2.69.160", "50%_off"),
        ("81.2.69.160", "shoes"),
        ("216.160.83.56", "boots"),
        ("89.160.20.112", "shoes"),
    ] {
        let response = http
            .get(server.url(&format!("/log?keyword={}&sub_id_3=s3", urlencode(keyword))))
            .header("x-forwarded-for", ip)
            .header(
                "user-agent",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
    }
    // Clicks are written asynchronously: wait for all four.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while log(&server, json!({})).await.1["total"] != 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the clicks were not written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let (status, gb) = log(
        &server,
        json!({
            "range": {"interval": "today", "timezone": "Europe/London"},
            "columns": ["sub_id", "country_code", "city", "keyword", "sub_id_3", "is_bot", "cost", "datetime"],
            "filters": [{"name": "country_code", "operator": "IN_LIST", "expression": ["GB", "SE"]}],
            "sort": [{"name": "keyword", "order": "ASC"}],
        }),
    )
    .await;
    assert_eq!(status, 200, "{gb}");
    assert_eq!(gb["total"], 3);
    let keywords: Vec<&str> = gb["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["keyword"].as_str().unwrap())
        .collect();
    assert_eq!(keywords, ["50%_off", "shoes", "shoes"]);
    let first = &gb["rows"][0];
    assert_eq!(first["city"], "London");
    assert_eq!(first["sub_id_3"], "s3");
    assert_eq!(first["is_bot"], false);
    assert_eq!(first["cost"], 0);
    assert_eq!(
        first["datetime"].as_str().unwrap().len(),
        19,
        "YYYY-MM-DD HH:MM:SS"
    );

    // LIKE wildcards in a value are literal.
    let (_, literal) = log(
        &server,
        json!({"filters": [{"name": "keyword", "operator": "CONTAINS", "expression": "%_"}]}),
    )
    .await;
    assert_eq!(
        literal["total"], 1,
        "only `50%_off` contains the characters % and _"
    );
    let (_, begins) = log(
        &server,
        json!({"filters": [{"name": "keyword", "operator": "BEGINS_WITH", "expression": "SHO"}]}),
    )
    .await;
    assert_eq!(begins["total"], 2, "case-insensitive on both backends");
    // Paging.
    let (_, page) = log(
        &server,
        json!({"columns": ["click_id"], "limit": 2, "offset": 3}),
    )
    .await;
    assert_eq!(
        (
            page["total"].as_i64(),
            page["rows"].as_array().unwrap().len()
        ),
        (Some(4), 1)
    );
    // SQL in a value is only a value.
    let (status, smuggled) = log(
        &server,
        json!({"filters": [{"name": "ip", "operator": "EQUALS", "expression": "1' OR '1'='1"}]}),
    )
    .await;
    assert_eq!((status, smuggled["total"].as_i64()), (200, Some(0)));
    // A range in the past finds nothing.
    let (_, past) = log(
        &server,
        json!({"range": {"from": "2020-01-01", "to": "2020-01-31"}}),
    )
    .await;
    assert_eq!(past["total"], 0);

    // Unknown names and bad values: 400 naming the field, never a 5xx.
    for (body, field) in [
        (json!({"columns": ["password"]}), "columns[0]"),
        (
            json!({"filters": [{"name": "campaign_id; DROP TABLE clicks", "operator": "EQUALS", "expression": 1}]}),
            "filters[0].name",
        ),
        (
            json!({"filters": [{"name": "campaign_id", "operator": "EQUALS", "expression": "x"}]}),
            "filters[0].expression",
        ),
        (json!({"range": {"from": "yesterday-ish"}}), "range.from"),
    ] {
        let (status, error) = log(&server, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            error["error"].as_str().unwrap().starts_with(field),
            "{error}"
        );
    }
    let no_key = client()
        .post(server.url("/admin_api/v1/clicks/log"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
    server.stop().await;
}

fn urlencode(text: &str) -> String {
    text.replace('%', "%25")
}

#[tokio::test]
async fn sqlite_clicks_log_filters_sorts_and_pages() {
    clicks_log_filters_sorts_and_pages(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_clicks_log_filters_sorts_and_pages() {
    clicks_log_filters_sorts_and_pages(Backend::Postgres).await;
}
