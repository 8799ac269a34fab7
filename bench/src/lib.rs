//! Shared pieces of the load-test tools: the benchmark campaign as data (`bench/campaign.json`)
//! and the visitor lists (`bench/data/*.txt`) that the wrk script and `loadgen` rotate through.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;
use switchyard::model::{NewCampaign, NewStream, StreamType};
use switchyard::store::Store;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The benchmark campaign: regular streams (position order) and a default stream.
#[derive(Debug, Clone, Deserialize)]
pub struct CampaignSpec {
    pub cookies_ttl_hours: i64,
    pub streams: Vec<StreamSpec>,
    /// The default stream's redirect target.
    pub default_url: String,
}

/// One regular stream: a redirect target and its filters as `[name, mode, payload]`.
#[derive(Debug, Clone, Deserialize)]
pub struct StreamSpec {
    pub name: String,
    pub url: String,
    pub filters: Vec<(String, String, Value)>,
}

impl CampaignSpec {
    pub fn read(path: &Path) -> Result<CampaignSpec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a campaign", path.display()))
    }
}

/// The non-empty lines of a text file.
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// The visitors a load run rotates through: IPs (sent as X-Forwarded-For), User-Agents,
/// Accept-Language values and keywords.
#[derive(Debug, Clone)]
pub struct Visitors {
    pub ips: Vec<String>,
    pub user_agents: Vec<String>,
}

/// Accept-Language values rotated independently of IPs and UAs.
pub const LANGUAGES: &[&str] = &[
    "en-US,en;q=0.9",
    "en-GB,en;q=0.8",
    "sv-SE,sv;q=0.9,en;q=0.8",
    "zh-CN,zh;q=0.9",
    "de-DE,de;q=0.9,en;q=0.7",
    "fil-PH,en;q=0.8",
    "ru-RU,ru;q=0.9",
];

/// Keywords (the `keyword` query parameter) rotated independently.
pub const KEYWORDS: &[&str] = &["shoes", "bags", "watches", "test", "free+gift", ""];

impl Visitors {
    /// Reads `ips.txt` and `user_agents.txt` from `dir` (bench/data).
    pub fn read(dir: &Path) -> Result<Visitors> {
        Ok(Visitors {
            ips: read_lines(&dir.join("ips.txt"))?,
            user_agents: read_lines(&dir.join("user_agents.txt"))?,
        })
    }

    /// The `n`-th request of a run: path with query, User-Agent, forwarded IP, language.
    /// The same rotation as bench/load.lua and core/benches/pipeline.rs: the UA advances one
    /// extra step each time the IP list wraps, so (IP, UA) pairs repeat only after ips × uas
    /// requests; and every fourth request comes from a fresh visitor instead (see
    /// [`fresh_ip`]).
    pub fn request(&self, alias: &str, n: u64) -> Request {
        let at = |len: usize, i: u64| (i % len as u64) as usize;
        let ips = self.ips.len() as u64;
        Request {
            path: format!(
                "/{alias}?keyword={}&source=fb&sub_id_1={n}",
                KEYWORDS[at(KEYWORDS.len(), n)]
            ),
            user_agent: self.user_agents[at(self.user_agents.len(), n + n / ips)].clone(),
            ip: if n % 4 == 3 {
                fresh_ip(n)
            } else {
                self.ips[at(self.ips.len(), n)].clone()
            },
            language: LANGUAGES[at(LANGUAGES.len(), n)],
        }
    }
}

/// A visitor never seen before: an address in 2001:218::/32, which the MaxMind City test
/// database places in Japan, distinct for each of 2^32 sequence numbers.
pub fn fresh_ip(n: u64) -> String {
    format!("2001:218:{:x}:{:x}::1", (n >> 16) & 0xffff, n & 0xffff)
}

/// One visitor's request.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub user_agent: String,
    pub ip: String,
    pub language: &'static str,
}

/// Reads one HTTP/1.1 response from `stream` into `buf`; returns its status code.
pub async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<u16> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).context("response head is not text")?;
    let status: u16 = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .context("no status code")?;
    let mut length = 0usize;
    let mut chunked = false;
    for line in head.lines().skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().context("bad Content-Length")?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked") {
                chunked = true;
            }
        }
    }
    let complete = |buf: &Vec<u8>| {
        if chunked {
            buf[head_end..].ends_with(b"0\r\n\r\n")
        } else {
            buf.len() >= head_end + length
        }
    };
    while !complete(buf) {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the connection mid-response");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

/// Creates the campaign `alias` of `spec` through the Store API, its streams recording clicks
/// or not; returns its id.
pub async fn create_campaign(
    store: &dyn Store,
    spec: &CampaignSpec,
    alias: &str,
    collect_clicks: bool,
) -> Result<i64> {
    let mut new = NewCampaign::new(
        alias,
        &format!("Benchmark ({alias})"),
        &format!("{alias}-token"),
    );
    new.cookies_ttl = spec.cookies_ttl_hours;
    let campaign = store.create_campaign(&new).await?;
    for (i, stream) in spec.streams.iter().enumerate() {
        let mut new = NewStream::redirect(campaign.id, &stream.name, &stream.url);
        new.position = i as i64 + 1;
        new.collect_clicks = collect_clicks;
        for (name, mode, payload) in &stream.filters {
            new = new.filter(name, mode, payload.clone());
        }
        store.create_stream(&new).await?;
    }
    let mut fallback = NewStream::redirect(campaign.id, "Default", &spec.default_url);
    fallback.stream_type = StreamType::Default;
    fallback.collect_clicks = collect_clicks;
    store.create_stream(&fallback).await?;
    Ok(campaign.id)
}

/// The baseline handler of the load test: every `GET /{alias}` answers 302 with a fixed
/// Location.
pub fn bare_router() -> axum::Router {
    async fn redirect() -> impl axum::response::IntoResponse {
        (
            axum::http::StatusCode::FOUND,
            [(
                axum::http::header::LOCATION,
                "https://offer.example/lp?subid=bare&c=GB&os=iOS",
            )],
        )
    }
    axum::Router::new().route("/{alias}", axum::routing::get(redirect))
}
