//! Generic reads and writes of the tracker's managed objects (campaigns, streams, offers, …),
//! for the Admin API. A [`Table`] names its columns and their SQL types; rows come back as JSON
//! maps keyed by column name and go in as `(column, value)` pairs. Every table and column name
//! comes from a `'static` [`Table`] declared in the program, never from a request, and every value
//! is bound — so the SQL built here never carries client text.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::{ColumnIndex, Encode, Executor, Row, Type};

use super::StoreError;
use super::sql_store::{Query, RowsAffected, Sql, SqlDb, SqlStore};

/// The SQL type of a column, as both backends store it (BIGINT/INTEGER, DOUBLE/REAL, TEXT,
/// BOOLEAN/INTEGER 0-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Int,
    Real,
    Text,
    Bool,
}

/// A column of a managed table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
}

/// Shorthand for declaring columns.
pub const fn col(name: &'static str, ty: ColumnType) -> Column {
    Column { name, ty }
}

/// A managed table: its name and every column but `id` (which every managed table has).
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn has_state(&self) -> bool {
        self.column("state").is_some()
    }
}

/// A value to write. `Null` takes the column's type when bound.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bool(bool),
}

impl SqlValue {
    /// The JSON a read of this value gives back.
    pub fn to_json(&self) -> Value {
        match self {
            SqlValue::Null => Value::Null,
            SqlValue::Int(n) => Value::from(*n),
            SqlValue::Real(x) => serde_json::Number::from_f64(*x)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            SqlValue::Text(s) => Value::String(s.clone()),
            SqlValue::Bool(b) => Value::Bool(*b),
        }
    }
}

/// Which rows of a table to read.
#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    /// `column = value` conditions, all of which must hold.
    pub equal: Vec<(&'static str, SqlValue)>,
    /// Only rows whose `state` is one of these (ignored for tables without a state).
    pub states: Option<Vec<&'static str>>,
    /// Only rows with these ids.
    pub ids: Option<Vec<i64>>,
    /// Only rows whose column holds one of these values (children of several parents).
    pub column_in: Option<(&'static str, Vec<i64>)>,
    /// Only the rows a scoped user may see.
    pub within: Option<Within>,
}

/// The rows a `to_groups_and_selected` grant covers: one of `ids`, or (in a table with a
/// `group_id`) in one of `groups`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Within {
    pub ids: Vec<i64>,
    pub groups: Vec<i64>,
}

impl RowFilter {
    pub fn all() -> Self {
        RowFilter::default()
    }

    /// Rows not archived.
    pub fn live() -> Self {
        RowFilter {
            states: Some(vec!["active", "disabled"]),
            ..RowFilter::default()
        }
    }

    /// Archived rows.
    pub fn deleted() -> Self {
        RowFilter {
            states: Some(vec!["deleted"]),
            ..RowFilter::default()
        }
    }

    pub fn id(id: i64) -> Self {
        RowFilter {
            ids: Some(vec![id]),
            ..RowFilter::default()
        }
    }

    pub fn children_of(column: &'static str, parents: Vec<i64>) -> Self {
        RowFilter {
            column_in: Some((column, parents)),
            ..RowFilter::default()
        }
    }

    pub fn equal(mut self, column: &'static str, value: SqlValue) -> Self {
        self.equal.push((column, value));
        self
    }

    /// Only the rows `within` covers (all rows for `None`).
    pub fn within(mut self, within: Option<Within>) -> Self {
        self.within = within;
        self
    }
}

/// Rows of a child table that belong to the written row (a stream's filters, triggers, landings
/// and offers). A write replaces all of them.
#[derive(Debug, Clone)]
pub struct ChildRows {
    pub table: &'static Table,
    /// The child column holding the parent's id.
    pub parent_column: &'static str,
    /// Each row's values; an `id` entry keeps that id.
    pub rows: Vec<Vec<(&'static str, SqlValue)>>,
}

/// One object write: an insert (`id` None) or an update of the given columns, with its child
/// rows replaced, in one transaction.
#[derive(Debug, Clone)]
pub struct ObjectWrite {
    pub table: &'static Table,
    pub id: Option<i64>,
    pub values: Vec<(&'static str, SqlValue)>,
    pub children: Vec<ChildRows>,
}

/// Generic object persistence for the Admin API.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Rows matching `filter`, ordered by id, each as `{column: value}` including `id`.
    async fn object_rows(
        &self,
        table: &'static Table,
        filter: &RowFilter,
    ) -> Result<Vec<Map<String, Value>>, StoreError>;

    /// Inserts or updates one row and replaces its children, atomically. Returns the row's id,
    /// or `None` when an update names a row that does not exist. A unique constraint failure
    /// is [`StoreError::Conflict`].
    async fn object_write(&self, write: &ObjectWrite) -> Result<Option<i64>, StoreError>;

    /// Deletes one row (children go by their foreign keys). False when it did not exist.
    async fn object_delete(&self, table: &'static Table, id: i64) -> Result<bool, StoreError>;
}

/// `$1, $2, …` placeholders and the values list of a filter, in bind order.
pub(crate) fn where_clause(
    table: &Table,
    filter: &RowFilter,
) -> (String, Vec<(ColumnType, SqlValue)>) {
    let mut parts = Vec::new();
    let mut binds = Vec::new();
    for (column, value) in &filter.equal {
        let ty = table
            .column(column)
            .map(|c| c.ty)
            .unwrap_or(ColumnType::Int);
        binds.push((ty, value.clone()));
        parts.push(format!("{column} = ${}", binds.len()));
    }
    if let Some(states) = &filter.states
        && table.has_state()
    {
        let mut marks = Vec::new();
        for state in states {
            binds.push((ColumnType::Text, SqlValue::Text(state.to_string())));
            marks.push(format!("${}", binds.len()));
        }
        parts.push(format!("state IN ({})", marks.join(", ")));
    }
    if let Some(ids) = &filter.ids {
        if ids.is_empty() {
            parts.push("1 = 0".to_string());
        } else {
            let mut marks = Vec::new();
            for id in ids {
                binds.push((ColumnType::Int, SqlValue::Int(*id)));
                marks.push(format!("${}", binds.len()));
            }
            parts.push(format!("id IN ({})", marks.join(", ")));
        }
    }
    if let Some((column, values)) = &filter.column_in {
        if values.is_empty() {
            parts.push("1 = 0".to_string());
        } else {
            let mut marks = Vec::new();
            for value in values {
                binds.push((ColumnType::Int, SqlValue::Int(*value)));
                marks.push(format!("${}", binds.len()));
            }
            parts.push(format!("{column} IN ({})", marks.join(", ")));
        }
    }
    if let Some(within) = &filter.within {
        let mut any = Vec::new();
        let mut list = |column: &str, values: &[i64], binds: &mut Vec<(ColumnType, SqlValue)>| {
            let mut marks = Vec::new();
            for value in values {
                binds.push((ColumnType::Int, SqlValue::Int(*value)));
                marks.push(format!("${}", binds.len()));
            }
            if !marks.is_empty() {
                any.push(format!("{column} IN ({})", marks.join(", ")));
            }
        };
        list("id", &within.ids, &mut binds);
        if table.column("group_id").is_some() {
            list("group_id", &within.groups, &mut binds);
        }
        parts.push(if any.is_empty() {
            "1 = 0".to_string()
        } else {
            format!("({})", any.join(" OR "))
        });
    }
    let clause = if parts.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", parts.join(" AND "))
    };
    (clause, binds)
}

/// Maps a unique-constraint failure to [`StoreError::Conflict`].
pub(crate) fn conflict_or(error: sqlx::Error, table: &Table) -> StoreError {
    if let sqlx::Error::Database(db) = &error
        && db.is_unique_violation()
    {
        return StoreError::Conflict {
            what: format!("a {} row with the same unique value", table.name),
        };
    }
    StoreError::Database(error)
}

fn column_type(table: &Table, name: &str) -> Result<ColumnType, StoreError> {
    if name == "id" {
        return Ok(ColumnType::Int);
    }
    table
        .column(name)
        .map(|c| c.ty)
        .ok_or_else(|| StoreError::Corrupt(format!("{} has no column {name}", table.name)))
}

fn insert_sql(table: &Table, values: &[(&'static str, SqlValue)]) -> String {
    let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
    let marks: Vec<String> = (1..=values.len()).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({}) RETURNING id",
        table.name,
        names.join(", "),
        marks.join(", ")
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tables;

    fn within(ids: &[i64], groups: &[i64]) -> RowFilter {
        RowFilter::live().within(Some(Within {
            ids: ids.to_vec(),
            groups: groups.to_vec(),
        }))
    }

    #[test]
    fn a_scope_is_part_of_the_query() {
        let (sql, binds) = where_clause(&tables::CAMPAIGNS, &within(&[7], &[3, 4]));
        assert_eq!(
            sql,
            " WHERE state IN ($1, $2) AND (id IN ($3) OR group_id IN ($4, $5))"
        );
        let values: Vec<SqlValue> = binds.into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            values[2..],
            [SqlValue::Int(7), SqlValue::Int(3), SqlValue::Int(4)]
        );
    }

    #[test]
    fn a_scope_without_groups_or_a_group_column_is_by_id() {
        let (sql, _) = where_clause(&tables::STREAMS, &within(&[1, 2], &[3]));
        assert!(sql.ends_with(" AND (id IN ($3, $4))"), "{sql}");
        let (sql, _) = where_clause(&tables::CAMPAIGNS, &within(&[], &[]));
        assert!(
            sql.ends_with(" AND 1 = 0"),
            "an empty scope shows nothing: {sql}"
        );
    }
}
