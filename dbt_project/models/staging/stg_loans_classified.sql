-- Every raw loan application row, unchanged, with the reason it is rejected (NULL when kept).
-- Classified once here so that stg_loans and stg_loans_rejected split one table.
-- The checks below are this entity's reasons; classify_raw_rows puts the shared ones around them:
-- missing_loan_id, duplicate_row and unknown_customer first, duplicate_loan_id last (the same id
-- with other content: the earliest batch's row is kept, then the first by keep_first_by). A row dated on or
-- after its own loaded_at is in the future; its customer must be staged by a batch <= its own.
-- Incremental (dbt_project.yml): each build classifies the raw rows of the batches not classified yet.

{%- set checks %}
    when try_cast(loan_amount as double) <= 0 then 'non_positive_amount'
    when try_cast(credit_score as integer) not between 300 and 850 then 'credit_score_out_of_range'
    when try_cast(applied_at as timestamp) >= cast(loaded_at as date) then 'applied_in_future'
{% endset %}

{{ classify_raw_rows(
    source('raw', 'loans'),
    id_column='loan_id',
    known_customers=ref('stg_customers'),
    checks=checks,
    keep_first_by=['applied_at', 'customer_id', 'loan_amount', 'term', 'purpose', 'grade',
                   'interest_rate', 'annual_income', 'employment_length', 'home_ownership',
                   'credit_score', 'debt_to_income', 'delinquencies_2y', 'credit_history_years',
                   'open_accounts', 'revolving_utilization', 'defaulted'],
) }}
