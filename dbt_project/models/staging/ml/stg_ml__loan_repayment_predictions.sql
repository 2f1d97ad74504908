-- The predictions of the loan_repayment task's deployed model (its current deployment in
-- ml.deployments) as ml.train, ml.promote or ml.rollback wrote them.

with

final as (select * from {{ source('ml', 'loan_repayment_predictions') }})

select * from final
