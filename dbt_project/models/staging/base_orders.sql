-- Every raw order row, unchanged, with the reason it is rejected (NULL when it is kept).
-- Classified once here so that stg_orders and stg_orders_rejected split one table.

with

source as (

    select * from {{ source('raw', 'orders') }}

),

customers as (

    select * from {{ ref('stg_customers') }}

),

copies_numbered as (

    -- copy_number > 1 marks the second and later copies of an exact duplicate row
    select
        *,
        -- `source` is the whole row as a struct: every column, including any added later
        row_number() over (partition by source) as copy_number

    from source

),

customer_matched as (

    select
        copies_numbered.*,
        customers.customer_id is not null as has_known_customer

    from copies_numbered
    left join customers
        on try_cast(copies_numbered.customer_id as bigint) = customers.customer_id

),

checked as (

    -- the contract's reasons, first match wins
    select
        *,
        case
            when try_cast(order_id as bigint) is null then 'missing_order_id'
            when copy_number > 1 then 'duplicate_row'
            when not has_known_customer then 'unknown_customer'
            when try_cast(amount as double) is null then 'missing_amount'
            when try_cast(amount as double) < 0 then 'negative_amount'
            when try_cast(ordered_at as timestamp) >= {{ as_of_date() }} then 'ordered_in_future'
        end as check_reason

    from customer_matched

),

id_ranked as (

    -- among rows that pass every check, the same id with different content keeps the
    -- earliest order (then the smallest values, column by column: deterministic)
    select
        *,
        row_number() over (
            partition by try_cast(order_id as bigint), check_reason is null
            order by
                ordered_at,
                customer_id,
                amount,
                discount_pct,
                items,
                category,
                channel,
                is_returned
        ) as id_rank

    from checked

),

final as (

    select
        * exclude (copy_number, has_known_customer, check_reason, id_rank),
        case
            when check_reason is not null then check_reason
            when id_rank > 1 then 'duplicate_order_id'
        end as rejection_reason

    from id_ranked

)

select * from final
