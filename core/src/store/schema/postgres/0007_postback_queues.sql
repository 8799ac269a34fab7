-- Switchyard schema, version 7 (postgres).
-- Postbacks whose click is not stored yet (it is still on its way from the journal, or was
-- recorded by another node): kept until the click arrives, then applied in arrival order, or
-- until `postback.pending_hours` pass, then logged as expired.
CREATE TABLE pending_postbacks (
    id BIGSERIAL PRIMARY KEY,
    sub_id TEXT NOT NULL,
    params TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX pending_postbacks_sub_id ON pending_postbacks (sub_id);

-- Outgoing S2S postbacks waiting to be sent (or retried): they survive restarts; the
-- delivery key makes queueing the same delivery twice send it once. `next_at` is in Unix
-- milliseconds (while a worker sends one, the end of its claim).
CREATE TABLE outgoing_postbacks (
    id BIGSERIAL PRIMARY KEY,
    delivery_key TEXT NOT NULL UNIQUE,
    conversion_id BIGINT NOT NULL,
    origin TEXT NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX outgoing_postbacks_next_at ON outgoing_postbacks (next_at);
