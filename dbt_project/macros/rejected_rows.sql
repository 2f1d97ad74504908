{% macro rejected_rows(classified) -%}
{#- The whole body of a stg_<entity>_rejected model (written unindented, like a model): the rows
    of a stg_<entity>_classified model that staging rejects, every raw column plus the reason. -#}
with

classified as (select * from {{ classified }}),

final as (

    select * from classified
    where rejection_reason is not null

)

select * from final
{%- endmacro %}
