-- Dead letters of the events table per minute of ingestion (UTC) and error
-- code, and their share of every record ingested in that minute (bronze rows
-- plus dead letters; a corrupt batch counts once).
-- materialized: incremental
-- time_column: minute
-- bucket: 1 minute
-- lookback: 24 hours
WITH dead AS (
    SELECT
        time_bucket(INTERVAL 1 minute, CAST(ingested_at AS TIMESTAMP)) AS minute,
        error_code,
        count(*) AS dead_letters
    FROM dead_letters.events
    GROUP BY ALL
), records AS (
    SELECT minute, sum(n) AS records
    FROM (
        SELECT time_bucket(INTERVAL 1 minute, CAST(ingested_at AS TIMESTAMP)) AS minute, count(*) AS n
        FROM bronze.events
        GROUP BY ALL
        UNION ALL
        SELECT minute, dead_letters FROM dead
    )
    GROUP BY minute
)
SELECT
    minute,
    'events' AS table_name,
    error_code,
    dead_letters,
    round(dead_letters / records, 6) AS share_of_records
FROM dead
JOIN records USING (minute)
