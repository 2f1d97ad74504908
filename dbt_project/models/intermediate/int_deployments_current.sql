{{ config(tags=['ml_scores']) }}
-- Each task's current deployment: its ml.deployments row of the highest deployment_id, the model
-- whose predictions ml.<task>_predictions hold and the one the monitoring marts watch.

with

deployments as (select * from {{ ref('stg_ml__deployments') }}),

ranked as (

    select
        *,
        row_number() over (partition by task order by deployment_id desc) as recency
    from deployments

),

final as (

    select
        task,
        deployment_id,
        run_id,
        model_name,
        artifact_path,
        artifact_sha256,
        deployed_at,
        command,
        reason,
        previous_deployment_id
    from ranked
    where recency = 1

)

select * from final
