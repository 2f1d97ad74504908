{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
    {#-
        A trimmed copy of dbt-utils' generic test `accepted_range` (github.com/dbt-labs/dbt-utils,
        macros/generic_tests/accepted_range.sql, Apache-2.0): this project installs no dbt packages,
        because `dbt deps` cannot download them offline. Where packages can be installed, add
        dbt-utils and use `dbt_utils.accepted_range` instead.
    -#}
    {#- Rows whose non-NULL `column_name` lies outside [min_value, max_value] (NULLs pass). -#}
    select *
    from {{ model }}
    where {{ column_name }} is not null
        and (
            1 = 0
            {%- if min_value is not none %}
            or {{ column_name }} {{ '<' if inclusive else '<=' }} {{ min_value }}
            {%- endif %}
            {%- if max_value is not none %}
            or {{ column_name }} {{ '>' if inclusive else '>=' }} {{ max_value }}
            {%- endif %}
        )
{% endtest %}
