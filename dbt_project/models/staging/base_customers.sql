-- Every raw customer row, unchanged, with the reason it is rejected (NULL when it is kept).
-- Classified once here so that stg_customers and stg_customers_rejected split one table.

with

source as (

    select * from {{ source('raw', 'customers') }}

),

copies_numbered as (

    -- copy_number > 1 marks the second and later copies of an exact duplicate row
    select
        *,
        -- `source` is the whole row as a struct: every column, including any added later
        row_number() over (partition by source) as copy_number

    from source

),

checked as (

    -- the contract's reasons, first match wins
    select
        *,
        case
            when try_cast(customer_id as bigint) is null then 'missing_customer_id'
            when copy_number > 1 then 'duplicate_row'
            when try_cast(age as integer) not between 18 and 100 then 'age_out_of_range'
            when try_cast(signup_date as date) >= {{ as_of_date() }} then 'signup_in_future'
        end as check_reason

    from copies_numbered

),

id_ranked as (

    -- among rows that pass every check, the same id with different content keeps the
    -- earliest signup (then the smallest values, column by column: deterministic)
    select
        *,
        row_number() over (
            partition by try_cast(customer_id as bigint), check_reason is null
            order by
                signup_date,
                age,
                income,
                gender,
                region,
                acquisition_channel,
                household_size,
                customer_satisfaction,
                segment
        ) as id_rank

    from checked

),

final as (

    select
        * exclude (copy_number, check_reason, id_rank),
        case
            when check_reason is not null then check_reason
            when id_rank > 1 then 'duplicate_customer_id'
        end as rejection_reason

    from id_ranked

)

select * from final
