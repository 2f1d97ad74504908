-- One row per loan application: the application, the model's probability of default, a risk
-- band and the expected loss (probability of default x loss given default x exposure).

{{ config(tags=['ml_scores']) }}

with

loans as (select * from {{ ref('loan_features') }}),
predictions as (select * from {{ ref('stg_ml__loan_repayment_predictions') }}),

joined as (

    select
        loans.loan_id,
        loans.customer_id,
        loans.applied_at,
        loans.loan_amount,
        loans.term_months,
        loans.purpose,
        loans.grade,
        loans.interest_rate,
        loans.debt_to_income,
        loans.credit_score,
        predictions.probability as probability_of_default,
        predictions.prediction as is_predicted_default,
        predictions.threshold as decision_threshold,
        loans.defaulted as observed_defaulted,
        predictions.model_name,
        predictions.run_id

    from loans
    left join predictions
        on loans.loan_id = predictions.loan_id

),

final as (

    select
        *,
        {{ risk_band('probability_of_default') }} as risk_band,
        probability_of_default * {{ var('loss_given_default') }} * loan_amount as expected_loss

    from joined

)

select * from final
