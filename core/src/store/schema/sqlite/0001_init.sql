-- Switchyard schema, version 1 (sqlite).
-- Conventions: timestamps are seconds since the Unix epoch (INTEGER); money is an exact
-- fixed-point amount stored as micro-units (INTEGER columns named *_micros); JSON is stored as TEXT;
-- text never NULL where reports group by it (empty string = unknown).

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    position INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE domains (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    default_campaign_id INTEGER,
    wildcard INTEGER NOT NULL DEFAULT 0,
    catch_not_found INTEGER NOT NULL DEFAULT 0,
    ssl_redirect INTEGER NOT NULL DEFAULT 0,
    allow_indexing INTEGER NOT NULL DEFAULT 1,
    group_id INTEGER,
    state TEXT NOT NULL DEFAULT 'active',
    notes TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE traffic_sources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    postback_url TEXT NOT NULL DEFAULT '',
    postback_statuses TEXT NOT NULL DEFAULT '[]',
    parameters TEXT NOT NULL DEFAULT '{}',
    template_name TEXT NOT NULL DEFAULT '',
    traffic_loss REAL NOT NULL DEFAULT 0,
    update_in_campaigns TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'active',
    notes TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE affiliate_networks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    postback_url TEXT NOT NULL DEFAULT '',
    offer_param TEXT NOT NULL DEFAULT '',
    template_name TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'active',
    notes TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alias TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    type TEXT NOT NULL DEFAULT 'position',
    cookies_ttl INTEGER NOT NULL DEFAULT 24,
    position INTEGER NOT NULL DEFAULT 0,
    cost_type TEXT NOT NULL DEFAULT 'CPC',
    cost_value_micros INTEGER NOT NULL DEFAULT 0,
    cost_currency TEXT NOT NULL DEFAULT '',
    cost_auto INTEGER NOT NULL DEFAULT 0,
    group_id INTEGER REFERENCES groups (id) ON DELETE SET NULL,
    bind_visitors TEXT,
    traffic_source_id INTEGER REFERENCES traffic_sources (id) ON DELETE SET NULL,
    token TEXT NOT NULL UNIQUE,
    domain_id INTEGER REFERENCES domains (id) ON DELETE SET NULL,
    parameters TEXT NOT NULL DEFAULT '{}',
    uniqueness_method TEXT NOT NULL DEFAULT 'ip_ua',
    uniqueness_use_cookies INTEGER NOT NULL DEFAULT 1,
    traffic_loss REAL NOT NULL DEFAULT 0,
    postbacks TEXT NOT NULL DEFAULT '[]',
    file_source TEXT,
    state TEXT NOT NULL DEFAULT 'active',
    notes TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE landings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    landing_type TEXT NOT NULL DEFAULT 'external',
    url TEXT NOT NULL DEFAULT '',
    action_type TEXT NOT NULL DEFAULT '',
    action_payload TEXT NOT NULL DEFAULT 'null',
    action_options TEXT NOT NULL DEFAULT '{}',
    offer_count INTEGER NOT NULL DEFAULT 1,
    group_id INTEGER REFERENCES groups (id) ON DELETE SET NULL,
    file_source TEXT,
    state TEXT NOT NULL DEFAULT 'active',
    notes TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE offers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    offer_type TEXT NOT NULL DEFAULT 'external',
    url TEXT NOT NULL DEFAULT '',
    action_type TEXT NOT NULL DEFAULT 'http',
    action_payload TEXT NOT NULL DEFAULT 'null',
    action_options TEXT NOT NULL DEFAULT '{}',
    group_id INTEGER REFERENCES groups (id) ON DELETE SET NULL,
    affiliate_network_id INTEGER REFERENCES affiliate_networks (id) ON DELETE SET NULL,
    payout_value_micros INTEGER NOT NULL DEFAULT 0,
    payout_currency TEXT NOT NULL DEFAULT '',
    payout_type TEXT NOT NULL DEFAULT 'CPA',
    payout_auto INTEGER NOT NULL DEFAULT 0,
    payout_upsell INTEGER NOT NULL DEFAULT 0,
    country TEXT NOT NULL DEFAULT '[]',
    daily_cap INTEGER NOT NULL DEFAULT 0,
    conversion_timezone TEXT NOT NULL DEFAULT 'UTC',
    alternative_offer_id INTEGER REFERENCES offers (id) ON DELETE SET NULL,
    file_source TEXT,
    state TEXT NOT NULL DEFAULT 'active',
    notes TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE streams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    type TEXT NOT NULL DEFAULT 'regular',
    name TEXT NOT NULL DEFAULT '',
    position INTEGER NOT NULL DEFAULT 0,
    weight INTEGER NOT NULL DEFAULT 100,
    schema TEXT NOT NULL DEFAULT 'redirect',
    action_type TEXT NOT NULL DEFAULT 'http',
    action_payload TEXT NOT NULL DEFAULT 'null',
    action_options TEXT NOT NULL DEFAULT '{}',
    collect_clicks INTEGER NOT NULL DEFAULT 1,
    filter_or INTEGER NOT NULL DEFAULT 0,
    comments TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'active',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX streams_campaign ON streams (campaign_id, position);

CREATE TABLE stream_filters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id INTEGER NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    position INTEGER NOT NULL DEFAULT 0,
    name TEXT NOT NULL,
    mode TEXT NOT NULL DEFAULT 'accept',
    payload TEXT NOT NULL DEFAULT 'null'
);
CREATE INDEX stream_filters_stream ON stream_filters (stream_id, position);

CREATE TABLE stream_triggers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id INTEGER NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    position INTEGER NOT NULL DEFAULT 0,
    condition TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    interval_seconds INTEGER NOT NULL DEFAULT 300,
    payload TEXT NOT NULL DEFAULT '{}',
    enabled INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE stream_landings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id INTEGER NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    landing_id INTEGER NOT NULL REFERENCES landings (id) ON DELETE CASCADE,
    share INTEGER NOT NULL DEFAULT 100,
    state TEXT NOT NULL DEFAULT 'active',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE stream_offers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id INTEGER NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    offer_id INTEGER NOT NULL REFERENCES offers (id) ON DELETE CASCADE,
    share INTEGER NOT NULL DEFAULT 100,
    state TEXT NOT NULL DEFAULT 'active',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE stream_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id INTEGER NOT NULL,
    event TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);
CREATE INDEX stream_events_stream ON stream_events (stream_id, created_at);

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    login TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL DEFAULT 'USER',
    access TEXT NOT NULL DEFAULT '{}',
    preferences TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'active',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- API keys are stored as SHA-256 hashes; the key itself is shown once, when created.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL DEFAULT '',
    scope TEXT NOT NULL DEFAULT 'admin',
    key_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);

CREATE TABLE bot_list (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    value TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id INTEGER NOT NULL,
    ref_name TEXT NOT NULL,
    ref_value TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (campaign_id, ref_name, ref_value)
);

CREATE TABLE clicks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sub_id TEXT NOT NULL UNIQUE,
    visitor_code TEXT NOT NULL DEFAULT '',
    campaign_id INTEGER NOT NULL,
    parent_campaign_id INTEGER,
    stream_id INTEGER,
    landing_id INTEGER,
    offer_id INTEGER,
    ts_id INTEGER,
    created_at INTEGER NOT NULL,
    ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    referrer TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    country_code TEXT NOT NULL DEFAULT '',
    region TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '',
    isp TEXT NOT NULL DEFAULT '',
    operator TEXT NOT NULL DEFAULT '',
    connection_type TEXT NOT NULL DEFAULT '',
    device_type TEXT NOT NULL DEFAULT '',
    device_model TEXT NOT NULL DEFAULT '',
    device_brand TEXT NOT NULL DEFAULT '',
    os TEXT NOT NULL DEFAULT '',
    os_version TEXT NOT NULL DEFAULT '',
    browser TEXT NOT NULL DEFAULT '',
    browser_version TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    keyword TEXT NOT NULL DEFAULT '',
    search_engine TEXT NOT NULL DEFAULT '',
    x_requested_with TEXT NOT NULL DEFAULT '',
    ad_campaign_id TEXT NOT NULL DEFAULT '',
    external_id TEXT NOT NULL DEFAULT '',
    creative_id TEXT NOT NULL DEFAULT '',
    destination TEXT NOT NULL DEFAULT '',
    sub_id_1 TEXT NOT NULL DEFAULT '',
    sub_id_2 TEXT NOT NULL DEFAULT '',
    sub_id_3 TEXT NOT NULL DEFAULT '',
    sub_id_4 TEXT NOT NULL DEFAULT '',
    sub_id_5 TEXT NOT NULL DEFAULT '',
    sub_id_6 TEXT NOT NULL DEFAULT '',
    sub_id_7 TEXT NOT NULL DEFAULT '',
    sub_id_8 TEXT NOT NULL DEFAULT '',
    sub_id_9 TEXT NOT NULL DEFAULT '',
    sub_id_10 TEXT NOT NULL DEFAULT '',
    sub_id_11 TEXT NOT NULL DEFAULT '',
    sub_id_12 TEXT NOT NULL DEFAULT '',
    sub_id_13 TEXT NOT NULL DEFAULT '',
    sub_id_14 TEXT NOT NULL DEFAULT '',
    sub_id_15 TEXT NOT NULL DEFAULT '',
    sub_id_16 TEXT NOT NULL DEFAULT '',
    sub_id_17 TEXT NOT NULL DEFAULT '',
    sub_id_18 TEXT NOT NULL DEFAULT '',
    sub_id_19 TEXT NOT NULL DEFAULT '',
    sub_id_20 TEXT NOT NULL DEFAULT '',
    sub_id_21 TEXT NOT NULL DEFAULT '',
    sub_id_22 TEXT NOT NULL DEFAULT '',
    sub_id_23 TEXT NOT NULL DEFAULT '',
    sub_id_24 TEXT NOT NULL DEFAULT '',
    sub_id_25 TEXT NOT NULL DEFAULT '',
    sub_id_26 TEXT NOT NULL DEFAULT '',
    sub_id_27 TEXT NOT NULL DEFAULT '',
    sub_id_28 TEXT NOT NULL DEFAULT '',
    sub_id_29 TEXT NOT NULL DEFAULT '',
    sub_id_30 TEXT NOT NULL DEFAULT '',
    extra_param_1 TEXT NOT NULL DEFAULT '',
    extra_param_2 TEXT NOT NULL DEFAULT '',
    extra_param_3 TEXT NOT NULL DEFAULT '',
    extra_param_4 TEXT NOT NULL DEFAULT '',
    extra_param_5 TEXT NOT NULL DEFAULT '',
    extra_param_6 TEXT NOT NULL DEFAULT '',
    extra_param_7 TEXT NOT NULL DEFAULT '',
    extra_param_8 TEXT NOT NULL DEFAULT '',
    extra_param_9 TEXT NOT NULL DEFAULT '',
    extra_param_10 TEXT NOT NULL DEFAULT '',
    is_unique_campaign INTEGER NOT NULL DEFAULT 0,
    is_unique_stream INTEGER NOT NULL DEFAULT 0,
    is_unique_global INTEGER NOT NULL DEFAULT 0,
    is_bot INTEGER NOT NULL DEFAULT 0,
    is_using_proxy INTEGER NOT NULL DEFAULT 0,
    is_lead INTEGER NOT NULL DEFAULT 0,
    is_sale INTEGER NOT NULL DEFAULT 0,
    is_rejected INTEGER NOT NULL DEFAULT 0,
    landing_clicked INTEGER NOT NULL DEFAULT 0,
    landing_clicked_at INTEGER,
    cost_micros INTEGER NOT NULL DEFAULT 0,
    revenue_micros INTEGER NOT NULL DEFAULT 0,
    params TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX clicks_created ON clicks (created_at);
CREATE INDEX clicks_campaign_created ON clicks (campaign_id, created_at);

CREATE TABLE conversions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sub_id TEXT NOT NULL,
    tid TEXT NOT NULL DEFAULT '',
    click_id INTEGER,
    campaign_id INTEGER,
    stream_id INTEGER,
    landing_id INTEGER,
    offer_id INTEGER,
    ts_id INTEGER,
    affiliate_network_id INTEGER,
    status TEXT NOT NULL,
    original_status TEXT NOT NULL DEFAULT '',
    previous_status TEXT NOT NULL DEFAULT '',
    revenue_micros INTEGER NOT NULL DEFAULT 0,
    cost_micros INTEGER NOT NULL DEFAULT 0,
    currency TEXT NOT NULL DEFAULT '',
    params TEXT NOT NULL DEFAULT '{}',
    click_created_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (sub_id, tid)
);
CREATE INDEX conversions_created ON conversions (created_at);
