-- Switchyard schema, version 5 (postgres).
-- Report rollups (see store/rollups.rs): the report sums of clicks and their conversions per
-- hour (of the click) and per a few dimensions, kept exact by every write to clicks and
-- conversions. Dimensions are NOT NULL (no id is 0, no text NULL) so upserts find their row
-- through the unique index. The rows of existing clicks are computed by `migrate` right after
-- this migration (rebuild_rollups).

CREATE TABLE rollup_routes (
    hour BIGINT NOT NULL,
    campaign_id BIGINT NOT NULL,
    parent_campaign_id BIGINT NOT NULL,
    stream_id BIGINT NOT NULL,
    landing_id BIGINT NOT NULL,
    offer_id BIGINT NOT NULL,
    ts_id BIGINT NOT NULL,
    clicks BIGINT NOT NULL DEFAULT 0,
    campaign_unique BIGINT NOT NULL DEFAULT 0,
    stream_unique BIGINT NOT NULL DEFAULT 0,
    global_unique BIGINT NOT NULL DEFAULT 0,
    bots BIGINT NOT NULL DEFAULT 0,
    proxies BIGINT NOT NULL DEFAULT 0,
    empty_referrers BIGINT NOT NULL DEFAULT 0,
    lp_clicks BIGINT NOT NULL DEFAULT 0,
    lp_seconds BIGINT NOT NULL DEFAULT 0,
    cost BIGINT NOT NULL DEFAULT 0,
    conversions BIGINT NOT NULL DEFAULT 0,
    leads BIGINT NOT NULL DEFAULT 0,
    sales BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0,
    rebills BIGINT NOT NULL DEFAULT 0,
    lead_revenue BIGINT NOT NULL DEFAULT 0,
    sale_revenue BIGINT NOT NULL DEFAULT 0,
    rejected_revenue BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX rollup_routes_key ON rollup_routes (hour, campaign_id, parent_campaign_id, stream_id, landing_id, offer_id, ts_id);

CREATE TABLE rollup_geo (
    hour BIGINT NOT NULL,
    campaign_id BIGINT NOT NULL,
    ts_id BIGINT NOT NULL,
    country_code TEXT NOT NULL,
    country_name TEXT NOT NULL,
    clicks BIGINT NOT NULL DEFAULT 0,
    campaign_unique BIGINT NOT NULL DEFAULT 0,
    stream_unique BIGINT NOT NULL DEFAULT 0,
    global_unique BIGINT NOT NULL DEFAULT 0,
    bots BIGINT NOT NULL DEFAULT 0,
    proxies BIGINT NOT NULL DEFAULT 0,
    empty_referrers BIGINT NOT NULL DEFAULT 0,
    lp_clicks BIGINT NOT NULL DEFAULT 0,
    lp_seconds BIGINT NOT NULL DEFAULT 0,
    cost BIGINT NOT NULL DEFAULT 0,
    conversions BIGINT NOT NULL DEFAULT 0,
    leads BIGINT NOT NULL DEFAULT 0,
    sales BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0,
    rebills BIGINT NOT NULL DEFAULT 0,
    lead_revenue BIGINT NOT NULL DEFAULT 0,
    sale_revenue BIGINT NOT NULL DEFAULT 0,
    rejected_revenue BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX rollup_geo_key ON rollup_geo (hour, campaign_id, ts_id, country_code, country_name);
