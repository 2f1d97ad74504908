{% test expression_is_true(model, expression, column_name=none) %}
    {#- Rows for which the SQL boolean `expression` is not true (NULL counts as a failure). -#}
    select *
    from {{ model }}
    where not coalesce(({{ expression }}), false)
{% endtest %}
