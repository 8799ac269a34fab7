//! A library's trigger check kind: builds an instance from the trigger's params, hands it the
//! fetched page, copies the verdict and releases the instance, all with panics caught. Its
//! guard (`crate::guard`, held by the trigger check) counts calls like filters and actions.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::Value;
use switchyard_plugin_sdk::abi::{
    EffectsOut, MAX_CHECK_BODY, PageView, PluginBytes, ReleaseFn, Status, StrRef, TriggerBuildFn,
    TriggerCheckFn, TriggerDecl,
};

use super::adapter::{FreeBytesFn, failure, take_message};
use crate::model::{TriggerEffects, TriggerPage};
use crate::registry::KindInfo;

/// A library's trigger check kind (`native:NAME` as a trigger condition).
pub struct NativeTriggerKind {
    info: KindInfo,
    build: TriggerBuildFn,
    check: TriggerCheckFn,
    release: ReleaseFn,
    free_bytes: FreeBytesFn,
    /// The library's SHA-256 (see `NativeFilterKind`).
    fingerprint: String,
}

/// Releases an instance when dropped, so that every path out of a check releases it once.
struct Instance {
    pointer: *mut c_void,
    release: ReleaseFn,
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: the instance came from this kind's build, is released exactly once (here,
        // after its only use) and the library is never unloaded.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe { (self.release)(self.pointer) }));
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends at a character boundary.
fn capped(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl NativeTriggerKind {
    pub(super) fn new(
        info: KindInfo,
        decl: TriggerDecl,
        free_bytes: FreeBytesFn,
        fingerprint: &str,
    ) -> Self {
        NativeTriggerKind {
            info,
            build: decl.build,
            check: decl.check,
            release: decl.release,
            free_bytes,
            fingerprint: fingerprint.to_string(),
        }
    }

    /// The catalogue entry (`native:page_watch`, with its library as origin).
    pub fn info(&self) -> &KindInfo {
        &self.info
    }

    /// What the kind was built from, for its guard.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Builds a check from `params`, runs it on `page` and releases it. Errors (a refused
    /// payload, a failed or panicking check) say what went wrong.
    pub fn check(&self, params: &Value, page: &TriggerPage) -> Result<TriggerEffects, String> {
        let name = &self.info.name;
        let payload = params.to_string();
        let mut pointer: *mut c_void = std::ptr::null_mut();
        let mut error = PluginBytes::EMPTY;
        let status = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: a vtable of a library that passed the handshake and stays loaded; the
            // payload text outlives the call; both out pointers are valid.
            unsafe { (self.build)(StrRef::new(&payload), &mut pointer, &mut error) }
        }))
        .unwrap_or(Status::PANIC);
        let message = take_message(self.free_bytes, error);
        match status {
            Status::OK if !pointer.is_null() => {}
            Status::OK => return Err(format!("{name}: the plugin built no trigger check")),
            Status::PANIC => return Err(format!("{name}: the plugin panicked: {message}")),
            _ => return Err(format!("{name}: {message}")),
        }
        let instance = Instance {
            pointer,
            release: self.release,
        };
        let view = PageView {
            status: page.status,
            url: StrRef::new(&page.url),
            body: StrRef::new(capped(&page.body, MAX_CHECK_BODY)),
            elapsed_ms: page.elapsed_ms,
            error: StrRef::new(&page.error),
        };
        let mut effects = EffectsOut::EMPTY;
        let mut error = PluginBytes::EMPTY;
        let status = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: a live instance of this kind; the view and the strings it borrows live
            // on this stack frame for the whole call; `effects` is an EMPTY EffectsOut the
            // plugin may overwrite; `error` is valid.
            unsafe { (self.check)(instance.pointer, &view, &mut effects, &mut error) }
        }))
        .unwrap_or(Status::PANIC);
        drop(instance);
        let message = take_message(self.free_bytes, error);
        let verdict_message = take_message(
            self.free_bytes,
            std::mem::replace(&mut effects.message, PluginBytes::EMPTY),
        );
        match status {
            Status::OK => Ok(TriggerEffects {
                ok: effects.ok != 0,
                disable: effects.disable != 0,
                replace_url: effects.replace_url != 0,
                message: verdict_message,
            }),
            status => Err(format!("{name}: {}", failure(status, message))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_cut_at_character_boundaries() {
        assert_eq!(capped("abc", 5), "abc");
        assert_eq!(capped("abcdef", 3), "abc");
        assert_eq!(capped("aé", 2), "a");
        assert_eq!(capped("", 0), "");
    }
}
