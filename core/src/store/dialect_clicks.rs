//! What the other vendors' click APIs keep ([`DialectClickStore`]): clicks written at once with
//! the dialect's record, idempotency keys, profiles, the click log they list.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Encode, Executor, FromRow, QueryBuilder, Row, Type};

use crate::model::unix_now;
use crate::store::click_log::{ColumnReader, read_record};
use crate::store::{
    ClickKey, ClickProfile, ClickRecord, CreatedClick, DialectClick, LinkMetrics, LogQuery,
    LogValue, NewProfile, ProfileContact,
};

use super::StoreError;
use super::sql_store::{
    Query, RowsAffected, Sql, SqlDb, SqlStore, is_unique_violation, placeholders,
};

/// The click dialects' role: clicks they write at once, their keys and profiles, and the click
/// log they list.
#[async_trait]
pub trait DialectClickStore: Send + Sync {
    /// A page of the click log (clicks with their offer, traffic source, conversions and what
    /// the dialects keep about them).
    async fn click_log(&self, query: &LogQuery) -> Result<Vec<ClickRecord>, StoreError>;

    /// How many clicks match the query's conditions (limit and offset ignored).
    async fn count_click_log(&self, query: &LogQuery) -> Result<i64, StoreError>;

    /// Writes a click now, in one transaction with the dialect's record of it (the click
    /// dialects answer with a stored click). With a `key`, an unexpired claim of the same key
    /// wins: nothing is written and its click is returned with `existed`.
    async fn create_dialect_click(
        &self,
        new: &DialectClick,
        key: Option<&ClickKey>,
    ) -> Result<CreatedClick, StoreError>;

    /// The sub id an unexpired claim of `key` names.
    async fn click_by_key(
        &self,
        dialect: &str,
        key: &ClickKey,
    ) -> Result<Option<String>, StoreError>;

    /// Forgets key claims made before `before`.
    async fn prune_click_keys(&self, before: i64) -> Result<u64, StoreError>;

    /// Deletes a click and what the dialects keep about it (a profile no other click uses
    /// goes too). False when there is no such click.
    async fn delete_click(&self, sub_id: &str) -> Result<bool, StoreError>;

    /// Sets the profile of a click: the profile with the same `uuid` if there is one, else the
    /// click's current profile, else a new one; its contacts are replaced. Returns the
    /// profile's id, or `None` when there is no such click.
    async fn set_click_profile(
        &self,
        sub_id: &str,
        profile: &NewProfile,
    ) -> Result<Option<i64>, StoreError>;

    /// Profiles with their contacts.
    async fn click_profiles(&self, ids: &[i64]) -> Result<Vec<ClickProfile>, StoreError>;

    /// Click, unique click, registration and conversion counts of campaigns.
    async fn link_metrics(
        &self,
        campaign_ids: &[i64],
    ) -> Result<Vec<(i64, LinkMetrics)>, StoreError>;
}

/// Reads a row of the click log by column name.
struct Reader<'r, R>(&'r R);

impl<R> ColumnReader for Reader<'_, R>
where
    R: sqlx::Row,
    for<'n> &'n str: ColumnIndex<R>,
    i64: Sql<R::Database>,
    bool: Sql<R::Database>,
    String: Sql<R::Database>,
    Option<i64>: Sql<R::Database>,
    Option<f64>: Sql<R::Database>,
    Option<String>: Sql<R::Database>,
{
    fn text(&self, name: &str) -> Result<String, StoreError> {
        Ok(self.0.try_get(name)?)
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.0.try_get(name)?)
    }
    fn int(&self, name: &str) -> Result<i64, StoreError> {
        Ok(self.0.try_get(name)?)
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.0.try_get(name)?)
    }
    fn opt_float(&self, name: &str) -> Result<Option<f64>, StoreError> {
        Ok(self.0.try_get(name)?)
    }
    fn boolean(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.0.try_get(name)?)
    }
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
    pub(super) fn bind_log_values(
        mut query: Query<'_, DB>,
        values: Vec<LogValue>,
    ) -> Query<'_, DB> {
        for value in values {
            query = match value {
                LogValue::Text(v) => query.bind(v),
                LogValue::Int(v) => query.bind(v),
                LogValue::Float(v) => query.bind(v),
            };
        }
        query
    }

    /// Deletes a profile that no click uses any more.
    pub(super) async fn delete_orphan_profile(
        conn: &mut <DB as sqlx::Database>::Connection,
        profile_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM click_profiles WHERE id = $1 \
             AND NOT EXISTS (SELECT 1 FROM dialect_clicks WHERE profile_id = $1)",
        )
        .bind(profile_id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl<DB> DialectClickStore for SqlStore<DB>
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
    async fn click_log(&self, query: &LogQuery) -> Result<Vec<ClickRecord>, StoreError> {
        let (sql, values) = query.select_sql();
        Self::bind_log_values(sqlx::query(sqlx::AssertSqlSafe(sql)), values)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| read_record(&Reader(row)))
            .collect()
    }

    async fn count_click_log(&self, query: &LogQuery) -> Result<i64, StoreError> {
        let (sql, values) = query.count_sql();
        let row = Self::bind_log_values(sqlx::query(sqlx::AssertSqlSafe(sql)), values)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    async fn create_dialect_click(
        &self,
        new: &DialectClick,
        key: Option<&ClickKey>,
    ) -> Result<CreatedClick, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The rollup lock first (PostgreSQL), before any row lock: writers that
        // delete keys take it first too.
        Self::lock_rollups(&mut tx, true).await?;
        if let Some(key) = key {
            // Take the key unless an unexpired claim holds it; a concurrent claim of
            // the same key waits for this transaction and then loses.
            let claimed: Option<String> = sqlx::query_scalar(
                "INSERT INTO dialect_click_keys (dialect, key, sub_id, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (dialect, key) DO UPDATE SET sub_id = excluded.sub_id, created_at = excluded.created_at \
                 WHERE dialect_click_keys.created_at < $5 RETURNING sub_id",
            )
            .bind(new.dialect.clone())
            .bind(key.key.clone())
            .bind(new.click.sub_id.clone())
            .bind(new.created_at)
            .bind(key.window_start)
            .fetch_optional(&mut *tx)
            .await?;
            if claimed.is_none() {
                let sub_id: String = sqlx::query_scalar(
                    "SELECT sub_id FROM dialect_click_keys WHERE dialect = $1 AND key = $2",
                )
                .bind(new.dialect.clone())
                .bind(key.key.clone())
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(CreatedClick {
                    sub_id,
                    existed: true,
                });
            }
        }
        let this_click = |builder: &mut QueryBuilder<DB>| {
            builder
                .push(" WHERE sub_id = ")
                .push_bind(new.click.sub_id.clone());
        };
        Self::adjust_rollups(&mut tx, -1, crate::store::rollups::Part::All, &this_click).await?;
        Self::insert_click_rows(&mut tx, std::slice::from_ref(&new.click)).await?;
        Self::adjust_rollups(&mut tx, 1, crate::store::rollups::Part::All, &this_click).await?;
        sqlx::query(
            "INSERT INTO dialect_clicks (sub_id, dialect, uuid, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (sub_id) DO NOTHING",
        )
        .bind(new.click.sub_id.clone())
        .bind(new.dialect.clone())
        .bind(new.uuid.clone())
        .bind(new.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(CreatedClick {
            sub_id: new.click.sub_id.clone(),
            existed: false,
        })
    }

    async fn click_by_key(
        &self,
        dialect: &str,
        key: &ClickKey,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT sub_id FROM dialect_click_keys WHERE dialect = $1 AND key = $2 AND created_at >= $3",
        )
        .bind(dialect.to_string())
        .bind(key.key.clone())
        .bind(key.window_start)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn prune_click_keys(&self, before: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM dialect_click_keys WHERE created_at < $1")
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn delete_click(&self, sub_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        Self::lock_rollups(&mut tx, true).await?;
        Self::adjust_rollups(
            &mut tx,
            -1,
            crate::store::rollups::Part::All,
            &|builder: &mut QueryBuilder<DB>| {
                builder
                    .push(" WHERE sub_id = ")
                    .push_bind(sub_id.to_string());
            },
        )
        .await?;
        let profile: Option<Option<i64>> =
            sqlx::query_scalar("SELECT profile_id FROM dialect_clicks WHERE sub_id = $1")
                .bind(sub_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        for sql in [
            "DELETE FROM dialect_clicks WHERE sub_id = $1",
            "DELETE FROM dialect_click_keys WHERE sub_id = $1",
        ] {
            sqlx::query(sql)
                .bind(sub_id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        let deleted = sqlx::query("DELETE FROM clicks WHERE sub_id = $1")
            .bind(sub_id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if let Some(Some(profile_id)) = profile {
            Self::delete_orphan_profile(&mut tx, profile_id).await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn set_click_profile(
        &self,
        sub_id: &str,
        profile: &NewProfile,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let clicked_at: Option<i64> =
            sqlx::query_scalar("SELECT created_at FROM clicks WHERE sub_id = $1")
                .bind(sub_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(clicked_at) = clicked_at else {
            return Ok(None);
        };
        let current: Option<i64> = sqlx::query_scalar::<_, Option<i64>>(
            "SELECT profile_id FROM dialect_clicks WHERE sub_id = $1",
        )
        .bind(sub_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .flatten();
        let same_uuid: Option<i64> = match &profile.uuid {
            Some(uuid) => {
                sqlx::query_scalar("SELECT id FROM click_profiles WHERE uuid = $1")
                    .bind(uuid.clone())
                    .fetch_optional(&mut *tx)
                    .await?
            }
            None => None,
        };
        let now = unix_now();
        let conflict = |e: sqlx::Error| {
            if is_unique_violation(&e) {
                StoreError::Conflict {
                    what: "a profile with this uuid".to_string(),
                }
            } else {
                e.into()
            }
        };
        let profile_id: i64 = match same_uuid.or(current) {
            Some(id) => {
                sqlx::query(
                    "UPDATE click_profiles SET uuid = $1, first_name = $2, last_name = $3, middle_name = $4, \
                     enabled = $5, country_name = $6, tag = $7, updated_at = $8 WHERE id = $9",
                )
                .bind(profile.uuid.clone())
                .bind(profile.first_name.clone())
                .bind(profile.last_name.clone())
                .bind(profile.middle_name.clone())
                .bind(profile.enabled)
                .bind(profile.country_name.clone())
                .bind(profile.tag.clone())
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(conflict)?;
                id
            }
            None => sqlx::query_scalar(
                "INSERT INTO click_profiles (uuid, first_name, last_name, middle_name, enabled, country_name, tag, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
            )
            .bind(profile.uuid.clone())
            .bind(profile.first_name.clone())
            .bind(profile.last_name.clone())
            .bind(profile.middle_name.clone())
            .bind(profile.enabled)
            .bind(profile.country_name.clone())
            .bind(profile.tag.clone())
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(conflict)?,
        };
        sqlx::query("DELETE FROM click_profile_contacts WHERE profile_id = $1")
            .bind(profile_id)
            .execute(&mut *tx)
            .await?;
        for (position, contact) in profile.contacts.iter().enumerate() {
            sqlx::query(
                "INSERT INTO click_profile_contacts (profile_id, position, kind, value, uuid) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(profile_id)
            .bind(position as i64)
            .bind(contact.key.clone())
            .bind(contact.value.clone())
            .bind(contact.uuid.clone())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO dialect_clicks (sub_id, dialect, profile_id, created_at, updated_at) VALUES ($1, '', $2, $3, $4) \
             ON CONFLICT (sub_id) DO UPDATE SET profile_id = excluded.profile_id, updated_at = excluded.updated_at",
        )
        .bind(sub_id.to_string())
        .bind(profile_id)
        .bind(clicked_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(previous) = current.filter(|previous| *previous != profile_id) {
            Self::delete_orphan_profile(&mut tx, previous).await?;
        }
        tx.commit().await?;
        Ok(Some(profile_id))
    }

    async fn click_profiles(&self, ids: &[i64]) -> Result<Vec<ClickProfile>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = placeholders(1, ids.len());
        let mut contacts: std::collections::HashMap<i64, Vec<ProfileContact>> =
            std::collections::HashMap::new();
        let sql = format!(
            "SELECT profile_id, kind, value, uuid FROM click_profile_contacts WHERE profile_id IN ({list}) \
             ORDER BY profile_id, position, id"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&self.pool).await? {
            let contact = ProfileContact::from_row(&row)?;
            contacts
                .entry(row.try_get("profile_id")?)
                .or_default()
                .push(contact);
        }
        let sql = format!(
            "SELECT id, uuid, first_name, last_name, middle_name, enabled, country_name, tag, created_at, updated_at \
             FROM click_profiles WHERE id IN ({list}) ORDER BY id"
        );
        let mut query = sqlx::query_as::<_, ClickProfile>(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(*id);
        }
        let mut profiles = query.fetch_all(&self.pool).await?;
        for profile in &mut profiles {
            profile.contacts = contacts.remove(&profile.id).unwrap_or_default();
        }
        Ok(profiles)
    }

    async fn link_metrics(
        &self,
        campaign_ids: &[i64],
    ) -> Result<Vec<(i64, LinkMetrics)>, StoreError> {
        let mut out = Vec::with_capacity(campaign_ids.len());
        for id in campaign_ids {
            let mut metrics = sqlx::query_as::<_, LinkMetrics>(
                "SELECT COUNT(*) AS clicks, \
                 COALESCE(SUM(CASE WHEN c.is_unique_campaign THEN 1 ELSE 0 END), 0) AS unique_clicks, \
                 COALESCE(SUM(CASE WHEN d.profile_id IS NOT NULL THEN 1 ELSE 0 END), 0) AS registrations \
                 FROM clicks c LEFT JOIN dialect_clicks d ON d.sub_id = c.sub_id WHERE c.campaign_id = $1",
            )
            .bind(*id)
            .fetch_one(&self.pool)
            .await?;
            metrics.conversions =
                sqlx::query_scalar("SELECT COUNT(*) FROM conversions WHERE campaign_id = $1")
                    .bind(*id)
                    .fetch_one(&self.pool)
                    .await?;
            out.push((*id, metrics));
        }
        Ok(out)
    }
}
