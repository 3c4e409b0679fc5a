-- One row per line item of a PAID order (from silver.orders, already one row
-- per order_id), with its line number and total.
-- materialized: incremental
-- time_column: order_ts
-- bucket: 1 hour
-- lookback: 24 hours
SELECT
    order_id,
    line_number,
    customer_id,
    order_ts,
    paid_at,
    currency,
    item.sku AS sku,
    item.category AS category,
    item.qty AS qty,
    item.unit_price AS unit_price,
    round(item.qty * item.unit_price, 2) AS line_total
FROM (
    SELECT *, unnest(items) AS item, generate_subscripts(items, 1) AS line_number
    FROM silver.orders
    WHERE status = 'PAID'
)
