{% test unique_combination_of_columns(model, combination_of_columns) %}
    {#-
        A trimmed copy of dbt-utils' generic test `unique_combination_of_columns`
        (github.com/dbt-labs/dbt-utils, macros/generic_tests/unique_combination_of_columns.sql,
        Apache-2.0): this project installs no dbt packages, because `dbt deps` cannot download them
        offline. Where packages can be installed, add dbt-utils and use
        `dbt_utils.unique_combination_of_columns` instead.
    -#}
    {#- Combinations of the given columns that occur more than once. -#}
    select
        {{ combination_of_columns | join(', ') }},
        count(*) as occurrences
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
{% endtest %}
