{% macro loan_decision_cutoffs(tuned_threshold) -%}
    {#-
        SQL expressions of the two cut-offs of marts.loan_decisions, as a dict with keys
        `approve_below` and `decline_at_or_above`: the absolute dbt vars `loan_approve_below` /
        `loan_decline_at_or_above` when set, else `tuned_threshold` x
        `loan_approve_threshold_factor` (default 0.5) / x `loan_decline_threshold_factor`
        (default 1.0). Inconsistent vars (not a number, a cut-off outside 0..1, a negative factor,
        approve above decline) are a compiler error; a mix of one absolute and one derived cut-off
        is checked row by row by a data test of the mart.
    -#}
    {%- set defaults = {
        'loan_approve_threshold_factor': 0.5,
        'loan_decline_threshold_factor': 1.0,
        'loan_approve_below': none,
        'loan_decline_at_or_above': none,
    } -%}
    {%- set parsed = {} -%}
    {%- for name, default in defaults.items() -%}
        {%- set value = var(name, default) -%}
        {%- if value is none -%}
            {%- set value = default -%}
        {%- endif -%}
        {%- set number = none if value is none or value is boolean else value | float(none) -%}
        {%- if value is not none and number is none -%}
            {{ exceptions.raise_compiler_error(
                "dbt var " ~ name ~ " must be a number, got '" ~ value ~ "'") }}
        {%- endif -%}
        {%- do parsed.update({name: number}) -%}
    {%- endfor -%}
    {%- set approve_factor = parsed['loan_approve_threshold_factor'] -%}
    {%- set decline_factor = parsed['loan_decline_threshold_factor'] -%}
    {%- set approve_below = parsed['loan_approve_below'] -%}
    {%- set decline_at_or_above = parsed['loan_decline_at_or_above'] -%}
    {%- for name in ['loan_approve_threshold_factor', 'loan_decline_threshold_factor'] -%}
        {%- if parsed[name] < 0 -%}
            {{ exceptions.raise_compiler_error(
                "dbt var " ~ name ~ " must be a number >= 0, got " ~ parsed[name]) }}
        {%- endif -%}
    {%- endfor -%}
    {%- for name in ['loan_approve_below', 'loan_decline_at_or_above'] -%}
        {%- if parsed[name] is not none and (parsed[name] < 0 or parsed[name] > 1) -%}
            {{ exceptions.raise_compiler_error(
                "dbt var " ~ name ~ " must be null or a probability in 0..1, got "
                ~ parsed[name]) }}
        {%- endif -%}
    {%- endfor -%}
    {%- if approve_factor > decline_factor -%}
        {{ exceptions.raise_compiler_error(
            "dbt var loan_approve_threshold_factor (" ~ approve_factor ~ ") must not exceed "
            ~ "loan_decline_threshold_factor (" ~ decline_factor ~ "): loans would be approved "
            ~ "at probabilities that are declined") }}
    {%- endif -%}
    {%- if approve_below is not none and decline_at_or_above is not none
        and approve_below > decline_at_or_above -%}
        {{ exceptions.raise_compiler_error(
            "dbt var loan_approve_below (" ~ approve_below ~ ") must not exceed "
            ~ "loan_decline_at_or_above (" ~ decline_at_or_above ~ ")") }}
    {%- endif -%}
    {%- if approve_below is none -%}
        {%- set approve_sql = tuned_threshold ~ ' * ' ~ approve_factor -%}
    {%- else -%}
        {%- set approve_sql = 'cast(' ~ approve_below ~ ' as double)' -%}
    {%- endif -%}
    {%- if decline_at_or_above is none -%}
        {%- set decline_sql = tuned_threshold ~ ' * ' ~ decline_factor -%}
    {%- else -%}
        {%- set decline_sql = 'cast(' ~ decline_at_or_above ~ ' as double)' -%}
    {%- endif -%}
    {{ return({'approve_below': approve_sql, 'decline_at_or_above': decline_sql}) }}
{%- endmacro %}
