{{ config(materialized='incremental', incremental_strategy='append') }}
-- Every value of every feature version, one row per (version, column): the long form the drift
-- marts bin. Appended per batch: a build reads only the versions of batches it has not seen.

with

customer_versions as (

    select * from {{ ref('customer_feature_versions') }}
    {%- if is_incremental() %}
    where batch_id > (
        select coalesce(max(batch_id), -1) from {{ this }}
        where relation = 'marts.customer_features'
    )
    {%- endif %}

),

loan_versions as (

    select * from {{ ref('loan_feature_versions') }}
    {%- if is_incremental() %}
    where batch_id > (
        select coalesce(max(batch_id), -1) from {{ this }}
        where relation = 'marts.loan_features'
    )
    {%- endif %}

),

customer_values as (

    {{ unpivot_feature_values('customer_versions', ref('customer_feature_versions'),
                              'marts.customer_features', 'customer_id') }}

),

loan_values as (

    {{ unpivot_feature_values('loan_versions', ref('loan_feature_versions'),
                              'marts.loan_features', 'loan_id', exclude=['customer_id']) }}

),

final as (

    select * from customer_values
    union all
    select * from loan_values

)

select * from final
