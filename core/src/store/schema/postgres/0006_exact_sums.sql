-- Switchyard schema, version 6 (postgres).
-- Nothing to change: PostgreSQL refuses a BIGINT sum that overflows by itself ("bigint out of
-- range"); the SQLite migration of the same number adds that check there.
SELECT 1;
