{% macro reason_text(label, value, contribution) -%}
    {#-
        A plain-word reason `<label> <value> raises risk` (contribution > 0) or
        `<label> <value> lowers risk` (contribution < 0), the value formatted by
        feature_value_text; NULL when the contribution is 0 or NULL (no direction).
    -#}
    {{ label }} || ' ' || {{ feature_value_text(value) }} || case
        when {{ contribution }} > 0 then ' raises risk'
        when {{ contribution }} < 0 then ' lowers risk'
    end
{%- endmacro %}
