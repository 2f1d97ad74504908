{% macro regexp_contains(text, pattern) -%}
    {#- True when `pattern` matches anywhere in `text` (anchor it for a full match). -#}
    {{ return(adapter.dispatch('regexp_contains')(text, pattern)) }}
{%- endmacro %}

{% macro duckdb__regexp_contains(text, pattern) -%}
    regexp_matches({{ text }}, {{ pattern }})
{%- endmacro %}

{% macro default__regexp_contains(text, pattern) -%}
    ({{ text }} rlike {{ pattern }})
{%- endmacro %}
