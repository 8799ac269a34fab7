//! Report metrics: every metric is computed from a handful of exact sums over clicks and
//! conversions ([`Sums`]), so groups can be merged (time buckets, the summary) before any
//! ratio is taken, and both backends give identical numbers.

use serde_json::Value;

use crate::model::Money;

/// What the store adds up per group. Counts and micro-units, never floats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub clicks: i64,
    pub campaign_unique: i64,
    pub stream_unique: i64,
    pub global_unique: i64,
    pub bots: i64,
    pub proxies: i64,
    pub empty_referrers: i64,
    /// Clicks that went on from their landing to an offer.
    pub lp_clicks: i64,
    /// Seconds from click to landing click, summed over `lp_clicks`.
    pub lp_seconds: i64,
    pub cost: i64,
    /// Conversions of every status.
    pub conversions: i64,
    pub leads: i64,
    pub sales: i64,
    pub rejected: i64,
    pub rebills: i64,
    pub lead_revenue: i64,
    /// Revenue of sales and rebills.
    pub sale_revenue: i64,
    pub rejected_revenue: i64,
}

impl Sums {
    /// Adds another group's sums (saturating: a report never panics on absurd data).
    pub fn add(&mut self, other: &Sums) {
        self.clicks = self.clicks.saturating_add(other.clicks);
        self.campaign_unique = self.campaign_unique.saturating_add(other.campaign_unique);
        self.stream_unique = self.stream_unique.saturating_add(other.stream_unique);
        self.global_unique = self.global_unique.saturating_add(other.global_unique);
        self.bots = self.bots.saturating_add(other.bots);
        self.proxies = self.proxies.saturating_add(other.proxies);
        self.empty_referrers = self.empty_referrers.saturating_add(other.empty_referrers);
        self.lp_clicks = self.lp_clicks.saturating_add(other.lp_clicks);
        self.lp_seconds = self.lp_seconds.saturating_add(other.lp_seconds);
        self.cost = self.cost.saturating_add(other.cost);
        self.conversions = self.conversions.saturating_add(other.conversions);
        self.leads = self.leads.saturating_add(other.leads);
        self.sales = self.sales.saturating_add(other.sales);
        self.rejected = self.rejected.saturating_add(other.rejected);
        self.rebills = self.rebills.saturating_add(other.rebills);
        self.lead_revenue = self.lead_revenue.saturating_add(other.lead_revenue);
        self.sale_revenue = self.sale_revenue.saturating_add(other.sale_revenue);
        self.rejected_revenue = self.rejected_revenue.saturating_add(other.rejected_revenue);
    }

    /// Revenue: leads, sales and rebills (rejected conversions earn nothing).
    pub fn revenue(&self) -> i64 {
        self.lead_revenue.saturating_add(self.sale_revenue)
    }
}

/// How a metric's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Count,
    /// A decimal amount in the tracker's currency.
    Money,
    /// A percentage with two decimals.
    Percent,
    /// Whole seconds.
    Seconds,
}

/// A report metric: its Keitaro name, kind and definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub kind: MetricKind,
    pub description: &'static str,
}

macro_rules! metrics {
    ($($name:literal $kind:ident $description:literal,)*) => {
        /// Every metric `report/build` knows, in Keitaro's order.
        pub const METRICS: &[Metric] = &[
            $(Metric { name: $name, kind: MetricKind::$kind, description: $description },)*
        ];
    };
}

metrics! {
    "clicks" Count "clicks",
    "campaign_unique_clicks" Count "clicks unique in their campaign",
    "stream_unique_clicks" Count "clicks unique in their stream",
    "global_unique_clicks" Count "clicks unique across campaigns",
    "uc_campaign_rate" Percent "campaign_unique_clicks / clicks × 100",
    "uc_stream_rate" Percent "stream_unique_clicks / clicks × 100",
    "uc_global_rate" Percent "global_unique_clicks / clicks × 100",
    "bots" Count "clicks from bots",
    "bot_share" Percent "bots / clicks × 100",
    "proxies" Count "clicks through a proxy",
    "empty_referrers" Count "clicks without a referrer",
    "conversions" Count "conversions of every status",
    "leads" Count "conversions in status lead",
    "sales" Count "conversions in status sale",
    "rejected" Count "conversions in status rejected",
    "rebills" Count "conversions in status rebill",
    "approve" Percent "sales / (leads + sales + rejected) × 100",
    "lp_clicks" Count "clicks that went from the landing to an offer",
    "lp_ctr" Percent "lp_clicks / clicks × 100",
    "landing_clicked_period" Seconds "average seconds from the click to the landing click",
    "cr" Percent "conversions / clicks × 100",
    "crs" Percent "sales / clicks × 100",
    "crl" Percent "leads / clicks × 100",
    "roi" Percent "profit / cost × 100",
    "roi_confirmed" Percent "profit_confirmed / cost × 100",
    "epc" Money "revenue / clicks",
    "epc_confirmed" Money "sale_revenue / clicks",
    "cps" Money "cost / sales",
    "cpa" Money "cost / leads",
    "cpc" Money "cost / clicks",
    "ecpc" Money "cost / campaign_unique_clicks",
    "ecpm" Money "revenue / clicks × 1000",
    "ecpm_confirmed" Money "sale_revenue / clicks × 1000",
    "ec" Money "revenue / conversions",
    "ec_confirmed" Money "sale_revenue / sales",
    "profitability" Percent "profit / revenue × 100",
    "cost" Money "cost of the clicks",
    "revenue" Money "lead_revenue + sale_revenue",
    "profit" Money "revenue - cost",
    "lead_revenue" Money "revenue of leads",
    "sale_revenue" Money "revenue of sales and rebills",
    "rejected_revenue" Money "revenue of rejected conversions",
    "profit_confirmed" Money "sale_revenue - cost",
}

/// The metric named `name`.
pub fn metric(name: &str) -> Option<Metric> {
    METRICS.iter().copied().find(|m| m.name == name)
}

/// `numerator / denominator × scale` in micro-units, rounded half away from zero; 0 when the
/// denominator is 0.
fn money_ratio(numerator: i64, denominator: i64, scale: i64) -> i64 {
    if denominator == 0 {
        return 0;
    }
    let n = i128::from(numerator) * i128::from(scale);
    let d = i128::from(denominator);
    let q = (2 * n + d.signum() * n.signum() * d.abs()) / (2 * d);
    q.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// `part / whole × 100`, rounded to two decimals; 0 when `whole` is 0.
fn percent(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    // Hundredths of a percent, exactly rounded in integers, then one division.
    money_ratio(part, whole, 10_000) as f64 / 100.0
}

/// A metric's value: exact integers for counts and money, a rounded percentage otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    Count(i64),
    Money(i64),
    Percent(f64),
}

impl MetricValue {
    pub fn to_json(self) -> Value {
        match self {
            MetricValue::Count(n) => Value::from(n),
            MetricValue::Money(micros) => {
                serde_json::to_value(Money::from_micros(micros)).unwrap_or(Value::Null)
            }
            MetricValue::Percent(p) => serde_json::Number::from_f64(p)
                .map(Value::Number)
                .unwrap_or(Value::Null),
        }
    }

    /// For sorting and metric filters (money in whole units).
    pub fn number(self) -> f64 {
        match self {
            MetricValue::Count(n) => n as f64,
            MetricValue::Money(micros) => micros as f64 / 1_000_000.0,
            MetricValue::Percent(p) => p,
        }
    }
}

impl Metric {
    /// The click sums (see `CLICK_SUMS` in the store) this metric reads besides `clicks`.
    pub fn click_sums(&self) -> &'static [&'static str] {
        match self.name {
            "campaign_unique_clicks" | "uc_campaign_rate" => &["campaign_unique"],
            "ecpc" => &["campaign_unique", "cost"],
            "stream_unique_clicks" | "uc_stream_rate" => &["stream_unique"],
            "global_unique_clicks" | "uc_global_rate" => &["global_unique"],
            "bots" | "bot_share" => &["bots"],
            "proxies" => &["proxies"],
            "empty_referrers" => &["empty_referrers"],
            "lp_clicks" | "lp_ctr" => &["lp_clicks"],
            "landing_clicked_period" => &["lp_clicks", "lp_seconds"],
            "roi" | "roi_confirmed" | "cps" | "cpa" | "cpc" | "profitability" | "cost"
            | "profit" | "profit_confirmed" => &["cost"],
            _ => &[],
        }
    }

    /// Whether the metric reads conversions.
    pub fn needs_conversions(&self) -> bool {
        matches!(
            self.name,
            "conversions"
                | "leads"
                | "sales"
                | "rejected"
                | "rebills"
                | "approve"
                | "cr"
                | "crs"
                | "crl"
                | "roi"
                | "roi_confirmed"
                | "epc"
                | "epc_confirmed"
                | "cps"
                | "cpa"
                | "ecpm"
                | "ecpm_confirmed"
                | "ec"
                | "ec_confirmed"
                | "profitability"
                | "revenue"
                | "profit"
                | "lead_revenue"
                | "sale_revenue"
                | "rejected_revenue"
                | "profit_confirmed"
        )
    }

    /// The metric over `s`.
    pub fn value(&self, s: &Sums) -> MetricValue {
        use MetricValue::{Count, Money as M, Percent as P};
        let profit = s.revenue().saturating_sub(s.cost);
        let profit_confirmed = s.sale_revenue.saturating_sub(s.cost);
        match self.name {
            "clicks" => Count(s.clicks),
            "campaign_unique_clicks" => Count(s.campaign_unique),
            "stream_unique_clicks" => Count(s.stream_unique),
            "global_unique_clicks" => Count(s.global_unique),
            "uc_campaign_rate" => P(percent(s.campaign_unique, s.clicks)),
            "uc_stream_rate" => P(percent(s.stream_unique, s.clicks)),
            "uc_global_rate" => P(percent(s.global_unique, s.clicks)),
            "bots" => Count(s.bots),
            "bot_share" => P(percent(s.bots, s.clicks)),
            "proxies" => Count(s.proxies),
            "empty_referrers" => Count(s.empty_referrers),
            "conversions" => Count(s.conversions),
            "leads" => Count(s.leads),
            "sales" => Count(s.sales),
            "rejected" => Count(s.rejected),
            "rebills" => Count(s.rebills),
            "approve" => P(percent(s.sales, s.leads + s.sales + s.rejected)),
            "lp_clicks" => Count(s.lp_clicks),
            "lp_ctr" => P(percent(s.lp_clicks, s.clicks)),
            "landing_clicked_period" => Count(if s.lp_clicks == 0 {
                0
            } else {
                s.lp_seconds / s.lp_clicks
            }),
            "cr" => P(percent(s.conversions, s.clicks)),
            "crs" => P(percent(s.sales, s.clicks)),
            "crl" => P(percent(s.leads, s.clicks)),
            "roi" => P(percent(profit, s.cost)),
            "roi_confirmed" => P(percent(profit_confirmed, s.cost)),
            "epc" => M(money_ratio(s.revenue(), s.clicks, 1)),
            "epc_confirmed" => M(money_ratio(s.sale_revenue, s.clicks, 1)),
            "cps" => M(money_ratio(s.cost, s.sales, 1)),
            "cpa" => M(money_ratio(s.cost, s.leads, 1)),
            "cpc" => M(money_ratio(s.cost, s.clicks, 1)),
            "ecpc" => M(money_ratio(s.cost, s.campaign_unique, 1)),
            "ecpm" => M(money_ratio(s.revenue(), s.clicks, 1_000)),
            "ecpm_confirmed" => M(money_ratio(s.sale_revenue, s.clicks, 1_000)),
            "ec" => M(money_ratio(s.revenue(), s.conversions, 1)),
            "ec_confirmed" => M(money_ratio(s.sale_revenue, s.sales, 1)),
            "profitability" => P(percent(profit, s.revenue())),
            "cost" => M(s.cost),
            "revenue" => M(s.revenue()),
            "profit" => M(profit),
            "lead_revenue" => M(s.lead_revenue),
            "sale_revenue" => M(s.sale_revenue),
            "rejected_revenue" => M(s.rejected_revenue),
            "profit_confirmed" => M(profit_confirmed),
            _ => Count(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_a_value() {
        let s = Sums {
            clicks: 4,
            campaign_unique: 3,
            cost: 2_000_000,
            conversions: 2,
            leads: 1,
            sales: 1,
            lead_revenue: 1_000_000,
            sale_revenue: 5_000_000,
            ..Sums::default()
        };
        for m in METRICS {
            let _ = m.value(&s).to_json();
        }
        assert_eq!(metric("cr").unwrap().value(&s), MetricValue::Percent(50.0));
        assert_eq!(
            metric("roi").unwrap().value(&s),
            MetricValue::Percent(200.0)
        );
        assert_eq!(
            metric("epc").unwrap().value(&s),
            MetricValue::Money(1_500_000)
        );
        assert_eq!(
            metric("profit").unwrap().value(&s),
            MetricValue::Money(4_000_000)
        );
        assert_eq!(
            metric("uc_campaign_rate").unwrap().value(&s),
            MetricValue::Percent(75.0)
        );
        assert_eq!(
            metric("cps").unwrap().value(&Sums::default()),
            MetricValue::Money(0)
        );
    }

    #[test]
    fn ratios_round_half_away_from_zero() {
        assert_eq!(money_ratio(1, 3, 1), 0);
        assert_eq!(money_ratio(2, 3, 1), 1);
        assert_eq!(money_ratio(-2, 3, 1), -1);
        assert_eq!(percent(1, 3), 33.33);
        assert_eq!(percent(2, 3), 66.67);
    }
}
