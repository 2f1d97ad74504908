-- Population stability index (PSI) and missing share of every feature of each task's deployed
-- model, and of its score, per batch, against the model's reference profile (its training rows),
-- with a status from the thresholds in dbt_project.yml: stable, watch or act.

with

reference as (select * from {{ ref('int_monitoring_reference') }}),
observed as (select * from {{ ref('int_monitoring_values') }}),

numeric_counts as (

    -- bin i holds lower < value <= upper (no lower edge in the first bin, no upper in the last)
    select
        observed.task,
        observed.batch_id,
        observed.subject,
        observed.feature,
        reference.bin,
        count(*) as row_count
    from observed
    inner join reference
        on reference.task = observed.task
        and reference.subject = observed.subject
        and reference.feature = observed.feature
        and (reference.lower is null or observed.number_value > reference.lower)
        and (reference.upper is null or observed.number_value <= reference.upper)
    where observed.kind = 'numeric' and observed.number_value is not null
    group by observed.task, observed.batch_id, observed.subject, observed.feature, reference.bin

),

categorical_counts as (

    -- a category the reference never saw counts in bin -1 (expected share 0)
    select
        observed.task,
        observed.batch_id,
        observed.subject,
        observed.feature,
        coalesce(reference.bin, -1) as bin,
        count(*) as row_count
    from observed
    left join reference
        on reference.task = observed.task
        and reference.subject = observed.subject
        and reference.feature = observed.feature
        and reference.category = observed.category_value
    where observed.kind = 'categorical' and observed.category_value is not null
    group by
        observed.task, observed.batch_id, observed.subject, observed.feature,
        coalesce(reference.bin, -1)

),

bin_counts as (

    select * from numeric_counts
    union all
    select * from categorical_counts

),

totals as (

    select
        task,
        batch_id,
        subject,
        feature,
        kind,
        count(*) as row_count,
        sum(case when number_value is null and category_value is null then 1 else 0 end)
            as missing_count
    from observed
    group by task, batch_id, subject, feature, kind

),

expected_bins as (

    select task, subject, feature, bin, share, missing_share
    from reference
    union all
    select distinct task, subject, feature, -1 as bin, 0.0 as share, missing_share
    from reference
    where kind = 'categorical'

),

compared as (

    select
        totals.task,
        totals.batch_id,
        totals.subject,
        totals.feature,
        totals.kind,
        totals.row_count,
        totals.missing_count,
        expected_bins.missing_share as reference_missing_share,
        expected_bins.bin,
        expected_bins.share as expected_share,
        coalesce(bin_counts.row_count, 0)
            / nullif(cast(totals.row_count - totals.missing_count as double), 0) as actual_share
    from totals
    inner join expected_bins
        on expected_bins.task = totals.task
        and expected_bins.subject = totals.subject
        and expected_bins.feature = totals.feature
    left join bin_counts
        on bin_counts.task = totals.task
        and bin_counts.batch_id = totals.batch_id
        and bin_counts.subject = totals.subject
        and bin_counts.feature = totals.feature
        and bin_counts.bin = expected_bins.bin

),

indexed as (

    select
        task,
        batch_id,
        subject,
        feature,
        kind,
        max(row_count) as row_count,
        max(missing_count) / cast(max(row_count) as double) as missing_share,
        max(reference_missing_share) as reference_missing_share,
        sum({{ psi_term('coalesce(actual_share, 0)', 'expected_share') }}) as psi
    from compared
    group by task, batch_id, subject, feature, kind

),

final as (

    select
        task,
        batch_id,
        subject,
        feature,
        kind,
        row_count,
        psi,
        missing_share,
        reference_missing_share,
        case
            when psi >= {{ var('psi_act_at') }}
                or abs(missing_share - reference_missing_share)
                >= {{ var('missing_share_act_change') }}
                then 'act'
            when psi >= {{ var('psi_watch_at') }}
                or abs(missing_share - reference_missing_share)
                >= {{ var('missing_share_watch_change') }}
                then 'watch'
            else 'stable'
        end as status
    from indexed

)

select * from final
