//! The conversions' roles: [`ConversionStore`] (the click a postback names, recording a
//! conversion with its outgoing postbacks, the received-postback log, parked postbacks) and
//! [`OutgoingQueue`] (what the sending worker needs). Implemented once for both backends on
//! `SqlStore<DB>` (see `sql_store.rs`).

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Type};

use crate::model::Money;
use crate::store::rollups;

use super::StoreError;
use super::outgoing_queue::QueuedPostback;
use super::postback_log::ReceivedPostback;
use super::sql_store::{RowsAffected, Sql, SqlDb, SqlStore};

/// A conversion's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConversionStatus {
    Lead,
    Sale,
    Rejected,
    Rebill,
}

impl ConversionStatus {
    pub const ALL: [ConversionStatus; 4] = [
        ConversionStatus::Lead,
        ConversionStatus::Sale,
        ConversionStatus::Rejected,
        ConversionStatus::Rebill,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConversionStatus::Lead => "lead",
            ConversionStatus::Sale => "sale",
            ConversionStatus::Rejected => "rejected",
            ConversionStatus::Rebill => "rebill",
        }
    }

    pub fn parse(text: &str) -> Option<ConversionStatus> {
        ConversionStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// The statuses a conversion may move to this one from: lead -> sale, lead -> rejected,
    /// sale -> rejected, rebill -> rejected. Nothing leaves `rejected`.
    pub fn predecessors(self) -> &'static [ConversionStatus] {
        match self {
            ConversionStatus::Sale => &[ConversionStatus::Lead],
            ConversionStatus::Rejected => &[
                ConversionStatus::Lead,
                ConversionStatus::Sale,
                ConversionStatus::Rebill,
            ],
            ConversionStatus::Lead | ConversionStatus::Rebill => &[],
        }
    }
}

/// What a postback needs to know about its click (and the click's offer).
#[derive(Debug, Clone, PartialEq)]
pub struct PostbackClick {
    pub click_id: i64,
    pub sub_id: String,
    pub campaign_id: i64,
    pub stream_id: Option<i64>,
    pub landing_id: Option<i64>,
    pub offer_id: Option<i64>,
    pub ts_id: Option<i64>,
    pub created_at: i64,
    pub affiliate_network_id: Option<i64>,
    /// The offer's payout (used when the postback names none) and its currency.
    pub payout: Money,
    pub payout_currency: String,
    /// The offer accepts several conversions per click (upsells, rebills), told apart by tid.
    pub upsell: bool,
}

/// A conversion to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConversion {
    pub click: PostbackClick,
    /// The key of the conversion with its sub id: the transaction id for offers with upsells
    /// and for rebills, else "" (one conversion per click).
    pub tid: String,
    pub status: ConversionStatus,
    /// The status word the network sent.
    pub original_status: String,
    /// In the tracker's currency, when the postback named a payout. A transition without one
    /// keeps the conversion's revenue.
    pub revenue: Option<Money>,
    /// The revenue of a new conversion without a payout (the offer's).
    pub default_revenue: Money,
    pub cost: Money,
    /// The currency the network paid in.
    pub currency: String,
    /// `sub_id_N` values to set on the click: (N, value).
    pub sub_id_updates: Vec<(usize, String)>,
    /// The postback's parameters (JSON), for the logs.
    pub params: String,
    pub at: i64,
}

/// What recording a conversion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversionOutcome {
    /// A new conversion.
    Accepted { id: i64 },
    /// The conversion moved from `from` to the new status.
    Transition { id: i64, from: ConversionStatus },
    /// The same conversion in the same status: nothing changed.
    Duplicate { id: i64 },
    /// A change the status rules forbid (`sale` -> `lead`, anything after `rejected`).
    Ignored { id: i64, current: ConversionStatus },
}

impl ConversionOutcome {
    pub fn name(self) -> &'static str {
        match self {
            ConversionOutcome::Accepted { .. } => "accepted",
            ConversionOutcome::Transition { .. } => "transition",
            ConversionOutcome::Duplicate { .. } => "duplicate",
            ConversionOutcome::Ignored { .. } => "ignored",
        }
    }

    pub fn id(self) -> i64 {
        match self {
            ConversionOutcome::Accepted { id }
            | ConversionOutcome::Transition { id, .. }
            | ConversionOutcome::Duplicate { id }
            | ConversionOutcome::Ignored { id, .. } => id,
        }
    }
}

/// A postback kept until its click is stored (the sub id was unknown when it came).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingPostback {
    pub id: i64,
    pub sub_id: String,
    /// Its parameters as received, a JSON object of texts.
    pub params: String,
    /// When it was received (Unix seconds): the conversion's time once applied.
    pub received_at: i64,
}

/// Where a conversion's postbacks go: the campaign's S2S postbacks (`[{method, statuses,
/// url}]`, JSON) and its traffic source's postback URL and statuses (JSON array).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostbackTargets {
    pub campaign_postbacks: String,
    pub traffic_source: Option<(String, String)>,
}

/// The outgoing postbacks of a conversion, given its id (see
/// [`ConversionStore::record_conversion`]).
pub type Outgoing<'a> = dyn Fn(i64) -> Vec<QueuedPostback> + Send + Sync + 'a;

/// The conversions' role: the click a postback names, recording a conversion (with its
/// outgoing postbacks), the received-postback log and parked postbacks.
#[async_trait]
pub trait ConversionStore: Send + Sync {
    /// The click a postback names, with its offer's payout rules.
    async fn postback_click(&self, sub_id: &str) -> Result<Option<PostbackClick>, StoreError>;

    /// Records a conversion in one transaction: a new (sub id, tid) is inserted, a known one
    /// moves only along the allowed transitions (a conditional update, so concurrent
    /// postbacks never count twice); the click's flags and revenue follow, its `sub_id_N`
    /// updates are applied, the postback is logged with the outcome, and when the conversion
    /// is new or moved, the postbacks `outgoing(conversion id)` returns are queued (so a crash
    /// never keeps the conversion without its outgoing postbacks, or the reverse).
    async fn record_conversion(
        &self,
        new: &NewConversion,
        outgoing: &Outgoing<'_>,
    ) -> Result<ConversionOutcome, StoreError>;

    /// Logs a postback that recorded nothing (unknown sub id, invalid); `id` is ignored.
    async fn log_received_postback(&self, entry: &ReceivedPostback) -> Result<(), StoreError>;

    /// Parks a postback whose click is not stored yet and logs it as `pending`, in one
    /// transaction.
    async fn park_postback(
        &self,
        pending: &PendingPostback,
        log: &ReceivedPostback,
    ) -> Result<(), StoreError>;

    /// How many postbacks for `sub_id` are parked.
    async fn parked_postbacks_for(&self, sub_id: &str) -> Result<i64, StoreError>;

    /// Parked postbacks whose click is stored now, oldest first, at most `limit`.
    async fn ready_postbacks(&self, limit: i64) -> Result<Vec<PendingPostback>, StoreError>;

    /// Parked postbacks received before `before` (their click never came), oldest first.
    async fn stale_postbacks(
        &self,
        before: i64,
        limit: i64,
    ) -> Result<Vec<PendingPostback>, StoreError>;

    /// Removes a parked postback (applied or expired); false when it was gone already.
    async fn unpark_postback(&self, id: i64) -> Result<bool, StoreError>;

    /// The postback configuration of a campaign and a traffic source.
    async fn postback_targets(
        &self,
        campaign_id: i64,
        ts_id: Option<i64>,
    ) -> Result<PostbackTargets, StoreError>;
}

const CONVERSION_COLUMNS: &str = "sub_id, tid, click_id, campaign_id, stream_id, landing_id, offer_id, ts_id, \
    affiliate_network_id, status, original_status, previous_status, revenue_micros, cost_micros, currency, \
    params, click_created_at, created_at, updated_at";

fn status_of(text: &str) -> Result<ConversionStatus, StoreError> {
    crate::store::rows::parse_enum(text, ConversionStatus::parse, "conversion status")
}

/// The click a postback names, with its offer's payout (`NULL`s when it has no offer).
#[derive(sqlx::FromRow)]
struct PostbackClickRow {
    id: i64,
    sub_id: String,
    campaign_id: i64,
    stream_id: Option<i64>,
    landing_id: Option<i64>,
    offer_id: Option<i64>,
    ts_id: Option<i64>,
    created_at: i64,
    affiliate_network_id: Option<i64>,
    payout_value_micros: Option<i64>,
    payout_currency: Option<String>,
    payout_upsell: Option<bool>,
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
    /// Queues an outgoing postback; false when its delivery was queued already.
    pub(super) async fn insert_outgoing_postback(
        conn: &mut <DB as sqlx::Database>::Connection,
        p: &QueuedPostback,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
                "INSERT INTO outgoing_postbacks (delivery_key, conversion_id, origin, method, url, body, attempts, next_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (delivery_key) DO NOTHING",
            )
            .bind(&p.delivery_key)
            .bind(p.conversion_id)
            .bind(&p.origin)
            .bind(&p.method)
            .bind(&p.url)
            .bind(&p.body)
            .bind(p.attempts)
            .bind(p.next_at)
            .bind(p.created_at)
            .execute(&mut *conn)
            .await?
            .rows_affected() > 0)
    }

    /// Appends to the received-postbacks log (`id` is ignored).
    pub(super) async fn insert_received_postback(
        conn: &mut <DB as sqlx::Database>::Connection,
        entry: &ReceivedPostback,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO received_postbacks (sub_id, tid, status, outcome, message, conversion_id, params, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(entry.sub_id.clone())
        .bind(entry.tid.clone())
        .bind(entry.status.clone())
        .bind(entry.outcome.clone())
        .bind(entry.message.clone())
        .bind(entry.conversion_id)
        .bind(entry.params.clone())
        .bind(entry.created_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl<DB> ConversionStore for SqlStore<DB>
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
    async fn postback_click(&self, sub_id: &str) -> Result<Option<PostbackClick>, StoreError> {
        let row = sqlx::query_as::<_, PostbackClickRow>(
            "SELECT c.id, c.sub_id, c.campaign_id, c.stream_id, c.landing_id, c.offer_id, c.ts_id, c.created_at, \
             o.affiliate_network_id, o.payout_value_micros, o.payout_currency, o.payout_upsell \
             FROM clicks c LEFT JOIN offers o ON o.id = c.offer_id WHERE c.sub_id = $1",
        )
        .bind(sub_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| PostbackClick {
            click_id: row.id,
            sub_id: row.sub_id,
            campaign_id: row.campaign_id,
            stream_id: row.stream_id,
            landing_id: row.landing_id,
            offer_id: row.offer_id,
            ts_id: row.ts_id,
            created_at: row.created_at,
            affiliate_network_id: row.affiliate_network_id,
            payout: Money::from_micros(row.payout_value_micros.unwrap_or(0)),
            payout_currency: row.payout_currency.unwrap_or_default(),
            upsell: row.payout_upsell.unwrap_or(false),
        }))
    }

    async fn record_conversion(
        &self,
        new: &NewConversion,
        outgoing: &crate::store::Outgoing<'_>,
    ) -> Result<ConversionOutcome, StoreError> {
        let click = &new.click;
        let mut tx = self.pool.begin().await?;
        // The rollups lose this click's sums first (a write: SQLite takes its write
        // lock before anything is read) and get them back at the end.
        Self::lock_rollups(&mut tx, true).await?;
        let this_click = |builder: &mut QueryBuilder<DB>| {
            builder
                .push(" WHERE sub_id = ")
                .push_bind(click.sub_id.clone());
        };
        Self::adjust_rollups(&mut tx, -1, rollups::Part::Conversions, &this_click).await?;
        let inserted: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "INSERT INTO conversions ({CONVERSION_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '', $12, $13, $14, $15, $16, $17, $17) \
             ON CONFLICT (sub_id, tid) DO NOTHING RETURNING id"
        )))
        .bind(click.sub_id.clone())
        .bind(new.tid.clone())
        .bind(click.click_id)
        .bind(click.campaign_id)
        .bind(click.stream_id)
        .bind(click.landing_id)
        .bind(click.offer_id)
        .bind(click.ts_id)
        .bind(click.affiliate_network_id)
        .bind(new.status.as_str())
        .bind(new.original_status.clone())
        .bind(new.revenue.unwrap_or(new.default_revenue).micros())
        .bind(new.cost.micros())
        .bind(new.currency.clone())
        .bind(new.params.clone())
        .bind(click.created_at)
        .bind(new.at)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = if let Some(id) = inserted {
            ConversionOutcome::Accepted { id }
        } else {
            let allowed: Vec<&str> = new
                .status
                .predecessors()
                .iter()
                .map(|s| s.as_str())
                .collect();
            let moved = if allowed.is_empty() {
                None
            } else {
                let mut update: QueryBuilder<DB> =
                    QueryBuilder::new("UPDATE conversions SET previous_status = status, status = ");
                update.push_bind(new.status.as_str());
                update
                    .push(", revenue_micros = COALESCE(")
                    .push_bind(new.revenue.map(|m| m.micros()));
                update
                    .push(", revenue_micros), updated_at = ")
                    .push_bind(new.at);
                update
                    .push(" WHERE sub_id = ")
                    .push_bind(click.sub_id.clone());
                update.push(" AND tid = ").push_bind(new.tid.clone());
                update.push(" AND status IN (");
                let mut list = update.separated(", ");
                for status in &allowed {
                    list.push_bind(*status);
                }
                update.push(") RETURNING id, previous_status");
                update
                    .build_query_as::<(i64, String)>()
                    .fetch_optional(&mut *tx)
                    .await?
            };
            match moved {
                Some((id, previous)) => ConversionOutcome::Transition {
                    id,
                    from: status_of(&previous)?,
                },
                None => {
                    let (id, current) = sqlx::query_as::<_, (i64, String)>(
                        "SELECT id, status FROM conversions WHERE sub_id = $1 AND tid = $2",
                    )
                    .bind(click.sub_id.clone())
                    .bind(new.tid.clone())
                    .fetch_one(&mut *tx)
                    .await?;
                    let current = status_of(&current)?;
                    if current == new.status {
                        ConversionOutcome::Duplicate { id }
                    } else {
                        ConversionOutcome::Ignored { id, current }
                    }
                }
            }
        };
        if matches!(
            outcome,
            ConversionOutcome::Accepted { .. } | ConversionOutcome::Transition { .. }
        ) {
            sqlx::query(
                "UPDATE clicks SET \
                 is_lead = EXISTS (SELECT 1 FROM conversions WHERE sub_id = $1 AND status = 'lead'), \
                 is_sale = EXISTS (SELECT 1 FROM conversions WHERE sub_id = $1 AND status IN ('sale', 'rebill')), \
                 is_rejected = EXISTS (SELECT 1 FROM conversions WHERE sub_id = $1 AND status = 'rejected'), \
                 revenue_micros = CAST(COALESCE((SELECT SUM(revenue_micros) FROM conversions \
                     WHERE sub_id = $1 AND status IN ('lead', 'sale', 'rebill')), 0) AS BIGINT) \
                 WHERE sub_id = $1",
            )
            .bind(click.sub_id.clone())
            .execute(&mut *tx)
            .await?;
        }
        if !new.sub_id_updates.is_empty() {
            let mut update: QueryBuilder<DB> = QueryBuilder::new("UPDATE clicks SET ");
            for (i, (n, value)) in new.sub_id_updates.iter().enumerate() {
                if i > 0 {
                    update.push(", ");
                }
                // N is checked against 1..=SUB_ID_COUNT by the caller; only digits reach SQL.
                update
                    .push(format!(
                        "sub_id_{}",
                        (*n).clamp(1, crate::model::SUB_ID_COUNT)
                    ))
                    .push(" = ")
                    .push_bind(value.clone());
            }
            update
                .push(" WHERE sub_id = ")
                .push_bind(click.sub_id.clone());
            update.build().execute(&mut *tx).await?;
        }
        Self::adjust_rollups(&mut tx, 1, rollups::Part::Conversions, &this_click).await?;
        if matches!(
            outcome,
            ConversionOutcome::Accepted { .. } | ConversionOutcome::Transition { .. }
        ) {
            for postback in outgoing(outcome.id()) {
                Self::insert_outgoing_postback(&mut tx, &postback).await?;
            }
        }
        let entry = ReceivedPostback {
            id: 0,
            sub_id: click.sub_id.clone(),
            tid: new.tid.clone(),
            status: new.status.as_str().into(),
            outcome: outcome.name().into(),
            message: String::new(),
            conversion_id: Some(outcome.id()),
            params: new.params.clone(),
            created_at: new.at,
        };
        Self::insert_received_postback(&mut tx, &entry).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn log_received_postback(&self, entry: &ReceivedPostback) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        Self::insert_received_postback(&mut conn, entry).await
    }

    async fn park_postback(
        &self,
        pending: &PendingPostback,
        log: &ReceivedPostback,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO pending_postbacks (sub_id, params, received_at) VALUES ($1, $2, $3)",
        )
        .bind(&pending.sub_id)
        .bind(&pending.params)
        .bind(pending.received_at)
        .execute(&mut *tx)
        .await?;
        Self::insert_received_postback(&mut tx, log).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn parked_postbacks_for(&self, sub_id: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM pending_postbacks WHERE sub_id = $1")
                .bind(sub_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn ready_postbacks(&self, limit: i64) -> Result<Vec<PendingPostback>, StoreError> {
        Ok(sqlx::query_as::<_, PendingPostback>(
            "SELECT p.id, p.sub_id, p.params, p.received_at FROM pending_postbacks p \
             WHERE EXISTS (SELECT 1 FROM clicks c WHERE c.sub_id = p.sub_id) ORDER BY p.id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn stale_postbacks(
        &self,
        before: i64,
        limit: i64,
    ) -> Result<Vec<PendingPostback>, StoreError> {
        Ok(sqlx::query_as::<_, PendingPostback>(
            "SELECT id, sub_id, params, received_at FROM pending_postbacks \
             WHERE received_at < $1 ORDER BY id LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn unpark_postback(&self, id: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query("DELETE FROM pending_postbacks WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected()
            > 0)
    }

    async fn postback_targets(
        &self,
        campaign_id: i64,
        ts_id: Option<i64>,
    ) -> Result<PostbackTargets, StoreError> {
        let campaign_postbacks: Option<String> =
            sqlx::query_scalar("SELECT postbacks FROM campaigns WHERE id = $1")
                .bind(campaign_id)
                .fetch_optional(&self.pool)
                .await?;
        let traffic_source = match ts_id {
            None => None,
            Some(id) => {
                sqlx::query_as::<_, (String, String)>(
                    "SELECT postback_url, postback_statuses FROM traffic_sources WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
            }
        };
        Ok(PostbackTargets {
            campaign_postbacks: campaign_postbacks.unwrap_or_else(|| "[]".into()),
            traffic_source,
        })
    }
}
