-- Which version of which row each batch's drift is measured on, per feature relation:
-- `snapshot` (every row as it stands after the batch: its latest version up to the batch) and
-- `arrivals` (the rows that arrived in the batch, in the version they arrived with). A task reads
-- the population its reference profile names. `days_since_version` is how many days the batch's
-- as-of is after the as-of of the row's version (0 for arrivals): a snapshot ages its day-count
-- features by it (int_monitoring_values), exactly what a rebuild as of the batch would give for a
-- row nothing happened to since.

with

customer_versions as (select * from {{ ref('customer_feature_versions') }}),
loan_versions as (select * from {{ ref('loan_feature_versions') }}),
staged_customers as (select * from {{ ref('stg_customers') }}),
staged_orders as (select * from {{ ref('stg_orders') }}),
staged_loans as (select * from {{ ref('stg_loans') }}),

loads as (

    select batch_id, max(loaded_at) as loaded_at from staged_customers group by batch_id
    union all
    select batch_id, max(loaded_at) as loaded_at from staged_orders group by batch_id
    union all
    select batch_id, max(loaded_at) as loaded_at from staged_loans group by batch_id

),

batch_dates as (

    -- a batch's as-of date: the day it was loaded
    select batch_id, cast(max(loaded_at) as date) as as_of_date
    from loads
    group by batch_id

),

versions as (

    select
        'marts.customer_features' as relation,
        cast(customer_id as string) as entity_id,
        batch_id as version_batch_id
    from customer_versions
    union all
    select
        'marts.loan_features' as relation,
        cast(loan_id as string) as entity_id,
        batch_id as version_batch_id
    from loan_versions

),

batches as (select distinct relation, version_batch_id as batch_id from versions),

arrived as (

    select
        relation,
        entity_id,
        min(version_batch_id) as arrived_batch_id
    from versions
    group by relation, entity_id

),

snapshot_ranked as (

    select
        batches.relation,
        batches.batch_id,
        versions.entity_id,
        versions.version_batch_id,
        row_number() over (
            partition by batches.relation, batches.batch_id, versions.entity_id
            order by versions.version_batch_id desc
        ) as recency
    from batches
    inner join versions
        on versions.relation = batches.relation
        and versions.version_batch_id <= batches.batch_id

),

populations as (

    select
        relation,
        'snapshot' as population,
        batch_id,
        entity_id,
        version_batch_id
    from snapshot_ranked
    where recency = 1
    union all
    select
        arrived.relation,
        'arrivals' as population,
        arrived.arrived_batch_id as batch_id,
        arrived.entity_id,
        arrived.arrived_batch_id as version_batch_id
    from arrived

),

final as (

    select
        populations.*,
        coalesce(
            {{ days_between('version_dates.as_of_date', 'batch_dates.as_of_date') }}, 0
        ) as days_since_version
    from populations
    left join batch_dates
        on batch_dates.batch_id = populations.batch_id
    left join batch_dates as version_dates
        on version_dates.batch_id = populations.version_batch_id

)

select * from final
