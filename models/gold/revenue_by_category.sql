-- Paid revenue per day (UTC) and product category.
-- materialized: incremental
-- time_column: day
-- bucket: 1 day
-- lookback: 7 days
SELECT
    CAST(CAST(order_ts AS TIMESTAMP) AS DATE) AS day,
    category,
    currency,
    count(DISTINCT order_id) AS orders,
    sum(qty) AS units,
    round(sum(line_total), 2) AS revenue
FROM silver.order_items
GROUP BY ALL
