//! The one SQL implementation of the store roles, generic over sqlx's [`Database`]:
//! [`SqlStore<DB>`] with `DB` = [`sqlx::Sqlite`] (the embedded default) or [`sqlx::Postgres`].
//! Both accept the same SQL text for nearly everything (`$N` placeholders, `RETURNING`,
//! `ON CONFLICT`); where a statement differs, the body reads [`SqlDb::BACKEND`].
//!
//! # The bound bundle
//! A generic body needs sqlx to know that `DB` runs statements on a connection, binds and
//! decodes the value types used here, and finds columns by name. Rust does not carry a
//! trait's `where` clauses to its users (only supertraits), so these bounds cannot be folded
//! into `SqlDb`; each `impl` block over `SqlStore<DB>` states them, in this order:
//!
//! ```text
//! where
//!     DB: SqlDb,
//!     for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
//!     for<'n> &'n str: ColumnIndex<DB::Row>,
//!     usize: ColumnIndex<DB::Row>,
//!     for<'q> &'q str: Encode<'q, DB> + Type<DB>,
//!     i64: Sql<DB>, f64: Sql<DB>, bool: Sql<DB>, String: Sql<DB>,
//!     Option<i64>: Sql<DB>, Option<f64>: Sql<DB>, Option<String>: Sql<DB>, Option<bool>: Sql<DB>,
//!     Arc<str>: Sql<DB>,
//! ```
//!
//! Both backends satisfy it; a third sqlx backend would be one `impl SqlDb`.

use sqlx::{Database, Decode, Encode, IntoArguments, Type};

use crate::config::Backend;

/// A SQL backend of the store: what differs between SQLite and PostgreSQL besides the text
/// both accept.
pub trait SqlDb: Database<Arguments: IntoArguments<Self>, QueryResult: RowsAffected> {
    const BACKEND: Backend;
}

impl SqlDb for sqlx::Sqlite {
    const BACKEND: Backend = Backend::Sqlite;
}

impl SqlDb for sqlx::Postgres {
    const BACKEND: Backend = Backend::Postgres;
}

/// How many rows a statement changed (each backend's result type has it as its own method).
pub trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::sqlite::SqliteQueryResult::rows_affected(self)
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::postgres::PgQueryResult::rows_affected(self)
    }
}

/// A Rust type a backend binds, decodes and types (the bundle names each one used).
pub trait Sql<DB: Database>:
    for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send + Sync
{
}

impl<DB: Database, T> Sql<DB> for T where
    T: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send + Sync
{
}

/// The store on a SQL database: a pool of connections.
pub struct SqlStore<DB: Database> {
    pub(crate) pool: sqlx::Pool<DB>,
}

/// A statement with its bound values.
pub(crate) type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments>;

/// `$first, $first+1, …` for `count` values.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// True when a statement failed on a unique constraint.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}
