//! What a load would change: the declared objects compared with the file-managed objects in
//! the store, by key. The plan lists objects to insert or update (only those that differ) and
//! file-managed objects no longer declared (to archive); `switchyard diff` prints its changes.

use std::collections::HashMap;

use serde::Serialize;

use super::format::*;
use super::{LoadedDir, ObjectKind};
use crate::model::ObjectState;

/// An object as the store holds it, in the file format (references as keys).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    pub id: i64,
    /// Its file key, or a key made from its id (`offer_12`) for objects made elsewhere.
    pub key: String,
    /// The file that declares it; `None` for objects made through the Admin API.
    pub file: Option<String>,
    pub decl: T,
}

/// Every object of the store that export or a load cares about: objects in any state but
/// `deleted`, and file-managed objects in every state (so that a load can revive them).
#[derive(Debug, Clone, Default)]
pub struct StoredObjects {
    pub affiliate_networks: Vec<Stored<NetworkDecl>>,
    pub traffic_sources: Vec<Stored<SourceDecl>>,
    pub offers: Vec<Stored<OfferDecl>>,
    pub landings: Vec<Stored<LandingDecl>>,
    /// Campaigns without their streams (see `streams`).
    pub campaigns: Vec<Stored<CampaignDecl>>,
    /// Streams; `key` is `campaign key.stream key`.
    pub streams: Vec<Stored<StreamDecl>>,
}

impl StoredObjects {
    /// The objects that are not deleted, as one set (streams inside their campaigns).
    pub fn live_set(&self) -> DeclaredSet {
        fn live<T: Clone>(objects: &[Stored<T>], state: fn(&T) -> ObjectState) -> Vec<(String, T)> {
            objects
                .iter()
                .filter(|o| state(&o.decl) != ObjectState::Deleted)
                .map(|o| (o.key.clone(), o.decl.clone()))
                .collect()
        }
        let mut set = DeclaredSet {
            affiliate_networks: live(&self.affiliate_networks, |d| d.state)
                .into_iter()
                .collect(),
            traffic_sources: live(&self.traffic_sources, |d| d.state)
                .into_iter()
                .collect(),
            offers: live(&self.offers, |d| d.state).into_iter().collect(),
            landings: live(&self.landings, |d| d.state).into_iter().collect(),
            campaigns: live(&self.campaigns, |d| d.state).into_iter().collect(),
        };
        for stream in &self.streams {
            if stream.decl.state == ObjectState::Deleted {
                continue;
            }
            if let Some((campaign, key)) = stream.key.split_once('.')
                && let Some(decl) = set.campaigns.get_mut(campaign)
            {
                decl.streams.insert(key.to_string(), stream.decl.clone());
            }
        }
        set
    }

    /// Only the file-managed objects.
    pub fn managed(&self) -> StoredObjects {
        fn keep<T: Clone>(objects: &[Stored<T>]) -> Vec<Stored<T>> {
            objects
                .iter()
                .filter(|o| o.file.is_some())
                .cloned()
                .collect()
        }
        StoredObjects {
            affiliate_networks: keep(&self.affiliate_networks),
            traffic_sources: keep(&self.traffic_sources),
            offers: keep(&self.offers),
            landings: keep(&self.landings),
            campaigns: keep(&self.campaigns),
            streams: keep(&self.streams),
        }
    }
}

/// An object to write: `id` is the stored row to update, `None` to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct Upsert<T> {
    pub id: Option<i64>,
    pub key: String,
    pub file: String,
    pub decl: T,
}

/// What one change is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Add,
    Update,
    Archive,
}

/// One line of `switchyard diff`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub change: ChangeKind,
    pub kind: ObjectKind,
    pub key: String,
    /// The declaring file ("" for archived objects).
    pub file: String,
    /// The fields that differ (updates only).
    pub fields: Vec<String>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = match self.change {
            ChangeKind::Add => "+",
            ChangeKind::Update => "~",
            ChangeKind::Archive => "-",
        };
        write!(f, "{sign} {}.{}", self.kind.table(), self.key)?;
        if !self.fields.is_empty() {
            write!(f, " ({})", self.fields.join(", "))?;
        }
        if !self.file.is_empty() {
            write!(f, "  [{}]", self.file)?;
        }
        Ok(())
    }
}

/// Everything a load writes, in one store transaction.
#[derive(Debug, Clone, Default)]
pub struct FilePlan {
    pub affiliate_networks: Vec<Upsert<NetworkDecl>>,
    pub traffic_sources: Vec<Upsert<SourceDecl>>,
    pub offers: Vec<Upsert<OfferDecl>>,
    pub landings: Vec<Upsert<LandingDecl>>,
    pub campaigns: Vec<Upsert<CampaignDecl>>,
    /// Streams with their campaign's key; `key` is `campaign key.stream key`.
    pub streams: Vec<(String, Upsert<StreamDecl>)>,
    /// File-managed objects no longer declared, to set to `deleted`.
    pub archive: Vec<(ObjectKind, i64)>,
    /// Stored ids of file-managed objects by kind and key (to resolve references).
    pub ids: HashMap<(ObjectKind, String), i64>,
    pub changes: Vec<Change>,
}

impl FilePlan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Fields whose values differ between two objects of one kind.
fn changed_fields<T: Serialize>(old: &T, new: &T, skip: &[&str]) -> Vec<String> {
    let old = serde_json::to_value(old).unwrap_or_default();
    let new = serde_json::to_value(new).unwrap_or_default();
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return vec!["*".into()];
    };
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|name| !skip.contains(&name.as_str()) && old.get(*name) != new.get(*name))
        .cloned()
        .collect()
}

/// Plans one kind: upserts for new or different objects, archives for vanished ones.
fn plan_kind<T: Clone + Serialize>(
    kind: ObjectKind,
    declared: Vec<(String, String, T)>,
    stored: &[Stored<T>],
    state: fn(&T) -> ObjectState,
    skip: &[&str],
    plan: &mut FilePlan,
) -> Vec<Upsert<T>> {
    let by_key: HashMap<&str, &Stored<T>> = stored
        .iter()
        .filter(|s| s.file.is_some())
        .map(|s| (s.key.as_str(), s))
        .collect();
    for stored in by_key.values() {
        plan.ids.insert((kind, stored.key.clone()), stored.id);
    }
    let mut upserts = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (key, file, decl) in declared {
        seen.insert(key.clone());
        match by_key.get(key.as_str()) {
            None => {
                plan.changes.push(Change {
                    change: ChangeKind::Add,
                    kind,
                    key: key.clone(),
                    file: file.clone(),
                    fields: Vec::new(),
                });
                upserts.push(Upsert {
                    id: None,
                    key,
                    file,
                    decl,
                });
            }
            Some(current) => {
                let mut fields = changed_fields(&current.decl, &decl, skip);
                if current.file.as_deref() != Some(file.as_str()) {
                    fields.push("file".into());
                }
                if state(&current.decl) == ObjectState::Deleted && !fields.contains(&"state".into())
                {
                    fields.push("state".into());
                }
                if !fields.is_empty() {
                    plan.changes.push(Change {
                        change: ChangeKind::Update,
                        kind,
                        key: key.clone(),
                        file: file.clone(),
                        fields,
                    });
                    upserts.push(Upsert {
                        id: Some(current.id),
                        key,
                        file,
                        decl,
                    });
                }
            }
        }
    }
    let mut vanished: Vec<&&Stored<T>> = by_key
        .values()
        .filter(|s| !seen.contains(&s.key) && state(&s.decl) != ObjectState::Deleted)
        .collect();
    vanished.sort_by_key(|s| s.id);
    for stored in vanished {
        plan.archive.push((kind, stored.id));
        plan.changes.push(Change {
            change: ChangeKind::Archive,
            kind,
            key: stored.key.clone(),
            file: String::new(),
            fields: Vec::new(),
        });
    }
    upserts
}

/// Compares a valid directory with the store's objects.
pub fn plan_changes(loaded: &LoadedDir, stored: &StoredObjects) -> FilePlan {
    let mut plan = FilePlan::default();
    let set = &loaded.set;
    let file = |kind: ObjectKind, key: &str| loaded.file_of(kind, key);
    macro_rules! declared {
        ($map:expr, $kind:expr) => {
            $map.iter()
                .map(|(key, decl)| (key.clone(), file($kind, key), decl.clone()))
                .collect::<Vec<_>>()
        };
    }
    plan.affiliate_networks = plan_kind(
        ObjectKind::AffiliateNetwork,
        declared!(set.affiliate_networks, ObjectKind::AffiliateNetwork),
        &stored.affiliate_networks,
        |d| d.state,
        &[],
        &mut plan,
    );
    plan.traffic_sources = plan_kind(
        ObjectKind::TrafficSource,
        declared!(set.traffic_sources, ObjectKind::TrafficSource),
        &stored.traffic_sources,
        |d| d.state,
        &[],
        &mut plan,
    );
    plan.offers = plan_kind(
        ObjectKind::Offer,
        declared!(set.offers, ObjectKind::Offer),
        &stored.offers,
        |d| d.state,
        &[],
        &mut plan,
    );
    plan.landings = plan_kind(
        ObjectKind::Landing,
        declared!(set.landings, ObjectKind::Landing),
        &stored.landings,
        |d| d.state,
        &[],
        &mut plan,
    );
    // Campaigns are compared without their streams; a token left out keeps the stored one.
    let stored_tokens: HashMap<&str, &str> = stored
        .campaigns
        .iter()
        .filter(|c| c.file.is_some())
        .map(|c| (c.key.as_str(), c.decl.token.as_str()))
        .collect();
    let campaigns: Vec<(String, String, CampaignDecl)> = set
        .campaigns
        .iter()
        .map(|(key, decl)| {
            let mut decl = decl.clone();
            decl.streams.clear();
            if decl.token.is_empty()
                && let Some(token) = stored_tokens.get(key.as_str())
            {
                decl.token = token.to_string();
            }
            (key.clone(), file(ObjectKind::Campaign, key), decl)
        })
        .collect();
    plan.campaigns = plan_kind(
        ObjectKind::Campaign,
        campaigns,
        &stored.campaigns,
        |d| d.state,
        &["streams"],
        &mut plan,
    );
    let streams: Vec<(String, String, StreamDecl)> = set
        .campaigns
        .iter()
        .flat_map(|(campaign, decl)| {
            decl.streams.iter().map(move |(key, stream)| {
                let full = format!("{campaign}.{key}");
                (full, stream.clone())
            })
        })
        .map(|(full, stream)| {
            let file = file(ObjectKind::Stream, &full);
            (full, file, stream)
        })
        .collect();
    let streams = plan_kind(
        ObjectKind::Stream,
        streams,
        &stored.streams,
        |d| d.state,
        &[],
        &mut plan,
    );
    plan.streams = streams
        .into_iter()
        .map(|upsert| {
            let campaign = upsert
                .key
                .split_once('.')
                .map(|(c, _)| c.to_string())
                .unwrap_or_default();
            (campaign, upsert)
        })
        .collect();
    plan
}
