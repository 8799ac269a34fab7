//! Unit tests of the file format: parsing with locations, validation, planning, and the
//! export -> load round trip as a property over generated objects (through a real SQLite store).

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::model::{CampaignType, Money, ObjectState, StreamSchema, StreamType};
use crate::store::FileStore;

fn write_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn problems_of(files: &[(&str, &str)]) -> Vec<String> {
    let dir = write_dir(files);
    match load_dir(dir.path(), &Registry::builtin()) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

const GOOD: &str = r#"
[offers.main]
name = "Main"
url = "https://offer.example/?s={subid}"
payout = "1.50"

[campaigns.c1]
alias = "c1"
name = "First"

[campaigns.c1.streams.second]
name = "declared first"
schema = "landings"
offers = [{ offer = "main", share = 100 }]

[campaigns.c1.streams.first]
name = "declared second"
action = "http"
payload = "https://safe.example/"
filters = [{ name = "country", payload = ["DE"] }]
"#;

#[test]
fn a_valid_file_loads_with_positions_in_declaration_order_and_normal_money() {
    let dir = write_dir(&[("campaigns/c1.toml", GOOD)]);
    let loaded = load_dir(dir.path(), &Registry::builtin()).expect("valid");
    let campaign = &loaded.set.campaigns["c1"];
    assert_eq!(campaign.streams["second"].position, 1);
    assert_eq!(campaign.streams["first"].position, 2);
    assert_eq!(loaded.set.offers["main"].payout, "1.5");
    assert_eq!(
        loaded.file_of(ObjectKind::Campaign, "c1"),
        "campaigns/c1.toml"
    );
    assert_eq!(
        loaded.file_of(ObjectKind::Stream, "c1.first"),
        "campaigns/c1.toml"
    );
    assert_eq!(loaded.set.object_count(), 4);
}

#[test]
fn every_problem_is_reported_with_file_line_and_key_path() {
    let bad = r#"
[offers.main]
name = "Main"
url = "ftp://offer.example/"

[campaigns.c1]
alias = "health"
name = "First"
traffic_source = "nowhere"

[campaigns.c1.streams.s]
filters = [{ name = "no_such_filter" }, { name = "country", mode = "sideways", payload = ["DE"] }]
action = "http"
payload = "https://x.example/"

[campaigns.c2]
alias = "dup"
name = "Second"
cookies_ttl = "many"
"#;
    let other = r#"
[campaigns.c3]
alias = "dup"
name = "Third"

[campaigns.c3.streams.s]
schema = "landings"
offers = [{ offer = "missing" }]
"#;
    let problems = problems_of(&[("a.toml", bad), ("b.toml", other)]);
    let expect = [
        "a.toml:4: offers.main.url: `ftp://offer.example/` is not an http or https URL",
        "a.toml:7: campaigns.c1.alias: `health` is reserved",
        "a.toml:9: campaigns.c1.traffic_source: no traffic_source has the key `nowhere`",
        "a.toml:12: campaigns.c1.streams.s.filters[0].name: filter `no_such_filter` is not known",
        "a.toml:12: campaigns.c1.streams.s.filters[1].mode: `sideways` is not accept or reject",
        "a.toml:19: campaigns.c2.cookies_ttl: invalid type",
        "b.toml:8: campaigns.c3.streams.s.offers[0].offer: no offer has the key `missing`",
    ];
    for expected in expect {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "missing `{expected}` in {problems:#?}"
        );
    }
}

#[test]
fn syntax_errors_unknown_fields_and_duplicate_keys_are_located() {
    let problems = problems_of(&[
        (
            "a.toml",
            "[offers.x]\nname = \"X\"\nurl = \"https://a.example/\"\ncolour = 1\n",
        ),
        (
            "b.toml",
            "[offers.x]\nname = \"X\"\nurl = \"https://a.example/\"\n",
        ),
        ("c.toml", "[offers.y\nname = 1\n"),
        ("d.toml", "[widgets.w]\nname = 1\n"),
    ]);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("a.toml:") && p.contains("unknown field `colour`")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("b.toml:1: offers.x: `x` is also declared in a.toml")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("c.toml:1: not valid TOML")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("d.toml:1: widgets: unknown section")),
        "{problems:#?}"
    );
}

#[test]
fn a_bad_payload_is_refused_by_the_registry() {
    let text = r#"
[campaigns.c]
alias = "c"
name = "C"
[campaigns.c.streams.s]
filters = [{ name = "bot", payload = "yes please" }]
action = "http"
payload = "not a url"
"#;
    let problems = problems_of(&[("c.toml", text)]);
    assert!(
        problems
            .iter()
            .any(|p| p
                .starts_with("c.toml:6: campaigns.c.streams.s.filters[0].payload: filter `bot`")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("c.toml:7: campaigns.c.streams.s.action: action `http`")),
        "{problems:#?}"
    );
}

/// Trigger rules are the Admin API's (one definition in `triggers`): the interval bounds too.
#[test]
fn trigger_intervals_have_the_admin_apis_bounds() {
    let text = r#"
[campaigns.c]
alias = "c"
name = "C"
[campaigns.c.streams.s]
action = "http"
payload = "https://offer.example/"
triggers = [
  { condition = "always", action = "disable", interval_seconds = 5 },
  { condition = "always", action = "disable", interval_seconds = 700000 },
  { condition = "always", action = "disable", interval_seconds = 10 },
  { condition = "sometimes", action = "explode", interval_seconds = 604800 },
]
"#;
    let problems = problems_of(&[("c.toml", text)]);
    let about = |needle: &str| problems.iter().filter(|p| p.contains(needle)).count();
    assert_eq!(
        about("interval must be 10 to 604800 seconds"),
        2,
        "{problems:#?}"
    );
    assert_eq!(about("triggers[0].interval_seconds"), 1, "{problems:#?}");
    assert_eq!(about("triggers[1].interval_seconds"), 1, "{problems:#?}");
    assert_eq!(about("triggers[2]."), 0, "{problems:#?}");
    assert_eq!(about("triggers[3].condition"), 1, "{problems:#?}");
    assert_eq!(about("triggers[3].action"), 1, "{problems:#?}");
}

async fn sqlite_store(dir: &std::path::Path) -> crate::store::SqliteStore {
    let config = crate::config::DatabaseConfig {
        url: format!("sqlite://{}", dir.join("files.db").display()),
        backend: crate::config::Backend::Sqlite,
        max_connections: 2,
    };
    let store = crate::store::SqliteStore::open(&config).await.unwrap();
    crate::store::Store::migrate(&store).await.unwrap();
    store
}

/// Loads `dir` into `store` like the running tracker does; returns the plan's changes.
async fn load_into(store: &dyn crate::store::Store, dir: &std::path::Path) -> Vec<Change> {
    let loaded = load_dir(dir, &Registry::builtin()).expect("valid directory");
    let stored = store.file_objects().await.unwrap();
    let plan = plan_changes(&loaded, &stored);
    store.apply_files(&plan).await.unwrap();
    plan.changes
}

#[tokio::test]
async fn loading_twice_changes_nothing_and_removal_archives() {
    let work = tempfile::tempdir().unwrap();
    let store = sqlite_store(work.path()).await;
    let dir = write_dir(&[("campaigns/c1.toml", GOOD)]);
    assert_eq!(load_into(&store, dir.path()).await.len(), 4);
    assert!(load_into(&store, dir.path()).await.is_empty());
    let campaign_id = store.file_objects().await.unwrap().campaigns[0].id;
    assert_eq!(
        store
            .file_source(ObjectKind::Campaign, campaign_id)
            .await
            .unwrap()
            .as_deref(),
        Some("campaigns/c1.toml")
    );
    std::fs::write(
        dir.path().join("campaigns/c1.toml"),
        GOOD.replace("[campaigns.c1.streams.second]\nname = \"declared first\"\nschema = \"landings\"\noffers = [{ offer = \"main\", share = 100 }]\n", ""),
    )
    .unwrap();
    let changes = load_into(&store, dir.path()).await;
    assert!(
        changes
            .iter()
            .any(|c| c.change == ChangeKind::Archive && c.key == "c1.second"),
        "{changes:?}"
    );
    let live = store.file_objects().await.unwrap().live_set();
    assert_eq!(live.campaigns["c1"].streams.len(), 1);
}

#[tokio::test]
async fn a_load_that_fails_in_the_store_writes_nothing() {
    use crate::model::NewCampaign;
    use crate::store::Store;
    let work = tempfile::tempdir().unwrap();
    let store = sqlite_store(work.path()).await;
    // A campaign made through the Admin API already has the alias the file declares.
    store
        .create_campaign(&NewCampaign::new("c1", "Hand made", "tokenhandmade"))
        .await
        .unwrap();
    let dir = write_dir(&[("campaigns/c1.toml", GOOD)]);
    let loaded = load_dir(dir.path(), &Registry::builtin()).unwrap();
    let plan = plan_changes(&loaded, &store.file_objects().await.unwrap());
    let error = store.apply_files(&plan).await.unwrap_err().to_string();
    assert!(error.contains("alias `c1`"), "{error}");
    let stored = store.file_objects().await.unwrap();
    assert!(
        stored.offers.is_empty(),
        "the offer written before the conflict was rolled back"
    );
    assert_eq!(stored.campaigns.len(), 1);
    assert_eq!(stored.campaigns[0].file, None);
}

// --- export -> load round trip over generated objects ---------------------------------------

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9éß][a-zA-Z0-9 _.,'\"#éß-]{0,15}"
}

fn money() -> impl Strategy<Value = String> {
    (0i64..5_000_000_000).prop_map(|micros| Money::from_micros(micros).to_string())
}

fn state() -> impl Strategy<Value = ObjectState> {
    prop_oneof![Just(ObjectState::Active), Just(ObjectState::Disabled)]
}

fn filter() -> impl Strategy<Value = FilterDecl> {
    prop_oneof![
        Just(("bot", None)),
        Just(("country", Some(json!(["DE", "GB"])))),
        Just(("ip", Some(json!(["10.0.0.0/8", "192.168.1.1"])))),
        Just(("user_agent", Some(json!(["*Firefox*"])))),
        Just(("language", Some(json!(["en", "de"])))),
    ]
    .prop_flat_map(|(name, payload)| {
        prop_oneof![Just("accept"), Just("reject")].prop_map(move |mode| FilterDecl {
            name: name.into(),
            mode: mode.into(),
            payload: payload.clone(),
        })
    })
}

fn trigger() -> impl Strategy<Value = TriggerDecl> {
    (
        prop_oneof![Just("not_respond"), Just("always")],
        prop_oneof![Just("disable"), Just("webhook")],
        10i64..10_000,
        any::<bool>(),
    )
        .prop_map(|(condition, action, interval, enabled)| TriggerDecl {
            condition: condition.into(),
            action: action.into(),
            target: "https://check.example/page".into(),
            interval_seconds: interval,
            payload: json!({"webhook_url": "https://hooks.example/x"}),
            enabled,
        })
}

/// Offers and landings by index (`o0`, `l0`); streams refer to them by those keys.
fn declared_set() -> impl Strategy<Value = DeclaredSet> {
    (1usize..4, 1usize..3, 0usize..3, 1usize..4).prop_flat_map(
        |(offers, landings, networks, campaigns)| {
            let network = (text(), state()).prop_map(|(name, state)| NetworkDecl {
                name,
                postback_url: "https://net.example/pb?c={subid}".into(),
                offer_param: "s={subid}".into(),
                state,
                notes: String::new(),
            });
            let offer = (
                text(),
                money(),
                0..=networks,
                prop_oneof![Just("UTC"), Just("Europe/Berlin")],
                state(),
                0i64..1000,
            )
                .prop_map(move |(name, payout, net, tz, state, cap)| OfferDecl {
                    name,
                    url: "https://offer.example/?s={subid}".into(),
                    affiliate_network: if net < networks {
                        format!("n{net}")
                    } else {
                        String::new()
                    },
                    payout,
                    payout_currency: "USD".into(),
                    payout_type: "CPA".into(),
                    country: vec!["DE".into()],
                    daily_cap: cap,
                    conversion_timezone: tz.into(),
                    action: "http".into(),
                    payload: None,
                    state,
                    notes: "n".into(),
                });
            let landing = (text(), 0i64..3).prop_map(|(name, count)| LandingDecl {
                name,
                url: "https://lp.example/?next={offer}".into(),
                offer_count: count,
                ..LandingDecl::default()
            });
            let stream = (
                text(),
                prop_oneof![
                    Just(StreamType::Forced),
                    Just(StreamType::Regular),
                    Just(StreamType::Default)
                ],
                1i64..20,
                0i64..200,
                any::<bool>(),
                proptest::collection::vec(filter(), 0..3),
                proptest::collection::vec(trigger(), 0..2),
                (0..offers, 0..landings, 1i64..100),
                state(),
            )
                .prop_map(
                    |(
                        name,
                        stream_type,
                        position,
                        weight,
                        landings_schema,
                        filters,
                        triggers,
                        (o, l, share),
                        state,
                    )| StreamDecl {
                        name,
                        stream_type,
                        position,
                        weight,
                        schema: if landings_schema {
                            StreamSchema::Landings
                        } else {
                            StreamSchema::Redirect
                        },
                        action: "http".into(),
                        payload: (!landings_schema).then(|| json!("https://safe.example/{subid}")),
                        filter_or: weight % 2 == 0,
                        collect_clicks: weight % 3 != 0,
                        state,
                        comments: String::new(),
                        filters,
                        landings: if landings_schema {
                            vec![LandingShare {
                                landing: format!("l{l}"),
                                share,
                            }]
                        } else {
                            Vec::new()
                        },
                        offers: if landings_schema {
                            vec![OfferShare {
                                offer: format!("o{o}"),
                                share: 100 - share + 1,
                            }]
                        } else {
                            Vec::new()
                        },
                        triggers,
                    },
                );
            let campaign = (
                text(),
                prop_oneof![Just(CampaignType::Position), Just(CampaignType::Weight)],
                "[a-zA-Z0-9]{16,32}",
                0i64..100,
                prop_oneof![Just(""), Just("s"), Just("sl"), Just("slo")],
                money(),
                proptest::collection::btree_map("[a-z][a-z0-9_]{0,8}", stream, 0..4),
                state(),
            )
                .prop_map(
                    |(name, campaign_type, token, ttl, bind, cost, streams, state)| CampaignDecl {
                        alias: String::new(),
                        name,
                        campaign_type,
                        token,
                        cookies_ttl: ttl,
                        bind_visitors: bind.into(),
                        parameters: json!({"keyword": {"name": "kw"}}),
                        cost_value: cost,
                        state,
                        streams,
                        ..CampaignDecl::default()
                    },
                );
            (
                proptest::collection::vec(network, networks),
                proptest::collection::vec(offer, offers),
                proptest::collection::vec(landing, landings),
                proptest::collection::vec(campaign, campaigns),
            )
                .prop_map(|(networks, offers, landings, campaigns)| {
                    fn keyed<T>(prefix: &str, items: Vec<T>) -> BTreeMap<String, T> {
                        items
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (format!("{prefix}{i}"), v))
                            .collect()
                    }
                    let mut set = DeclaredSet {
                        affiliate_networks: keyed("n", networks),
                        offers: keyed("o", offers),
                        landings: keyed("l", landings),
                        campaigns: keyed("c", campaigns),
                        ..Default::default()
                    };
                    for (key, campaign) in &mut set.campaigns {
                        campaign.alias = format!("alias-{key}");
                        // Tokens are unique per campaign.
                        campaign.token = format!("{}{key}", campaign.token);
                    }
                    set.traffic_sources.insert(
                        "ts".into(),
                        SourceDecl {
                            name: "Source".into(),
                            parameters: json!({"sub_id_1": {"name": "s1"}}),
                            ..SourceDecl::default()
                        },
                    );
                    set
                })
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Generated objects written as files, loaded into a fresh store, exported and parsed
    /// again are the objects generated.
    #[test]
    fn export_then_load_gives_back_the_same_objects(set in declared_set()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let exported = runtime.block_on(async {
            let work = tempfile::tempdir().unwrap();
            let store = sqlite_store(work.path()).await;
            let dir = tempfile::tempdir().unwrap();
            export_files(dir.path(), &set).unwrap();
            load_into(&store, dir.path()).await;
            let again = tempfile::tempdir().unwrap();
            export_files(again.path(), &store.file_objects().await.unwrap().live_set()).unwrap();
            // A second load of the export is a no-op: the store already holds exactly it.
            prop_assert!(load_into(&store, again.path()).await.is_empty());
            let loaded = load_dir(again.path(), &Registry::builtin()).unwrap();
            crate::store::Store::close(&store).await;
            Ok(loaded.set)
        })?;
        prop_assert_eq!(exported, set);
    }
}
