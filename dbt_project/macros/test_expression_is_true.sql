{% test expression_is_true(model, expression, column_name=none) %}
    {#-
        A trimmed copy of dbt-utils' generic test `expression_is_true`
        (github.com/dbt-labs/dbt-utils, macros/generic_tests/expression_is_true.sql, Apache-2.0):
        this project installs no dbt packages, because `dbt deps` cannot download them offline.
        Unlike the original, a NULL result fails and `column_name` is not put before the
        expression, so moving to `dbt_utils.expression_is_true` means rewriting the expressions.
    -#}
    {#- Rows for which the SQL boolean `expression` is not true (NULL counts as a failure). -#}
    select *
    from {{ model }}
    where not coalesce(({{ expression }}), false)
{% endtest %}
