-- For every staged loan, the applicant's staged orders strictly before `applied_at`, aggregated.
-- Orders at or after the application are the future from the loan's point of view: never used.

with

loans as (select * from {{ ref('stg_loans') }}),
orders as (select * from {{ ref('stg_orders') }}),

prior_orders as (

    select
        loans.loan_id,
        orders.ordered_at,
        orders.amount,
        orders.is_returned,
        orders.discount_pct

    from loans
    inner join orders
        on orders.customer_id = loans.customer_id
        and orders.ordered_at < loans.applied_at

),

aggregated as (

    select
        loan_id,
        count(*) as prior_order_count,
        -- decimal sums: exact, so the same whatever the row order (see int_customer_orders_aggregated)
        sum(amount::decimal(18, 2))::double as prior_total_spend,
        avg(cast(is_returned as double)) as prior_return_rate,
        sum(discount_pct::decimal(18, 4))::double / count(discount_pct) as prior_avg_discount_pct,
        max(ordered_at) as last_prior_ordered_at

    from prior_orders
    group by loan_id

),

final as (

    select
        loans.loan_id,
        loans.customer_id,
        loans.applied_at,
        coalesce(aggregated.prior_order_count, 0) as prior_order_count,
        coalesce(aggregated.prior_total_spend, 0) as prior_total_spend,
        aggregated.prior_total_spend / aggregated.prior_order_count as prior_avg_order_value,
        aggregated.prior_return_rate,
        aggregated.prior_avg_discount_pct,
        aggregated.last_prior_ordered_at

    from loans
    left join aggregated
        on loans.loan_id = aggregated.loan_id

)

select * from final
