{% macro term_months(term) -%}
    {#- ` 36 months` -> 36, ` 60 months` -> 60 (also `36`, `60 Months`); anything else -> NULL. -#}
    case try_cast(regexp_extract(cast({{ term }} as string), '(\d+)', 1) as integer)
        when 36 then 36
        when 60 then 60
    end
{%- endmacro %}
