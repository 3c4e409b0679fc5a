-- Valid records of one table. event_date is not stored in the files: it is
-- the hive partition of their path (event_date=YYYY-MM-DD), typed DATE
-- explicitly so it never depends on type inference. union_by_name keeps
-- files written by older or newer consumers (or contract versions) readable
-- side by side.
CREATE OR REPLACE VIEW {view} AS
SELECT *
FROM read_parquet(
    {files},
    hive_partitioning = true,
    hive_types = {'event_date': DATE},
    union_by_name = true
);
