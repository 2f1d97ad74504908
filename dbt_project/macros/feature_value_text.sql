{% macro feature_value_text(value) -%}
    {#-
        A feature value (stored as text) for a sentence: numbers rounded to at most 2 decimals
        with trailing zeros trimmed (`0.520` -> `0.52`, `580.0` -> `580`, `12.50` -> `12.5`),
        other text as is, NULL, empty text and NaN -> `missing`.
    -#}
    case
        when nullif(trim(cast({{ value }} as varchar)), '') is null then 'missing'
        when isnan(try_cast({{ value }} as double)) then 'missing'
        when try_cast({{ value }} as double) is not null
            then rtrim(
                rtrim(printf('%.2f', round(try_cast({{ value }} as double), 2) + 0.0), '0'), '.'
            )
        else trim(cast({{ value }} as varchar))
    end
{%- endmacro %}
