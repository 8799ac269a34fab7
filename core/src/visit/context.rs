//! The per-click context: the click being built, the visit it came from, lazily computed
//! enrichment, visitor memory and the optional processing log. Filters and actions see the
//! click only through this type.

use std::cell::OnceCell;
use std::collections::hash_map::RandomState;
use std::sync::Arc;

use crate::enrich::{DeviceInfo, Enrichment, GeoInfo};
use crate::model::{Campaign, Click};

use super::counters::{HitCounters, Hits};
use super::uniqueness::{Scope, UniquenessStore, VisitorCookie, VisitorRecord, fingerprint};
use super::{Signer, Visit};

/// Long-lived services the click path uses (no database, no network).
#[derive(Clone)]
pub struct TrafficEnv {
    pub enrichment: Enrichment,
    pub uniqueness: Arc<dyn UniquenessStore>,
    pub hits: Arc<HitCounters>,
    /// Offers' conversions today, for their daily caps.
    pub caps: Arc<super::ConversionCaps>,
    pub signer: Signer,
    /// Keys the visitor fingerprints; random per process.
    pub hasher: RandomState,
    /// Line lists of the `{from_file:NAME}` macro.
    pub macro_files: Arc<super::macro_files::MacroFiles>,
}

impl TrafficEnv {
    /// An environment with no enrichment data and in-memory visitor records.
    pub fn in_memory(signing_key: &str) -> Self {
        TrafficEnv {
            enrichment: Enrichment::default(),
            uniqueness: Arc::new(super::uniqueness::MemoryUniqueness::new(1 << 20)),
            hits: Arc::new(HitCounters::default()),
            caps: Arc::new(super::ConversionCaps::default()),
            signer: Signer::new(signing_key),
            hasher: RandomState::new(),
            macro_files: Arc::default(),
        }
    }
}

/// Uniqueness of the visitor before this click, as recorded on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UniqueFlags {
    pub campaign: bool,
    pub stream: bool,
    pub global: bool,
}

/// Everything known about one click while it is routed.
pub struct ClickContext<'a> {
    pub env: &'a TrafficEnv,
    pub visit: &'a Visit,
    pub campaign: &'a Campaign,
    /// The click as it will be recorded.
    pub click: Click,
    /// Seconds since the Unix epoch, fixed for the whole click.
    pub now: i64,
    /// The visitor cookie as received (default for a new visitor) and as it will be sent back.
    pub cookie: VisitorCookie,
    /// The stream whose filters are being checked (for `uniqueness: stream` and `limit`).
    pub checking_stream: Option<i64>,
    /// The campaign's traffic source name, for the `{traffic_source_name}` macro.
    pub traffic_source_name: String,
    /// A stream was passed over because its `limit` filter was exhausted (a cap was reached).
    pub capped: bool,
    geo: Option<GeoInfo>,
    device: Option<Arc<DeviceInfo>>,
    bot: Option<bool>,
    fingerprint: u64,
    /// The visitor store's record of this visitor, looked up once per click on first use
    /// (the uniqueness checks, then marking the visit).
    store_record: OnceCell<VisitorRecord>,
    trace: Option<Vec<String>>,
    /// Values derived once per click by plugins (e.g. the script view of the click).
    memo: Vec<Box<dyn std::any::Any>>,
}

impl<'a> ClickContext<'a> {
    pub fn new(
        env: &'a TrafficEnv,
        visit: &'a Visit,
        campaign: &'a Campaign,
        click: Click,
        trace: bool,
    ) -> Self {
        let cookie = if campaign.uniqueness_use_cookies {
            visit
                .cookie
                .as_deref()
                .and_then(|text| VisitorCookie::decode(&env.signer, text))
                .unwrap_or_default()
        } else {
            VisitorCookie::default()
        };
        let ua = (campaign.uniqueness_method != "ip").then_some(visit.user_agent.as_str());
        let fingerprint = fingerprint(&env.hasher, &click.ip, ua);
        ClickContext {
            env,
            visit,
            campaign,
            now: click.created_at,
            click,
            cookie,
            checking_stream: None,
            traffic_source_name: String::new(),
            capped: false,
            geo: None,
            device: None,
            bot: None,
            fingerprint,
            store_record: OnceCell::new(),
            trace: trace.then(Vec::new),
            memo: Vec::new(),
        }
    }

    /// A value of type `T` derived once per click: built by `build` on first use, then cloned.
    pub fn memo<T: Clone + 'static>(&mut self, build: impl FnOnce(&mut Self) -> T) -> T {
        if let Some(found) = self.memo.iter().find_map(|m| m.downcast_ref::<T>()) {
            return found.clone();
        }
        let value = build(self);
        self.memo.push(Box::new(value.clone()));
        value
    }

    /// Adds a line to the processing log (when one is kept: Click API `log=1`, `route`).
    pub fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            trace.push(line());
        }
    }

    pub fn take_log(&mut self) -> Vec<String> {
        self.trace.take().unwrap_or_default()
    }

    pub fn is_logging(&self) -> bool {
        self.trace.is_some()
    }

    /// GeoIP data for the click's IP, looked up on first use.
    pub fn geo(&mut self) -> &GeoInfo {
        if self.geo.is_none() {
            let geo = self.env.enrichment.geo.lookup(self.visit.ip);
            self.geo = Some(geo);
        }
        self.geo.get_or_insert_with(GeoInfo::default)
    }

    /// Geography if it was looked up already.
    pub fn geo_cached(&self) -> Option<&GeoInfo> {
        self.geo.as_ref()
    }

    /// Device, OS and browser from the User-Agent, parsed on first use (and cached).
    pub fn device(&mut self) -> Arc<DeviceInfo> {
        if let Some(device) = &self.device {
            return device.clone();
        }
        let device = self.env.enrichment.devices.detect(&self.visit.user_agent);
        self.device = Some(device.clone());
        device
    }

    /// Bot signals: crawler UA or empty UA, the bot IP list, prefetch requests.
    pub fn is_bot(&mut self) -> bool {
        if let Some(bot) = self.bot {
            return bot;
        }
        let bots = &self.env.enrichment.bots;
        let bot = self.visit.is_prefetch()
            || bots.is_bot_user_agent(&self.visit.user_agent)
            || bots.is_bot_ip(self.visit.ip);
        self.bot = Some(bot);
        bot
    }

    /// Signs of a proxy between the visitor and us: forwarding headers from a peer we do not
    /// trust (trusted proxies' headers were consumed when the IP was chosen).
    pub fn is_using_proxy(&self) -> bool {
        [
            "via",
            "forwarded",
            "x-forwarded-for",
            "x-proxy-id",
            "proxy-connection",
        ]
        .iter()
        .any(|h| self.visit.header(h).is_some())
    }

    /// The campaign's uniqueness window in seconds.
    pub fn ttl_seconds(&self) -> i64 {
        self.campaign.cookies_ttl.max(1) * 3_600
    }

    /// The visitor store's record of this visitor (read once per click; `mark_seen` writes it
    /// back when the visit restarts a scope).
    fn record(&self) -> &VisitorRecord {
        self.store_record
            .get_or_init(|| self.env.uniqueness.visitor(self.fingerprint))
    }

    /// When the visitor store last saw this visitor in `scope`.
    fn last_seen(&self, scope: Scope) -> Option<i64> {
        self.record().last_seen(scope)
    }

    fn seen_in_store(&self, scope: Scope) -> bool {
        let ttl = self.ttl_seconds();
        self.last_seen(scope).is_some_and(|at| self.now - at < ttl)
    }

    /// Whether the visitor is new to the campaign (cookie first, then the IP record).
    pub fn is_unique_campaign(&self) -> bool {
        let id = self.campaign.id;
        !(self.cookie.seen_campaign(id, self.now, self.ttl_seconds())
            || self.seen_in_store(Scope::Campaign(id)))
    }

    /// Whether the visitor is new to `stream`.
    pub fn is_unique_stream(&self, stream: i64) -> bool {
        !(self
            .cookie
            .seen_stream(stream, self.now, self.ttl_seconds())
            || self.seen_in_store(Scope::Stream(stream)))
    }

    /// Whether the visitor is new to the tracker.
    pub fn is_unique_global(&self) -> bool {
        !(self.cookie.seen_globally(self.now, self.ttl_seconds())
            || self.seen_in_store(Scope::Global))
    }

    /// Records this visit in the cookie and the server-side store.
    pub fn mark_seen(&mut self, stream: Option<i64>) {
        let ttl = self.ttl_seconds();
        // Only scopes whose window ran out (or never started) restart; the rest keep theirs.
        let fresh: Vec<Scope> = [
            Some(Scope::Campaign(self.campaign.id)),
            Some(Scope::Global),
            stream.map(Scope::Stream),
        ]
        .into_iter()
        .flatten()
        .filter(|scope| self.last_seen(*scope).is_none_or(|at| self.now - at >= ttl))
        .collect();
        if !fresh.is_empty() {
            let stored = self.env.uniqueness.mark(self.fingerprint, &fresh, self.now);
            self.store_record = OnceCell::from(stored);
        }
        self.cookie.mark(self.campaign.id, stream, self.now, ttl);
    }

    /// The stream's hit counts now.
    pub fn hits(&self, stream: i64) -> Hits {
        self.env.hits.get(stream, self.now)
    }

    /// Copies enrichment onto the click (for recording), computing what was not needed yet.
    pub fn finish_enrichment(&mut self) {
        let geo = self.geo().clone();
        let device = self.device();
        let bot = self.is_bot();
        let proxy = self.is_using_proxy();
        let click = &mut self.click;
        click.country_code = geo.country_code;
        click.country_name = geo.country_name;
        click.region = geo.region;
        click.region_code = geo.region_code;
        click.latitude = geo.latitude;
        click.longitude = geo.longitude;
        click.city = geo.city;
        click.isp = geo.isp;
        click.operator = geo.operator;
        click.connection_type = geo.connection_type;
        click.device_type = device.device_type.clone();
        click.device_brand = device.device_brand.clone();
        click.device_model = device.device_model.clone();
        click.os = device.os.clone();
        click.os_version = device.os_version.clone();
        click.browser = device.browser.clone();
        click.browser_version = device.browser_version.clone();
        click.is_bot = bot;
        click.is_using_proxy = proxy;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::fixtures;

    /// One click of `visit` in `campaign` at `now`, on `stream`: its uniqueness flags
    /// (campaign, stream, global) before the click is marked.
    fn click_at(
        env: &TrafficEnv,
        campaign: &Campaign,
        visit: &Visit,
        now: i64,
        stream: i64,
    ) -> (bool, bool, bool) {
        let mut click = Click::blank();
        click.ip = visit.ip.to_string();
        click.created_at = now;
        let mut ctx = ClickContext::new(env, visit, campaign, click, false);
        let flags = (
            ctx.is_unique_campaign(),
            ctx.is_unique_stream(stream),
            ctx.is_unique_global(),
        );
        ctx.mark_seen(Some(stream));
        flags
    }

    #[test]
    fn store_windows_restart_only_when_they_run_out() {
        let env = fixtures::env();
        let mut campaign = fixtures::campaign(1);
        campaign.cookies_ttl = 1;
        campaign.uniqueness_use_cookies = false;
        let visit = fixtures::visit("1.2.3.4");
        let start = 1_700_000_000;
        let unique = (true, true, true);
        let seen = (false, false, false);
        assert_eq!(click_at(&env, &campaign, &visit, start, 5), unique);
        assert_eq!(click_at(&env, &campaign, &visit, start + 3_599, 5), seen);
        // An hour after the first click, not after the second: a visit inside the window
        // does not restart it.
        assert_eq!(click_at(&env, &campaign, &visit, start + 3_600, 5), unique);
        assert_eq!(click_at(&env, &campaign, &visit, start + 7_199, 5), seen);
        assert_eq!(click_at(&env, &campaign, &visit, start + 7_200, 5), unique);
        // Another stream of the campaign is new to the visitor; the rest is not.
        assert_eq!(
            click_at(&env, &campaign, &visit, start + 7_201, 6),
            (false, true, false)
        );
    }
}
