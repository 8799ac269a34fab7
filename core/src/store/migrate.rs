//! Schema migrations, embedded in the binary: one list per backend, applied in order inside
//! a transaction each, recorded in `schema_migrations`.

/// A migration: its number, a name, and the SQL for each backend.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

impl Migration {
    /// The migration's SQL for `backend`.
    pub(crate) fn schema(&self, backend: crate::config::Backend) -> &'static str {
        match backend {
            crate::config::Backend::Sqlite => self.sqlite,
            crate::config::Backend::Postgres => self.postgres,
        }
    }
}

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: include_str!("schema/sqlite/0001_init.sql"),
        postgres: include_str!("schema/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "dialects",
        sqlite: include_str!("schema/sqlite/0002_dialects.sql"),
        postgres: include_str!("schema/postgres/0002_dialects.sql"),
    },
    Migration {
        version: 3,
        name: "reports",
        sqlite: include_str!("schema/sqlite/0003_reports.sql"),
        postgres: include_str!("schema/postgres/0003_reports.sql"),
    },
    Migration {
        version: 4,
        name: "campaign_files",
        sqlite: include_str!("schema/sqlite/0004_campaign_files.sql"),
        postgres: include_str!("schema/postgres/0004_campaign_files.sql"),
    },
    Migration {
        version: 5,
        name: "rollups",
        sqlite: include_str!("schema/sqlite/0005_rollups.sql"),
        postgres: include_str!("schema/postgres/0005_rollups.sql"),
    },
    Migration {
        version: 6,
        name: "exact_sums",
        sqlite: include_str!("schema/sqlite/0006_exact_sums.sql"),
        postgres: include_str!("schema/postgres/0006_exact_sums.sql"),
    },
    Migration {
        version: 7,
        name: "postback_queues",
        sqlite: include_str!("schema/sqlite/0007_postback_queues.sql"),
        postgres: include_str!("schema/postgres/0007_postback_queues.sql"),
    },
];

/// The migration that creates the report rollups; `migrate` fills them in its transaction.
pub(crate) const ROLLUPS_VERSION: i64 = 5;

pub(crate) const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// What `migrate` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this call, in order.
    pub applied: Vec<i64>,
    /// The schema version after the call.
    pub current: i64,
}

impl MigrationReport {
    /// True when this call created the schema from nothing.
    pub fn created_schema(&self) -> bool {
        self.applied.first() == Some(&1)
    }

    /// True when this call created the report rollups (and so computed them from the clicks).
    pub fn computed_rollups(&self) -> bool {
        self.applied.contains(&ROLLUPS_VERSION)
    }
}
