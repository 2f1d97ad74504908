-- Raw order rows that staging did not keep: every raw column as it was, plus the reason.

{{ rejected_rows(ref('stg_orders_classified')) }}
