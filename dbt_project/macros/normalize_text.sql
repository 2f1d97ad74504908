{% macro normalize_text(expr) -%}
    {#- Lower-case, trim, and collapse runs of spaces, underscores and hyphens into one `_`. -#}
    {%- set lowered = 'lower(trim(cast(' ~ expr ~ ' as string)))' -%}
    nullif({{ regexp_replace_all(lowered, "'[\s_\-]+'", "'_'") }}, '')
{%- endmacro %}
