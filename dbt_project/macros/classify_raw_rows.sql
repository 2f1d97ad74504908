{% macro classify_raw_rows(raw, id_column, checks, keep_first_by, known_customers=none) -%}
{#-
    The whole body of a stg_<entity>_classified model (written unindented, like a model, which
    is incremental: see new_batches_only): every row of `raw` of the batches not classified
    yet, unchanged, plus `rejection_reason` (NULL when staging keeps the row). Reasons, first
    match wins: missing_<id> (the id is NULL or not a whole number), duplicate_row (every copy
    of an exact duplicate row but one: copies share their batch, so duplicates are within a
    batch), unknown_customer (only with `known_customers`: the row's customer_id is not one of
    theirs from a batch <= the row's), the model's own `checks` (`when <condition> then
    '<reason>'` lines, in order), then duplicate_<id> (the same id with different content among
    the rows passing every other check: the first by batch_id, then `keep_first_by`, is kept;
    in an incremental run an id kept by an earlier batch, found in `this`, keeps that row).
    Every rule reads only the row's own batch and earlier ones, so a `--full-refresh` build
    classifies every row exactly as the chain of incremental builds did.
-#}
{%- set matched = known_customers is not none -%}
with

source as (

    select * from {{ raw }}
    where {{ new_batches_only() }}

),
{%- if matched %}
customers as (select customer_id, batch_id from {{ known_customers }}),
{%- endif %}
{%- if is_incremental() %}

kept_before as (

    -- ids an earlier batch already staged: a later row with the id is a duplicate
    select try_cast({{ id_column }} as bigint) as kept_id
    from {{ this }}
    where rejection_reason is null

),
{%- endif %}

copies_numbered as (

    -- copy_number > 1 marks the second and later copies of an exact duplicate row
    select
        *,
        -- numbered within the copies of the whole row: every column, including any added later
        {{ copy_number('source') }} as copy_number

    from source

),
{%- if matched %}

customer_matched as (

    -- the customer must have been staged by the row's batch or an earlier one
    select
        copies_numbered.*,
        customers.customer_id is not null as has_known_customer

    from copies_numbered
    left join customers
        on try_cast(copies_numbered.customer_id as bigint) = customers.customer_id
        and customers.batch_id <= copies_numbered.batch_id

),
{%- endif %}

checked as (

    -- the contract's reasons, first match wins
    select
        *,
        case
            when try_cast({{ id_column }} as bigint) is null then 'missing_{{ id_column }}'
            when copy_number > 1 then 'duplicate_row'
            {%- if matched %}
            when not has_known_customer then 'unknown_customer'
            {%- endif %}
            {%- for check in checks.strip().splitlines() %}
            {{ check.strip() }}
            {%- endfor %}
        end as check_reason

    from {{ 'customer_matched' if matched else 'copies_numbered' }}

),

id_ranked as (

    -- among rows that pass every check, the same id with different content keeps the first by
    -- batch (the earliest batch wins), then keep_first_by (the earliest event, then the
    -- smallest values, column by column)
    select
        *,
        row_number() over (
            partition by try_cast({{ id_column }} as bigint), check_reason is null
            order by
                batch_id,
                {{ keep_first_by | join(',\n                ') }}
        ) as id_rank

    from checked

),
{%- if is_incremental() %}

id_seen as (

    select
        id_ranked.*,
        kept_before.kept_id is not null as is_kept_before

    from id_ranked
    left join kept_before
        on try_cast(id_ranked.{{ id_column }} as bigint) = kept_before.kept_id

),
{%- endif %}

final as (

    select
        * except (
            copy_number,
            {{ 'has_known_customer, ' if matched else '' }}check_reason,
            id_rank{{ ', is_kept_before' if is_incremental() else '' }}
        ),
        case
            when check_reason is not null then check_reason
            when id_rank > 1 then 'duplicate_{{ id_column }}'
            {%- if is_incremental() %}
            when is_kept_before then 'duplicate_{{ id_column }}'
            {%- endif %}
        end as rejection_reason

    from {{ 'id_seen' if is_incremental() else 'id_ranked' }}

)

select * from final
{%- endmacro %}
