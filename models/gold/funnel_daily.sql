-- The daily funnel (UTC days): distinct users who viewed a page, added to
-- cart and purchased, and the two conversion rates between the steps.
-- materialized: incremental
-- time_column: day
-- bucket: 1 day
-- lookback: 7 days
SELECT
    CAST(CAST(event_ts AS TIMESTAMP) AS DATE) AS day,
    count(DISTINCT user_id) FILTER (WHERE event_type = 'page_view') AS viewed,
    count(DISTINCT user_id) FILTER (WHERE event_type = 'add_to_cart') AS added_to_cart,
    count(DISTINCT user_id) FILTER (WHERE event_type = 'purchase') AS purchased,
    round(added_to_cart / nullif(viewed, 0), 4) AS view_to_cart_rate,
    round(purchased / nullif(added_to_cart, 0), 4) AS cart_to_purchase_rate
FROM silver.events
GROUP BY ALL
