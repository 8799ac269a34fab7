-- Switchyard schema, version 7 (sqlite).
-- Postbacks whose click is not stored yet (it is still on its way from the journal, or was
-- recorded by another node): kept until the click arrives, then applied in arrival order, or
-- until `postback.pending_hours` pass, then logged as expired.
CREATE TABLE pending_postbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sub_id TEXT NOT NULL,
    params TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX pending_postbacks_sub_id ON pending_postbacks (sub_id);
