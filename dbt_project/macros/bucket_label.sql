{% macro bucket_label(expr, buckets, unknown='unknown') -%}
    {#-
        The label of the bucket `expr` falls in. `buckets` maps the inclusive lower bound of each
        bucket to its label, in increasing order; NULL or below the first bound -> `unknown`.
    -#}
    {%- set bounds = buckets | list -%}
    case
        when {{ expr }} is null or {{ expr }} < {{ bounds[0] }} then '{{ unknown }}'
        {%- for bound in bounds[1:] %}
        when {{ expr }} < {{ bound }} then '{{ buckets[bounds[loop.index0]] }}'
        {%- endfor %}
        else '{{ buckets[bounds[-1]] }}'
    end
{%- endmacro %}
