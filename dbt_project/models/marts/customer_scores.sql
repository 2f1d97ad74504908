-- One row per customer: who they are, what they told us, and what the models predict.

{{ config(tags=['ml_scores']) }}

with

customers as (select * from {{ ref('customer_features') }}),
satisfaction as (select * from {{ ref('stg_ml__customer_satisfaction_predictions') }}),
segments as (select * from {{ ref('stg_ml__customer_segment_predictions') }}),

final as (

    select
        customers.customer_id,
        customers.age,
        customers.age_group,
        customers.income,
        customers.income_bracket,
        customers.region,
        customers.order_count,
        customers.total_spend,
        customers.recency_days,
        customers.customer_satisfaction as observed_satisfaction,
        satisfaction.prediction as predicted_satisfaction,
        satisfaction.prediction - customers.customer_satisfaction as satisfaction_residual,
        customers.segment as observed_segment,
        segments.prediction as predicted_segment,
        segments.probability as predicted_segment_probability,
        customers.segment is not null
            and customers.segment <> segments.prediction as is_segment_disagreement,
        satisfaction.model_name as satisfaction_model,
        segments.model_name as segment_model,
        satisfaction.run_id as satisfaction_run_id,
        segments.run_id as segment_run_id

    from customers
    left join satisfaction
        on customers.customer_id = satisfaction.customer_id
    left join segments
        on customers.customer_id = segments.customer_id

)

select * from final
