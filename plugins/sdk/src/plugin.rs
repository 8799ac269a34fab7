//! The safe traits plugin code implements. `export_plugin!` turns them into the C ABI.

use serde_json::Value;

use crate::Click;

/// The documented shape of a kind's payload, shown in the Admin API's catalogue.
#[derive(Debug, Clone, Copy)]
pub struct PayloadDoc {
    /// The payload's JSON type: `object`, `array`, `string`, `number` or `null`.
    pub kind: &'static str,
    /// An example payload as JSON text (checked by the host when it loads the library).
    pub example: &'static str,
    pub notes: &'static str,
}

impl PayloadDoc {
    /// "Takes no payload".
    pub const NONE: PayloadDoc = PayloadDoc {
        kind: "null",
        example: "null",
        notes: "",
    };
}

/// A stream filter kind. The type is both the kind's description (the constants) and one
/// built filter (a value made by [`NativeFilter::build`] from a stream's payload).
///
/// `build` runs once per stream when the routing snapshot is built, never per click: parse,
/// validate and precompute there (read files, compile patterns). `matches` runs per click, on
/// many threads at once; it must be quick (the host's budget is a few milliseconds, and a
/// filter that keeps exceeding it is disabled), must not block and should not panic (a panic
/// is caught and counts as "does not match").
pub trait NativeFilter: Send + Sync + Sized + 'static {
    /// The kind's name: lower-case ASCII letters, digits and `_`. Streams use it as
    /// `native:<NAME>`.
    const NAME: &'static str;
    /// A menu group (`traffic`, `geo`, `device`, …).
    const GROUP: &'static str = "native";
    const DESCRIPTION: &'static str;
    const PAYLOAD: PayloadDoc = PayloadDoc::NONE;

    /// Checks a stream's payload and builds the filter. The error says what is wrong.
    fn build(payload: &Value) -> Result<Self, String>;

    /// Whether the click matches (before the stream's accept/reject mode is applied). An
    /// error counts as "does not match" and is logged by the host.
    fn matches(&self, click: &Click<'_>) -> Result<bool, String>;
}

/// What an action answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A redirect to an absolute http(s) URL; `status` 301, 302, 303, 307 or 308.
    Redirect { url: String, status: u16 },
    /// A response with a body.
    Content {
        status: u16,
        content_type: String,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    },
}

/// A stream (or landing/offer) action kind; see [`NativeFilter`] for the life cycle. Actions
/// are synchronous and must not do IO per click.
pub trait NativeAction: Send + Sync + Sized + 'static {
    /// The kind's name: lower-case ASCII letters, digits and `_`. Streams use it as
    /// `native:<NAME>`.
    const NAME: &'static str;
    const GROUP: &'static str = "native";
    const DESCRIPTION: &'static str;
    const PAYLOAD: PayloadDoc = PayloadDoc::NONE;

    /// Checks a payload (and the stream's action options) and builds the action.
    fn build(payload: &Value, options: &Value) -> Result<Self, String>;

    /// Answers a click. An error makes the host answer empty and log it.
    fn run(&self, click: &Click<'_>) -> Result<Reply, String>;
}

/// The page a trigger checked, borrowed from the host for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedPage<'a> {
    /// The HTTP status; 0 when the fetch failed (see `error`).
    pub status: u16,
    /// The response body as text (invalid UTF-8 replaced), cut by the host to at most
    /// [`MAX_CHECK_BODY`](crate::abi::MAX_CHECK_BODY) bytes.
    pub body: &'a str,
    /// The URL that was fetched.
    pub url: &'a str,
    pub elapsed_ms: u64,
    /// Why the fetch failed; "" when it worked.
    pub error: &'a str,
}

/// A trigger check's verdict: `ok: false` fires the trigger; `disable` or `replace_url`
/// choose the action instead of the trigger's own; `message` is logged by the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckEffects {
    pub ok: bool,
    pub disable: bool,
    pub replace_url: bool,
    pub message: String,
}

impl CheckEffects {
    /// The page is fine: the trigger does not fire.
    pub fn pass() -> CheckEffects {
        CheckEffects {
            ok: true,
            ..CheckEffects::default()
        }
    }

    /// The trigger fires (with the trigger's own action), saying why.
    pub fn fire(message: impl Into<String>) -> CheckEffects {
        CheckEffects {
            ok: false,
            message: message.into(),
            ..CheckEffects::default()
        }
    }
}

/// A stream trigger condition kind, used as `native:<NAME>`. The trigger runner fetches the
/// trigger's target page, builds the check from the trigger's `payload.params` and calls
/// [`NativeTrigger::check`] once; the instance is released right after. Checks run on a
/// blocking worker thread, not per click, but the host's time budget and disabling apply as
/// for filters. A panic or an error is logged and the trigger does not fire.
pub trait NativeTrigger: Send + Sync + Sized + 'static {
    /// The kind's name: lower-case ASCII letters, digits and `_`.
    const NAME: &'static str;
    const GROUP: &'static str = "native";
    const DESCRIPTION: &'static str;
    const PAYLOAD: PayloadDoc = PayloadDoc::NONE;

    /// Checks the trigger's `payload.params` and builds the check.
    fn build(payload: &Value) -> Result<Self, String>;

    /// Judges a fetched page.
    fn check(&self, page: &CheckedPage<'_>) -> Result<CheckEffects, String>;
}
