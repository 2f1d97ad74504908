{% macro feature_value_text(value) -%}
    {#-
        A feature value (stored as text) for a sentence: numbers rounded to at most 2 decimals
        with trailing zeros trimmed (`0.520` -> `0.52`, `580.0` -> `580`, `12.50` -> `12.5`),
        other text as is, NULL, empty text and NaN -> `missing`. Rounded as round(x * 100) / 100:
        round(x, 2) rounds the double on DuckDB and its decimal digits on Spark (0.565 is
        0.56499... in binary: 0.56 on one, 0.57 on the other); a whole number rounds alike.
    -#}
    case
        when nullif(trim(cast({{ value }} as string)), '') is null then 'missing'
        when isnan(try_cast({{ value }} as double)) then 'missing'
        when try_cast({{ value }} as double) is not null
            then trim(trailing '.' from trim(trailing '0' from
                printf('%.2f', round(try_cast({{ value }} as double) * 100) / 100 + 0.0)
            ))
        else trim(cast({{ value }} as string))
    end
{%- endmacro %}
