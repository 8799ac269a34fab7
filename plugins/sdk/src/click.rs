//! The safe view of a click that plugin code receives.

use crate::abi::{ClickView, LOOKUP_FIELD, LOOKUP_HEADER, LOOKUP_PARAM, StrRef};

/// The click a filter or action is called for. Borrowed from the host for one call: keep
/// nothing from it beyond the call (copy what you need).
///
/// Text the host sends that is not valid UTF-8 reads as empty (the host only sends UTF-8).
#[derive(Clone, Copy)]
pub struct Click<'a> {
    view: &'a ClickView,
}

const SUB_ID_NAMES: [&str; 30] = [
    "sub_id_1",
    "sub_id_2",
    "sub_id_3",
    "sub_id_4",
    "sub_id_5",
    "sub_id_6",
    "sub_id_7",
    "sub_id_8",
    "sub_id_9",
    "sub_id_10",
    "sub_id_11",
    "sub_id_12",
    "sub_id_13",
    "sub_id_14",
    "sub_id_15",
    "sub_id_16",
    "sub_id_17",
    "sub_id_18",
    "sub_id_19",
    "sub_id_20",
    "sub_id_21",
    "sub_id_22",
    "sub_id_23",
    "sub_id_24",
    "sub_id_25",
    "sub_id_26",
    "sub_id_27",
    "sub_id_28",
    "sub_id_29",
    "sub_id_30",
];

/// Reads a host string that lives for 'a.
fn text<'a>(value: StrRef) -> &'a str {
    // SAFETY: the host guarantees that every StrRef of a ClickView, and every string its
    // lookup returns, stays valid and unchanged until the plugin's call returns; a `Click<'a>`
    // exists only inside that call (the SDK creates it from the borrowed view).
    unsafe { value.as_str() }.unwrap_or("")
}

impl<'a> Click<'a> {
    /// Wraps the host's view. Used by the SDK's exports.
    pub(crate) fn new(view: &'a ClickView) -> Self {
        Click { view }
    }

    /// The visitor's IP address as text (`203.0.113.7`, `2001:db8::1`).
    pub fn ip(&self) -> &'a str {
        text(self.view.ip)
    }
    pub fn user_agent(&self) -> &'a str {
        text(self.view.user_agent)
    }
    pub fn referrer(&self) -> &'a str {
        text(self.view.referrer)
    }
    /// The first language tag of Accept-Language, lower case (`en`), or "".
    pub fn language(&self) -> &'a str {
        text(self.view.language)
    }
    /// ISO 3166-1 alpha-2 country code, upper case, or "" when unknown.
    pub fn country_code(&self) -> &'a str {
        text(self.view.country_code)
    }
    pub fn region(&self) -> &'a str {
        text(self.view.region)
    }
    pub fn city(&self) -> &'a str {
        text(self.view.city)
    }
    pub fn isp(&self) -> &'a str {
        text(self.view.isp)
    }
    /// `desktop`, `mobile`, `tablet`, `tv`, `console`, `wearable`, `bot` or "".
    pub fn device_type(&self) -> &'a str {
        text(self.view.device_type)
    }
    pub fn os(&self) -> &'a str {
        text(self.view.os)
    }
    pub fn os_version(&self) -> &'a str {
        text(self.view.os_version)
    }
    pub fn browser(&self) -> &'a str {
        text(self.view.browser)
    }
    pub fn browser_version(&self) -> &'a str {
        text(self.view.browser_version)
    }
    pub fn keyword(&self) -> &'a str {
        text(self.view.keyword)
    }
    pub fn source(&self) -> &'a str {
        text(self.view.source)
    }
    /// The click's id (Keitaro's `subid`).
    pub fn sub_id(&self) -> &'a str {
        text(self.view.sub_id)
    }
    pub fn campaign_id(&self) -> i64 {
        self.view.campaign_id
    }
    /// The stream being checked (filters) or chosen (actions), if any.
    pub fn stream_id(&self) -> Option<i64> {
        (self.view.stream_id != 0).then_some(self.view.stream_id)
    }
    /// The click's time, seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        self.view.now
    }

    fn lookup(&self, namespace: u32, name: &str) -> Option<&'a str> {
        let mut out = StrRef::EMPTY;
        // SAFETY: `lookup` and `host` come from the host's ClickView for this call, which is
        // still running; the name is a valid borrowed string for the duration of the call and
        // `out` is a valid place to write one StrRef.
        let found =
            unsafe { (self.view.lookup)(self.view.host, namespace, StrRef::new(name), &mut out) };
        (found == 1).then(|| text(out))
    }

    /// A query parameter of the visit (the first one with that name).
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.lookup(LOOKUP_PARAM, name)
    }

    /// A request header by lower-case name (filters only; actions see none).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.lookup(LOOKUP_HEADER, name)
    }

    /// A click field by its Keitaro name (`sub_id_3`, `extra_param_1`, `operator`, …; see
    /// [`LOOKUP_FIELD`]).
    pub fn field(&self, name: &str) -> Option<&'a str> {
        self.lookup(LOOKUP_FIELD, name)
    }

    /// `sub_id_1` … `sub_id_30` (`n` from 1); "" when empty or out of range.
    pub fn sub_id_n(&self, n: usize) -> &'a str {
        n.checked_sub(1)
            .and_then(|i| SUB_ID_NAMES.get(i))
            .and_then(|name| self.field(name))
            .unwrap_or("")
    }
}
