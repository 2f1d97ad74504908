-- One row per staged customer: the latest version of customer_feature_versions (traits, buckets
-- and order behaviour as of the customer's own latest load, plus the two labels), with the batch
-- of that version last. A view: a batch costs nothing here (the versions table holds the rows).
-- Column names, order and types are a contract (Python reads it).

{{ config(materialized='view') }}

with

versions as (select * from {{ ref('customer_feature_versions') }}),

ranked as (

    select
        *,
        row_number() over (partition by customer_id order by batch_id desc) as version_rank

    from versions

),

final as (

    select * except (version_rank)
    from ranked
    where version_rank = 1

)

select * from final
