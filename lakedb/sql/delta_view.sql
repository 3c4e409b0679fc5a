-- {view}: the Delta table {url}{at}, read by DuckDB's delta
-- extension from its _delta_log/: only committed files hold rows, never the
-- leftovers of a crashed attempt or the log's own checkpoints. event_date,
-- the partition column, comes last, as in the file-list form of the view.
CREATE OR REPLACE VIEW {view} AS
SELECT {select}
FROM delta_scan({table}{version});
