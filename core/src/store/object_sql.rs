//! The object layer's SQL ([`ObjectStore`] on `SqlStore<DB>`): the generic reads and the one
//! writer of the managed tables (`write_object`), which the Admin API, the campaign files and
//! the store's own creates all go through.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::{ColumnIndex, Encode, Executor, Row, Type};

use super::StoreError;
use super::objects::{
    ColumnType, ObjectStore, ObjectWrite, RowFilter, SqlValue, Table, column_type, conflict_or,
    insert_sql, where_clause,
};
use super::sql_store::{Query, RowsAffected, Sql, SqlDb, SqlStore};

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
    pub(super) fn bind_column(
        query: Query<'_, DB>,
        ty: ColumnType,
        value: SqlValue,
    ) -> Query<'_, DB> {
        match (value, ty) {
            (SqlValue::Null, ColumnType::Int) => query.bind(None::<i64>),
            (SqlValue::Null, ColumnType::Real) => query.bind(None::<f64>),
            (SqlValue::Null, ColumnType::Text) => query.bind(None::<String>),
            (SqlValue::Null, ColumnType::Bool) => query.bind(None::<bool>),
            (SqlValue::Int(n), ColumnType::Real) => query.bind(n as f64),
            (SqlValue::Int(n), ColumnType::Bool) => query.bind(n != 0),
            (SqlValue::Int(n), _) => query.bind(n),
            (SqlValue::Real(x), _) => query.bind(x),
            (SqlValue::Text(s), _) => query.bind(s),
            (SqlValue::Bool(b), ColumnType::Int) => query.bind(b as i64),
            (SqlValue::Bool(b), _) => query.bind(b),
        }
    }

    /// [`ObjectStore::object_write`] on an open transaction: the one writer of the managed
    /// tables (the Admin API and the campaign files both come through it).
    pub(super) async fn write_object(
        tx: &mut DB::Connection,
        write: &ObjectWrite,
    ) -> Result<Option<i64>, StoreError> {
        let table = write.table;
        let id = match write.id {
            None => {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(insert_sql(table, &write.values)));
                for (name, value) in &write.values {
                    query = Self::bind_column(query, column_type(table, name)?, value.clone());
                }
                let row = query
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| conflict_or(e, table))?;
                row.try_get::<i64, _>("id")?
            }
            Some(id) => {
                if !write.values.is_empty() {
                    let sets: Vec<String> = write
                        .values
                        .iter()
                        .enumerate()
                        .map(|(i, (name, _))| format!("{name} = ${}", i + 1))
                        .collect();
                    let sql = format!(
                        "UPDATE {} SET {} WHERE id = ${}",
                        table.name,
                        sets.join(", "),
                        write.values.len() + 1
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (name, value) in &write.values {
                        query = Self::bind_column(query, column_type(table, name)?, value.clone());
                    }
                    let done = query
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| conflict_or(e, table))?;
                    if done.rows_affected() == 0 {
                        return Ok(None);
                    }
                } else {
                    let sql = format!("SELECT id FROM {} WHERE id = $1", table.name);
                    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if found.is_none() {
                        return Ok(None);
                    }
                }
                id
            }
        };
        for children in &write.children {
            let sql = format!(
                "DELETE FROM {} WHERE {} = $1",
                children.table.name, children.parent_column
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for row in &children.rows {
                let mut values = row.clone();
                values.retain(|(name, _)| *name != children.parent_column);
                values.push((children.parent_column, SqlValue::Int(id)));
                let mut query =
                    sqlx::query(sqlx::AssertSqlSafe(insert_sql(children.table, &values)));
                for (name, value) in &values {
                    query =
                        Self::bind_column(query, column_type(children.table, name)?, value.clone());
                }
                query
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| conflict_or(e, children.table))?;
            }
        }
        Ok(Some(id))
    }

    pub(super) fn read_row(
        row: &<DB as sqlx::Database>::Row,
        table: &Table,
    ) -> Result<Map<String, Value>, StoreError> {
        let mut out = Map::new();
        out.insert("id".into(), Value::from(row.try_get::<i64, _>("id")?));
        for column in table.columns {
            let value = match column.ty {
                ColumnType::Int => row
                    .try_get::<Option<i64>, _>(column.name)?
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                ColumnType::Real => row
                    .try_get::<Option<f64>, _>(column.name)?
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
                ColumnType::Text => row
                    .try_get::<Option<String>, _>(column.name)?
                    .map(Value::String)
                    .unwrap_or(Value::Null),
                ColumnType::Bool => row
                    .try_get::<Option<bool>, _>(column.name)?
                    .map(Value::Bool)
                    .unwrap_or(Value::Null),
            };
            out.insert(column.name.to_string(), value);
        }
        Ok(out)
    }
}

#[async_trait]
impl<DB> ObjectStore for SqlStore<DB>
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
    async fn object_rows(
        &self,
        table: &'static Table,
        filter: &RowFilter,
    ) -> Result<Vec<Map<String, Value>>, StoreError> {
        let (clause, binds) = where_clause(table, filter);
        let names: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        let sql = format!(
            "SELECT id, {} FROM {}{clause} ORDER BY id",
            names.join(", "),
            table.name
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (ty, value) in binds {
            query = Self::bind_column(query, ty, value);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(|row| Self::read_row(row, table)).collect()
    }

    async fn object_write(&self, write: &ObjectWrite) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = Self::write_object(&mut tx, write).await?;
        if id.is_some() {
            tx.commit().await?;
        }
        Ok(id)
    }

    async fn object_delete(&self, table: &'static Table, id: i64) -> Result<bool, StoreError> {
        let sql = format!("DELETE FROM {} WHERE id = $1", table.name);
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
