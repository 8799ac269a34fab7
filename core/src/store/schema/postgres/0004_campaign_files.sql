-- Switchyard schema, version 4 (postgres).
-- Config-as-files: objects declared in the campaigns directory carry their stable key
-- (`file_key`, the TOML table name; a stream's is `<campaign key>.<stream key>`) and the file
-- that declares them (`file_source`, relative to the directory). Both are NULL for objects made
-- through the Admin API, which a load never touches. NULLs never collide in a unique index.

ALTER TABLE campaigns ADD COLUMN file_key TEXT;
ALTER TABLE streams ADD COLUMN file_key TEXT;
ALTER TABLE streams ADD COLUMN file_source TEXT;
ALTER TABLE landings ADD COLUMN file_key TEXT;
ALTER TABLE offers ADD COLUMN file_key TEXT;
ALTER TABLE affiliate_networks ADD COLUMN file_key TEXT;
ALTER TABLE affiliate_networks ADD COLUMN file_source TEXT;
ALTER TABLE traffic_sources ADD COLUMN file_key TEXT;
ALTER TABLE traffic_sources ADD COLUMN file_source TEXT;

CREATE UNIQUE INDEX campaigns_file_key ON campaigns (file_key);
CREATE UNIQUE INDEX streams_file_key ON streams (file_key);
CREATE UNIQUE INDEX landings_file_key ON landings (file_key);
CREATE UNIQUE INDEX offers_file_key ON offers (file_key);
CREATE UNIQUE INDEX affiliate_networks_file_key ON affiliate_networks (file_key);
CREATE UNIQUE INDEX traffic_sources_file_key ON traffic_sources (file_key);
