"""Fabricated raw batches for the incremental dbt tests (and the measurements of
docs/design/incremental.md): later batches appended to a simulated warehouse with SQL, so the
tests control every cross-batch case exactly instead of relying on the simulator's random mess.

A batch b covers the month [2026-01-01 + (b - 1) months, 2026-01-01 + b months) and is loaded at
its end (`loaded_at`, 00:00). New ids live in a range of their own per batch (b x 10,000,000 + i)
so that a batch can reference the customer a later batch brings.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

ENTITIES = {"customers": "customer_id", "orders": "order_id", "loans": "loan_id"}
FIRST_LOAD = "2026-01-01"
ID_RANGE = 10_000_000
#: Tables that must hold the same rows after a chain of incremental builds and a full refresh.
COMPARED = (
    *(f"staging.stg_{e}{suffix}" for e in ENTITIES for suffix in ("_classified", "", "_rejected")),
    "marts.customer_feature_versions",
    "marts.loan_feature_versions",
    "marts.customer_features",
    "marts.loan_features",
)


@dataclass(frozen=True)
class BatchSize:
    """Rows of a fabricated batch: new customers, orders (of existing and new customers), loans."""

    customers: int = 100
    orders: int = 500
    loans: int = 30


def ensure_batch_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Give raw.* the two last columns batch_id and loaded_at (batch 0, loaded on the as-of date)
    when the simulator that landed them did not."""
    for entity in ENTITIES:
        columns = [r[0] for r in con.execute(f"describe raw.{entity}").fetchall()]
        if "batch_id" not in columns:
            con.execute(f"alter table raw.{entity} add column batch_id integer default 0")
            con.execute(
                f"alter table raw.{entity} add column loaded_at timestamp "
                f"default timestamp '{FIRST_LOAD} 00:00:00'"
            )


def loaded_at(batch: int) -> str:
    return f"timestamp '{FIRST_LOAD}' + interval {batch} month"


def add_batch(
    con: duckdb.DuckDBPyConnection,
    batch: int,
    size: BatchSize = BatchSize(),
    mess: bool = True,
    new_purpose: str | None = None,
) -> None:
    """Append batch `batch` (>= 1) to raw.*: copies of batch-0 rows under new ids, dated in the
    batch's month, of existing and new customers; with `mess`, the cross-batch cases too (see the
    statements); with `new_purpose`, a fifth of its loans have that purpose in messy spellings."""
    ensure_batch_columns(con)
    start = f"(timestamp '{FIRST_LOAD}' + interval {batch - 1} month)"
    end = f"({loaded_at(batch)})"
    seconds = f"cast(epoch({end}) - epoch({start}) as bigint)"
    base = batch * ID_RANGE

    def run(sql: str) -> None:
        con.execute(sql.replace("$START", start).replace("$END", end).replace("$SECS", seconds))

    # new customers, signed up on the first day of the month
    run(f"""
        insert into raw.customers
        select {base} + row_number() over (order by customer_id) as customer_id,
            age, income, gender, region, acquisition_channel, household_size,
            cast($START as date) as signup_date,  -- before any order or application
            customer_satisfaction, segment, {batch}, $END
        from (select * from raw.customers where batch_id = 0 and customer_id is not null
              and age between 18 and 100 order by hash(customer_id, {batch}) limit {size.customers})
    """)
    # orders of existing customers (the order's own customer) and, one in three, new ones
    run(f"""
        insert into raw.orders
        select {base} + rn as order_id,
            case when rn % 3 = 0 then {base} + 1 + rn % {size.customers} else customer_id end,
            $START + to_seconds(hash(order_id, {batch}) % $SECS) as ordered_at,
            amount, discount_pct, items, category, channel, is_returned, {batch}, $END
        from (select *, row_number() over (order by hash(order_id, {batch})) as rn
              from raw.orders where batch_id = 0 and order_id is not null and amount >= 0
              and customer_id <= (select max(customer_id) from raw.customers where batch_id = 0))
        where rn <= {size.orders}
    """)
    purpose = "purpose"
    if new_purpose:
        purpose = f"case when rn % 5 = 0 then {_spellings(new_purpose)} else purpose end"
    run(f"""
        insert into raw.loans
        select {base} + rn as loan_id,
            case when rn % 4 = 0 then {base} + 1 + rn % {size.customers} else customer_id end,
            $START + to_seconds(hash(loan_id, {batch}) % $SECS) as applied_at,
            loan_amount, term,
            {purpose},
            grade, interest_rate, annual_income, employment_length, home_ownership, credit_score,
            debt_to_income, delinquencies_2y, credit_history_years, open_accounts,
            revolving_utilization, defaulted, {batch}, $END
        from (select *, row_number() over (order by hash(loan_id, {batch})) as rn
              from raw.loans where batch_id = 0 and loan_id is not null and loan_amount > 0
              and credit_score between 300 and 850)
        where rn <= {size.loans}
    """)
    if not mess:
        return
    nb = base + ID_RANGE // 2  # ids of the messy rows
    statements = [
        # exact duplicates within the batch (the second copy is duplicate_row)
        f"insert into raw.customers select * from raw.customers where customer_id = {base + 1}",
        f"insert into raw.orders select * from raw.orders where order_id = {base + 1}",
        f"insert into raw.loans select * from raw.loans where loan_id = {base + 1}",
        # an id an earlier batch staged, other content: duplicate_<id> (batch 0's row stays)
        f"""insert into raw.customers select customer_id, 33, income + 1, gender, region,
            acquisition_channel, household_size, signup_date, customer_satisfaction, segment,
            {batch}, $END from raw.customers where customer_id = {10 + batch} and batch_id = 0""",
        f"""insert into raw.orders select order_id, customer_id, ordered_at, amount + 1,
            discount_pct, items, category, channel, is_returned, {batch}, $END
            from raw.orders where order_id = {20 + batch} and batch_id = 0""",
        f"""insert into raw.loans select * replace ({batch} as batch_id, $END as loaded_at,
            loan_amount + 1 as loan_amount) from raw.loans where loan_id = {30 + batch}
            and batch_id = 0""",
        # the same row sent again by a later batch (only the batch columns differ)
        f"""insert into raw.orders select * replace ({batch} as batch_id, $END as loaded_at)
            from raw.orders where order_id = {40 + batch} and batch_id = 0""",
        # in the future of its own batch: dated on its load day
        f"""insert into raw.orders select {nb + 1}, customer_id, $END, amount, discount_pct,
            items, category, channel, is_returned, {batch}, $END from raw.orders
            where order_id = {base + 2}""",
        f"""insert into raw.customers select * replace ({nb + 1} as customer_id,
            cast($END as date) as signup_date) from raw.customers where customer_id = {base + 2}""",
        f"""insert into raw.loans select * replace ({nb + 1} as loan_id,
            $END + interval 1 day as applied_at) from raw.loans where loan_id = {base + 2}""",
        # orphans, and an order of the customer the NEXT batch brings (unknown_customer here)
        f"""insert into raw.orders select * replace ({nb + 2} as order_id,
            999999999 as customer_id) from raw.orders where order_id = {base + 3}""",
        f"""insert into raw.orders select * replace ({nb + 3} as order_id,
            {base + ID_RANGE + 1} as customer_id) from raw.orders where order_id = {base + 4}""",
        f"""insert into raw.loans select * replace ({nb + 3} as loan_id,
            {base + ID_RANGE + 1} as customer_id) from raw.loans where loan_id = {base + 3}""",
        # a customer batch 0 rejected (age out of range), sent again valid: staged by this batch
        f"""insert into raw.customers select * replace (40 as age, {batch} as batch_id,
            $END as loaded_at) from raw.customers where batch_id = 0 and customer_id = (
            select min(customer_id) from raw.customers where batch_id = 0
            and age not between 18 and 100 and customer_id > {100 * batch})""",
        # a missing id and a negative amount
        f"""insert into raw.orders select * replace (null as order_id, -5.0 as amount)
            from raw.orders where order_id = {base + 5}""",
        f"""insert into raw.orders select * replace ({nb + 4} as order_id, -5.0 as amount)
            from raw.orders where order_id = {base + 6}""",
        # a late order: dated before a batch-0 application of its customer (the loan's
        # features must not change: they see the orders known by the loan's batch)
        f"""insert into raw.orders select {nb + 5}, customer_id, applied_at - interval 1 day,
            50.0, 0.1, 1, 'home', 'web', false, {batch}, $END from raw.loans
            where batch_id = 0 and loan_id = (select min(l.loan_id) from raw.loans l
            where l.batch_id = 0 and l.customer_id in (select customer_id from raw.customers
            where batch_id = 0) and l.loan_id > {100 * batch})""",
    ]
    for sql in statements:
        run(sql)


def _spellings(purpose: str) -> str:
    """A SQL CASE over rn giving `purpose` (snake_case) in the simulator's messy spellings."""
    spaced = purpose.replace("_", " ")
    words = [purpose, spaced.title(), purpose.upper(), f" {purpose}", f"{spaced} "]
    cases = " ".join(f"when {i} then '{w}'" for i, w in enumerate(words))
    return f"case (rn // 5) % {len(words)} {cases} end"
