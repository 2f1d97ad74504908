{% test raw_equals_staged_plus_rejected(model, raw, rejected) %}
    {#-
        Nothing is dropped silently: `raw` has exactly as many rows as the staged `model` and its
        `rejected` rows together. On a failure, the one row returned says which counts disagree,
        and dbt's "Got N results" counts the raw rows unaccounted for (or accounted twice).
    -#}
    {{ config(fail_calc='coalesce(sum(abs(unaccounted_rows)), 0)') }}
    with

    raw_rows as (select count(*) as row_count from {{ raw }}),
    staged_rows as (select count(*) as row_count from {{ model }}),
    rejected_rows as (select count(*) as row_count from {{ rejected }}),

    final as (

        select
            raw_rows.row_count as raw_count,
            staged_rows.row_count as staged_count,
            rejected_rows.row_count as rejected_count,
            raw_rows.row_count - staged_rows.row_count - rejected_rows.row_count as unaccounted_rows

        from raw_rows
        cross join staged_rows
        cross join rejected_rows

    )

    select * from final
    where raw_count != staged_count + rejected_count
{% endtest %}
