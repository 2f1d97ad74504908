-- The loan_repayment champion's predictions as ml.train wrote them.

with

final as (select * from {{ source('ml', 'loan_repayment_predictions') }})

select * from final
