-- Customer satisfaction per age group over all staged customers (unsurveyed ones count as
-- customers, not in the satisfaction statistics).

with

customers as (

    select * from {{ ref('int_customers_bucketed') }}

),

final as (

    select
        age_group,
        count(*) as customer_count,
        count(customer_satisfaction) as surveyed_count,
        avg(customer_satisfaction) as mean_satisfaction,
        stddev_samp(customer_satisfaction) as stddev_satisfaction,
        median(customer_satisfaction) as median_satisfaction

    from customers
    group by age_group

)

select * from final
