-- Customer satisfaction per age group x income bracket cell over all staged customers.

with

customers as (

    select * from {{ ref('int_customers_bucketed') }}

),

final as (

    select
        age_group,
        income_bracket,
        count(*) as customer_count,
        count(customer_satisfaction) as surveyed_count,
        avg(customer_satisfaction) as mean_satisfaction,
        stddev_samp(customer_satisfaction) as stddev_satisfaction,
        median(customer_satisfaction) as median_satisfaction

    from customers
    group by age_group, income_bracket

)

select * from final
