//! Trigger checks that are not built in, loaded by the supervisor and run by `triggers`:
//! `script:NAME` (a Rhai `check(response, params)`) and `native:NAME` (a plugin's
//! `NativeTrigger`). Both see the same page and answer the same effects, so the runner treats
//! them alike.

use std::sync::Arc;

use serde_json::Value;

use crate::model::{TriggerEffects, TriggerPage};
use crate::native::NativeTriggerKind;
use crate::script::ScriptKind;

/// A loaded check, named by a trigger condition.
#[derive(Clone)]
pub enum TriggerCheck {
    Script(Arc<ScriptKind>),
    Native(Arc<NativeTriggerKind>),
}

impl TriggerCheck {
    /// Runs the check with the trigger's `payload.params`. Blocking: call it off the async
    /// workers.
    pub fn run(&self, page: &TriggerPage, params: &Value) -> Result<TriggerEffects, String> {
        match self {
            TriggerCheck::Script(script) => {
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
            TriggerCheck::Native(kind) => kind.check(params, page),
        }
    }
}
