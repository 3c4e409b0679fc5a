-- The ten best-selling products of each day (UTC) by paid revenue.
-- materialized: incremental
-- time_column: day
-- bucket: 1 day
-- lookback: 7 days
SELECT *
FROM (
    SELECT
        CAST(CAST(order_ts AS TIMESTAMP) AS DATE) AS day,
        sku,
        any_value(category) AS category,
        sum(qty) AS units,
        round(sum(line_total), 2) AS revenue,
        row_number() OVER (PARTITION BY CAST(CAST(order_ts AS TIMESTAMP) AS DATE) ORDER BY sum(line_total) DESC, sku) AS rank
    FROM silver.order_items
    GROUP BY CAST(CAST(order_ts AS TIMESTAMP) AS DATE), sku
)
WHERE rank <= 10
