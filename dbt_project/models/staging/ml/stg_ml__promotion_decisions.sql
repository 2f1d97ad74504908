-- Every promotion decision about a challenger (evidence, gates, verdict) as ml.train and
-- ml.promote wrote it.

with

final as (select * from {{ source('ml', 'promotion_decisions') }})

select * from final
