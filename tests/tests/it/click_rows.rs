//! The click insert writes exactly the click's values: every column of a fully filled click
//! reads back as written, an empty click's texts are '' (not NULL), batches of every size
//! (split into the insert's fixed statement sizes) store every row once, and a batch mixing
//! statement widths stores every sub id and extra param in its column.

use switchyard::model::{Click, EXTRA_PARAM_COUNT, NewCampaign, SUB_ID_COUNT};
use switchyard_tests::{Backend, TestDb};

/// (column, value) of every text column a click sets, filled with distinct values.
fn filled_click(campaign_id: i64, sub_id: &str) -> (Click, Vec<(String, String)>) {
    let mut click = Click::blank();
    click.sub_id = sub_id.into();
    click.campaign_id = campaign_id;
    click.created_at = 1_700_000_123;
    click.latitude = Some(51.5);
    click.longitude = Some(-0.25);
    click.is_unique_campaign = true;
    click.is_bot = true;
    click.cost = "1.5".parse().unwrap();
    let mut texts = Vec::new();
    let mut set = |column: &str, field: &mut String| {
        *field = format!("{column}-value é");
        texts.push((column.to_string(), field.clone()));
    };
    set("visitor_code", &mut click.visitor_code);
    set("ip", &mut click.ip);
    set("user_agent", &mut click.user_agent);
    set("referrer", &mut click.referrer);
    set("language", &mut click.language);
    set("country_code", &mut click.country_code);
    set("region", &mut click.region);
    set("city", &mut click.city);
    set("isp", &mut click.isp);
    set("operator", &mut click.operator);
    set("connection_type", &mut click.connection_type);
    set("device_type", &mut click.device_type);
    set("device_model", &mut click.device_model);
    set("device_brand", &mut click.device_brand);
    set("os", &mut click.os);
    set("os_version", &mut click.os_version);
    set("browser", &mut click.browser);
    set("browser_version", &mut click.browser_version);
    set("source", &mut click.source);
    set("keyword", &mut click.keyword);
    set("search_engine", &mut click.search_engine);
    set("x_requested_with", &mut click.x_requested_with);
    set("ad_campaign_id", &mut click.ad_campaign_id);
    set("external_id", &mut click.external_id);
    set("creative_id", &mut click.creative_id);
    set("destination", &mut click.destination);
    set("country_name", &mut click.country_name);
    set("region_code", &mut click.region_code);
    set("request_url", &mut click.request_url);
    set("utm_source", &mut click.utm_source);
    set("utm_medium", &mut click.utm_medium);
    set("utm_campaign", &mut click.utm_campaign);
    set("utm_term", &mut click.utm_term);
    set("utm_content", &mut click.utm_content);
    set("params", &mut click.params);
    for i in 0..SUB_ID_COUNT {
        set(&format!("sub_id_{}", i + 1), &mut click.sub_ids[i]);
    }
    for i in 0..EXTRA_PARAM_COUNT {
        set(
            &format!("extra_param_{}", i + 1),
            &mut click.extra_params[i],
        );
    }
    (click, texts)
}

async fn click_rows_round_trip(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let config = db.config("[demo]\nseed = false\n").unwrap();
    let store = switchyard::store::open(&config.database).await.unwrap();
    store.migrate().await.unwrap();
    let campaign = store
        .create_campaign(&NewCampaign::new("rows", "Rows", "rows-token"))
        .await
        .unwrap();

    let (filled, texts) = filled_click(campaign.id, "filled");
    let mut empty = Click::blank();
    empty.sub_id = "empty".into();
    empty.campaign_id = campaign.id;
    empty.params = String::new();
    assert_eq!(store.insert_clicks(&[filled, empty]).await.unwrap(), 2);

    let mut columns: Vec<&str> = texts.iter().map(|(c, _)| c.as_str()).collect();
    let numbers = [
        "campaign_id",
        "created_at",
        "cost_micros",
        "is_unique_campaign",
        "is_unique_stream",
        "is_bot",
        "stream_id",
    ];
    columns.extend(numbers);
    let select = |sub_id: &str| {
        format!(
            "SELECT {} FROM clicks WHERE sub_id = '{sub_id}'",
            columns.join(", ")
        )
    };
    let row = &db.rows(&select("filled"), &columns).await.unwrap()[0];
    for (column, value) in &texts {
        assert_eq!(&row[column], value, "column {column}");
    }
    assert_eq!(row["campaign_id"], campaign.id.to_string());
    assert_eq!(row["created_at"], "1700000123");
    assert_eq!(row["cost_micros"], "1500000");
    assert_eq!(row["is_unique_campaign"], "1");
    assert_eq!(row["is_unique_stream"], "0");
    assert_eq!(row["is_bot"], "1");
    assert_eq!(row["stream_id"], "NULL");
    let position = db
        .rows(
            "SELECT CAST(latitude * 100 AS BIGINT) AS lat, CAST(longitude * 100 AS BIGINT) AS lon FROM clicks WHERE sub_id = 'filled'",
            &["lat", "lon"],
        )
        .await
        .unwrap();
    assert_eq!(position[0]["lat"], "5150");
    assert_eq!(position[0]["lon"], "-25");

    let row = &db.rows(&select("empty"), &columns).await.unwrap()[0];
    for (column, _) in &texts {
        assert_eq!(row[column], "", "an empty {column} is stored as ''");
    }

    // Batches of every size up to a few statements' worth, each row stored once.
    let mut next = 0;
    for size in [1usize, 3, 4, 5, 17, 63, 64, 65, 200, 257] {
        let batch: Vec<Click> = (0..size)
            .map(|i| {
                let mut click = Click::blank();
                click.sub_id = format!("batch{:05}", next + i);
                click.campaign_id = campaign.id;
                click.sub_ids[0] = format!("{}", next + i);
                click
            })
            .collect();
        next += size;
        assert_eq!(
            store.insert_clicks(&batch).await.unwrap(),
            size as u64,
            "a batch of {size}"
        );
        assert_eq!(store.insert_clicks(&batch).await.unwrap(), 0, "again");
    }
    // One batch mixing every statement width (clicks with no sub id, the 1st, 5th, 6th, 10th,
    // 11th or 30th, with and without an extra param): every value reads back in its column.
    let positions = [None, Some(0), Some(4), Some(5), Some(9), Some(10), Some(29)];
    let mixed: Vec<Click> = (0..70usize)
        .map(|i| {
            let mut click = Click::blank();
            click.sub_id = format!("mixed{i:03}");
            click.campaign_id = campaign.id;
            if let Some(p) = positions[i % positions.len()] {
                click.sub_ids[p] = format!("s{i}");
            }
            if i % 3 == 0 {
                click.extra_params[EXTRA_PARAM_COUNT - 1] = format!("e{i}");
            }
            click
        })
        .collect();
    assert_eq!(store.insert_clicks(&mixed).await.unwrap(), 70);
    let names: Vec<String> = (1..=SUB_ID_COUNT)
        .map(|n| format!("sub_id_{n}"))
        .chain((1..=EXTRA_PARAM_COUNT).map(|n| format!("extra_param_{n}")))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for click in &mixed {
        let sql = format!(
            "SELECT {} FROM clicks WHERE sub_id = '{}'",
            names.join(", "),
            click.sub_id
        );
        let row = &db.rows(&sql, &names).await.unwrap()[0];
        for (n, value) in click.sub_ids.iter().enumerate() {
            assert_eq!(
                &row[&format!("sub_id_{}", n + 1)],
                value,
                "{}",
                click.sub_id
            );
        }
        for (n, value) in click.extra_params.iter().enumerate() {
            assert_eq!(
                &row[&format!("extra_param_{}", n + 1)],
                value,
                "{}",
                click.sub_id
            );
        }
    }

    store.close().await;
    assert_eq!(
        db.count("SELECT COUNT(DISTINCT sub_id_1) AS n FROM clicks WHERE sub_id LIKE 'batch%'")
            .await
            .unwrap(),
        next as i64
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM clicks WHERE sub_id LIKE 'batch%'")
            .await
            .unwrap(),
        next as i64
    );
}

#[tokio::test]
async fn sqlite_click_rows_round_trip() {
    click_rows_round_trip(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_click_rows_round_trip() {
    click_rows_round_trip(Backend::Postgres).await;
}
