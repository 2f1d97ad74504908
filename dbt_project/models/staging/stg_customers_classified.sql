-- Every raw customer row, unchanged, with the reason it is rejected (NULL when it is kept).
-- Classified once here so that stg_customers and stg_customers_rejected split one table.
-- The checks below are this entity's reasons; classify_raw_rows puts the shared ones around them:
-- missing_customer_id and duplicate_row first, duplicate_customer_id last (the same id with other
-- content: the earliest batch's row is kept, then the first by keep_first_by). A row dated on or
-- after its own loaded_at is in the future.
-- Incremental (dbt_project.yml): each build classifies the raw rows of the batches not classified yet.

{%- set checks %}
    when try_cast(age as integer) not between 18 and 100 then 'age_out_of_range'
    when try_cast(signup_date as date) >= cast(loaded_at as date) then 'signup_in_future'
{% endset %}

{{ classify_raw_rows(
    source('raw', 'customers'),
    id_column='customer_id',
    checks=checks,
    keep_first_by=['signup_date', 'age', 'income', 'gender', 'region', 'acquisition_channel',
                   'household_size', 'customer_satisfaction', 'segment'],
) }}
