//! The Admin API over HTTP: each resource's life cycle with the seed's response shapes, the
//! input encodings real clients use, validation answers, routing changes without a restart,
//! the served operations against Keitaro's list, and authentication on every route.

use reqwest::Method;
use serde_json::{Value, json};
use switchyard_tests::{Backend, TestDb, TestServer, client};

const ADMIN_KEY: &str = "test-admin-key-0123456789";

struct Admin {
    server: TestServer,
}

impl Admin {
    async fn start(db: &TestDb) -> Admin {
        let extra = format!("[demo]\nseed = false\n\n[admin]\napi_key = \"{ADMIN_KEY}\"\n");
        Admin {
            server: TestServer::start(db, &extra).await.unwrap(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = client()
            .request(method, self.server.url(&format!("/admin_api/v1{path}")))
            .header("Api-Key", ADMIN_KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method.clone(), path, body).await;
        assert_eq!(status, 200, "{method} {path}: {value}");
        value
    }
}

fn id(value: &Value) -> i64 {
    value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {value}"))
}

/// A landing and an offer for streams to send traffic to.
async fn landing_and_offer(admin: &Admin) -> (Value, Value) {
    let landing = admin
        .ok(
            Method::POST,
            "/landing_pages",
            Some(json!({ "name": "L", "url": "https://lp.example/" })),
        )
        .await;
    let offer = admin
        .ok(
            Method::POST,
            "/offers",
            Some(json!({ "name": "O", "url": "https://offer.example/?s={subid}" })),
        )
        .await;
    (landing, offer)
}

fn has_fields(value: &Value, fields: &[&str]) {
    for field in fields {
        assert!(value.get(field).is_some(), "{field} missing from {value}");
    }
}

/// create, list, get, update, clone, disable/enable, archive, list deleted, restore.
async fn lifecycle(
    admin: &Admin,
    path: &str,
    create: Value,
    update: Value,
    fields: &[&str],
    archive: (&str, Method),
) {
    let created = admin
        .ok(Method::POST, &format!("/{path}"), Some(create.clone()))
        .await;
    has_fields(&created, fields);
    assert_eq!(created["state"], "active", "{path}: {created}");
    let oid = id(&created);
    let listed = admin.ok(Method::GET, &format!("/{path}"), None).await;
    assert!(
        listed.as_array().unwrap().iter().any(|o| id(o) == oid),
        "{path} list: {listed}"
    );
    let got = admin.ok(Method::GET, &format!("/{path}/{oid}"), None).await;
    assert_eq!(got, created, "{path}: GET differs from the create answer");
    let updated = admin
        .ok(Method::PUT, &format!("/{path}/{oid}"), Some(update.clone()))
        .await;
    for (key, value) in update.as_object().unwrap() {
        assert_eq!(&updated[key], value, "{path}: {key} not updated: {updated}");
    }
    // Fields not sent keep their values.
    assert_eq!(updated["created_at"], created["created_at"]);
    // Domains have no clone in Keitaro's API.
    if path != "domains" {
        let clone_method = if path == "landing_pages" {
            Method::PUT
        } else {
            Method::POST
        };
        let clone = admin
            .ok(clone_method, &format!("/{path}/{oid}/clone"), None)
            .await;
        assert_ne!(id(&clone), oid);
        assert_eq!(
            clone["name"],
            json!(format!("{} Copy", updated["name"].as_str().unwrap()))
        );
    }
    let (archive_suffix, archive_method) = archive;
    let archived = admin
        .ok(
            archive_method,
            &format!("/{path}/{oid}{archive_suffix}"),
            None,
        )
        .await;
    assert_eq!(archived["state"], "deleted", "{path}: {archived}");
    let listed = admin.ok(Method::GET, &format!("/{path}"), None).await;
    assert!(!listed.as_array().unwrap().iter().any(|o| id(o) == oid));
    let deleted = admin
        .ok(Method::GET, &format!("/{path}/deleted"), None)
        .await;
    assert!(deleted.as_array().unwrap().iter().any(|o| id(o) == oid));
    let restored = admin
        .ok(Method::POST, &format!("/{path}/{oid}/restore"), None)
        .await;
    assert_eq!(restored["state"], "active");
    let (status, missing) = admin
        .call(Method::GET, &format!("/{path}/999999"), None)
        .await;
    assert_eq!(status, 404, "{missing}");
    assert!(missing["error"].is_string());
}

async fn every_resource_life_cycle(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let admin = Admin::start(&db).await;

    lifecycle(
        &admin,
        "affiliate_networks",
        json!({ "name": "test", "postback_url": "http://postback" }),
        json!({ "name": "test2", "postback_url": "http://postback2" }),
        &[
            "id",
            "name",
            "postback_url",
            "state",
            "template_name",
            "created_at",
            "updated_at",
            "offers",
        ],
        ("", Method::DELETE),
    )
    .await;
    lifecycle(
        &admin,
        "traffic_sources",
        json!({ "name": "Ads", "postback_url": "https://ads.example/pb?c={subid}", "postback_statuses": ["lead", "sale"],
                "parameters": { "keyword": { "name": "kw", "placeholder": "{kw}", "alias": "Keyword" } } }),
        json!({ "name": "Ads 2", "traffic_loss": 5.0 }),
        &["id", "name", "postback_url", "postback_statuses", "parameters", "accept_parameters", "traffic_loss", "state"],
        ("", Method::DELETE),
    )
    .await;
    lifecycle(
        &admin,
        "domains",
        json!({ "name": "Track.Example.com" }),
        json!({ "ssl_redirect": true }),
        &[
            "id",
            "name",
            "network_status",
            "state",
            "wildcard",
            "catch_not_found",
            "ssl_redirect",
            "allow_indexing",
            "campaigns_count",
        ],
        ("", Method::DELETE),
    )
    .await;
    let offer_network = admin
        .ok(
            Method::POST,
            "/affiliate_networks",
            Some(json!({ "name": "net" })),
        )
        .await;
    lifecycle(
        &admin,
        "offers",
        json!({ "name": "Test Offer X", "url": "http://offer.com?ad_campaign_id={ad_campaign_id}",
                "affiliate_network_id": id(&offer_network), "payout_value": 2.5, "payout_currency": "USD",
                "payout_type": "CPA", "country": ["US", "DE"] }),
        json!({ "name": "Test Offer X2", "payout_value": "3.1000", "payout_upsell": true }),
        &["id", "name", "group_id", "url", "affiliate_network_id", "payout_value", "payout_currency", "payout_type",
          "state", "created_at", "updated_at", "payout_auto", "payout_upsell", "country", "notes", "affiliate_network"],
        ("/archive", Method::DELETE),
    )
    .await;
    lifecycle(
        &admin,
        "landing_pages",
        json!({ "name": "LP", "url": "https://lp.example/a?o={offer}", "landing_type": "external" }),
        json!({ "name": "LP 2", "notes": "new copy" }),
        &["id", "name", "landing_type", "url", "action_type", "action_payload", "group_id", "state", "notes", "offer_count"],
        ("", Method::DELETE),
    )
    .await;
    let campaign_fields = [
        "id",
        "alias",
        "name",
        "type",
        "cookies_ttl",
        "position",
        "state",
        "updated_at",
        "cost_type",
        "cost_value",
        "cost_currency",
        "group_id",
        "bind_visitors",
        "traffic_source_id",
        "token",
        "cost_auto",
    ];
    lifecycle(
        &admin,
        "campaigns",
        json!({ "name": "Test Campaign X", "alias": "test-campaign-x" }),
        json!({ "name": "Test Campaign X2", "alias": "test-campaign-x2", "cost_value": "10.0000", "bind_visitors": "slo" }),
        &campaign_fields,
        ("", Method::DELETE),
    )
    .await;
    // The seed's defaults.
    let campaign = admin
        .ok(
            Method::POST,
            "/campaigns",
            Some(json!({ "name": "Defaults", "alias": "defaults" })),
        )
        .await;
    assert_eq!(campaign["type"], "position");
    assert_eq!(campaign["cookies_ttl"], 24);
    assert_eq!(campaign["cost_type"], "CPC");
    assert_eq!(campaign["cost_value"], "0.0000");
    assert_eq!(campaign["bind_visitors"], Value::Null);
    assert_eq!(campaign["cost_auto"], false);
    assert!(campaign["token"].as_str().unwrap().len() >= 16);
    let disabled = admin
        .ok(
            Method::POST,
            &format!("/campaigns/{}/disable", id(&campaign)),
            None,
        )
        .await;
    assert_eq!(disabled["state"], "disabled");
    let enabled = admin
        .ok(
            Method::POST,
            &format!("/campaigns/{}/enable", id(&campaign)),
            None,
        )
        .await;
    assert_eq!(enabled["state"], "active");

    // Streams, with every child list.
    let (landing, offer) = landing_and_offer(&admin).await;
    let stream_fields = [
        "id",
        "type",
        "name",
        "campaign_id",
        "position",
        "chance",
        "weight",
        "action_options",
        "comments",
        "state",
        "updated_at",
        "action_type",
        "action_payload",
        "schema",
        "collect_clicks",
        "filter_or",
        "filters",
        "triggers",
        "landings",
        "offers",
    ];
    let create = json!({
        "campaign_id": id(&campaign), "type": "regular", "name": "Test Stream", "schema": "landings",
        "action_type": "http", "chance": 14, "collect_clicks": true,
        "filters": [{ "name": "country", "mode": "accept", "payload": ["US", "DE"] },
                    { "name": "uniqueness", "mode": "reject", "payload": "stream" }],
        "triggers": [{ "condition": "not_respond", "target": "selected_page", "selected_page": "https://lp.example/",
                       "action": "disable", "interval": 60, "enabled": false }],
        "landings": [{ "landing_id": id(&landing), "share": 100 }],
        "offers": [{ "offer_id": id(&offer), "share": 100, "state": "active" }],
    });
    let stream = admin.ok(Method::POST, "/streams", Some(create)).await;
    has_fields(&stream, &stream_fields);
    assert_eq!(stream["weight"], 14);
    assert_eq!(stream["filters"].as_array().unwrap().len(), 2);
    assert_eq!(stream["filters"][0]["payload"], json!(["US", "DE"]));
    assert_eq!(stream["filters"][1]["mode"], "reject");
    assert_eq!(stream["triggers"][0]["target"], "selected_page");
    assert_eq!(
        stream["triggers"][0]["selected_page"],
        "https://lp.example/"
    );
    assert_eq!(stream["landings"][0]["landing_id"], id(&landing));
    assert_eq!(stream["offers"][0]["offer_id"], id(&offer));
    let sid = id(&stream);
    let streams = admin
        .ok(
            Method::GET,
            &format!("/campaigns/{}/streams", id(&campaign)),
            None,
        )
        .await;
    assert_eq!(streams.as_array().unwrap().len(), 1);
    assert_eq!(streams[0], stream);
    // An update without the lists keeps them; with a list, replaces it.
    let updated = admin
        .ok(
            Method::PUT,
            &format!("/streams/{sid}"),
            Some(json!({ "name": "Renamed" })),
        )
        .await;
    assert_eq!(updated["filters"].as_array().unwrap().len(), 2);
    let kept_filter = updated["filters"][0].clone();
    let updated = admin
        .ok(
            Method::PUT,
            &format!("/streams/{sid}"),
            Some(json!({ "filters": [
            { "id": kept_filter["id"], "name": "country", "mode": "reject", "payload": ["CN"] },
            { "name": "ip", "mode": "reject", "payload": ["10.0.0.0/8"] },
        ] })),
        )
        .await;
    assert_eq!(updated["filters"].as_array().unwrap().len(), 2);
    assert_eq!(
        updated["filters"][0]["id"], kept_filter["id"],
        "a filter sent back with its id keeps it"
    );
    assert_eq!(updated["filters"][0]["mode"], "reject");
    let updated = admin
        .ok(Method::PUT, &format!("/streams/{sid}"), Some(json!({ "filters": [{ "name": "ip", "mode": "reject", "payload": ["10.0.0.0/8"] }] })))
        .await;
    assert_eq!(updated["filters"].as_array().unwrap().len(), 1);
    assert_eq!(updated["name"], "Renamed");
    let found = admin
        .ok(Method::GET, "/streams/search?query=renam", None)
        .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    for (path, state) in [("disable", "disabled"), ("enable", "active")] {
        let changed = admin
            .ok(Method::POST, &format!("/streams/{sid}/{path}"), None)
            .await;
        assert_eq!(changed["state"], state);
    }
    let archived = admin
        .ok(Method::DELETE, &format!("/streams/{sid}"), None)
        .await;
    assert_eq!(archived["state"], "deleted");
    let deleted = admin.ok(Method::GET, "/streams/deleted", None).await;
    assert!(deleted.as_array().unwrap().iter().any(|s| id(s) == sid));
    let restored = admin
        .ok(Method::POST, &format!("/streams/{sid}/restore"), None)
        .await;
    assert_eq!(restored["state"], "active");
    // Every change appended a stream event.
    let events = admin
        .ok(Method::GET, &format!("/streams/{sid}/events"), None)
        .await;
    let names: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for expected in [
        "stream_created",
        "stream_updated",
        "stream_disabled",
        "stream_enabled",
        "stream_archived",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }

    // Groups: list by type, update with a count, delete.
    let group = admin
        .ok(
            Method::POST,
            "/groups",
            Some(json!({ "name": "Test Group X", "position": 2, "type": "campaigns" })),
        )
        .await;
    has_fields(&group, &["id", "name", "position", "type"]);
    let gid = id(&group);
    admin
        .ok(
            Method::PUT,
            &format!("/campaigns/{}", id(&campaign)),
            Some(json!({ "group_id": gid })),
        )
        .await;
    let updated = admin
        .ok(
            Method::PUT,
            &format!("/groups/{gid}"),
            Some(json!({ "name": "Test Group X2" })),
        )
        .await;
    assert_eq!(updated["name"], "Test Group X2");
    assert_eq!(updated["count"], 1);
    let offers_groups = admin.ok(Method::GET, "/groups?type=offers", None).await;
    assert_eq!(offers_groups, json!([]));
    let campaign_groups = admin.ok(Method::GET, "/groups?type=campaigns", None).await;
    assert_eq!(campaign_groups.as_array().unwrap().len(), 1);
    admin
        .ok(Method::DELETE, &format!("/groups/{gid}/delete"), None)
        .await;
    let campaign_now = admin
        .ok(Method::GET, &format!("/campaigns/{}", id(&campaign)), None)
        .await;
    assert_eq!(campaign_now["group_id"], Value::Null);
    admin.server.stop().await;
}

#[tokio::test]
async fn every_resource_life_cycle_sqlite() {
    every_resource_life_cycle(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_resource_life_cycle_postgres() {
    every_resource_life_cycle(Backend::Postgres).await;
}

/// Bad input answers 406 naming each field, and writes nothing.
async fn validation_names_the_fields(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let admin = Admin::start(&db).await;
    let (status, errors) = admin
        .call(Method::POST, "/campaigns", Some(json!({ "alias": "admin_api", "type": "round", "cookies_ttl": "x", "bind_visitors": "q" })))
        .await;
    assert_eq!(status, 406, "{errors}");
    for field in ["alias", "name", "type", "cookies_ttl", "bind_visitors"] {
        assert!(errors[field].is_array(), "{field} not named in {errors}");
    }
    let campaign = admin
        .ok(
            Method::POST,
            "/campaigns",
            Some(json!({ "name": "A", "alias": "a", "unknown_field": [1, 2] })),
        )
        .await;
    let (status, errors) = admin
        .call(
            Method::POST,
            "/campaigns",
            Some(json!({ "name": "B", "alias": "A" })),
        )
        .await;
    assert_eq!(status, 406);
    assert!(
        errors["alias"][0]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{errors}"
    );
    let (status, errors) = admin
        .call(Method::POST, "/offers", Some(json!({ "name": "O", "url": "javascript:alert(1)", "payout_value": "1e9", "country": {"a": 1} })))
        .await;
    assert_eq!(status, 406);
    for field in ["url", "payout_value", "country"] {
        assert!(errors[field].is_array(), "{field} not named in {errors}");
    }
    let (status, errors) = admin
        .call(Method::POST, "/streams", Some(json!({
            "campaign_id": id(&campaign), "type": "regular", "schema": "redirect", "action_type": "no_such_action",
            "filters": [{ "name": "no_such_filter", "mode": "accept" }, { "name": "ip", "mode": "sideways" }],
            "offers": [{ "offer_id": 424242, "share": 10 }],
            "triggers": [{ "condition": "always", "action": "disable", "interval": 5 },
                         { "condition": "sometimes", "action": "explode", "interval": 604801 }],
        })))
        .await;
    assert_eq!(status, 406, "{errors}");
    for field in [
        "action_type",
        "filters[0].name",
        "filters[1].mode",
        "offers[0].offer_id",
        "triggers[0].interval",
        "triggers[1].interval",
        "triggers[1].condition",
        "triggers[1].action",
    ] {
        assert!(errors[field].is_array(), "{field} not named in {errors}");
    }
    let (status, errors) = admin
        .call(
            Method::POST,
            "/streams",
            Some(json!({ "campaign_id": 999, "type": "regular" })),
        )
        .await;
    assert_eq!(status, 406);
    assert!(errors["campaign_id"].is_array());
    // Nothing was written by the refused requests.
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM campaigns")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM offers").await.unwrap(),
        0
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM streams").await.unwrap(),
        0
    );
    // A date at the end of the calendar is a 400, not a panic.
    for (path, body) in [
        (
            "/report/build",
            json!({ "range": { "from": "2026-01-01", "to": "+262143-12-31" }, "grouping": ["campaign"], "metrics": ["clicks"] }),
        ),
        (
            "/clicks/clean",
            json!({ "start_date": "2026-01-01", "end_date": "+262143-12-31" }),
        ),
    ] {
        let (status, error) = admin.call(Method::POST, path, Some(body)).await;
        assert!(status == 400 || status == 406, "{path}: {status} {error}");
    }
    // Malformed JSON is a 400 with an error, not a 5xx.
    let response = client()
        .post(admin.server.url("/admin_api/v1/campaigns"))
        .header("Api-Key", ADMIN_KEY)
        .header("Content-Type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    // Loops through `campaign` actions are refused.
    let other = admin
        .ok(
            Method::POST,
            "/campaigns",
            Some(json!({ "name": "B", "alias": "b" })),
        )
        .await;
    admin
        .ok(
            Method::POST,
            "/streams",
            Some(
                json!({ "campaign_id": id(&campaign), "type": "regular", "schema": "action",
            "action_type": "campaign", "action_payload": id(&other) }),
            ),
        )
        .await;
    let (status, errors) = admin
        .call(
            Method::POST,
            "/streams",
            Some(
                json!({ "campaign_id": id(&other), "type": "regular", "schema": "action",
            "action_type": "campaign", "action_payload": id(&campaign) }),
            ),
        )
        .await;
    assert_eq!(status, 406, "{errors}");
    assert!(
        errors["action_payload"][0]
            .as_str()
            .unwrap()
            .contains("loop"),
        "{errors}"
    );
    // A file-managed campaign is refused with 409 naming the file.
    db.execute(&format!(
        "UPDATE campaigns SET file_source = 'campaigns/shop.toml' WHERE id = {}",
        id(&other)
    ))
    .await
    .unwrap();
    let (status, error) = admin
        .call(
            Method::PUT,
            &format!("/campaigns/{}", id(&other)),
            Some(json!({ "name": "X" })),
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("campaigns/shop.toml"),
        "{error}"
    );
    let (status, _) = admin
        .call(Method::DELETE, &format!("/campaigns/{}", id(&other)), None)
        .await;
    assert_eq!(status, 409);
    admin.server.stop().await;
}

#[tokio::test]
async fn validation_names_the_fields_sqlite() {
    validation_names_the_fields(Backend::Sqlite).await;
}

#[tokio::test]
async fn validation_names_the_fields_postgres() {
    validation_names_the_fields(Backend::Postgres).await;
}

/// Form bodies (PHP-style nesting, keitaropy's mangled lists), JSON without a Content-Type,
/// and a campaign built over the API routes a click at once.
#[tokio::test]
async fn form_input_and_routing_without_restart() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let admin = Admin::start(&db).await;
    let form = |path: &str, body: &str| {
        client()
            .post(admin.server.url(&format!("/admin_api/v1{path}")))
            .header("Api-Key", ADMIN_KEY)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_string())
    };
    let campaign: Value = form(
        "/campaigns",
        "name=Form+Campaign&alias=form-c&cost_auto=1&cookies_ttl=12",
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(campaign["cost_auto"], true, "{campaign}");
    assert_eq!(campaign["cookies_ttl"], 12);
    let offer: Value = client()
        .post(admin.server.url("/admin_api/v1/offers"))
        .header("Api-Key", ADMIN_KEY)
        .body(json!({ "name": "O", "url": "https://offer.example/?s={subid}" }).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body = format!(
        "campaign_id={}&type=regular&schema=redirect&action_type=http&action_payload=https%3A%2F%2Fdest.example%2F%3Fs%3D%7Bsubid%7D\
         &filters[0][name]=country&filters[0][mode]=reject&filters[0][payload][]=CN&offers=offer_id&offers=share",
        id(&campaign)
    );
    let response = form("/streams", &body).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let stream: Value = response.json().await.unwrap();
    assert_eq!(stream["filters"][0]["payload"], json!(["CN"]));
    assert_eq!(
        stream["offers"],
        json!([]),
        "the mangled offers field is ignored"
    );
    assert!(id(&offer) > 0);
    // The new campaign routes at once: no restart, no reload call.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirect
        .get(admin.server.url("/form-c"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("https://dest.example/?s="),
        "{location}"
    );
    // Disabling the campaign stops it routing at once too.
    admin
        .ok(
            Method::POST,
            &format!("/campaigns/{}/disable", id(&campaign)),
            None,
        )
        .await;
    let response = no_redirect
        .get(admin.server.url("/form-c"))
        .send()
        .await
        .unwrap();
    assert_ne!(response.status().as_u16(), 302);
    admin.server.stop().await;
}

fn keitaro_operations() -> Vec<(String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/keitaro-admin-operations.txt"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (method, path) = l.split_once(' ').unwrap();
            (method.to_string(), path.to_string())
        })
        .collect()
}

/// Every Keitaro operation is in the served OpenAPI document, and every documented route
/// answers 401 without a key and with a wrong key.
#[tokio::test]
async fn served_operations_cover_keitaro_and_all_need_a_key() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let admin = Admin::start(&db).await;
    let document = admin.ok(Method::GET, "/openapi.json", None).await;
    assert_eq!(document["openapi"], "3.0.3");
    let paths = document["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let keitaro = keitaro_operations();
    assert_eq!(keitaro.len(), 107);
    let missing: Vec<String> = keitaro
        .iter()
        .filter(|op| !documented.contains(op))
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        missing.is_empty(),
        "{} Keitaro operations not served: {missing:#?}",
        missing.len()
    );
    for (method, path) in &documented {
        let concrete = path.replace("{id}", "1").replace("{type}", "system");
        let url = admin.server.url(&format!("/admin_api/v1{concrete}"));
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        for key in [None, Some("wrong-key-0123456789")] {
            let mut request = client().request(method.clone(), &url);
            if let Some(key) = key {
                request = request.header("Api-Key", key);
            }
            let status = request.send().await.unwrap().status().as_u16();
            assert_eq!(status, 401, "{method} {concrete} with key {key:?}");
        }
    }
    // The documentation page is served without a key and holds no data.
    let page = client()
        .get(admin.server.url("/admin_api/v1/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("openapi.json"));
    admin.server.stop().await;
}

/// Users get keys; a USER's access is enforced per resource: read-only, groups and selection,
/// and admin-only areas.
async fn users_keys_and_access(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let admin = Admin::start(&db).await;
    let group = admin
        .ok(
            Method::POST,
            "/groups",
            Some(json!({ "name": "Mine", "type": "campaigns" })),
        )
        .await;
    let mine = admin
        .ok(
            Method::POST,
            "/campaigns",
            Some(json!({ "name": "Mine", "alias": "mine", "group_id": id(&group) })),
        )
        .await;
    let selected = admin
        .ok(
            Method::POST,
            "/campaigns",
            Some(json!({ "name": "Sel", "alias": "sel" })),
        )
        .await;
    let other = admin
        .ok(
            Method::POST,
            "/campaigns",
            Some(json!({ "name": "Other", "alias": "other" })),
        )
        .await;
    let (status, errors) = admin
        .call(
            Method::POST,
            "/users",
            Some(json!({ "login": "bob", "type": "USER", "new_password": "short" })),
        )
        .await;
    assert_eq!(status, 406);
    assert!(errors["new_password"].is_array(), "{errors}");
    let user = admin
        .ok(Method::POST, "/users", Some(json!({
            "login": "bob", "type": "USER", "new_password": "correct horse", "new_password_confirmation": "correct horse",
            "preferences": { "language": "en", "timezone": "Europe/Berlin" },
            "access_data": { "campaigns_access_type": "to_groups_and_selected", "campaigns_groups": [id(&group)],
                             "campaigns_selected": [id(&selected)], "offers_access_type": "read_only" },
        })))
        .await;
    has_fields(
        &user,
        &[
            "id",
            "login",
            "type",
            "access_data",
            "preferences",
            "api_key",
        ],
    );
    assert!(user.get("password_hash").is_none(), "{user}");
    let key = user["api_key"].as_str().unwrap().to_string();
    // The key is never shown again.
    let again = admin
        .ok(Method::GET, &format!("/users/{}", id(&user)), None)
        .await;
    assert!(again.get("api_key").is_none());
    let stored = db
        .rows("SELECT key_hash FROM api_keys", &["key_hash"])
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0]["key_hash"], key);

    let as_bob = |method: Method, path: &str, body: Option<Value>| {
        let mut request = client()
            .request(method, admin.server.url(&format!("/admin_api/v1{path}")))
            .header("Api-Key", key.clone());
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, list) = as_bob(Method::GET, "/campaigns", None).await;
    assert_eq!(status, 200);
    let ids: Vec<i64> = list.as_array().unwrap().iter().map(id).collect();
    assert_eq!(
        ids,
        vec![id(&mine), id(&selected)],
        "only the group's and the selected campaigns"
    );
    let (status, _) = as_bob(Method::GET, &format!("/campaigns/{}", id(&other)), None).await;
    assert_eq!(status, 403);
    // The archived list is filtered the same way (by the handler's query).
    let archived_mine = admin
        .ok(
            Method::POST,
            "/campaigns",
            Some(json!({ "name": "Old mine", "alias": "old-mine", "group_id": id(&group) })),
        )
        .await;
    let archived_other = admin
        .ok(
            Method::POST,
            "/campaigns",
            Some(json!({ "name": "Old other", "alias": "old-other" })),
        )
        .await;
    for campaign in [&archived_mine, &archived_other] {
        let (status, _) = admin
            .call(
                Method::DELETE,
                &format!("/campaigns/{}", id(campaign)),
                None,
            )
            .await;
        assert_eq!(status, 200);
    }
    let (status, list) = as_bob(Method::GET, "/campaigns/deleted", None).await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<i64> = list.as_array().unwrap().iter().map(id).collect();
    assert_eq!(
        ids,
        vec![id(&archived_mine)],
        "only the group's archived campaign"
    );
    // An answer under a scope that its handler did not filter is refused, never shown whole.
    let (status, _) = as_bob(Method::GET, "/campaigns/no-such-list", None).await;
    assert_ne!(status, 200);
    // The same object with its id percent-encoded (the router decodes it) is refused too.
    let encoded: String = id(&other)
        .to_string()
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect();
    let (status, _) = as_bob(Method::GET, &format!("/campaigns/{encoded}"), None).await;
    assert_eq!(status, 403);
    let (status, _) = as_bob(Method::GET, &format!("/campaigns/{encoded}/streams"), None).await;
    assert_eq!(status, 403);
    let (status, _) = as_bob(
        Method::PUT,
        &format!("/campaigns/{}", id(&mine)),
        Some(json!({ "name": "Mine 2" })),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = as_bob(
        Method::PUT,
        &format!("/campaigns/{}", id(&other)),
        Some(json!({ "name": "X" })),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = as_bob(
        Method::POST,
        "/campaigns",
        Some(json!({ "name": "New", "alias": "new" })),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = as_bob(Method::GET, "/offers", None).await;
    assert_eq!(status, 200);
    let (status, error) = as_bob(
        Method::POST,
        "/offers",
        Some(json!({ "name": "O", "url": "https://o.example/" })),
    )
    .await;
    assert_eq!(status, 403, "{error}");
    assert!(error["error"].is_string());
    for path in ["/users", "/botlist", "/integrations/avscan", "/plugins"] {
        let (status, _) = as_bob(Method::GET, path, None).await;
        assert_eq!(status, 403, "{path}");
    }
    let (status, _) = as_bob(Method::GET, "/stream_filters", None).await;
    assert_eq!(status, 200);
    // Disabling the user disables its key; deleting removes it.
    admin
        .ok(
            Method::PUT,
            &format!("/users/{}", id(&user)),
            Some(json!({ "state": "disabled" })),
        )
        .await;
    let (status, _) = as_bob(Method::GET, "/offers", None).await;
    assert_eq!(status, 401);
    admin
        .ok(
            Method::PUT,
            &format!("/users/{}", id(&user)),
            Some(json!({ "state": "active" })),
        )
        .await;
    let access = admin
        .ok(
            Method::PUT,
            &format!("/users/{}/access", id(&user)),
            Some(json!({ "access_data": { "campaigns_access_type": "full_access" } })),
        )
        .await;
    assert_eq!(
        access["access_data"]["campaigns_access_type"],
        "full_access"
    );
    let (status, _) = as_bob(
        Method::POST,
        "/campaigns",
        Some(json!({ "name": "New", "alias": "new" })),
    )
    .await;
    assert_eq!(status, 200);
    admin
        .ok(Method::DELETE, &format!("/users/{}", id(&user)), None)
        .await;
    let (status, _) = as_bob(Method::GET, "/campaigns", None).await;
    assert_eq!(status, 401);
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM api_keys")
            .await
            .unwrap(),
        0
    );
    admin.server.stop().await;
}

#[tokio::test]
async fn users_keys_and_access_sqlite() {
    users_keys_and_access(Backend::Sqlite).await;
}

#[tokio::test]
async fn users_keys_and_access_postgres() {
    users_keys_and_access(Backend::Postgres).await;
}

/// The bot list over the API changes what the click path calls a bot, at once; integration
/// settings round-trip.
#[tokio::test]
async fn bot_list_and_integrations() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let admin = Admin::start(&db).await;
    let (status, errors) = admin
        .call(
            Method::POST,
            "/botlist/add",
            Some(json!({ "value": "1.2.3.4\nnot-an-ip" })),
        )
        .await;
    assert_eq!(status, 406);
    assert!(errors["value"][0].as_str().unwrap().contains("not-an-ip"));
    assert_eq!(
        admin.ok(Method::GET, "/botlist", None).await["count"],
        0,
        "a refused request writes nothing"
    );
    let added = admin
        .ok(
            Method::POST,
            "/botlist/add",
            Some(json!({ "value": "127.0.0.1\n10.0.0.0/8\n192.168.0.0-192.168.0.255" })),
        )
        .await;
    assert_eq!(added["count"], 3);
    assert_eq!(added["value"], "127.0.0.1\n10.0.0.0/8\n192.168.0.0/24");
    // A bot stream catches the test client's own address (127.0.0.1) once it is listed.
    let campaign = admin
        .ok(
            Method::POST,
            "/campaigns",
            Some(json!({ "name": "C", "alias": "bots" })),
        )
        .await;
    admin
        .ok(Method::POST, "/streams", Some(json!({ "campaign_id": id(&campaign), "type": "forced", "schema": "redirect",
            "action_type": "http", "action_payload": "https://bots.example/", "filters": [{ "name": "bot", "mode": "accept", "payload": null }] })))
        .await;
    admin
        .ok(
            Method::POST,
            "/streams",
            Some(
                json!({ "campaign_id": id(&campaign), "type": "default", "schema": "redirect",
            "action_type": "http", "action_payload": "https://people.example/" }),
            ),
        )
        .await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let location =
        |response: reqwest::Response| response.headers()["location"].to_str().unwrap().to_string();
    let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
    let first = no_redirect
        .get(admin.server.url("/bots"))
        .header("User-Agent", ua)
        .send()
        .await
        .unwrap();
    assert!(location(first).starts_with("https://bots.example/"));
    let excluded = admin
        .ok(
            Method::POST,
            "/botlist/exclude",
            Some(json!({ "value": "127.0.0.1" })),
        )
        .await;
    assert_eq!(excluded["count"], 2);
    let second = no_redirect
        .get(admin.server.url("/bots"))
        .header("User-Agent", ua)
        .send()
        .await
        .unwrap();
    assert!(location(second).starts_with("https://people.example/"));
    let replaced = admin
        .ok(
            Method::PUT,
            "/botlist",
            Some(json!({ "value": "203.0.113.0/24" })),
        )
        .await;
    assert_eq!(replaced["value"], "203.0.113.0/24");
    let cleared = admin.ok(Method::DELETE, "/botlist", None).await;
    assert_eq!(cleared["count"], 0);

    let avscan = admin
        .ok(Method::PUT, "/integrations/avscan?avscan_key=abc123", None)
        .await;
    assert_eq!(avscan, json!({ "avscan_key": "abc123" }));
    assert_eq!(
        admin.ok(Method::GET, "/integrations/avscan", None).await,
        avscan
    );
    let (status, _) = admin
        .call(
            Method::PUT,
            "/integrations/imklo?imklo_api_url=ftp://x",
            None,
        )
        .await;
    assert_eq!(status, 406);
    let fb = admin
        .ok(
            Method::POST,
            "/integrations/facebook",
            Some(json!({ "name": "FB", "ad_account_id": "act_1", "token": "secret-token-9876" })),
        )
        .await;
    assert_eq!(fb["token"], "…9876", "tokens are shown masked");
    let fid = id(&fb);
    admin
        .ok(
            Method::POST,
            &format!("/integrations/facebook/{fid}/campaign"),
            Some(json!({ "campaign_id": id(&campaign) })),
        )
        .await;
    let assigned = admin
        .ok(
            Method::GET,
            &format!("/integrations/facebook/{fid}/campaign"),
            None,
        )
        .await;
    assert_eq!(assigned, json!([{ "name": "C", "value": id(&campaign) }]));
    admin
        .ok(
            Method::DELETE,
            &format!("/integrations/facebook/{fid}/campaign"),
            Some(json!({ "campaign_id": id(&campaign) })),
        )
        .await;
    let list = admin.ok(Method::GET, "/integrations/facebook", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    admin
        .ok(
            Method::DELETE,
            &format!("/integrations/facebook/{fid}"),
            None,
        )
        .await;
    let (status, _) = admin
        .call(Method::GET, &format!("/integrations/facebook/{fid}"), None)
        .await;
    assert_eq!(status, 404);
    admin.server.stop().await;
}

/// keitaropy (the PyPI client, which posts form bodies and flattens nested fields) creates an
/// offer, a campaign and a stream on the running server; the campaign then routes a click.
#[tokio::test]
async fn keitaropy_builds_a_campaign_that_routes() {
    let python = tokio::task::spawn_blocking(|| {
        switchyard_tests::python_env("keitaropy", &["keitaropy==0.1.1"])
    })
    .await
    .unwrap()
    .expect("a Python environment with keitaropy");
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let admin = Admin::start(&db).await;
    let script = r#"
import json, os
from keitaropy import Keitaro
k = Keitaro(os.environ["KEY"], os.environ["HOST"] + "/admin_api/v1")
offer = k.offers.create({"name": "KP offer", "action_payload": "https://offer.example/lp?s={subid}", "payout_value": 1.5,
                         "payout_currency": "USD", "country": ["US"]})
source = k.sources.create({"name": "KP source"})
campaign = k.campaigns.create({"name": "KP campaign", "alias": "kp-campaign", "traffic_source_id": source["id"]})
stream = k.streams.create({"campaign_id": campaign["id"], "schema": "redirect", "type": "regular",
                           "action_payload": "https://offer.example/lp?s={subid}", "chance": 100})
print(json.dumps({"offer": offer, "source": source, "campaign": campaign, "stream": stream}))
"#;
    let host = admin.server.url("");
    let output = tokio::process::Command::new(&python)
        .args(["-c", script])
        .env("KEY", ADMIN_KEY)
        .env("HOST", &host)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "keitaropy failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let made: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
    assert_eq!(made["offer"]["name"], "KP offer", "{made}");
    assert_eq!(made["offer"]["payout_value"], "1.5000");
    assert_eq!(made["offer"]["payout_auto"], true);
    assert_eq!(made["source"]["postback_statuses"], json!(["sale", "lead"]));
    assert_eq!(made["campaign"]["alias"], "kp-campaign");
    assert_eq!(made["campaign"]["cost_auto"], true);
    assert_eq!(made["stream"]["weight"], 100);
    assert_eq!(
        made["stream"]["offers"],
        json!([]),
        "keitaropy's flattened offers list is ignored"
    );
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirect
        .get(admin.server.url("/kp-campaign"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 302);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://offer.example/lp?s="),
        "{location}"
    );
    admin.server.stop().await;
}

/// schemathesis (PyPI) generates requests for every operation of the served OpenAPI document;
/// none may answer 5xx. Prints how many cases ran.
async fn schemathesis_finds_no_server_errors(backend: Backend, examples: u32) {
    let schemathesis = tokio::task::spawn_blocking(|| {
        switchyard_tests::python_env("schemathesis", &["schemathesis==4.32.5"])
    })
    .await
    .unwrap()
    .expect("a Python environment with schemathesis")
    .with_file_name("schemathesis");
    let db = TestDb::new(backend).await.unwrap();
    let extra = format!("[demo]\nseed = true\n\n[admin]\napi_key = \"{ADMIN_KEY}\"\n");
    let server = TestServer::start(&db, &extra).await.unwrap();
    let document = client()
        .get(server.url("/admin_api/v1/openapi.json"))
        .header("Api-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let schema = db.dir.path().join("openapi.json");
    std::fs::write(&schema, document).unwrap();
    let output = tokio::process::Command::new(&schemathesis)
        // Its caches go into the test's directory, not the source tree.
        .current_dir(db.dir.path())
        .arg("run")
        .arg(&schema)
        .args(["--url", &server.url("/admin_api/v1")])
        .args(["-H", &format!("Api-Key: {ADMIN_KEY}")])
        .args(["--checks", "not_a_server_error"])
        .args(["--max-examples", &examples.to_string()])
        .args(["--workers", "2", "--no-color"])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    let generated = report
        .lines()
        .find(|l| {
            l.trim_start().starts_with(|c: char| c.is_ascii_digit()) && l.contains(" generated")
        })
        .unwrap_or("")
        .trim()
        .to_string();
    println!("schemathesis ({backend:?}): {generated}");
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    server.stop().await;
}

#[tokio::test]
async fn schemathesis_finds_no_server_errors_sqlite() {
    schemathesis_finds_no_server_errors(Backend::Sqlite, 10).await;
}

#[tokio::test]
async fn schemathesis_finds_no_server_errors_postgres() {
    schemathesis_finds_no_server_errors(Backend::Postgres, 4).await;
}

/// Seed 002's PHP examples post `json_encode($params)` through curl's CURLOPT_POSTFIELDS, which
/// labels the JSON a form: it is read as JSON (a create succeeds, report/build groups as
/// asked), and a key a report or log request does not read is a 400 naming it.
async fn json_labelled_as_a_form_is_json(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let extra = format!("[demo]\nseed = true\n\n[admin]\napi_key = \"{ADMIN_KEY}\"\n");
    let admin = Admin {
        server: TestServer::start(&db, &extra).await.unwrap(),
    };
    let php = |path: &str, body: Value| {
        client()
            .post(admin.server.url(&format!("/admin_api/v1{path}")))
            .header("Api-Key", ADMIN_KEY)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
    };
    let response = php(
        "/campaigns",
        json!({ "name": "From PHP", "alias": "from-php" }),
    )
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["alias"], "from-php", "{created}");

    // A click on the demo campaign, then a report grouped by campaign, sent the PHP way.
    let click = client()
        .get(admin.server.url("/demo"))
        .send()
        .await
        .unwrap();
    assert!(click.status().is_redirection(), "{}", click.status());
    let report = json!({
        "range": { "interval": "today" },
        "grouping": ["campaign_id"],
        "metrics": ["clicks"],
    });
    let mut rows = Value::Null;
    for _ in 0..50 {
        let answer: Value = php("/report/build", report.clone())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        rows = answer["rows"].clone();
        if rows.as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let row = &rows[0];
    assert!(row["campaign_id"].is_i64(), "grouped by campaign: {rows}");
    assert_eq!(row["clicks"], 1, "{rows}");

    // The log's columns are the ones asked for.
    let answer: Value = php(
        "/clicks/log",
        json!({ "columns": ["sub_id", "campaign_id"] }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let logged = answer["rows"][0].as_object().expect("a logged click");
    let mut keys: Vec<&str> = logged.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["campaign_id", "sub_id"], "{answer}");

    // An unknown key is refused by name, whatever the encoding.
    for (path, body) in [
        ("/clicks/log", json!({ "colums": ["ip"] })),
        (
            "/conversions/log",
            json!({ "columns": ["sub_id"], "page": 2 }),
        ),
        ("/report/build", json!({ "dimensions": ["country"] })),
    ] {
        let key = body
            .as_object()
            .unwrap()
            .keys()
            .find(|k| *k != "columns")
            .unwrap()
            .clone();
        let (status, error) = admin.call(Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, 400, "{path}: {error}");
        assert!(error.to_string().contains(&key), "{path}: {error}");
        let response = php(path, body).await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{path} labelled a form");
    }
    admin.server.stop().await;
}

#[tokio::test]
async fn json_labelled_as_a_form_is_json_sqlite() {
    json_labelled_as_a_form_is_json(Backend::Sqlite).await;
}

#[tokio::test]
async fn json_labelled_as_a_form_is_json_postgres() {
    json_labelled_as_a_form_is_json(Backend::Postgres).await;
}

/// Keitaro's campaign clone copies the streams: their filters, triggers, actions, weights and
/// positions, and their landings and offers with shares; the original keeps its own.
async fn a_cloned_campaign_gets_its_streams(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let admin = Admin::start(&db).await;
    let campaign = admin
        .ok(
            Method::POST,
            "/campaigns",
            Some(json!({ "name": "Original", "alias": "original" })),
        )
        .await;
    let (landing, offer) = landing_and_offer(&admin).await;
    for (name, weight, position) in [("First", 30, 1), ("Second", 70, 2)] {
        admin
            .ok(
                Method::POST,
                "/streams",
                Some(json!({
                    "campaign_id": id(&campaign), "type": "regular", "name": name,
                    "schema": "landings", "action_type": "http", "weight": weight,
                    "position": position,
                    "filters": [{ "name": "country", "mode": "accept", "payload": ["US", "DE"] }],
                    "triggers": [{ "condition": "not_respond", "target": "selected_page",
                                   "selected_page": "https://lp.example/", "action": "disable",
                                   "interval": 60, "enabled": false }],
                    "landings": [{ "landing_id": id(&landing), "share": 40 }],
                    "offers": [{ "offer_id": id(&offer), "share": 60 }],
                })),
            )
            .await;
    }
    let copy = admin
        .ok(
            Method::POST,
            &format!("/campaigns/{}/clone", id(&campaign)),
            None,
        )
        .await;
    assert_ne!(id(&copy), id(&campaign));
    let streams_of = |campaign: i64| {
        let admin = &admin;
        async move {
            admin
                .ok(Method::GET, &format!("/campaigns/{campaign}/streams"), None)
                .await
        }
    };
    let original = streams_of(id(&campaign)).await;
    let copied = streams_of(id(&copy)).await;
    assert_eq!(original.as_array().unwrap().len(), 2);
    assert_eq!(copied.as_array().unwrap().len(), 2, "{copied}");
    // The same streams but for their ids, campaign and times.
    let comparable = |streams: &Value| -> Vec<Value> {
        streams
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let mut s = s.clone();
                let object = s.as_object_mut().unwrap();
                for volatile in ["id", "campaign_id", "updated_at", "created_at"] {
                    object.remove(volatile);
                }
                for list in ["filters", "triggers", "landings", "offers"] {
                    for item in object[list].as_array_mut().unwrap() {
                        let item = item.as_object_mut().unwrap();
                        for volatile in ["id", "stream_id", "updated_at", "created_at"] {
                            item.remove(volatile);
                        }
                    }
                }
                s
            })
            .collect()
    };
    assert_eq!(comparable(&copied), comparable(&original));
    assert_eq!(copied[1]["offers"][0]["share"], 60, "{copied}");
    assert!(
        copied
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["campaign_id"] == id(&copy))
    );
    admin.server.stop().await;
}

#[tokio::test]
async fn a_cloned_campaign_gets_its_streams_sqlite() {
    a_cloned_campaign_gets_its_streams(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_cloned_campaign_gets_its_streams_postgres() {
    a_cloned_campaign_gets_its_streams(Backend::Postgres).await;
}
