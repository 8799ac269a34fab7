-- Switchyard schema, version 6 (sqlite).
-- Report sums stay exact integers. SQLite turns an integer sum that overflows into a REAL
-- without an error (PostgreSQL raises "bigint out of range"); these triggers make the update
-- fail instead, so the write that would overflow is refused (the recorder sets such a click
-- aside) rather than every later report reading a rounded float.

CREATE TRIGGER rollup_routes_exact_sums BEFORE UPDATE ON rollup_routes
WHEN typeof(NEW.cost) <> 'integer' OR typeof(NEW.lp_seconds) <> 'integer'
    OR typeof(NEW.lead_revenue) <> 'integer' OR typeof(NEW.sale_revenue) <> 'integer'
    OR typeof(NEW.rejected_revenue) <> 'integer'
BEGIN
    SELECT RAISE(ABORT, 'integer overflow in a report sum (rollup_routes)');
END;

CREATE TRIGGER rollup_geo_exact_sums BEFORE UPDATE ON rollup_geo
WHEN typeof(NEW.cost) <> 'integer' OR typeof(NEW.lp_seconds) <> 'integer'
    OR typeof(NEW.lead_revenue) <> 'integer' OR typeof(NEW.sale_revenue) <> 'integer'
    OR typeof(NEW.rejected_revenue) <> 'integer'
BEGIN
    SELECT RAISE(ABORT, 'integer overflow in a report sum (rollup_geo)');
END;
