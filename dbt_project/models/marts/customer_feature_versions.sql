-- One row per customer and batch that touched the customer (staged its row or one of its orders):
-- the customer's features computed from their staged row and every staged order of that batch or
-- an earlier one, as of the date of the latest load among them (for batch 0: the as-of date).
-- Incremental (append): a build adds the versions of the batches it has not seen, reading only
-- the touched customers' rows. Columns: those of customer_features (the latest version of each
-- customer), the batch of the version last.

{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail') }}

with

customers as (select * from {{ ref('int_customers_bucketed') }}),
orders as (select * from {{ ref('stg_orders') }}),

touches as (

    -- (customer, batch) pairs of the batches not versioned yet
    select customer_id, batch_id
    from customers
    where {{ new_batches_only() }}

    union

    select customer_id, batch_id
    from orders
    where {{ new_batches_only() }}

),

touched_orders as (

    -- every staged order of a touched customer up to the version's batch
    select
        touches.customer_id,
        touches.batch_id,
        orders.ordered_at,
        orders.amount,
        orders.discount_pct,
        orders.items,
        orders.category,
        orders.channel,
        orders.is_returned,
        orders.loaded_at

    from touches
    inner join orders
        on orders.customer_id = touches.customer_id
        and orders.batch_id <= touches.batch_id

),

loads as (

    select customer_id, batch_id, loaded_at from touched_orders

    union all

    select touches.customer_id, touches.batch_id, customers.loaded_at
    from touches
    inner join customers
        on touches.customer_id = customers.customer_id

),

as_of_dates as (

    -- the version's as-of date: the day of the latest load among the customer's row and orders
    select
        customer_id,
        batch_id,
        cast(max(loaded_at) as date) as features_as_of

    from loads
    group by customer_id, batch_id

),

flagged as (

    select
        touched_orders.*,
        touched_orders.ordered_at
            >= as_of_dates.features_as_of - interval 90 day as is_last_90d

    from touched_orders
    inner join as_of_dates
        on touched_orders.customer_id = as_of_dates.customer_id
        and touched_orders.batch_id = as_of_dates.batch_id

),

customer_orders as (

    -- order behaviour (RFM and mix) per version
    select
        customer_id,
        batch_id,
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
    group by customer_id, batch_id

),

customer_traits as (select * except (batch_id, loaded_at) from customers),

joined as (

    -- customers without orders keep NULL order behaviour (0 counts are filled in below)
    select *
    from touches
    inner join customer_traits using (customer_id)
    inner join as_of_dates using (customer_id, batch_id)
    left join customer_orders using (customer_id, batch_id)

),

final as (

    select
        cast(customer_id as bigint) as customer_id,
        cast(age as integer) as age,
        cast(income as double) as income,
        cast(gender as string) as gender,
        cast(region as string) as region,
        cast(acquisition_channel as string) as acquisition_channel,
        cast(household_size as integer) as household_size,
        cast(age_group as string) as age_group,
        cast(income_bracket as string) as income_bracket,
        cast(age * income / 1000 as double) as age_x_income,
        cast({{ days_between('signup_date', 'features_as_of') }} as integer) as tenure_days,
        cast(coalesce(order_count, 0) as integer) as order_count,
        cast(coalesce(total_spend, 0) as double) as total_spend,
        cast(total_spend / order_count as double) as avg_order_value,
        cast({{ days_between('last_ordered_at', 'features_as_of') }} as integer)
            as recency_days,
        cast(coalesce(orders_last_90d, 0) as integer) as orders_last_90d,
        cast(coalesce(spend_last_90d, 0) as double) as spend_last_90d,
        cast(avg_discount_pct as double) as avg_discount_pct,
        cast(avg_items_per_order as double) as avg_items_per_order,
        cast(return_rate as double) as return_rate,
        cast(
            (coalesce(electronics_order_count, 0) > 0)::integer
            + (coalesce(fashion_order_count, 0) > 0)::integer
            + (coalesce(grocery_order_count, 0) > 0)::integer
            + (coalesce(home_order_count, 0) > 0)::integer
            + (coalesce(beauty_order_count, 0) > 0)::integer
            + (coalesce(sports_order_count, 0) > 0)::integer
            as integer
        ) as distinct_categories,
        cast(coalesce(electronics_order_count / order_count, 0) as double) as share_electronics,
        cast(coalesce(fashion_order_count / order_count, 0) as double) as share_fashion,
        cast(coalesce(grocery_order_count / order_count, 0) as double) as share_grocery,
        cast(coalesce(home_order_count / order_count, 0) as double) as share_home,
        cast(coalesce(beauty_order_count / order_count, 0) as double) as share_beauty,
        cast(coalesce(sports_order_count / order_count, 0) as double) as share_sports,
        cast(coalesce(mobile_order_count / order_count, 0) as double) as mobile_order_share,
        cast(
            case
                when order_count >= 2
                    then cast(
                        {{ epoch_microseconds('last_ordered_at') }}
                        - {{ epoch_microseconds('first_ordered_at') }}
                        as double
                    ) / 86400e6 / (order_count - 1)
            end
            as double
        ) as avg_days_between_orders,
        cast(customer_satisfaction as double) as customer_satisfaction,
        cast(segment as string) as segment,
        cast(batch_id as integer) as batch_id

    from joined

)

select * from final
