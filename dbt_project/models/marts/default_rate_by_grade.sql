-- Loan default rate per grade over all staged loan applications (`unknown` when unparseable).

with

loans as (

    select * from {{ ref('stg_loans') }}

),

graded as (

    select
        *,
        coalesce(grade, 'unknown') as grade_label

    from loans

),

final as (

    select
        grade_label as grade,
        count(*) as loan_count,
        cast(coalesce(sum(defaulted), 0) as bigint) as default_count,
        avg(cast(defaulted as double)) as default_rate,
        avg(loan_amount) as avg_loan_amount,
        avg(interest_rate) as avg_interest_rate

    from graded
    group by grade_label

)

select * from final
