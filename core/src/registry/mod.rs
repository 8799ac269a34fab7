//! The plugin registry: one place that maps a kind name to a factory, for stream filters,
//! stream actions and (later) trigger conditions and actions. Kinds come from three origins —
//! built in (Keitaro's catalogue, `builtin/`), Rhai scripts and native libraries — and are used
//! the same way: a factory builds an instance from a stream's stored payload once, when the
//! routing snapshot is built, never per click.
//!
//! The Admin API's catalogue endpoints are generated from [`Registry::filters`] and
//! [`Registry::actions`], so a new plugin appears there by itself.
//!
//! Every kind that is not built in is put under a [`KindGuard`] when it is added (see
//! `crate::guard`): the registry applies the same budgets, failure ratios and reporting to a
//! script and to a native plugin. [`Registry::guards`] lists them.

pub mod builtin;
mod guarded;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::guard::{GuardPolicy, KindGuard};
use crate::template::Template;
use crate::visit::ClickContext;

/// Where a kind comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "origin", rename_all = "lowercase")]
pub enum Origin {
    Builtin,
    Script { path: String },
    Native { library: String },
}

impl Origin {
    /// `builtin`, `script` or `native`.
    pub fn label(&self) -> &'static str {
        match self {
            Origin::Builtin => "builtin",
            Origin::Script { .. } => "script",
            Origin::Native { .. } => "native",
        }
    }

    /// The script file or library a kind comes from (none for built-ins).
    pub fn source(&self) -> Option<&str> {
        match self {
            Origin::Builtin => None,
            Origin::Script { path } => Some(path),
            Origin::Native { library } => Some(library),
        }
    }
}

/// What the catalogue says about a kind.
#[derive(Debug, Clone, Serialize)]
pub struct KindInfo {
    /// The name streams use (`country`, `http`, `script:score`).
    pub name: String,
    #[serde(flatten)]
    pub origin: Origin,
    /// A group for menus (`geo`, `device`, `traffic`, `visitor`, `time`, `redirect`, `content`, …).
    pub group: String,
    pub description: String,
    /// The payload's shape, with an example.
    pub payload: PayloadDoc,
    /// Other names accepted for this kind (actions: `location` for `http`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Filters: whether a stream's accept/reject mode applies. A mode-less filter (Keitaro's
    /// `limit`) decides alone, whatever mode a stream stored for it.
    pub modes: bool,
}

/// The documented shape of a kind's payload.
#[derive(Debug, Clone, Serialize)]
pub struct PayloadDoc {
    /// `array`, `string`, `object`, `null`, `number`.
    #[serde(rename = "type")]
    pub kind: String,
    pub example: Value,
    pub notes: String,
}

/// A filter that failed to run. The click treats the filter as "does not match".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

/// A built stream filter: answers whether a click matches (before accept/reject is applied).
/// Synchronous and CPU-bound; it must not block, do IO or panic.
pub trait Filter: Send + Sync {
    fn matches(&self, ctx: &mut ClickContext<'_>) -> Result<bool, FilterError>;
}

/// Builds filters of one kind from stored payloads.
pub trait FilterFactory: Send + Sync {
    fn info(&self) -> &KindInfo;
    /// Checks and compiles a payload. The error says what is wrong with it.
    fn build(&self, payload: &Value) -> Result<Box<dyn Filter>, String>;
    /// What the kind was built from (a script's text hash, a library's copy). A reload keeps
    /// a kind's guard, with its counters and a disabled state, while this stays the same.
    fn fingerprint(&self) -> String {
        String::new()
    }
}

/// What an action answers. The host turns it into an HTTP response or a Click API body, and
/// performs anything that needs IO (`Fetch`, `LocalFile`, `ToCampaign`) outside the action.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A redirect (`status` 301/302/303/307) to an absolute http(s) URL.
    Redirect { url: String, status: u16 },
    /// A response with a body.
    Content {
        status: u16,
        content_type: String,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    },
    /// Fetch `url` (SSRF-guarded, bounded): `Curl` answers its body, `Remote` redirects to the
    /// URL the body names.
    Fetch { url: String, mode: FetchMode },
    /// Serve a file of an uploaded landing or offer.
    LocalFile { owner: FileOwner, path: String },
    /// Route the click through another campaign (with this one as parent).
    ToCampaign { campaign_id: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMode {
    Curl,
    Remote,
}

/// Whose uploaded files a `LocalFile` reply reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOwner {
    Landing(i64),
    Offer(i64),
}

/// A failed action; the host answers the campaign's fallback and logs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ActionError(pub String);

/// What an action can use besides the click: template expansion with the click's macros and
/// the tracker's own base URL.
pub trait ActionEnv {
    /// Expands macros in `template` for this click (URL-encoded values).
    fn expand(&self, template: &Template) -> String;
    /// `scheme://host` of the tracker as the visitor reached it.
    fn base_url(&self) -> String;
    /// A tracker URL that answers a meta refresh to `url` (the second hop of `double_meta`).
    fn hop_url(&self, url: &str) -> String;
    /// The landing or offer the action runs for, if any.
    fn owner(&self) -> Option<FileOwner>;
    fn click(&self) -> &crate::model::Click;
}

/// A built stream (or landing/offer) action.
pub trait Action: Send + Sync {
    fn run(&self, env: &dyn ActionEnv) -> Result<Reply, ActionError>;
}

/// Builds actions of one kind from stored payloads and options.
pub trait ActionFactory: Send + Sync {
    fn info(&self) -> &KindInfo;
    fn build(&self, payload: &Value, options: &Value) -> Result<Box<dyn Action>, String>;
    /// As [`FilterFactory::fingerprint`].
    fn fingerprint(&self) -> String {
        String::new()
    }
}

/// Why a kind could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("a {kind} named `{name}` is already registered (by {by})")]
    Duplicate {
        kind: &'static str,
        name: String,
        by: String,
    },
}

/// Every kind the tracker knows, by name.
#[derive(Clone, Default)]
pub struct Registry {
    filters: BTreeMap<String, Arc<dyn FilterFactory>>,
    actions: BTreeMap<String, Arc<dyn ActionFactory>>,
    action_aliases: BTreeMap<String, String>,
    policy: GuardPolicy,
    /// The guard of every non-built-in kind (filters, actions and trigger checks), by name.
    guards: BTreeMap<String, Arc<KindGuard>>,
    /// Guards of the registry this one replaces, adopted by kinds whose fingerprint is the same.
    previous: BTreeMap<String, Arc<KindGuard>>,
}

fn origin_text(origin: &Origin) -> String {
    match origin {
        Origin::Builtin => "the built-in catalogue".into(),
        Origin::Script { path } => format!("script {path}"),
        Origin::Native { library } => format!("library {library}"),
    }
}

impl Registry {
    /// The built-in catalogue.
    pub fn builtin() -> Registry {
        let mut registry = Registry::default();
        builtin::register(&mut registry);
        registry
    }

    /// The built-in catalogue, with `policy` for the kinds added later. Guards of `previous`
    /// (the registry being replaced) are kept for kinds whose fingerprint has not changed.
    pub fn builtin_after(previous: Option<&Registry>, policy: &GuardPolicy) -> Registry {
        let mut registry = Registry::builtin();
        registry.policy = policy.clone();
        if let Some(previous) = previous {
            registry.previous = previous.guards.clone();
        }
        registry
    }

    /// The guard of the kind `name` built from `fingerprint`: the previous registry's when it
    /// had the same kind from the same source under the same policy, else a new one.
    pub fn guard_for(&mut self, name: &str, fingerprint: &str) -> Arc<KindGuard> {
        let guard = match self.previous.get(name) {
            Some(old) if old.fingerprint() == fingerprint && *old.policy() == self.policy => {
                old.clone()
            }
            _ => KindGuard::new(name, fingerprint, &self.policy),
        };
        self.guards.insert(name.to_string(), guard.clone());
        guard
    }

    /// Every guarded kind's guard, by name.
    pub fn guards(&self) -> &BTreeMap<String, Arc<KindGuard>> {
        &self.guards
    }

    pub fn add_filter(&mut self, factory: Arc<dyn FilterFactory>) -> Result<(), RegistryError> {
        let name = factory.info().name.clone();
        if let Some(existing) = self.filters.get(&name) {
            return Err(RegistryError::Duplicate {
                kind: "filter",
                name,
                by: origin_text(&existing.info().origin),
            });
        }
        let factory: Arc<dyn FilterFactory> = if factory.info().origin == Origin::Builtin {
            factory
        } else {
            let guard = self.guard_for(&name, &factory.fingerprint());
            Arc::new(guarded::GuardedFilterFactory {
                inner: factory,
                guard,
            })
        };
        self.filters.insert(name, factory);
        Ok(())
    }

    pub fn add_action(&mut self, factory: Arc<dyn ActionFactory>) -> Result<(), RegistryError> {
        let info = factory.info();
        for name in std::iter::once(&info.name).chain(&info.aliases) {
            if let Some(existing) = self.action(name) {
                return Err(RegistryError::Duplicate {
                    kind: "action",
                    name: name.clone(),
                    by: origin_text(&existing.info().origin),
                });
            }
        }
        let name = info.name.clone();
        for alias in &info.aliases {
            self.action_aliases.insert(alias.clone(), name.clone());
        }
        let factory: Arc<dyn ActionFactory> = if info.origin == Origin::Builtin {
            factory
        } else {
            let guard = self.guard_for(&name, &factory.fingerprint());
            Arc::new(guarded::GuardedActionFactory {
                inner: factory,
                guard,
            })
        };
        self.actions.insert(name, factory);
        Ok(())
    }

    pub fn filter(&self, name: &str) -> Option<&Arc<dyn FilterFactory>> {
        self.filters.get(name)
    }

    /// The action kind named `name` or one of its aliases.
    pub fn action(&self, name: &str) -> Option<&Arc<dyn ActionFactory>> {
        let name = self
            .action_aliases
            .get(name)
            .map(String::as_str)
            .unwrap_or(name);
        self.actions.get(name)
    }

    /// Every filter kind, by name.
    pub fn filters(&self) -> impl Iterator<Item = &KindInfo> {
        self.filters.values().map(|f| f.info())
    }

    /// Every action kind, by name.
    pub fn actions(&self) -> impl Iterator<Item = &KindInfo> {
        self.actions.values().map(|a| a.info())
    }
}
