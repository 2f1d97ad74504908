{% macro classify_raw_rows(raw, id_column, checks, keep_first_by, known_customers=none) -%}
{#-
    The whole body of a stg_<entity>_classified model (written unindented, like a model): every
    row of `raw`, unchanged, plus `rejection_reason` (NULL when staging keeps the row). Reasons,
    first match wins: missing_<id> (the id is NULL or not a whole number), duplicate_row (every
    copy of an exact duplicate row but one), unknown_customer (only with `known_customers`: the
    row's customer_id is not one of theirs), the model's own `checks` (`when <condition> then
    '<reason>'` lines, in order), then duplicate_<id> (the same id with different content among
    the rows passing every other check: the first by `keep_first_by` is kept).
-#}
{%- set matched = known_customers is not none -%}
with

source as (select * from {{ raw }}),
{%- if matched %}
customers as (select * from {{ known_customers }}),
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

    select
        copies_numbered.*,
        customers.customer_id is not null as has_known_customer

    from copies_numbered
    left join customers
        on try_cast(copies_numbered.customer_id as bigint) = customers.customer_id

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
    -- keep_first_by (the earliest event, then the smallest values, column by column)
    select
        *,
        row_number() over (
            partition by try_cast({{ id_column }} as bigint), check_reason is null
            order by
                {{ keep_first_by | join(',\n                ') }}
        ) as id_rank

    from checked

),

final as (

    select
        * except (copy_number, {{ 'has_known_customer, ' if matched else '' }}check_reason, id_rank),
        case
            when check_reason is not null then check_reason
            when id_rank > 1 then 'duplicate_{{ id_column }}'
        end as rejection_reason

    from id_ranked

)

select * from final
{%- endmacro %}
