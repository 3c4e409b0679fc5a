-- {view}: version {version} of the Delta table {table}, as the list of
-- files its log holds. event_date is each file's partition value as the log
-- records it (a converted file's path need not hold it); union_by_name reads
-- files of older and newer contract versions side by side; the columns are
-- the table's, in the table's order, with event_date last.
CREATE OR REPLACE VIEW {view} AS
SELECT
{columns}
FROM read_parquet(
    [
{files}
    ],
    filename = '__lake_file',
    union_by_name = true
) AS data
JOIN (VALUES
{partitions}
) AS partition_of(__lake_file, event_date) USING (__lake_file);
