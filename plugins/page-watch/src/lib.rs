//! An example native trigger check: `native:page_watch` fires when the checked page did not
//! answer (a failed fetch or a status of 400 or more), its body is smaller than `min_bytes`, or
//! it lacks `must_contain`.
//!
//! Use it as a stream trigger's condition with the check's settings in `payload.params`:
//! `{"params": {"min_bytes": 512, "must_contain": "Buy now", "disable": true}}`. With
//! `disable: true` a firing check disables the stream whatever the trigger's action is;
//! otherwise the trigger's own action runs.

#![forbid(unsafe_code)]

use switchyard_plugin_sdk::serde_json::Value;
use switchyard_plugin_sdk::{CheckEffects, CheckedPage, NativeTrigger, PayloadDoc, export_plugin};

/// A built `page_watch` check.
struct PageWatch {
    min_bytes: usize,
    must_contain: String,
    disable: bool,
}

impl NativeTrigger for PageWatch {
    const NAME: &'static str = "page_watch";
    const GROUP: &'static str = "page";
    const DESCRIPTION: &'static str =
        "Fires when the page does not answer, is smaller than min_bytes or lacks must_contain.";
    const PAYLOAD: PayloadDoc = PayloadDoc {
        kind: "object",
        example: r#"{"min_bytes": 512, "must_contain": "Buy now", "disable": true}"#,
        notes: "All optional. min_bytes counts the body's bytes; must_contain is matched \
                case-sensitively; disable: true disables the stream when the check fires.",
    };

    fn build(payload: &Value) -> Result<Self, String> {
        let params = match payload {
            Value::Null => return Err("give at least one of min_bytes and must_contain".into()),
            Value::Object(params) => params,
            other => return Err(format!("the params must be an object, not {other}")),
        };
        let min_bytes = match params.get("min_bytes") {
            None => 0,
            Some(value) => value
                .as_u64()
                .ok_or("`min_bytes` must be a non-negative integer")?
                as usize,
        };
        let must_contain = match params.get("must_contain") {
            None => String::new(),
            Some(value) => value
                .as_str()
                .ok_or("`must_contain` must be a string")?
                .to_string(),
        };
        let disable = match params.get("disable") {
            None => false,
            Some(value) => value.as_bool().ok_or("`disable` must be true or false")?,
        };
        if min_bytes == 0 && must_contain.is_empty() {
            return Err("give at least one of min_bytes and must_contain".into());
        }
        Ok(PageWatch {
            min_bytes,
            must_contain,
            disable,
        })
    }

    fn check(&self, page: &CheckedPage<'_>) -> Result<CheckEffects, String> {
        let problem = if !page.error.is_empty() {
            format!("the page did not answer: {}", page.error)
        } else if page.status >= 400 {
            format!("the page answered {}", page.status)
        } else if page.body.len() < self.min_bytes {
            format!(
                "the page has {} bytes, fewer than {}",
                page.body.len(),
                self.min_bytes
            )
        } else if !page.body.contains(&self.must_contain) {
            format!("the page lacks `{}`", self.must_contain)
        } else {
            return Ok(CheckEffects::pass());
        };
        Ok(CheckEffects {
            disable: self.disable,
            ..CheckEffects::fire(problem)
        })
    }
}

export_plugin! {
    name: "page-watch",
    version: env!("CARGO_PKG_VERSION"),
    filters: [],
    actions: [],
    triggers: [PageWatch],
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_plugin_sdk::serde_json::json;

    fn page(status: u16, body: &str) -> CheckedPage<'_> {
        CheckedPage {
            status,
            body,
            url: "http://offer.test/",
            elapsed_ms: 5,
            error: "",
        }
    }

    #[test]
    fn fires_on_small_pages_missing_text_and_failures() {
        let watch = PageWatch::build(&json!({"min_bytes": 10, "must_contain": "Buy now"})).unwrap();
        assert_eq!(
            watch.check(&page(200, "<p>Buy now, quickly</p>")).unwrap(),
            CheckEffects::pass()
        );
        let small = watch.check(&page(200, "Buy now")).unwrap();
        assert!(!small.ok && !small.disable, "{small:?}");
        assert!(small.message.contains("7 bytes"), "{small:?}");
        let lacking = watch.check(&page(200, "<p>sold out, sorry</p>")).unwrap();
        assert!(lacking.message.contains("lacks `Buy now`"), "{lacking:?}");
        assert!(!watch.check(&page(503, "<p>Buy now!!!</p>")).unwrap().ok);
        let failed = CheckedPage {
            error: "connection refused",
            ..page(0, "")
        };
        assert!(watch.check(&failed).unwrap().message.contains("refused"));
    }

    #[test]
    fn asks_to_disable_when_told_and_refuses_bad_params() {
        let watch = PageWatch::build(&json!({"min_bytes": 100, "disable": true})).unwrap();
        let effects = watch.check(&page(200, "tiny")).unwrap();
        assert!(!effects.ok && effects.disable);
        assert!(PageWatch::build(&Value::Null).is_err());
        assert!(PageWatch::build(&json!({})).is_err());
        assert!(PageWatch::build(&json!({"min_bytes": -1})).is_err());
        assert!(PageWatch::build(&json!({"must_contain": 5})).is_err());
        assert!(PageWatch::build(&json!([1])).is_err());
    }
}
