//! Generic reads and writes of the tracker's managed objects (campaigns, streams, offers, …),
//! for the Admin API. A [`Table`] names its columns and their SQL types; rows come back as JSON
//! maps keyed by column name and go in as `(column, value)` pairs. Every table and column name
//! comes from a `'static` [`Table`] declared in the program, never from a request, and every value
//! is bound — so the SQL built here never carries client text.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::StoreError;

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
    /// The value a read gave back as JSON (`to_json`'s inverse for a column of type `ty`).
    pub fn from_json(value: &Value, ty: ColumnType) -> SqlValue {
        match (value, ty) {
            (Value::Null, _) => SqlValue::Null,
            (Value::Bool(b), _) => SqlValue::Bool(*b),
            (Value::Number(n), ColumnType::Real) => {
                n.as_f64().map_or(SqlValue::Null, SqlValue::Real)
            }
            (Value::Number(n), _) => n
                .as_i64()
                .map(SqlValue::Int)
                .or_else(|| n.as_f64().map(SqlValue::Real))
                .unwrap_or(SqlValue::Null),
            (Value::String(s), _) => SqlValue::Text(s.clone()),
            (other, _) => SqlValue::Text(other.to_string()),
        }
    }

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

impl Within {
    /// Whether a row read back (`{column: value}`) is one this covers; the query's test
    /// (see `where_clause`), for a single object.
    pub fn covers(&self, row: &Map<String, Value>) -> bool {
        let id = row.get("id").and_then(Value::as_i64);
        let group = row.get("group_id").and_then(Value::as_i64);
        id.is_some_and(|id| self.ids.contains(&id))
            || group.is_some_and(|g| self.groups.contains(&g))
    }
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

impl ChildRows {
    /// A stream's rows in `table` (its filters, landings, offers or triggers).
    pub fn of_stream(table: &'static Table, rows: Vec<Vec<(&'static str, SqlValue)>>) -> Self {
        ChildRows {
            table,
            parent_column: "stream_id",
            rows,
        }
    }
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

pub(super) fn column_type(table: &Table, name: &str) -> Result<ColumnType, StoreError> {
    if name == "id" {
        return Ok(ColumnType::Int);
    }
    table
        .column(name)
        .map(|c| c.ty)
        .ok_or_else(|| StoreError::Corrupt(format!("{} has no column {name}", table.name)))
}

pub(super) fn insert_sql(table: &Table, values: &[(&'static str, SqlValue)]) -> String {
    let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
    let marks: Vec<String> = (1..=values.len()).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({}) RETURNING id",
        table.name,
        names.join(", "),
        marks.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stand-ins for the managed tables: one with a group column, one without.
    mod tables {
        use super::super::ColumnType::{Int, Text};
        use super::super::{Table, col};

        pub static CAMPAIGNS: Table = Table {
            name: "campaigns",
            columns: &[col("group_id", Int), col("state", Text)],
        };
        pub static STREAMS: Table = Table {
            name: "streams",
            columns: &[col("state", Text)],
        };
    }

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
