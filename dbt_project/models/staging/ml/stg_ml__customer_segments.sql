-- The segment of every customer as ml.segment wrote it (a view: no copy).

{{ config(materialized='view', tags=['ml_scores']) }}

with

source as (

    select * from {{ source('ml_segmentation', 'customer_segments') }}

),

final as (

    select * from source

)

select * from final
