-- Events per minute (UTC) and type, and how many distinct users sent them.
-- materialized: incremental
-- time_column: minute
-- bucket: 1 minute
-- lookback: 24 hours
SELECT
    time_bucket(INTERVAL 1 minute, CAST(event_ts AS TIMESTAMP)) AS minute,
    event_type,
    count(*) AS events,
    count(DISTINCT user_id) AS distinct_users
FROM silver.events
GROUP BY ALL
