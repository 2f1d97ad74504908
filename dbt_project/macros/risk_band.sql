{% macro risk_band(probability) -%}
    {#- Risk band of a probability of default; edges in the dbt var `risk_band_edges`. -#}
    {%- set edges = var('risk_band_edges') -%}
    case
        when {{ probability }} is null then 'unscored'
        when {{ probability }} < {{ edges[0] }} then 'low'
        when {{ probability }} < {{ edges[1] }} then 'medium'
        when {{ probability }} < {{ edges[2] }} then 'high'
        else 'very_high'
    end
{%- endmacro %}
