{% macro new_batches_only(batch_column='batch_id') -%}
    {#-
        A WHERE condition: in an incremental run, only rows of batches newer than the last batch
        the model being built already holds (`batch_column` > max(batch_id) of `this`); in a
        first or `--full-refresh` build, every row (`true`). Batches arrive in increasing
        batch_id order and a batch is processed whole, so "newer than the last held" is exactly
        "not processed yet".
    -#}
    {%- if is_incremental() -%}
        {{ batch_column }} > (select coalesce(max(batch_id), -1) from {{ this }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
