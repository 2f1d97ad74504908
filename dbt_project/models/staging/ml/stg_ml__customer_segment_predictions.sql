-- The customer_segment champion's predictions as ml.train wrote them.

with

final as (select * from {{ source('ml', 'customer_segment_predictions') }})

select * from final
