//! Where a click is routed: on the caller's task when its campaign runs only built-in kinds,
//! on the user-code pool (`crate::guard`) when it may run a Rhai script or a native plugin, so
//! that user code never holds the async runtime's workers.

use std::sync::Arc;

use super::pipeline::{LandingToken, RouteOptions, RouteResult, route_click, route_landing_click};
use super::snapshot::{CampaignRoute, RoutingSnapshot};
use crate::guard::UserCodePool;
use crate::visit::{TrafficEnv, Visit};

/// What routing a click needs, shared with the pool's thread.
pub struct ClickRouter<'a> {
    pub pool: &'a UserCodePool,
    pub env: &'a Arc<TrafficEnv>,
    pub snapshot: &'a Arc<RoutingSnapshot>,
}

impl ClickRouter<'_> {
    /// [`route_click`], on the pool when the campaign runs user code.
    pub async fn click(
        &self,
        route: &CampaignRoute,
        visit: &Arc<Visit>,
        options: &RouteOptions,
    ) -> RouteResult {
        let campaign_id = route.campaign.id;
        if !route.user_code {
            return route_click(self.env, self.snapshot, route, visit, options);
        }
        let (env, snapshot, visit, options) = (
            self.env.clone(),
            self.snapshot.clone(),
            visit.clone(),
            options.clone(),
        );
        self.pool
            .run(move || {
                let route = snapshot
                    .campaign_by_id(campaign_id)
                    .expect("the campaign is in the snapshot it was found in");
                route_click(&env, &snapshot, route, &visit, &options)
            })
            .await
    }

    /// [`route_landing_click`], on the pool when the token's campaign runs user code.
    pub async fn landing_click(
        &self,
        token: &LandingToken,
        visit: &Arc<Visit>,
        offer_id: Option<i64>,
    ) -> Option<RouteResult> {
        let user_code = self
            .snapshot
            .campaign_by_id(token.campaign_id)
            .is_some_and(|route| route.user_code);
        if !user_code {
            return route_landing_click(self.env, self.snapshot, token, visit, offer_id);
        }
        let (env, snapshot, visit, token) = (
            self.env.clone(),
            self.snapshot.clone(),
            visit.clone(),
            token.clone(),
        );
        self.pool
            .run(move || route_landing_click(&env, &snapshot, &token, &visit, offer_id))
            .await
    }
}
