//! Config-as-files: campaigns, streams, offers, landings, affiliate networks and traffic
//! sources declared as TOML files in a directory (`[campaigns] dir`), kept in git and reviewed
//! like code.
//!
//! A load reads the whole directory (`parse`), checks everything (`validate`: every problem
//! at once, as `file:line: key.path: message`), and only then plans the changes against the
//! store (`plan`) and applies them in one store transaction (`FileStore::apply_files`), after
//! which the routing snapshot is rebuilt. Objects a load writes are *file-managed*: they carry
//! their key and file, and the Admin API refuses to change them with 409 (it reads the row's
//! `file_source`, which `FileStore::file_source` answers for other callers too). Objects
//! made through the Admin API are never touched by a load. `export` writes the store's objects
//! back as such files; `plan` also answers `switchyard diff`.

mod export;
pub mod format;
mod parse;
mod plan;
mod validate;

use std::fmt;
use std::path::Path;

pub use export::{export_files, render_files};
pub use format::*;
pub use parse::check_key;
pub use parse::{Locations, parse_text, toml_files};
pub use plan::{Change, ChangeKind, FilePlan, Stored, StoredObjects, Upsert, plan_changes};

use crate::registry::Registry;

/// The kinds of object a file can declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    AffiliateNetwork,
    TrafficSource,
    Offer,
    Landing,
    Campaign,
    Stream,
}

impl ObjectKind {
    /// The top-level sections of a file, in the order they are applied.
    pub const SECTIONS: [&'static str; 5] = [
        "affiliate_networks",
        "traffic_sources",
        "offers",
        "landings",
        "campaigns",
    ];

    pub fn from_section(section: &str) -> Option<Self> {
        Some(match section {
            "affiliate_networks" => ObjectKind::AffiliateNetwork,
            "traffic_sources" => ObjectKind::TrafficSource,
            "offers" => ObjectKind::Offer,
            "landings" => ObjectKind::Landing,
            "campaigns" => ObjectKind::Campaign,
            _ => return None,
        })
    }

    /// The object's table in the database (also how messages name the kind).
    pub fn table(self) -> &'static str {
        match self {
            ObjectKind::AffiliateNetwork => "affiliate_networks",
            ObjectKind::TrafficSource => "traffic_sources",
            ObjectKind::Offer => "offers",
            ObjectKind::Landing => "landings",
            ObjectKind::Campaign => "campaigns",
            ObjectKind::Stream => "streams",
        }
    }
}

/// One problem in the campaigns directory, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    /// The file, relative to the directory.
    pub file: String,
    pub line: Option<usize>,
    /// The key path inside the file (`campaigns.cloak.streams.bots.filters[0].name`).
    pub path: String,
    pub message: String,
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A valid directory: the declared objects and the file of each.
#[derive(Debug, Clone, Default)]
pub struct LoadedDir {
    pub set: DeclaredSet,
    pub locations: Locations,
}

impl LoadedDir {
    /// The file (relative to the directory) that declares an object.
    pub fn file_of(&self, kind: ObjectKind, key: &str) -> String {
        self.locations
            .files
            .get(&(kind, key.to_string()))
            .cloned()
            .unwrap_or_default()
    }
}

/// Reads and checks the whole directory. Filter and action names and payloads are checked
/// against `registry`. `Err` holds every problem found, in file order.
pub fn load_dir(dir: &Path, registry: &Registry) -> Result<LoadedDir, Vec<FileProblem>> {
    let mut problems = Vec::new();
    let mut parsed = parse::read_dir(dir, &mut problems);
    validate::validate(&mut parsed, registry, &mut problems);
    if problems.is_empty() {
        Ok(LoadedDir {
            set: parsed.set,
            locations: parsed.locations,
        })
    } else {
        problems.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        problems.dedup();
        Err(problems)
    }
}

#[cfg(test)]
mod tests;
