-- Purchases and revenue per minute (UTC); minutes without a purchase have no row.
-- materialized: incremental
-- time_column: minute
-- bucket: 1 minute
-- lookback: 24 hours
SELECT
    time_bucket(INTERVAL 1 minute, CAST(event_ts AS TIMESTAMP)) AS minute,
    count(*) AS purchases,
    round(sum(amount), 2) AS revenue
FROM silver.events
WHERE event_type = 'purchase'
GROUP BY ALL
