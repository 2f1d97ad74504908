-- Every raw loan application row, unchanged, with the reason it is rejected (NULL when kept).
-- Classified once here so that stg_loans and stg_loans_rejected split one table.

with

source as (

    select * from {{ source('raw', 'loans') }}

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
            when try_cast(loan_id as bigint) is null then 'missing_loan_id'
            when copy_number > 1 then 'duplicate_row'
            when not has_known_customer then 'unknown_customer'
            when try_cast(loan_amount as double) <= 0 then 'non_positive_amount'
            when try_cast(credit_score as integer) not between 300 and 850
                then 'credit_score_out_of_range'
            when try_cast(applied_at as timestamp) >= {{ as_of_date() }} then 'applied_in_future'
        end as check_reason

    from customer_matched

),

id_ranked as (

    -- among rows that pass every check, the same id with different content keeps the
    -- earliest application (then the smallest values, column by column: deterministic)
    select
        *,
        row_number() over (
            partition by try_cast(loan_id as bigint), check_reason is null
            order by
                applied_at,
                customer_id,
                loan_amount,
                term,
                purpose,
                grade,
                interest_rate,
                annual_income,
                employment_length,
                home_ownership,
                credit_score,
                debt_to_income,
                delinquencies_2y,
                credit_history_years,
                open_accounts,
                revolving_utilization,
                defaulted
        ) as id_rank

    from checked

),

final as (

    select
        * exclude (copy_number, has_known_customer, check_reason, id_rank),
        case
            when check_reason is not null then check_reason
            when id_rank > 1 then 'duplicate_loan_id'
        end as rejection_reason

    from id_ranked

)

select * from final
