//! The click pipeline over HTTP: filters with real GeoIP and UA data, landings -> offers,
//! actions that fetch, visitor cookies.

use serde_json::json;
use switchyard::model::{NewCampaign, NewStream, NewTarget, StreamSchema, StreamType};
use switchyard_tests::{
    Backend, TestDb, TestServer, client, fixed_http_server, subid_of, test_data,
};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// A config with the MaxMind test City database and 127.0.0.1 as a trusted proxy, so tests set
/// the visitor's IP with X-Forwarded-For.
fn geo_config() -> String {
    format!(
        "[geoip]\ncity_db = \"{}\"\n\n[fetch]\nallow_networks = [\"127.0.0.0/8\"]\n",
        test_data("geoip/GeoIP2-City-Test.mmdb").display()
    )
}

async fn server_with_trusted_proxy(db: &TestDb, extra: &str) -> TestServer {
    let text = format!("{}\n{extra}", geo_config());
    let config = db.config_behind_proxy(&text).unwrap();
    TestServer::from_config(config).await.unwrap()
}

async fn get(server: &TestServer, path: &str, ip: &str, ua: &str) -> reqwest::Response {
    client()
        .get(server.url(path))
        .header("x-forwarded-for", ip)
        .header("user-agent", ua)
        .send()
        .await
        .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn filters_route_by_geo_device_and_bot(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = server_with_trusted_proxy(&db, "").await;
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new("geo", "Geo split", "tok-geo"))
        .await
        .unwrap();
    let bots = NewStream::new(
        campaign.id,
        StreamType::Forced,
        StreamSchema::Action,
        "status404",
    )
    .filter("bot", "accept", json!(null));
    store.create_stream(&bots).await.unwrap();
    let mut gb_mobile = NewStream::redirect(
        campaign.id,
        "gb mobile",
        "https://gb.test/?c={country}&city={city}&d={device_type}&s={subid}",
    )
    .filter("country", "accept", json!(["GB"]))
    .filter("device_type", "accept", json!("mobile"));
    gb_mobile.position = 1;
    store.create_stream(&gb_mobile).await.unwrap();
    let mut not_us = NewStream::redirect(campaign.id, "not US", "https://world.test/?c={country}")
        .filter("country", "reject", json!("US"));
    not_us.position = 2;
    store.create_stream(&not_us).await.unwrap();
    let mut fallback =
        NewStream::redirect(campaign.id, "default", "https://default.test/?c={country}");
    fallback.stream_type = StreamType::Default;
    store.create_stream(&fallback).await.unwrap();
    server.reload().await;

    let gb = get(&server, "/geo", "81.2.69.160", IPHONE).await;
    assert_eq!(gb.status(), 302);
    let url = location(&gb);
    assert!(
        url.starts_with("https://gb.test/?c=GB&city=London&d=mobile&s="),
        "{url}"
    );
    let gb_desktop = location(&get(&server, "/geo", "81.2.69.160", DESKTOP).await);
    assert_eq!(
        gb_desktop, "https://world.test/?c=GB",
        "country passes, device does not"
    );
    let us = location(&get(&server, "/geo", "216.160.83.56", DESKTOP).await);
    assert_eq!(
        us, "https://default.test/?c=US",
        "rejected by `country` reject mode, falls to default"
    );
    let bot = get(&server, "/geo", "81.2.69.160", GOOGLEBOT).await;
    assert_eq!(bot.status(), 404, "the forced bot stream wins");
    let sub_id = subid_of(&url.replace("&s=", "&subid=")).unwrap();
    server.stop().await;

    let rows = db
        .rows(
            &format!("SELECT country_code, city, region, device_type, os, browser, is_bot, is_unique_campaign FROM clicks WHERE sub_id = '{sub_id}'"),
            &["country_code", "city", "region", "device_type", "os", "browser", "is_bot", "is_unique_campaign"],
        )
        .await
        .unwrap();
    let click = &rows[0];
    assert_eq!(click["country_code"], "GB");
    assert_eq!(click["city"], "London");
    assert_eq!(click["region"], "England");
    assert_eq!(click["device_type"], "mobile");
    assert_eq!(click["os"], "iOS");
    assert_eq!(click["browser"], "Mobile Safari");
    assert_eq!(click["is_bot"], "0");
    assert_eq!(click["is_unique_campaign"], "1");
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM clicks WHERE is_bot = TRUE")
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn sqlite_filters_route_by_geo_device_and_bot() {
    filters_route_by_geo_device_and_bot(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_filters_route_by_geo_device_and_bot() {
    filters_route_by_geo_device_and_bot(Backend::Postgres).await;
}

async fn landing_to_offer(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = server_with_trusted_proxy(&db, "").await;
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new("lp", "Landing test", "tok-lp"))
        .await
        .unwrap();
    let mut landing = NewTarget::external("Prelander", "");
    landing.action_type = "show_html".into();
    landing.action_payload =
        json!("<html><body><a id=\"go\" href=\"{offer}\">Continue</a> {keyword}</body></html>");
    let landing = store.create_landing(&landing).await.unwrap();
    let offer = store
        .create_offer(&NewTarget::external(
            "Offer",
            "https://offer.test/buy?s={subid}&k={keyword}&lp={landing_id}",
        ))
        .await
        .unwrap();
    let mut stream = NewStream::new(campaign.id, StreamType::Regular, StreamSchema::Landings, "");
    stream.landings = vec![(landing.id, 100)];
    stream.offers = vec![(offer.id, 100)];
    store.create_stream(&stream).await.unwrap();
    server.reload().await;

    let page = get(&server, "/lp?keyword=shoes", "81.2.69.160", DESKTOP).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let start = html.find("href=\"").unwrap() + 6;
    let link = &html[start..start + html[start..].find('"').unwrap()];
    // Macro values are HTML-escaped in pages: `&` in the link is `&amp;`.
    let link = link.replace("&amp;", "&");
    assert!(link.contains("/?_lp=1&_token="), "{html}");
    assert!(link.starts_with("http://127.0.0.1:"), "{link}");

    let to_offer = client()
        .get(&link)
        .header("user-agent", DESKTOP)
        .send()
        .await
        .unwrap();
    assert_eq!(to_offer.status(), 302);
    let target = location(&to_offer);
    assert!(target.starts_with("https://offer.test/buy?s="), "{target}");
    assert!(
        target.ends_with(&format!("&k=shoes&lp={}", landing.id)),
        "{target}"
    );
    let sub_id = subid_of(&target.replace("?s=", "?subid=")).unwrap();

    let forged = client()
        .get(link.replace("_token=", "_token=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 404, "a tampered token is refused");
    server.stop().await;

    let rows = db
        .rows(
            &format!("SELECT landing_id, offer_id, landing_clicked, landing_clicked_at, keyword FROM clicks WHERE sub_id = '{sub_id}'"),
            &["landing_id", "offer_id", "landing_clicked", "landing_clicked_at", "keyword"],
        )
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        1,
        "the landing click and the offer click are one click"
    );
    assert_eq!(rows[0]["landing_id"], landing.id.to_string());
    assert_eq!(rows[0]["offer_id"], offer.id.to_string());
    assert_eq!(rows[0]["landing_clicked"], "1");
    assert_ne!(rows[0]["landing_clicked_at"], "NULL");
    assert_eq!(rows[0]["keyword"], "shoes");
}

#[tokio::test]
async fn sqlite_landing_to_offer() {
    landing_to_offer(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_landing_to_offer() {
    landing_to_offer(Backend::Postgres).await;
}

#[tokio::test]
async fn visitor_cookie_makes_the_second_click_non_unique_and_binds_the_stream() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = server_with_trusted_proxy(&db, "").await;
    let store = server.store();
    let mut new = NewCampaign::new("split", "Split", "tok-split");
    new.campaign_type = switchyard::model::CampaignType::Weight;
    new.bind_visitors = Some("s".into());
    let campaign = store.create_campaign(&new).await.unwrap();
    for (name, weight) in [("a", 50), ("b", 50)] {
        let mut stream = NewStream::redirect(campaign.id, name, &format!("https://{name}.test/"));
        stream.weight = weight;
        store.create_stream(&stream).await.unwrap();
    }
    server.reload().await;
    let http = client();
    let first = http
        .get(server.url("/split"))
        .header("user-agent", DESKTOP)
        .header("x-forwarded-for", "203.0.113.5")
        .send()
        .await
        .unwrap();
    let cookie = first.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("_sy_v="), "{cookie}");
    let target = location(&first);
    // Unique per IP+UA record too, so change the IP: only the cookie can tell.
    for i in 0..5 {
        let again = http
            .get(server.url("/split"))
            .header("user-agent", DESKTOP)
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            location(&again),
            target,
            "bind_visitors = s returns the visitor to the same stream"
        );
    }
    server.stop().await;
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM clicks WHERE is_unique_campaign = TRUE")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM clicks").await.unwrap(),
        6
    );
}

#[tokio::test]
async fn curl_and_remote_actions_fetch_through_the_guard() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let page = fixed_http_server(
        200,
        "text/html; charset=utf-8",
        b"<p>fetched page</p>".to_vec(),
    )
    .await;
    let pointer =
        fixed_http_server(200, "text/plain", b"https://final.test/landing\n".to_vec()).await;
    let server = server_with_trusted_proxy(&db, "").await;
    let store = server.store();
    for (alias, action, url) in [
        ("curl", "curl", page.as_str()),
        ("remote", "remote", pointer.as_str()),
        ("meta", "169.254.169.254", ""),
    ] {
        let campaign = store
            .create_campaign(&NewCampaign::new(alias, alias, &format!("tok-{alias}")))
            .await
            .unwrap();
        let (action, url) = if alias == "meta" {
            ("curl", "http://169.254.169.254/latest/meta-data/")
        } else {
            (action, url)
        };
        let mut stream = NewStream::new(
            campaign.id,
            StreamType::Regular,
            StreamSchema::Redirect,
            action,
        );
        stream.action_payload = json!(url);
        store.create_stream(&stream).await.unwrap();
    }
    server.reload().await;
    let curl = get(&server, "/curl", "81.2.69.160", DESKTOP).await;
    assert_eq!(curl.status(), 200);
    assert_eq!(curl.text().await.unwrap(), "<p>fetched page</p>");
    let remote = get(&server, "/remote", "81.2.69.160", DESKTOP).await;
    assert_eq!(location(&remote), "https://final.test/landing");
    let metadata = get(&server, "/meta", "81.2.69.160", DESKTOP).await;
    assert_eq!(
        metadata.status(),
        200,
        "a blocked fetch answers empty, never a 5xx"
    );
    assert_eq!(metadata.text().await.unwrap(), "");
    server.stop().await;
}

/// The campaign links are outside the router's timeout layer (a click sets no timer); the
/// IO of a `curl` reply is still bounded by `server.request_timeout`.
#[tokio::test]
async fn a_slow_fetch_on_a_campaign_link_ends_at_the_request_timeout() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    // Accepts connections and never answers (the fetcher's own limit is 5 s).
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            sockets.push(socket);
        }
    });
    let mut config = db.config_behind_proxy(&geo_config()).unwrap();
    config.server.request_timeout = std::time::Duration::from_millis(400);
    let server = TestServer::from_config(config).await.unwrap();
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new("slow", "Slow", "tok-slow"))
        .await
        .unwrap();
    let mut stream = NewStream::new(
        campaign.id,
        StreamType::Regular,
        StreamSchema::Redirect,
        "curl",
    );
    stream.action_payload = json!(format!("http://{silent_addr}/page"));
    store.create_stream(&stream).await.unwrap();
    server.reload().await;
    let started = std::time::Instant::now();
    let response = get(&server, "/slow", "81.2.69.160", DESKTOP).await;
    assert_eq!(response.status(), 503);
    let waited = started.elapsed();
    assert!(
        waited < std::time::Duration::from_secs(3),
        "answered after {waited:?}, not at the 400 ms request timeout"
    );
    // A redirect on the same server is unaffected.
    let fast = store
        .create_campaign(&NewCampaign::new("fast", "Fast", "tok-fast"))
        .await
        .unwrap();
    store
        .create_stream(&NewStream::redirect(fast.id, "go", "https://fast.test/"))
        .await
        .unwrap();
    server.reload().await;
    let response = get(&server, "/fast", "81.2.69.160", DESKTOP).await;
    assert_eq!(location(&response), "https://fast.test/");
    held.abort();
    server.stop().await;
}

/// Without a journal (`durability = "memory"`), a full click queue makes a click wait for room
/// (up to `recorder.full_wait_ms`) instead of dropping it; with no wait allowed, the same burst
/// drops clicks (and counts them).
#[tokio::test]
async fn a_full_click_queue_waits_for_room_instead_of_dropping() {
    use sqlx::Connection;
    for (wait_ms, expect_drops) in [(10_000, false), (0, true)] {
        let db = TestDb::new(Backend::Sqlite).await.unwrap();
        let server = server_with_trusted_proxy(
            &db,
            &format!("[recorder]\ndurability = \"memory\"\nqueue_capacity = 2\nbatch_size = 1\nfull_wait_ms = {wait_ms}\n"),
        )
        .await;
        let store = server.store();
        let campaign = store
            .create_campaign(&NewCampaign::new("queue", "Queue", "tok-queue"))
            .await
            .unwrap();
        store
            .create_stream(&NewStream::redirect(
                campaign.id,
                "go",
                "https://queue.test/",
            ))
            .await
            .unwrap();
        server.reload().await;
        // Another connection holds SQLite's write lock: the writer stalls and the queue fills.
        let mut holder = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut holder)
            .await
            .unwrap();
        let mut requests = Vec::new();
        for _ in 0..12 {
            let url = server.url("/queue");
            requests.push(tokio::spawn(async move {
                client()
                    .get(url)
                    .header("x-forwarded-for", "81.2.69.160")
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
        for request in requests {
            assert_eq!(request.await.unwrap().unwrap(), 302);
        }
        let recorder = server.server.state.recorder.clone();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while recorder.stats().backlog > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                recorder.stats()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let stats = recorder.stats();
        server.stop().await;
        if expect_drops {
            assert!(stats.dropped > 0, "{stats:?}");
        } else {
            assert_eq!(stats.dropped, 0, "{stats:?}");
            assert_eq!(stats.queued, 12, "{stats:?}");
            assert_eq!(
                db.count("SELECT COUNT(*) AS n FROM clicks").await.unwrap(),
                12
            );
        }
    }
}

#[tokio::test]
async fn campaign_action_hands_the_click_over_with_a_parent() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = server_with_trusted_proxy(&db, "").await;
    let store = server.store();
    let first = store
        .create_campaign(&NewCampaign::new("first", "First", "tok-first"))
        .await
        .unwrap();
    let second = store
        .create_campaign(&NewCampaign::new("second", "Second", "tok-second"))
        .await
        .unwrap();
    let mut hand_over = NewStream::new(
        first.id,
        StreamType::Regular,
        StreamSchema::Action,
        "campaign",
    );
    hand_over.action_payload = json!(second.id);
    store.create_stream(&hand_over).await.unwrap();
    store
        .create_stream(&NewStream::redirect(
            second.id,
            "final",
            "https://second.test/?p={parent_campaign_id}&c={campaign_id}",
        ))
        .await
        .unwrap();
    // A loop: loop-a -> loop-b -> loop-a … ends with an empty answer, not a hang.
    let loop_a = store
        .create_campaign(&NewCampaign::new("loop-a", "A", "tok-la"))
        .await
        .unwrap();
    let loop_b = store
        .create_campaign(&NewCampaign::new("loop-b", "B", "tok-lb"))
        .await
        .unwrap();
    for (from, to) in [(loop_a.id, loop_b.id), (loop_b.id, loop_a.id)] {
        let mut stream =
            NewStream::new(from, StreamType::Regular, StreamSchema::Action, "campaign");
        stream.action_payload = json!(to);
        store.create_stream(&stream).await.unwrap();
    }
    server.reload().await;
    let response = get(&server, "/first", "81.2.69.160", DESKTOP).await;
    assert_eq!(
        location(&response),
        format!("https://second.test/?p={}&c={}", first.id, second.id)
    );
    let looping = get(&server, "/loop-a", "81.2.69.160", DESKTOP).await;
    assert_eq!(looping.status(), 200);
    server.stop().await;
    let parents = db
        .rows(
            &format!(
                "SELECT parent_campaign_id FROM clicks WHERE campaign_id = {}",
                second.id
            ),
            &["parent_campaign_id"],
        )
        .await
        .unwrap();
    assert_eq!(parents.len(), 1);
    assert_eq!(parents[0]["parent_campaign_id"], first.id.to_string());
}

#[tokio::test]
async fn stream_limits_survive_a_restart() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = server_with_trusted_proxy(&db, "").await;
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new("capped", "Capped", "tok-capped"))
        .await
        .unwrap();
    let mut capped = NewStream::redirect(campaign.id, "capped", "https://capped.test/").filter(
        "limit",
        "accept",
        json!({"total": 3}),
    );
    capped.stream_type = StreamType::Forced;
    store.create_stream(&capped).await.unwrap();
    let mut fallback = NewStream::redirect(campaign.id, "default", "https://default.test/");
    fallback.stream_type = StreamType::Default;
    store.create_stream(&fallback).await.unwrap();
    server.reload().await;
    for _ in 0..2 {
        assert_eq!(
            location(&get(&server, "/capped", "81.2.69.160", DESKTOP).await),
            "https://capped.test/"
        );
    }
    server.stop().await;

    // After a restart the stream has one click left, not three.
    let server = server_with_trusted_proxy(&db, "").await;
    assert_eq!(
        location(&get(&server, "/capped", "81.2.69.160", DESKTOP).await),
        "https://capped.test/"
    );
    assert_eq!(
        location(&get(&server, "/capped", "81.2.69.160", DESKTOP).await),
        "https://default.test/"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_stored_bot_list_marks_bots_and_local_files_are_served() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = server_with_trusted_proxy(&db, "").await;
    let store = server.store();
    store
        .add_to_bot_list(&["198.51.100.0/24".to_string(), "203.0.113.77".to_string()])
        .await
        .unwrap();
    let campaign = store
        .create_campaign(&NewCampaign::new("local", "Local", "tok-local"))
        .await
        .unwrap();
    let bots = NewStream::new(
        campaign.id,
        StreamType::Forced,
        StreamSchema::Action,
        "status404",
    )
    .filter("bot", "accept", json!(null));
    store.create_stream(&bots).await.unwrap();
    let mut landing = NewTarget::external("Uploaded", "");
    landing.action_type = "local_file".into();
    landing.action_payload = json!("index.html");
    let landing = store.create_landing(&landing).await.unwrap();
    let mut stream = NewStream::new(campaign.id, StreamType::Regular, StreamSchema::Landings, "");
    stream.landings = vec![(landing.id, 100)];
    store.create_stream(&stream).await.unwrap();
    server.stop().await;
    // The uploaded landing's files live under the data directory (the Admin API's upload
    // stores them there).
    let dir = db
        .dir
        .path()
        .join("data/uploads/landings")
        .join(landing.id.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>uploaded landing</h1>").unwrap();

    // The bot list is read at start.
    let server = server_with_trusted_proxy(&db, "").await;
    assert_eq!(
        get(&server, "/local", "198.51.100.20", DESKTOP)
            .await
            .status(),
        404,
        "a listed network is a bot"
    );
    assert_eq!(
        get(&server, "/local", "203.0.113.77", DESKTOP)
            .await
            .status(),
        404
    );
    let page = get(&server, "/local", "203.0.113.78", DESKTOP).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(page.text().await.unwrap(), "<h1>uploaded landing</h1>");
    server.stop().await;
}

#[tokio::test]
async fn route_command_prints_the_decision_and_records_nothing() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = TestServer::start(&db, &geo_config()).await.unwrap();
    server.stop().await;
    let config = db.write_config(&geo_config()).unwrap();
    let output = std::process::Command::new(crate::binary())
        .args(["route", "--config"])
        .arg(&config)
        .args([
            "--campaign",
            "demo",
            "--ip",
            "81.2.69.160",
            "--ua",
            DESKTOP,
            "--param",
            "keyword=blue",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "Processing campaign 1",
        "Keyword: blue",
        "Checking stream #1",
        "Accepted by filters",
        "Decision: 302 redirect to https://example.com/?subid=",
        "country \"GB\" region \"England\" city \"London\" device \"desktop\" os \"Windows\"",
        "Nothing was recorded.",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM clicks").await.unwrap(),
        0
    );
    let unknown = std::process::Command::new(crate::binary())
        .args(["route", "--config"])
        .arg(&config)
        .args(["--campaign", "nope"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("no active campaign has the alias or token `nope`")
    );
}

async fn traffic_source_name_macro(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let server = server_with_trusted_proxy(&db, "").await;
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new("ts", "TS", "tok-ts"))
        .await
        .unwrap();
    store
        .create_stream(&NewStream::redirect(
            campaign.id,
            "s",
            "https://offer.test/?ts={traffic_source_name}&id={ts_id}",
        ))
        .await
        .unwrap();
    db.execute(
        "INSERT INTO traffic_sources (name, created_at, updated_at) VALUES ('Facebook Ads', 0, 0)",
    )
    .await
    .unwrap();
    db.execute(&format!("UPDATE campaigns SET traffic_source_id = (SELECT MAX(id) FROM traffic_sources) WHERE id = {}", campaign.id)).await.unwrap();
    server.reload().await;
    let target = location(&get(&server, "/ts", "81.2.69.160", DESKTOP).await);
    assert!(
        target.starts_with("https://offer.test/?ts=Facebook%20Ads&id="),
        "{target}"
    );
    assert!(
        !target.ends_with("id="),
        "the click carries the traffic source id: {target}"
    );
    server.stop().await;
}

#[tokio::test]
async fn sqlite_traffic_source_name_macro() {
    traffic_source_name_macro(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_traffic_source_name_macro() {
    traffic_source_name_macro(Backend::Postgres).await;
}

/// `{from_file:NAME}` takes a random line of `<data_dir>/macro_files/NAME.txt`; a changed file
/// is picked up without a restart.
#[tokio::test]
async fn from_file_macro_reads_a_line_list() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let files = db.dir.path().join("data").join("macro_files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("hosts.txt"), "one.example\ntwo.example\n").unwrap();
    let server = server_with_trusted_proxy(&db, "").await;
    let store = server.store();
    let campaign = store
        .create_campaign(&NewCampaign::new("ff", "From file", "tok-ff"))
        .await
        .unwrap();
    store
        .create_stream(&NewStream::redirect(
            campaign.id,
            "s",
            "https://{from_file:hosts}/x?m={from_file:missing}",
        ))
        .await
        .unwrap();
    server.reload().await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..30 {
        let target = location(&get(&server, "/ff", "81.2.69.160", DESKTOP).await);
        assert!(
            target == "https://one.example/x?m=" || target == "https://two.example/x?m=",
            "{target}"
        );
        seen.insert(target);
    }
    assert_eq!(seen.len(), 2, "both lines are picked");
    std::fs::write(files.join("hosts.txt"), "three.example\n").unwrap();
    server.server.state.traffic.macro_files.reload_if_changed();
    let target = location(&get(&server, "/ff", "81.2.69.160", DESKTOP).await);
    assert_eq!(target, "https://three.example/x?m=");
    server.stop().await;
}
