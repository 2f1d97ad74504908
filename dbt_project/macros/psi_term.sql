{% macro psi_term(actual_share, expected_share) -%}
    {#- One bin's term of the population stability index, (a - e) * ln(a / e), both shares floored
        at the var psi_share_floor so that an empty bin (or a category never seen) stays finite. -#}
    (greatest({{ actual_share }}, {{ var('psi_share_floor') }})
        - greatest({{ expected_share }}, {{ var('psi_share_floor') }}))
    * ln(greatest({{ actual_share }}, {{ var('psi_share_floor') }})
        / greatest({{ expected_share }}, {{ var('psi_share_floor') }}))
{%- endmacro %}
