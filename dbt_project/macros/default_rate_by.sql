{% macro default_rate_by(column, expression=none) -%}
{#- The whole body of a default-rate mart (written unindented, like a model): staged loans per
    value of `column` (or of the SQL `expression`, named `column`), with the defaults (a NULL
    outcome counts as a loan, not as a default), the default rate over the known outcomes and
    the mean amount and interest rate. -#}
{%- set group_value = expression if expression is not none else column -%}
with

loans as (select * from {{ ref('stg_loans') }}),

final as (

    select
        {{ group_value }} as {{ column }},
        count(*) as loan_count,
        cast(coalesce(sum(defaulted), 0) as bigint) as default_count,
        avg(cast(defaulted as double)) as default_rate,
        avg(loan_amount) as avg_loan_amount,
        avg(interest_rate) as avg_interest_rate

    from loans
    group by {{ group_value }}

)

select * from final
{%- endmacro %}
