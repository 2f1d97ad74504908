-- Customer satisfaction per income bracket over all staged customers (unsurveyed ones count as
-- customers, not in the satisfaction statistics).

with

customers as (

    select * from {{ ref('int_customers_bucketed') }}

),

final as (

    select
        income_bracket,
        count(*) as customer_count,
        count(customer_satisfaction) as surveyed_count,
        avg(customer_satisfaction) as mean_satisfaction,
        stddev_samp(customer_satisfaction) as stddev_satisfaction,
        median(customer_satisfaction) as median_satisfaction

    from customers
    group by income_bracket

)

select * from final
