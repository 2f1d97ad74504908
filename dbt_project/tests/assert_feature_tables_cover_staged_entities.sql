-- customer_features has a row for every staged customer and loan_features one for every staged
-- loan (the relationships tests check the other direction). Returns the missing ids.

with

customers as (

    select * from {{ ref('stg_customers') }}

),

customer_features as (

    select * from {{ ref('customer_features') }}

),

loans as (

    select * from {{ ref('stg_loans') }}

),

loan_features as (

    select * from {{ ref('loan_features') }}

),

missing_customers as (

    select
        'customer' as entity,
        customers.customer_id as missing_id
    from customers
    anti join customer_features
        on customers.customer_id = customer_features.customer_id

),

missing_loans as (

    select
        'loan' as entity,
        loans.loan_id as missing_id
    from loans
    anti join loan_features
        on loans.loan_id = loan_features.loan_id

),

final as (

    select * from missing_customers
    union all
    select * from missing_loans

)

select * from final
