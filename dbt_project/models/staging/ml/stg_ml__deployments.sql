-- Every deployment of every task as ml.train, ml.promote and ml.rollback wrote it (the full
-- history; a task's current deployment is its row of the highest deployment_id).

with

final as (select * from {{ source('ml', 'deployments') }})

select * from final
