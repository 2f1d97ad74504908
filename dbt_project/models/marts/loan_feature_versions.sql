-- One row per staged loan application and the batch that staged it (a loan is touched only by
-- its own row): the application, derived affordability ratios, the applicant's traits and their
-- staged orders of that batch or an earlier one placed strictly before `applied_at` (no leakage;
-- an order that arrives in a later batch never changes a scored application), and the label.
-- Incremental (append): a build adds the loans of the batches it has not seen. Columns: those of
-- loan_features, the batch last.

{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail') }}

with

staged_loans as (select * from {{ ref('stg_loans') }}),
customers as (select * from {{ ref('stg_customers') }}),
orders as (select * from {{ ref('stg_orders') }}),

loans as (

    -- the applications of the batches not versioned yet
    select * from staged_loans
    where {{ new_batches_only() }}

),

prior_orders as (

    -- the applicant's orders known by the loan's batch, strictly before the application
    select
        loans.loan_id,
        orders.ordered_at,
        orders.amount,
        orders.is_returned,
        orders.discount_pct

    from loans
    inner join orders
        on orders.customer_id = loans.customer_id
        and orders.batch_id <= loans.batch_id
        and orders.ordered_at < loans.applied_at

),

prior_orders_aggregated as (

    select
        loan_id,
        count(*) as prior_order_count,
        -- decimal sums: exact, so the same whatever the row order (see customer_feature_versions)
        sum(amount::decimal(18, 2))::double as prior_total_spend,
        avg(cast(is_returned as double)) as prior_return_rate,
        sum(discount_pct::decimal(18, 4))::double / count(discount_pct) as prior_avg_discount_pct,
        max(ordered_at) as last_prior_ordered_at

    from prior_orders
    group by loan_id

),

growth as (

    select
        *,
        1 + interest_rate / 1200 as monthly_growth

    from loans

),

installments as (

    -- amortised monthly payment P * r / (1 - (1 + r)^-n), r = monthly rate; (1 + r)^n by
    -- integer_power, so that every engine computes the same bits
    select
        *,
        case
            when interest_rate = 0 then loan_amount / term_months
            else loan_amount * (interest_rate / 1200)
                / (1 - 1 / ({{ integer_power('monthly_growth', 'term_months') }}))
        end as monthly_installment

    from growth

),

joined as (

    select
        installments.*,
        customers.age as customer_age,
        customers.signup_date,
        coalesce(prior_orders_aggregated.prior_order_count, 0) as prior_order_count,
        coalesce(prior_orders_aggregated.prior_total_spend, 0) as prior_total_spend,
        prior_orders_aggregated.prior_total_spend / prior_orders_aggregated.prior_order_count
            as prior_avg_order_value,
        prior_orders_aggregated.prior_return_rate,
        prior_orders_aggregated.prior_avg_discount_pct,
        prior_orders_aggregated.last_prior_ordered_at

    from installments
    inner join customers
        on installments.customer_id = customers.customer_id
    left join prior_orders_aggregated
        on installments.loan_id = prior_orders_aggregated.loan_id

),

final as (

    select
        cast(loan_id as bigint) as loan_id,
        cast(customer_id as bigint) as customer_id,
        cast(applied_at as timestamp) as applied_at,
        cast(loan_amount as double) as loan_amount,
        cast(term_months as integer) as term_months,
        cast(purpose as string) as purpose,
        cast(grade as string) as grade,
        cast(home_ownership as string) as home_ownership,
        cast(interest_rate as double) as interest_rate,
        cast(annual_income as double) as annual_income,
        cast(employment_years as integer) as employment_years,
        cast(credit_score as integer) as credit_score,
        cast(debt_to_income as double) as debt_to_income,
        cast(delinquencies_2y as integer) as delinquencies_2y,
        cast(credit_history_years as double) as credit_history_years,
        cast(open_accounts as integer) as open_accounts,
        cast(revolving_utilization as double) as revolving_utilization,
        cast(loan_amount / nullif(annual_income, 0) as double) as loan_to_income,
        cast(monthly_installment as double) as monthly_installment,
        cast(monthly_installment / nullif(annual_income / 12, 0) as double)
            as installment_to_income,
        cast(customer_age as integer) as customer_age,
        cast({{ days_between('signup_date', 'applied_at') }} as integer)
            as customer_tenure_days,
        cast(prior_order_count as integer) as prior_order_count,
        cast(prior_total_spend as double) as prior_total_spend,
        cast(prior_avg_order_value as double) as prior_avg_order_value,
        cast(prior_return_rate as double) as prior_return_rate,
        cast(prior_avg_discount_pct as double) as prior_avg_discount_pct,
        cast({{ days_between('last_prior_ordered_at', 'applied_at') }} as integer)
            as days_since_last_order,
        cast(defaulted as integer) as defaulted,
        cast(batch_id as integer) as batch_id

    from joined

)

select * from final
