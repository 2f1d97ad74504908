{{ config(materialized='ephemeral', tags=['ml_scores']) }}
-- Every value each task's drift is measured on: per task, batch and row of the task's population,
-- each feature of the deployed model's reference profile and the deployed model's score of that
-- row (the positive class's probability, the prediction, or the predicted class). The deployed
-- model is the one of the task's current deployment (int_monitoring_reference); its scores are
-- its own rows of ml.score_log, whichever command logged them (ml.train, ml.score, a deploy).
-- A row of a snapshot whose version is older than the batch has its day-count features (the var
-- monitoring_day_count_columns: days from an event to the row's as-of) aged to the batch's
-- as-of: nothing happened to the row since, so that is the value a rebuild as of the batch
-- would give.

with

reference as (select * from {{ ref('int_monitoring_reference') }}),
populations as (select * from {{ ref('monitoring_populations') }}),
feature_values as (select * from {{ ref('monitoring_feature_values') }}),
score_log as (select * from {{ ref('stg_ml__score_log') }}),

deployed as (

    select distinct task, run_id, model_name, relation, population, problem
    from reference

),

profiled_features as (

    select distinct task, feature, kind
    from reference
    where subject = 'feature'

),

task_rows as (

    select
        deployed.task,
        deployed.run_id,
        deployed.model_name,
        deployed.relation,
        deployed.problem,
        populations.batch_id,
        populations.entity_id,
        populations.version_batch_id,
        populations.days_since_version
    from deployed
    inner join populations
        on populations.relation = deployed.relation
        and populations.population = deployed.population

),

feature_rows as (

    select
        task_rows.task,
        task_rows.batch_id,
        'feature' as subject,
        profiled_features.feature,
        profiled_features.kind,
        case
            when feature_values.column_name in (
                {%- for name in var('monitoring_day_count_columns') %}
                '{{ name }}'{{ ',' if not loop.last }}
                {%- endfor %}
            )
                then feature_values.number_value + task_rows.days_since_version
            else feature_values.number_value
        end as number_value,
        feature_values.category_value
    from task_rows
    inner join feature_values
        on feature_values.relation = task_rows.relation
        and feature_values.entity_id = task_rows.entity_id
        and feature_values.batch_id = task_rows.version_batch_id
    inner join profiled_features
        on profiled_features.task = task_rows.task
        and profiled_features.feature = feature_values.column_name

),

scores_ranked as (

    -- the deployed model's latest score of each row version
    select
        task_rows.task,
        task_rows.batch_id,
        task_rows.problem,
        score_log.score,
        score_log.predicted_label,
        row_number() over (
            partition by task_rows.task, task_rows.batch_id, task_rows.entity_id
            order by score_log.scored_at desc
        ) as recency
    from task_rows
    inner join score_log
        on score_log.task = task_rows.task
        and score_log.run_id = task_rows.run_id
        and score_log.model_name = task_rows.model_name
        and score_log.entity_id = task_rows.entity_id
        and score_log.batch_id = task_rows.version_batch_id

),

score_rows as (

    select
        task,
        batch_id,
        'score' as subject,
        'score' as feature,
        case when problem = 'multiclass' then 'categorical' else 'numeric' end as kind,
        case when problem = 'multiclass' then cast(null as double) else score end as number_value,
        case when problem = 'multiclass' then predicted_label end as category_value
    from scores_ranked
    where recency = 1

),

final as (

    select * from feature_rows
    union all
    select * from score_rows

)

select * from final
