//! Store support for config-as-files (`crate::files`): reading every object in the file format
//! (export, diff, planning a load) and applying a load's plan in one transaction. Implemented once
//! for both backends on `SqlStore<DB>` (see `sql_store.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Encode, Executor, FromRow, Row, Type};

use crate::files::{
    CampaignDecl, FilePlan, FilterDecl, LandingDecl, LandingShare, NetworkDecl, ObjectKind,
    OfferDecl, OfferShare, SourceDecl, Stored, StoredObjects, StreamDecl, TriggerDecl,
};
use crate::model::{Money, ObjectState, StreamTarget, unix_now};
use crate::store::rows::{
    CAMPAIGN_COLUMNS, CampaignRow, FilterRow, LANDING_COLUMNS, LandingRow, OFFER_COLUMNS, OfferRow,
    STREAM_COLUMNS, StreamRow, TargetRow, TriggerRow, json, parse_enum,
};

use super::StoreError;
use super::sql_store::{Sql, SqlDb, SqlStore};

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

fn conflict(error: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &error {
        sqlx::Error::Database(e) if e.is_unique_violation() => {
            StoreError::Conflict { what: what() }
        }
        _ => error.into(),
    }
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

    /// The active landings (`kind` = `landing`) or offers of every stream.
    async fn active_targets(&self, kind: &str) -> Result<Vec<StreamTarget>, StoreError> {
        let sql = format!(
            "SELECT id, stream_id, {kind}_id AS target_id, share, state FROM stream_{kind}s \
             WHERE state = 'active' ORDER BY stream_id, id"
        );
        let rows: Vec<TargetRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(TargetRow::into_target).collect()
    }

    /// Runs an UPDATE (when `id` is set) or an INSERT … RETURNING id; returns the id.
    pub(super) async fn write_row(
        tx: &mut sqlx::Transaction<'_, DB>,
        id: Option<i64>,
        update: &'static str,
        insert: &'static str,
        bind: &(
             dyn Fn(
            sqlx::query::Query<'static, DB, <DB as sqlx::Database>::Arguments>,
        ) -> sqlx::query::Query<'static, DB, <DB as sqlx::Database>::Arguments>
                 + Sync
         ),
        what: &(dyn Fn() -> String + Sync),
    ) -> Result<i64, StoreError> {
        let now = unix_now();
        match id {
            Some(id) => {
                bind(sqlx::query(update))
                    .bind(now)
                    .bind(id)
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| conflict(e, what))?;
                Ok(id)
            }
            None => {
                let row = bind(sqlx::query(insert))
                    .bind(now)
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(|e| conflict(e, what))?;
                Ok(row.try_get("id")?)
            }
        }
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
        for target in self.active_targets("landing").await? {
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
        for target in self.active_targets("offer").await? {
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
            let sql = match kind {
                ObjectKind::Campaign => {
                    "UPDATE campaigns SET state = 'deleted', \
                    alias = alias || '~' || CAST(id AS TEXT), token = token || 'x' || CAST(id AS TEXT), \
                    updated_at = $1 WHERE id = $2"
                }
                ObjectKind::AffiliateNetwork => {
                    "UPDATE affiliate_networks SET state = 'deleted', updated_at = $1 WHERE id = $2"
                }
                ObjectKind::TrafficSource => {
                    "UPDATE traffic_sources SET state = 'deleted', updated_at = $1 WHERE id = $2"
                }
                ObjectKind::Offer => {
                    "UPDATE offers SET state = 'deleted', updated_at = $1 WHERE id = $2"
                }
                ObjectKind::Landing => {
                    "UPDATE landings SET state = 'deleted', updated_at = $1 WHERE id = $2"
                }
                ObjectKind::Stream => {
                    "UPDATE streams SET state = 'deleted', updated_at = $1 WHERE id = $2"
                }
            };
            sqlx::query(sql)
                .bind(now)
                .bind(*id)
                .execute(&mut *tx)
                .await?;
        }
        for upsert in &plan.affiliate_networks {
            let d = upsert.decl.clone();
            let (key, file) = (upsert.key.clone(), upsert.file.clone());
            let id = Self::write_row(
                &mut tx,
                upsert.id,
                "UPDATE affiliate_networks SET name = $1, postback_url = $2, offer_param = $3, state = $4, \
                 notes = $5, file_key = $6, file_source = $7, updated_at = $8 WHERE id = $9",
                "INSERT INTO affiliate_networks (name, postback_url, offer_param, state, notes, file_key, \
                 file_source, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
                &|q| q.bind(d.name.clone()).bind(d.postback_url.clone()).bind(d.offer_param.clone())
                    .bind(d.state.as_str()).bind(d.notes.clone()).bind(key.clone()).bind(file.clone()),
                &|| format!("affiliate network `{}`", upsert.key),
            )
            .await?;
            ids.insert((ObjectKind::AffiliateNetwork, upsert.key.clone()), id);
        }
        for upsert in &plan.traffic_sources {
            let d = upsert.decl.clone();
            let (key, file) = (upsert.key.clone(), upsert.file.clone());
            let id = Self::write_row(
                &mut tx,
                upsert.id,
                "UPDATE traffic_sources SET name = $1, postback_url = $2, parameters = $3, state = $4, \
                 notes = $5, file_key = $6, file_source = $7, updated_at = $8 WHERE id = $9",
                "INSERT INTO traffic_sources (name, postback_url, parameters, state, notes, file_key, \
                 file_source, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
                &|q| q.bind(d.name.clone()).bind(d.postback_url.clone()).bind(d.parameters.to_string())
                    .bind(d.state.as_str()).bind(d.notes.clone()).bind(key.clone()).bind(file.clone()),
                &|| format!("traffic source `{}`", upsert.key),
            )
            .await?;
            ids.insert((ObjectKind::TrafficSource, upsert.key.clone()), id);
        }
        for upsert in &plan.offers {
            let d = upsert.decl.clone();
            let (key, file) = (upsert.key.clone(), upsert.file.clone());
            let network = reference(&ids, ObjectKind::AffiliateNetwork, &d.affiliate_network)?;
            let payout = d.payout.parse::<Money>().unwrap_or_default().micros();
            let country = serde_json::to_string(&d.country).unwrap_or_else(|_| "[]".into());
            let payload = d
                .payload
                .clone()
                .unwrap_or(serde_json::Value::Null)
                .to_string();
            let id = Self::write_row(
                &mut tx,
                upsert.id,
                "UPDATE offers SET name = $1, url = $2, affiliate_network_id = $3, payout_value_micros = $4, \
                 payout_currency = $5, payout_type = $6, country = $7, daily_cap = $8, conversion_timezone = $9, \
                 action_type = $10, action_payload = $11, state = $12, notes = $13, file_key = $14, \
                 file_source = $15, updated_at = $16 WHERE id = $17",
                "INSERT INTO offers (name, url, affiliate_network_id, payout_value_micros, payout_currency, \
                 payout_type, country, daily_cap, conversion_timezone, action_type, action_payload, state, notes, \
                 file_key, file_source, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16) RETURNING id",
                &|q| q.bind(d.name.clone()).bind(d.url.clone()).bind(network).bind(payout)
                    .bind(d.payout_currency.clone()).bind(d.payout_type.clone()).bind(country.clone())
                    .bind(d.daily_cap).bind(d.conversion_timezone.clone()).bind(d.action.clone())
                    .bind(payload.clone()).bind(d.state.as_str()).bind(d.notes.clone())
                    .bind(key.clone()).bind(file.clone()),
                &|| format!("offer `{}`", upsert.key),
            )
            .await?;
            ids.insert((ObjectKind::Offer, upsert.key.clone()), id);
        }
        for upsert in &plan.landings {
            let d = upsert.decl.clone();
            let (key, file) = (upsert.key.clone(), upsert.file.clone());
            let payload = d
                .payload
                .clone()
                .unwrap_or(serde_json::Value::Null)
                .to_string();
            let id = Self::write_row(
                &mut tx,
                upsert.id,
                "UPDATE landings SET name = $1, url = $2, landing_type = $3, action_type = $4, \
                 action_payload = $5, offer_count = $6, state = $7, notes = $8, file_key = $9, \
                 file_source = $10, updated_at = $11 WHERE id = $12",
                "INSERT INTO landings (name, url, landing_type, action_type, action_payload, offer_count, \
                 state, notes, file_key, file_source, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
                &|q| q.bind(d.name.clone()).bind(d.url.clone()).bind(d.landing_type.clone())
                    .bind(d.action.clone()).bind(payload.clone()).bind(d.offer_count)
                    .bind(d.state.as_str()).bind(d.notes.clone()).bind(key.clone()).bind(file.clone()),
                &|| format!("landing `{}`", upsert.key),
            )
            .await?;
            ids.insert((ObjectKind::Landing, upsert.key.clone()), id);
        }
        for upsert in &plan.campaigns {
            let d = upsert.decl.clone();
            let (key, file) = (upsert.key.clone(), upsert.file.clone());
            let source = reference(&ids, ObjectKind::TrafficSource, &d.traffic_source)?;
            let token = if d.token.is_empty() {
                crate::ids::random_token(32)
            } else {
                d.token.clone()
            };
            let bind_visitors = Some(d.bind_visitors.clone()).filter(|b| !b.is_empty());
            let cost = d.cost_value.parse::<Money>().unwrap_or_default().micros();
            let alias = d.alias.trim().to_string();
            let id = Self::write_row(
                &mut tx,
                upsert.id,
                "UPDATE campaigns SET alias = $1, name = $2, type = $3, token = $4, cookies_ttl = $5, \
                 bind_visitors = $6, traffic_source_id = $7, uniqueness_method = $8, \
                 uniqueness_use_cookies = $9, parameters = $10, cost_type = $11, cost_value_micros = $12, \
                 cost_currency = $13, state = $14, notes = $15, file_key = $16, file_source = $17, \
                 updated_at = $18 WHERE id = $19",
                "INSERT INTO campaigns (alias, name, type, token, cookies_ttl, bind_visitors, traffic_source_id, \
                 uniqueness_method, uniqueness_use_cookies, parameters, cost_type, cost_value_micros, \
                 cost_currency, state, notes, file_key, file_source, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18) \
                 RETURNING id",
                &|q| q.bind(alias.clone()).bind(d.name.clone()).bind(d.campaign_type.as_str())
                    .bind(token.clone()).bind(d.cookies_ttl).bind(bind_visitors.clone()).bind(source)
                    .bind(d.uniqueness_method.clone()).bind(d.uniqueness_use_cookies)
                    .bind(d.parameters.to_string()).bind(d.cost_type.clone()).bind(cost)
                    .bind(d.cost_currency.clone()).bind(d.state.as_str()).bind(d.notes.clone())
                    .bind(key.clone()).bind(file.clone()),
                &|| format!("a campaign with the alias `{}` or the same token (campaign `{}`)", d.alias, upsert.key),
            )
            .await?;
            ids.insert((ObjectKind::Campaign, upsert.key.clone()), id);
        }
        for (campaign, upsert) in &plan.streams {
            let d = upsert.decl.clone();
            let (key, file) = (upsert.key.clone(), upsert.file.clone());
            let campaign_id = reference(&ids, ObjectKind::Campaign, campaign)?
                .ok_or_else(|| StoreError::Corrupt(format!("stream `{key}` has no campaign")))?;
            let payload = d
                .payload
                .clone()
                .unwrap_or(serde_json::Value::Null)
                .to_string();
            let id = Self::write_row(
                &mut tx,
                upsert.id,
                "UPDATE streams SET campaign_id = $1, type = $2, name = $3, position = $4, weight = $5, \
                 schema = $6, action_type = $7, action_payload = $8, collect_clicks = $9, filter_or = $10, \
                 state = $11, comments = $12, file_key = $13, file_source = $14, updated_at = $15 WHERE id = $16",
                "INSERT INTO streams (campaign_id, type, name, position, weight, schema, action_type, \
                 action_payload, collect_clicks, filter_or, state, comments, file_key, file_source, \
                 created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) RETURNING id",
                &|q| q.bind(campaign_id).bind(d.stream_type.as_str()).bind(d.name.clone())
                    .bind(d.position).bind(d.weight).bind(d.schema.as_str()).bind(d.action.clone())
                    .bind(payload.clone()).bind(d.collect_clicks).bind(d.filter_or)
                    .bind(d.state.as_str()).bind(d.comments.clone()).bind(key.clone()).bind(file.clone()),
                &|| format!("stream `{}`", upsert.key),
            )
            .await?;
            for table in [
                "DELETE FROM stream_filters WHERE stream_id = $1",
                "DELETE FROM stream_landings WHERE stream_id = $1",
                "DELETE FROM stream_offers WHERE stream_id = $1",
                "DELETE FROM stream_triggers WHERE stream_id = $1",
            ] {
                sqlx::query(table).bind(id).execute(&mut *tx).await?;
            }
            for (position, filter) in d.filters.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO stream_filters (stream_id, position, name, mode, payload) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(position as i64)
                .bind(filter.name.clone())
                .bind(filter.mode.clone())
                .bind(filter.payload.clone().unwrap_or(serde_json::Value::Null).to_string())
                .execute(&mut *tx)
                .await?;
            }
            for target in &d.landings {
                let landing = reference(&ids, ObjectKind::Landing, &target.landing)?;
                sqlx::query(
                    "INSERT INTO stream_landings (stream_id, landing_id, share, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $4)",
                )
                .bind(id)
                .bind(landing)
                .bind(target.share)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            for target in &d.offers {
                let offer = reference(&ids, ObjectKind::Offer, &target.offer)?;
                sqlx::query(
                    "INSERT INTO stream_offers (stream_id, offer_id, share, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $4)",
                )
                .bind(id)
                .bind(offer)
                .bind(target.share)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            for (position, trigger) in d.triggers.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO stream_triggers (stream_id, position, condition, action, target, \
                     interval_seconds, payload, enabled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(id)
                .bind(position as i64)
                .bind(trigger.condition.clone())
                .bind(trigger.action.clone())
                .bind(trigger.target.clone())
                .bind(trigger.interval_seconds)
                .bind(trigger.payload.to_string())
                .bind(trigger.enabled)
                .execute(&mut *tx)
                .await?;
            }
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
