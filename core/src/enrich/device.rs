//! Device, OS and browser from the User-Agent: the uap-core regexes (vendored in
//! `core/data/uap-core/`, converted to JSON by its `convert.py`) run by the `ua-parser` crate,
//! behind a bounded cache keyed by the UA string.
//!
//! A cold parse costs microseconds; real traffic repeats a small set of UAs, so the cache
//! absorbs almost all of it.
//!
//! uap-core has no device type, so [`DeviceDetector`] derives one. The first rule that
//! matches wins (tokens are matched case-insensitively in the raw UA):
//!
//! 1. empty UA: `""`;
//! 2. `bot`: uap-core's device family is `Spider`;
//! 3. `console`: `PlayStation`, `Xbox` or `Nintendo` in the UA;
//! 4. `tv`: a TV token (`SmartTV`, `SMART-TV`, `AppleTV`, `GoogleTV`, `Android TV`, `HbbTV`,
//!    `NetCast`, `Web0S`, `BRAVIA`, `Roku`, `CrKey`, `tvOS`, ...), an Amazon Fire TV model
//!    (`AFT...`), or OS `tvOS`/`ATV OS X`/`Chromecast`/`FireHbbTV`;
//! 5. `wearable`: OS `WatchOS`, `Wear OS` in the UA, or a device family naming a watch;
//! 6. `tablet`: device family `iPad` or `Generic Tablet`, brand `Generic_Android_Tablet`,
//!    `iPad`/`Kindle`/`PlayBook` in the UA, a `Tablet` token (but not the `Tablet PC` that
//!    old Windows desktops send), or Android without a `Mobile` token (Google's convention
//!    for tablet browsers);
//! 7. `mobile`: a phone OS (iOS, Android, Windows Phone/Mobile/CE, BlackBerry OS, Symbian*,
//!    KaiOS, Nokia Series 40, ...), device family `iPhone`/`iPod`/`Generic Smartphone`/
//!    `Generic Feature Phone`, or `Mobi`/`iPhone`/`Opera Mini`/`MIDP`/`CLDC`/`J2ME` in the UA;
//! 8. `desktop`: any other `Windows*` OS, Mac OS (X), Chrome OS, Linux and the distributions
//!    uap-core names, the BSDs, Solaris;
//! 9. otherwise `""` (HTTP libraries such as curl, unknown clients).
//!
//! `bot` here is only uap-core's opinion; [`super::BotDetector`] is the bot signal (it also
//! flags HeadlessChrome, curl, empty UAs, listed networks).
//!
//! Known blind spots: iPadOS 13+ Safari asks for desktop sites with a Mac UA (`desktop`); app
//! traffic whose UA is Android without `Mobile` (e.g. `Dalvik/...`) counts as `tablet`;
//! Android watches that look like phones (Galaxy Watch `SM-R...`) count as `mobile`.

use std::convert::Infallible;
use std::sync::Arc;

use quick_cache::sync::Cache;

use super::{DeviceInfo, EnrichError};

/// uap-core's regexes.yaml, converted to JSON by `core/data/uap-core/convert.py`.
const UAP_REGEXES_JSON: &str = include_str!("../../data/uap-core/regexes.json");

/// UAs longer than this are parsed but not cached, so that a flood of huge, unique UAs cannot
/// grow the cache's memory far beyond `capacity × a normal UA`.
const MAX_CACHED_UA_BYTES: usize = 1024;

/// Parses User-Agent strings into [`DeviceInfo`]. Build one per process and share it: the
/// extractor holds every uap-core regex, compiled once.
pub struct DeviceDetector {
    extractor: ua_parser::Extractor<'static>,
    /// `None` when built with capacity 0 (caching disabled).
    cache: Option<Cache<String, Arc<DeviceInfo>>>,
    empty: Arc<DeviceInfo>,
}

impl std::fmt::Debug for DeviceDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceDetector")
            .field("cached", &self.cache.as_ref().map_or(0, Cache::len))
            .finish_non_exhaustive()
    }
}

impl DeviceDetector {
    /// Compiles the bundled uap-core regexes and makes a cache of up to `cache_capacity`
    /// distinct UAs (least recently/frequently used evicted first; 0 disables caching).
    pub fn new(cache_capacity: usize) -> Result<DeviceDetector, EnrichError> {
        let bad = |reason: String| EnrichError::BundledData {
            dataset: "uap-core regexes.json",
            reason,
        };
        let regexes: ua_parser::Regexes<'static> =
            serde_json::from_str(UAP_REGEXES_JSON).map_err(|e| bad(e.to_string()))?;
        let extractor = ua_parser::Extractor::try_from(regexes).map_err(|e| bad(e.to_string()))?;
        Ok(DeviceDetector {
            extractor,
            cache: (cache_capacity > 0).then(|| Cache::new(cache_capacity)),
            empty: Arc::new(DeviceInfo::default()),
        })
    }

    /// What the UA says about the client. The same UA returns the same `Arc` while it stays in
    /// the cache. An empty or blank UA gives an empty [`DeviceInfo`].
    pub fn detect(&self, user_agent: &str) -> Arc<DeviceInfo> {
        let user_agent = user_agent.trim();
        if user_agent.is_empty() {
            return Arc::clone(&self.empty);
        }
        match &self.cache {
            Some(cache) if user_agent.len() <= MAX_CACHED_UA_BYTES => {
                let Ok(info) = cache.get_or_insert_with(user_agent, || {
                    Ok::<_, Infallible>(Arc::new(self.parse(user_agent)))
                });
                info
            }
            _ => Arc::new(self.parse(user_agent)),
        }
    }

    fn parse(&self, ua: &str) -> DeviceInfo {
        let (browser, os, device) = self.extractor.extract(ua);
        let (browser, browser_version) = match browser {
            Some(b) => (known(&b.family), dotted(&[b.major, b.minor])),
            None => (String::new(), String::new()),
        };
        let (os, os_version) = match os {
            Some(o) => (
                known(&o.os),
                dotted(&[o.major.as_deref(), o.minor.as_deref(), o.patch.as_deref()]),
            ),
            None => (String::new(), String::new()),
        };
        let (family, brand, model) = match &device {
            Some(d) => (
                d.device.trim(),
                d.brand.as_deref().unwrap_or_default().trim(),
                d.model.as_deref().unwrap_or_default().trim(),
            ),
            None => ("", "", ""),
        };
        let device_type = device_type(ua, &os, family, brand, model);
        let (device_brand, device_model) = brand_and_model(device_type, brand, model);
        DeviceInfo {
            device_type: device_type.to_owned(),
            device_brand,
            device_model,
            os,
            os_version,
            browser,
            browser_version,
        }
    }
}

/// uap-core says `Other` for "unknown".
fn known(value: &str) -> String {
    let value = value.trim();
    if value == "Other" {
        String::new()
    } else {
        value.to_owned()
    }
}

/// uap-core fills unknown devices with placeholders: brand `Generic` with model `Smartphone`
/// or `Tablet`, brand `Generic_Android[_Tablet]` with the real model code, brand `Spider` with
/// the kind of client the crawler imitates. None of those placeholders is a brand or model.
fn brand_and_model(device_type: &str, brand: &str, model: &str) -> (String, String) {
    if device_type == "bot" || brand == "Generic" || brand == "Spider" {
        (String::new(), String::new())
    } else if brand.starts_with("Generic") {
        (String::new(), known(model))
    } else {
        (known(brand), known(model))
    }
}

/// `["17", "1", None]` -> `17.1`; stops at the first missing part.
fn dotted(parts: &[Option<&str>]) -> String {
    let mut out = String::new();
    for part in parts {
        match part.map(str::trim) {
            Some(p) if !p.is_empty() => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(p);
            }
            _ => break,
        }
    }
    out
}

const CONSOLE_TOKENS: &[&str] = &["playstation", "xbox", "nintendo"];

const TV_TOKENS: &[&str] = &[
    "smarttv",
    "smart-tv",
    "smart tv",
    "appletv",
    "apple tv",
    "googletv",
    "google tv",
    "android tv",
    "androidtv",
    "hbbtv",
    "netcast",
    "web0s",
    "webos.tv",
    "bravia",
    "roku",
    "crkey",
    "tvos",
    "philipstv",
    "opera tv",
    "viera",
    "aquos",
];

const TABLET_TOKENS: &[&str] = &["ipad", "kindle", "playbook"];

/// uap-core's names for phone systems (`Symbian^3 Anna` and friends match by prefix below).
const MOBILE_OSES: &[&str] = &[
    "iOS",
    "Android",
    "Windows Phone",
    "Windows Mobile",
    "Windows CE",
    "BlackBerry OS",
    "KaiOS",
    "Firefox OS",
    "Sailfish",
    "Ubuntu Touch",
    "Tizen",
    "Bada",
    "MeeGo",
    "Maemo",
    "webOS",
    "Brew MP",
    "Nokia Series 30 Plus",
    "Nokia Series 40",
];

const MOBILE_FAMILIES: &[&str] = &[
    "iPhone",
    "iPod",
    "Generic Smartphone",
    "Generic Feature Phone",
];

/// `MIDP`/`CLDC`/`J2ME`: Java ME feature phones.
const MOBILE_TOKENS: &[&str] = &["mobi", "opera mini", "iphone", "midp", "cldc", "j2me"];

/// uap-core's names for desktop systems other than `Windows ...`.
const DESKTOP_OSES: &[&str] = &[
    "Mac OS X",
    "Mac OS",
    "Chrome OS",
    "Linux",
    "Ubuntu",
    "Kubuntu",
    "Lubuntu",
    "Linux Mint",
    "Debian",
    "Fedora",
    "Red Hat",
    "CentOS",
    "SUSE",
    "openSUSE",
    "Arch Linux",
    "Gentoo",
    "Slackware",
    "Mageia",
    "Mandriva",
    "PCLinuxOS",
    "Puppy",
    "BackTrack",
    "FreeBSD",
    "OpenBSD",
    "NetBSD",
    "BSD",
    "Solaris",
    "SerenityOS",
];

/// The rules are listed in the module documentation; keep the two in step.
fn device_type(ua: &str, os: &str, family: &str, brand: &str, model: &str) -> &'static str {
    let lower = ua.to_ascii_lowercase();
    let has = |tokens: &[&str]| tokens.iter().any(|t| lower.contains(t));
    if family == "Spider" {
        "bot"
    } else if has(CONSOLE_TOKENS) {
        "console"
    } else if has(TV_TOKENS)
        || matches!(os, "tvOS" | "ATV OS X" | "Chromecast" | "FireHbbTV")
        || model.starts_with("AFT")
    {
        "tv"
    } else if os == "WatchOS" || lower.contains("wear os") || family.contains("Watch") {
        "wearable"
    } else if family == "iPad"
        || family == "Generic Tablet"
        || brand == "Generic_Android_Tablet"
        || has(TABLET_TOKENS)
        || (lower.contains("tablet") && !lower.contains("tablet pc"))
        || (os == "Android" && !lower.contains("mobile"))
    {
        "tablet"
    } else if MOBILE_OSES.contains(&os) || MOBILE_FAMILIES.contains(&family) || has(MOBILE_TOKENS) {
        "mobile"
    } else if (os.starts_with("Windows") && !MOBILE_OSES.contains(&os))
        || DESKTOP_OSES.contains(&os)
    {
        "desktop"
    } else {
        ""
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::LazyLock;
    use std::time::Instant;

    use proptest::prelude::*;

    use super::*;

    /// Building the extractor takes over a second in a debug build: share one.
    static SHARED: LazyLock<DeviceDetector> = LazyLock::new(|| DeviceDetector::new(1024).unwrap());

    /// A real-world UA, whether [`super::super::BotDetector`] must call it a bot, and the
    /// expected [`DeviceInfo`] fields in declaration order (type, brand, model, os, os version,
    /// browser, browser version).
    pub(in crate::enrich) struct Case {
        pub ua: &'static str,
        pub bot: bool,
        pub want: [&'static str; 7],
    }

    const fn case(ua: &'static str, bot: bool, want: [&'static str; 7]) -> Case {
        Case { ua, bot, want }
    }

    pub(in crate::enrich) const CASES: &[Case] = &[
        case(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            false,
            ["desktop", "", "", "Windows", "10", "Chrome", "120.0"],
        ),
        case(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
            false,
            [
                "desktop", "Apple", "Mac", "Mac OS X", "10.15.7", "Safari", "17.1",
            ],
        ),
        case(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
            false,
            [
                "mobile",
                "Apple",
                "iPhone",
                "iOS",
                "17.1.2",
                "Mobile Safari",
                "17.1",
            ],
        ),
        case(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
            false,
            [
                "mobile",
                "Apple",
                "iPhone",
                "iOS",
                "17.1",
                "Chrome Mobile iOS",
                "120.0",
            ],
        ),
        case(
            "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
            false,
            [
                "tablet",
                "Apple",
                "iPad",
                "iOS",
                "16.6",
                "Mobile Safari",
                "16.6",
            ],
        ),
        case(
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
            false,
            [
                "mobile",
                "Google",
                "Pixel 8",
                "Android",
                "14",
                "Chrome Mobile",
                "120.0",
            ],
        ),
        case(
            // Chrome's reduced UA: the model is frozen to `K`.
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
            false,
            ["mobile", "", "K", "Android", "10", "Chrome Mobile", "120.0"],
        ),
        case(
            "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.193 Safari/537.36",
            false,
            ["tablet", "", "SM-X710", "Android", "13", "Chrome", "119.0"],
        ),
        case(
            "Mozilla/5.0 (Linux; Android 12; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/119.4.1 like Chrome/119.0.6045.193 Safari/537.36",
            false,
            [
                "tablet",
                "Amazon",
                "Kindle",
                "Android",
                "12",
                "Amazon Silk",
                "119.4",
            ],
        ),
        case(
            "Mozilla/5.0 (Android 13; Tablet; rv:120.0) Gecko/120.0 Firefox/120.0",
            false,
            ["tablet", "", "", "Android", "13", "Firefox Mobile", "120.0"],
        ),
        case(
            "Mozilla/5.0 (Android 13; Mobile; rv:120.0) Gecko/120.0 Firefox/120.0",
            false,
            ["mobile", "", "", "Android", "13", "Firefox Mobile", "120.0"],
        ),
        case(
            "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
            false,
            [
                "mobile",
                "Samsung",
                "SM-S918B",
                "Android",
                "13",
                "Samsung Internet",
                "23.0",
            ],
        ),
        case(
            "Mozilla/5.0 (Linux; Android 8.0.0; SM-G930F Build/R16NW; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/437.0.0.40.109;]",
            false,
            [
                "mobile", "Samsung", "SM-G930F", "Android", "8.0.0", "Facebook", "437.0",
            ],
        ),
        case(
            "Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) Presto/2.5.25 Version/10.54",
            false,
            ["mobile", "", "", "Symbian OS", "", "Opera Mini", "9.80"],
        ),
        case(
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            false,
            ["desktop", "", "", "Linux", "", "Firefox", "121.0"],
        ),
        case(
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
            false,
            ["desktop", "", "", "Ubuntu", "", "Firefox", "120.0"],
        ),
        case(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
            false,
            ["desktop", "", "", "Windows", "10", "Edge", "120.0"],
        ),
        case(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0",
            false,
            ["desktop", "", "", "Windows", "10", "Opera", "106.0"],
        ),
        case(
            "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko",
            false,
            ["desktop", "", "", "Windows", "7", "IE", "11.0"],
        ),
        case(
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            false,
            [
                "desktop",
                "",
                "",
                "Chrome OS",
                "14541.0.0",
                "Chrome",
                "120.0",
            ],
        ),
        case(
            "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36",
            false,
            ["tv", "Samsung", "SMART-TV", "Tizen", "6.0", "Safari", ""],
        ),
        case(
            "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.79 Safari/537.36 WebAppManager",
            false,
            ["tv", "LG", "Web0S SmartTV", "Web0S", "", "Chrome", "79.0"],
        ),
        case(
            "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/70.0.3538.110 Mobile Safari/537.36",
            false,
            [
                "tv",
                "",
                "AFTMM",
                "Android",
                "9",
                "Chrome Mobile WebView",
                "70.0",
            ],
        ),
        case(
            "AppleTV11,1/11.1",
            false,
            ["tv", "Apple", "AppleTV", "ATV OS X", "", "", ""],
        ),
        case(
            "Roku4640X/DVP-7.70 (297.70E04154A)",
            false,
            ["tv", "", "", "", "", "", ""],
        ),
        case(
            "Mozilla/5.0 (X11; Linux armv7l) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/88.0.4324.152 Safari/537.36 CrKey/1.54.248666",
            false,
            ["tv", "", "", "Chromecast", "1.54.248666", "Chrome", "88.0"],
        ),
        case(
            "atc/1.0 watchOS/7.3.3 model/Watch4,4 hwp/t8006 build/18S830 (6; dt:203)",
            false,
            [
                "wearable",
                "Apple",
                "Watch4,4",
                "WatchOS",
                "7.3.3",
                "Apple Watch App",
                "4.4",
            ],
        ),
        case(
            "Nokia6300/2.0 (05.00) Profile/MIDP-2.0 Configuration/CLDC-1.1",
            false,
            [
                "mobile",
                "Nokia",
                "6300",
                "",
                "",
                "Nokia Services (WAP) Browser",
                "",
            ],
        ),
        case(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            false,
            [
                "desktop", "Apple", "Mac", "Mac OS X", "10.15.7", "Chrome", "120.0",
            ],
        ),
        case(
            "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15",
            false,
            ["console", "Sony", "PlayStation 5", "", "", "Safari", "13.0"],
        ),
        case(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19041",
            false,
            ["console", "", "", "Windows", "10", "Edge", "18.19041"],
        ),
        case(
            "Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/606.4 (KHTML, like Gecko) NF/6.0.1.15.4 NintendoBrowser/5.1.0.20393",
            false,
            ["console", "", "", "", "", "", ""],
        ),
        case(
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            true,
            ["bot", "", "", "", "", "Googlebot", "2.1"],
        ),
        case(
            "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.199 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            true,
            ["bot", "", "", "Android", "6.0.1", "Googlebot", "2.1"],
        ),
        case(
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            true,
            ["bot", "", "", "", "", "bingbot", "2.0"],
        ),
        case("curl/8.5.0", true, ["", "", "", "", "", "curl", "8.5"]),
        case(
            "python-requests/2.31.0",
            true,
            ["", "", "", "", "", "Python Requests", "2.31"],
        ),
        case(
            // uap-core sees a Linux desktop; the bot signal comes from BotDetector.
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 Safari/537.36",
            true,
            ["desktop", "", "", "Linux", "", "HeadlessChrome", "120.0"],
        ),
        case("", true, ["", "", "", "", "", "", ""]),
        case("   ", true, ["", "", "", "", "", "", ""]),
    ];

    fn fields(info: &DeviceInfo) -> [&str; 7] {
        [
            &info.device_type,
            &info.device_brand,
            &info.device_model,
            &info.os,
            &info.os_version,
            &info.browser,
            &info.browser_version,
        ]
    }

    #[test]
    fn real_world_user_agents() {
        let detector = &*SHARED;
        let mut wrong = Vec::new();
        for case in CASES {
            let info = detector.detect(case.ua);
            if fields(&info) != case.want {
                wrong.push(format!(
                    "{}\n  got  {:?}\n  want {:?}",
                    case.ua,
                    fields(&info),
                    case.want
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn the_cache_returns_the_same_arc() {
        let detector = &*SHARED;
        let ua = CASES[0].ua;
        let first = detector.detect(ua);
        assert!(Arc::ptr_eq(&first, &detector.detect(ua)));
        // Surrounding whitespace is not part of the key.
        assert!(Arc::ptr_eq(&first, &detector.detect(&format!(" {ua} "))));
        assert!(Arc::ptr_eq(&detector.detect(""), &detector.detect("")));
    }

    #[test]
    fn without_a_cache_or_for_huge_uas_the_answer_is_the_same() {
        let uncached = DeviceDetector::new(0).unwrap();
        let ua = CASES[2].ua;
        let (a, b) = (uncached.detect(ua), uncached.detect(ua));
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(fields(&a), CASES[2].want);

        let cached = &*SHARED;
        let huge = format!("{ua} {}", "x".repeat(MAX_CACHED_UA_BYTES));
        let (a, b) = (cached.detect(&huge), cached.detect(&huge));
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(a.device_type, "mobile");
        assert_eq!(a.os, "iOS");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let detector = DeviceDetector::new(32).unwrap();
        for i in 0..500 {
            detector.detect(&format!("Mozilla/5.0 (Windows NT 10.0) Chrome/{i}.0"));
        }
        let cached = detector.cache.as_ref().unwrap().len();
        assert!(cached <= 40, "{cached} entries");
    }

    #[test]
    fn the_json_matches_the_vendored_yaml() {
        // Catches a regexes.yaml update without a `convert.py` run: the same number of parsers
        // in each section (top-level keys, in file order).
        let yaml = include_str!("../../data/uap-core/regexes.yaml");
        let mut yaml_counts: Vec<usize> = Vec::new();
        for line in yaml.lines() {
            if !line.starts_with([' ', '#']) && line.ends_with(':') {
                yaml_counts.push(0);
            } else if let (true, Some(count)) =
                (line.starts_with("  - regex:"), yaml_counts.last_mut())
            {
                *count += 1;
            }
        }
        let json: serde_json::Value = serde_json::from_str(UAP_REGEXES_JSON).unwrap();
        let json_counts: Vec<usize> = ["user_agent_parsers", "os_parsers", "device_parsers"]
            .iter()
            .map(|section| json[section].as_array().map_or(0, Vec::len))
            .collect();
        assert_eq!(yaml_counts, json_counts);
        assert!(json_counts.iter().all(|&n| n > 100), "{json_counts:?}");
    }

    #[test]
    fn the_detector_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<DeviceDetector>();
        assert_send_sync::<super::super::BotDetector>();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn arbitrary_input_never_panics(ua in "\\PC{0,300}") {
            let info = SHARED.detect(&ua);
            prop_assert!(["", "desktop", "mobile", "tablet", "tv", "console", "wearable", "bot"]
                .contains(&info.device_type.as_str()));
        }
    }

    /// `cargo test -p switchyard --lib enrich::device -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, not a check"]
    fn timing() {
        let uas: Vec<&str> = CASES
            .iter()
            .map(|c| c.ua)
            .filter(|ua| !ua.trim().is_empty())
            .collect();
        let start = Instant::now();
        let detector = DeviceDetector::new(1024).unwrap();
        println!("DeviceDetector::new: {:?}", start.elapsed());
        let uncached = DeviceDetector::new(0).unwrap();
        let rounds = 200;
        let start = Instant::now();
        for _ in 0..rounds {
            for ua in &uas {
                std::hint::black_box(uncached.detect(ua));
            }
        }
        let cold = start.elapsed() / (rounds * uas.len()) as u32;
        for ua in &uas {
            detector.detect(ua);
        }
        let rounds = 20_000;
        let start = Instant::now();
        for _ in 0..rounds {
            for ua in &uas {
                std::hint::black_box(detector.detect(ua));
            }
        }
        let warm = start.elapsed() / (rounds * uas.len()) as u32;
        println!(
            "{} UAs: cold parse {cold:?} per UA, cached detect {warm:?} per UA",
            uas.len()
        );
    }
}
