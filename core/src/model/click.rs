use super::Money;

/// How many `sub_id_N` fields a click carries.
pub const SUB_ID_COUNT: usize = 30;
/// How many `extra_param_N` fields a click carries.
pub const EXTRA_PARAM_COUNT: usize = 10;

/// One recorded click: everything the reports need, written once by the recorder. Its columns,
/// report names, macros and script getters are declared once, in `click_schema.rs`.
///
/// Text fields are never NULL in the database: an unknown value is the empty string, as in
/// Keitaro's reports. The `sub_id` is the click's identity: inserting the same click twice
/// leaves one row.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Click {
    pub sub_id: String,
    pub visitor_code: String,
    pub campaign_id: i64,
    pub parent_campaign_id: Option<i64>,
    pub stream_id: Option<i64>,
    pub landing_id: Option<i64>,
    pub offer_id: Option<i64>,
    pub ts_id: Option<i64>,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    pub ip: String,
    pub user_agent: String,
    pub referrer: String,
    pub language: String,
    pub country_code: String,
    /// English country name (`Germany`), from GeoIP.
    pub country_name: String,
    pub region: String,
    /// ISO 3166-2 subdivision code without the country prefix (`BY`), from GeoIP.
    pub region_code: String,
    pub city: String,
    pub isp: String,
    pub operator: String,
    pub connection_type: String,
    /// Coordinates of the IP's location (GeoIP), when known.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub device_type: String,
    pub device_model: String,
    pub device_brand: String,
    pub os: String,
    pub os_version: String,
    pub browser: String,
    pub browser_version: String,
    pub source: String,
    pub keyword: String,
    pub search_engine: String,
    pub x_requested_with: String,
    pub ad_campaign_id: String,
    pub external_id: String,
    pub creative_id: String,
    /// Where the click was sent (the expanded redirect URL), if anywhere.
    pub destination: String,
    /// The link the visitor requested (campaign link, Click API `uri`, a dialect's link), or "".
    pub request_url: String,
    /// The `utm_source`, `utm_medium`, `utm_campaign`, `utm_term` and `utm_content` parameters.
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_term: String,
    pub utm_content: String,
    /// `sub_id_1` … `sub_id_30`; always `SUB_ID_COUNT` long.
    pub sub_ids: Vec<String>,
    /// `extra_param_1` … `extra_param_10`; always `EXTRA_PARAM_COUNT` long.
    pub extra_params: Vec<String>,
    pub is_unique_campaign: bool,
    pub is_unique_stream: bool,
    pub is_unique_global: bool,
    pub is_bot: bool,
    pub is_using_proxy: bool,
    pub cost: Money,
    /// The incoming query parameters as a JSON object (name -> value).
    pub params: String,
}

impl Click {
    /// An empty click with the sub-id and parameter vectors at their full length.
    pub fn blank() -> Self {
        // Not `vec![String::new(); n]`: that clones the empty string n times (measurable on
        // every click); these are written in place.
        let empty = |n| std::iter::repeat_with(String::new).take(n).collect();
        Click {
            sub_ids: empty(SUB_ID_COUNT),
            extra_params: empty(EXTRA_PARAM_COUNT),
            params: "{}".to_string(),
            ..Click::default()
        }
    }
}
