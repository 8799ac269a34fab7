//! Properties of stream selection and share picks, on snapshots compiled through the built-in
//! registry with real `ip` filters (in both modes) that match or miss the visitor.

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

use crate::model::{CampaignType, Click, StreamType};

use super::fixtures::{self, filter};
use super::pipeline::stream_passes;
use super::{ClickContext, RoutingData, RoutingSnapshot, pick_share, pick_weighted, select_stream};

const VISITOR: &str = "1.2.3.4";
const CAMPAIGN: i64 = 1;

/// One stream of a generated campaign.
#[derive(Debug, Clone)]
struct Spec {
    kind: StreamType,
    weight: i64,
    /// Whether its filters accept the visitor.
    passes: bool,
    /// Whether it expresses that with a `reject` filter (else an `accept` one).
    reject_mode: bool,
    /// A filter the registry does not know: the stream can never run.
    broken: bool,
    /// No filters at all (passes unless broken).
    unfiltered: bool,
}

impl Spec {
    fn selectable(&self) -> bool {
        !self.broken && (self.passes || self.unfiltered)
    }
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop_oneof![
            Just(StreamType::Forced),
            Just(StreamType::Regular),
            Just(StreamType::Regular),
            Just(StreamType::Default),
        ],
        0i64..4,
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(kind, weight, passes, reject_mode, broken, unfiltered)| Spec {
                kind,
                weight,
                passes,
                reject_mode,
                broken,
                unfiltered,
            },
        )
}

/// Stream `i + 1` for `specs[i]`, positioned in that order.
fn snapshot(specs: &[Spec], campaign_type: CampaignType) -> RoutingSnapshot {
    let mut campaign = fixtures::campaign(CAMPAIGN);
    campaign.campaign_type = campaign_type;
    let streams = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let mut stream = fixtures::stream(i as i64 + 1, CAMPAIGN, spec.kind);
            stream.weight = spec.weight;
            if !spec.unfiltered {
                // accept + matching list, or reject + non-matching list, passes.
                let list = if spec.passes == spec.reject_mode {
                    json!(["10.0.0.0/8", "5.6.7.8"])
                } else {
                    json!(["1.2.3.0-1.2.3.9", "10.0.0.0/8"])
                };
                let mode = if spec.reject_mode { "reject" } else { "accept" };
                stream.filters.push(filter("ip", mode, list));
                stream.filters.push(filter("bot", "reject", json!(null)));
            }
            if spec.broken {
                stream
                    .filters
                    .push(filter("no_such_filter", "accept", json!(null)));
            }
            stream
        })
        .collect();
    fixtures::snapshot(RoutingData {
        campaigns: vec![campaign],
        streams,
        ..RoutingData::default()
    })
}

/// Runs `select_stream` for the fixture visitor; the chosen stream's id.
fn select(snapshot: &RoutingSnapshot, bound: Option<i64>, rng: &mut StdRng) -> Option<i64> {
    let route = snapshot.campaign_by_id(CAMPAIGN).expect("the campaign");
    let env = fixtures::env();
    let visit = fixtures::visit(VISITOR);
    let mut click = Click::blank();
    click.ip = VISITOR.into();
    let mut ctx = ClickContext::new(&env, &visit, &route.campaign, click, false);
    select_stream(route, bound, &mut |s| stream_passes(&mut ctx, s), rng).map(|s| s.stream.id)
}

#[derive(Debug, PartialEq)]
enum Expected {
    Exactly(i64),
    OneOf(Vec<i64>),
    Nothing,
}

/// What Keitaro's routing rules say the choice must be.
fn expected(specs: &[Spec], campaign_type: CampaignType, bound: Option<i64>) -> Expected {
    let ids = |kind: StreamType| {
        specs
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.kind == kind && s.selectable())
            .map(|(i, s)| (i as i64 + 1, s))
    };
    if let Some((id, _)) = ids(StreamType::Forced).next() {
        return Expected::Exactly(id);
    }
    if let Some(bound) = bound
        && ids(StreamType::Regular).any(|(id, _)| id == bound)
    {
        return Expected::Exactly(bound);
    }
    match campaign_type {
        CampaignType::Position => {
            if let Some((id, _)) = ids(StreamType::Regular).next() {
                return Expected::Exactly(id);
            }
        }
        CampaignType::Weight => {
            let weighted: Vec<i64> = ids(StreamType::Regular)
                .filter(|(_, s)| s.weight > 0)
                .map(|(id, _)| id)
                .collect();
            if !weighted.is_empty() {
                return Expected::OneOf(weighted);
            }
        }
    }
    match ids(StreamType::Default).next() {
        Some((id, _)) => Expected::Exactly(id),
        None => Expected::Nothing,
    }
}

fn campaign_type() -> impl Strategy<Value = CampaignType> {
    prop_oneof![Just(CampaignType::Position), Just(CampaignType::Weight)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Forced beats regular beats default; a stream whose filters fail (or cannot be built) is
    /// never chosen; within each kind the rules of the campaign type hold.
    #[test]
    fn selection_follows_the_routing_rules(
        specs in prop::collection::vec(spec(), 0..8),
        campaign_type in campaign_type(),
        seed in any::<u64>(),
    ) {
        let snapshot = snapshot(&specs, campaign_type);
        let mut rng = StdRng::seed_from_u64(seed);
        let chosen = select(&snapshot, None, &mut rng);
        if let Some(id) = chosen {
            prop_assert!(specs[id as usize - 1].selectable(), "chose stream {} that fails", id);
        }
        match expected(&specs, campaign_type, None) {
            Expected::Exactly(id) => prop_assert_eq!(chosen, Some(id)),
            Expected::OneOf(ids) => prop_assert!(
                chosen.is_some_and(|c| ids.contains(&c)),
                "chose {:?}, expected one of {:?}", chosen, ids
            ),
            Expected::Nothing => prop_assert_eq!(chosen, None),
        }
    }

    /// A visitor bound to a regular stream comes back to it while its filters pass, whatever
    /// its weight (0 included), unless a forced stream takes the click.
    #[test]
    fn binding_is_sticky(
        mut specs in prop::collection::vec(spec(), 1..8),
        bound_index in any::<prop::sample::Index>(),
        bound_weight in 0i64..3,
        campaign_type in campaign_type(),
        seed in any::<u64>(),
    ) {
        let index = bound_index.index(specs.len());
        specs[index] = Spec {
            kind: StreamType::Regular,
            weight: bound_weight,
            passes: true,
            broken: false,
            ..specs[index].clone()
        };
        let bound = index as i64 + 1;
        let snapshot = snapshot(&specs, campaign_type);
        let mut rng = StdRng::seed_from_u64(seed);
        let chosen = select(&snapshot, Some(bound), &mut rng);
        prop_assert_eq!(chosen, match expected(&specs, campaign_type, Some(bound)) {
            Expected::Exactly(id) => Some(id),
            other => panic!("a bound stream gives one answer, not {other:?}"),
        });
        let forced_first = specs.iter().any(|s| s.kind == StreamType::Forced && s.selectable());
        prop_assert_eq!(chosen == Some(bound), !forced_first);
    }

    /// A bound stream whose filters now fail is left for the normal rules.
    #[test]
    fn a_failing_bound_stream_is_not_forced_on_the_visitor(
        mut specs in prop::collection::vec(spec(), 1..8),
        bound_index in any::<prop::sample::Index>(),
        campaign_type in campaign_type(),
        seed in any::<u64>(),
    ) {
        let index = bound_index.index(specs.len());
        specs[index] = Spec {
            kind: StreamType::Regular,
            passes: false,
            unfiltered: false,
            ..specs[index].clone()
        };
        let bound = index as i64 + 1;
        let snapshot = snapshot(&specs, campaign_type);
        let mut rng = StdRng::seed_from_u64(seed);
        let chosen = select(&snapshot, Some(bound), &mut rng);
        prop_assert_ne!(chosen, Some(bound));
        match expected(&specs, campaign_type, None) {
            Expected::Exactly(id) => prop_assert_eq!(chosen, Some(id)),
            Expected::OneOf(ids) => prop_assert!(chosen.is_some_and(|c| ids.contains(&c))),
            Expected::Nothing => prop_assert_eq!(chosen, None),
        }
    }

    /// Share picks never choose a target with share 0 (or less), and choose something
    /// whenever one share is positive.
    #[test]
    fn pick_share_never_picks_share_zero(
        targets in prop::collection::vec((1i64..50, -2i64..4), 0..10),
        seed in any::<u64>(),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let picked = pick_share(&targets, None, &mut rng);
        match picked {
            Some(id) => prop_assert!(
                targets.iter().any(|(t, share)| *t == id && *share > 0),
                "picked {} from {:?}", id, targets
            ),
            None => prop_assert!(targets.iter().all(|(_, share)| *share <= 0)),
        }
    }

    /// A bound target still on the list is kept; one that left the list is re-picked by share.
    #[test]
    fn pick_share_prefers_the_bound_target(
        targets in prop::collection::vec((1i64..50, 1i64..4), 1..10),
        bound in 1i64..60,
        seed in any::<u64>(),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let picked = pick_share(&targets, Some(bound), &mut rng);
        if targets.iter().any(|(t, _)| *t == bound) {
            prop_assert_eq!(picked, Some(bound));
        } else {
            prop_assert!(picked.is_some_and(|id| targets.iter().any(|(t, _)| *t == id)));
        }
    }

    /// Weights anywhere in i64 (stored data is not range-checked) never overflow or panic.
    #[test]
    fn any_weights_are_safe(
        weights in prop::collection::vec(any::<i64>(), 0..6),
        seed in any::<u64>(),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let picked = pick_weighted(weights.clone(), |w| w, &mut |_| true, &mut rng);
        prop_assert_eq!(picked.is_some(), weights.iter().any(|w| *w > 0));
        prop_assert!(picked.is_none_or(|w| w > 0));
    }
}

/// Pearson's chi-square statistic of observed counts against expected shares.
fn chi_square(observed: &[u64], shares: &[f64]) -> f64 {
    let n: u64 = observed.iter().sum();
    let total: f64 = shares.iter().sum();
    observed
        .iter()
        .zip(shares)
        .map(|(o, s)| {
            let e = n as f64 * s / total;
            (*o as f64 - e).powi(2) / e
        })
        .sum()
}

/// Chi-square critical values at p = 0.001 for 1..=4 degrees of freedom.
const CRITICAL: [f64; 4] = [10.83, 13.82, 16.27, 18.47];

#[test]
fn weighted_streams_converge_to_their_shares() {
    // Streams 1-3 pass (weights 1:3:6); stream 4 (weight 5) fails its filters and must be
    // re-drawn away without skewing the others; stream 5 (weight 0) never comes up.
    let regular = |weight, passes| Spec {
        kind: StreamType::Regular,
        weight,
        passes,
        reject_mode: false,
        broken: false,
        unfiltered: false,
    };
    let specs = [
        regular(1, true),
        regular(3, true),
        regular(6, true),
        regular(5, false),
        regular(0, true),
    ];
    let snapshot = snapshot(&specs, CampaignType::Weight);
    let route = snapshot.campaign_by_id(CAMPAIGN).unwrap();
    let env = fixtures::env();
    let visit = fixtures::visit(VISITOR);
    let mut click = Click::blank();
    click.ip = VISITOR.into();
    let mut ctx = ClickContext::new(&env, &visit, &route.campaign, click, false);
    let mut rng = StdRng::seed_from_u64(0x5717c4);
    let mut counts = [0u64; 5];
    for _ in 0..20_000 {
        let chosen = select_stream(route, None, &mut |s| stream_passes(&mut ctx, s), &mut rng)
            .expect("a passing stream");
        counts[chosen.stream.id as usize - 1] += 1;
    }
    assert_eq!(counts[3], 0, "the failing stream was chosen");
    assert_eq!(counts[4], 0, "the weight-0 stream was chosen");
    let statistic = chi_square(&counts[..3], &[1.0, 3.0, 6.0]);
    assert!(
        statistic < CRITICAL[1],
        "counts {counts:?} are far from 1:3:6 (chi-square {statistic:.2})"
    );
}

#[test]
fn share_picks_converge_to_their_shares() {
    let targets = [(11, 5), (12, 0), (13, 20), (14, 75), (15, -3)];
    let mut rng = StdRng::seed_from_u64(42);
    let mut counts = std::collections::BTreeMap::<i64, u64>::new();
    for _ in 0..20_000 {
        *counts
            .entry(pick_share(&targets, None, &mut rng).unwrap())
            .or_default() += 1;
    }
    assert_eq!(counts.keys().copied().collect::<Vec<_>>(), [11, 13, 14]);
    let observed: Vec<u64> = counts.values().copied().collect();
    let statistic = chi_square(&observed, &[5.0, 20.0, 75.0]);
    assert!(
        statistic < CRITICAL[1],
        "counts {counts:?} are far from 5:20:75 (chi-square {statistic:.2})"
    );
}

#[test]
fn weighted_picks_with_one_heavy_failing_stream_still_find_the_light_one() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..200 {
        let picked = pick_weighted(
            vec![(1, 1_000_000), (2, 1)],
            |(_, w)| w,
            &mut |(id, _)| id == 2,
            &mut rng,
        );
        assert_eq!(picked, Some((2, 1)));
    }
}
