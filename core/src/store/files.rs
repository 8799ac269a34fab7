//! Store support for config-as-files (`crate::files`): reading every object in the file format
//! (export, diff, planning a load) and applying a load's plan in one transaction. Implemented once
//! for both backends on `SqlStore<DB>` (see `sql_store.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Encode, Executor, FromRow, Type};

use crate::files::{
    CampaignDecl, FilePlan, FilterDecl, LandingDecl, LandingShare, NetworkDecl, ObjectKind,
    OfferDecl, OfferShare, SourceDecl, Stored, StoredObjects, StreamDecl, TriggerDecl, Upsert,
};
use crate::model::{Money, ObjectState, unix_now};
use crate::store::rows::{
    CAMPAIGN_COLUMNS, CampaignRow, FilterRow, LANDING_COLUMNS, LandingRow, OFFER_COLUMNS, OfferRow,
    STREAM_COLUMNS, StreamRow, TriggerRow, json, parse_enum,
};

use super::objects::{ChildRows, ObjectWrite, SqlValue, Table};
use super::sql_store::{Sql, SqlDb, SqlStore};
use super::{StoreError, tables};

/// Objects declared as files: read them back, write a load's plan, tell who manages a row.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// Every object that is not deleted, and every file-managed object in any state, in the
    /// file format. Objects made through the Admin API get keys from their ids (`offer_12`).
    async fn file_objects(&self) -> Result<StoredObjects, StoreError>;

    /// Applies a load in one transaction: archives (`deleted`) what the plan archives, then
    /// inserts or updates each object by key, replacing a written stream's filters, landings,
    /// offers and triggers. Nothing is written when any statement fails.
    async fn apply_files(&self, plan: &FilePlan) -> Result<(), StoreError>;

    /// The file that declares a stored object (relative to the campaigns directory); `None`
    /// for objects made through the Admin API and for ids that do not exist.
    async fn file_source(&self, kind: ObjectKind, id: i64) -> Result<Option<String>, StoreError>;
}

/// A key for an object that no file declares.
pub(crate) fn generated_key(prefix: &str, id: i64) -> String {
    format!("{prefix}_{id}")
}

fn state_of(text: &str, what: &str) -> Result<ObjectState, StoreError> {
    parse_enum(text, ObjectState::parse, what)
}

fn reference(
    ids: &HashMap<(ObjectKind, String), i64>,
    kind: ObjectKind,
    key: &str,
) -> Result<Option<i64>, StoreError> {
    if key.is_empty() {
        return Ok(None);
    }
    ids.get(&(kind, key.to_string()))
        .copied()
        .map(Some)
        .ok_or_else(|| StoreError::Conflict {
            what: format!(
                "a reference to {} `{key}` that is not file-managed",
                kind.table()
            ),
        })
}

/// The file columns of a row: its key and file, when a file manages it.
#[derive(sqlx::FromRow)]
struct FileColumns {
    id: i64,
    file_key: Option<String>,
    file_source: Option<String>,
}

impl FileColumns {
    /// Its id, its key (made from the id with `prefix` when no file declares it), its file.
    fn split(self, prefix: &str) -> (i64, String, Option<String>) {
        let key = self
            .file_key
            .unwrap_or_else(|| generated_key(prefix, self.id));
        (self.id, key, self.file_source)
    }
}

#[derive(sqlx::FromRow)]
struct NetworkRow {
    name: String,
    postback_url: String,
    offer_param: String,
    state: String,
    notes: String,
}

#[derive(sqlx::FromRow)]
struct SourceRow {
    name: String,
    postback_url: String,
    parameters: String,
    state: String,
    notes: String,
}

/// The managed table of a kind of file-declared object.
fn managed_table(kind: ObjectKind) -> &'static Table {
    match kind {
        ObjectKind::AffiliateNetwork => &tables::AFFILIATE_NETWORKS,
        ObjectKind::TrafficSource => &tables::TRAFFIC_SOURCES,
        ObjectKind::Offer => &tables::OFFERS,
        ObjectKind::Landing => &tables::LANDINGS,
        ObjectKind::Campaign => &tables::CAMPAIGNS,
        ObjectKind::Stream => &tables::STREAMS,
    }
}

fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.to_string())
}

fn int(value: Option<i64>) -> SqlValue {
    value.map_or(SqlValue::Null, SqlValue::Int)
}

/// A decimal amount in micro-units (0 when it does not parse; the plan checked it).
fn money(text: &str) -> i64 {
    text.parse::<Money>().unwrap_or_default().micros()
}

/// An optional payload as the JSON text the column holds (`null` when absent).
fn json_text(value: &Option<serde_json::Value>) -> SqlValue {
    SqlValue::Text(value.clone().unwrap_or(serde_json::Value::Null).to_string())
}

/// The stream targets a file shows.
const ACTIVE: &str = "WHERE state = 'active'";

/// `None` for a JSON `null` payload (the file format leaves such payloads out).
fn payload(value: serde_json::Value) -> Option<serde_json::Value> {
    (!value.is_null()).then_some(value)
}

impl<DB> SqlStore<DB>
where
    DB: SqlDb,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'n> &'n str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    i64: Sql<DB>,
    f64: Sql<DB>,
    bool: Sql<DB>,
    String: Sql<DB>,
    Option<i64>: Sql<DB>,
    Option<f64>: Sql<DB>,
    Option<String>: Sql<DB>,
    Option<bool>: Sql<DB>,
    Arc<str>: Sql<DB>,
{
    /// `columns` and the file columns of every row of `table` that is not deleted or that a
    /// file manages, by id.
    async fn filed<T>(
        &self,
        columns: &str,
        table: &str,
    ) -> Result<Vec<(T, FileColumns)>, StoreError>
    where
        T: for<'r> FromRow<'r, DB::Row>,
    {
        let sql = format!(
            "SELECT {columns}, id, file_key, file_source FROM {table} \
             WHERE state <> 'deleted' OR file_key IS NOT NULL ORDER BY id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((T::from_row(row)?, FileColumns::from_row(row)?)))
            .collect()
    }

    /// Writes one file-declared object through the object layer (the Admin API's writer), with
    /// its key, its file and its times, inside the load's transaction; returns its id. A unique
    /// constraint names the object by `what`.
    async fn write_filed<T>(
        tx: &mut DB::Connection,
        table: &'static Table,
        upsert: &Upsert<T>,
        mut values: Vec<(&'static str, SqlValue)>,
        children: Vec<ChildRows>,
        what: &(dyn Fn() -> String + Sync),
    ) -> Result<i64, StoreError> {
        let now = unix_now();
        values.push(("file_key", SqlValue::Text(upsert.key.clone())));
        values.push(("file_source", SqlValue::Text(upsert.file.clone())));
        values.push(("updated_at", SqlValue::Int(now)));
        if upsert.id.is_none() {
            values.push(("created_at", SqlValue::Int(now)));
        }
        let write = ObjectWrite {
            table,
            id: upsert.id,
            values,
            children,
        };
        Self::write_object(tx, &write)
            .await
            .map_err(|e| e.conflict_named(what))?
            .ok_or_else(|| StoreError::Corrupt(format!("{} is gone", what())))
    }
}

#[async_trait]
impl<DB> FileStore for SqlStore<DB>
where
    DB: SqlDb,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'n> &'n str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    i64: Sql<DB>,
    f64: Sql<DB>,
    bool: Sql<DB>,
    String: Sql<DB>,
    Option<i64>: Sql<DB>,
    Option<f64>: Sql<DB>,
    Option<String>: Sql<DB>,
    Option<bool>: Sql<DB>,
    Arc<str>: Sql<DB>,
{
    async fn file_objects(&self) -> Result<StoredObjects, StoreError> {
        let mut out = StoredObjects::default();
        let mut network_keys: HashMap<i64, String> = HashMap::new();
        for (network, file) in self
            .filed::<NetworkRow>(
                "name, postback_url, offer_param, state, notes",
                "affiliate_networks",
            )
            .await?
        {
            let (id, key, file) = file.split("network");
            network_keys.insert(id, key.clone());
            let decl = NetworkDecl {
                name: network.name,
                postback_url: network.postback_url,
                offer_param: network.offer_param,
                state: state_of(&network.state, "network state")?,
                notes: network.notes,
            };
            out.affiliate_networks.push(Stored {
                id,
                key,
                file,
                decl,
            });
        }
        let mut source_keys: HashMap<i64, String> = HashMap::new();
        for (source, file) in self
            .filed::<SourceRow>(
                "name, postback_url, parameters, state, notes",
                "traffic_sources",
            )
            .await?
        {
            let (id, key, file) = file.split("source");
            source_keys.insert(id, key.clone());
            let decl = SourceDecl {
                name: source.name,
                postback_url: source.postback_url,
                parameters: json(&source.parameters, "traffic source parameters")?,
                state: state_of(&source.state, "traffic source state")?,
                notes: source.notes,
            };
            out.traffic_sources.push(Stored {
                id,
                key,
                file,
                decl,
            });
        }
        let key_in = |keys: &HashMap<i64, String>, id: Option<i64>| {
            id.and_then(|id| keys.get(&id).cloned()).unwrap_or_default()
        };
        let mut offer_keys: HashMap<i64, String> = HashMap::new();
        for (offer, file) in self.filed::<OfferRow>(OFFER_COLUMNS, "offers").await? {
            let offer = offer.into_offer()?;
            let (id, key, file) = file.split("offer");
            offer_keys.insert(id, key.clone());
            let decl = OfferDecl {
                name: offer.name,
                url: offer.url,
                affiliate_network: key_in(&network_keys, offer.affiliate_network_id),
                payout: offer.payout_value.to_string(),
                payout_currency: offer.payout_currency,
                payout_type: offer.payout_type,
                country: offer.country,
                daily_cap: offer.daily_cap,
                conversion_timezone: offer.conversion_timezone,
                action: offer.action_type,
                payload: payload(offer.action_payload),
                state: offer.state,
                notes: offer.notes,
            };
            out.offers.push(Stored {
                id,
                key,
                file,
                decl,
            });
        }
        let mut landing_keys: HashMap<i64, String> = HashMap::new();
        for (landing, file) in self
            .filed::<LandingRow>(LANDING_COLUMNS, "landings")
            .await?
        {
            let landing = landing.into_landing()?;
            let (id, key, file) = file.split("landing");
            landing_keys.insert(id, key.clone());
            let decl = LandingDecl {
                name: landing.name,
                url: landing.url,
                landing_type: landing.landing_type,
                action: landing.action_type,
                payload: payload(landing.action_payload),
                offer_count: landing.offer_count,
                state: landing.state,
                notes: landing.notes,
            };
            out.landings.push(Stored {
                id,
                key,
                file,
                decl,
            });
        }
        let mut campaign_keys: HashMap<i64, String> = HashMap::new();
        for (campaign, file) in self
            .filed::<CampaignRow>(CAMPAIGN_COLUMNS, "campaigns")
            .await?
        {
            let campaign = campaign.into_campaign()?;
            let (id, key, file) = file.split("campaign");
            campaign_keys.insert(id, key.clone());
            let decl = CampaignDecl {
                alias: campaign.alias,
                name: campaign.name,
                campaign_type: campaign.campaign_type,
                token: campaign.token,
                cookies_ttl: campaign.cookies_ttl,
                bind_visitors: campaign.bind_visitors.unwrap_or_default(),
                traffic_source: key_in(&source_keys, campaign.traffic_source_id),
                uniqueness_method: campaign.uniqueness_method,
                uniqueness_use_cookies: campaign.uniqueness_use_cookies,
                parameters: campaign.parameters,
                cost_type: campaign.cost_type,
                cost_value: campaign.cost_value.to_string(),
                cost_currency: campaign.cost_currency,
                state: campaign.state,
                notes: campaign.notes,
                streams: Default::default(),
            };
            out.campaigns.push(Stored {
                id,
                key,
                file,
                decl,
            });
        }
        let mut filters: HashMap<i64, Vec<FilterDecl>> = HashMap::new();
        for row in sqlx::query_as::<_, FilterRow>(
            "SELECT id, stream_id, name, mode, payload FROM stream_filters ORDER BY stream_id, position, id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let filter = row.into_filter()?;
            filters.entry(filter.stream_id).or_default().push(FilterDecl {
                name: filter.name,
                mode: filter.mode,
                payload: payload(filter.payload),
            });
        }
        let mut landings: HashMap<i64, Vec<LandingShare>> = HashMap::new();
        for target in self.stream_targets("landing", ACTIVE, None).await? {
            if let Some(key) = landing_keys.get(&target.target_id) {
                landings
                    .entry(target.stream_id)
                    .or_default()
                    .push(LandingShare {
                        landing: key.clone(),
                        share: target.share,
                    });
            }
        }
        let mut offers: HashMap<i64, Vec<OfferShare>> = HashMap::new();
        for target in self.stream_targets("offer", ACTIVE, None).await? {
            if let Some(key) = offer_keys.get(&target.target_id) {
                offers
                    .entry(target.stream_id)
                    .or_default()
                    .push(OfferShare {
                        offer: key.clone(),
                        share: target.share,
                    });
            }
        }
        let mut triggers: HashMap<i64, Vec<TriggerDecl>> = HashMap::new();
        for row in sqlx::query_as::<_, TriggerRow>(
            "SELECT id, stream_id, condition, action, target, interval_seconds, payload, enabled \
             FROM stream_triggers ORDER BY stream_id, position, id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let trigger = row.into_trigger()?;
            triggers
                .entry(trigger.stream_id)
                .or_default()
                .push(TriggerDecl {
                    condition: trigger.condition,
                    action: trigger.action,
                    target: trigger.target,
                    interval_seconds: trigger.interval_seconds,
                    payload: trigger.payload,
                    enabled: trigger.enabled,
                });
        }
        for (stream, file) in self.filed::<StreamRow>(STREAM_COLUMNS, "streams").await? {
            let stream = stream.into_stream(Vec::new(), Vec::new(), Vec::new())?;
            let Some(campaign_key) = campaign_keys.get(&stream.campaign_id) else {
                continue;
            };
            let id = stream.id;
            let key = file
                .file_key
                .unwrap_or_else(|| format!("{campaign_key}.{}", generated_key("stream", id)));
            let decl = StreamDecl {
                name: stream.name,
                stream_type: stream.stream_type,
                position: stream.position,
                weight: stream.weight,
                schema: stream.schema,
                action: stream.action_type,
                payload: payload(stream.action_payload),
                collect_clicks: stream.collect_clicks,
                filter_or: stream.filter_or,
                state: stream.state,
                comments: stream.comments,
                filters: filters.remove(&id).unwrap_or_default(),
                landings: landings.remove(&id).unwrap_or_default(),
                offers: offers.remove(&id).unwrap_or_default(),
                triggers: triggers.remove(&id).unwrap_or_default(),
            };
            out.streams.push(Stored {
                id,
                key,
                file: file.file_source,
                decl,
            });
        }
        Ok(out)
    }

    async fn apply_files(&self, plan: &FilePlan) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut ids = plan.ids.clone();
        let now = unix_now();
        // Archive first, freeing an archived campaign's alias and token for the
        // objects this load declares.
        for (kind, id) in &plan.archive {
            let mut values = vec![
                ("state", text("deleted")),
                ("updated_at", SqlValue::Int(now)),
            ];
            if *kind == ObjectKind::Campaign {
                // An archived campaign's alias and token are set apart, so that an object this
                // load declares may take them.
                let (alias, token): (String, String) =
                    sqlx::query_as("SELECT alias, token FROM campaigns WHERE id = $1")
                        .bind(*id)
                        .fetch_one(&mut *tx)
                        .await?;
                values.push(("alias", SqlValue::Text(format!("{alias}~{id}"))));
                values.push(("token", SqlValue::Text(format!("{token}x{id}"))));
            }
            let write = ObjectWrite {
                table: managed_table(*kind),
                id: Some(*id),
                values,
                children: Vec::new(),
            };
            Self::write_object(&mut tx, &write).await?;
        }
        for upsert in &plan.affiliate_networks {
            let d = &upsert.decl;
            let values = vec![
                ("name", text(&d.name)),
                ("postback_url", text(&d.postback_url)),
                ("offer_param", text(&d.offer_param)),
                ("state", text(d.state.as_str())),
                ("notes", text(&d.notes)),
            ];
            let what = || format!("affiliate network `{}`", upsert.key);
            let id = Self::write_filed(
                &mut tx,
                &tables::AFFILIATE_NETWORKS,
                upsert,
                values,
                Vec::new(),
                &what,
            )
            .await?;
            ids.insert((ObjectKind::AffiliateNetwork, upsert.key.clone()), id);
        }
        for upsert in &plan.traffic_sources {
            let d = &upsert.decl;
            let values = vec![
                ("name", text(&d.name)),
                ("postback_url", text(&d.postback_url)),
                ("parameters", SqlValue::Text(d.parameters.to_string())),
                ("state", text(d.state.as_str())),
                ("notes", text(&d.notes)),
            ];
            let what = || format!("traffic source `{}`", upsert.key);
            let id = Self::write_filed(
                &mut tx,
                &tables::TRAFFIC_SOURCES,
                upsert,
                values,
                Vec::new(),
                &what,
            )
            .await?;
            ids.insert((ObjectKind::TrafficSource, upsert.key.clone()), id);
        }
        for upsert in &plan.offers {
            let d = &upsert.decl;
            let network = reference(&ids, ObjectKind::AffiliateNetwork, &d.affiliate_network)?;
            let values = vec![
                ("name", text(&d.name)),
                ("url", text(&d.url)),
                ("affiliate_network_id", int(network)),
                ("payout_value_micros", SqlValue::Int(money(&d.payout))),
                ("payout_currency", text(&d.payout_currency)),
                ("payout_type", text(&d.payout_type)),
                (
                    "country",
                    SqlValue::Text(
                        serde_json::to_string(&d.country).unwrap_or_else(|_| "[]".into()),
                    ),
                ),
                ("daily_cap", SqlValue::Int(d.daily_cap)),
                ("conversion_timezone", text(&d.conversion_timezone)),
                ("action_type", text(&d.action)),
                ("action_payload", json_text(&d.payload)),
                ("state", text(d.state.as_str())),
                ("notes", text(&d.notes)),
            ];
            let what = || format!("offer `{}`", upsert.key);
            let id = Self::write_filed(&mut tx, &tables::OFFERS, upsert, values, Vec::new(), &what)
                .await?;
            ids.insert((ObjectKind::Offer, upsert.key.clone()), id);
        }
        for upsert in &plan.landings {
            let d = &upsert.decl;
            let values = vec![
                ("name", text(&d.name)),
                ("url", text(&d.url)),
                ("landing_type", text(&d.landing_type)),
                ("action_type", text(&d.action)),
                ("action_payload", json_text(&d.payload)),
                ("offer_count", SqlValue::Int(d.offer_count)),
                ("state", text(d.state.as_str())),
                ("notes", text(&d.notes)),
            ];
            let what = || format!("landing `{}`", upsert.key);
            let id = Self::write_filed(
                &mut tx,
                &tables::LANDINGS,
                upsert,
                values,
                Vec::new(),
                &what,
            )
            .await?;
            ids.insert((ObjectKind::Landing, upsert.key.clone()), id);
        }
        for upsert in &plan.campaigns {
            let d = &upsert.decl;
            let source = reference(&ids, ObjectKind::TrafficSource, &d.traffic_source)?;
            let token = if d.token.is_empty() {
                crate::ids::random_token(32)
            } else {
                d.token.clone()
            };
            let bind_visitors = match d.bind_visitors.as_str() {
                "" => SqlValue::Null,
                bind => text(bind),
            };
            let values = vec![
                ("alias", text(d.alias.trim())),
                ("name", text(&d.name)),
                ("type", text(d.campaign_type.as_str())),
                ("token", SqlValue::Text(token)),
                ("cookies_ttl", SqlValue::Int(d.cookies_ttl)),
                ("bind_visitors", bind_visitors),
                ("traffic_source_id", int(source)),
                ("uniqueness_method", text(&d.uniqueness_method)),
                (
                    "uniqueness_use_cookies",
                    SqlValue::Bool(d.uniqueness_use_cookies),
                ),
                ("parameters", SqlValue::Text(d.parameters.to_string())),
                ("cost_type", text(&d.cost_type)),
                ("cost_value_micros", SqlValue::Int(money(&d.cost_value))),
                ("cost_currency", text(&d.cost_currency)),
                ("state", text(d.state.as_str())),
                ("notes", text(&d.notes)),
            ];
            let what = || {
                format!(
                    "a campaign with the alias `{}` or the same token (campaign `{}`)",
                    d.alias, upsert.key
                )
            };
            let id = Self::write_filed(
                &mut tx,
                &tables::CAMPAIGNS,
                upsert,
                values,
                Vec::new(),
                &what,
            )
            .await?;
            ids.insert((ObjectKind::Campaign, upsert.key.clone()), id);
        }
        for (campaign, upsert) in &plan.streams {
            let d = &upsert.decl;
            let campaign_id =
                reference(&ids, ObjectKind::Campaign, campaign)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("stream `{}` has no campaign", upsert.key))
                })?;
            let values = vec![
                ("campaign_id", SqlValue::Int(campaign_id)),
                ("type", text(d.stream_type.as_str())),
                ("name", text(&d.name)),
                ("position", SqlValue::Int(d.position)),
                ("weight", SqlValue::Int(d.weight)),
                ("schema", text(d.schema.as_str())),
                ("action_type", text(&d.action)),
                ("action_payload", json_text(&d.payload)),
                ("collect_clicks", SqlValue::Bool(d.collect_clicks)),
                ("filter_or", SqlValue::Bool(d.filter_or)),
                ("state", text(d.state.as_str())),
                ("comments", text(&d.comments)),
            ];
            let filters = d.filters.iter().enumerate().map(|(position, filter)| {
                vec![
                    ("position", SqlValue::Int(position as i64)),
                    ("name", text(&filter.name)),
                    ("mode", text(&filter.mode)),
                    ("payload", json_text(&filter.payload)),
                ]
            });
            let mut landings = Vec::new();
            for target in &d.landings {
                let landing = reference(&ids, ObjectKind::Landing, &target.landing)?;
                landings.push(vec![
                    ("landing_id", int(landing)),
                    ("share", SqlValue::Int(target.share)),
                    ("created_at", SqlValue::Int(now)),
                    ("updated_at", SqlValue::Int(now)),
                ]);
            }
            let mut offers = Vec::new();
            for target in &d.offers {
                let offer = reference(&ids, ObjectKind::Offer, &target.offer)?;
                offers.push(vec![
                    ("offer_id", int(offer)),
                    ("share", SqlValue::Int(target.share)),
                    ("created_at", SqlValue::Int(now)),
                    ("updated_at", SqlValue::Int(now)),
                ]);
            }
            let triggers = d.triggers.iter().enumerate().map(|(position, trigger)| {
                vec![
                    ("position", SqlValue::Int(position as i64)),
                    ("condition", text(&trigger.condition)),
                    ("action", text(&trigger.action)),
                    ("target", text(&trigger.target)),
                    ("interval_seconds", SqlValue::Int(trigger.interval_seconds)),
                    ("payload", SqlValue::Text(trigger.payload.to_string())),
                    ("enabled", SqlValue::Bool(trigger.enabled)),
                ]
            });
            let children = vec![
                ChildRows::of_stream(&tables::STREAM_FILTERS, filters.collect()),
                ChildRows::of_stream(&tables::STREAM_LANDINGS, landings),
                ChildRows::of_stream(&tables::STREAM_OFFERS, offers),
                ChildRows::of_stream(&tables::STREAM_TRIGGERS, triggers.collect()),
            ];
            let what = || format!("stream `{}`", upsert.key);
            Self::write_filed(&mut tx, &tables::STREAMS, upsert, values, children, &what).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn file_source(&self, kind: ObjectKind, id: i64) -> Result<Option<String>, StoreError> {
        // The table name comes from a closed enum, never from input.
        let sql = format!("SELECT file_source FROM {} WHERE id = $1", kind.table());
        let found: Option<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.flatten())
    }
}
