-- Nothing is dropped silently: every raw.loans row ends in exactly one of stg_loans and
-- stg_loans_rejected. Returns a row (fails) when the counts disagree.

with

raw_rows as (

    select count(*) as row_count from {{ source('raw', 'loans') }}

),

staged_rows as (

    select count(*) as row_count from {{ ref('stg_loans') }}

),

rejected_rows as (

    select count(*) as row_count from {{ ref('stg_loans_rejected') }}

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
