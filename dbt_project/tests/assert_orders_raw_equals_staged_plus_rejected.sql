-- Nothing is dropped silently: every raw.orders row ends in exactly one of stg_orders and
-- stg_orders_rejected. Returns a row (fails) when the counts disagree.

{{ raw_equals_staged_plus_rejected('orders') }}
