{% macro canonical_category(expr, values, aliases={}, fallback=none) -%}
    {#-
        Map a messy category spelling onto one of `values` (snake_case). The text is normalized by
        `normalize_text` first; `aliases` maps other normalized spellings (e.g. `f`) to a value.
        Anything else becomes `fallback` (NULL by default, i.e. treated as missing).
    -#}
    case {{ normalize_text(expr) }}
        {%- for value in values %}
        when '{{ value }}' then '{{ value }}'
        {%- endfor %}
        {%- for spelling, value in aliases.items() %}
        when '{{ spelling }}' then '{{ value }}'
        {%- endfor %}
        else {% if fallback is none %}null{% else %}'{{ fallback }}'{% endif %}
    end
{%- endmacro %}
