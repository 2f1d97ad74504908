{% macro integer_power(base, exponent, bits=7) -%}
    {#-
        `base` to the power of a whole `exponent` in 0 .. 2^bits - 1 (NULL outside), by repeated
        squaring: plain floating-point multiplications, which every engine rounds the same way,
        where pow() comes from each engine's math library and differs in the last bit. `base`
        should be a column name: the squares repeat it (2^bits times for the largest).
    -#}
    {%- set state = namespace(square=base, factors=[]) -%}
    {%- for bit in range(bits) -%}
        {%- do state.factors.append(
            'case when floor(' ~ exponent ~ ' / ' ~ 2 ** bit ~ ') % 2 = 1 then '
            ~ state.square ~ ' else 1 end'
        ) -%}
        {%- set state.square = '(' ~ state.square ~ ' * ' ~ state.square ~ ')' -%}
    {%- endfor -%}
    case when {{ exponent }} between 0 and {{ 2 ** bits - 1 }} then
        {{ state.factors | join('\n        * ') }}
    end
{%- endmacro %}
