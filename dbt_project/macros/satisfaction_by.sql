{% macro satisfaction_by(columns) -%}
{#- The whole body of a satisfaction mart (written unindented, like a model): staged customers per
    combination of the bucket `columns` that occurs, every customer counted in customer_count,
    only the surveyed ones (non-NULL score) in the satisfaction statistics. -#}
with

customers as (select * from {{ ref('int_customers_bucketed') }}),

final as (

    select
        {{ columns | join(',\n        ') }},
        count(*) as customer_count,
        count(customer_satisfaction) as surveyed_count,
        avg(customer_satisfaction) as mean_satisfaction,
        stddev_samp(customer_satisfaction) as stddev_satisfaction,
        median(customer_satisfaction) as median_satisfaction

    from customers
    group by {{ columns | join(', ') }}

)

select * from final
{%- endmacro %}
