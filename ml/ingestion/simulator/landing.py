"""Landing: the raw tables as a source system hands them over, with the designed mess, as Arrow.

A table is first a list of chunks, each a dict of equally long numpy columns (a nullable column's
NULLs in "<column>.null"); the big clean chunk is never copied, the mess rows (extra rows, exact
duplicates) form a small second chunk. Text is dictionary-encoded over the vocabulary's words.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ml.ingestion.simulator.sampling import Vocabulary, mask, rows_hit, spell
from ml.ingestion.simulator.world import (
    ACQUISITION_WORDS,
    CATEGORY_WORDS,
    DAY_S,
    EMPLOYMENT,
    GENDER_WORDS,
    GRADE_WORDS,
    HOME_WORDS,
    ORDER_CHANNEL_WORDS,
    PERSONA_LABELS,
    PURPOSE_WORDS,
    RATES,
    REGION_WORDS,
    TERMS,
    US,
)

_Chunk = dict[str, np.ndarray]


def _take(chunk: _Chunk, idx: np.ndarray) -> _Chunk:
    return {name: values[idx] for name, values in chunk.items()}


def _concat(chunks: list[_Chunk]) -> _Chunk:
    return {name: np.concatenate([ch[name] for ch in chunks]) for name in chunks[0]}


def _length(chunk: _Chunk) -> int:
    return len(next(iter(chunk.values())))


def arrow_column(chunk: _Chunk, name: str, kind: pa.DataType | Vocabulary | list[str]) -> pa.Array:
    """Column `name` of `chunk` as Arrow: of type `kind`, or dictionary-encoded text when `kind`
    is a vocabulary or a list of words (the values are their indices)."""
    nulls = chunk.get(f"{name}.null")
    if nulls is not None and not nulls.any():
        nulls = None
    values = chunk[name]
    if isinstance(kind, pa.DataType):
        return pa.array(values, type=kind, mask=nulls)
    dictionary = kind.dictionary if isinstance(kind, Vocabulary) else pa.array(kind, pa.string())
    indices = pa.array(values.astype(np.int8, copy=False), type=pa.int8(), mask=nulls)
    return pa.DictionaryArray.from_arrays(indices, dictionary)


def _land(
    rng: np.random.Generator,
    chunks: list[_Chunk],
    schema: dict[str, pa.DataType | Vocabulary | list[str]],
    duplicate_rate: float,
) -> pa.Table:
    """The Arrow table of `chunks`, plus exact copies of `duplicate_rate` of its rows at the end."""
    sizes = [_length(ch) for ch in chunks]
    n_dup = int(round(sum(sizes) * duplicate_rate))
    tail = chunks[1:]
    if n_dup:
        idx = np.sort(rng.choice(sum(sizes), size=n_dup, replace=False))
        bounds = np.cumsum([0, *sizes])
        for ch, lo, hi in zip(chunks, bounds[:-1], bounds[1:], strict=True):
            tail.append(_take(ch, idx[(idx >= lo) & (idx < hi)] - lo))
    parts = [chunks[0], _concat(tail)] if tail else [chunks[0]]
    return pa.table(
        {
            name: pa.chunked_array([arrow_column(part, name, kind) for part in parts])
            for name, kind in schema.items()
        }
    )


_TIMESTAMP = pa.timestamp("us")


def raw_customers(
    rng: np.random.Generator,
    c: dict[str, np.ndarray],
    satisfaction: np.ndarray,
    as_of_day: int,
    first_id: int = 1,
) -> pa.Table:
    """Every customer once, ids from `first_id` (bad ages, missing values, future signups, wrong
    segment labels), plus exact duplicates."""
    n = len(c["age"])
    age = c["age"].copy()
    bad_age = rows_hit(rng, n, RATES["customers.age_out_of_range"])
    age[bad_age] = rng.choice(np.array([0, 150, -1, 200], dtype=np.int32), len(bad_age))
    young = c["age"] < 25
    income_null = mask(
        rng,
        n,
        np.where(young, RATES["customers.income_null_young"], RATES["customers.income_null_other"]),
    )
    signup = c["signup_day"].copy()
    future = rows_hit(rng, n, RATES["customers.signup_in_future"])
    signup[future] = as_of_day + rng.integers(1, 400, len(future))
    observed_persona = c["persona"].copy()
    wrong = rows_hit(rng, n, RATES["customers.segment_wrong"])
    observed_persona[wrong] = (observed_persona[wrong] + rng.integers(1, 4, len(wrong))) % 4
    chunk = {
        "customer_id": np.arange(first_id, first_id + n, dtype=np.int64),
        "age": age,
        "age.null": mask(rng, n, RATES["customers.age_null"]),
        "income": c["income"],
        "income.null": income_null,
        "gender": c["gender_word"],
        "gender.null": mask(rng, n, RATES["customers.gender_null"]),
        "region": c["region_word"],
        "acquisition_channel": c["channel_word"],
        "household_size": c["household"],
        "household_size.null": mask(rng, n, RATES["customers.household_size_null"]),
        "signup_date": signup.astype(np.int32),
        "customer_satisfaction": satisfaction,
        "customer_satisfaction.null": mask(rng, n, RATES["customers.satisfaction_null"]),
        "segment": observed_persona,
        "segment.null": mask(rng, n, RATES["customers.segment_null"]),
    }
    schema = {
        "customer_id": pa.int64(),
        "age": pa.int32(),
        "income": pa.float64(),
        "gender": GENDER_WORDS,
        "region": REGION_WORDS,
        "acquisition_channel": ACQUISITION_WORDS,
        "household_size": pa.int32(),
        "signup_date": pa.date32(),
        "customer_satisfaction": pa.float64(),
        "segment": PERSONA_LABELS,
    }
    return _land(rng, [chunk], schema, RATES["customers.duplicate_rows"])


def raw_orders(
    rng: np.random.Generator, n: int, o: dict[str, np.ndarray], as_of_day: int, first_id: int = 1
) -> pa.Table:
    """Clean history (ids from `first_id`) + extra messy rows (orphans, future, negative, missing
    amount) numbered after it; orphans name customers above the `n` that exist."""
    m = len(o["amount"])
    clean = {
        "order_id": o["order_id"],
        "customer_id": o["customer_id"],
        "ordered_at": o["ordered_at"],
        "amount": o["amount"],
        "amount.null": np.zeros(m, dtype=bool),
        "discount_pct": o["discount"],
        "items": o["items"],
        "category": o["category_word"],
        "category.null": mask(rng, m, RATES["orders.category_null"]),
        "channel": o["channel_word"],
        "is_returned": o["returned"],
    }
    extra: dict[str, int] = {
        kind: int(round(m * RATES[f"orders.{kind}"]))
        for kind in ("orphan", "in_future", "negative_amount", "amount_null")
    }
    n_extra = sum(extra.values())
    mess = _take(clean, rng.integers(0, max(m, 1), n_extra))  # n_extra is 0 when m is
    mess["order_id"] = np.arange(first_id + m, first_id + m + n_extra, dtype=np.int64)
    mess["category.null"] = mask(rng, n_extra, RATES["orders.category_null"])
    kinds = np.repeat(np.arange(4), list(extra.values()))
    mess["customer_id"][kinds == 0] = n + 1 + rng.integers(0, max(n // 10, 10), extra["orphan"])
    mess["ordered_at"][kinds == 1] = (
        as_of_day * DAY_S + rng.integers(DAY_S, 300 * DAY_S, extra["in_future"])
    ) * US
    mess["amount"][kinds == 2] = -np.abs(mess["amount"][kinds == 2])
    mess["amount.null"][kinds == 3] = True
    schema = {
        "order_id": pa.int64(),
        "customer_id": pa.int64(),
        "ordered_at": _TIMESTAMP,
        "amount": pa.float64(),
        "discount_pct": pa.float64(),
        "items": pa.int32(),
        "category": CATEGORY_WORDS,
        "channel": ORDER_CHANNEL_WORDS,
        "is_returned": pa.bool_(),
    }
    return _land(rng, [clean, mess], schema, RATES["orders.duplicate_rows"])


def raw_loans(
    rng: np.random.Generator,
    n: int,
    ln: dict[str, np.ndarray],
    as_of_day: int,
    first_id: int = 1,
    purposes: Vocabulary = PURPOSE_WORDS,
) -> pa.Table:
    """Every loan, ids from `first_id` (orphans, future applications, bad amounts and scores,
    missing values), plus exact duplicates; the outcome `defaulted` is the label."""
    k = len(ln["cust"])
    loan_cust = ln["cust"] + 1
    orphan = rows_hit(rng, k, RATES["loans.orphan"])
    loan_cust[orphan] = n + 1 + rng.integers(0, max(n // 10, 10), len(orphan))
    applied = ln["applied_s"].copy()
    fut = rows_hit(rng, k, RATES["loans.in_future"])
    applied[fut] = as_of_day * DAY_S + rng.integers(DAY_S, 300 * DAY_S, len(fut))
    amount = ln["loan_amount"].copy()
    bad_amt = rows_hit(rng, k, RATES["loans.non_positive_amount"])
    amount[bad_amt] = rng.choice(np.array([0.0, -1000.0, -5000.0]), len(bad_amt))
    score = ln["credit_score"].copy()
    bad_score = rows_hit(rng, k, RATES["loans.credit_score_out_of_range"])
    score[bad_score] = rng.choice(np.array([0, 999], dtype=np.int32), len(bad_score))
    emp_null = mask(rng, k, RATES["loans.employment_length_null"])
    emp_codes = np.where(rng.random(k) < 0.03, len(EMPLOYMENT), ln["emp_years"])  # n/a
    chunk = {
        "loan_id": np.arange(first_id, first_id + k, dtype=np.int64),
        "customer_id": loan_cust,
        "applied_at": applied * US,
        "loan_amount": amount,
        "term": ln["term60"].astype(np.int8),
        "purpose": ln["purpose_word"],
        "grade": spell(rng, ln["grade"], GRADE_WORDS),
        "interest_rate": ln["interest"],
        "annual_income": ln["annual_income"],
        "annual_income.null": mask(rng, k, RATES["loans.annual_income_null"]),
        "employment_length": emp_codes,
        "employment_length.null": emp_null,
        "home_ownership": ln["home_word"],
        "credit_score": score,
        "debt_to_income": ln["dti"],
        "debt_to_income.null": mask(rng, k, RATES["loans.debt_to_income_null"]),
        "delinquencies_2y": ln["delinq"],
        "credit_history_years": ln["history"],
        "open_accounts": ln["open_acc"],
        "revolving_utilization": ln["revol"],
        "revolving_utilization.null": mask(rng, k, RATES["loans.revolving_utilization_null"]),
        "defaulted": ln["defaulted"],
    }
    schema = {
        "loan_id": pa.int64(),
        "customer_id": pa.int64(),
        "applied_at": _TIMESTAMP,
        "loan_amount": pa.float64(),
        "term": TERMS,
        "purpose": purposes,
        "grade": GRADE_WORDS,
        "interest_rate": pa.float64(),
        "annual_income": pa.float64(),
        "employment_length": [*EMPLOYMENT, "n/a"],
        "home_ownership": HOME_WORDS,
        "credit_score": pa.int32(),
        "debt_to_income": pa.float64(),
        "delinquencies_2y": pa.int32(),
        "credit_history_years": pa.float64(),
        "open_accounts": pa.int32(),
        "revolving_utilization": pa.float64(),
        "defaulted": pa.int32(),
    }
    return _land(rng, [chunk], schema, RATES["loans.duplicate_rows"])


def mess_orders(m: int) -> int:
    """How many messy extra rows `raw_orders` adds to `m` clean orders."""
    kinds = ("orphan", "in_future", "negative_amount", "amount_null")
    return sum(int(round(m * RATES[f"orders.{kind}"])) for kind in kinds)


def landed_rows(clean: int, table: str) -> int:
    """Rows `raw_<table>` lands for `clean` entities: the messy extras, then the duplicates."""
    rows = clean + mess_orders(clean) if table == "orders" else clean
    return rows + int(round(rows * RATES[f"{table}.duplicate_rows"]))


def with_batch(table: pa.Table, batch_id: int, loaded_at_us: int | None) -> pa.Table:
    """`table` with the batch columns last: `batch_id` INTEGER and, when given, `loaded_at`
    TIMESTAMP (microseconds, no zone)."""
    n = table.num_rows
    table = table.append_column("batch_id", pa.array(np.full(n, batch_id, np.int32), pa.int32()))
    if loaded_at_us is None:
        return table
    loaded = pa.array(np.full(n, loaded_at_us, np.int64), pa.int64()).cast(_TIMESTAMP)
    return table.append_column("loaded_at", loaded)
