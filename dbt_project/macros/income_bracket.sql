{% macro income_bracket(income) -%}
    {#- Income bracket in dollars per year; lower bounds inclusive; `unknown` when NULL or negative. -#}
    case
        when {{ income }} is null or {{ income }} < 0 then 'unknown'
        when {{ income }} < 25000 then '<25k'
        when {{ income }} < 50000 then '25-50k'
        when {{ income }} < 75000 then '50-75k'
        when {{ income }} < 100000 then '75-100k'
        when {{ income }} < 150000 then '100-150k'
        else '150k+'
    end
{%- endmacro %}
