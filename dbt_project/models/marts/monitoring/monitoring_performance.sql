-- The deployed model's realised primary metric per task and batch (the model of the task's current
-- deployment, ml.deployments, as int_monitoring_reference picks it), once the batch's labels are
-- known, beside the one measured on the held-out test rows at training: on the rows that arrived
-- in the batch after the model was trained (never a row it learnt from), scored by it. ROC-AUC
-- (binary; ties count half), R-squared (regression), macro F1 over the classes seen in the labels
-- or the predictions (multiclass), as ml.train computes them. Status from the thresholds in
-- dbt_project.yml; a batch with fewer labelled rows than realised_metric_min_rows, or a binary
-- batch with one class only, has no metric and no status. Only tasks whose rows are events (the
-- `arrivals` population: loan applications) are gated on it: the training rows are events too, so
-- a batch's new ones are the same kind of rows. An entity task's new rows are new customers, whose
-- short histories the model reads less well than the training snapshot's (macro F1 0.07 to 0.11
-- and R-squared 0.06 to 0.09 lower with no drift at all, at 50,000 customers): their metric is
-- shown (`is_gated` false), not gated.

with

reference as (select * from {{ ref('int_monitoring_reference') }}),
populations as (select * from {{ ref('monitoring_populations') }}),
feature_values as (select * from {{ ref('monitoring_feature_values') }}),
score_log as (select * from {{ ref('stg_ml__score_log') }}),

deployed as (

    select distinct
        task, deployment_id, run_id, model_name, relation, target, problem, primary_metric,
        training_metric, trained_through_batch, population
    from reference

),

arrivals as (

    select
        deployed.*,
        populations.batch_id,
        populations.entity_id
    from deployed
    inner join populations
        on populations.relation = deployed.relation
        and populations.population = 'arrivals'
        and populations.batch_id > coalesce(deployed.trained_through_batch, -1)

),

labelled as (

    select
        arrivals.*,
        feature_values.number_value as label_number,
        feature_values.category_value as label_text
    from arrivals
    inner join feature_values
        on feature_values.relation = arrivals.relation
        and feature_values.entity_id = arrivals.entity_id
        and feature_values.batch_id = arrivals.batch_id
        and feature_values.column_name = lower(arrivals.target)
    where feature_values.number_value is not null or feature_values.category_value is not null

),

scored_ranked as (

    select
        labelled.*,
        score_log.score,
        score_log.predicted_label,
        row_number() over (
            partition by labelled.task, labelled.entity_id order by score_log.scored_at desc
        ) as recency
    from labelled
    inner join score_log
        on score_log.task = labelled.task
        and score_log.run_id = labelled.run_id
        and score_log.model_name = labelled.model_name
        and score_log.entity_id = labelled.entity_id
        and score_log.batch_id = labelled.batch_id

),

scored as (select * from scored_ranked where recency = 1),

sizes as (

    select
        task,
        batch_id,
        count(*) as row_count,
        sum(case when label_number = 1 then 1 else 0 end) as positives
    from scored
    group by task, batch_id

),

binary_ranked as (

    select
        task,
        batch_id,
        label_number,
        rank() over (partition by task, batch_id order by score) as low_rank,
        count(*) over (partition by task, batch_id, score) as ties
    from scored
    where problem = 'binary'

),

binary_metric as (

    -- Mann-Whitney: (rank sum of the positives - P (P + 1) / 2) / (P N), tied scores share ranks
    select
        binary_ranked.task,
        binary_ranked.batch_id,
        (
            sum(case when label_number = 1 then low_rank + (ties - 1) / 2.0 else 0 end)
            - max(sizes.positives) * (max(sizes.positives) + 1) / 2.0
        ) / nullif(
            cast(max(sizes.positives) as double) * (max(sizes.row_count) - max(sizes.positives)), 0
        ) as realised
    from binary_ranked
    inner join sizes
        on sizes.task = binary_ranked.task and sizes.batch_id = binary_ranked.batch_id
    group by binary_ranked.task, binary_ranked.batch_id

),

regression_means as (

    select task, batch_id, avg(label_number) as mean_label
    from scored
    where problem = 'regression'
    group by task, batch_id

),

regression_metric as (

    select
        scored.task,
        scored.batch_id,
        1 - sum((scored.label_number - scored.score) * (scored.label_number - scored.score))
        / nullif(
            sum(
                (scored.label_number - regression_means.mean_label)
                * (scored.label_number - regression_means.mean_label)
            ),
            0
        ) as realised
    from scored
    inner join regression_means
        on regression_means.task = scored.task and regression_means.batch_id = scored.batch_id
    group by scored.task, scored.batch_id

),

classes as (

    select distinct task, batch_id, label_text as class_label
    from scored
    where problem = 'multiclass'
    union
    select distinct task, batch_id, predicted_label as class_label
    from scored
    where problem = 'multiclass'

),

class_counts as (

    select
        classes.task,
        classes.batch_id,
        classes.class_label,
        sum(case when scored.label_text = classes.class_label
            and scored.predicted_label = classes.class_label then 1 else 0 end) as true_positives,
        sum(case when scored.label_text <> classes.class_label
            and scored.predicted_label = classes.class_label then 1 else 0 end) as false_positives,
        sum(case when scored.label_text = classes.class_label
            and scored.predicted_label <> classes.class_label then 1 else 0 end) as false_negatives
    from classes
    inner join scored
        on scored.task = classes.task and scored.batch_id = classes.batch_id
    group by classes.task, classes.batch_id, classes.class_label

),

multiclass_metric as (

    select
        task,
        batch_id,
        avg(
            coalesce(
                2.0 * true_positives
                / nullif(2 * true_positives + false_positives + false_negatives, 0),
                0
            )
        ) as realised
    from class_counts
    group by task, batch_id

),

realised as (

    select * from binary_metric
    union all
    select * from regression_metric
    union all
    select * from multiclass_metric

),

final as (

    select
        deployed.task,
        sizes.batch_id,
        deployed.deployment_id,
        deployed.run_id,
        deployed.model_name,
        deployed.primary_metric as metric,
        sizes.row_count,
        case
            when sizes.row_count >= {{ var('realised_metric_min_rows') }} then realised.realised
        end as realised_metric,
        deployed.training_metric,
        case
            when sizes.row_count >= {{ var('realised_metric_min_rows') }}
                then deployed.training_metric - realised.realised
        end as metric_drop,
        deployed.population = 'arrivals' as is_gated,
        case
            when sizes.row_count < {{ var('realised_metric_min_rows') }}
                or realised.realised is null
                or deployed.population <> 'arrivals' then null
            when deployed.training_metric - realised.realised
                >= {{ var('realised_metric_act_drop') }} then 'act'
            when deployed.training_metric - realised.realised
                >= {{ var('realised_metric_watch_drop') }} then 'watch'
            else 'stable'
        end as status
    from deployed
    inner join sizes
        on sizes.task = deployed.task
    left join realised
        on realised.task = sizes.task and realised.batch_id = sizes.batch_id

)

select * from final
