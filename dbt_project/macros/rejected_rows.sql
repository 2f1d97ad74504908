{% macro rejected_rows(classified) -%}
{#- The whole body of a stg_<entity>_rejected model (written unindented, like a model, which is
    incremental): the rows of a stg_<entity>_classified model that staging rejects, of the
    batches this model does not hold yet, every raw column plus the reason. -#}
with

classified as (

    select * from {{ classified }}
    where {{ new_batches_only() }}

),

final as (

    select * from classified
    where rejection_reason is not null

)

select * from final
{%- endmacro %}
