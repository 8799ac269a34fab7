//! The click path: from an incoming visit to a routing decision and a click to record.
//!
//! Nothing here touches the database: routing reads the immutable [`RoutingSnapshot`]
//! loaded once per request, and the finished [`crate::model::Click`] goes to the recorder.

mod caps;
mod context;
mod counters;
#[cfg(test)]
pub(crate) mod fixtures;
mod ids;
mod ipnet;
mod macro_files;
mod macros;
#[cfg(test)]
mod macros_tests;
mod pipeline;
#[cfg(test)]
mod pipeline_tests;
mod selector;
#[cfg(test)]
mod selector_props;
mod signing;
mod snapshot;
mod template;
mod uniqueness;

pub use caps::{ConversionCaps, OfferCap, day_start};
pub use context::{ClickContext, TrafficEnv, UniqueFlags};
pub use counters::{HitCounters, Hits};
pub use ids::{new_sub_id, random_token};
pub use ipnet::{IpNet, normalise as normalise_ip};
pub use macro_files::MacroFiles;
pub use macros::ClickMacros;
pub use pipeline::{
    LandingToken, RouteOptions, RouteResult, Visit, route_click, route_landing_click,
};
pub use selector::{pick_share, pick_weighted, select_stream};
pub use signing::Signer;
pub use snapshot::{
    CampaignRoute, CompiledFilter, RoutingData, RoutingSnapshot, StreamRoute, TargetRoute,
};
pub use template::{
    Escape, MacroSource, NoMacroValues, Template, check_http_url, html_escape_into,
};
pub use uniqueness::{
    Binding, MemoryUniqueness, Scope, UniquenessStore, VisitorCookie, VisitorRecord,
};
