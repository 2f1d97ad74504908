-- One row per customer segment of the latest ml.segment run: size, share and who is in it.

{{ config(tags=['ml_scores']) }}

with

customers as (select * from {{ ref('customer_features') }}),
segments as (select * from {{ ref('stg_ml__customer_segments') }}),

segmented_customers as (

    select
        segments.cluster_id,
        segments.segment,
        segments.run_id,
        customers.age,
        customers.income,
        customers.customer_satisfaction,
        customers.total_spend,
        customers.order_count,
        customers.recency_days

    from segments
    inner join customers
        on segments.customer_id = customers.customer_id

),

profiles as (

    select
        cluster_id,
        segment,
        run_id,
        count(*) as customer_count,
        avg(age) as mean_age,
        avg(income) as mean_income,
        avg(customer_satisfaction) as mean_satisfaction,
        avg(total_spend) as mean_total_spend,
        avg(order_count) as mean_order_count,
        avg(recency_days) as mean_recency_days

    from segmented_customers
    group by cluster_id, segment, run_id

),

final as (

    select
        cluster_id,
        segment,
        customer_count,
        customer_count / sum(customer_count) over () as customer_share,
        mean_age,
        mean_income,
        mean_satisfaction,
        mean_total_spend,
        mean_order_count,
        mean_recency_days,
        run_id

    from profiles

)

select * from final
