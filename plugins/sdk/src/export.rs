//! The `extern "C"` side of the safe traits: generic functions that `export_plugin!` puts into
//! the declaration's vtables. Every one of them catches panics: an unwind must never cross the
//! boundary (it would abort the host).

use std::any::Any;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::Value;

use crate::abi::{
    ActionDecl, ClickView, EffectsOut, FilterDecl, HeaderOut, KindDecl, PageView, PluginBytes,
    REPLY_CONTENT, REPLY_REDIRECT, ReplyOut, Status, StrRef, TriggerDecl,
};
use crate::{CheckedPage, Click, NativeAction, NativeFilter, NativeTrigger, PayloadDoc, Reply};

/// The text of a panic payload.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        format!("panicked: {text}")
    } else if let Some(text) = payload.downcast_ref::<String>() {
        format!("panicked: {text}")
    } else {
        "panicked".to_string()
    }
}

/// Drops a panic payload without letting a panicking destructor unwind out of here.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// Writes `message` to `out_error` if the host gave a place for it.
fn write_error(out_error: *mut PluginBytes, message: String) {
    if out_error.is_null() {
        return;
    }
    // SAFETY: the host passes either null (checked above) or a valid, writable PluginBytes
    // that it initialised to EMPTY, so overwriting it leaks nothing.
    unsafe { out_error.write(PluginBytes::from_vec(message.into_bytes())) };
}

/// Runs `body`, turning an error or a panic into a status and a message.
fn guarded(out_error: *mut PluginBytes, body: impl FnOnce() -> Result<(), String>) -> Status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => Status::OK,
        Ok(Err(message)) => {
            write_error(out_error, message);
            Status::ERROR
        }
        Err(payload) => {
            write_error(out_error, panic_message(&*payload));
            drop_payload(payload);
            Status::PANIC
        }
    }
}

/// Parses a JSON argument; empty text is `null`.
///
/// # Safety
/// `text` must be a valid StrRef for the duration of the call.
unsafe fn json_argument(text: StrRef, what: &str) -> Result<Value, String> {
    // SAFETY: forwarded to the caller.
    let text = unsafe { text.as_str() }.ok_or_else(|| format!("the {what} is not UTF-8"))?;
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| format!("the {what} is not valid JSON: {e}"))
}

/// Stores a built instance for the host.
fn hand_over<T>(value: T, out_instance: *mut *mut c_void) -> Result<(), String> {
    if out_instance.is_null() {
        return Err("the host passed no place for the instance".into());
    }
    let raw = Box::into_raw(Box::new(value)).cast::<c_void>();
    // SAFETY: out_instance is non-null and, per the ABI, a writable pointer slot.
    unsafe { out_instance.write(raw) };
    Ok(())
}

/// # Safety
/// Called by the host per the [`FilterBuildFn`](crate::abi::FilterBuildFn) contract.
pub unsafe extern "C" fn filter_build<T: NativeFilter>(
    payload: StrRef,
    out_instance: *mut *mut c_void,
    out_error: *mut PluginBytes,
) -> Status {
    guarded(out_error, || {
        // SAFETY: the host keeps the payload text alive during this call.
        let payload = unsafe { json_argument(payload, "payload") }?;
        hand_over(T::build(&payload)?, out_instance)
    })
}

/// # Safety
/// Called by the host per the [`FilterMatchesFn`](crate::abi::FilterMatchesFn) contract:
/// `instance` came from `filter_build::<T>` and is not released.
pub unsafe extern "C" fn filter_matches<T: NativeFilter>(
    instance: *const c_void,
    click: *const ClickView,
    out_matched: *mut u8,
    out_error: *mut PluginBytes,
) -> Status {
    guarded(out_error, || {
        if instance.is_null() || click.is_null() || out_matched.is_null() {
            return Err("the host passed a null pointer".into());
        }
        // SAFETY: the instance is a live Box<T> made by filter_build::<T> (the host keeps it
        // until release), and T: Sync allows shared use from this thread.
        let filter = unsafe { &*instance.cast::<T>() };
        // SAFETY: the host's ClickView is valid for the duration of this call.
        let view = unsafe { &*click };
        let matched = filter.matches(&Click::new(view))?;
        // SAFETY: out_matched is non-null and writable per the ABI.
        unsafe { out_matched.write(u8::from(matched)) };
        Ok(())
    })
}

/// # Safety
/// `instance` came from `filter_build::<T>`, `action_build::<T>` or `trigger_build::<T>` and is
/// released once.
pub unsafe extern "C" fn release<T>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    // SAFETY: the instance is a Box<T> leaked by hand_over in this library; the host releases
    // it exactly once, after its last use.
    let boxed = unsafe { Box::from_raw(instance.cast::<T>()) };
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(boxed))) {
        drop_payload(payload);
    }
}

/// # Safety
/// Called by the host per the [`ActionBuildFn`](crate::abi::ActionBuildFn) contract.
pub unsafe extern "C" fn action_build<T: NativeAction>(
    payload: StrRef,
    options: StrRef,
    out_instance: *mut *mut c_void,
    out_error: *mut PluginBytes,
) -> Status {
    guarded(out_error, || {
        // SAFETY: the host keeps both texts alive during this call.
        let payload = unsafe { json_argument(payload, "payload") }?;
        // SAFETY: as above.
        let options = unsafe { json_argument(options, "options") }?;
        hand_over(T::build(&payload, &options)?, out_instance)
    })
}

fn reply_out(reply: Reply) -> ReplyOut {
    match reply {
        Reply::Redirect { url, status } => ReplyOut {
            kind: REPLY_REDIRECT,
            status,
            url: PluginBytes::from_vec(url.into_bytes()),
            ..ReplyOut::EMPTY
        },
        Reply::Content {
            status,
            content_type,
            body,
            headers,
        } => {
            let headers: Box<[HeaderOut]> = headers
                .into_iter()
                .map(|(name, value)| HeaderOut {
                    name: PluginBytes::from_vec(name.into_bytes()),
                    value: PluginBytes::from_vec(value.into_bytes()),
                })
                .collect();
            let header_count = headers.len();
            ReplyOut {
                kind: REPLY_CONTENT,
                status,
                content_type: PluginBytes::from_vec(content_type.into_bytes()),
                body: PluginBytes::from_vec(body),
                headers: if header_count == 0 {
                    std::ptr::null_mut()
                } else {
                    Box::into_raw(headers).cast::<HeaderOut>()
                },
                header_count,
                ..ReplyOut::EMPTY
            }
        }
    }
}

/// # Safety
/// Called by the host per the [`ActionRunFn`](crate::abi::ActionRunFn) contract: `instance`
/// came from `action_build::<T>` and is not released.
pub unsafe extern "C" fn action_run<T: NativeAction>(
    instance: *const c_void,
    click: *const ClickView,
    out_reply: *mut ReplyOut,
    out_error: *mut PluginBytes,
) -> Status {
    guarded(out_error, || {
        if instance.is_null() || click.is_null() || out_reply.is_null() {
            return Err("the host passed a null pointer".into());
        }
        // SAFETY: a live Box<T> made by action_build::<T>; T: Sync.
        let action = unsafe { &*instance.cast::<T>() };
        // SAFETY: the host's ClickView is valid for the duration of this call.
        let view = unsafe { &*click };
        let reply = reply_out(action.run(&Click::new(view))?);
        // SAFETY: out_reply is non-null and points at a host-initialised EMPTY ReplyOut, so
        // overwriting it leaks nothing; the host hands it back to free_reply.
        unsafe { out_reply.write(reply) };
        Ok(())
    })
}

/// # Safety
/// Called by the host per the [`TriggerBuildFn`](crate::abi::TriggerBuildFn) contract.
pub unsafe extern "C" fn trigger_build<T: NativeTrigger>(
    payload: StrRef,
    out_instance: *mut *mut c_void,
    out_error: *mut PluginBytes,
) -> Status {
    guarded(out_error, || {
        // SAFETY: the host keeps the payload text alive during this call.
        let payload = unsafe { json_argument(payload, "payload") }?;
        hand_over(T::build(&payload)?, out_instance)
    })
}

/// # Safety
/// Called by the host per the [`TriggerCheckFn`](crate::abi::TriggerCheckFn) contract:
/// `instance` came from `trigger_build::<T>` and is not released.
pub unsafe extern "C" fn trigger_check<T: NativeTrigger>(
    instance: *const c_void,
    page: *const PageView,
    out_effects: *mut EffectsOut,
    out_error: *mut PluginBytes,
) -> Status {
    guarded(out_error, || {
        if instance.is_null() || page.is_null() || out_effects.is_null() {
            return Err("the host passed a null pointer".into());
        }
        // SAFETY: a live Box<T> made by trigger_build::<T>; T: Sync.
        let check = unsafe { &*instance.cast::<T>() };
        // SAFETY: the host's PageView and the strings it points at are valid for this call.
        let view = unsafe { &*page };
        let text = |value: StrRef, what: &str| {
            // SAFETY: as above: host strings alive for the duration of the call.
            unsafe { value.as_str() }.ok_or_else(|| format!("the page's {what} is not UTF-8"))
        };
        let page = CheckedPage {
            status: view.status,
            body: text(view.body, "body")?,
            url: text(view.url, "URL")?,
            elapsed_ms: view.elapsed_ms,
            error: text(view.error, "error")?,
        };
        let effects = check.check(&page)?;
        let out = EffectsOut {
            ok: u8::from(effects.ok),
            disable: u8::from(effects.disable),
            replace_url: u8::from(effects.replace_url),
            message: PluginBytes::from_vec(effects.message.into_bytes()),
        };
        // SAFETY: out_effects is non-null and points at a host-initialised EMPTY EffectsOut
        // (nothing to leak); the host hands `message` back to free_bytes.
        unsafe { out_effects.write(out) };
        Ok(())
    })
}

/// Frees bytes this library handed out.
///
/// # Safety
/// `bytes` came from this library and is freed once.
pub unsafe extern "C" fn free_bytes(mut bytes: PluginBytes) {
    // SAFETY: forwarded to the caller; PluginBytes::free only deallocates.
    unsafe { bytes.free() };
}

/// Frees everything inside a reply this library wrote and leaves it empty.
///
/// # Safety
/// `reply` is null or points at a ReplyOut written by `action_run` of this library (or
/// EMPTY), freed once.
pub unsafe extern "C" fn free_reply(reply: *mut ReplyOut) {
    if reply.is_null() {
        return;
    }
    // SAFETY: the host passes the ReplyOut it received from action_run, unchanged.
    let reply = unsafe { &mut *reply };
    let mut taken = std::mem::replace(reply, ReplyOut::EMPTY);
    // SAFETY: each buffer was made by PluginBytes::from_vec in this library and is freed once
    // (the ReplyOut was just emptied).
    unsafe {
        taken.url.free();
        taken.content_type.free();
        taken.body.free();
    }
    if !taken.headers.is_null() {
        let slice = std::ptr::slice_from_raw_parts_mut(taken.headers, taken.header_count);
        // SAFETY: headers and header_count are exactly a Box<[HeaderOut]> leaked by reply_out.
        let mut headers = unsafe { Box::from_raw(slice) };
        for header in headers.iter_mut() {
            // SAFETY: made by from_vec in this library, freed once.
            unsafe {
                header.name.free();
                header.value.free();
            }
        }
    }
}

const fn kind_decl(
    name: &'static str,
    group: &'static str,
    description: &'static str,
    payload: PayloadDoc,
) -> KindDecl {
    KindDecl {
        name: StrRef::new(name),
        group: StrRef::new(group),
        description: StrRef::new(description),
        payload_type: StrRef::new(payload.kind),
        payload_example: StrRef::new(payload.example),
        payload_notes: StrRef::new(payload.notes),
    }
}

/// The declaration of filter kind `T`.
pub const fn filter_decl<T: NativeFilter>() -> FilterDecl {
    FilterDecl {
        kind: kind_decl(T::NAME, T::GROUP, T::DESCRIPTION, T::PAYLOAD),
        build: filter_build::<T>,
        matches: filter_matches::<T>,
        release: release::<T>,
    }
}

/// The declaration of action kind `T`.
pub const fn action_decl<T: NativeAction>() -> ActionDecl {
    ActionDecl {
        kind: kind_decl(T::NAME, T::GROUP, T::DESCRIPTION, T::PAYLOAD),
        build: action_build::<T>,
        run: action_run::<T>,
        release: release::<T>,
    }
}

/// The declaration of trigger check kind `T`.
pub const fn trigger_decl<T: NativeTrigger>() -> TriggerDecl {
    TriggerDecl {
        kind: kind_decl(T::NAME, T::GROUP, T::DESCRIPTION, T::PAYLOAD),
        build: trigger_build::<T>,
        check: trigger_check::<T>,
        release: release::<T>,
    }
}
