{% macro as_of_date() -%}
    {#- The as-of date (dbt var `as_of_date`) as a DATE literal: anything on or after it is in the future. -#}
    cast('{{ var("as_of_date") }}' as date)
{%- endmacro %}
