//! Trigger checks that are not built in, loaded by the supervisor and run by `triggers`:
//! `script:NAME` (a Rhai `check(response, params)`) and `native:NAME` (a plugin's
//! `NativeTrigger`). Both see the same page and answer the same effects, so the runner treats
//! them alike, each under its kind's guard (`crate::guard`) like filters and actions.

use std::sync::Arc;

use serde_json::Value;

use crate::guard::KindGuard;
use crate::model::{TriggerEffects, TriggerPage};
use crate::native::NativeTriggerKind;
use crate::script::ScriptKind;

/// Where a check's code comes from.
#[derive(Clone)]
pub enum CheckSource {
    Script(Arc<ScriptKind>),
    Native(Arc<NativeTriggerKind>),
}

/// A loaded check, named by a trigger condition, with its kind's guard.
#[derive(Clone)]
pub struct TriggerCheck {
    pub source: CheckSource,
    pub guard: Arc<KindGuard>,
}

impl TriggerCheck {
    /// Runs the check with the trigger's `payload.params`, unless its guard skips it (the
    /// error says why). Blocking: call it off the async workers.
    pub fn run(&self, page: &TriggerPage, params: &Value) -> Result<TriggerEffects, String> {
        let call = self
            .guard
            .admit()
            .map_err(|skip| format!("{}: {skip}", self.guard.name()))?;
        let result = self.run_unguarded(page, params);
        self.guard
            .finish(call, result.as_ref().err().map(String::as_str));
        result
    }

    fn run_unguarded(&self, page: &TriggerPage, params: &Value) -> Result<TriggerEffects, String> {
        match &self.source {
            CheckSource::Script(script) => {
                let mut response = rhai::Map::new();
                response.insert("status".into(), rhai::Dynamic::from(i64::from(page.status)));
                response.insert("body".into(), rhai::Dynamic::from(page.body.clone()));
                response.insert("url".into(), rhai::Dynamic::from(page.url.clone()));
                response.insert(
                    "elapsed_ms".into(),
                    rhai::Dynamic::from(page.elapsed_ms as i64),
                );
                response.insert("error".into(), rhai::Dynamic::from(page.error.clone()));
                let effects = script.run_check(response, params)?;
                let flag = |key: &str, default: bool| {
                    effects
                        .get(key)
                        .and_then(|v| v.as_bool().ok())
                        .unwrap_or(default)
                };
                Ok(TriggerEffects {
                    ok: flag("ok", true),
                    disable: flag("disable", false),
                    replace_url: flag("replace_url", false),
                    message: effects
                        .get("message")
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                })
            }
            CheckSource::Native(kind) => kind.check(params, page),
        }
    }
}
