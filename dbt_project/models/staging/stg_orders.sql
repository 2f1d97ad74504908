-- One row per order of a staged customer: typed, canonical categories, implausible values as NULL.
-- Incremental: each build stages the batches not staged yet.

with

classified as (select * from {{ ref('stg_orders_classified') }}),

typed as (

    select
        cast(order_id as bigint) as order_id,
        cast(customer_id as bigint) as customer_id,
        try_cast(ordered_at as timestamp) as ordered_at,
        try_cast(amount as double) as amount,
        try_cast(discount_pct as double) as discount_pct,
        try_cast(items as integer) as items,
        category,
        channel,
        try_cast(is_returned as boolean) as is_returned,
        cast(batch_id as integer) as batch_id,
        cast(loaded_at as timestamp) as loaded_at

    from classified
    where rejection_reason is null
        and {{ new_batches_only() }}

),

final as (

    select
        order_id,
        customer_id,
        ordered_at,
        amount,
        case when discount_pct between 0 and 1 then discount_pct end as discount_pct,
        case when items >= 1 then items end as items,
        {{ canonical_category('category',
                              ['electronics', 'fashion', 'grocery', 'home', 'beauty', 'sports']) }}
            as category,
        {{ canonical_category('channel', ['web', 'mobile_app', 'store'],
                              aliases={'mobile': 'mobile_app', 'app': 'mobile_app',
                                       'mobileapp': 'mobile_app'}) }} as channel,
        is_returned,
        batch_id,
        loaded_at

    from typed

)

select * from final
