//! Stream triggers against local test servers: a dead page disables its stream, a page without
//! its text switches the stream's URL, a webhook is called, a script decides, and a target the
//! SSRF guard refuses is recorded without touching the stream.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard::model::{NewCampaign, NewStream, NewTrigger, StreamType};
use switchyard_tests::{Backend, TestDb, TestServer, client, fixed_http_server};

const ADMIN_KEY: &str = "test-admin-key-0123456789";

async fn events(server: &TestServer, stream: i64) -> Vec<Value> {
    client()
        .get(server.url(&format!("/admin_api/v1/streams/{stream}/events")))
        .header("Api-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_for_event(server: &TestServer, stream: i64, event: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = events(server, stream)
            .await
            .into_iter()
            .find(|e| e["event"] == event)
        {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no `{event}` event for stream {stream}: {:?}",
            events(server, stream).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A campaign with a forced stream to `url` and a default stream to https://default.test/.
async fn campaign(server: &TestServer, alias: &str, url: &str) -> i64 {
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new(alias, alias, &format!("tok-{alias}")))
        .await
        .unwrap();
    let mut main = NewStream::redirect(campaign.id, "main", url);
    main.stream_type = StreamType::Forced;
    let main = store.create_stream(&main).await.unwrap();
    let mut fallback = NewStream::redirect(campaign.id, "default", "https://default.test/");
    fallback.stream_type = StreamType::Default;
    store.create_stream(&fallback).await.unwrap();
    main.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_change_streams_and_record_events() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let scripts = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(scripts.path().join("triggers")).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scripts/triggers/status_ok.rhai"
        ),
        scripts.path().join("triggers/status_ok.rhai"),
    )
    .unwrap();
    let extra = format!(
        "[demo]\nseed = false\n\n[admin]\napi_key = \"{ADMIN_KEY}\"\n\n[fetch]\nallow_networks = [\"127.0.0.0/8\"]\ntimeout_ms = 1000\n\n[triggers]\ntick_ms = 100\n\n[scripts]\ndir = \"{}\"\n",
        scripts.path().display()
    );
    let server = TestServer::start(&db, &extra).await.unwrap();
    let sold_out = fixed_http_server(200, "text/html", b"<p>sold out</p>".to_vec()).await;
    let broken = fixed_http_server(503, "text/html", b"down".to_vec()).await;
    let hook = fixed_http_server(204, "text/plain", Vec::new()).await;
    let store = server.store();

    // A page that does not answer: the stream is disabled.
    let dead = campaign(&server, "dead", "http://127.0.0.1:1/offer").await;
    store
        .create_trigger(&NewTrigger {
            stream_id: dead,
            condition: "not_respond".into(),
            action: "disable".into(),
            target: String::new(),
            interval_seconds: 1,
            payload: json!({}),
        })
        .await
        .unwrap();
    // A page without "Buy now": the stream moves to the next alternative URL.
    let rotate = campaign(&server, "rotate", "https://first.test/").await;
    store.create_trigger(&NewTrigger {
        stream_id: rotate,
        condition: "not_contains".into(),
        action: "replace_url".into(),
        target: format!("{sold_out}/landing"),
        interval_seconds: 60,
        payload: json!({ "pattern": "Buy now", "alternative_urls": "https://first.test/\nhttps://second.test/" }),
    })
    .await
    .unwrap();
    // A webhook on every check.
    let hooked = campaign(&server, "hooked", "https://hooked.test/").await;
    store
        .create_trigger(&NewTrigger {
            stream_id: hooked,
            condition: "always".into(),
            action: "webhook".into(),
            target: format!("{sold_out}/"),
            interval_seconds: 60,
            payload: json!({ "webhook_url": format!("{hook}/hook") }),
        })
        .await
        .unwrap();
    // A script decides: 503 is not ok, the script asks to disable.
    let scripted = campaign(&server, "scripted", "https://scripted.test/").await;
    store
        .create_trigger(&NewTrigger {
            stream_id: scripted,
            condition: "script:status_ok".into(),
            action: "webhook".into(),
            target: format!("{broken}/"),
            interval_seconds: 60,
            payload: json!({}),
        })
        .await
        .unwrap();
    // A page that names the current offer URL: the stream takes it over.
    let listing = fixed_http_server(
        200,
        "text/html",
        b"<a class=\"offer\" href=\"https://grabbed.test/offer?x=1\">Go</a>".to_vec(),
    )
    .await;
    let grabbing = campaign(&server, "grabbing", "https://old.test/").await;
    store
        .create_trigger(&NewTrigger {
            stream_id: grabbing,
            condition: "always".into(),
            action: "grab_from_page".into(),
            target: format!("{sold_out}/"),
            interval_seconds: 60,
            payload: json!({ "grab_from_page": format!("{listing}/offers"), "pattern": "class=\"offer\" href=\"(https://[^\"]+)\"" }),
        })
        .await
        .unwrap();
    // The metadata address: blocked by the guard, recorded, the stream untouched.
    let guarded = campaign(&server, "guarded", "https://guarded.test/").await;
    store
        .create_trigger(&NewTrigger {
            stream_id: guarded,
            condition: "not_respond".into(),
            action: "disable".into(),
            target: "http://169.254.169.254/latest/meta-data/".into(),
            interval_seconds: 60,
            payload: json!({}),
        })
        .await
        .unwrap();
    server.reload().await;

    wait_for_event(&server, dead, "disabled").await;
    let check = events(&server, dead)
        .await
        .into_iter()
        .find(|e| e["event"] == "check")
        .unwrap();
    assert_eq!(check["data"]["fired"], true);
    assert_eq!(
        server.location("dead").await,
        "https://default.test/",
        "the disabled stream no longer routes"
    );

    let replaced = wait_for_event(&server, rotate, "url_replaced").await;
    assert_eq!(replaced["data"]["to"], "https://second.test/");
    assert_eq!(server.location("rotate").await, "https://second.test/");

    let sent = wait_for_event(&server, hooked, "webhook_sent").await;
    assert_eq!(sent["data"]["status"], 204);

    wait_for_event(&server, scripted, "disabled").await;
    assert_eq!(server.location("scripted").await, "https://default.test/");

    let grabbed = wait_for_event(&server, grabbing, "url_grabbed").await;
    assert_eq!(grabbed["data"]["to"], "https://grabbed.test/offer?x=1");
    assert_eq!(
        server.location("grabbing").await,
        "https://grabbed.test/offer?x=1"
    );

    let blocked = wait_for_event(&server, guarded, "check_blocked").await;
    assert!(
        blocked["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("169.254.169.254"),
        "{blocked}"
    );
    assert_eq!(
        server.location("guarded").await,
        "https://guarded.test/",
        "a blocked check changes nothing"
    );
    assert!(
        events(&server, guarded)
            .await
            .iter()
            .all(|e| e["event"] != "disabled")
    );
    server.stop().await;
}
