//! The declarations an Admin API resource is made of: its fields ([`Field`], typed by
//! [`Kind`]), the table behind it, and the rules ([`ResourceRules`]) it adds to the generic
//! life cycle of `resource.rs`, which the OpenAPI document (`ops.rs`) reads too.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::input::Invalid;
use crate::api::ApiError;
use crate::api::AppState;
use crate::store::objects::{ChildRows, SqlValue, Table};

/// How an API field is typed, stored and shown.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Int,
    /// A nullable id of a row in the given table (checked to exist).
    Ref(&'static Table),
    Real,
    Text,
    /// Text that may be null.
    OptText,
    /// One of the listed values.
    Enum(&'static [&'static str]),
    /// One of the listed values, or null.
    OptEnum(&'static [&'static str]),
    Bool,
    /// Any JSON value, stored as JSON text.
    Json,
    /// A JSON object, stored as JSON text.
    Object,
    /// A list of strings (a single string is taken as a one-element list), stored as JSON text.
    TextList,
    /// A decimal amount, stored as micro-units, shown as a string with four decimals.
    Money,
    /// An absolute http(s) URL (or empty).
    Url,
    /// Seconds since the epoch, shown as `YYYY-MM-DD HH:MM:SS` (UTC); never written by clients.
    Time,
}

/// An API field of a resource.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The name clients send and receive.
    pub name: &'static str,
    /// The column behind it.
    pub column: &'static str,
    pub kind: Kind,
    /// Required when creating.
    pub required: bool,
    /// Clients may set it.
    pub writable: bool,
}

impl Field {
    pub const fn new(name: &'static str, kind: Kind) -> Self {
        Field {
            name,
            column: name,
            kind,
            required: false,
            writable: true,
        }
    }

    pub const fn column(mut self, column: &'static str) -> Self {
        self.column = column;
        self
    }

    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub const fn read_only(mut self) -> Self {
        self.writable = false;
        self
    }
}

/// A resource of the Admin API.
pub struct Resource {
    /// The path segment (`campaigns`).
    pub path: &'static str,
    /// What one object is called in messages (`campaign`).
    pub noun: &'static str,
    /// The document's tag (`Campaigns`).
    pub tag: &'static str,
    pub table: &'static Table,
    pub fields: &'static [Field],
    pub rules: &'static (dyn ResourceRules + Sync),
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resource")
            .field("path", &self.path)
            .finish()
    }
}

/// An object being created or updated: the input, the stored row (for updates), and the
/// column values and child rows to write, which rules may add to or change.
pub struct Draft<'a> {
    pub id: Option<i64>,
    pub input: &'a Map<String, Value>,
    pub existing: Option<&'a Map<String, Value>>,
    pub values: Vec<(&'static str, SqlValue)>,
    pub children: Vec<ChildRows>,
}

impl Draft<'_> {
    pub fn is_create(&self) -> bool {
        self.existing.is_none()
    }

    /// The value a column will have after the write: the drafted one, else the stored one.
    pub fn effective(&self, column: &str) -> Value {
        if let Some((_, value)) = self.values.iter().find(|(c, _)| *c == column) {
            return value.to_json();
        }
        self.existing
            .and_then(|row| row.get(column).cloned())
            .unwrap_or(Value::Null)
    }

    pub fn set(&mut self, column: &'static str, value: SqlValue) {
        self.values.retain(|(c, _)| *c != column);
        self.values.push((column, value));
    }

    pub fn has(&self, column: &str) -> bool {
        self.values.iter().any(|(c, _)| *c == column)
    }
}

/// What a resource adds to the generic life cycle.
#[async_trait]
pub trait ResourceRules: Send + Sync {
    /// Checks and completes a draft (generated values, cross-field and uniqueness rules,
    /// child rows).
    async fn prepare(
        &self,
        _state: &AppState,
        _draft: &mut Draft<'_>,
        _invalid: &mut Invalid,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// Adds computed fields to a rendered object (child lists, names of referenced objects).
    async fn decorate(
        &self,
        _state: &AppState,
        _objects: &mut [Map<String, Value>],
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// The values a clone changes (name "… Copy" by default).
    fn clone_values(&self, row: &Map<String, Value>) -> Vec<(&'static str, SqlValue)> {
        let name = row.get("name").and_then(Value::as_str).unwrap_or("");
        vec![("name", SqlValue::Text(format!("{name} Copy")))]
    }

    /// Runs after a successful write (`event` is `created`, `updated`, `active`, `disabled`
    /// or `deleted`).
    async fn after_write(&self, _state: &AppState, _id: i64, _event: &str) -> Result<(), ApiError> {
        Ok(())
    }

    /// Runs after a successful create or update with the request's input, for what comes
    /// with an object besides its row (a landing's or offer's `archive` of files).
    async fn after_save(
        &self,
        _state: &AppState,
        _id: i64,
        _input: &Map<String, Value>,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// Runs after `original` was cloned into `copy`, for what comes with an object besides its
    /// row (a landing's or offer's files).
    async fn after_clone(
        &self,
        _state: &AppState,
        _original: i64,
        _copy: i64,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// Fields outside the column declarations (child lists), for the document.
    fn extra_schema(&self) -> Vec<(&'static str, Value)> {
        Vec::new()
    }

    /// Whether a change may alter routing (then the snapshot is rebuilt).
    fn affects_routing(&self) -> bool {
        true
    }
}

/// A resource without rules of its own.
pub struct PlainRules;

impl ResourceRules for PlainRules {}
