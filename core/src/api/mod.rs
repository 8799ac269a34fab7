//! HTTP: one router per API module, merged here with the shared middleware.

pub mod admin;
mod click_api;
mod client;
mod dialects;
mod error;
mod health;
mod postback;

pub use postback::Inbox as PostbackInbox;
pub(crate) use postback::{
    apply_parked as apply_parked_postbacks, drain_held as drain_held_postbacks,
};
pub mod reply;
mod traffic;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::Config;
use crate::fetch::Fetcher;
use crate::recorder::ClickRecorder;
use crate::reload::{SnapshotCell, Supervisor};
use crate::secrets::Secrets;
use crate::store::{ReportStore, Store};
use crate::traffic::TrafficEnv;

pub use error::{ApiError, ApiResult};

/// What every handler can reach: one shared [`Shared`] behind an `Arc`, so the per-request
/// clones axum makes of the state cost one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl AppState {
    /// Routing with this request's snapshot (see [`crate::traffic::ClickRouter`]).
    pub fn router<'a>(
        &'a self,
        snapshot: &'a Arc<crate::traffic::RoutingSnapshot>,
    ) -> crate::traffic::ClickRouter<'a> {
        crate::traffic::ClickRouter {
            pool: &self.user_code,
            env: &self.traffic,
            snapshot,
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The state's parts (reached through [`AppState`]'s `Deref`).
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    /// The report store the report and log routes read (the same store by default; another
    /// implementation of `ReportStore` serves them without touching the rest).
    pub reports: Arc<dyn ReportStore>,
    pub snapshot: Arc<SnapshotCell>,
    pub recorder: ClickRecorder,
    pub secrets: Arc<Secrets>,
    pub started: Instant,
    /// Enrichment, visitor memory, counters and the signer: what routing needs besides the snapshot.
    pub traffic: Arc<TrafficEnv>,
    /// Routes the clicks of campaigns that run user code, off the async workers.
    pub user_code: crate::guard::UserCodePool,
    /// Outbound fetches of `curl`/`remote` actions (SSRF-guarded).
    pub fetcher: Fetcher,
    /// Plugin reloads and their report.
    pub supervisor: Arc<Supervisor>,
    /// Outgoing S2S postbacks (the durable queue's sending worker).
    pub postbacks: crate::outbound::PostbackSender,
    /// Postbacks held while the database cannot take them (none with `memory` durability).
    pub postback_inbox: Option<PostbackInbox>,
    /// `remote` action answers, reused for a minute.
    pub remote_cache: Arc<quick_cache::sync::Cache<String, (Instant, String)>>,
}

/// The whole HTTP surface. The traffic routes (`/{alias}`, `/`) read no body and await only
/// the IO of `curl`/`remote`/`local_file` replies, which [`reply::resolve_in_time`] bounds;
/// they stay outside the body-limit and timeout layers, so a click sets no timer.
pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    Router::new()
        .merge(health::router())
        .merge(admin::router(state.clone()))
        .merge(click_api::router())
        .merge(postback::router(config.postback.keyless))
        .merge(dialects::router(state.clone()))
        .with_state(state.clone())
        .layer(RequestBodyLimitLayer::new(config.server.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            request_timeout(&config),
        ))
        .merge(traffic::router().with_state(state))
        .layer(CatchPanicLayer::custom(error::panic_response))
}

/// `server.request_timeout`, at least a millisecond.
fn request_timeout(config: &Config) -> Duration {
    config.server.request_timeout.max(Duration::from_millis(1))
}
