//! Adapters that make a library's kinds ordinary registry factories: they build the
//! [`ClickView`] a plugin reads, call through the vtable with panics caught and time
//! measured, copy what the plugin returns and give its memory back to it.

use std::cell::OnceCell;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use serde_json::Value;
use switchyard_plugin_sdk::abi::{
    ActionBuildFn, ActionDecl, ActionRunFn, ClickView, FilterBuildFn, FilterDecl, FilterMatchesFn,
    HeaderOut, LOOKUP_FIELD, LOOKUP_HEADER, LOOKUP_PARAM, PluginBytes, REPLY_CONTENT,
    REPLY_REDIRECT, ReleaseFn, ReplyOut, Status, StrRef,
};

use crate::enrich::{DeviceInfo, GeoInfo};
use crate::model::Click;
use crate::registry::{
    Action, ActionEnv, ActionError, ActionFactory, Filter, FilterError, FilterFactory, KindInfo,
    Reply,
};
use crate::template::check_http_url;
use crate::visit::{ClickContext, Visit};

pub(super) type FreeBytesFn = unsafe extern "C" fn(bytes: PluginBytes);
type FreeReplyFn = unsafe extern "C" fn(reply: *mut ReplyOut);

/// The most response headers a plugin reply may carry.
const MAX_REPLY_HEADERS: usize = 64;

/// Copies a plugin-owned message and hands the buffer back to the plugin.
pub(super) fn take_message(free_bytes: FreeBytesFn, bytes: PluginBytes) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    // SAFETY: the plugin wrote this buffer during the call that just returned and has not
    // freed it; it is read once here, before being handed back.
    let text = String::from_utf8_lossy(unsafe { bytes.as_slice() }).into_owned();
    // SAFETY: the buffer came from this library and is freed exactly once, by its own side.
    unsafe { free_bytes(bytes) };
    text
}

/// A failed call's description, from its status and message (`error: …`, `panic: …`).
pub(super) fn failure(status: Status, message: String) -> String {
    let message = if message.is_empty() {
        "no message".to_string()
    } else {
        message
    };
    match status {
        Status::PANIC => format!("panic: {message}"),
        Status::ERROR => format!("error: {message}"),
        Status(other) => format!("error: unknown status {other}: {message}"),
    }
}

/// What the host's lookup callback reads from. Lives on the host's stack for one call.
enum HostData<'h> {
    Filter {
        visit: &'h Visit,
        click: &'h Click,
        geo: &'h GeoInfo,
        device: &'h DeviceInfo,
    },
    Action {
        click: &'h Click,
        /// The click's query parameters, parsed from `Click::params` on first use.
        params: OnceCell<Vec<(String, String)>>,
    },
}

impl HostData<'_> {
    fn click(&self) -> &Click {
        match self {
            HostData::Filter { click, .. } | HostData::Action { click, .. } => click,
        }
    }

    fn lookup(&self, namespace: u32, name: &str) -> Option<&str> {
        match namespace {
            LOOKUP_PARAM => match self {
                HostData::Filter { visit, .. } => visit.param(name),
                HostData::Action { click, params } => params
                    .get_or_init(|| parse_params(&click.params))
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.as_str()),
            },
            LOOKUP_HEADER => match self {
                HostData::Filter { visit, .. } => visit.header(name),
                HostData::Action { .. } => None,
            },
            LOOKUP_FIELD => self.field(name),
            _ => None,
        }
    }

    /// A click field by its Keitaro name (see `switchyard_plugin_sdk::abi::LOOKUP_FIELD`).
    fn field(&self, name: &str) -> Option<&str> {
        let click = self.click();
        let numbered = |prefix: &str, values: &'_ [String]| -> Option<usize> {
            let n: usize = name.strip_prefix(prefix)?.parse().ok()?;
            (1..=values.len()).contains(&n).then(|| n - 1)
        };
        if let Some(i) = numbered("sub_id_", &click.sub_ids) {
            return Some(&click.sub_ids[i]);
        }
        if let Some(i) = numbered("extra_param_", &click.extra_params) {
            return Some(&click.extra_params[i]);
        }
        // Filters run before enrichment is copied onto the click; read it from its source.
        if let HostData::Filter { geo, device, .. } = self {
            let value = match name {
                "region_code" => Some(&geo.region_code),
                "operator" => Some(&geo.operator),
                "connection_type" => Some(&geo.connection_type),
                "device_brand" => Some(&device.device_brand),
                "device_model" => Some(&device.device_model),
                _ => None,
            };
            if let Some(value) = value {
                return Some(value);
            }
        }
        let value = match name {
            "operator" => &click.operator,
            "connection_type" => &click.connection_type,
            "device_brand" => &click.device_brand,
            "device_model" => &click.device_model,
            "search_engine" => &click.search_engine,
            "x_requested_with" => &click.x_requested_with,
            "external_id" => &click.external_id,
            "creative_id" => &click.creative_id,
            "ad_campaign_id" => &click.ad_campaign_id,
            "visitor_code" => &click.visitor_code,
            _ => return None,
        };
        Some(value)
    }
}

fn parse_params(text: &str) -> Vec<(String, String)> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map
            .into_iter()
            .filter_map(|(key, value)| match value {
                Value::String(value) => Some((key, value)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The lookup callback handed to plugins in every [`ClickView`].
///
/// # Safety
/// `host` is the `HostData` of the call in progress, `name` a valid StrRef and `out` a
/// writable StrRef, all for the duration of this call, on the calling thread.
unsafe extern "C" fn host_lookup(
    host: *const c_void,
    namespace: u32,
    name: StrRef,
    out: *mut StrRef,
) -> u8 {
    // Host code called from plugin code: it must not unwind into the plugin's frames.
    catch_unwind(AssertUnwindSafe(|| {
        if host.is_null() || out.is_null() {
            return 0;
        }
        // SAFETY: the host passed a pointer to the HostData that lives on its stack for the
        // whole plugin call, and the plugin calls back only during that call.
        let host = unsafe { &*host.cast::<HostData<'_>>() };
        // SAFETY: the plugin keeps the name alive during this callback.
        let Some(name) = (unsafe { name.as_str() }) else {
            return 0;
        };
        match host.lookup(namespace, name) {
            Some(value) => {
                // SAFETY: out is non-null and writable; the value borrows host data that
                // outlives the plugin call, which is as long as the plugin may use it.
                unsafe { out.write(StrRef::new(value)) };
                1
            }
            None => 0,
        }
    }))
    .unwrap_or(0)
}

/// Builds the view of `host`'s click and calls `call` with it.
fn with_view<R>(host: &HostData<'_>, call: impl FnOnce(&ClickView) -> R) -> R {
    let click = host.click();
    let s = |text: &str| StrRef::new(text);
    let (geo_fields, device_fields) = match host {
        HostData::Filter { geo, device, .. } => (
            [&geo.country_code, &geo.region, &geo.city, &geo.isp],
            [
                &device.device_type,
                &device.os,
                &device.os_version,
                &device.browser,
                &device.browser_version,
            ],
        ),
        HostData::Action { click, .. } => (
            [&click.country_code, &click.region, &click.city, &click.isp],
            [
                &click.device_type,
                &click.os,
                &click.os_version,
                &click.browser,
                &click.browser_version,
            ],
        ),
    };
    let view = ClickView {
        ip: s(&click.ip),
        user_agent: s(&click.user_agent),
        referrer: s(&click.referrer),
        language: s(&click.language),
        country_code: s(geo_fields[0]),
        region: s(geo_fields[1]),
        city: s(geo_fields[2]),
        isp: s(geo_fields[3]),
        device_type: s(device_fields[0]),
        os: s(device_fields[1]),
        os_version: s(device_fields[2]),
        browser: s(device_fields[3]),
        browser_version: s(device_fields[4]),
        keyword: s(&click.keyword),
        source: s(&click.source),
        sub_id: s(&click.sub_id),
        campaign_id: click.campaign_id,
        stream_id: 0,
        now: click.created_at,
        host: std::ptr::from_ref(host).cast::<c_void>(),
        lookup: host_lookup,
    };
    call(&view)
}

/// A filter kind's functions (the declaration without its strings, which are not `Sync`).
struct FilterFns {
    build: FilterBuildFn,
    matches: FilterMatchesFn,
    release: ReleaseFn,
}

/// What one kind's factory and all its instances share.
struct FilterShared {
    name: String,
    decl: FilterFns,
    free_bytes: FreeBytesFn,
}

/// A library's filter kind as a registry factory.
pub struct NativeFilterKind {
    info: KindInfo,
    /// The library's SHA-256: the kind's guard is kept across reloads while it is the same.
    fingerprint: String,
    shared: Arc<FilterShared>,
}

impl NativeFilterKind {
    pub(super) fn new(
        info: KindInfo,
        decl: FilterDecl,
        free_bytes: FreeBytesFn,
        fingerprint: &str,
    ) -> Self {
        NativeFilterKind {
            shared: Arc::new(FilterShared {
                name: info.name.clone(),
                decl: FilterFns {
                    build: decl.build,
                    matches: decl.matches,
                    release: decl.release,
                },
                free_bytes,
            }),
            fingerprint: fingerprint.to_string(),
            info,
        }
    }

    pub(super) fn info_name(&self) -> &str {
        &self.info.name
    }
}

impl FilterFactory for NativeFilterKind {
    fn info(&self) -> &KindInfo {
        &self.info
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn build(&self, payload: &Value) -> Result<Box<dyn Filter>, String> {
        let shared = &self.shared;
        let payload = payload.to_string();
        let mut instance: *mut c_void = std::ptr::null_mut();
        let mut error = PluginBytes::EMPTY;
        // The plugin catches its own panics; this guards the host's side of the call.
        let status = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the vtable comes from a library that passed the handshake and stays
            // loaded; the payload text outlives the call; both out pointers are valid.
            unsafe { (shared.decl.build)(StrRef::new(&payload), &mut instance, &mut error) }
        }))
        .unwrap_or(Status::PANIC);
        let message = take_message(shared.free_bytes, error);
        match status {
            Status::OK if !instance.is_null() => Ok(Box::new(NativeFilter {
                instance,
                shared: shared.clone(),
            })),
            Status::OK => Err(format!("{}: the plugin built no filter", shared.name)),
            Status::PANIC => Err(format!("{}: the plugin panicked: {message}", shared.name)),
            _ => Err(message),
        }
    }
}

/// A built native filter: the plugin's instance and the kind it came from.
struct NativeFilter {
    instance: *mut c_void,
    shared: Arc<FilterShared>,
}

// SAFETY: instances are made by SDK code that requires `NativeFilter: Send + Sync` (and the
// ABI requires the same of any plugin), so the pointer may be shared and sent across threads.
unsafe impl Send for NativeFilter {}
// SAFETY: as above.
unsafe impl Sync for NativeFilter {}

impl Drop for NativeFilter {
    fn drop(&mut self) {
        // SAFETY: the instance came from this kind's build and is released exactly once, here,
        // after its last use; the library is never unloaded.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
            (self.shared.decl.release)(self.instance)
        }));
    }
}

impl Filter for NativeFilter {
    fn matches(&self, ctx: &mut ClickContext<'_>) -> Result<bool, FilterError> {
        let shared = &self.shared;
        // Looked up once per click and cached on the context (the click needs both anyway).
        ctx.geo();
        let device = ctx.device();
        let default_geo = GeoInfo::default();
        let host = HostData::Filter {
            visit: ctx.visit,
            click: &ctx.click,
            geo: ctx.geo_cached().unwrap_or(&default_geo),
            device: &device,
        };
        let stream_id = ctx.checking_stream.unwrap_or(0);
        let now = ctx.now;
        let mut matched = 0u8;
        let mut error = PluginBytes::EMPTY;
        let status = with_view(&host, |view| {
            let view = ClickView {
                stream_id,
                now,
                ..*view
            };
            catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: a live instance of this kind; the view and the HostData it points at
                // live on this stack frame for the whole call; the out pointers are valid.
                unsafe { (shared.decl.matches)(self.instance, &view, &mut matched, &mut error) }
            }))
            .unwrap_or(Status::PANIC)
        });
        let message = take_message(shared.free_bytes, error);
        match status {
            Status::OK => Ok(matched != 0),
            status => Err(FilterError(format!(
                "{}: {}",
                shared.name,
                failure(status, message)
            ))),
        }
    }
}

/// An action kind's functions.
struct ActionFns {
    build: ActionBuildFn,
    run: ActionRunFn,
    release: ReleaseFn,
}

/// What one action kind's factory and its instances share.
struct ActionShared {
    name: String,
    decl: ActionFns,
    free_bytes: FreeBytesFn,
    free_reply: FreeReplyFn,
}

/// A library's action kind as a registry factory.
pub struct NativeActionKind {
    info: KindInfo,
    /// As [`NativeFilterKind`]'s.
    fingerprint: String,
    shared: Arc<ActionShared>,
}

impl NativeActionKind {
    pub(super) fn new(
        info: KindInfo,
        decl: ActionDecl,
        free_bytes: FreeBytesFn,
        free_reply: FreeReplyFn,
        fingerprint: &str,
    ) -> Self {
        NativeActionKind {
            shared: Arc::new(ActionShared {
                name: info.name.clone(),
                decl: ActionFns {
                    build: decl.build,
                    run: decl.run,
                    release: decl.release,
                },
                free_bytes,
                free_reply,
            }),
            fingerprint: fingerprint.to_string(),
            info,
        }
    }

    pub(super) fn info_name(&self) -> &str {
        &self.info.name
    }
}

impl ActionFactory for NativeActionKind {
    fn info(&self) -> &KindInfo {
        &self.info
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn build(&self, payload: &Value, options: &Value) -> Result<Box<dyn Action>, String> {
        let shared = &self.shared;
        let payload = payload.to_string();
        let options = options.to_string();
        let mut instance: *mut c_void = std::ptr::null_mut();
        let mut error = PluginBytes::EMPTY;
        let status = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: as for filters: a checked vtable, texts that outlive the call, valid
            // out pointers.
            unsafe {
                (shared.decl.build)(
                    StrRef::new(&payload),
                    StrRef::new(&options),
                    &mut instance,
                    &mut error,
                )
            }
        }))
        .unwrap_or(Status::PANIC);
        let message = take_message(shared.free_bytes, error);
        match status {
            Status::OK if !instance.is_null() => Ok(Box::new(NativeAction {
                instance,
                shared: shared.clone(),
            })),
            Status::OK => Err(format!("{}: the plugin built no action", shared.name)),
            Status::PANIC => Err(format!("{}: the plugin panicked: {message}", shared.name)),
            _ => Err(message),
        }
    }
}

/// A built native action.
struct NativeAction {
    instance: *mut c_void,
    shared: Arc<ActionShared>,
}

// SAFETY: the SDK requires `NativeAction: Send + Sync` of instances, and the ABI of any plugin.
unsafe impl Send for NativeAction {}
// SAFETY: as above.
unsafe impl Sync for NativeAction {}

impl Drop for NativeAction {
    fn drop(&mut self) {
        // SAFETY: released exactly once, after the last use; the library stays loaded.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
            (self.shared.decl.release)(self.instance)
        }));
    }
}

impl Action for NativeAction {
    fn run(&self, env: &dyn ActionEnv) -> Result<Reply, ActionError> {
        let shared = &self.shared;
        let click = env.click();
        let host = HostData::Action {
            click,
            params: OnceCell::new(),
        };
        let mut reply = ReplyOut::EMPTY;
        let mut error = PluginBytes::EMPTY;
        let status = with_view(&host, |view| {
            let view = ClickView {
                stream_id: click.stream_id.unwrap_or(0),
                ..*view
            };
            catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: a live instance; the view and HostData outlive the call; `reply` is
                // an EMPTY ReplyOut the plugin may overwrite; `error` is valid.
                unsafe { (shared.decl.run)(self.instance, &view, &mut reply, &mut error) }
            }))
            .unwrap_or(Status::PANIC)
        });
        let message = take_message(shared.free_bytes, error);
        let converted = match status {
            Status::OK => copy_reply(&reply).map_err(|message| format!("error: {message}")),
            status => Err(failure(status, message)),
        };
        // SAFETY: the reply was written by this library's run (or is still EMPTY); it goes
        // back to the library's own free function exactly once.
        unsafe { (shared.free_reply)(&mut reply) };
        converted.map_err(|failure| ActionError(format!("{}: {failure}", shared.name)))
    }
}

/// Reads a plugin's bytes as UTF-8.
///
/// # Safety
/// `bytes` was written by the plugin during the call that just returned and is not freed.
unsafe fn plugin_text(bytes: &PluginBytes, what: &str) -> Result<String, String> {
    // SAFETY: forwarded to the caller.
    let slice = unsafe { bytes.as_slice() };
    String::from_utf8(slice.to_vec()).map_err(|_| format!("the reply's {what} is not UTF-8"))
}

fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Copies a plugin's reply into host memory, refusing what the host would not send.
fn copy_reply(reply: &ReplyOut) -> Result<Reply, String> {
    match reply.kind {
        REPLY_REDIRECT => {
            // SAFETY: written by the plugin's run that just returned OK, freed only after this.
            let url = unsafe { plugin_text(&reply.url, "URL") }?;
            check_http_url(&url)?;
            if !matches!(reply.status, 301 | 302 | 303 | 307 | 308) {
                return Err(format!(
                    "a redirect's status must be 301, 302, 303, 307 or 308, not {}",
                    reply.status
                ));
            }
            Ok(Reply::Redirect {
                url,
                status: reply.status,
            })
        }
        REPLY_CONTENT => {
            if !(200..=599).contains(&reply.status) {
                return Err(format!(
                    "a response status must be 200–599, not {}",
                    reply.status
                ));
            }
            // SAFETY: as above.
            let mut content_type = unsafe { plugin_text(&reply.content_type, "content type") }?;
            if content_type.is_empty() {
                content_type = "text/html; charset=utf-8".into();
            }
            if content_type.chars().any(char::is_control) {
                return Err("the reply's content type contains control characters".into());
            }
            // SAFETY: as above.
            let body = unsafe { reply.body.as_slice() }.to_vec();
            if reply.header_count > MAX_REPLY_HEADERS {
                return Err(format!(
                    "the reply has {} headers (at most {MAX_REPLY_HEADERS})",
                    reply.header_count
                ));
            }
            let raw: &[HeaderOut] = if reply.headers.is_null() || reply.header_count == 0 {
                &[]
            } else {
                // SAFETY: the plugin wrote a boxed slice of header_count headers, alive until
                // free_reply.
                unsafe { std::slice::from_raw_parts(reply.headers, reply.header_count) }
            };
            let mut headers = Vec::with_capacity(raw.len());
            for header in raw {
                // SAFETY: as above.
                let name = unsafe { plugin_text(&header.name, "header name") }?;
                // SAFETY: as above.
                let value = unsafe { plugin_text(&header.value, "header value") }?;
                if !valid_header_name(&name) {
                    return Err(format!("the reply's header name `{name}` is not valid"));
                }
                if value.chars().any(|c| c.is_control() && c != '\t') {
                    return Err(format!(
                        "the reply's header `{name}` contains control characters"
                    ));
                }
                headers.push((name.to_ascii_lowercase(), value));
            }
            Ok(Reply::Content {
                status: reply.status,
                content_type,
                body,
                headers,
            })
        }
        other => Err(format!("the plugin returned no reply (kind {other})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click() -> Click {
        let mut click = Click::blank();
        click.sub_ids[0] = "first".into();
        click.sub_ids[29] = "last".into();
        click.extra_params[9] = "ten".into();
        click.operator = "Telco".into();
        click.params = r#"{"utm":"spring","n":1}"#.into();
        click
    }

    #[test]
    fn lookups_cover_numbered_fields_params_and_nothing_else() {
        let click = click();
        let host = HostData::Action {
            click: &click,
            params: OnceCell::new(),
        };
        assert_eq!(host.lookup(LOOKUP_FIELD, "sub_id_1"), Some("first"));
        assert_eq!(host.lookup(LOOKUP_FIELD, "sub_id_30"), Some("last"));
        assert_eq!(host.lookup(LOOKUP_FIELD, "extra_param_10"), Some("ten"));
        for missing in [
            "sub_id_0",
            "sub_id_31",
            "sub_id_x",
            "extra_param_11",
            "password",
        ] {
            assert_eq!(host.lookup(LOOKUP_FIELD, missing), None, "{missing}");
        }
        assert_eq!(host.lookup(LOOKUP_FIELD, "operator"), Some("Telco"));
        assert_eq!(host.lookup(LOOKUP_PARAM, "utm"), Some("spring"));
        assert_eq!(host.lookup(LOOKUP_PARAM, "n"), None, "only string values");
        assert_eq!(
            host.lookup(LOOKUP_HEADER, "host"),
            None,
            "actions see no headers"
        );
        assert_eq!(host.lookup(99, "utm"), None);
    }

    fn content(headers: Vec<(&str, &str)>, status: u16) -> Result<Reply, String> {
        let headers: Box<[HeaderOut]> = headers
            .into_iter()
            .map(|(name, value)| HeaderOut {
                name: PluginBytes::from_vec(name.as_bytes().to_vec()),
                value: PluginBytes::from_vec(value.as_bytes().to_vec()),
            })
            .collect();
        let header_count = headers.len();
        let headers = Box::into_raw(headers);
        let reply = ReplyOut {
            kind: REPLY_CONTENT,
            status,
            body: PluginBytes::from_vec(b"hi".to_vec()),
            headers: headers.cast::<HeaderOut>(),
            header_count,
            ..ReplyOut::EMPTY
        };
        let copied = copy_reply(&reply);
        // SAFETY: everything in `reply` was allocated above, on this side, and is freed once.
        unsafe {
            let mut headers = Box::from_raw(headers);
            for header in headers.iter_mut() {
                header.name.free();
                header.value.free();
            }
            let mut body = reply.body;
            body.free();
        }
        copied
    }

    #[test]
    fn replies_are_copied_and_unsafe_ones_refused() {
        assert_eq!(
            content(vec![("X-Ok", "yes")], 200),
            Ok(Reply::Content {
                status: 200,
                content_type: "text/html; charset=utf-8".into(),
                body: b"hi".to_vec(),
                headers: vec![("x-ok".into(), "yes".into())],
            })
        );
        assert!(content(vec![("x", "a\r\nb")], 200).is_err());
        assert!(content(vec![("bad name", "v")], 200).is_err());
        assert!(content(vec![], 99).is_err());
        let redirect = |url: &str, status| {
            let mut reply = ReplyOut {
                kind: REPLY_REDIRECT,
                status,
                url: PluginBytes::from_vec(url.as_bytes().to_vec()),
                ..ReplyOut::EMPTY
            };
            let copied = copy_reply(&reply);
            // SAFETY: allocated above on this side, freed once.
            unsafe { reply.url.free() };
            copied
        };
        assert!(redirect("https://o.test/", 302).is_ok());
        assert!(redirect("https://o.test/", 200).is_err());
        assert!(redirect("javascript:alert(1)", 302).is_err());
        assert!(copy_reply(&ReplyOut::EMPTY).is_err());
    }
}
