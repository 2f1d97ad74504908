{% macro copy_number(relation) -%}
    {#-
        1, 2, ... over the exact copies of a row of `relation` (a CTE or table name in the FROM
        clause): the window is partitioned by the whole row, every column of it. Copies are
        identical, so which one is 1 does not matter; Spark requires an order all the same.
    -#}
    {{ return(adapter.dispatch('copy_number')(relation)) }}
{%- endmacro %}

{% macro duckdb__copy_number(relation) -%}
    row_number() over (partition by {{ relation }})
{%- endmacro %}

{% macro default__copy_number(relation) -%}
    row_number() over (partition by struct({{ relation }}.*) order by struct({{ relation }}.*))
{%- endmacro %}
