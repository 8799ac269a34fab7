use super::*;

#[test]
fn one_reserved_alias_list_for_files_and_the_admin_api() {
    let base = reserved_aliases(None);
    for alias in [
        "admin_api",
        "click_api",
        "api.php",
        "health",
        "backend",
        "api",
        "postback",
        "clicks",
        "favicon.ico",
        "robots.txt",
        "metrics",
    ] {
        assert!(base.contains(&alias.to_string()), "{alias}");
    }
    assert!(!base.contains(&"partner".to_string()));
    assert!(reserved_aliases(Some("/Partner/v2")).contains(&"partner".to_string()));
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn shipped_config_is_valid() {
    let text = include_str!("../../../config.toml");
    let config = from_sources("config.toml", text, &[], None).unwrap();
    assert_eq!(config.database.backend, Backend::Sqlite);
    assert!(config.demo.seed);
}

#[test]
fn empty_file_gives_defaults() {
    let config = defaults();
    assert_eq!(config.server.listen.port(), 8080);
    assert_eq!(config.recorder.batch_size, 1000);
    assert!(config.secrets.admin_api_key.is_none());
}

#[test]
fn every_problem_is_listed_with_its_place() {
    let text = "[server]\nlisten = \"nowhere\"\nfoo = 1\nrequest_timeout_ms = \"soon\"\n\n[database]\nurl = \"mysql://x\"\n\n[bogus]\n";
    let error = from_sources("c.toml", text, &[], None).unwrap_err();
    let shown = error.to_string();
    for expected in [
        "c.toml:3 server.foo",
        "unknown field `foo`",
        "c.toml:4 server.request_timeout_ms",
        "c.toml:7 database.url",
        "c.toml:9 bogus",
    ] {
        assert!(
            shown.contains(expected),
            "missing {expected:?} in:\n{shown}"
        );
    }
    // `listen` is only checked semantically once the section deserialises, so a section
    // with type errors reports those; fix them and the listen problem shows.
    let error = from_sources("c.toml", "[server]\nlisten = \"nowhere\"\n", &[], None).unwrap_err();
    assert!(error.to_string().contains("c.toml:2 server.listen"));
}

#[test]
fn syntax_errors_name_the_line() {
    let error = from_sources("c.toml", "[server]\nlisten = \n", &[], None).unwrap_err();
    assert!(
        error.problems[0].location.starts_with("c.toml:2"),
        "{error}"
    );
}

#[test]
fn env_overrides_with_types() {
    let config = from_sources(
        "c.toml",
        "[server]\nlisten = \"127.0.0.1:1\"\n",
        &env(&[
            ("SWITCHYARD_SERVER_LISTEN", "127.0.0.1:9999"),
            ("SWITCHYARD_RECORDER_BATCH_SIZE", "50"),
            ("SWITCHYARD_DEMO_SEED", "false"),
            ("SWITCHYARD_ADMIN_API_KEY", "0123456789abcdef0123"),
            ("SWITCHYARD_DATABASE_URL", "postgres://u@127.0.0.1/db"),
            ("SWITCHYARD_CONFIG", "ignored.toml"),
            ("OTHER_VAR", "ignored"),
        ]),
        None,
    )
    .unwrap();
    assert_eq!(config.server.listen.port(), 9999);
    assert_eq!(config.recorder.batch_size, 50);
    assert!(!config.demo.seed);
    assert_eq!(
        config.secrets.admin_api_key.as_deref(),
        Some("0123456789abcdef0123")
    );
    assert_eq!(config.database.backend, Backend::Postgres);
}

#[test]
fn durability_levels() {
    let defaults = from_sources("c.toml", "", &[], None).unwrap();
    assert_eq!(defaults.recorder.durability, Durability::Process);
    assert_eq!(defaults.recorder.journal_max_bytes, 1024 << 20);
    assert_eq!(defaults.recorder.drain_timeout, Duration::from_secs(8));
    for (text, level) in [("fsync", Durability::Fsync), ("memory", Durability::Memory)] {
        let config = from_sources(
            "c.toml",
            &format!("[recorder]\ndurability = \"{text}\"\n"),
            &[],
            None,
        )
        .unwrap();
        assert_eq!(config.recorder.durability, level);
    }
    let shown = from_sources(
        "c.toml",
        "[recorder]\ndurability = \"disk\"\njournal_max_mb = 0\n",
        &[],
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(shown.contains("c.toml:2 recorder.durability"), "{shown}");
    assert!(
        shown.contains("`disk` is not one of process, fsync, memory"),
        "{shown}"
    );
    assert!(shown.contains("recorder.journal_max_mb"), "{shown}");
}

#[test]
fn env_problems_name_the_variable() {
    let error = from_sources(
        "c.toml",
        "",
        &env(&[
            ("SWITCHYARD_RECORDER_BATCH_SIZE", "lots"),
            ("SWITCHYARD_NOPE_X", "1"),
            ("SWITCHYARD_SERVER_LISTEN", "bad"),
        ]),
        None,
    )
    .unwrap_err();
    let shown = error.to_string();
    assert!(
        shown.contains("env SWITCHYARD_RECORDER_BATCH_SIZE (recorder.batch_size)"),
        "{shown}"
    );
    assert!(shown.contains("env SWITCHYARD_NOPE_X"), "{shown}");
    assert!(
        shown.contains("env SWITCHYARD_SERVER_LISTEN (server.listen)"),
        "{shown}"
    );
}

#[test]
fn weak_secrets_and_bad_urls_are_refused() {
    let text = "[admin]\napi_key = \"short\"\n[demo]\nurl = \"javascript:alert(1)\"\n[recorder]\nbatch_size = 0\n";
    let shown = from_sources("c.toml", text, &[], None)
        .unwrap_err()
        .to_string();
    assert!(shown.contains("c.toml:2 admin.api_key"), "{shown}");
    assert!(shown.contains("c.toml:4 demo.url"), "{shown}");
    assert!(shown.contains("c.toml:6 recorder.batch_size"), "{shown}");
}

#[test]
fn dialects_are_switchable_with_checked_keys_and_base_path() {
    let config = defaults();
    assert!(config.dialects.open_api && config.dialects.hoqu && config.dialects.rest_clicks);
    assert_eq!(config.dialects.rest_clicks_base_path, "/rest/v1");
    assert_eq!(
        config
            .secrets
            .dialect_keys
            .iter()
            .map(|(d, key)| (*d, key.is_some()))
            .collect::<Vec<_>>(),
        [
            (Dialect::OpenApi, false),
            (Dialect::Hoqu, false),
            (Dialect::RestClicks, false)
        ]
    );

    let text = "[dialects]\nhoqu_enabled = false\nrest_clicks_base_path = \"/partners/api/\"\nrest_clicks_campaign = \" partner \"\n";
    let config = from_sources(
        "c.toml",
        text,
        &env(&[(
            "SWITCHYARD_DIALECTS_OPEN_API_TOKEN",
            "open-api-token-0123456789",
        )]),
        None,
    )
    .unwrap();
    assert!(!config.dialects.hoqu);
    assert_eq!(config.dialects.rest_clicks_base_path, "/partners/api");
    assert_eq!(
        config.dialects.rest_clicks_campaign.as_deref(),
        Some("partner")
    );
    assert_eq!(
        config.secrets.dialect_keys[0],
        (Dialect::OpenApi, Some("open-api-token-0123456789".into()))
    );
    assert!(
        !config
            .secrets
            .dialect_keys
            .iter()
            .any(|(d, _)| *d == Dialect::Hoqu),
        "a disabled dialect has no key"
    );
    assert_eq!(
        from_sources(
            "c.toml",
            "[dialects]\nrest_clicks_base_path = \"/\"\n",
            &[],
            None
        )
        .unwrap()
        .dialects
        .rest_clicks_base_path,
        ""
    );

    let text =
        "[dialects]\nopen_api_token = \"short\"\nrest_clicks_base_path = \"/admin_api/v1\"\n";
    let shown = from_sources("c.toml", text, &[], None)
        .unwrap_err()
        .to_string();
    assert!(
        shown.contains("c.toml:2 dialects.open_api_token"),
        "{shown}"
    );
    assert!(
        shown.contains("c.toml:3 dialects.rest_clicks_base_path"),
        "{shown}"
    );
    for bad in [
        "rest",
        "/a//b",
        "/a/../b",
        "/{alias}",
        "/api/click",
        "/health/x",
    ] {
        let text = format!("[dialects]\nrest_clicks_base_path = \"{bad}\"\n");
        assert!(
            from_sources("c.toml", &text, &[], None).is_err(),
            "{bad} should be refused"
        );
    }
}

#[test]
fn relative_sqlite_paths_follow_the_config_file() {
    let config = from_sources("c.toml", "", &[], Some(Path::new("/etc/sy"))).unwrap();
    assert_eq!(config.database.url, "sqlite:///etc/sy/data/switchyard.db");
    assert_eq!(config.server.data_dir, Path::new("/etc/sy/data"));
}
