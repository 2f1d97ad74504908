-- One row per loan application: the deployed model's probability of default turned into a
-- decision (approve / review / decline at cut-offs derived from the tuned threshold, dbt vars),
-- the deployment that decided (the latest deployment of the model that made the prediction) and
-- up to three plain-word reasons from the SHAP explanation of the same run: the strongest factors
-- lowering the risk of an approved loan, the strongest raising it for review and decline.

{{ config(tags=['ml_scores']) }}

{%- set cutoffs = loan_decision_cutoffs('predictions.threshold') %}

with

loans as (select * from {{ ref('loan_features') }}),
predictions as (select * from {{ ref('stg_ml__loan_repayment_predictions') }}),
explanations as (select * from {{ ref('stg_ml__prediction_explanations') }}),
deployments as (select * from {{ ref('stg_ml__deployments') }}),
feature_labels as (select * from {{ ref('feature_labels') }}),

model_deployments as (

    -- every deployment of each loan_repayment model (run_id + model_name), the latest first: a
    -- model deployed again (a rollback to it) decides under its latest deployment
    select
        run_id,
        model_name,
        deployment_id,
        deployed_at,
        row_number() over (
            partition by run_id, model_name
            order by deployment_id desc
        ) as recency

    from deployments
    where task = 'loan_repayment'

),

latest_model_deployments as (select * from model_deployments where recency = 1),

scored as (

    select
        loans.loan_id,
        loans.customer_id,
        loans.applied_at,
        predictions.probability as probability_of_default,
        predictions.threshold as tuned_threshold,
        {{ cutoffs.approve_below }} as approve_below,
        {{ cutoffs.decline_at_or_above }} as decline_at_or_above,
        predictions.model_name,
        predictions.run_id,
        latest_model_deployments.deployment_id,
        latest_model_deployments.deployed_at

    from loans
    left join predictions
        on loans.loan_id = predictions.loan_id
    left join latest_model_deployments
        on predictions.run_id = latest_model_deployments.run_id
        and predictions.model_name = latest_model_deployments.model_name

),

decided as (

    select
        *,
        case
            when probability_of_default is null then null
            when probability_of_default >= decline_at_or_above then 'decline'
            when probability_of_default < approve_below then 'approve'
            else 'review'
        end as decision

    from scored

),

loan_explanations as (

    -- only the explanation of the run that produced the stored prediction
    select
        decided.loan_id,
        decided.decision,
        explanations.rank,
        explanations.feature,
        explanations.feature_value,
        explanations.shap_value

    from decided
    inner join explanations
        on explanations.task = 'loan_repayment'
        and explanations.run_id = decided.run_id
        and try_cast(explanations.entity_id as bigint) = decided.loan_id

),

reasons as (

    -- an approval is explained by what lowers the risk, a review or decline by what raises it
    select
        loan_explanations.loan_id,
        {{ reason_text(
            "coalesce(feature_labels.label, replace(loan_explanations.feature, '_', ' '))",
            'loan_explanations.feature_value',
            'loan_explanations.shap_value',
        ) }} as reason,
        row_number() over (
            partition by loan_explanations.loan_id
            order by abs(loan_explanations.shap_value) desc, loan_explanations.rank
        ) as reason_number

    from loan_explanations
    left join feature_labels
        on loan_explanations.feature = feature_labels.feature
    where
        (loan_explanations.decision = 'approve' and loan_explanations.shap_value < 0)
        or (
            loan_explanations.decision in ('review', 'decline')
            and loan_explanations.shap_value > 0
        )

),

reasons_by_loan as (

    select
        loan_id,
        max(case when reason_number = 1 then reason end) as reason_1,
        max(case when reason_number = 2 then reason end) as reason_2,
        max(case when reason_number = 3 then reason end) as reason_3

    from reasons
    group by loan_id

),

final as (

    select
        decided.loan_id,
        decided.customer_id,
        decided.applied_at,
        decided.probability_of_default,
        decided.tuned_threshold,
        decided.approve_below,
        decided.decline_at_or_above,
        decided.decision,
        reasons_by_loan.reason_1,
        reasons_by_loan.reason_2,
        reasons_by_loan.reason_3,
        decided.model_name,
        decided.run_id,
        decided.deployment_id,
        decided.deployed_at

    from decided
    left join reasons_by_loan
        on decided.loan_id = reasons_by_loan.loan_id

)

select * from final
