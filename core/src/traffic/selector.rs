//! Stream selection: forced streams by position, then regular streams (by position or by
//! weight), then the default stream. The first stream whose filters pass wins. Also the
//! weighted pick of landings and offers by share.

use rand::Rng;

use crate::model::CampaignType;

use super::{CampaignRoute, StreamRoute};

/// Picks the stream for a click. `passes` decides whether a stream's filters accept it;
/// `bound` is a regular stream the visitor is bound to (tried first among regular streams).
pub fn select_stream<'a>(
    route: &'a CampaignRoute,
    bound: Option<i64>,
    passes: &mut dyn FnMut(&StreamRoute) -> bool,
    rng: &mut impl Rng,
) -> Option<&'a StreamRoute> {
    let mut accepts = |s: &StreamRoute| s.runnable && passes(s);
    if let Some(stream) = route.forced.iter().find(|s| accepts(s)) {
        return Some(stream);
    }
    let bound_stream = bound.and_then(|id| route.regular.iter().find(|s| s.stream.id == id));
    if let Some(stream) = bound_stream
        && accepts(stream)
    {
        return Some(stream);
    }
    let regular = match route.campaign.campaign_type {
        CampaignType::Position => route
            .regular
            .iter()
            .find(|s| bound != Some(s.stream.id) && accepts(s)),
        CampaignType::Weight => {
            let candidates: Vec<&StreamRoute> = route
                .regular
                .iter()
                .filter(|s| s.stream.weight > 0 && bound != Some(s.stream.id))
                .collect();
            pick_weighted(candidates, |s| s.stream.weight, &mut accepts, rng)
        }
    };
    regular.or_else(|| route.default.iter().find(|s| accepts(s)))
}

/// A weighted random pick; a pick that `accepts` refuses is dropped and the rest re-drawn.
pub fn pick_weighted<T: Copy>(
    mut candidates: Vec<T>,
    weight: impl Fn(T) -> i64,
    accepts: &mut dyn FnMut(T) -> bool,
    rng: &mut impl Rng,
) -> Option<T> {
    candidates.retain(|c| weight(*c) > 0);
    while !candidates.is_empty() {
        // Summed in i128: stored weights are any i64, and their sum must not overflow.
        let total: i128 = candidates.iter().map(|c| i128::from(weight(*c))).sum();
        let mut ticket = rng.random_range(0..total);
        let index = candidates
            .iter()
            .position(|c| {
                ticket -= i128::from(weight(*c));
                ticket < 0
            })
            .unwrap_or(candidates.len() - 1);
        let pick = candidates.swap_remove(index);
        if accepts(pick) {
            return Some(pick);
        }
    }
    None
}

/// Picks one (id, share) by share, preferring `bound` when it is still among them.
pub fn pick_share(targets: &[(i64, i64)], bound: Option<i64>, rng: &mut impl Rng) -> Option<i64> {
    if let Some(id) = bound
        && targets.iter().any(|(t, _)| *t == id)
    {
        return Some(id);
    }
    pick_weighted(
        targets.iter().collect(),
        |(_, share)| *share,
        &mut |_| true,
        rng,
    )
    .map(|(id, _)| *id)
}
