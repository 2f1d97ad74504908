-- customer_features has a row for every staged customer and loan_features one for every staged
-- loan (the relationships tests check the other direction). Returns the missing ids.

with

staged_customers as (select customer_id from {{ ref('stg_customers') }}),
customer_features as (select customer_id from {{ ref('customer_features') }}),
staged_loans as (select loan_id from {{ ref('stg_loans') }}),
loan_features as (select loan_id from {{ ref('loan_features') }}),

missing_customers as (

    select customer_id from staged_customers
    except
    select customer_id from customer_features

),

missing_loans as (

    select loan_id from staged_loans
    except
    select loan_id from loan_features

),

final as (

    select 'customer' as entity, customer_id as missing_id from missing_customers
    union all
    select 'loan' as entity, loan_id as missing_id from missing_loans

)

select * from final
