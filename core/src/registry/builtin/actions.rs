//! Keitaro's stream actions under their exact names (and aliases). Actions are synchronous:
//! anything that needs IO (fetching a URL, reading an uploaded file, another campaign) is
//! returned as a [`Reply`] for the host to carry out.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::registry::{
    Action, ActionEnv, ActionError, ActionFactory, FetchMode, KindInfo, Origin, PayloadDoc,
    Registry, Reply,
};
use crate::template::{Escape, Template, check_http_url, html_escape_into};

type BuildFn = dyn Fn(&Value, &Value) -> Result<Box<dyn Action>, String> + Send + Sync;

struct BuiltinAction {
    info: KindInfo,
    build: Box<BuildFn>,
}

impl ActionFactory for BuiltinAction {
    fn info(&self) -> &KindInfo {
        &self.info
    }

    fn build(&self, payload: &Value, options: &Value) -> Result<Box<dyn Action>, String> {
        (self.build)(payload, options)
    }
}

struct FnAction<F>(F);

impl<F: Fn(&dyn ActionEnv) -> Result<Reply, ActionError> + Send + Sync> Action for FnAction<F> {
    fn run(&self, env: &dyn ActionEnv) -> Result<Reply, ActionError> {
        (self.0)(env)
    }
}

fn boxed(
    f: impl Fn(&dyn ActionEnv) -> Result<Reply, ActionError> + Send + Sync + 'static,
) -> Box<dyn Action> {
    Box::new(FnAction(f))
}

#[allow(clippy::too_many_arguments)]
fn add(
    registry: &mut Registry,
    name: &str,
    aliases: &[&str],
    group: &str,
    description: &str,
    payload: (&str, Value, &str),
    build: impl Fn(&Value, &Value) -> Result<Box<dyn Action>, String> + Send + Sync + 'static,
) {
    let factory = BuiltinAction {
        info: KindInfo {
            name: name.to_string(),
            origin: Origin::Builtin,
            group: group.to_string(),
            description: description.to_string(),
            payload: PayloadDoc {
                kind: payload.0.to_string(),
                example: payload.1,
                notes: payload.2.to_string(),
            },
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            modes: true,
        },
        build: Box::new(build),
    };
    registry
        .add_action(Arc::new(factory))
        .expect("built-in action names are unique");
}

/// The payload as text: a string, or an object's `url`/`value`/`payload`/`html`/`text` member.
fn payload_text(payload: &Value) -> Option<String> {
    match payload {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(map) => ["url", "value", "payload", "html", "text", "campaign_id"]
            .iter()
            .find_map(|k| map.get(*k).and_then(payload_text)),
        _ => None,
    }
}

/// A URL template, checked to be an absolute http(s) URL (macros allowed).
fn url_template(payload: &Value, name: &str) -> Result<Template, String> {
    let text = payload_text(payload)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| format!("the `{name}` action needs a URL"))?;
    let template = Template::parse(text.trim())?;
    template.check_target()?;
    Ok(template)
}

/// Expands a URL template and checks the result is still a safe http(s) URL.
fn target(env: &dyn ActionEnv, template: &Template) -> Result<String, ActionError> {
    let url = env.expand(template);
    check_http_url(&url).map_err(ActionError)?;
    Ok(url)
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    html_escape_into(text, &mut out);
    out
}

/// A JavaScript string literal that is also safe inside a `<script>` element.
fn js_string(text: &str) -> String {
    serde_json::to_string(text)
        .unwrap_or_else(|_| "\"\"".into())
        .replace("</", "<\\/")
}

fn html(body: String) -> Reply {
    Reply::Content {
        status: 200,
        content_type: "text/html; charset=utf-8".into(),
        body: body.into_bytes(),
        headers: Vec::new(),
    }
}

fn page(head: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">{head}</head><body>{body}</body></html>\n"
    )
}

/// Registers a redirect-like action: its payload is a URL template, `render` builds the reply.
fn url_action(
    registry: &mut Registry,
    name: &'static str,
    aliases: &[&str],
    description: &str,
    render: fn(&dyn ActionEnv, String) -> Reply,
) {
    add(
        registry,
        name,
        aliases,
        "redirect",
        description,
        (
            "string",
            json!("https://offer.example/?subid={subid}"),
            "An http(s) URL; macros are expanded and URL-encoded.",
        ),
        move |payload, _| {
            let template = url_template(payload, name)?;
            Ok(boxed(move |env| Ok(render(env, target(env, &template)?))))
        },
    );
}

/// Registers every built-in action.
pub fn register(registry: &mut Registry) {
    url_action(
        registry,
        "http",
        &["location", "redirect"],
        "HTTP 302 redirect.",
        |_, url| Reply::Redirect { url, status: 302 },
    );
    url_action(
        registry,
        "meta",
        &[],
        "A page that redirects with a meta refresh.",
        |_, url| {
            html(page(
                &format!(
                    "<meta http-equiv=\"refresh\" content=\"0; url={}\">",
                    html_escape(&url)
                ),
                "",
            ))
        },
    );
    url_action(
        registry,
        "double_meta",
        &[],
        "Two meta refreshes through the tracker, so the target sees no referrer.",
        |env, url| {
            let hop = env.hop_url(&url);
            html(page(
                &format!(
                    "<meta name=\"referrer\" content=\"no-referrer\"><meta http-equiv=\"refresh\" content=\"0; url={}\">",
                    html_escape(&hop)
                ),
                "",
            ))
        },
    );
    url_action(
        registry,
        "blank_referrer",
        &[],
        "Redirect by script with the referrer policy set to no-referrer.",
        |_, url| {
            html(page(
                "<meta name=\"referrer\" content=\"no-referrer\">",
                &format!(
                    "<script>window.location.replace({});</script>",
                    js_string(&url)
                ),
            ))
        },
    );
    url_action(
        registry,
        "formsubmit",
        &[],
        "A page that submits a form (POST) to the URL, carrying its query parameters as fields.",
        |_, url| {
            let (action, fields) = match url::Url::parse(&url) {
                Ok(parsed) => {
                    let fields: String = parsed
                        .query_pairs()
                        .map(|(k, v)| {
                            format!(
                                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                                html_escape(&k),
                                html_escape(&v)
                            )
                        })
                        .collect();
                    let mut bare = parsed.clone();
                    bare.set_query(None);
                    (bare.to_string(), fields)
                }
                Err(_) => (url.clone(), String::new()),
            };
            html(page(
                "",
                &format!(
                    "<form id=\"f\" method=\"post\" action=\"{}\">{fields}</form><script>document.getElementById('f').submit();</script>",
                    html_escape(&action)
                ),
            ))
        },
    );
    url_action(
        registry,
        "js",
        &[],
        "A page that redirects with JavaScript.",
        |_, url| {
            html(page(
                "",
                &format!(
                    "<script>window.location.href = {};</script>",
                    js_string(&url)
                ),
            ))
        },
    );
    url_action(
        registry,
        "js_for_iframe",
        &[],
        "A page for use inside an iframe: it navigates the top window.",
        |_, url| {
            html(page(
                "",
                &format!(
                    "<script>window.top.location.href = {};</script>",
                    js_string(&url)
                ),
            ))
        },
    );
    url_action(
        registry,
        "js_for_script",
        &[],
        "JavaScript (not HTML) for a `<script src>` tag: it navigates the page.",
        |_, url| Reply::Content {
            status: 200,
            content_type: "application/javascript; charset=utf-8".into(),
            body: format!("window.location.href = {};\n", js_string(&url)).into_bytes(),
            headers: Vec::new(),
        },
    );
    url_action(
        registry,
        "iframe",
        &[],
        "A page that shows the URL in a full-window iframe.",
        |_, url| {
            html(page(
                "<style>html,body,iframe{margin:0;padding:0;border:0;width:100%;height:100%;overflow:hidden}</style>",
                &format!("<iframe src=\"{}\"></iframe>", html_escape(&url)),
            ))
        },
    );
    url_action(
        registry,
        "frame",
        &[],
        "A frameset page showing the URL.",
        |_, url| {
            html(format!(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><frameset rows=\"100%\"><frame src=\"{}\"></frameset></html>\n",
                html_escape(&url)
            ))
        },
    );
    url_action(
        registry,
        "remote",
        &[],
        "Fetches the URL; its body is the address to redirect to (cached about 60 s). The fetch is SSRF-guarded and bounded.",
        |_, url| Reply::Fetch {
            url,
            mode: FetchMode::Remote,
        },
    );
    url_action(
        registry,
        "curl",
        &[],
        "Fetches the URL and answers its content. The fetch is SSRF-guarded and bounded.",
        |_, url| Reply::Fetch {
            url,
            mode: FetchMode::Curl,
        },
    );

    add(
        registry,
        "local_file",
        &[],
        "content",
        "Serves a file of the uploaded landing or offer (default index.html).",
        (
            "string",
            json!("index.html"),
            "A path inside the uploaded archive.",
        ),
        |payload, _| {
            let path = payload_text(payload)
                .filter(|p| !p.trim().is_empty())
                .unwrap_or_else(|| "index.html".into());
            if path.split(['/', '\\']).any(|part| part == "..") {
                return Err(format!("`{path}` leaves the upload's directory"));
            }
            Ok(boxed(move |env| {
                let owner = env.owner().ok_or_else(|| {
                    ActionError("local_file runs only for a landing or an offer".into())
                })?;
                Ok(Reply::LocalFile {
                    owner,
                    path: path.clone(),
                })
            }))
        },
    );
    add(
        registry,
        "show_html",
        &[],
        "content",
        "Answers the payload as an HTML page (macro values HTML-escaped; `{offer}` is the landing's offer link).",
        (
            "string",
            json!("<h1>Hello {country}</h1><a href=\"{offer}\">Go</a>"),
            "HTML.",
        ),
        |payload, _| {
            let template =
                Template::parse_content(&payload_text(payload).unwrap_or_default(), Escape::Html);
            Ok(boxed(move |env| Ok(html(env.expand(&template)))))
        },
    );
    add(
        registry,
        "show_text",
        &[],
        "content",
        "Answers the payload as plain text (macro values verbatim).",
        ("string", json!("Hello"), "Text."),
        |payload, _| {
            let template = Template::parse_content(
                &payload_text(payload).unwrap_or_default(),
                Escape::Verbatim,
            );
            Ok(boxed(move |env| {
                Ok(Reply::Content {
                    status: 200,
                    content_type: "text/plain; charset=utf-8".into(),
                    body: env.expand(&template).into_bytes(),
                    headers: Vec::new(),
                })
            }))
        },
    );
    add(
        registry,
        "status404",
        &["not_found"],
        "content",
        "Answers 404 Not Found.",
        ("null", Value::Null, "No payload."),
        |_, _| {
            Ok(boxed(|_| {
                Ok(Reply::Content {
                    status: 404,
                    content_type: "text/html; charset=utf-8".into(),
                    body: Vec::new(),
                    headers: Vec::new(),
                })
            }))
        },
    );
    add(
        registry,
        "do_nothing",
        &[],
        "content",
        "Answers an empty 200.",
        ("null", Value::Null, "No payload."),
        |_, _| {
            Ok(boxed(|_| {
                Ok(Reply::Content {
                    status: 200,
                    content_type: "text/html; charset=utf-8".into(),
                    body: Vec::new(),
                    headers: Vec::new(),
                })
            }))
        },
    );
    add(
        registry,
        "sub_id",
        &["subid"],
        "content",
        "Answers the click's sub id as plain text.",
        ("null", Value::Null, "No payload."),
        |_, _| {
            Ok(boxed(|env| {
                Ok(Reply::Content {
                    status: 200,
                    content_type: "text/plain; charset=utf-8".into(),
                    body: env.click().sub_id.clone().into_bytes(),
                    headers: Vec::new(),
                })
            }))
        },
    );
    add(
        registry,
        "campaign",
        &["to_campaign"],
        "redirect",
        "Sends the click through another campaign (this one becomes its parent). Loops are cut after 5 hops.",
        ("number", json!(12), "The other campaign's id."),
        |payload, _| {
            let id = payload_text(payload)
                .and_then(|t| t.trim().parse::<i64>().ok())
                .filter(|id| *id > 0)
                .ok_or("the `campaign` action needs the id of another campaign")?;
            Ok(boxed(move |_| Ok(Reply::ToCampaign { campaign_id: id })))
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Click;
    use crate::registry::FileOwner;

    struct Env(Click);

    impl ActionEnv for Env {
        fn expand(&self, template: &Template) -> String {
            struct M<'a>(&'a Click);
            impl crate::template::MacroSource for M<'_> {
                fn value(&self, name: &str, _: &str) -> Option<std::borrow::Cow<'_, str>> {
                    (name == "subid").then_some(std::borrow::Cow::Borrowed(self.0.sub_id.as_str()))
                }
            }
            template.expand(&M(&self.0))
        }
        fn base_url(&self) -> String {
            "http://tracker.test".into()
        }
        fn hop_url(&self, url: &str) -> String {
            format!("http://tracker.test/?_hop={url}")
        }
        fn owner(&self) -> Option<FileOwner> {
            Some(FileOwner::Landing(3))
        }
        fn click(&self) -> &Click {
            &self.0
        }
    }

    fn run(name: &str, payload: Value) -> Result<Reply, String> {
        let registry = Registry::builtin();
        let factory = registry.action(name).ok_or("unknown")?;
        let action = factory.build(&payload, &Value::Null)?;
        let mut click = Click::blank();
        click.sub_id = "abc".into();
        action.run(&Env(click)).map_err(|e| e.0)
    }

    fn body(reply: Reply) -> String {
        match reply {
            Reply::Content { body, .. } => String::from_utf8(body).unwrap(),
            other => panic!("not content: {other:?}"),
        }
    }

    #[test]
    fn redirects_and_aliases() {
        for name in ["http", "location", "redirect"] {
            assert_eq!(
                run(name, json!("https://o.test/?s={subid}")).unwrap(),
                Reply::Redirect {
                    url: "https://o.test/?s=abc".into(),
                    status: 302
                }
            );
        }
        assert!(run("http", json!("javascript:alert(1)")).is_err());
        assert!(run("http", Value::Null).is_err());
        assert_eq!(
            run("http", json!({"url": "https://o.test/"})).unwrap(),
            Reply::Redirect {
                url: "https://o.test/".into(),
                status: 302
            }
        );
    }

    #[test]
    fn pages_escape_their_urls() {
        let meta = body(run("meta", json!("https://o.test/?a=1&b=\"x\"")).unwrap());
        assert!(
            meta.contains("url=https://o.test/?a=1&amp;b=&quot;x&quot;"),
            "{meta}"
        );
        let js = body(run("js", json!("https://o.test/</script>")).unwrap());
        assert!(js.contains("<\\/script>"), "{js}");
        let double = body(run("double_meta", json!("https://o.test/")).unwrap());
        assert!(double.contains("http://tracker.test/?_hop="), "{double}");
        let form = body(run("formsubmit", json!("https://o.test/p?x=1")).unwrap());
        assert!(
            form.contains("action=\"https://o.test/p\"") && form.contains("name=\"x\" value=\"1\""),
            "{form}"
        );
        for name in [
            "blank_referrer",
            "js_for_iframe",
            "js_for_script",
            "iframe",
            "frame",
        ] {
            assert!(
                body(run(name, json!("https://o.test/x")).unwrap()).contains("https://o.test/x"),
                "{name}"
            );
        }
    }

    #[test]
    fn content_actions() {
        assert_eq!(body(run("sub_id", Value::Null).unwrap()), "abc");
        assert_eq!(
            body(run("show_text", json!("id={subid}")).unwrap()),
            "id=abc"
        );
        assert!(matches!(
            run("status404", Value::Null).unwrap(),
            Reply::Content { status: 404, .. }
        ));
        assert!(matches!(
            run("do_nothing", Value::Null).unwrap(),
            Reply::Content { status: 200, .. }
        ));
        assert_eq!(
            run("campaign", json!(7)).unwrap(),
            Reply::ToCampaign { campaign_id: 7 }
        );
        assert_eq!(
            run("campaign", json!("7")).unwrap(),
            Reply::ToCampaign { campaign_id: 7 }
        );
        assert!(run("campaign", json!("x")).is_err());
        assert_eq!(
            run("local_file", json!("a/b.html")).unwrap(),
            Reply::LocalFile {
                owner: FileOwner::Landing(3),
                path: "a/b.html".into()
            }
        );
        assert!(run("local_file", json!("../etc/passwd")).is_err());
        assert!(matches!(
            run("curl", json!("https://o.test/")).unwrap(),
            Reply::Fetch {
                mode: FetchMode::Curl,
                ..
            }
        ));
        assert!(matches!(
            run("remote", json!("https://o.test/")).unwrap(),
            Reply::Fetch {
                mode: FetchMode::Remote,
                ..
            }
        ));
    }
}
