-- What each customer spent per day (UTC) on paid orders.
-- materialized: incremental
-- time_column: day
-- bucket: 1 day
-- lookback: 7 days
SELECT
    CAST(CAST(order_ts AS TIMESTAMP) AS DATE) AS day,
    customer_id,
    currency,
    count(DISTINCT order_id) AS orders,
    sum(qty) AS units,
    round(sum(line_total), 2) AS spend
FROM silver.order_items
GROUP BY ALL
