-- The champions' per-entity explanations (top features by SHAP contribution) as ml.train wrote
-- them (a view: no copy).

{{ config(materialized='view', tags=['ml_scores']) }}

with

source as (

    select * from {{ source('ml', 'prediction_explanations') }}

),

final as (

    select * from source

)

select * from final
