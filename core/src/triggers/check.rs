//! Trigger checks that are not built in: `script:NAME` (a Rhai `check(response, params)`) and
//! `native:NAME` (a plugin's `NativeTrigger`). Both see the same page and answer the same
//! effects, so the runner treats them alike.

use std::sync::Arc;

use serde_json::Value;

use crate::native::NativeTriggerKind;
use crate::script::ScriptKind;

/// The page a trigger fetched, as a check sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggerPage {
    /// The HTTP status; 0 when the fetch failed.
    pub status: u16,
    pub body: String,
    pub url: String,
    pub elapsed_ms: u64,
    /// Why the fetch failed; empty when it worked.
    pub error: String,
}

/// A check's verdict: `ok: false` fires; `disable` (first) or `replace_url` replace the
/// trigger's own action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggerEffects {
    pub ok: bool,
    pub disable: bool,
    pub replace_url: bool,
    pub message: String,
}

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
