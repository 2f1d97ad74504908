{% macro age_group(age) -%}
    {#- Age bucket: 18-24, 25-34, 35-44, 45-54, 55-64, 65+; `unknown` when NULL or under 18. -#}
    case
        when {{ age }} is null or {{ age }} < 18 then 'unknown'
        when {{ age }} < 25 then '18-24'
        when {{ age }} < 35 then '25-34'
        when {{ age }} < 45 then '35-44'
        when {{ age }} < 55 then '45-54'
        when {{ age }} < 65 then '55-64'
        else '65+'
    end
{%- endmacro %}
