{% macro unpivot_feature_values(source_cte, relation, relation_name, id_column, exclude=[]) -%}
{#-
    One row per (row of `source_cte`, column of `relation`): the relation's name, the row's id as
    text, its batch_id, the column's name, and its value as a number (numeric and boolean
    columns) or as text (text columns). Ids, batch_id, `exclude` and time columns are left out.
    The columns are read from the warehouse when the model runs (its parents are built by then).
-#}
{%- set skipped = [id_column | lower, 'batch_id'] + (exclude | map('lower') | list) -%}
{%- set columns = adapter.get_columns_in_relation(relation) if execute else [] -%}
{%- set selects = [] -%}
{%- for column in columns if column.name | lower not in skipped -%}
    {%- set dtype = column.dtype | lower -%}
    {%- if 'time' in dtype or 'date' in dtype -%}
    {%- elif 'char' in dtype or 'string' in dtype or 'text' in dtype -%}
        {%- do selects.append(
            "select '" ~ relation_name ~ "' as relation, cast(" ~ id_column ~ " as string) as entity_id, batch_id, '"
            ~ column.name | lower ~ "' as column_name, cast(null as double) as number_value, cast("
            ~ column.name ~ " as string) as category_value from " ~ source_cte) -%}
    {%- else -%}
        {%- do selects.append(
            "select '" ~ relation_name ~ "' as relation, cast(" ~ id_column ~ " as string) as entity_id, batch_id, '"
            ~ column.name | lower ~ "' as column_name, cast(" ~ column.name
            ~ " as double) as number_value, cast(null as string) as category_value from " ~ source_cte) -%}
    {%- endif -%}
{%- endfor -%}
{%- if selects -%}
{{ selects | join('\nunion all\n') }}
{%- else -%}
select
    cast(null as string) as relation,
    cast(null as string) as entity_id,
    cast(null as integer) as batch_id,
    cast(null as string) as column_name,
    cast(null as double) as number_value,
    cast(null as string) as category_value
from {{ source_cte }}
where 1 = 0
{%- endif -%}
{%- endmacro %}
