-- Staged customers with their age group and income bracket (shared by the satisfaction marts
-- and customer_features, so the buckets are defined once).

with

customers as (select * from {{ ref('stg_customers') }}),

final as (

    select
        *,
        {{ age_group('age') }} as age_group,
        {{ income_bracket('income') }} as income_bracket

    from customers

)

select * from final
