-- The segment of every customer as ml.segment wrote it.

with

final as (select * from {{ source('ml_segmentation', 'customer_segments') }})

select * from final
