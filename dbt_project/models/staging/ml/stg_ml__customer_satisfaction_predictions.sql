-- The customer_satisfaction champion's predictions as ml.train wrote them.

with

final as (select * from {{ source('ml', 'customer_satisfaction_predictions') }})

select * from final
