//! The managed tables as the generic object store sees them (see `objects.rs`): each column the
//! Admin API or the campaign files read or write, with its SQL type (both write through
//! `ObjectStore`; a resource shows only the fields it declares, so `file_key` stays inside). Kept beside the schema files; a column listed
//! here must exist in both backends' schemas (the Admin API tests read every table).

use super::objects::ColumnType::{Bool, Int, Real, Text};
use super::objects::{Table, col};

pub static CAMPAIGNS: Table = Table {
    name: "campaigns",
    columns: &[
        col("alias", Text),
        col("name", Text),
        col("type", Text),
        col("cookies_ttl", Int),
        col("position", Int),
        col("cost_type", Text),
        col("cost_value_micros", Int),
        col("cost_currency", Text),
        col("cost_auto", Bool),
        col("group_id", Int),
        col("bind_visitors", Text),
        col("traffic_source_id", Int),
        col("token", Text),
        col("domain_id", Int),
        col("parameters", Text),
        col("uniqueness_method", Text),
        col("uniqueness_use_cookies", Bool),
        col("traffic_loss", Real),
        col("postbacks", Text),
        col("file_key", Text),
        col("file_source", Text),
        col("state", Text),
        col("notes", Text),
        col("created_at", Int),
        col("updated_at", Int),
    ],
};

pub static STREAMS: Table = Table {
    name: "streams",
    columns: &[
        col("campaign_id", Int),
        col("type", Text),
        col("name", Text),
        col("position", Int),
        col("weight", Int),
        col("schema", Text),
        col("action_type", Text),
        col("action_payload", Text),
        col("action_options", Text),
        col("collect_clicks", Bool),
        col("filter_or", Bool),
        col("comments", Text),
        col("file_key", Text),
        col("file_source", Text),
        col("state", Text),
        col("created_at", Int),
        col("updated_at", Int),
    ],
};

pub static STREAM_FILTERS: Table = Table {
    name: "stream_filters",
    columns: &[
        col("stream_id", Int),
        col("position", Int),
        col("name", Text),
        col("mode", Text),
        col("payload", Text),
    ],
};

pub static STREAM_TRIGGERS: Table = Table {
    name: "stream_triggers",
    columns: &[
        col("stream_id", Int),
        col("position", Int),
        col("condition", Text),
        col("action", Text),
        col("target", Text),
        col("interval_seconds", Int),
        col("payload", Text),
        col("enabled", Bool),
    ],
};

pub static STREAM_LANDINGS: Table = Table {
    name: "stream_landings",
    columns: &[
        col("stream_id", Int),
        col("landing_id", Int),
        col("share", Int),
        col("state", Text),
        col("created_at", Int),
        col("updated_at", Int),
    ],
};

pub static STREAM_OFFERS: Table = Table {
    name: "stream_offers",
    columns: &[
        col("stream_id", Int),
        col("offer_id", Int),
        col("share", Int),
        col("state", Text),
        col("created_at", Int),
        col("updated_at", Int),
    ],
};

pub static LANDINGS: Table = Table {
    name: "landings",
    columns: &[
        col("name", Text),
        col("landing_type", Text),
        col("url", Text),
        col("action_type", Text),
        col("action_payload", Text),
        col("action_options", Text),
        col("offer_count", Int),
        col("group_id", Int),
        col("file_key", Text),
        col("file_source", Text),
        col("state", Text),
        col("notes", Text),
        col("created_at", Int),
        col("updated_at", Int),
    ],
};

pub static OFFERS: Table = Table {
    name: "offers",
    columns: &[
        col("name", Text),
        col("offer_type", Text),
        col("url", Text),
        col("action_type", Text),
        col("action_payload", Text),
        col("action_options", Text),
        col("group_id", Int),
        col("affiliate_network_id", Int),
        col("payout_value_micros", Int),
        col("payout_currency", Text),
        col("payout_type", Text),
        col("payout_auto", Bool),
        col("payout_upsell", Bool),
        col("country", Text),
        col("daily_cap", Int),
        col("conversion_timezone", Text),
        col("alternative_offer_id", Int),
        col("file_key", Text),
        col("file_source", Text),
        col("state", Text),
        col("notes", Text),
        col("created_at", Int),
        col("updated_at", Int),
    ],
};

pub static AFFILIATE_NETWORKS: Table = Table {
    name: "affiliate_networks",
    columns: &[
        col("name", Text),
        col("postback_url", Text),
        col("offer_param", Text),
        col("template_name", Text),
        col("file_key", Text),
        col("file_source", Text),
        col("state", Text),
        col("notes", Text),
        col("created_at", Int),
        col("updated_at", Int),
    ],
};

pub static TRAFFIC_SOURCES: Table = Table {
    name: "traffic_sources",
    columns: &[
        col("name", Text),
        col("postback_url", Text),
        col("postback_statuses", Text),
        col("parameters", Text),
        col("template_name", Text),
        col("traffic_loss", Real),
        col("update_in_campaigns", Text),
        col("file_key", Text),
        col("file_source", Text),
        col("state", Text),
        col("notes", Text),
        col("created_at", Int),
        col("updated_at", Int),
    ],
};

pub static GROUPS: Table = Table {
    name: "groups",
    columns: &[
        col("name", Text),
        col("type", Text),
        col("position", Int),
        col("created_at", Int),
        col("updated_at", Int),
    ],
};

pub static DOMAINS: Table = Table {
    name: "domains",
    columns: &[
        col("name", Text),
        col("default_campaign_id", Int),
        col("wildcard", Bool),
        col("catch_not_found", Bool),
        col("ssl_redirect", Bool),
        col("allow_indexing", Bool),
        col("group_id", Int),
        col("state", Text),
        col("notes", Text),
        col("created_at", Int),
        col("updated_at", Int),
    ],
};

pub static USERS: Table = Table {
    name: "users",
    columns: &[
        col("login", Text),
        col("password_hash", Text),
        col("type", Text),
        col("access", Text),
        col("preferences", Text),
        col("state", Text),
        col("created_at", Int),
        col("updated_at", Int),
    ],
};

pub static API_KEYS: Table = Table {
    name: "api_keys",
    columns: &[
        col("user_id", Int),
        col("name", Text),
        col("scope", Text),
        col("key_hash", Text),
        col("created_at", Int),
        col("last_used_at", Int),
    ],
};

/// Every managed table, for tests that read each one on both backends.
pub static ALL: &[&Table] = &[
    &CAMPAIGNS,
    &STREAMS,
    &STREAM_FILTERS,
    &STREAM_TRIGGERS,
    &STREAM_LANDINGS,
    &STREAM_OFFERS,
    &LANDINGS,
    &OFFERS,
    &AFFILIATE_NETWORKS,
    &TRAFFIC_SOURCES,
    &GROUPS,
    &DOMAINS,
    &USERS,
    &API_KEYS,
];
