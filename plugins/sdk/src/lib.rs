//! The contract between Switchyard and native (dynamic library) plugins, and the safe Rust
//! side of it.
//!
//! # Writing a plugin
//!
//! A plugin is a `cdylib` crate that implements [`NativeFilter`], [`NativeAction`] and/or
//! [`NativeTrigger`] and names its kinds in [`export_plugin!`]; it needs no `unsafe` of its own:
//!
//! ```no_run
//! use switchyard_plugin_sdk::{Click, NativeFilter, PayloadDoc, export_plugin, serde_json::Value};
//!
//! struct MobileOnly;
//!
//! impl NativeFilter for MobileOnly {
//!     const NAME: &'static str = "mobile_only";
//!     const DESCRIPTION: &'static str = "Matches phones.";
//!     fn build(_payload: &Value) -> Result<Self, String> { Ok(MobileOnly) }
//!     fn matches(&self, click: &Click<'_>) -> Result<bool, String> {
//!         Ok(click.device_type() == "mobile")
//!     }
//! }
//!
//! export_plugin! { name: "mobile-only", version: env!("CARGO_PKG_VERSION"), filters: [MobileOnly], actions: [] }
//! ```
//!
//! # The handshake
//!
//! A library exports two statics. [`HEADER_SYMBOL`] points at a [`PluginHeader`], which is
//! small and never changes layout; the host reads it before anything else and refuses the
//! library unless the magic, the ABI version and the header size all match its own, naming
//! both versions in the error. Only then does it read [`abi::DECLARATION_SYMBOL`], a
//! [`abi::PluginDeclaration`] that carries the sizes of every ABI structure (checked again),
//! the plugin's name and version, and one vtable per filter, action and trigger check kind.
//!
//! # Versioning
//!
//! [`ABI_VERSION`] names the layout and meaning of everything in [`abi`]. Any change there
//! (a field added, removed, reordered or retyped; a constant's meaning changed) bumps it, and
//! plugins must be rebuilt against the new SDK. Changes to the safe traits that do not touch
//! `abi` (a new helper on [`Click`]) do not. The host loads only plugins of exactly its own
//! version.
//!
//! # Panics and time
//!
//! Every exported function catches panics (`catch_unwind`) and reports them as
//! [`abi::Status::PANIC`]; the host counts them and disables a kind that keeps failing. Build
//! plugins with the default `panic = "unwind"`: with `panic = "abort"` a panic ends the whole
//! tracker. The host measures every call against a budget of a few milliseconds and disables
//! kinds that keep exceeding it; it cannot interrupt a call that never returns.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod abi;
mod click;
#[doc(hidden)]
pub mod export;
mod plugin;

pub use click::Click;
pub use plugin::{
    CheckEffects, CheckedPage, NativeAction, NativeFilter, NativeTrigger, PayloadDoc, Reply,
};
/// The JSON library payloads are parsed with (plugins can use it without their own dependency).
pub use serde_json;

/// Identifies a Switchyard plugin header in memory.
pub const MAGIC: [u8; 8] = *b"SWYDPLUG";

/// The ABI version this SDK speaks. Any change to a `#[repr(C)]` type in [`abi`] bumps it.
///
/// History: 1, filters and actions; 2, trigger checks (`TriggerDecl`, `PageView`,
/// `EffectsOut`, and the declaration's `triggers` array).
#[cfg(not(feature = "abi-test-mismatch"))]
pub const ABI_VERSION: u32 = 2;

/// The ABI version this SDK speaks: deliberately the previous one (a plugin built before
/// trigger checks existed), for the host's mismatch tests.
#[cfg(feature = "abi-test-mismatch")]
pub const ABI_VERSION: u32 = 1;

/// The exported symbol that points at the plugin's [`PluginHeader`].
pub const HEADER_SYMBOL: &[u8] = b"switchyard_plugin_header\0";

/// The first thing the host reads from a plugin: small and stable across ABI versions, so
/// that a mismatch is detected before any other layout is assumed.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginHeader {
    pub magic: [u8; 8],
    pub abi_version: u32,
    /// `size_of::<PluginHeader>()` as the plugin was compiled.
    pub header_size: u32,
}

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The magic bytes are not Switchyard's: not a plugin, or not one of ours.
    NotAPlugin,
    /// A plugin of another ABI version (or one whose header has another size).
    VersionMismatch {
        plugin_version: u32,
        plugin_header_size: u32,
        host_version: u32,
        host_header_size: u32,
    },
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::NotAPlugin => {
                f.write_str("not a Switchyard plugin (the header's magic bytes do not match)")
            }
            HeaderError::VersionMismatch {
                plugin_version,
                plugin_header_size,
                host_version,
                host_header_size,
            } => write!(
                f,
                "plugin ABI version {plugin_version} (header {plugin_header_size} bytes) does not match the host's ABI version {host_version} (header {host_header_size} bytes)"
            ),
        }
    }
}

impl std::error::Error for HeaderError {}

impl PluginHeader {
    /// The header a plugin built with this SDK exports.
    pub const CURRENT: PluginHeader = PluginHeader {
        magic: MAGIC,
        abi_version: ABI_VERSION,
        header_size: std::mem::size_of::<PluginHeader>() as u32,
    };

    /// Checks a header read from a library against this SDK's.
    pub fn check(&self) -> Result<(), HeaderError> {
        if self.magic != MAGIC {
            return Err(HeaderError::NotAPlugin);
        }
        if self.abi_version != ABI_VERSION || self.header_size != Self::CURRENT.header_size {
            return Err(HeaderError::VersionMismatch {
                plugin_version: self.abi_version,
                plugin_header_size: self.header_size,
                host_version: ABI_VERSION,
                host_header_size: Self::CURRENT.header_size,
            });
        }
        Ok(())
    }
}

/// Exports a plugin's kinds: the header and declaration statics the host looks for.
///
/// ```ignore
/// export_plugin! {
///     name: "ip-reputation",
///     version: env!("CARGO_PKG_VERSION"),
///     filters: [IpReputation],
///     actions: [],
///     triggers: [PageWatch], // optional
/// }
/// ```
///
/// Use it once per library. Each listed type implements [`NativeFilter`], [`NativeAction`] or
/// [`NativeTrigger`]; every generated function catches panics.
#[macro_export]
macro_rules! export_plugin {
    (
        name: $name:expr,
        version: $version:expr,
        filters: [$($filter:ty),* $(,)?],
        actions: [$($action:ty),* $(,)?]
        $(, triggers: [$($trigger:ty),* $(,)?])? $(,)?
    ) => {
        /// The plugin header the host checks first (magic, ABI version, size).
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static switchyard_plugin_header: $crate::PluginHeader = $crate::PluginHeader::CURRENT;

        /// The plugin's kinds and their vtables.
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static switchyard_plugin_declaration: $crate::abi::PluginDeclaration =
            $crate::abi::PluginDeclaration::new(
                $name,
                $version,
                {
                    const FILTERS: &[$crate::abi::FilterDecl] =
                        &[$($crate::export::filter_decl::<$filter>()),*];
                    FILTERS
                },
                {
                    const ACTIONS: &[$crate::abi::ActionDecl] =
                        &[$($crate::export::action_decl::<$action>()),*];
                    ACTIONS
                },
                {
                    const TRIGGERS: &[$crate::abi::TriggerDecl] =
                        &[$($($crate::export::trigger_decl::<$trigger>()),*)?];
                    TRIGGERS
                },
                $crate::export::free_bytes,
                $crate::export::free_reply,
            );
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_header_passes_and_others_are_named() {
        assert!(PluginHeader::CURRENT.check().is_ok());
        let other = PluginHeader {
            abi_version: 7,
            ..PluginHeader::CURRENT
        };
        let message = other.check().unwrap_err().to_string();
        assert!(message.contains("plugin ABI version 7"), "{message}");
        assert!(
            message.contains(&format!("host's ABI version {ABI_VERSION}")),
            "{message}"
        );
        let foreign = PluginHeader {
            magic: *b"NOTMINE!",
            ..PluginHeader::CURRENT
        };
        assert_eq!(foreign.check(), Err(HeaderError::NotAPlugin));
        assert!(HeaderError::NotAPlugin.to_string().contains("magic"));
    }

    #[test]
    fn the_exported_symbols_have_the_names_the_host_looks_up() {
        assert_eq!(HEADER_SYMBOL, b"switchyard_plugin_header\0");
        assert_eq!(abi::DECLARATION_SYMBOL, b"switchyard_plugin_declaration\0");
    }
}

/// The exports driven directly, as the host would, without loading a library.
#[cfg(test)]
mod export_tests {
    use std::ffi::c_void;

    use super::abi::*;
    use super::*;
    use serde_json::Value;

    struct Prefix(String);

    impl NativeFilter for Prefix {
        const NAME: &'static str = "prefix";
        const DESCRIPTION: &'static str = "IP starts with the payload.";
        const PAYLOAD: PayloadDoc = PayloadDoc {
            kind: "string",
            example: "\"10.\"",
            notes: "",
        };
        fn build(payload: &Value) -> Result<Self, String> {
            match payload.as_str() {
                Some("boom") => panic!("asked to explode"),
                Some(p) => Ok(Prefix(p.to_string())),
                None => Err("want a string".into()),
            }
        }
        fn matches(&self, click: &Click<'_>) -> Result<bool, String> {
            if click.ip() == "6.6.6.6" {
                panic!("panic requested by {}", click.ip());
            }
            Ok(click.ip().starts_with(&self.0)
                && click.sub_id_n(2) == "two"
                && click.param("utm") == Some("x")
                && click.header("utm").is_none())
        }
    }

    struct Echo;

    impl NativeAction for Echo {
        const NAME: &'static str = "echo";
        const DESCRIPTION: &'static str = "Echoes the IP.";
        fn build(_: &Value, _: &Value) -> Result<Self, String> {
            Ok(Echo)
        }
        fn run(&self, click: &Click<'_>) -> Result<Reply, String> {
            Ok(Reply::Content {
                status: 200,
                content_type: "text/plain".into(),
                body: click.ip().as_bytes().to_vec(),
                headers: vec![("x-sub".into(), click.sub_id().into())],
            })
        }
    }

    struct MinLength(usize);

    impl NativeTrigger for MinLength {
        const NAME: &'static str = "min_length";
        const DESCRIPTION: &'static str = "Fires on short bodies.";
        fn build(payload: &Value) -> Result<Self, String> {
            payload
                .as_u64()
                .map(|n| MinLength(n as usize))
                .ok_or_else(|| "want a number".into())
        }
        fn check(&self, page: &CheckedPage<'_>) -> Result<CheckEffects, String> {
            if page.error == "boom" {
                panic!("check exploded at {}", page.url);
            }
            if page.body.len() >= self.0 {
                return Ok(CheckEffects::pass());
            }
            Ok(CheckEffects {
                disable: page.status >= 500,
                ..CheckEffects::fire(format!("{} bytes", page.body.len()))
            })
        }
    }

    export_plugin! {
        name: "sdk-test",
        version: "0.0.1",
        filters: [Prefix],
        actions: [Echo],
        triggers: [MinLength],
    }

    #[test]
    fn triggers_build_check_and_contain_panics() {
        let decl = &switchyard_plugin_declaration;
        assert_eq!(decl.trigger_count, 1);
        // SAFETY: trigger_count is 1.
        let trigger = unsafe { &*decl.triggers };
        // SAFETY: a declaration string, alive for the program.
        assert_eq!(unsafe { trigger.kind.name.as_str() }, Some("min_length"));
        let mut instance = std::ptr::null_mut();
        let mut error = PluginBytes::EMPTY;
        // SAFETY: valid arguments per the ABI.
        let status = unsafe { (trigger.build)(StrRef::new("\"x\""), &mut instance, &mut error) };
        assert_eq!(status, Status::ERROR);
        assert_eq!(take_error(decl, error), "want a number");
        let mut error = PluginBytes::EMPTY;
        // SAFETY: as above.
        let status = unsafe { (trigger.build)(StrRef::new("5"), &mut instance, &mut error) };
        assert_eq!(status, Status::OK);

        let check = |status: u16, body: &'static str, failure: &'static str| {
            let page = PageView {
                status,
                url: StrRef::new("http://page.test/"),
                body: StrRef::new(body),
                elapsed_ms: 3,
                error: StrRef::new(failure),
            };
            let mut effects = EffectsOut::EMPTY;
            let mut error = PluginBytes::EMPTY;
            // SAFETY: a live instance, a valid page, an EMPTY effects slot.
            let status = unsafe { (trigger.check)(instance, &page, &mut effects, &mut error) };
            let message = take_error(
                decl,
                std::mem::replace(&mut effects.message, PluginBytes::EMPTY),
            );
            (
                status,
                effects.ok,
                effects.disable,
                message,
                take_error(decl, error),
            )
        };
        assert_eq!(
            check(200, "long enough", ""),
            (Status::OK, 1, 0, String::new(), String::new())
        );
        assert_eq!(
            check(503, "tiny", ""),
            (Status::OK, 0, 1, "4 bytes".into(), String::new())
        );
        let (status, _, _, _, message) = check(0, "", "boom");
        assert_eq!(status, Status::PANIC);
        assert!(
            message.contains("check exploded at http://page.test/"),
            "{message}"
        );
        // SAFETY: released once, not used afterwards.
        unsafe { (trigger.release)(instance) };
    }

    unsafe extern "C" fn lookup(
        _host: *const c_void,
        namespace: u32,
        name: StrRef,
        out: *mut StrRef,
    ) -> u8 {
        // SAFETY: the SDK passes a valid name and out slot.
        let name = unsafe { name.as_str() }.unwrap_or("");
        let value = match (namespace, name) {
            (LOOKUP_FIELD, "sub_id_2") => "two",
            (LOOKUP_PARAM, "utm") => "x",
            _ => return 0,
        };
        // SAFETY: out is writable; the static string outlives the call.
        unsafe { out.write(StrRef::new(value)) };
        1
    }

    fn view(ip: &'static str) -> ClickView {
        ClickView {
            ip: StrRef::new(ip),
            user_agent: StrRef::EMPTY,
            referrer: StrRef::EMPTY,
            language: StrRef::EMPTY,
            country_code: StrRef::EMPTY,
            region: StrRef::EMPTY,
            city: StrRef::EMPTY,
            isp: StrRef::EMPTY,
            device_type: StrRef::EMPTY,
            os: StrRef::EMPTY,
            os_version: StrRef::EMPTY,
            browser: StrRef::EMPTY,
            browser_version: StrRef::EMPTY,
            keyword: StrRef::EMPTY,
            source: StrRef::EMPTY,
            sub_id: StrRef::new("abc"),
            campaign_id: 1,
            stream_id: 0,
            now: 0,
            host: std::ptr::null(),
            lookup,
        }
    }

    fn take_error(decl: &PluginDeclaration, error: PluginBytes) -> String {
        // SAFETY: the buffer was just written by the plugin and is freed right after.
        let text = String::from_utf8_lossy(unsafe { error.as_slice() }).into_owned();
        // SAFETY: handed back once to the side that allocated it.
        unsafe { (decl.free_bytes)(error) };
        text
    }

    #[test]
    fn filters_build_match_and_contain_panics() {
        let decl = &switchyard_plugin_declaration;
        assert_eq!(decl.layout, LayoutSizes::CURRENT);
        assert_eq!((decl.filter_count, decl.action_count), (1, 1));
        // SAFETY: the declaration's slice has filter_count elements.
        let filter = unsafe { &*decl.filters };
        // SAFETY: a declaration string, alive for the program.
        assert_eq!(unsafe { filter.kind.name.as_str() }, Some("prefix"));

        let build = |payload: &str| {
            let mut instance = std::ptr::null_mut();
            let mut error = PluginBytes::EMPTY;
            // SAFETY: valid arguments per the ABI.
            let status = unsafe { (filter.build)(StrRef::new(payload), &mut instance, &mut error) };
            (status, instance, take_error(decl, error))
        };
        assert_eq!(build("7").0, Status::ERROR);
        let (status, _, message) = build("\"boom\"");
        assert_eq!(status, Status::PANIC);
        assert!(message.contains("asked to explode"), "{message}");
        let (status, instance, _) = build("\"10.\"");
        assert_eq!(status, Status::OK);

        let run = |ip: &'static str| {
            let mut matched = 9u8;
            let mut error = PluginBytes::EMPTY;
            let click = view(ip);
            // SAFETY: a live instance and a valid view.
            let status = unsafe { (filter.matches)(instance, &click, &mut matched, &mut error) };
            (status, matched, take_error(decl, error))
        };
        assert_eq!(run("10.1.2.3").0, Status::OK);
        assert_eq!(run("10.1.2.3").1, 1);
        assert_eq!(run("11.1.2.3").1, 0);
        let (status, _, message) = run("6.6.6.6");
        assert_eq!(status, Status::PANIC);
        assert!(message.contains("panic requested by 6.6.6.6"), "{message}");
        // SAFETY: released once, not used afterwards.
        unsafe { (filter.release)(instance) };
    }

    #[test]
    fn actions_hand_back_replies_that_the_plugin_frees() {
        let decl = &switchyard_plugin_declaration;
        // SAFETY: action_count is 1.
        let action = unsafe { &*decl.actions };
        let mut instance = std::ptr::null_mut();
        let mut error = PluginBytes::EMPTY;
        // SAFETY: valid arguments per the ABI.
        let status =
            unsafe { (action.build)(StrRef::EMPTY, StrRef::EMPTY, &mut instance, &mut error) };
        assert_eq!(status, Status::OK);
        let mut reply = ReplyOut::EMPTY;
        let click = view("192.0.2.1");
        // SAFETY: a live instance, a valid view, an EMPTY reply.
        let status = unsafe { (action.run)(instance, &click, &mut reply, &mut error) };
        assert_eq!(status, Status::OK);
        assert_eq!(reply.kind, REPLY_CONTENT);
        // SAFETY: the reply's buffers are alive until free_reply below.
        unsafe {
            assert_eq!(reply.body.as_slice(), b"192.0.2.1");
            assert_eq!(reply.header_count, 1);
            assert_eq!((*reply.headers).value.as_slice(), b"abc");
            (decl.free_reply)(&mut reply);
            (action.release)(instance);
        }
        assert_eq!(reply.kind, REPLY_NONE);
        assert!(reply.headers.is_null());
    }
}
