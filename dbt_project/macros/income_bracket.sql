{% macro income_bracket(income) -%}
    {#- Income bracket in dollars per year; lower bounds inclusive; `unknown` when NULL or negative. -#}
    {{ bucket_label(income, {0: '<25k', 25000: '25-50k', 50000: '50-75k', 75000: '75-100k',
                             100000: '100-150k', 150000: '150k+'}) }}
{%- endmacro %}
