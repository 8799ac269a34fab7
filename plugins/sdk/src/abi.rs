//! The `#[repr(C)]` types both sides of the boundary agree on. Everything here is part of
//! [`ABI_VERSION`](crate::ABI_VERSION): changing a field, its order or its meaning bumps it.
//!
//! Rules that hold for every type and function below:
//!
//! - **Ownership.** Memory is freed by the side that allocated it. The host hands out borrowed
//!   [`StrRef`]s that stay valid for the duration of one call; the plugin hands back
//!   [`PluginBytes`] and [`ReplyOut`] that only the plugin's [`PluginDeclaration::free_bytes`]
//!   and [`PluginDeclaration::free_reply`] may free. Each library has its own allocator.
//! - **No unwinding across the boundary.** Every exported function catches panics and turns
//!   them into [`Status::PANIC`] with the panic message in `out_error`.
//! - **Strings are UTF-8**, not NUL-terminated, given as pointer + length. A null pointer with
//!   length 0 is the empty string.
//! - **Threads.** Instances are called from many threads at once (`Send + Sync`). The host's
//!   [`ClickView::lookup`] may only be called on the calling thread, during the call.

use std::ffi::c_void;

/// The exported symbol that holds the plugin's [`PluginDeclaration`] (a static, not a
/// function). The host reads it only after the [`PluginHeader`](crate::PluginHeader) matched.
pub const DECLARATION_SYMBOL: &[u8] = b"switchyard_plugin_declaration\0";

/// A borrowed UTF-8 string. Who hands it out says how long it lives: declaration strings live
/// as long as the library, strings in a [`ClickView`] as long as the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrRef {
    pub ptr: *const u8,
    pub len: usize,
}

impl StrRef {
    pub const EMPTY: StrRef = StrRef {
        ptr: std::ptr::null(),
        len: 0,
    };

    /// Borrows `text`; the caller keeps `text` alive as long as the `StrRef` is used.
    pub const fn new(text: &str) -> StrRef {
        StrRef {
            ptr: text.as_ptr(),
            len: text.len(),
        }
    }

    /// The bytes, or `None` when the pointer is null and the length is not 0.
    ///
    /// # Safety
    /// `ptr` must point at `len` readable bytes that stay valid and unchanged for `'a`.
    pub unsafe fn as_bytes<'a>(self) -> Option<&'a [u8]> {
        if self.ptr.is_null() {
            return (self.len == 0).then_some(&[]);
        }
        // SAFETY: non-null, and the caller guarantees `len` readable bytes that live for 'a.
        Some(unsafe { std::slice::from_raw_parts(self.ptr, self.len) })
    }

    /// The text, or `None` when it is not valid UTF-8 (or the pointer is null with a length).
    ///
    /// # Safety
    /// As for [`StrRef::as_bytes`].
    pub unsafe fn as_str<'a>(self) -> Option<&'a str> {
        // SAFETY: forwarded to the caller's guarantee.
        let bytes = unsafe { self.as_bytes() }?;
        std::str::from_utf8(bytes).ok()
    }
}

/// Bytes allocated by the plugin (a boxed slice of its allocator). Only the plugin frees them,
/// through [`PluginDeclaration::free_bytes`] or [`PluginDeclaration::free_reply`].
#[repr(C)]
#[derive(Debug)]
pub struct PluginBytes {
    pub ptr: *mut u8,
    pub len: usize,
}

impl PluginBytes {
    pub const EMPTY: PluginBytes = PluginBytes {
        ptr: std::ptr::null_mut(),
        len: 0,
    };

    /// Hands `bytes` over; [`PluginBytes::free`] (on the same side) takes them back.
    pub fn from_vec(bytes: Vec<u8>) -> PluginBytes {
        if bytes.is_empty() {
            return PluginBytes::EMPTY;
        }
        let boxed = bytes.into_boxed_slice();
        let len = boxed.len();
        PluginBytes {
            ptr: Box::into_raw(boxed).cast::<u8>(),
            len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ptr.is_null() || self.len == 0
    }

    /// The bytes, borrowed.
    ///
    /// # Safety
    /// The buffer must not have been freed, and must be left alone for `'a`.
    pub unsafe fn as_slice<'a>(&self) -> &'a [u8] {
        if self.ptr.is_null() {
            return &[];
        }
        // SAFETY: a non-null PluginBytes points at `len` initialised bytes (from_vec), alive
        // until freed; the caller guarantees it is not freed during 'a.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Frees bytes made by [`PluginBytes::from_vec`] *in this same library* and leaves `self`
    /// empty. Called by the SDK's `free_bytes` export; the host never calls it directly.
    ///
    /// # Safety
    /// `self` must be empty or come from `from_vec` in this library, and not be freed yet.
    pub unsafe fn free(&mut self) {
        let bytes = std::mem::replace(self, PluginBytes::EMPTY);
        if bytes.ptr.is_null() {
            return;
        }
        let slice = std::ptr::slice_from_raw_parts_mut(bytes.ptr, bytes.len);
        // SAFETY: the pointer and length are exactly those of a Box<[u8]> leaked by from_vec
        // with this library's allocator, and ownership is taken back once.
        drop(unsafe { Box::from_raw(slice) });
    }
}

/// The outcome of an exported call.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u32);

impl Status {
    /// Success; the `out_*` results are filled.
    pub const OK: Status = Status(0);
    /// The plugin refused (bad payload, failed check); `out_error` holds the message.
    pub const ERROR: Status = Status(1);
    /// The plugin panicked; `out_error` holds the panic message.
    pub const PANIC: Status = Status(2);
}

/// [`ClickView::lookup`] namespace: a query parameter of the visit, by name (`utm_source`).
pub const LOOKUP_PARAM: u32 = 1;
/// [`ClickView::lookup`] namespace: a request header, by lower-case name (filters only; actions
/// see no headers).
pub const LOOKUP_HEADER: u32 = 2;
/// [`ClickView::lookup`] namespace: a click field by its Keitaro name: `sub_id_1` … `sub_id_30`,
/// `extra_param_1` … `extra_param_10`, `region_code`, `operator`, `connection_type`,
/// `device_brand`, `device_model`, `search_engine`, `x_requested_with`, `external_id`,
/// `creative_id`, `ad_campaign_id`, `visitor_code`, `landing_id`, `offer_id`. Unknown names are
/// "not found".
pub const LOOKUP_FIELD: u32 = 3;

/// Looks a value up for the click: `namespace` is one of the `LOOKUP_*` constants. On success
/// writes a borrowed string (valid until the plugin's call returns) to `out` and returns 1;
/// returns 0 when there is no such value.
pub type LookupFn =
    unsafe extern "C" fn(host: *const c_void, namespace: u32, name: StrRef, out: *mut StrRef) -> u8;

/// What a plugin may read about a click: borrowed UTF-8 slices, valid during one call only.
/// For filters the geography and device fields are looked up before the call (and cached for
/// the rest of the click); for actions they are the click's final values.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ClickView {
    pub ip: StrRef,
    pub user_agent: StrRef,
    pub referrer: StrRef,
    /// First language tag of Accept-Language, lower case (`en`).
    pub language: StrRef,
    /// ISO 3166-1 alpha-2, upper case.
    pub country_code: StrRef,
    pub region: StrRef,
    pub city: StrRef,
    pub isp: StrRef,
    /// `desktop`, `mobile`, `tablet`, … or empty.
    pub device_type: StrRef,
    pub os: StrRef,
    pub os_version: StrRef,
    pub browser: StrRef,
    pub browser_version: StrRef,
    pub keyword: StrRef,
    pub source: StrRef,
    /// The click's id.
    pub sub_id: StrRef,
    pub campaign_id: i64,
    /// The stream being checked (filters) or chosen (actions); 0 when none.
    pub stream_id: i64,
    /// The click's time, seconds since the Unix epoch.
    pub now: i64,
    /// Opaque host context for `lookup`.
    pub host: *const c_void,
    pub lookup: LookupFn,
}

/// [`ReplyOut::kind`]: nothing written (the initial state).
pub const REPLY_NONE: u32 = 0;
/// [`ReplyOut::kind`]: redirect to `url` with `status` (301, 302, 303, 307 or 308).
pub const REPLY_REDIRECT: u32 = 1;
/// [`ReplyOut::kind`]: answer `body` with `status`, `content_type` and `headers`.
pub const REPLY_CONTENT: u32 = 2;

/// One response header of a [`ReplyOut`], plugin-owned.
#[repr(C)]
#[derive(Debug)]
pub struct HeaderOut {
    pub name: PluginBytes,
    pub value: PluginBytes,
}

/// An action's answer, written by the plugin into a host-provided [`ReplyOut::EMPTY`] and
/// freed by the plugin's [`PluginDeclaration::free_reply`] after the host copied it.
#[repr(C)]
#[derive(Debug)]
pub struct ReplyOut {
    pub kind: u32,
    pub status: u16,
    pub url: PluginBytes,
    pub content_type: PluginBytes,
    pub body: PluginBytes,
    /// A boxed slice of `header_count` headers, or null.
    pub headers: *mut HeaderOut,
    pub header_count: usize,
}

impl ReplyOut {
    pub const EMPTY: ReplyOut = ReplyOut {
        kind: REPLY_NONE,
        status: 0,
        url: PluginBytes::EMPTY,
        content_type: PluginBytes::EMPTY,
        body: PluginBytes::EMPTY,
        headers: std::ptr::null_mut(),
        header_count: 0,
    };
}

/// Builds a filter instance from the stream's payload (JSON text; empty means `null`). On
/// success writes an opaque instance to `out_instance`, which the host later passes to
/// `matches` and finally to `release`.
pub type FilterBuildFn = unsafe extern "C" fn(
    payload: StrRef,
    out_instance: *mut *mut c_void,
    out_error: *mut PluginBytes,
) -> Status;

/// Whether the click matches: writes 1 or 0 to `out_matched`.
pub type FilterMatchesFn = unsafe extern "C" fn(
    instance: *const c_void,
    click: *const ClickView,
    out_matched: *mut u8,
    out_error: *mut PluginBytes,
) -> Status;

/// Builds an action instance from the payload and options (JSON texts; empty means `null`).
pub type ActionBuildFn = unsafe extern "C" fn(
    payload: StrRef,
    options: StrRef,
    out_instance: *mut *mut c_void,
    out_error: *mut PluginBytes,
) -> Status;

/// Runs the action for a click, writing its answer to `out_reply`.
pub type ActionRunFn = unsafe extern "C" fn(
    instance: *const c_void,
    click: *const ClickView,
    out_reply: *mut ReplyOut,
    out_error: *mut PluginBytes,
) -> Status;

/// What a trigger check reads about the page it checked: borrowed UTF-8 slices, valid during
/// one call only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PageView {
    /// The HTTP status, or 0 when the fetch failed (see `error`).
    pub status: u16,
    /// The URL that was fetched.
    pub url: StrRef,
    /// The response body as text (invalid UTF-8 replaced), cut by the host to at most
    /// `MAX_CHECK_BODY` bytes at a character boundary.
    pub body: StrRef,
    /// Milliseconds from the request to the end of the body (or the failure).
    pub elapsed_ms: u64,
    /// Why the fetch failed; empty when it worked.
    pub error: StrRef,
}

/// The most body bytes the host passes in a [`PageView`].
pub const MAX_CHECK_BODY: usize = 1 << 20;

/// A trigger check's verdict, written by the plugin into a host-provided
/// [`EffectsOut::EMPTY`]. `message` is plugin-owned: the host copies it and hands it back to
/// [`PluginDeclaration::free_bytes`].
#[repr(C)]
#[derive(Debug)]
pub struct EffectsOut {
    /// 1: the page is fine; 0: the trigger fires.
    pub ok: u8,
    /// 1: when firing, disable the stream (whatever the trigger's action).
    pub disable: u8,
    /// 1: when firing, switch the stream's URL (unless `disable`).
    pub replace_url: u8,
    pub message: PluginBytes,
}

impl EffectsOut {
    /// "Fine, nothing to do": what the host starts from.
    pub const EMPTY: EffectsOut = EffectsOut {
        ok: 1,
        disable: 0,
        replace_url: 0,
        message: PluginBytes::EMPTY,
    };
}

/// Builds a trigger check instance from the trigger's `payload.params` (JSON text; empty
/// means `null`).
pub type TriggerBuildFn = unsafe extern "C" fn(
    payload: StrRef,
    out_instance: *mut *mut c_void,
    out_error: *mut PluginBytes,
) -> Status;

/// Checks a fetched page, writing the verdict to `out_effects` (an [`EffectsOut::EMPTY`]).
pub type TriggerCheckFn = unsafe extern "C" fn(
    instance: *const c_void,
    page: *const PageView,
    out_effects: *mut EffectsOut,
    out_error: *mut PluginBytes,
) -> Status;

/// Drops an instance made by `build`. Called once: for filters and actions when the last
/// routing snapshot that used the instance is dropped, for trigger checks after the check
/// (a trigger's instance is built for each run).
pub type ReleaseFn = unsafe extern "C" fn(instance: *mut c_void);

/// What the catalogue shows about a kind. All strings live as long as the library.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct KindDecl {
    /// The kind's own name (`ip_reputation`): lower-case ASCII letters, digits and `_`. The
    /// host registers it as `native:<name>`.
    pub name: StrRef,
    /// A menu group (`traffic`, `redirect`, …).
    pub group: StrRef,
    pub description: StrRef,
    /// The payload's JSON type: `object`, `array`, `string`, `number` or `null`.
    pub payload_type: StrRef,
    /// An example payload as JSON text.
    pub payload_example: StrRef,
    pub payload_notes: StrRef,
}

/// A filter kind: its description and its functions.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FilterDecl {
    pub kind: KindDecl,
    pub build: FilterBuildFn,
    pub matches: FilterMatchesFn,
    pub release: ReleaseFn,
}

/// An action kind: its description and its functions.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ActionDecl {
    pub kind: KindDecl,
    pub build: ActionBuildFn,
    pub run: ActionRunFn,
    pub release: ReleaseFn,
}

/// A trigger check kind: its description and its functions.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TriggerDecl {
    pub kind: KindDecl,
    pub build: TriggerBuildFn,
    pub check: TriggerCheckFn,
    pub release: ReleaseFn,
}

/// The sizes of the ABI's structures as one side was compiled: a second line of defence after
/// the ABI version, so that a layout change that forgot to bump the version is still refused.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutSizes {
    pub declaration: u32,
    pub filter: u32,
    pub action: u32,
    pub click_view: u32,
    pub reply: u32,
    pub trigger: u32,
    pub page: u32,
    pub effects: u32,
}

impl LayoutSizes {
    /// The sizes this SDK was compiled with.
    pub const CURRENT: LayoutSizes = LayoutSizes {
        declaration: std::mem::size_of::<PluginDeclaration>() as u32,
        filter: std::mem::size_of::<FilterDecl>() as u32,
        action: std::mem::size_of::<ActionDecl>() as u32,
        click_view: std::mem::size_of::<ClickView>() as u32,
        reply: std::mem::size_of::<ReplyOut>() as u32,
        trigger: std::mem::size_of::<TriggerDecl>() as u32,
        page: std::mem::size_of::<PageView>() as u32,
        effects: std::mem::size_of::<EffectsOut>() as u32,
    };

    /// The first structure whose size differs: (name, plugin's size, host's size).
    pub fn first_difference(&self, host: &LayoutSizes) -> Option<(&'static str, u32, u32)> {
        [
            ("PluginDeclaration", self.declaration, host.declaration),
            ("FilterDecl", self.filter, host.filter),
            ("ActionDecl", self.action, host.action),
            ("ClickView", self.click_view, host.click_view),
            ("ReplyOut", self.reply, host.reply),
            ("TriggerDecl", self.trigger, host.trigger),
            ("PageView", self.page, host.page),
            ("EffectsOut", self.effects, host.effects),
        ]
        .into_iter()
        .find(|(_, plugin, host)| plugin != host)
    }
}

/// Everything a library offers, read by the host after the header matched. Exported as the
/// static [`DECLARATION_SYMBOL`]; `export_plugin!` writes it.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDeclaration {
    pub layout: LayoutSizes,
    /// The plugin's name and version, for status pages and logs.
    pub name: StrRef,
    pub version: StrRef,
    pub filters: *const FilterDecl,
    pub filter_count: usize,
    pub actions: *const ActionDecl,
    pub action_count: usize,
    /// Trigger check kinds (ABI 2).
    pub triggers: *const TriggerDecl,
    pub trigger_count: usize,
    /// Frees bytes the plugin handed out (error messages, effect messages).
    pub free_bytes: unsafe extern "C" fn(bytes: PluginBytes),
    /// Frees everything inside a reply the plugin wrote and leaves it [`ReplyOut::EMPTY`].
    pub free_reply: unsafe extern "C" fn(reply: *mut ReplyOut),
}

// SAFETY: a declaration is immutable after construction and only points at immutable data that
// lives as long as the library (string literals and constant slices, see `export_plugin!`);
// reading it from any thread is sound.
unsafe impl Sync for PluginDeclaration {}
// SAFETY: as above; moving the pointers between threads does not change what they point at.
unsafe impl Send for PluginDeclaration {}

impl PluginDeclaration {
    /// A declaration over constant slices of kinds (used by `export_plugin!`).
    pub const fn new(
        name: &'static str,
        version: &'static str,
        filters: &'static [FilterDecl],
        actions: &'static [ActionDecl],
        triggers: &'static [TriggerDecl],
        free_bytes: unsafe extern "C" fn(bytes: PluginBytes),
        free_reply: unsafe extern "C" fn(reply: *mut ReplyOut),
    ) -> PluginDeclaration {
        PluginDeclaration {
            layout: LayoutSizes::CURRENT,
            name: StrRef::new(name),
            version: StrRef::new(version),
            filters: filters.as_ptr(),
            filter_count: filters.len(),
            actions: actions.as_ptr(),
            action_count: actions.len(),
            triggers: triggers.as_ptr(),
            trigger_count: triggers.len(),
            free_bytes,
            free_reply,
        }
    }
}
