//! Domain types shared by the store, the routing snapshot and the APIs.
//!
//! These are plain data: validated where they are built (config, Admin API), stored by
//! `store`, compiled into routing structures by `traffic::snapshot`.

mod campaign;
mod click;
mod click_schema;
mod money;
mod stream;
mod target;
mod trigger;

pub use campaign::{Campaign, CampaignType, NewCampaign};
pub use click::{Click, EXTRA_PARAM_COUNT, SUB_ID_COUNT};
pub use click_schema::{
    Access, CLICK_FIELDS, ClickField, FieldValue, ReportKind, macro_field, single_value_columns,
};
pub use money::{Money, MoneyError};
pub use stream::{NewStream, Stream, StreamFilter, StreamSchema, StreamType};
pub use target::{Landing, NewTarget, Offer, StreamTarget};
pub use trigger::{
    ACTIONS, CONDITIONS, INTERVAL_SECONDS, NewTrigger, StreamEvent, StreamTrigger, TriggerEffects,
    TriggerPage, check_interval, is_known_condition,
};

/// Life-cycle state of a stored object (campaigns, streams, offers, landings, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectState {
    Active,
    Disabled,
    Deleted,
}

impl ObjectState {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectState::Active => "active",
            ObjectState::Disabled => "disabled",
            ObjectState::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(ObjectState::Active),
            "disabled" => Some(ObjectState::Disabled),
            "deleted" => Some(ObjectState::Deleted),
            _ => None,
        }
    }
}

/// Longest free text (URLs, user agents from APIs) stored on a click, in bytes.
pub const MAX_STORED_TEXT: usize = 4_096;

/// `text` cut to at most [`MAX_STORED_TEXT`] bytes on a character boundary.
pub fn bounded_text(text: &str) -> String {
    if text.len() <= MAX_STORED_TEXT {
        return text.to_string();
    }
    let mut end = MAX_STORED_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Seconds since the Unix epoch, the unit every stored timestamp uses.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
