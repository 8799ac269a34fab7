//! Stream selection: forced streams by position, then regular streams (by position or by
//! weight), then the default stream. The first stream whose filters pass wins.

use rand::Rng;

use crate::model::CampaignType;

use super::{CampaignRoute, StreamRoute};

/// Picks the stream for a click. `passes` decides whether a stream's filters accept it.
pub fn select_stream<'a>(
    route: &'a CampaignRoute,
    passes: &mut dyn FnMut(&StreamRoute) -> bool,
    rng: &mut impl Rng,
) -> Option<&'a StreamRoute> {
    let mut accepts = |s: &StreamRoute| s.filters_runnable && passes(s);
    if let Some(stream) = route.forced.iter().find(|s| accepts(s)) {
        return Some(stream);
    }
    let regular = match route.campaign.campaign_type {
        CampaignType::Position => route.regular.iter().find(|s| accepts(s)),
        CampaignType::Weight => pick_weighted(&route.regular, &mut accepts, rng),
    };
    regular.or_else(|| route.default.iter().find(|s| accepts(s)))
}

/// A weighted random pick; a pick whose filters fail is dropped and the rest re-drawn.
fn pick_weighted<'a>(
    streams: &'a [StreamRoute],
    accepts: &mut dyn FnMut(&StreamRoute) -> bool,
    rng: &mut impl Rng,
) -> Option<&'a StreamRoute> {
    let mut candidates: Vec<&StreamRoute> =
        streams.iter().filter(|s| s.stream.weight > 0).collect();
    while !candidates.is_empty() {
        let total: i64 = candidates.iter().map(|s| s.stream.weight).sum();
        let mut ticket = rng.random_range(0..total);
        let index = candidates
            .iter()
            .position(|s| {
                ticket -= s.stream.weight;
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
