{% macro age_group(age) -%}
    {#- Age bucket: 18-24, 25-34, 35-44, 45-54, 55-64, 65+; `unknown` when NULL or under 18. -#}
    {{ bucket_label(age, {18: '18-24', 25: '25-34', 35: '35-44', 45: '45-54', 55: '55-64',
                          65: '65+'}) }}
{%- endmacro %}
