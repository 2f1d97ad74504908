-- Loan default rate per purpose over all staged loan applications.

with

loans as (

    select * from {{ ref('stg_loans') }}

),

final as (

    select
        purpose,
        count(*) as loan_count,
        cast(coalesce(sum(defaulted), 0) as bigint) as default_count,
        avg(cast(defaulted as double)) as default_rate,
        avg(loan_amount) as avg_loan_amount,
        avg(interest_rate) as avg_interest_rate

    from loans
    group by purpose

)

select * from final
