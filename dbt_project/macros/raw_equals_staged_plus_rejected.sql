{% macro raw_equals_staged_plus_rejected(entity) -%}
    {#- Singular-test body: a row (failure) when raw.<entity> has a different number of rows
        than stg_<entity> and stg_<entity>_rejected together. -#}
    with

    raw_rows as (

        select count(*) as row_count from {{ source('raw', entity) }}

    ),

    staged_rows as (

        select count(*) as row_count from {{ ref('stg_' ~ entity) }}

    ),

    rejected_rows as (

        select count(*) as row_count from {{ ref('stg_' ~ entity ~ '_rejected') }}

    ),

    final as (

        select
            raw_rows.row_count as raw_count,
            staged_rows.row_count as staged_count,
            rejected_rows.row_count as rejected_count

        from raw_rows
        cross join staged_rows
        cross join rejected_rows

    )

    select * from final
    where raw_count != staged_count + rejected_count
{%- endmacro %}
