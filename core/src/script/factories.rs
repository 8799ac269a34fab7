//! Loading `.rhai` files into registry kinds: `filters/*.rhai` define `fn filter(click, params)`
//! returning a bool, `actions/*.rhai` define `fn action(click, params)` returning a map,
//! `triggers/*.rhai` define `fn check(response, params)` returning a map of effects.
//!
//! A script's header comment (`//!` lines at the top) is its catalogue entry: the first lines
//! are the description; `//! group: NAME` and `//! payload: JSON` set the group and an example
//! payload.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rhai::{AST, CallFnOptions, Dynamic, Engine, Map, Scope};
use serde_json::Value;

use super::{ScriptClick, ScriptError, display_path, kind_dirs, with_deadline};
use crate::registry::{
    Action, ActionEnv, ActionError, ActionFactory, Filter, FilterError, FilterFactory, KindInfo,
    Origin, PayloadDoc, Reply,
};
use crate::template::check_http_url;
use crate::visit::ClickContext;

/// Which contract a script implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScriptKindType {
    Filter,
    Action,
    Trigger,
}

impl ScriptKindType {
    fn entry_point(self) -> &'static str {
        match self {
            ScriptKindType::Filter => "filter",
            ScriptKindType::Action => "action",
            ScriptKindType::Trigger => "check",
        }
    }
}

/// A compiled script: one registry kind.
pub struct ScriptKind {
    pub kind: ScriptKindType,
    pub info: KindInfo,
    pub path: PathBuf,
    engine: Arc<Engine>,
    ast: Arc<AST>,
    /// A hash of the script's text: a reload keeps the kind's guard while it is the same.
    fingerprint: String,
    /// How long one call may run before it is stopped.
    budget: Duration,
}

impl std::fmt::Debug for ScriptKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptKind")
            .field("name", &self.info.name)
            .field("path", &self.path)
            .finish()
    }
}

impl ScriptKind {
    /// What the kind was built from, for its guard.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Calls the script's entry point with the deadline armed. Failures are counted by the
    /// kind's guard (see `crate::guard`), not here.
    fn call<T: Clone + Send + Sync + 'static>(
        &self,
        args: (ScriptClick, Dynamic),
    ) -> Result<T, String> {
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        let result = with_deadline(self.budget, || {
            self.engine.call_fn_with_options::<T>(
                options,
                &mut Scope::new(),
                &self.ast,
                self.kind.entry_point(),
                args,
            )
        });
        result.map_err(|error| self.fail(describe(&error, self.budget)))
    }

    /// Runs a trigger script's `check(response, params)`: `response` has `status` (int),
    /// `body` (string), `url`, `elapsed_ms` (int) and `error` ("" when the fetch worked).
    /// Returns the effects map (`ok`, `disable`, `replace_url`, `message`).
    pub fn run_check(&self, response: Map, params: &Value) -> Result<Map, String> {
        if self.kind != ScriptKindType::Trigger {
            return Err(format!("{} is not a trigger script", self.info.name));
        }
        let params = super::factories::params(params)?;
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        let result = with_deadline(self.budget, || {
            self.engine.call_fn_with_options::<Map>(
                options,
                &mut Scope::new(),
                &self.ast,
                "check",
                (response, params),
            )
        });
        result.map_err(|error| self.fail(describe(&error, self.budget)))
    }

    /// A failure's message, naming the script file.
    fn fail(&self, message: String) -> String {
        format!("{}: {message}", self.path.display())
    }
}

/// Loads every script under `dir` (`filters/`, `actions/`, `triggers/`). Returns the kinds that
/// compiled and every problem found (with file, line and column).
/// `budget` is how long one call may run.
pub fn load_dir(dir: &Path, budget: Duration) -> (Vec<Arc<ScriptKind>>, Vec<ScriptError>) {
    let engine = Arc::new(super::hardened_engine());
    let mut kinds = Vec::new();
    let mut errors = Vec::new();
    for (kind, sub) in kind_dirs(dir) {
        let Ok(entries) = std::fs::read_dir(&sub) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
            .collect();
        paths.sort();
        for path in paths {
            match load_file(&engine, kind, &path, dir, budget) {
                Ok(script) => kinds.push(Arc::new(script)),
                Err(error) => errors.push(error),
            }
        }
    }
    (kinds, errors)
}

fn load_file(
    engine: &Arc<Engine>,
    kind: ScriptKindType,
    path: &Path,
    base: &Path,
    budget: Duration,
) -> Result<ScriptKind, ScriptError> {
    let shown = display_path(path, base);
    let text = std::fs::read_to_string(path).map_err(|e| ScriptError::Read {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if stem.is_empty()
        || !stem
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(ScriptError::Invalid {
            path: shown,
            message:
                "a script's file name must use only a-z, 0-9 and _ (it becomes the kind's name)"
                    .into(),
        });
    }
    let ast = engine.compile(&text).map_err(|error| {
        let position = error.position();
        ScriptError::Compile {
            path: shown.clone(),
            line: position.line().unwrap_or(0),
            column: position.position().unwrap_or(0),
            message: error.err_type().to_string(),
        }
    })?;
    let entry = kind.entry_point();
    if !ast
        .iter_functions()
        .any(|f| f.name == entry && f.params.len() == 2)
    {
        return Err(ScriptError::Invalid {
            path: shown,
            message: format!(
                "a {} script must define `fn {entry}(click, params)`",
                serde_json::to_value(kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
        });
    }
    let (description, group, example) = header(&text);
    Ok(ScriptKind {
        kind,
        info: KindInfo {
            name: format!("script:{stem}"),
            origin: Origin::Script { path: shown },
            group: group.unwrap_or_else(|| "script".into()),
            description,
            payload: PayloadDoc {
                kind: match &example {
                    Value::Array(_) => "array",
                    Value::Object(_) => "object",
                    Value::String(_) => "string",
                    Value::Null => "null",
                    _ => "number",
                }
                .into(),
                example,
                notes: "Passed to the script as `params`.".into(),
            },
            aliases: Vec::new(),
            modes: true,
        },
        path: path.to_path_buf(),
        engine: engine.clone(),
        ast: Arc::new(ast),
        fingerprint: fingerprint(&text),
        budget,
    })
}

/// A hash of a script's text (FNV-1a, hex): enough to tell an edited file from the same one.
fn fingerprint(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// (description, group, payload example) from the `//!` header lines.
fn header(text: &str) -> (String, Option<String>, Value) {
    let mut description = Vec::new();
    let mut group = None;
    let mut example = Value::Null;
    for line in text.lines() {
        let Some(line) = line.trim().strip_prefix("//!") else {
            if line.trim().is_empty() {
                continue;
            }
            break;
        };
        let line = line.trim();
        if let Some(g) = line.strip_prefix("group:") {
            group = Some(g.trim().to_string());
        } else if let Some(p) = line.strip_prefix("payload:") {
            example = serde_json::from_str(p.trim()).unwrap_or(Value::String(p.trim().to_string()));
        } else if !line.is_empty() {
            description.push(line.to_string());
        }
    }
    (description.join(" "), group, example)
}

/// The payload as the script's `params`; a missing (null) payload is an empty map, so scripts
/// can always test `"key" in params`.
pub(super) fn params(payload: &Value) -> Result<Dynamic, String> {
    if payload.is_null() {
        return Ok(Dynamic::from(Map::new()));
    }
    rhai::serde::to_dynamic(payload)
        .map_err(|e| format!("the payload cannot be passed to a script: {e}"))
}

/// A script filter kind in the registry.
pub struct ScriptFilterFactory(pub Arc<ScriptKind>);

struct ScriptFilter {
    script: Arc<ScriptKind>,
    params: Dynamic,
}

impl FilterFactory for ScriptFilterFactory {
    fn info(&self) -> &KindInfo {
        &self.0.info
    }

    fn fingerprint(&self) -> String {
        self.0.fingerprint.clone()
    }

    fn build(&self, payload: &Value) -> Result<Box<dyn Filter>, String> {
        Ok(Box::new(ScriptFilter {
            script: self.0.clone(),
            params: params(payload)?,
        }))
    }
}

impl Filter for ScriptFilter {
    fn matches(&self, ctx: &mut ClickContext<'_>) -> Result<bool, FilterError> {
        let mut view = ctx.memo(|ctx| {
            ctx.finish_enrichment();
            ScriptClick::new(&ctx.click, &ctx.visit.query, &ctx.visit.headers)
        });
        view.stream_id = ctx.checking_stream.unwrap_or_default();
        self.script
            .call::<bool>((view, self.params.clone()))
            .map_err(FilterError)
    }
}

/// A script action kind in the registry.
pub struct ScriptActionFactory(pub Arc<ScriptKind>);

struct ScriptAction {
    script: Arc<ScriptKind>,
    params: Dynamic,
}

impl ActionFactory for ScriptActionFactory {
    fn info(&self) -> &KindInfo {
        &self.0.info
    }

    fn fingerprint(&self) -> String {
        self.0.fingerprint.clone()
    }

    fn build(&self, payload: &Value, _options: &Value) -> Result<Box<dyn Action>, String> {
        Ok(Box::new(ScriptAction {
            script: self.0.clone(),
            params: params(payload)?,
        }))
    }
}

impl Action for ScriptAction {
    fn run(&self, env: &dyn ActionEnv) -> Result<Reply, ActionError> {
        let click = env.click();
        let query: Vec<(String, String)> =
            serde_json::from_str::<serde_json::Map<String, Value>>(&click.params)
                .map(|m| {
                    m.into_iter()
                        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
        let view = ScriptClick::new(click, &query, &[]);
        let map = self
            .script
            .call::<Map>((view, self.params.clone()))
            .map_err(ActionError)?;
        reply_from_map(&map).map_err(|message| ActionError(self.script.fail(message)))
    }
}

/// An action script's answer: `#{redirect: url, status: 302}`, `#{body, content_type, status,
/// headers}` or `#{campaign: id}`.
fn reply_from_map(map: &Map) -> Result<Reply, String> {
    let text = |key: &str| {
        map.get(key)
            .and_then(|v| v.clone().into_immutable_string().ok())
            .map(|s| s.to_string())
    };
    let status = map.get("status").and_then(|v| v.as_int().ok());
    if let Some(url) = text("redirect") {
        check_http_url(&url)?;
        let status = status.unwrap_or(302);
        if ![301, 302, 303, 307, 308].contains(&status) {
            return Err(format!(
                "a redirect status must be 301, 302, 303, 307 or 308, not {status}"
            ));
        }
        return Ok(Reply::Redirect {
            url,
            status: status as u16,
        });
    }
    if let Some(id) = map.get("campaign").and_then(|v| v.as_int().ok()) {
        return Ok(Reply::ToCampaign { campaign_id: id });
    }
    let status = status.unwrap_or(200);
    if !(200..=599).contains(&status) {
        return Err(format!("status {status} is not an HTTP status"));
    }
    let headers = map
        .get("headers")
        .and_then(|h| h.clone().try_cast::<Map>())
        .map(|h| {
            h.into_iter()
                .filter_map(|(k, v)| {
                    v.into_immutable_string()
                        .ok()
                        .map(|v| (k.to_string(), v.to_string()))
                })
                .filter(|(k, v)| !k.contains(['\r', '\n', ':']) && !v.contains(['\r', '\n']))
                .collect()
        })
        .unwrap_or_default();
    Ok(Reply::Content {
        status: status as u16,
        content_type: text("content_type").unwrap_or_else(|| "text/html; charset=utf-8".into()),
        body: text("body").unwrap_or_default().into_bytes(),
        headers,
    })
}

/// A script error for people: Rhai shows a termination from `on_progress` only as "Script
/// terminated", so the reason given there (the time budget) is taken from its token.
fn describe(error: &rhai::EvalAltResult, budget: Duration) -> String {
    match error {
        rhai::EvalAltResult::ErrorTerminated(token, _) if token.is_string() => {
            format!(
                "{} ({} ms)",
                token.clone().into_string().unwrap_or_default(),
                budget.as_millis()
            )
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, kind: &str, name: &str, text: &str) -> PathBuf {
        let sub = dir.join(kind);
        std::fs::create_dir_all(&sub).unwrap();
        let path = sub.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn compile_errors_name_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "filters",
            "broken.rhai",
            "fn filter(click, params) {\n    let x = ;\n}\n",
        );
        write(
            dir.path(),
            "filters",
            "no_entry.rhai",
            "fn other(a, b) { true }\n",
        );
        write(
            dir.path(),
            "filters",
            "Bad-Name.rhai",
            "fn filter(click, params) { true }\n",
        );
        let (kinds, errors) = load_dir(dir.path(), Duration::from_millis(5));
        assert!(kinds.is_empty());
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            shown
                .iter()
                .any(|e| e.starts_with("filters/broken.rhai:2:")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|e| e.contains("no_entry.rhai") && e.contains("fn filter(click, params)")),
            "{shown:?}"
        );
        assert!(
            shown.iter().any(|e| e.contains("Bad-Name.rhai")),
            "{shown:?}"
        );
    }

    #[test]
    fn header_becomes_the_catalogue_entry() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "filters",
            "odd.rhai",
            "//! Matches odd hours.\n//! group: time\n//! payload: {\"x\": 1}\nfn filter(click, params) { true }\n",
        );
        let (kinds, errors) = load_dir(dir.path(), Duration::from_millis(5));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(kinds[0].info.name, "script:odd");
        assert_eq!(kinds[0].info.description, "Matches odd hours.");
        assert_eq!(kinds[0].info.group, "time");
        assert_eq!(kinds[0].info.payload.example, serde_json::json!({"x": 1}));
        assert_eq!(
            kinds[0].info.origin,
            Origin::Script {
                path: "filters/odd.rhai".into()
            }
        );
    }

    #[test]
    fn action_maps_become_replies() {
        let mut map = Map::new();
        map.insert("redirect".into(), Dynamic::from("https://o.test/"));
        assert_eq!(
            reply_from_map(&map).unwrap(),
            Reply::Redirect {
                url: "https://o.test/".into(),
                status: 302
            }
        );
        map.insert("redirect".into(), Dynamic::from("javascript:alert(1)"));
        assert!(reply_from_map(&map).is_err());
        let mut content = Map::new();
        content.insert("body".into(), Dynamic::from("hi"));
        content.insert("status".into(), Dynamic::from(404_i64));
        assert!(matches!(
            reply_from_map(&content).unwrap(),
            Reply::Content { status: 404, .. }
        ));
    }
}
