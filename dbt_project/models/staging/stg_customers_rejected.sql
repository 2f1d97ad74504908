-- Raw customer rows that staging did not keep: every raw column as it was, plus the reason.

with

base as (

    select * from {{ ref('base_customers') }}

),

final as (

    select * from base
    where rejection_reason is not null

)

select * from final
