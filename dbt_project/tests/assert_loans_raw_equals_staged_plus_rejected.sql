-- Nothing is dropped silently: every raw.loans row ends in exactly one of stg_loans and
-- stg_loans_rejected. Returns a row (fails) when the counts disagree.

{{ raw_equals_staged_plus_rejected('loans') }}
