-- Every loan decision that names a deployment names a loan_repayment deployment of the very model
-- (run_id + model_name) that made its prediction, with that deployment's deployed_at (the
-- relationships test on loan_decisions.deployment_id checks the id alone, which repeats across
-- tasks). Returns the decisions whose deployment does not match.

with

decisions as (select * from {{ ref('loan_decisions') }}),
deployments as (select * from {{ ref('stg_ml__deployments') }}),

loan_repayment_deployments as (

    select * from deployments where task = 'loan_repayment'

),

final as (

    select
        decisions.loan_id,
        decisions.run_id,
        decisions.model_name,
        decisions.deployment_id,
        decisions.deployed_at

    from decisions
    left join loan_repayment_deployments
        on decisions.deployment_id = loan_repayment_deployments.deployment_id
        and decisions.run_id = loan_repayment_deployments.run_id
        and decisions.model_name = loan_repayment_deployments.model_name
        and decisions.deployed_at = loan_repayment_deployments.deployed_at
    where
        decisions.deployment_id is not null
        and loan_repayment_deployments.deployment_id is null

)

select * from final
