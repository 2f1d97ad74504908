-- Order behaviour per customer (RFM and mix), one row per staged customer with at least one order.

with

orders as (select * from {{ ref('stg_orders') }}),

flagged as (

    select
        *,
        ordered_at >= {{ as_of_date() }} - interval 90 day as is_last_90d

    from orders

),

final as (

    select
        customer_id,
        count(*) as order_count,
        -- money and rates are summed as decimals: a floating-point sum depends on the order of
        -- its terms, which a parallel build does not fix, so the features would differ in the
        -- last bits from build to build (amounts have 2 decimals, discounts 4); a mean is the
        -- exact sum over the count (Spark's avg of decimals rounds to 8 places, DuckDB's does not)
        sum(amount::decimal(18, 2))::double as total_spend,
        min(ordered_at) as first_ordered_at,
        max(ordered_at) as last_ordered_at,
        count(*) filter (where is_last_90d) as orders_last_90d,
        coalesce(sum(amount::decimal(18, 2)) filter (where is_last_90d), 0)::double as spend_last_90d,
        sum(discount_pct::decimal(18, 4))::double / count(discount_pct) as avg_discount_pct,
        avg(items) as avg_items_per_order,
        avg(cast(is_returned as double)) as return_rate,
        count(*) filter (where category = 'electronics') as electronics_order_count,
        count(*) filter (where category = 'fashion') as fashion_order_count,
        count(*) filter (where category = 'grocery') as grocery_order_count,
        count(*) filter (where category = 'home') as home_order_count,
        count(*) filter (where category = 'beauty') as beauty_order_count,
        count(*) filter (where category = 'sports') as sports_order_count,
        count(*) filter (where channel = 'mobile_app') as mobile_order_count

    from flagged
    group by customer_id

)

select * from final
