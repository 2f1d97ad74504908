{% test raw_equals_staged_plus_rejected(model, raw, rejected) %}
    {#-
        Nothing is dropped silently, batch by batch: each batch of `raw` has exactly as many rows
        as the staged `model` and its `rejected` rows of that batch together. On a failure, one
        row per batch that disagrees says which counts differ, and dbt's "Got N results" counts
        the raw rows unaccounted for (or accounted twice) over all batches.
    -#}
    {{ config(fail_calc='coalesce(sum(abs(unaccounted_rows)), 0)') }}
    with

    raw_rows as (
        select batch_id, count(*) as row_count from {{ raw }} group by batch_id
    ),
    staged_rows as (
        select batch_id, count(*) as row_count from {{ model }} group by batch_id
    ),
    rejected_rows as (
        select batch_id, count(*) as row_count from {{ rejected }} group by batch_id
    ),

    batches as (

        select batch_id from raw_rows
        union
        select batch_id from staged_rows
        union
        select batch_id from rejected_rows

    ),

    final as (

        select
            batches.batch_id,
            coalesce(raw_rows.row_count, 0) as raw_count,
            coalesce(staged_rows.row_count, 0) as staged_count,
            coalesce(rejected_rows.row_count, 0) as rejected_count,
            coalesce(raw_rows.row_count, 0)
                - coalesce(staged_rows.row_count, 0)
                - coalesce(rejected_rows.row_count, 0) as unaccounted_rows

        from batches
        left join raw_rows on batches.batch_id is not distinct from raw_rows.batch_id
        left join staged_rows on batches.batch_id is not distinct from staged_rows.batch_id
        left join rejected_rows on batches.batch_id is not distinct from rejected_rows.batch_id

    )

    select * from final
    where unaccounted_rows != 0
{% endtest %}
