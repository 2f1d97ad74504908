{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
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
