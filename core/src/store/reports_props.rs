//! Property tests of the report SQL and the conversion rules, on a real SQLite file:
//! the SQL text never depends on the values; adding a filter never increases a count; the sum
//! over groups equals the ungrouped total; any sequence of postbacks converges to the model's
//! conversions and revenue.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::config::{Backend, DatabaseConfig};
use crate::conversions::ConversionModel;
use crate::model::{Click, Money};
use crate::report::{Sums, parse_report_query};
use crate::store::{
    ClickEdits, ClickWriter, ConversionStatus, ConversionStore, DialectClickStore, NewConversion,
    PostbackClick, ReportStore, SqliteStore, Store,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn store(dir: &tempfile::TempDir) -> SqliteStore {
    let config = DatabaseConfig {
        url: format!("sqlite://{}", dir.path().join("props.db").display()),
        backend: Backend::Sqlite,
        max_connections: 2,
    };
    let store = SqliteStore::open(&config).await.expect("open");
    store.migrate().await.expect("migrate");
    store
}

const COUNTRIES: [&str; 4] = ["GB", "DE", "US", ""];
const KEYWORDS: [&str; 4] = ["shoes", "Boots", "a%b", ""];

fn clicks(spec: &[(u8, u8, u8, bool, u32)]) -> Vec<Click> {
    spec.iter()
        .enumerate()
        .map(|(i, (campaign, country, keyword, bot, seconds))| {
            let mut click = Click::blank();
            click.sub_id = format!("p{i}");
            click.campaign_id = i64::from(*campaign % 3) + 1;
            click.country_code = COUNTRIES[usize::from(*country % 4)].to_string();
            click.keyword = KEYWORDS[usize::from(*keyword % 4)].to_string();
            click.is_bot = *bot;
            click.created_at = 1_790_000_000 + i64::from(*seconds % 400_000);
            click.cost = Money::from_micros(i64::from(*seconds % 1_000));
            click
        })
        .collect()
}

fn filter_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0usize..4).prop_map(|c| json!({"name": "country_code", "operator": "EQUALS", "expression": COUNTRIES[c]})),
        (0usize..4).prop_map(|k| json!({"name": "keyword", "operator": "CONTAINS", "expression": KEYWORDS[k]})),
        (0usize..4).prop_map(|k| json!({"name": "keyword", "operator": "MATCH_REGEXP", "expression": format!("/^{}/i", regex::escape(KEYWORDS[k]))})),
        (1i64..4).prop_map(|c| json!({"name": "campaign_id", "operator": "NOT_EQUAL", "expression": c})),
        Just(json!({"name": "is_bot", "operator": "IS_FALSE"})),
        (0i64..1_000).prop_map(|m| json!({"name": "cost", "operator": "LESS_THAN", "expression": format!("0.000{m:03}")})),
    ]
}

fn total_clicks(rows: &[(Vec<crate::report::Cell>, Sums)]) -> i64 {
    rows.iter().map(|(_, s)| s.clicks).sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// The statement's text is a function of the field names and operators only.
    #[test]
    fn sql_text_never_depends_on_values(
        a in "[a-zA-Z0-9%_' ]{0,12}",
        b in "[a-zA-Z0-9%_' ]{0,12}",
        n in 0i64..1_000_000,
        m in 0i64..1_000_000,
    ) {
        let request = |text: &str, number: i64| json!({
            "range": {"from": "2026-01-01", "to": "2026-01-31", "timezone": "Europe/Berlin"},
            "grouping": ["country", "day"],
            "metrics": ["clicks", "cr"],
            "filters": [
                {"name": "keyword", "operator": "CONTAINS", "expression": text},
                {"name": "campaign_id", "operator": "IN_LIST", "expression": [number, number + 1]},
                {"name": "referrer", "operator": "MATCH_REGEXP", "expression": format!("x{}", regex::escape(text))},
            ]
        });
        let q1 = parse_report_query(&request(&a, n), 1_795_264_000).unwrap();
        let q2 = parse_report_query(&request(&b, m), 1_795_264_000).unwrap();
        let (c1, v1) = super::SqliteStore::report_statements(&q1.sql);
        let (c2, v2) = super::SqliteStore::report_statements(&q2.sql);
        let text = |b: &sqlx::QueryBuilder<sqlx::Sqlite>| b.sql().as_str().to_string();
        prop_assert_eq!(text(&c1), text(&c2));
        prop_assert_eq!(text(&v1), text(&v2));
        let quoted = format!("'{}'", a);
        prop_assert!(a.is_empty() || !text(&c1).contains(&quoted));
    }

    /// Adding a filter never increases the count, and the groups add up to the total.
    #[test]
    fn filters_narrow_and_groups_add_up(
        spec in proptest::collection::vec((0u8..3, 0u8..4, 0u8..4, any::<bool>(), 0u32..400_000), 1..40),
        first in filter_strategy(),
        second in filter_strategy(),
        grouping in proptest::sample::subsequence(vec!["campaign_id", "country_code", "keyword", "is_bot", "day", "hour", "week"], 0..4),
    ) {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = store(&dir).await;
            store.insert_clicks(&clicks(&spec)).await.unwrap();
            let run = |body: Value| {
                let store = &store;
                async move {
                    let q = parse_report_query(&body, 1_795_264_000).unwrap();
                    store.report_rows(&q.sql).await.unwrap()
                }
            };
            let none = total_clicks(&run(json!({"metrics": ["clicks"]})).await);
            prop_assert_eq!(none, spec.len() as i64);
            let one = total_clicks(&run(json!({"filters": [first.clone()]})).await);
            let two = total_clicks(&run(json!({"filters": [first.clone(), second.clone()]})).await);
            prop_assert!(one <= none, "{} > {}", one, none);
            prop_assert!(two <= one, "{} > {}", two, one);
            let body = json!({"grouping": grouping, "metrics": ["clicks", "cost"], "filters": [first], "summary": true, "limit": 100000, "range": {"interval": "all_time", "timezone": "America/Sao_Paulo"}});
            let q = parse_report_query(&body, 1_795_264_000).unwrap();
            let answer = q.answer(store.report_rows(&q.sql).await.unwrap(), &Default::default());
            let grouped: i64 = answer["rows"].as_array().unwrap().iter().map(|r| r["clicks"].as_i64().unwrap()).sum();
            prop_assert_eq!(grouped, one);
            prop_assert_eq!(answer["summary"]["clicks"].as_i64().unwrap(), one);
            store.pool.close().await;
            Ok(())
        })?;
    }

    /// Whatever order and repetition postbacks come in, the store ends where the model does.
    #[test]
    fn postbacks_converge_to_the_model(
        sequence in proptest::collection::vec((0usize..3, 0usize..4, proptest::option::of(0i64..50)), 1..30),
    ) {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = store(&dir).await;
            let mut click = Click::blank();
            click.sub_id = "conv".into();
            click.campaign_id = 1;
            click.created_at = 1_790_000_000;
            store.insert_clicks(&[click]).await.unwrap();
            let target = PostbackClick {
                click_id: 1,
                sub_id: "conv".into(),
                campaign_id: 1,
                stream_id: None,
                landing_id: None,
                offer_id: None,
                ts_id: None,
                created_at: 1_790_000_000,
                affiliate_network_id: None,
                payout: Money::ZERO,
                payout_currency: String::new(),
                upsell: true,
            };
            let mut model = ConversionModel::default();
            for (key, status, payout) in &sequence {
                let key = ["", "t1", "t2"][*key];
                let status = ConversionStatus::ALL[*status];
                let payout = payout.map(|p| p * 1_000_000);
                model.apply(key, status, payout);
                store.record_conversion(&NewConversion {
                    click: target.clone(),
                    tid: key.into(),
                    status,
                    original_status: status.as_str().into(),
                    revenue: payout.map(Money::from_micros),
                    default_revenue: Money::ZERO,
                    cost: Money::ZERO,
                    currency: "USD".into(),
                    sub_id_updates: Vec::new(),
                    params: "{}".into(),
                    at: 1_790_000_100,
                }, &|_| Vec::new()).await.unwrap();
            }
            let q = parse_report_query(&json!({"metrics": ["conversions", "revenue"]}), 1_795_264_000).unwrap();
            let rows = store.report_rows(&q.sql).await.unwrap();
            let mut sums = Sums::default();
            for (_, s) in &rows {
                sums.add(s);
            }
            prop_assert_eq!(sums.conversions, model.conversions.len() as i64);
            prop_assert_eq!(sums.revenue(), model.revenue());
            let per_status = |s: ConversionStatus| model.conversions.values().filter(|(x, _)| *x == s).count() as i64;
            prop_assert_eq!(sums.leads, per_status(ConversionStatus::Lead));
            prop_assert_eq!(sums.sales, per_status(ConversionStatus::Sale));
            prop_assert_eq!(sums.rejected, per_status(ConversionStatus::Rejected));
            prop_assert_eq!(sums.rebills, per_status(ConversionStatus::Rebill));
            store.pool.close().await;
            Ok(())
        })?;
    }
}

/// One write a rollup must follow.
#[derive(Debug, Clone)]
enum Write {
    /// Clicks `first..first+count` of the spec (again, when they were inserted before).
    Insert {
        first: usize,
        count: usize,
    },
    Conversion {
        click: usize,
        tid: usize,
        status: usize,
        payout: i64,
    },
    LandingClick {
        click: usize,
        offer: i64,
        after: i64,
    },
    Costs {
        campaign: i64,
        from: i64,
        hours: i64,
        total: i64,
        uniques: bool,
    },
    Clean {
        campaign: Option<i64>,
        from: i64,
        hours: i64,
    },
    Delete {
        click: usize,
    },
}

fn write_strategy() -> impl Strategy<Value = Write> {
    prop_oneof![
        3 => (0usize..40, 1usize..20).prop_map(|(first, count)| Write::Insert { first, count }),
        3 => (0usize..40, 0usize..2, 0usize..4, 0i64..9).prop_map(|(click, tid, status, payout)| Write::Conversion { click, tid, status, payout }),
        2 => (0usize..40, 1i64..4, 0i64..5_000).prop_map(|(click, offer, after)| Write::LandingClick { click, offer, after }),
        1 => (1i64..4, 0i64..30, 1i64..30, 0i64..10_000_000, any::<bool>()).prop_map(|(campaign, from, hours, total, uniques)| Write::Costs { campaign, from, hours, total, uniques }),
        1 => (proptest::option::of(1i64..4), 0i64..30, 1i64..6).prop_map(|(campaign, from, hours)| Write::Clean { campaign, from, hours }),
        1 => (0usize..40).prop_map(|click| Write::Delete { click }),
    ]
}

/// Clicks over 30 hours with every rollup dimension varied (NULL ids and empty texts too).
fn varied_clicks(spec: &[(u8, u8, u8, bool, u32)]) -> Vec<Click> {
    spec.iter()
        .enumerate()
        .map(|(i, (a, b, c, flag, seconds))| {
            let mut click = Click::blank();
            click.sub_id = format!("r{i}");
            click.campaign_id = i64::from(*a % 3) + 1;
            click.parent_campaign_id = (*b % 3 == 0).then_some(9);
            click.stream_id = (*b % 4 != 0).then(|| i64::from(*b % 4) + 10);
            click.landing_id = (*c % 2 == 0).then_some(20);
            click.ts_id = (*c % 3 != 0).then(|| i64::from(*c % 3) + 30);
            click.country_code = COUNTRIES[usize::from(*c % 4)].to_string();
            click.country_name = format!("Name {}", click.country_code);
            click.is_bot = *flag;
            click.is_unique_campaign = *a % 2 == 0;
            click.is_unique_stream = *b % 2 == 0;
            click.is_unique_global = !*flag;
            click.is_using_proxy = *c % 5 == 0;
            click.referrer = if *a % 3 == 0 {
                String::new()
            } else {
                "https://r.test/".into()
            };
            click.created_at = 1_790_000_000 + i64::from(*seconds % (30 * 3_600));
            click.cost = Money::from_micros(i64::from(*seconds % 7) * 1_000);
            click
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// After any sequence of writes, every report a rollup answers equals the same report
    /// computed from the clicks and conversions.
    #[test]
    fn rollups_follow_every_write(
        spec in proptest::collection::vec((0u8..6, 0u8..8, 0u8..6, any::<bool>(), 0u32..200_000), 40),
        writes in proptest::collection::vec(write_strategy(), 1..25),
        edges in (0i64..3_600, 0i64..3_600),
    ) {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = store(&dir).await;
            let all = varied_clicks(&spec);
            let start = 1_790_000_000 / 3_600 * 3_600;
            for write in &writes {
                match write {
                    Write::Insert { first, count } => {
                        let end = (first + count).min(all.len());
                        store.insert_clicks(&all[*first..end]).await.unwrap();
                    }
                    Write::Conversion { click, tid, status, payout } => {
                        let Some(target) = store.postback_click(&all[*click].sub_id).await.unwrap() else { continue };
                        store.record_conversion(&NewConversion {
                            click: target,
                            tid: ["", "t"][*tid].into(),
                            status: ConversionStatus::ALL[*status],
                            original_status: String::new(),
                            revenue: Some(Money::from_micros(payout * 1_000_000)),
                            default_revenue: Money::ZERO,
                            cost: Money::ZERO,
                            currency: "USD".into(),
                            sub_id_updates: vec![(1, "x".into())],
                            params: "{}".into(),
                            at: 1_790_200_000,
                        }, &|_| Vec::new()).await.unwrap();
                    }
                    Write::LandingClick { click, offer, after } => {
                        store.mark_landing_clicks(&[crate::store::LandingClick {
                            sub_id: all[*click].sub_id.clone(),
                            offer_id: *offer,
                            at: all[*click].created_at + after,
                            destination: "https://o.test/".into(),
                        }]).await.unwrap();
                    }
                    Write::Costs { campaign, from, hours, total, uniques } => {
                        let from = start + from * 3_600 + 17;
                        store.spread_costs(&[crate::store::CostSpread {
                            campaign_ids: vec![*campaign],
                            from,
                            to: from + hours * 3_600,
                            total: Money::from_micros(*total),
                            only_uniques: *uniques,
                            conditions: Vec::new(),
                        }]).await.unwrap();
                    }
                    Write::Clean { campaign, from, hours } => {
                        let from = start + from * 3_600 + 600;
                        store.clean_clicks(from, from + hours * 3_600, *campaign).await.unwrap();
                    }
                    Write::Delete { click } => {
                        store.delete_click(&all[*click].sub_id).await.unwrap();
                    }
                }
            }
            let from = format!("{}", chrono::DateTime::from_timestamp(start + edges.0, 0).unwrap().format("%Y-%m-%d %H:%M:%S"));
            let to = format!("{}", chrono::DateTime::from_timestamp(start + 20 * 3_600 + edges.1, 0).unwrap().format("%Y-%m-%d %H:%M:%S"));
            let every: Vec<&str> = crate::report::METRICS.iter().map(|m| m.name).collect();
            let requests = [
                json!({"grouping": ["campaign_id", "parent_campaign_id", "stream_id", "landing_id", "offer_id", "ts_id", "day_hour"]}),
                json!({"grouping": ["campaign", "country_code", "country", "day"], "range": {"interval": "all_time", "timezone": "Europe/Berlin"}}),
                json!({"grouping": ["ts_id", "hour"], "range": {"from": from, "to": to, "timezone": "UTC"}}),
                json!({"grouping": ["offer_id"], "filters": [{"name": "landing_id", "operator": "IS_NOT_SET"}], "range": {"from": from, "to": to, "timezone": "UTC"}}),
                json!({"grouping": ["country"], "filters": [{"name": "country_code", "operator": "IN_LIST", "expression": ["GB", ""]}]}),
                json!({"grouping": [], "filters": [{"name": "campaign_id", "operator": "NOT_EQUAL", "expression": 2}]}),
            ];
            for mut request in requests {
                request["metrics"] = json!(every);
                if request.get("range").is_none() {
                    request["range"] = json!({"interval": "all_time", "timezone": "UTC"});
                }
                let q = parse_report_query(&request, 1_795_264_000).unwrap();
                prop_assert!(super::rollups::plan(&q.sql).is_some(), "{}", request);
                let names = Default::default();
                let rolled = q.groups(store.report_rows(&q.sql).await.unwrap(), &names);
                let counted = q.groups(store.report_rows_from_clicks(&q.sql).await.unwrap(), &names);
                prop_assert_eq!(rolled, counted, "{}", request);
            }
            store.pool.close().await;
            Ok(())
        })?;
    }
}
