-- The champions' per-entity explanations (top features by SHAP value) as ml.train wrote them.

with

final as (select * from {{ source('ml', 'prediction_explanations') }})

select * from final
