{{ config(materialized='ephemeral', tags=['ml_scores']) }}
-- The reference profile of each task's deployed model: the champion of the task's latest run
-- (ml.train profiles champions only).

with

profiles as (select * from {{ ref('stg_ml__reference_profiles') }}),

ranked as (

    select
        *,
        dense_rank() over (partition by task order by created_at desc, run_id desc) as run_rank
    from profiles

),

final as (select * from ranked where run_rank = 1)

select * from final
