//! A test-only plugin whose kinds misbehave on purpose, so that the host's containment can be
//! tested: panics, calls that overrun the time budget, a call that never returns, a filter
//! that fails one call in N, replies the host must refuse, and a filter whose answer depends
//! on how the library was built (for reload tests).
//!
//! Never put it in a real plugin directory.

#![forbid(unsafe_code)]

use std::time::Duration;

use switchyard_plugin_sdk::serde_json::Value;
use switchyard_plugin_sdk::{Click, NativeAction, NativeFilter, PayloadDoc, Reply, export_plugin};

/// `misbehaving_panic`: panics where the payload says: `{"panic_in": "build"}` when the stream
/// is built, `{"panic_in": "matches"}` on every click. Otherwise it matches every click.
struct PanicOnDemand {
    panic_in_matches: bool,
}

impl NativeFilter for PanicOnDemand {
    const NAME: &'static str = "misbehaving_panic";
    const GROUP: &'static str = "test";
    const DESCRIPTION: &'static str = "Panics on demand (tests only).";
    const PAYLOAD: PayloadDoc = PayloadDoc {
        kind: "object",
        example: r#"{"panic_in": "matches"}"#,
        notes: "`panic_in`: `build` or `matches`.",
    };

    fn build(payload: &Value) -> Result<Self, String> {
        match payload.get("panic_in").and_then(Value::as_str) {
            Some("build") => panic!("misbehaving plugin: panic in build, as asked"),
            Some("matches") => Ok(PanicOnDemand {
                panic_in_matches: true,
            }),
            _ => Ok(PanicOnDemand {
                panic_in_matches: false,
            }),
        }
    }

    fn matches(&self, click: &Click<'_>) -> Result<bool, String> {
        if self.panic_in_matches {
            panic!(
                "misbehaving plugin: panic in matches for click {}",
                click.sub_id()
            );
        }
        Ok(true)
    }
}

/// `misbehaving_sleep`: sleeps `{"sleep_ms": N}` on every click, then matches.
struct Sleepy {
    sleep: Duration,
}

impl NativeFilter for Sleepy {
    const NAME: &'static str = "misbehaving_sleep";
    const GROUP: &'static str = "test";
    const DESCRIPTION: &'static str = "Sleeps on every click, then matches (tests only).";
    const PAYLOAD: PayloadDoc = PayloadDoc {
        kind: "object",
        example: r#"{"sleep_ms": 20}"#,
        notes: "",
    };

    fn build(payload: &Value) -> Result<Self, String> {
        let ms = payload
            .get("sleep_ms")
            .and_then(Value::as_u64)
            .ok_or("`sleep_ms` is required")?;
        Ok(Sleepy {
            sleep: Duration::from_millis(ms),
        })
    }

    fn matches(&self, _click: &Click<'_>) -> Result<bool, String> {
        std::thread::sleep(self.sleep);
        Ok(true)
    }
}

/// `misbehaving_constant`: answers the payload (`true`/`false`) without looking at the click:
/// the cost of a call through the boundary and nothing else.
struct Constant(bool);

impl NativeFilter for Constant {
    const NAME: &'static str = "misbehaving_constant";
    const GROUP: &'static str = "test";
    const DESCRIPTION: &'static str = "Answers its payload (tests and benchmarks).";
    const PAYLOAD: PayloadDoc = PayloadDoc {
        kind: "boolean",
        example: "true",
        notes: "",
    };

    fn build(payload: &Value) -> Result<Self, String> {
        Ok(Constant(payload.as_bool().unwrap_or(false)))
    }

    fn matches(&self, _click: &Click<'_>) -> Result<bool, String> {
        Ok(self.0)
    }
}

/// `misbehaving_variant`: matches only in a library built with the `variant-b` feature.
struct BuildVariant;

impl NativeFilter for BuildVariant {
    const NAME: &'static str = "misbehaving_variant";
    const GROUP: &'static str = "test";
    const DESCRIPTION: &'static str =
        "Matches when the library was built with `variant-b` (reload tests).";

    fn build(_payload: &Value) -> Result<Self, String> {
        Ok(BuildVariant)
    }

    fn matches(&self, _click: &Click<'_>) -> Result<bool, String> {
        Ok(cfg!(feature = "variant-b"))
    }
}

/// `misbehaving_reply`: answers what the payload asks for, including replies the host must
/// refuse: `{"reply": "panic" | "javascript" | "header_injection" | "ok"}`. `ok` echoes the
/// click's IP, a query parameter and a click field as text.
struct BadReply {
    reply: String,
}

impl NativeAction for BadReply {
    const NAME: &'static str = "misbehaving_reply";
    const GROUP: &'static str = "test";
    const DESCRIPTION: &'static str = "Answers good or bad replies on demand (tests only).";
    const PAYLOAD: PayloadDoc = PayloadDoc {
        kind: "object",
        example: r#"{"reply": "ok"}"#,
        notes: "`reply`: `ok`, `panic`, `javascript` or `header_injection`.",
    };

    fn build(payload: &Value, _options: &Value) -> Result<Self, String> {
        Ok(BadReply {
            reply: payload
                .get("reply")
                .and_then(Value::as_str)
                .unwrap_or("ok")
                .to_string(),
        })
    }

    fn run(&self, click: &Click<'_>) -> Result<Reply, String> {
        match self.reply.as_str() {
            "panic" => panic!("misbehaving plugin: panic in run, as asked"),
            "javascript" => Ok(Reply::Redirect {
                url: "javascript:alert(1)".into(),
                status: 302,
            }),
            "header_injection" => Ok(Reply::Content {
                status: 200,
                content_type: "text/plain".into(),
                body: Vec::new(),
                headers: vec![("x-test".into(), "a\r\nset-cookie: evil=1".into())],
            }),
            _ => Ok(Reply::Content {
                status: 200,
                content_type: "text/plain; charset=utf-8".into(),
                body: format!(
                    "ip={} utm={} sub_id_2={} stream={:?}",
                    click.ip(),
                    click.param("utm").unwrap_or("-"),
                    click.sub_id_n(2),
                    click.stream_id()
                )
                .into_bytes(),
                headers: vec![("x-plugin".into(), "misbehaving".into())],
            }),
        }
    }
}

/// `misbehaving_hang`: never returns from `matches` (the host must set the call aside).
struct Hang;

impl NativeFilter for Hang {
    const NAME: &'static str = "misbehaving_hang";
    const GROUP: &'static str = "test";
    const DESCRIPTION: &'static str = "Never returns (tests only).";
    const PAYLOAD: PayloadDoc = PayloadDoc {
        kind: "null",
        example: "null",
        notes: "",
    };

    fn build(_payload: &Value) -> Result<Self, String> {
        Ok(Hang)
    }

    fn matches(&self, _click: &Click<'_>) -> Result<bool, String> {
        loop {
            std::thread::sleep(Duration::from_secs(3_600));
        }
    }
}

/// `misbehaving_flaky`: `{"fail_every": N}` fails one call in N (the first, then every Nth),
/// and matches otherwise.
struct Flaky {
    fail_every: u64,
    calls: std::sync::atomic::AtomicU64,
}

impl NativeFilter for Flaky {
    const NAME: &'static str = "misbehaving_flaky";
    const GROUP: &'static str = "test";
    const DESCRIPTION: &'static str = "Fails one call in N (tests only).";
    const PAYLOAD: PayloadDoc = PayloadDoc {
        kind: "object",
        example: r#"{"fail_every": 2}"#,
        notes: "",
    };

    fn build(payload: &Value) -> Result<Self, String> {
        let fail_every = payload
            .get("fail_every")
            .and_then(Value::as_u64)
            .filter(|n| *n > 0)
            .ok_or("`fail_every` must be a positive integer")?;
        Ok(Flaky {
            fail_every,
            calls: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn matches(&self, _click: &Click<'_>) -> Result<bool, String> {
        let n = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n.is_multiple_of(self.fail_every) {
            Err(format!("call {} fails, as asked", n + 1))
        } else {
            Ok(true)
        }
    }
}

export_plugin! {
    name: "misbehaving",
    version: env!("CARGO_PKG_VERSION"),
    filters: [PanicOnDemand, Sleepy, Constant, BuildVariant, Hang, Flaky],
    actions: [BadReply],
}
