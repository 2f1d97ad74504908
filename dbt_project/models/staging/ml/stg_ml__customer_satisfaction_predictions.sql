-- The customer_satisfaction champion's predictions as ml.train wrote them (a view: no copy).

{{ config(materialized='view', tags=['ml_scores']) }}

with

source as (

    select * from {{ source('ml', 'customer_satisfaction_predictions') }}

),

final as (

    select * from source

)

select * from final
