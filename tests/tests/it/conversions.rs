//! Conversions and reports over HTTP on SQLite and PostgreSQL: clicks, postbacks (a lead, a
//! sale for the same tid, a duplicate, a rejection, a wrong key, a sub id not stored yet, money in
//! another currency, concurrent duplicates), then `report/build`, `conversions/log`,
//! `clicks/log` and `logs/postbacks` show exactly what happened; a click created through a
//! dialect counts in the report; both backends give identical reports for the same data.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard::model::{Click, NewCampaign, NewStream};
use switchyard_tests::{Backend, TestDb, TestServer, client, subid_of};

const ADMIN_KEY: &str = "test-admin-key-0123456789";
const POSTBACK_KEY: &str = "test-postback-key-0123456789";
const REST_TOKEN: &str = "rest-clicks-token-0123456789";
const REST_BASE: &str = "/partner/v2";

fn extra() -> String {
    format!(
        "[demo]\nseed = false\n\n[admin]\napi_key = \"{ADMIN_KEY}\"\n\n[postback]\nkey = \"{POSTBACK_KEY}\"\nrates = {{ EUR = \"2\" }}\n\n[dialects]\nrest_clicks_token = \"{REST_TOKEN}\"\nrest_clicks_base_path = \"{REST_BASE}\"\n"
    )
}

async fn admin(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let response = client()
        .post(server.url(&format!("/admin_api/v1/{path}")))
        .header("Api-Key", ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}")),
    )
}

async fn postback(server: &TestServer, key: &str, query: &str) -> (u16, String) {
    let response = client()
        .get(server.url(&format!("/{key}/postback?{query}")))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn click(server: &TestServer, alias: &str) -> String {
    let response = client()
        .get(server.url(&format!("/{alias}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    subid_of(&location).expect("subid in the redirect")
}

async fn wait_for_clicks(server: &TestServer, expected: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = admin(server, "clicks/log", json!({})).await;
        if body["total"] == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the clicks were not written: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn outcome(text: &str) -> String {
    serde_json::from_str::<Value>(text).unwrap()["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn postbacks_close_the_loop(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = TestServer::start(&db, &extra()).await.unwrap();
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new("conv", "Conv", "tok-conv"))
        .await
        .unwrap();
    store
        .create_stream(&NewStream::redirect(
            campaign.id,
            "all",
            "https://offer.test/?subid={subid}",
        ))
        .await
        .unwrap();
    db.execute("UPDATE campaigns SET cost_type = 'CPC', cost_value_micros = 2000000")
        .await
        .unwrap();
    server.reload().await;
    let a = click(&server, "conv").await;
    let b = click(&server, "conv").await;
    let c = click(&server, "conv").await;
    wait_for_clicks(&server, 3).await;

    // A lead, then the sale of the same tid, then the same sale again.
    let (status, body) = postback(
        &server,
        POSTBACK_KEY,
        &format!("subid={a}&tid=T1&status=lead&payout=5"),
    )
    .await;
    assert_eq!(
        (status, outcome(&body).as_str()),
        (200, "accepted"),
        "{body}"
    );
    let (status, body) = postback(
        &server,
        POSTBACK_KEY,
        &format!("subid={a}&tid=T1&status=sale&payout=10"),
    )
    .await;
    assert_eq!(
        (status, outcome(&body).as_str()),
        (200, "transition"),
        "{body}"
    );
    let (status, body) = postback(
        &server,
        POSTBACK_KEY,
        &format!("subid={a}&tid=T1&status=sale&payout=10"),
    )
    .await;
    assert_eq!(
        (status, outcome(&body).as_str()),
        (200, "duplicate"),
        "{body}"
    );
    // A rejection; nothing leaves `rejected`.
    let (_, body) = postback(
        &server,
        POSTBACK_KEY,
        &format!("subid={b}&status=declined&payout=3"),
    )
    .await;
    assert_eq!(outcome(&body), "accepted", "{body}");
    let (_, body) = postback(
        &server,
        POSTBACK_KEY,
        &format!("subid={b}&status=sale&payout=3"),
    )
    .await;
    assert_eq!(outcome(&body), "ignored", "{body}");
    // Euros at the configured rate, a sub id update and a custom answer.
    let (status, body) = postback(
        &server,
        POSTBACK_KEY,
        &format!("subid={c}&status=approved&payout=4&currency=EUR&sub_id_2=from-network&return=OK"),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "OK"));
    // A wrong key changes nothing; a sub id not stored (yet) is parked; bad values are named.
    let (status, _) = postback(
        &server,
        "wrong-key-0123456789abc",
        &format!("subid={a}&status=rejected"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = postback(
        &server,
        POSTBACK_KEY,
        "subid=nosuchclick&status=sale&payout=1",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(outcome(&body), "pending", "{body}");
    let (status, body) = postback(&server, POSTBACK_KEY, &format!("subid={a}&payout=1e5")).await;
    assert_eq!(status, 400);
    assert!(body.contains("payout"), "{body}");
    let (status, body) = postback(
        &server,
        POSTBACK_KEY,
        &format!("subid={a}&payout=1&currency=JPY"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("currency"), "{body}");

    let metrics = json!([
        "clicks",
        "conversions",
        "leads",
        "sales",
        "rejected",
        "revenue",
        "cost",
        "profit",
        "cr",
        "epc",
        "roi",
        "rejected_revenue",
        "approve"
    ]);
    let (status, report) = admin(
        &server,
        "report/build",
        json!({"range": {"interval": "today"}, "metrics": metrics}),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["total"], 1, "{report}");
    let totals = &report["rows"][0];
    assert_eq!(totals["clicks"], 3, "{report}");
    assert_eq!(totals["conversions"], 3);
    assert_eq!(totals["leads"], 0);
    assert_eq!(totals["sales"], 2);
    assert_eq!(totals["rejected"], 1);
    assert_eq!(totals["revenue"], 18, "10 + 4 EUR × 2: {report}");
    assert_eq!(totals["rejected_revenue"], 3);
    assert_eq!(totals["cost"], 6, "3 clicks × 2 (CPC)");
    assert_eq!(totals["profit"], 12);
    assert_eq!(totals["cr"], 100.0);
    assert_eq!(totals["epc"], 6);
    assert_eq!(totals["roi"], 200.0);
    assert_eq!(totals["approve"], 66.67);

    // Grouped by the campaign's name and the day, with a summary.
    let (_, grouped) = admin(
        &server,
        "report/build",
        json!({"range": {"interval": "7_days_ago", "timezone": "Asia/Kathmandu"}, "grouping": ["campaign", "day"], "metrics": ["clicks", "sales", "revenue"], "summary": true, "sort": [{"name": "clicks", "order": "desc"}]}),
    )
    .await;
    assert_eq!(grouped["rows"][0]["campaign"], "Conv", "{grouped}");
    assert_eq!(grouped["rows"][0]["day"].as_str().unwrap().len(), 10);
    assert_eq!(grouped["summary"]["clicks"], 3);
    assert_eq!(grouped["summary"]["revenue"], 18);

    // A regular expression and a metric filter.
    let (status, only_c) = admin(
        &server,
        "report/build",
        json!({"grouping": ["sub_id"], "metrics": ["clicks", "sales", "revenue"], "filters": [{"name": "sub_id", "operator": "MATCH_REGEXP", "expression": format!("/^{}$/i", c.to_uppercase())}]}),
    )
    .await;
    assert_eq!(status, 200, "{only_c}");
    assert_eq!(only_c["total"], 1, "{only_c}");
    assert_eq!(only_c["rows"][0]["revenue"], 8);
    let (_, with_sales) = admin(
        &server,
        "report/build",
        json!({"grouping": ["sub_id"], "metrics": ["clicks"], "filters": [{"name": "sales", "operator": "EQUALS_OR_GREATER_THAN", "expression": 1}]}),
    )
    .await;
    assert_eq!(with_sales["total"], 2, "{with_sales}");

    // Bad report requests name the field.
    for (body, field) in [
        (json!({"grouping": ["nope"]}), "grouping[0]"),
        (json!({"metrics": ["clicks", "bogus"]}), "metrics[1]"),
        (
            json!({"filters": [{"name": "ip", "operator": "MATCH_REGEXP", "expression": "(x"}]}),
            "filters[0].expression",
        ),
    ] {
        let (status, answer) = admin(&server, "report/build", body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().starts_with(field),
            "{answer}"
        );
    }

    // The conversion log and the click log.
    let (_, conversions) = admin(
        &server,
        "conversions/log",
        json!({"columns": ["sub_id", "status", "previous_status", "original_status", "revenue", "currency"], "sort": [{"name": "sub_id", "order": "asc"}]}),
    )
    .await;
    assert_eq!(conversions["total"], 3, "{conversions}");
    let by_sub = |sub: &str| {
        conversions["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["sub_id"] == sub)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_sub(&a)["status"], "sale");
    assert_eq!(by_sub(&a)["previous_status"], "lead");
    assert_eq!(by_sub(&a)["original_status"], "lead");
    assert_eq!(by_sub(&b)["status"], "rejected");
    assert_eq!(by_sub(&c)["revenue"], 8);
    assert_eq!(by_sub(&c)["currency"], "EUR");
    let (_, clicks) = admin(
        &server,
        "clicks/log",
        json!({"columns": ["sub_id", "sub_id_2", "is_sale", "revenue", "cost"], "filters": [{"name": "sub_id", "operator": "EQUALS", "expression": c}]}),
    )
    .await;
    assert_eq!(clicks["rows"][0]["sub_id_2"], "from-network", "{clicks}");
    assert_eq!(clicks["rows"][0]["is_sale"], true);
    assert_eq!(clicks["rows"][0]["revenue"], 8);

    // The received-postbacks log keeps the parked postback and the refused ones.
    let response = client()
        .get(server.url("/admin_api/v1/logs/postbacks?limit=50"))
        .header("Api-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    let log: Value = response.json().await.unwrap();
    let outcomes: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes.len(), 9, "{log}"); // the wrong key left no trace
    assert!(outcomes.contains(&"pending"));
    assert_eq!(outcomes.iter().filter(|o| **o == "invalid").count(), 2);
    assert!(outcomes.contains(&"duplicate"));
    // A log that does not exist, and a limit out of range, are the client's mistakes.
    for (path, status, field) in [
        ("logs/nope", 404, "type"),
        ("logs/postbacks?limit=-1", 400, "limit"),
        ("logs/sent_postbacks?offset=x", 400, "offset"),
    ] {
        let response = client()
            .get(server.url(&format!("/admin_api/v1/{path}")))
            .header("Api-Key", ADMIN_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let answer: Value = response.json().await.unwrap();
        assert!(
            answer["error"].as_str().unwrap().starts_with(field),
            "{path}: {answer}"
        );
    }

    // Concurrent copies of one postback count once.
    let d = click(&server, "conv").await;
    wait_for_clicks(&server, 4).await;
    let copies: Vec<_> = (0..16)
        .map(|_| {
            let url = server.url(&format!(
                "/{POSTBACK_KEY}/postback?subid={d}&tid=X&status=sale&payout=7"
            ));
            tokio::spawn(async move { client().get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    for copy in copies {
        assert_eq!(copy.await.unwrap(), 200);
    }
    let (_, only_d) = admin(
        &server,
        "report/build",
        json!({"metrics": ["conversions", "revenue"], "filters": [{"name": "sub_id", "operator": "EQUALS", "expression": d}]}),
    )
    .await;
    assert_eq!(only_d["rows"][0]["conversions"], 1, "{only_d}");
    assert_eq!(only_d["rows"][0]["revenue"], 7);

    // Issue #8: a click created through a dialect appears in report/build totals.
    let response = client()
        .post(server.url(&format!("{REST_BASE}/clicks")))
        .bearer_auth(REST_TOKEN)
        .json(&json!({"ip": "81.2.69.160", "uri": "https://tracker.test/conv?utm_source=partner"}))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
    let (_, totals) = admin(&server, "report/build", json!({"metrics": ["clicks"]})).await;
    assert_eq!(totals["rows"][0]["clicks"], 5, "{totals}");

    // A form-encoded body.
    let response = client()
        .post(server.url("/admin_api/v1/report/build"))
        .header("Api-Key", ADMIN_KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("metrics[]=clicks&metrics[]=sales&range[interval]=today&grouping[]=campaign_id")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let form: Value = response.json().await.unwrap();
    assert_eq!(form["rows"][0]["clicks"], 5, "{form}");
    assert_eq!(form["rows"][0]["sales"], 3);

    server.stop().await;
}

#[tokio::test]
async fn sqlite_postbacks_close_the_loop() {
    postbacks_close_the_loop(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_postbacks_close_the_loop() {
    postbacks_close_the_loop(Backend::Postgres).await;
}

/// A deterministic data set: clicks over three days in several countries and campaigns,
/// with conversions of every status.
fn data_set() -> Vec<Click> {
    let countries = ["GB", "DE", "US", "", "FR"];
    let keywords = ["shoes", "Boots", "50%_off", "", "hats"];
    (0..300i64)
        .map(|i| {
            let mut click = Click::blank();
            click.sub_id = format!("s{i:04}");
            click.campaign_id = 1 + i % 3;
            click.stream_id = Some(10 + i % 4);
            click.created_at = 1_795_000_000 + i * 877; // about 2.6 days
            click.country_code = countries[(i % 5) as usize].to_string();
            click.keyword = keywords[(i * 7 % 5) as usize].to_string();
            click.is_unique_campaign = i % 2 == 0;
            click.is_bot = i % 11 == 0;
            click.referrer = if i % 3 == 0 {
                String::new()
            } else {
                "https://r.test/".into()
            };
            click.cost = switchyard::model::Money::from_micros(1_000 * (i % 7));
            click
        })
        .collect()
}

async fn load(server: &TestServer) {
    use switchyard::store::{ConversionStatus, NewConversion};
    let store = server.store();
    store.insert_clicks(&data_set()).await.unwrap();
    for i in (0..300i64).step_by(4) {
        let click = store
            .postback_click(&format!("s{i:04}"))
            .await
            .unwrap()
            .unwrap();
        let statuses: &[ConversionStatus] = match i % 3 {
            0 => &[ConversionStatus::Lead],
            1 => &[ConversionStatus::Lead, ConversionStatus::Sale],
            _ => &[ConversionStatus::Sale, ConversionStatus::Rejected],
        };
        for (n, status) in statuses.iter().enumerate() {
            store
                .record_conversion(
                    &NewConversion {
                        click: click.clone(),
                        tid: String::new(),
                        status: *status,
                        original_status: status.as_str().into(),
                        revenue: Some(switchyard::model::Money::from_micros(
                            1_234_567 * (i % 5 + n as i64),
                        )),
                        default_revenue: switchyard::model::Money::ZERO,
                        cost: switchyard::model::Money::ZERO,
                        currency: "USD".into(),
                        sub_id_updates: Vec::new(),
                        params: "{}".into(),
                        at: 1_795_300_000,
                    },
                    &|_| Vec::new(),
                )
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn sqlite_and_postgres_give_identical_reports() {
    let sqlite_db = TestDb::new(Backend::Sqlite).await.unwrap();
    let postgres_db = TestDb::new(Backend::Postgres).await.unwrap();
    let sqlite = TestServer::start(&sqlite_db, &extra()).await.unwrap();
    let postgres = TestServer::start(&postgres_db, &extra()).await.unwrap();
    load(&sqlite).await;
    load(&postgres).await;
    let all_metrics: Vec<&str> = switchyard::report::METRICS.iter().map(|m| m.name).collect();
    let requests = [
        json!({"range": {"interval": "all_time"}, "metrics": all_metrics, "summary": true}),
        json!({"range": {"from": "2026-11-17", "to": "2026-11-21", "timezone": "America/New_York"}, "grouping": ["campaign_id", "country_code", "day"], "metrics": all_metrics, "summary": true}),
        json!({"range": {"interval": "all_time", "timezone": "Asia/Kolkata"}, "grouping": ["day_hour", "keyword"], "metrics": ["clicks", "conversions", "revenue", "cr", "epc", "roi"], "sort": [{"name": "revenue", "order": "desc"}], "limit": 20, "offset": 5}),
        json!({"grouping": ["keyword", "weekday", "week", "month", "year", "hour"], "metrics": ["clicks", "sales", "bot_share"], "filters": [{"name": "keyword", "operator": "CONTAINS", "expression": "o"}, {"name": "country_code", "operator": "NOT_IN_LIST", "expression": ["US"]}]}),
        json!({"grouping": ["stream_id", "is_bot"], "metrics": ["clicks", "leads", "rejected"], "filters": [{"name": "keyword", "operator": "MATCH_REGEXP", "expression": "/^(shoes|boots)$/i"}, {"name": "clicks", "operator": "GREATER_THAN", "expression": 3}]}),
    ];
    for request in requests {
        let (s1, mut from_sqlite) = admin(&sqlite, "report/build", request.clone()).await;
        let (s2, mut from_postgres) = admin(&postgres, "report/build", request.clone()).await;
        assert_eq!((s1, s2), (200, 200), "{from_sqlite} {from_postgres}");
        from_sqlite["meta"] = Value::Null;
        from_postgres["meta"] = Value::Null;
        assert!(
            from_sqlite["total"].as_i64().unwrap() > 0,
            "{request}: {from_sqlite}"
        );
        assert_eq!(from_sqlite, from_postgres, "{request}");
    }
    let (_, a) = admin(&sqlite, "conversions/log", json!({"columns": ["sub_id", "status", "previous_status", "revenue"], "sort": [{"name": "sub_id"}], "limit": 500})).await;
    let (_, b) = admin(&postgres, "conversions/log", json!({"columns": ["sub_id", "status", "previous_status", "revenue"], "sort": [{"name": "sub_id"}], "limit": 500})).await;
    assert_eq!(a, b);
    sqlite.stop().await;
    postgres.stop().await;
}

async fn cost_totals(server: &TestServer) -> Value {
    let (_, report) = admin(server, "report/build", json!({"metrics": ["cost", "cpc"]})).await;
    report["rows"][0].clone()
}

async fn costs_are_spread_exactly(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = TestServer::start(&db, &extra()).await.unwrap();
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new("costs", "Costs", "tok-costs"))
        .await
        .unwrap();
    store
        .create_stream(&NewStream::redirect(
            campaign.id,
            "all",
            "https://offer.test/?subid={subid}",
        ))
        .await
        .unwrap();
    server.reload().await;
    for _ in 0..3 {
        click(&server, "costs").await;
    }
    wait_for_clicks(&server, 3).await;
    let (status, answer) = admin(
        &server,
        &format!("campaigns/{}/update_costs", campaign.id),
        json!({"start_date": "2000-01-01", "end_date": "2100-01-01 00:00", "timezone": "Europe/Madrid", "cost": "10", "currency": "USD"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["updated_clicks"], 3);
    let totals = cost_totals(&server).await;
    assert_eq!(
        totals["cost"], 10,
        "3.333334 + 3.333333 + 3.333333: {totals}"
    );
    assert_eq!(totals["cpc"], 3.333333);
    // In bulk, in euros at the configured rate; a filter no click matches changes nothing.
    let (status, answer) = admin(
        &server,
        "clicks/update_costs",
        json!({"campaign_ids": [campaign.id], "timezone": "UTC", "currency": "EUR", "costs": [
            {"start_date": "2000-01-01", "end_date": "2100-01-01", "cost": "1.5"},
            {"start_date": "2000-01-01", "end_date": "2100-01-01", "cost": "99", "filters": {"source": "nowhere,elsewhere"}}
        ]}),
    )
    .await;
    assert_eq!(
        (status, answer["updated_clicks"].as_i64()),
        (200, Some(3)),
        "{answer}"
    );
    assert_eq!(cost_totals(&server).await["cost"], 3);
    for (path, body, field) in [
        (
            format!("campaigns/{}/update_costs", campaign.id),
            json!({"start_date": "2000-01-01", "end_date": "2100-01-01", "cost": "abc"}),
            "cost",
        ),
        (
            format!("campaigns/{}/update_costs", campaign.id),
            json!({"start_date": "2000-01-01", "end_date": "2100-01-01", "cost": "1", "currency": "JPY"}),
            "currency",
        ),
        (
            "clicks/update_costs".to_string(),
            json!({"campaign_ids": [campaign.id], "costs": [{"end_date": "2100-01-01", "cost": "1"}]}),
            "costs[0].start_date",
        ),
        (
            "clicks/update_costs".to_string(),
            json!({"campaign_ids": [campaign.id], "costs": [{"start_date": "2000-01-01", "end_date": "2100-01-01", "cost": "1", "filters": {"ip": "1.2.3.4"}}]}),
            "costs[0].filters",
        ),
    ] {
        let (status, answer) = admin(&server, &path, body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().starts_with(field),
            "{answer}"
        );
    }
    let (status, answer) = admin(
        &server,
        "campaigns/999999/update_costs",
        json!({"start_date": "2000-01-01", "end_date": "2100-01-01", "cost": "1"}),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("id: no campaign 999999"))
    );
    assert_eq!(
        cost_totals(&server).await["cost"],
        3,
        "refused requests changed nothing"
    );
    server.stop().await;
}

#[tokio::test]
async fn sqlite_costs_are_spread_exactly() {
    costs_are_spread_exactly(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_costs_are_spread_exactly() {
    costs_are_spread_exactly(Backend::Postgres).await;
}

/// A loopback HTTP server that records each request (`METHOD path` and body) and answers the
/// given statuses in turn (then 200).
async fn recording_server(
    statuses: Vec<u16>,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let statuses = std::sync::Arc::new(std::sync::Mutex::new(statuses));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let record = record.clone();
            let statuses = statuses.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16_384];
                let mut read = 0;
                // Read the head, then the body by Content-Length.
                loop {
                    let n = socket.read(&mut buffer[read..]).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    read += n;
                    let text = String::from_utf8_lossy(&buffer[..read]).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if read >= end + 4 + length {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&buffer[..read]).to_string();
                let line = text.lines().next().unwrap_or("").to_string();
                let request = line
                    .rsplit_once(' ')
                    .map(|(r, _)| r.to_string())
                    .unwrap_or(line);
                let body = text
                    .split_once("\r\n\r\n")
                    .map(|(_, b)| b.to_string())
                    .unwrap_or_default();
                record.lock().unwrap().push((request, body));
                let status = {
                    let mut statuses = statuses.lock().unwrap();
                    if statuses.is_empty() {
                        200
                    } else {
                        statuses.remove(0)
                    }
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = socket.write_all(head.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

async fn postbacks_go_out(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let config = extra().replace(
        "[postback]\n",
        "[fetch]\nallow_networks = [\"127.0.0.0/8\"]\n\n[postback]\nretry_base_ms = 20\nmax_attempts = 3\n",
    );
    let server = TestServer::start(&db, &config).await.unwrap();
    let (network, seen) = recording_server(vec![500]).await;
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new("s2s", "S2S", "tok-s2s"))
        .await
        .unwrap();
    store
        .create_stream(&NewStream::redirect(
            campaign.id,
            "all",
            "https://offer.test/?subid={subid}",
        ))
        .await
        .unwrap();
    let postbacks = json!([
        {"method": "GET", "statuses": ["sale"], "url": format!("{network}/campaign?s={{subid}}&p={{payout}}&st={{status}}")},
        {"method": "POST", "statuses": ["lead"], "url": format!("{network}/post")}
    ]);
    db.execute(&format!("UPDATE campaigns SET postbacks = '{postbacks}'"))
        .await
        .unwrap();
    db.execute(&format!(
        "INSERT INTO traffic_sources (name, postback_url, postback_statuses, created_at, updated_at) VALUES ('TS', '{network}/ts?sub={{subid}}&status={{status}}', '[]', 0, 0)"
    ))
    .await
    .unwrap();
    server.reload().await;
    let sub = click(&server, "s2s").await;
    wait_for_clicks(&server, 1).await;
    db.execute("UPDATE clicks SET ts_id = (SELECT MAX(id) FROM traffic_sources)")
        .await
        .unwrap();

    let (_, body) = postback(
        &server,
        POSTBACK_KEY,
        &format!("subid={sub}&status=lead&payout=2"),
    )
    .await;
    assert_eq!(outcome(&body), "accepted");
    let (_, body) = postback(
        &server,
        POSTBACK_KEY,
        &format!("subid={sub}&status=sale&payout=10.5"),
    )
    .await;
    assert_eq!(outcome(&body), "transition");
    let (_, body) = postback(
        &server,
        POSTBACK_KEY,
        &format!("subid={sub}&status=sale&payout=10.5"),
    )
    .await;
    assert_eq!(outcome(&body), "duplicate", "a duplicate sends nothing");

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let log = loop {
        let response = client()
            .get(server.url("/admin_api/v1/logs/sent_postbacks"))
            .header("Api-Key", ADMIN_KEY)
            .send()
            .await
            .unwrap();
        let log: Value = response.json().await.unwrap();
        if log.as_array().unwrap().len() >= 4 {
            break log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "postbacks were not sent: {log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(log.as_array().unwrap().len(), 4, "{log}");
    for entry in log.as_array().unwrap() {
        assert_eq!(entry["error"], "", "{log}");
        assert_eq!(entry["status"], 200, "{log}");
    }
    let attempts: i64 = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attempts"].as_i64().unwrap())
        .sum();
    assert_eq!(
        attempts, 5,
        "the first request got a 500 and was retried: {log}"
    );
    let requests: Vec<(String, String)> = seen.lock().unwrap().clone();
    let lines: Vec<&str> = requests.iter().map(|(r, _)| r.as_str()).collect();
    assert!(
        lines.contains(&format!("GET /campaign?s={sub}&p=10.5&st=sale").as_str()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("GET /ts?sub={sub}&status=lead").as_str()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("GET /ts?sub={sub}&status=sale").as_str()),
        "{lines:?}"
    );
    let post = requests
        .iter()
        .find(|(r, _)| r == "POST /post")
        .expect("the lead's POST");
    let sent: Value = serde_json::from_str(&post.1).unwrap();
    assert_eq!(sent["status"], "lead");
    assert_eq!(sent["subid"], sub.as_str());
    server.stop().await;
}

#[tokio::test]
async fn sqlite_postbacks_go_out() {
    postbacks_go_out(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_postbacks_go_out() {
    postbacks_go_out(Backend::Postgres).await;
}

async fn labels_and_clean(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = TestServer::start(&db, &extra()).await.unwrap();
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new("lab", "Lab", "tok-lab"))
        .await
        .unwrap();
    store
        .create_stream(&NewStream::redirect(
            campaign.id,
            "all",
            "https://offer.test/?subid={subid}",
        ))
        .await
        .unwrap();
    server.reload().await;
    let mut subs = Vec::new();
    for keyword in ["a", "b", "c"] {
        subs.push(click(&server, &format!("lab?keyword={keyword}")).await);
    }
    wait_for_clicks(&server, 3).await;
    let (_, _) = postback(
        &server,
        POSTBACK_KEY,
        &format!("subid={}&status=sale&payout=1", subs[0]),
    )
    .await;

    let (status, answer) = admin(
        &server,
        "report/labels",
        json!({"campaign_id": campaign.id, "ref_name": "keyword", "items": {"a": "whitelist", "b": "blacklist"}}),
    )
    .await;
    assert_eq!(
        (status, answer["changed"].as_i64()),
        (200, Some(2)),
        "{answer}"
    );
    let labels = |server: &TestServer| {
        client()
            .get(server.url(&format!(
                "/admin_api/v1/report/labels?campaign_id={}&ref_name=keyword",
                campaign.id
            )))
            .header("Api-Key", ADMIN_KEY)
            .send()
    };
    let got: Value = labels(&server).await.unwrap().json().await.unwrap();
    assert_eq!(got, json!({"a": "whitelist", "b": "blacklist"}));
    let count = |answer: &Value| answer["rows"][0]["clicks"].as_i64().unwrap_or(0);
    let (_, white) = admin(&server, "report/build", json!({"metrics": ["clicks"], "filters": [{"name": "keyword", "operator": "HAS_LABEL", "expression": "whitelist"}]})).await;
    assert_eq!(count(&white), 1, "{white}");
    let (_, not_black) = admin(&server, "report/build", json!({"metrics": ["clicks"], "filters": [{"name": "keyword", "operator": "NOT_HAS_LABEL", "expression": "blacklist"}]})).await;
    assert_eq!(count(&not_black), 2, "{not_black}");
    let (_, log) = admin(&server, "clicks/log", json!({"filters": [{"name": "keyword", "operator": "HAS_LABEL", "expression": "blacklist"}]})).await;
    assert_eq!(log["total"], 1, "{log}");
    admin(
        &server,
        "report/labels",
        json!({"campaign_id": campaign.id, "ref_name": "keyword", "items": {"b": ""}}),
    )
    .await;
    let got: Value = labels(&server).await.unwrap().json().await.unwrap();
    assert_eq!(got, json!({"a": "whitelist"}));
    for (body, field) in [
        (
            json!({"campaign_id": campaign.id, "ref_name": "country", "items": {}}),
            "ref_name",
        ),
        (
            json!({"campaign_id": campaign.id, "ref_name": "ip", "items": {"1.2.3.4": "grey"}}),
            "items.1.2.3.4",
        ),
        (json!({"ref_name": "ip", "items": {}}), "campaign_id"),
    ] {
        let (status, answer) = admin(&server, "report/labels", body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().starts_with(field),
            "{answer}"
        );
    }

    // Cleaning the period deletes the clicks and their conversions.
    let (status, answer) = admin(
        &server,
        "clicks/clean",
        json!({"start_date": "2000-01-01", "end_date": "2100-01-01", "campaign_id": campaign.id}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["deleted_clicks"], 3);
    assert_eq!(answer["deleted_conversions"], 1);
    let (_, after) = admin(
        &server,
        "report/build",
        json!({"metrics": ["clicks", "conversions"]}),
    )
    .await;
    assert_eq!(after["total"], 0, "{after}");
    let (status, answer) = admin(&server, "clicks/clean", json!({"end_date": "2100-01-01"})).await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().unwrap().starts_with("start_date"));
    server.stop().await;
}

#[tokio::test]
async fn sqlite_labels_and_clean() {
    labels_and_clean(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_labels_and_clean() {
    labels_and_clean(Backend::Postgres).await;
}

/// A campaign `alias` whose one stream sends every click to `offer`.
async fn offer_campaign(server: &TestServer, alias: &str, offer: i64) {
    use switchyard::model::{StreamSchema, StreamType};
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new(alias, alias, &format!("tok-{alias}")))
        .await
        .unwrap();
    let mut stream = NewStream::new(
        campaign.id,
        StreamType::Regular,
        StreamSchema::Landings,
        "http",
    );
    stream.offers = vec![(offer, 100)];
    store.create_stream(&stream).await.unwrap();
}

async fn capped_offers_send_to_the_alternative(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = TestServer::start(&db, &extra()).await.unwrap();
    let capped = server
        .external_offer("Capped", "https://capped.test/?subid={subid}")
        .await;
    let alternative = server
        .external_offer("Alternative", "https://alternative.test/?subid={subid}")
        .await;
    db.execute(&format!(
        "UPDATE offers SET daily_cap = 1, conversion_timezone = 'Pacific/Auckland', alternative_offer_id = {alternative} WHERE id = {capped}"
    ))
    .await
    .unwrap();
    offer_campaign(&server, "cap", capped).await;
    server.reload().await;

    let first = server.location("cap").await;
    assert!(first.starts_with("https://capped.test/"), "{first}");
    wait_for_clicks(&server, 1).await;
    let (_, body) = postback(
        &server,
        POSTBACK_KEY,
        &format!("subid={}&status=lead", subid_of(&first).unwrap()),
    )
    .await;
    assert_eq!(outcome(&body), "accepted");
    let second = server.location("cap").await;
    assert!(
        second.starts_with("https://alternative.test/"),
        "the cap of 1 is reached: {second}"
    );
    server.stop().await;

    // After a restart the count comes back from the store.
    let server = TestServer::start(&db, &extra()).await.unwrap();
    let third = server.location("cap").await;
    assert!(third.starts_with("https://alternative.test/"), "{third}");

    // A cap added while the tracker runs counts today's conversions made before it.
    let late = server
        .external_offer("Late", "https://late.test/?subid={subid}")
        .await;
    let spare = server
        .external_offer("Spare", "https://spare.test/?subid={subid}")
        .await;
    offer_campaign(&server, "late", late).await;
    server.reload().await;
    let convert = |link: String, clicks: i64| {
        let server = &server;
        async move {
            wait_for_clicks(server, clicks).await;
            let query = format!("subid={}&status=lead", subid_of(&link).unwrap());
            let (_, body) = postback(server, POSTBACK_KEY, &query).await;
            assert_eq!(outcome(&body), "accepted");
        }
    };
    let before_cap = server.location("late").await;
    assert!(before_cap.starts_with("https://late.test/"), "{before_cap}");
    convert(before_cap, 4).await;
    let set_cap = |daily: i64| {
        format!(
            "UPDATE offers SET daily_cap = {daily}, conversion_timezone = 'UTC', alternative_offer_id = {spare} WHERE id = {late}"
        )
    };
    db.execute(&set_cap(1)).await.unwrap();
    server.reload().await;
    let capped_now = server.location("late").await;
    assert!(
        capped_now.starts_with("https://spare.test/"),
        "the conversion made before the cap reaches it without a restart: {capped_now}"
    );
    // Removed and added again, the cap is read again (postbacks did not count meanwhile).
    db.execute(&set_cap(0)).await.unwrap();
    server.reload().await;
    let uncapped = server.location("late").await;
    assert!(uncapped.starts_with("https://late.test/"), "{uncapped}");
    convert(uncapped.clone(), 6).await;
    db.execute(&set_cap(2)).await.unwrap();
    server.reload().await;
    let capped_again = server.location("late").await;
    assert!(
        capped_again.starts_with("https://spare.test/"),
        "two conversions today reach the new cap of 2: {capped_again}"
    );
    // Disabled (out of the snapshot), the offer's conversions are not counted in memory; back
    // with a higher cap, its count is read again.
    db.execute(&set_cap(10)).await.unwrap();
    server.reload().await;
    let last = server.location("late").await;
    assert!(last.starts_with("https://late.test/"), "{last}");
    db.execute(&format!(
        "UPDATE offers SET state = 'disabled' WHERE id = {late}"
    ))
    .await
    .unwrap();
    server.reload().await;
    convert(last, 8).await;
    db.execute(&format!(
        "UPDATE offers SET state = 'active', daily_cap = 3 WHERE id = {late}"
    ))
    .await
    .unwrap();
    server.reload().await;
    let back = server.location("late").await;
    assert!(
        back.starts_with("https://spare.test/"),
        "three conversions today reach the cap of 3: {back}"
    );
    server.stop().await;
}

#[tokio::test]
async fn sqlite_capped_offers_send_to_the_alternative() {
    capped_offers_send_to_the_alternative(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_capped_offers_send_to_the_alternative() {
    capped_offers_send_to_the_alternative(Backend::Postgres).await;
}

/// Reports that rollups answer equal the same reports computed from the clicks.
async fn rollups_equal_the_clicks(store: &dyn switchyard::store::Store) {
    let all_metrics: Vec<&str> = switchyard::report::METRICS.iter().map(|m| m.name).collect();
    let requests = [
        json!({"grouping": ["campaign_id", "stream_id", "offer_id", "day_hour"]}),
        json!({"grouping": ["campaign", "country_code", "day"], "range": {"interval": "all_time", "timezone": "Europe/Berlin"}}),
        json!({"grouping": [], "range": {"from": "2026-11-18 10:30", "to": "2026-11-19 07:15", "timezone": "UTC"}}),
    ];
    for mut request in requests {
        request["metrics"] = json!(all_metrics);
        if request.get("range").is_none() {
            request["range"] = json!({"interval": "all_time", "timezone": "UTC"});
        }
        let q = switchyard::report::parse_report_query(&request, 1_795_400_000).unwrap();
        assert!(switchyard::store::report_reads_rollup(&q.sql), "{request}");
        let names = Default::default();
        let rolled = q.groups(store.report_rows(&q.sql).await.unwrap(), &names);
        let counted = q.groups(store.report_rows_from_clicks(&q.sql).await.unwrap(), &names);
        assert!(!counted.is_empty(), "{request}");
        assert_eq!(rolled, counted, "{request}");
    }
}

/// The rollups stay equal to the clicks under concurrent writers: recorder batches, postbacks
/// for the same clicks, landing clicks, cost spreads and a clean, all at once; then every
/// report a rollup answers equals the one computed from the clicks, and a rebuild changes
/// nothing.
async fn rollups_survive_concurrent_writes(backend: Backend) {
    use switchyard::model::Money;
    use switchyard::store::{ConversionStatus, CostSpread, LandingClick, NewConversion};
    let db = TestDb::new(backend).await.unwrap();
    let server = TestServer::start(&db, &extra()).await.unwrap();
    let store = server.store();
    let clicks = data_set();
    store.insert_clicks(&clicks[..100]).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for batch in clicks[100..].chunks(20) {
        let (store, batch) = (store.clone(), batch.to_vec());
        tasks.spawn(async move {
            store.insert_clicks(&batch).await.unwrap();
        });
    }
    for i in 0..60i64 {
        let store = store.clone();
        tasks.spawn(async move {
            let sub_id = format!("s{:04}", i % 30);
            let click = store.postback_click(&sub_id).await.unwrap().unwrap();
            let status = ConversionStatus::ALL[(i % 4) as usize];
            store
                .record_conversion(
                    &NewConversion {
                        click,
                        tid: format!("t{}", i % 3),
                        status,
                        original_status: String::new(),
                        revenue: Some(Money::from_micros(1_000_000 + i)),
                        default_revenue: Money::ZERO,
                        cost: Money::ZERO,
                        currency: "USD".into(),
                        sub_id_updates: Vec::new(),
                        params: "{}".into(),
                        at: 1_795_300_000,
                    },
                    &|_| Vec::new(),
                )
                .await
                .unwrap();
        });
    }
    for i in 0..20i64 {
        let store = store.clone();
        tasks.spawn(async move {
            let sub_id = format!("s{:04}", 40 + i);
            store
                .mark_landing_clicks(&[LandingClick {
                    sub_id,
                    offer_id: 1 + i % 2,
                    at: 1_795_100_000,
                    destination: String::new(),
                }])
                .await
                .unwrap();
            store
                .spread_costs(&[CostSpread {
                    campaign_ids: vec![1 + i % 3],
                    from: 1_795_000_000 + i * 3_000,
                    to: 1_795_100_000,
                    total: Money::from_micros(999_999 + i),
                    only_uniques: i % 2 == 0,
                    conditions: Vec::new(),
                }])
                .await
                .unwrap();
        });
    }
    {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .clean_clicks(1_795_150_000, 1_795_160_000, Some(2))
                .await
                .unwrap();
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    rollups_equal_the_clicks(store.as_ref()).await;
    store.rebuild_rollups().await.unwrap();
    rollups_equal_the_clicks(store.as_ref()).await;
    server.stop().await;
}

#[tokio::test]
async fn sqlite_rollups_survive_concurrent_writes() {
    rollups_survive_concurrent_writes(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_rollups_survive_concurrent_writes() {
    rollups_survive_concurrent_writes(Backend::Postgres).await;
}

/// A database with clicks and conversions from before the rollups existed gets them from the
/// migration that adds them (simulated by dropping the tables and the migration's record).
async fn migration_fills_the_rollups(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = TestServer::start(&db, &extra()).await.unwrap();
    load(&server).await;
    server.stop().await;
    for sql in [
        "DROP TABLE rollup_routes",
        "DROP TABLE rollup_geo",
        "DELETE FROM schema_migrations WHERE version = 5",
    ] {
        db.execute(sql).await.unwrap();
    }
    let config = db.config("[demo]\nseed = false\n").unwrap();
    let store = switchyard::store::open(&config.database).await.unwrap();
    assert_eq!(store.migrate().await.unwrap().applied, vec![5]);
    assert!(
        db.count("SELECT COUNT(*) AS n FROM rollup_geo")
            .await
            .unwrap()
            > 0,
        "the migration computed the rollups"
    );
    rollups_equal_the_clicks(store.as_ref()).await;
    store.close().await;
}

#[tokio::test]
async fn sqlite_migration_fills_the_rollups() {
    migration_fills_the_rollups(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_migration_fills_the_rollups() {
    migration_fills_the_rollups(Backend::Postgres).await;
}

/// A click's conversion state as `clicks/log` shows it.
async fn conversion_state(server: &TestServer, sub_id: &str) -> Value {
    let (_, clicks) = admin(
        server,
        "clicks/log",
        json!({"columns": ["is_lead", "is_sale", "revenue"], "filters": [{"name": "sub_id", "operator": "EQUALS", "expression": sub_id}]}),
    )
    .await;
    clicks["rows"][0].clone()
}

/// Postbacks never wait on the order of things: one sent the moment its click is answered
/// (the click is still on its way from the journal), and a lead then a sale for a click this
/// node has not written yet (as when another node recorded it), are parked (`pending`,
/// answered 200) and applied in order once the click is stored: each conversion counts once,
/// exactly as when the click came first.
async fn postbacks_wait_for_their_click(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = TestServer::start(&db, &extra()).await.unwrap();
    let campaign_id = server.redirect_campaign("early").await;

    let first = click(&server, "early").await;
    let (status, body) = postback(
        &server,
        POSTBACK_KEY,
        &format!("subid={first}&status=sale&payout=5"),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // The control: a click stored first, then a lead and a sale.
    let control = click(&server, "early").await;
    wait_for_clicks(&server, 2).await;
    let late = "late0000000000000001";
    for sub_id in [control.as_str(), late] {
        for query in ["status=lead&payout=1", "status=sale&payout=7"] {
            let (status, body) =
                postback(&server, POSTBACK_KEY, &format!("subid={sub_id}&{query}")).await;
            assert_eq!(status, 200, "{body}");
            if sub_id == late {
                assert_eq!(outcome(&body), "pending", "{body}");
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, log) = admin(&server, "conversions/log", json!({"columns": ["sub_id"], "filters": [{"name": "sub_id", "operator": "EQUALS", "expression": late}]})).await;
    assert_eq!(
        log["total"], 0,
        "nothing is counted before the click: {log}"
    );
    let mut click = Click::blank();
    click.sub_id = late.into();
    click.campaign_id = campaign_id;
    click.created_at = switchyard::model::unix_now();
    server.server.state.recorder.record(click).await;

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, report) = admin(
            &server,
            "report/build",
            json!({"metrics": ["conversions", "sales", "revenue"]}),
        )
        .await;
        let totals = &report["rows"][0];
        if totals["sales"] == 3 {
            assert_eq!(totals["conversions"], 3, "{report}");
            assert_eq!(totals["revenue"], 19, "5 + 7 + 7: {report}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the parked postbacks were not applied: {report}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        conversion_state(&server, late).await,
        conversion_state(&server, &control).await
    );
    // The log tells the story of the late click: parked twice, then applied in order.
    let response = client()
        .get(server.url("/admin_api/v1/logs/postbacks?limit=50"))
        .header("Api-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    let log: Value = response.json().await.unwrap();
    let mut story: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["sub_id"] == late)
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    story.reverse();
    assert_eq!(
        story,
        ["pending", "pending", "accepted", "transition"],
        "{log}"
    );
    // Nothing stays parked.
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM pending_postbacks")
            .await
            .unwrap(),
        0
    );
    server.stop().await;
}

#[tokio::test]
async fn sqlite_postbacks_wait_for_their_click() {
    postbacks_wait_for_their_click(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_postbacks_wait_for_their_click() {
    postbacks_wait_for_their_click(Backend::Postgres).await;
}

/// A parked postback whose click never comes is logged `expired` after `pending_hours` and
/// counts nothing.
#[tokio::test]
async fn parked_postbacks_expire() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = TestServer::start(&db, &extra()).await.unwrap();
    server.stop().await;
    let two_days_ago = switchyard::model::unix_now() - 2 * 86_400;
    db.execute(&format!(
        "INSERT INTO pending_postbacks (sub_id, params, received_at) VALUES ('gone', '{{\"subid\":\"gone\",\"status\":\"sale\"}}', {two_days_ago})"
    ))
    .await
    .unwrap();
    let server = TestServer::start(&db, &extra()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while db
        .count("SELECT COUNT(*) AS n FROM pending_postbacks")
        .await
        .unwrap()
        > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the postback did not expire"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let response = client()
        .get(server.url("/admin_api/v1/logs/postbacks?limit=5"))
        .header("Api-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    let log: Value = response.json().await.unwrap();
    assert_eq!(log[0]["outcome"], "expired", "{log}");
    assert_eq!(log[0]["sub_id"], "gone");
    assert!(
        log[0]["message"].as_str().unwrap().contains("24 h"),
        "{log}"
    );
    server.stop().await;
}

/// Outgoing postbacks survive a restart: one whose first try failed is sent by the next start
/// (a real process, killed and started again), once; a further start sends nothing more.
async fn outgoing_postbacks_survive_a_restart(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let (network, seen) = recording_server(vec![500]).await;
    let config = db
        .write_config(&extra().replace(
            "[postback]\n",
            "[fetch]\nallow_networks = [\"127.0.0.0/8\"]\n\n[postback]\nretry_base_ms = 3000\nmax_attempts = 3\n",
        ))
        .unwrap();
    let store = switchyard::store::open(&db.config("").unwrap().database)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let campaign = store
        .create_campaign(&NewCampaign::new("durable", "Durable", "tok-durable"))
        .await
        .unwrap();
    store
        .create_stream(&NewStream::redirect(
            campaign.id,
            "all",
            "https://offer.test/?subid={subid}",
        ))
        .await
        .unwrap();
    store.close().await;
    let postbacks = json!([{"method": "GET", "statuses": ["sale"], "url": format!("{network}/durable?s={{subid}}")}]);
    db.execute(&format!("UPDATE campaigns SET postbacks = '{postbacks}'"))
        .await
        .unwrap();

    let start = || switchyard_tests::TestProcess::serve(crate::binary(), &config, &[]).unwrap();
    let mut process = start();
    let response = client().get(process.url("/durable")).send().await.unwrap();
    let sub = subid_of(response.headers()["location"].to_str().unwrap()).unwrap();
    // Accepted, or parked until the click is written a moment later: either way it is sent.
    let body = client()
        .get(process.url(&format!(
            "/{POSTBACK_KEY}/postback?subid={sub}&status=sale&payout=3"
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        ["accepted", "pending"].contains(&outcome(&body).as_str()),
        "{body}"
    );
    // The first try gets a 500, and its retry is scheduled (3 s later): the process dies
    // before the retry. (Killed between the try and the scheduling, the postback would stay
    // claimed for ten minutes: delivery is at least once, not at once.)
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().is_empty()
        || db
            .count("SELECT COUNT(*) AS n FROM outgoing_postbacks WHERE attempts = 1")
            .await
            .unwrap()
            == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the postback was never tried"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    process.child.kill().unwrap();
    process.child.wait().unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);

    let process = start();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let log = loop {
        let log: Value = client()
            .get(process.url("/admin_api/v1/logs/sent_postbacks"))
            .header("Api-Key", ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !log.as_array().unwrap().is_empty() {
            break log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the queued postback was not sent after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(log.as_array().unwrap().len(), 1, "{log}");
    assert_eq!(log[0]["status"], 200, "{log}");
    assert_eq!(log[0]["attempts"], 2, "{log}");
    assert_eq!(log[0]["error"], "", "{log}");
    process.terminate().unwrap();
    let mut process = process;
    assert!(process.wait(Duration::from_secs(20)).unwrap().success());

    // Delivered is delivered: another start sends nothing more.
    let mut process = start();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|(line, _)| line == &format!("GET /durable?s={sub}")),
        "{requests:?}"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM outgoing_postbacks")
            .await
            .unwrap(),
        0
    );
    process.terminate().unwrap();
    assert!(process.wait(Duration::from_secs(20)).unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_outgoing_postbacks_survive_a_restart() {
    outgoing_postbacks_survive_a_restart(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outgoing_postbacks_survive_a_restart() {
    outgoing_postbacks_survive_a_restart(Backend::Postgres).await;
}

/// A postback that comes while earlier ones for the same click are parked goes behind them:
/// a parked lead, then a sale sent directly, end as a lead -> sale transition, never as a
/// sale that makes the lead arrive too late.
#[tokio::test]
async fn a_postback_waits_behind_the_parked_ones_of_its_click() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = TestServer::start(&db, &extra()).await.unwrap();
    server.redirect_campaign("queue").await;
    let sub = click(&server, "queue").await;
    wait_for_clicks(&server, 1).await;
    server.stop().await;
    // A lead parked by an earlier run (its click was not stored then).
    let earlier = switchyard::model::unix_now() - 10;
    db.execute(&format!(
        "INSERT INTO pending_postbacks (sub_id, params, received_at) VALUES ('{sub}', '{{\"subid\":\"{sub}\",\"status\":\"lead\",\"payout\":\"1\"}}', {earlier})"
    ))
    .await
    .unwrap();
    let server = TestServer::start(&db, &extra()).await.unwrap();
    let (status, body) = postback(
        &server,
        POSTBACK_KEY,
        &format!("subid={sub}&status=sale&payout=4"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, log) = admin(
            &server,
            "conversions/log",
            json!({"columns": ["sub_id", "status", "previous_status", "revenue"], "filters": [{"name": "sub_id", "operator": "EQUALS", "expression": sub}]}),
        )
        .await;
        if log["rows"][0]["status"] == "sale"
            && db
                .count("SELECT COUNT(*) AS n FROM pending_postbacks")
                .await
                .unwrap()
                == 0
        {
            assert_eq!(log["rows"][0]["previous_status"], "lead", "{log}");
            assert_eq!(log["rows"][0]["revenue"], 4, "{log}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}
