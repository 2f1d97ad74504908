{% macro epoch_microseconds(timestamp) -%}
    {#- Whole microseconds since 1970-01-01 00:00 UTC, as a BIGINT (exact on both engines). -#}
    {{ return(adapter.dispatch('epoch_microseconds')(timestamp)) }}
{%- endmacro %}

{% macro duckdb__epoch_microseconds(timestamp) -%}
    epoch_us({{ timestamp }})
{%- endmacro %}

{% macro default__epoch_microseconds(timestamp) -%}
    unix_micros({{ timestamp }})
{%- endmacro %}
