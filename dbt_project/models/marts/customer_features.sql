-- One row per staged customer: traits, buckets and order behaviour up to the as-of date, plus the
-- two labels (satisfaction, segment). Column names, order and types are a contract (Python reads it).

with

customers as (select * from {{ ref('int_customers_bucketed') }}),
customer_orders as (select * from {{ ref('int_customer_orders_aggregated') }}),

joined as (

    -- customers without orders keep NULL order behaviour (0 counts are filled in below)
    select *
    from customers
    left join customer_orders using (customer_id)

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
        cast({{ days_between('signup_date', as_of_date()) }} as integer) as tenure_days,
        cast(coalesce(order_count, 0) as integer) as order_count,
        cast(coalesce(total_spend, 0) as double) as total_spend,
        cast(total_spend / order_count as double) as avg_order_value,
        cast({{ days_between('last_ordered_at', as_of_date()) }} as integer)
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
        cast(segment as string) as segment

    from joined

)

select * from final
