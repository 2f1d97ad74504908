-- Nothing is dropped silently: every raw.customers row ends in exactly one of stg_customers and
-- stg_customers_rejected. Returns a row (fails) when the counts disagree.

{{ raw_equals_staged_plus_rejected('customers') }}
