-- Switchyard schema, version 2 (sqlite): more of each click (GeoIP country name, subdivision
-- code and coordinates, the requested link, UTM tags) and what the other vendors' click APIs
-- ("dialects", see README "Other click APIs") keep beside the clicks.

ALTER TABLE clicks ADD COLUMN country_name TEXT NOT NULL DEFAULT '';
ALTER TABLE clicks ADD COLUMN region_code TEXT NOT NULL DEFAULT '';
ALTER TABLE clicks ADD COLUMN latitude REAL;
ALTER TABLE clicks ADD COLUMN longitude REAL;
ALTER TABLE clicks ADD COLUMN request_url TEXT NOT NULL DEFAULT '';
ALTER TABLE clicks ADD COLUMN utm_source TEXT NOT NULL DEFAULT '';
ALTER TABLE clicks ADD COLUMN utm_medium TEXT NOT NULL DEFAULT '';
ALTER TABLE clicks ADD COLUMN utm_campaign TEXT NOT NULL DEFAULT '';
ALTER TABLE clicks ADD COLUMN utm_term TEXT NOT NULL DEFAULT '';
ALTER TABLE clicks ADD COLUMN utm_content TEXT NOT NULL DEFAULT '';
CREATE INDEX clicks_offer_created ON clicks (offer_id, created_at);
CREATE INDEX clicks_ts_created ON clicks (ts_id, created_at);
CREATE INDEX conversions_offer_created ON conversions (offer_id, created_at);

-- A client profile attached to clicks (seed 004 "update a click"); one profile (one `uuid`)
-- may belong to several clicks.
CREATE TABLE click_profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT UNIQUE,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    middle_name TEXT NOT NULL DEFAULT '',
    enabled INTEGER NOT NULL DEFAULT 1,
    country_name TEXT NOT NULL DEFAULT '',
    tag TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE click_profile_contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    profile_id INTEGER NOT NULL REFERENCES click_profiles (id) ON DELETE CASCADE,
    position INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    uuid TEXT
);
CREATE INDEX click_profile_contacts_profile ON click_profile_contacts (profile_id, position);

-- What a dialect keeps about a click beyond its row in `clicks`: the API that created it ('' when
-- a dialect only annotated it), its `uuid`, its profile, when the API created and last changed it.
CREATE TABLE dialect_clicks (
    sub_id TEXT PRIMARY KEY,
    dialect TEXT NOT NULL DEFAULT '',
    uuid TEXT,
    profile_id INTEGER REFERENCES click_profiles (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX dialect_clicks_profile ON dialect_clicks (profile_id);

-- Identical create requests within a window return the same click (seed 003: one IP + user
-- agent + campaign + offer within 300 s). One row per key; an expired row is taken over.
CREATE TABLE dialect_click_keys (
    dialect TEXT NOT NULL,
    key TEXT NOT NULL,
    sub_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (dialect, key)
);
CREATE INDEX dialect_click_keys_created ON dialect_click_keys (created_at);
