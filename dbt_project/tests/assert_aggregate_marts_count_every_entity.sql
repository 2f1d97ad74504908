-- Each aggregate mart partitions its whole population: customer counts add up to the staged
-- customers, loan counts to the staged loans. Returns the marts whose totals disagree.

{%- set populations = {
    'satisfaction_by_age_group': 'customers',
    'satisfaction_by_income_bracket': 'customers',
    'satisfaction_by_age_group_and_income_bracket': 'customers',
    'default_rate_by_purpose': 'loans',
    'default_rate_by_grade': 'loans',
} %}

with

customers as (select count(*) as total from {{ ref('stg_customers') }}),
loans as (select count(*) as total from {{ ref('stg_loans') }}),

mart_totals as (
    {%- for mart, population in populations.items() %}

    select
        '{{ mart }}' as mart,
        sum({{ 'customer_count' if population == 'customers' else 'loan_count' }}) as total,
        '{{ population }}' as population
    from {{ ref(mart) }}
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

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
