-- Each aggregate mart partitions its whole population: customer counts add up to the staged
-- customers, loan counts to the staged loans. Returns the marts whose totals disagree.

with

customers as (

    select count(*) as total from {{ ref('stg_customers') }}

),

loans as (

    select count(*) as total from {{ ref('stg_loans') }}

),

mart_totals as (

    select 'satisfaction_by_age_group' as mart, sum(customer_count) as total, 'customers' as population
    from {{ ref('satisfaction_by_age_group') }}
    union all
    select 'satisfaction_by_income_bracket', sum(customer_count), 'customers'
    from {{ ref('satisfaction_by_income_bracket') }}
    union all
    select 'satisfaction_by_age_group_and_income_bracket', sum(customer_count), 'customers'
    from {{ ref('satisfaction_by_age_group_and_income_bracket') }}
    union all
    select 'default_rate_by_purpose', sum(loan_count), 'loans'
    from {{ ref('default_rate_by_purpose') }}
    union all
    select 'default_rate_by_grade', sum(loan_count), 'loans'
    from {{ ref('default_rate_by_grade') }}

),

final as (

    select
        mart_totals.mart,
        mart_totals.total as mart_total,
        case mart_totals.population
            when 'customers' then customers.total
            else loans.total
        end as expected_total
    from mart_totals
    cross join customers
    cross join loans

)

select * from final
where mart_total is distinct from expected_total
