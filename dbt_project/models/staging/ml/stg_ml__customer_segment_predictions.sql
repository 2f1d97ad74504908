-- The predictions of the customer_segment task's deployed model (its current deployment in
-- ml.deployments) as ml.train, ml.promote or ml.rollback wrote them.

with

final as (select * from {{ source('ml', 'customer_segment_predictions') }})

select * from final
