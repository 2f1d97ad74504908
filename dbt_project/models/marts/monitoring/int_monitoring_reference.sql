{{ config(materialized='ephemeral', tags=['ml_scores']) }}
-- The reference profile of each task's deployed model: the profile ml.train stored for the model
-- of the task's current deployment (run_id + model_name of its highest deployment_id, see
-- int_deployments_current), whichever run trained it. ml.train profiles every run's champion,
-- deployed or not, so a champion that was not promoted is never monitored; a task whose
-- deployed model has no profile (a non-champion deployed by ml.promote) has no monitoring rows.

with

profiles as (select * from {{ ref('stg_ml__reference_profiles') }}),
current_deployments as (select * from {{ ref('int_deployments_current') }}),

deployed_profiles as (

    select
        profiles.*,
        current_deployments.deployment_id,
        current_deployments.deployed_at
    from profiles
    inner join current_deployments
        on profiles.task = current_deployments.task
        and profiles.run_id = current_deployments.run_id
        and profiles.model_name = current_deployments.model_name

),

ranked as (

    -- one profile per task should the same model have been profiled more than once: the latest
    select
        *,
        dense_rank() over (partition by task order by created_at desc) as profile_rank
    from deployed_profiles

),

final as (select * from ranked where profile_rank = 1)

select * from final
