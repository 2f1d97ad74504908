-- One row per loan application of a staged customer: typed, parsed, canonical categories,
-- implausible values as NULL. Incremental: each build stages the batches not staged yet.

with

classified as (select * from {{ ref('stg_loans_classified') }}),

typed as (

    select
        cast(loan_id as bigint) as loan_id,
        cast(customer_id as bigint) as customer_id,
        try_cast(applied_at as timestamp) as applied_at,
        try_cast(loan_amount as double) as loan_amount,
        term,
        purpose,
        grade,
        try_cast(interest_rate as double) as interest_rate,
        try_cast(annual_income as double) as annual_income,
        employment_length,
        home_ownership,
        try_cast(credit_score as integer) as credit_score,
        try_cast(debt_to_income as double) as debt_to_income,
        try_cast(delinquencies_2y as integer) as delinquencies_2y,
        try_cast(credit_history_years as double) as credit_history_years,
        try_cast(open_accounts as integer) as open_accounts,
        try_cast(revolving_utilization as double) as revolving_utilization,
        try_cast(defaulted as integer) as defaulted,
        cast(batch_id as integer) as batch_id,
        cast(loaded_at as timestamp) as loaded_at

    from classified
    where rejection_reason is null
        and {{ new_batches_only() }}

),

final as (

    select
        loan_id,
        customer_id,
        applied_at,
        loan_amount,
        {{ term_months('term') }} as term_months,
        -- a purpose never seen before is kept in its normalised form (a new category is news for
        -- the monitoring, not noise); a missing one is `other`
        coalesce({{ normalize_text('purpose') }}, 'other') as purpose,
        upper({{ canonical_category('grade', ['a', 'b', 'c', 'd', 'e', 'f', 'g']) }}) as grade,
        case when interest_rate between 0 and 100 then interest_rate end as interest_rate,
        case when annual_income >= 0 then annual_income end as annual_income,
        {{ employment_years('employment_length') }} as employment_years,
        {{ canonical_category('home_ownership', ['rent', 'own', 'mortgage', 'other'],
                              fallback='other') }} as home_ownership,
        credit_score,
        case when debt_to_income >= 0 then debt_to_income end as debt_to_income,
        case when delinquencies_2y >= 0 then delinquencies_2y end as delinquencies_2y,
        case when credit_history_years >= 0 then credit_history_years end as credit_history_years,
        case when open_accounts >= 0 then open_accounts end as open_accounts,
        case when revolving_utilization >= 0 then revolving_utilization end as revolving_utilization,
        case when defaulted in (0, 1) then defaulted end as defaulted,
        batch_id,
        loaded_at

    from typed

)

select * from final
