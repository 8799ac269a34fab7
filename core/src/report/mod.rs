//! Reports over clicks: a typed query (columns and filters from a whitelist, values always
//! bound) that the store compiles to SQL for SQLite and PostgreSQL. So far the click log
//! (`clicks/log`); `report/build` (grouping and metrics) grows from the same model.

mod columns;
mod query;

pub use columns::{Column, ColumnKind, column};
pub use query::{Bound, Condition, LogQuery, Operator, ReportError, parse_log_query};

/// One value of a report row, as the store read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    Int(Option<i64>),
    Bool(bool),
    /// Micro-units.
    Money(i64),
    /// Unix seconds.
    Time(Option<i64>),
}
