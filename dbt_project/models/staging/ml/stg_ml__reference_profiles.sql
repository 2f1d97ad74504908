-- Every trained champion's reference profile as ml.train wrote it (bins and shares of its training
-- rows' features and scores).

with

final as (select * from {{ source('ml', 'reference_profiles') }})

select * from final
