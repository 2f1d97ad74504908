{% macro days_between(start, end) -%}
    {#-
        Whole calendar days from the date of `start` to the date of `end` (dbt.datediff over
        DATEs: the same count on every engine, whatever the time of day).
    -#}
    {{ dbt.datediff('cast(' ~ start ~ ' as date)', 'cast(' ~ end ~ ' as date)', 'day') }}
{%- endmacro %}
