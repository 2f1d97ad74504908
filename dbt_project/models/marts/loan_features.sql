-- One row per staged loan application: the latest version of loan_feature_versions (the
-- application, affordability ratios, the applicant's traits and their order behaviour strictly
-- before `applied_at`, and the label), with the batch of that version last. A loan has one
-- version (only its own row touches it); the view keeps the latest all the same, like
-- customer_features. Column names, order and types are a contract (Python reads it).

{{ config(materialized='view') }}

with

versions as (select * from {{ ref('loan_feature_versions') }}),

ranked as (

    select
        *,
        row_number() over (partition by loan_id order by batch_id desc) as version_rank

    from versions

),

final as (

    select * except (version_rank)
    from ranked
    where version_rank = 1

)

select * from final
