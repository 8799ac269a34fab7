-- Switchyard schema, version 3 (sqlite): conversions in (the received-postbacks log, which also
-- keeps postbacks for unknown sub ids so that none is lost) and out (the sent-postbacks log),
-- and what reports join on.

CREATE TABLE received_postbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sub_id TEXT NOT NULL DEFAULT '',
    tid TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT '',
    -- accepted, duplicate, transition, ignored, unknown_sub_id, invalid
    outcome TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    conversion_id INTEGER,
    params TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);
CREATE INDEX received_postbacks_created ON received_postbacks (created_at);
CREATE INDEX received_postbacks_sub_id ON received_postbacks (sub_id);

CREATE TABLE sent_postbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversion_id INTEGER,
    -- campaign or traffic_source
    origin TEXT NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    http_status INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
CREATE INDEX sent_postbacks_created ON sent_postbacks (created_at);

CREATE INDEX conversions_campaign_created ON conversions (campaign_id, created_at);
