{% macro normalize_text(expr) -%}
    {#- Lower-case, trim, and collapse runs of spaces, underscores and hyphens into one `_`. -#}
    nullif(regexp_replace(lower(trim(cast({{ expr }} as varchar))), '[\s_\-]+', '_', 'g'), '')
{%- endmacro %}
