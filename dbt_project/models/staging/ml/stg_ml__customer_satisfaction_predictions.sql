-- The predictions of the customer_satisfaction task's deployed model (its current deployment in
-- ml.deployments) as ml.train, ml.promote or ml.rollback wrote them.

with

final as (select * from {{ source('ml', 'customer_satisfaction_predictions') }})

select * from final
