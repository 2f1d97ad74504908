{% macro employment_years(text) -%}
    {#-
        LendingClub's employment length as whole years 0..10: `< 1 year` -> 0, `1 year` -> 1,
        `N years` -> N, `10+ years` -> 10; `n/a`, NULL and anything unparseable -> NULL.
    -#}
    {%- set lowered = 'lower(cast(' ~ text ~ ' as string))' -%}
    case
        when {{ regexp_contains(lowered, "'^\s*<\s*1\s*years?\s*$'") }} then 0
        when {{ regexp_contains(lowered, "'^\s*10\s*\+\s*years?\s*$'") }} then 10
        when {{ regexp_contains(lowered, "'^\s*([0-9]|10)\s*years?\s*$'") }}
            then cast(regexp_extract(cast({{ text }} as string), '(\d+)', 1) as integer)
    end
{%- endmacro %}
