-- Every score a model gave (ml.train and ml.score), with the batch and the hash of the feature
-- values it was given.

with

final as (select * from {{ source('ml', 'score_log') }})

select * from final
