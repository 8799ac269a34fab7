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

/// The conditions a trigger may name besides `script:NAME` and `native:NAME`.
pub const CONDITIONS: &[&str] = &["not_respond", "not_contains", "always"];

/// The actions a trigger may take.
pub const ACTIONS: &[&str] = &["disable", "replace_url", "grab_from_page", "webhook"];

/// How often a trigger may run, in seconds: from 10 seconds to a week. The Admin API and
/// campaign files check the same bounds.
pub const INTERVAL_SECONDS: std::ops::RangeInclusive<i64> = 10..=604_800;

/// A built-in condition, or a trigger script or native plugin check by name.
pub fn is_known_condition(condition: &str) -> bool {
    CONDITIONS.contains(&condition)
        || condition.starts_with("script:")
        || condition.starts_with("native:")
}

/// Why `interval` is refused, if it is.
pub fn check_interval(interval: i64) -> Result<(), String> {
    if INTERVAL_SECONDS.contains(&interval) {
        Ok(())
    } else {
        Err(format!(
            "interval must be {} to {} seconds, not {interval}",
            INTERVAL_SECONDS.start(),
            INTERVAL_SECONDS.end()
        ))
    }
}

/// The page a trigger fetched, as a check sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggerPage {
    /// The HTTP status; 0 when the fetch failed.
    pub status: u16,
    pub body: String,
    pub url: String,
    pub elapsed_ms: u64,
    /// Why the fetch failed; empty when it worked.
    pub error: String,
}

/// A check's verdict: `ok: false` fires; `disable` (first) or `replace_url` replace the
/// trigger's own action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggerEffects {
    pub ok: bool,
    pub disable: bool,
    pub replace_url: bool,
    pub message: String,
}
