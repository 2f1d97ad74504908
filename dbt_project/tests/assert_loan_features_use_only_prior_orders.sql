-- No leakage from the future: recount each loan's prior orders with a different algorithm (a
-- running count over the customer's timeline, where an application sorts before orders placed at
-- the same instant) and return the loans whose prior_order_count or days_since_last_order differ.
-- A loan's features see the orders known by its batch (staged by that batch or an earlier one):
-- one timeline per applicant and loan batch.

with

loans as (select * from {{ ref('loan_features') }}),
orders as (select * from {{ ref('stg_orders') }}),

loan_batches as (

    select distinct customer_id, batch_id
    from loans

),

applicant_orders as (

    select
        orders.customer_id,
        loan_batches.batch_id,
        orders.ordered_at
    from orders
    inner join loan_batches
        on orders.customer_id = loan_batches.customer_id
        and orders.batch_id <= loan_batches.batch_id

),

events as (

    select
        customer_id,
        batch_id,
        ordered_at as event_at,
        1 as is_order,
        cast(null as bigint) as loan_id
    from applicant_orders

    union all

    select
        customer_id,
        batch_id,
        applied_at as event_at,
        0 as is_order,
        loan_id
    from loans

),

running as (

    select
        *,
        sum(is_order) over customer_timeline as orders_so_far,
        max(case when is_order = 1 then event_at end) over customer_timeline as last_order_at
    from events
    window customer_timeline as (
        partition by customer_id, batch_id
        order by event_at, is_order
        rows between unbounded preceding and current row
    )

),

recounted as (

    select
        loan_id,
        event_at as applied_at,
        coalesce(orders_so_far, 0) as expected_prior_order_count,
        {{ days_between('last_order_at', 'event_at') }}
            as expected_days_since_last_order
    from running
    where is_order = 0

),

final as (

    select
        loans.loan_id,
        loans.prior_order_count,
        recounted.expected_prior_order_count,
        loans.days_since_last_order,
        recounted.expected_days_since_last_order
    from loans
    inner join recounted
        on loans.loan_id = recounted.loan_id
    where loans.prior_order_count != recounted.expected_prior_order_count
        or loans.days_since_last_order is distinct from recounted.expected_days_since_last_order

)

select * from final
