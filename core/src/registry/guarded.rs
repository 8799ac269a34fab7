//! The registry's wrappers that put every non-built-in kind under its [`KindGuard`]: a call is
//! admitted or skipped, measured, and its outcome counted, the same way for a Rhai script and
//! a native plugin.

use std::sync::Arc;

use serde_json::Value;

use super::{Action, ActionEnv, ActionError, ActionFactory, Filter, FilterError, FilterFactory};
use super::{KindInfo, Reply};
use crate::guard::KindGuard;
use crate::visit::ClickContext;

/// A filter kind under its guard.
pub(super) struct GuardedFilterFactory {
    pub(super) inner: Arc<dyn FilterFactory>,
    pub(super) guard: Arc<KindGuard>,
}

impl FilterFactory for GuardedFilterFactory {
    fn info(&self) -> &KindInfo {
        self.inner.info()
    }

    fn build(&self, payload: &Value) -> Result<Box<dyn Filter>, String> {
        Ok(Box::new(GuardedFilter {
            inner: self.inner.build(payload)?,
            guard: self.guard.clone(),
        }))
    }

    fn fingerprint(&self) -> String {
        self.inner.fingerprint()
    }
}

struct GuardedFilter {
    inner: Box<dyn Filter>,
    guard: Arc<KindGuard>,
}

impl Filter for GuardedFilter {
    fn matches(&self, ctx: &mut ClickContext<'_>) -> Result<bool, FilterError> {
        // A skip is an error the pipeline traces (`Filter "…" failed: disabled (…)`).
        let call = self
            .guard
            .admit()
            .map_err(|skip| FilterError(skip.to_string()))?;
        let result = self.inner.matches(ctx);
        self.guard
            .finish(call, result.as_ref().err().map(|e| e.0.as_str()));
        result
    }
}

/// An action kind under its guard.
pub(super) struct GuardedActionFactory {
    pub(super) inner: Arc<dyn ActionFactory>,
    pub(super) guard: Arc<KindGuard>,
}

impl ActionFactory for GuardedActionFactory {
    fn info(&self) -> &KindInfo {
        self.inner.info()
    }

    fn build(&self, payload: &Value, options: &Value) -> Result<Box<dyn Action>, String> {
        Ok(Box::new(GuardedAction {
            inner: self.inner.build(payload, options)?,
            guard: self.guard.clone(),
        }))
    }

    fn fingerprint(&self) -> String {
        self.inner.fingerprint()
    }
}

struct GuardedAction {
    inner: Box<dyn Action>,
    guard: Arc<KindGuard>,
}

impl Action for GuardedAction {
    fn run(&self, env: &dyn ActionEnv) -> Result<Reply, ActionError> {
        let call = self
            .guard
            .admit()
            .map_err(|skip| ActionError(skip.to_string()))?;
        let result = self.inner.run(env);
        self.guard
            .finish(call, result.as_ref().err().map(|e| e.0.as_str()));
        result
    }
}
