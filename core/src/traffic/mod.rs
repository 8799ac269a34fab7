//! The click path: from an incoming visit to a routing decision and a click to record.
//!
//! Nothing here touches the database: routing reads the immutable [`RoutingSnapshot`]
//! loaded once per request, and the finished [`crate::model::Click`] goes to the recorder.

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod macros_tests;
mod pipeline;
#[cfg(test)]
mod pipeline_tests;
mod selector;
#[cfg(test)]
mod selector_props;
mod snapshot;
mod user_code;

pub use crate::ids::{new_sub_id, random_token};
pub use crate::net::{IpNet, normalise_ip};
pub use crate::template::{
    Escape, MacroSource, NoMacroValues, Template, check_http_url, html_escape_into,
};
pub use crate::visit::{
    Binding, ClickContext, ClickMacros, ConversionCaps, HitCounters, Hits, MacroFiles,
    MemoryUniqueness, OfferCap, Scope, Signer, TrafficEnv, UniqueFlags, UniquenessStore, Visit,
    VisitorCookie, VisitorRecord, day_start,
};
pub use pipeline::{LandingToken, RouteOptions, RouteResult, route_click, route_landing_click};
pub use selector::{pick_share, pick_weighted, select_stream};
pub use snapshot::{
    CampaignRoute, CompiledFilter, RoutingData, RoutingSnapshot, StreamRoute, TargetRoute,
};
pub use user_code::ClickRouter;
