-- {history}: the rows of {written} of normal ingestion and of the
-- re-drives visible in bronze ({ids}), each with when (left_at), by which
-- re-drive (left_by) and to where (left_to) it left, NULL while current. A row
-- leaves with the earliest later re-driven row (leavers) of its message in
-- bronze or the dead letters that is at its position, or, for a corrupt batch
-- (record_index NULL), at any position of the batch, which was split; at one
-- instant, bronze first.
CREATE OR REPLACE VIEW {history} AS
WITH
{ctes}
left_of AS (
    SELECT
        w.source_kind, w.source_topic, w.source_partition, w.source_offset, w.source_key,
        w.record_index, {w_redriven_at} AS redriven_at,
        s.redriven_at AS left_at, s.redrive_id AS left_by, s.left_to
    FROM written AS w
    JOIN leavers AS s
      ON w.source_kind IS NOT DISTINCT FROM s.source_kind
     AND w.source_topic IS NOT DISTINCT FROM s.source_topic
     AND w.source_partition IS NOT DISTINCT FROM s.source_partition
     AND w.source_offset IS NOT DISTINCT FROM s.source_offset
     AND w.source_key IS NOT DISTINCT FROM s.source_key
     AND (w.record_index IS NULL OR w.record_index = s.record_index)
     AND ({w_redriven_at} IS NULL OR s.redriven_at > {w_redriven_at})
    QUALIFY row_number() OVER (
        PARTITION BY w.source_kind, w.source_topic, w.source_partition, w.source_offset,
            w.source_key, w.record_index, {w_redriven_at}
        ORDER BY s.redriven_at, s.left_to, s.redrive_id
    ) = 1
)
SELECT written.*, left_of.left_at, left_of.left_by, left_of.left_to
FROM written
LEFT JOIN left_of
  ON written.source_kind IS NOT DISTINCT FROM left_of.source_kind
 AND written.source_topic IS NOT DISTINCT FROM left_of.source_topic
 AND written.source_partition IS NOT DISTINCT FROM left_of.source_partition
 AND written.source_offset IS NOT DISTINCT FROM left_of.source_offset
 AND written.source_key IS NOT DISTINCT FROM left_of.source_key
 AND written.record_index IS NOT DISTINCT FROM left_of.record_index{same_time};
