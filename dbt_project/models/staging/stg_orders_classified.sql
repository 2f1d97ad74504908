-- Every raw order row, unchanged, with the reason it is rejected (NULL when it is kept).
-- Classified once here so that stg_orders and stg_orders_rejected split one table.
-- The checks below are this entity's reasons; classify_raw_rows puts the shared ones around them:
-- missing_order_id, duplicate_row and unknown_customer first, duplicate_order_id last (the same id
-- with other content: the earliest batch's row is kept, then the first by keep_first_by). A row dated on or
-- after its own loaded_at is in the future; its customer must be staged by a batch <= its own.
-- Incremental (dbt_project.yml): each build classifies the raw rows of the batches not classified yet.

{%- set checks %}
    when try_cast(amount as double) is null then 'missing_amount'
    when try_cast(amount as double) < 0 then 'negative_amount'
    when try_cast(ordered_at as timestamp) >= cast(loaded_at as date) then 'ordered_in_future'
{% endset %}

{{ classify_raw_rows(
    source('raw', 'orders'),
    id_column='order_id',
    known_customers=ref('stg_customers'),
    checks=checks,
    keep_first_by=['ordered_at', 'customer_id', 'amount', 'discount_pct', 'items', 'category',
                   'channel', 'is_returned'],
) }}
