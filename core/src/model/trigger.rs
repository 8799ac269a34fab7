use serde::Serialize;

/// A stream trigger: a periodic check of a page with an action when the check fires.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamTrigger {
    pub id: i64,
    pub stream_id: i64,
    /// `not_respond`, `not_contains`, `always` or `script:NAME`.
    pub condition: String,
    /// `disable`, `replace_url`, `grab_from_page` or `webhook`.
    pub action: String,
    /// The URL to check; empty = the stream's own redirect URL.
    pub target: String,
    pub interval_seconds: i64,
    /// Condition and action settings: `pattern`, `reverse`, `alternative_urls`,
    /// `grab_from_page`, `webhook_url`, script `params`.
    pub payload: serde_json::Value,
    pub enabled: bool,
}

/// The fields a caller sets when creating a trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTrigger {
    pub stream_id: i64,
    pub condition: String,
    pub action: String,
    pub target: String,
    pub interval_seconds: i64,
    pub payload: serde_json::Value,
}

/// Something that happened to a stream (a trigger check, a change), newest first in listings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamEvent {
    pub id: i64,
    pub stream_id: i64,
    pub event: String,
    pub data: serde_json::Value,
    pub created_at: i64,
}
