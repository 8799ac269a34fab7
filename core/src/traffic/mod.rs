//! The click path: from an incoming visit to a routing decision and a click to record.
//!
//! Nothing here touches the database: routing reads the immutable [`RoutingSnapshot`]
//! loaded once per request, and the finished [`crate::model::Click`] goes to the recorder.

mod ids;
mod ipnet;
mod pipeline;
mod selector;
mod snapshot;
mod template;

pub use ids::{new_sub_id, random_token};
pub use ipnet::{IpNet, normalise as normalise_ip};
pub use pipeline::{Answer, Outcome, Visit, handle_campaign};
pub use selector::select_stream;
pub use snapshot::{CampaignRoute, RoutingData, RoutingSnapshot, StreamAction, StreamRoute};
pub use template::{MacroSource, Template, check_http_url};
