-- One row per customer: typed, trimmed, canonical categories, implausible values as NULL.
-- Incremental: each build stages the batches not staged yet.

with

classified as (select * from {{ ref('stg_customers_classified') }}),

typed as (

    select
        cast(customer_id as bigint) as customer_id,
        try_cast(age as integer) as age,
        try_cast(income as double) as income,
        gender,
        region,
        acquisition_channel,
        try_cast(household_size as integer) as household_size,
        try_cast(signup_date as date) as signup_date,
        try_cast(customer_satisfaction as double) as customer_satisfaction,
        segment,
        cast(batch_id as integer) as batch_id,
        cast(loaded_at as timestamp) as loaded_at

    from classified
    where rejection_reason is null
        and {{ new_batches_only() }}

),

final as (

    select
        customer_id,
        age,
        case when income >= 0 then income end as income,
        {{ canonical_category('gender', ['female', 'male', 'other'],
                              aliases={'f': 'female', 'm': 'male', 'o': 'other'}) }} as gender,
        {{ canonical_category('region', ['north', 'south', 'east', 'west', 'central']) }} as region,
        {{ canonical_category('acquisition_channel',
                              ['web', 'store', 'mobile_app', 'referral', 'partner'],
                              aliases={'mobile': 'mobile_app', 'app': 'mobile_app',
                                       'mobileapp': 'mobile_app'}) }} as acquisition_channel,
        case when household_size between 1 and 20 then household_size end as household_size,
        signup_date,
        case
            when customer_satisfaction between 1 and 10 then customer_satisfaction
        end as customer_satisfaction,
        {{ canonical_category('segment', ['bargain_hunter', 'loyal', 'premium', 'occasional'],
                              aliases={'bargainhunter': 'bargain_hunter'}) }} as segment,
        batch_id,
        loaded_at

    from typed

)

select * from final
