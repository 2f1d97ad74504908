"""Property tests of the simulator: invariants that hold for any number of customers and any seed.

Hypothesis draws (customers, seed); every test simulates in memory (no warehouse) and checks one
family of invariants against the designed mess (docs/data_contract.md). Derandomized, so a run is
reproducible, and kept small (tens of examples, a few hundred customers at most) to stay fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ml.ingestion.simulator import RATES, Simulation, simulate, world

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None)
CUSTOMERS = st.integers(min_value=1, max_value=400)
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)

AS_OF = datetime.combine(world.configured_as_of(), datetime.min.time())
START = datetime.combine(world.START_DATE, datetime.min.time())

#: Columns the contract never leaves NULL (everything else may be NULL by design).
NOT_NULL = {
    "raw.customers": [
        "customer_id",
        "region",
        "acquisition_channel",
        "signup_date",
    ],
    "raw.orders": [
        "order_id",
        "customer_id",
        "ordered_at",
        "discount_pct",
        "items",
        "channel",
        "is_returned",
    ],
    "raw.loans": [
        "loan_id",
        "customer_id",
        "applied_at",
        "loan_amount",
        "term",
        "purpose",
        "grade",
        "interest_rate",
        "home_ownership",
        "credit_score",
        "delinquencies_2y",
        "credit_history_years",
        "open_accounts",
        "defaulted",
    ],
    "sim.customer_truth": ["customer_id", "expected_satisfaction", "noise_sd", "persona"],
    "sim.loan_truth": ["loan_id", "default_probability"],
}


def _property(test: Callable[[int, int], None]) -> Callable[..., None]:
    """Run `test(n, seed)` on drawn (customers, seed) pairs, a single customer first."""
    return SETTINGS(given(n=CUSTOMERS, seed=SEEDS)(example(n=1, seed=0)(test)))


@functools.lru_cache(maxsize=128)
def _sim(n: int, seed: int) -> Simulation:
    """Simulations are pure functions of (n, seed): share them between the tests."""
    return simulate(n, seed)


def _df(sim: Simulation, name: str) -> pd.DataFrame:
    return sim.tables[name].to_pandas()


def _clean_rows(distinct_ids: int, table: str, kinds: tuple[str, ...]) -> int:
    """How many clean rows there were, given the distinct ids after the designed extra rows."""
    for m in range(distinct_ids, -1, -1):
        if m + sum(round(m * RATES[f"{table}.{kind}"]) for kind in kinds) == distinct_ids:
            return m
    raise AssertionError(f"no clean row count gives {distinct_ids} ids")


def _unknown_ids(n: int) -> tuple[int, int]:
    """The designed unknown-customer ids (orphans) lie in [low, high)."""
    return n + 1, n + 1 + max(n // 10, 10)


def _assert_exact_duplicates(df: pd.DataFrame, key: str, rate: float) -> None:
    """Ids are unique apart from the designed duplicates, which are exact copies of a row."""
    distinct = df[key].nunique()
    assert len(df) - distinct == round(distinct * rate)
    assert len(df.drop_duplicates()) == distinct
    assert sorted(df[key].unique()) == list(range(1, distinct + 1))


@_property
def test_truth_tables_cover_every_customer_and_loan(n: int, seed: int) -> None:
    sim = _sim(n, seed)
    truth = sim.tables["sim.customer_truth"]
    assert truth["customer_id"].to_pylist() == list(range(1, n + 1))
    raw_customers = set(pc.unique(sim.tables["raw.customers"]["customer_id"]).to_pylist())
    assert raw_customers == set(range(1, n + 1))
    loan_ids = set(pc.unique(sim.tables["raw.loans"]["loan_id"]).to_pylist())
    loan_truth = sim.tables["sim.loan_truth"]["loan_id"].to_pylist()
    assert sorted(loan_ids) == loan_truth == list(range(1, len(loan_truth) + 1))
    assert sim.rows["sim.customer_truth"] == sim.customers == n


@_property
def test_probabilities_and_labels_are_consistent(n: int, seed: int) -> None:
    sim = _sim(n, seed)
    prob = sim.tables["sim.loan_truth"]["default_probability"].to_numpy()
    assert ((prob > 0.0) & (prob < 1.0)).all()
    loans = _df(sim, "raw.loans").drop_duplicates("loan_id").sort_values("loan_id")
    assert set(loans["defaulted"]) <= {0, 1}
    if len(loans):
        assert sim.meta["default_rate"] == loans["defaulted"].mean()
    if len(prob) >= 5:  # the intercept puts the mean default probability on the target
        assert abs(prob.mean() - world.TARGET_DEFAULT_RATE) < 1e-9
    truth = _df(sim, "sim.customer_truth")
    assert set(truth["persona"]) <= set(world.PERSONAS)
    assert (truth["noise_sd"] > 0).all()
    segment = _df(sim, "raw.customers")["segment"].dropna()
    assert set(segment) <= set(world.PERSONA_LABELS)
    satisfaction = _df(sim, "raw.customers")["customer_satisfaction"].dropna()
    assert satisfaction.between(1.0, 10.0).all()


@_property
def test_every_order_and_loan_belongs_to_a_customer_or_a_designed_unknown(
    n: int, seed: int
) -> None:
    sim = _sim(n, seed)
    low, high = _unknown_ids(n)
    orders = _df(sim, "raw.orders")
    m = _clean_rows(
        orders["order_id"].nunique(),
        "orders",
        ("orphan", "in_future", "negative_amount", "amount_null"),
    )
    orphan_block = orders["order_id"].between(m + 1, m + round(m * RATES["orders.orphan"]))
    assert orders.loc[~orphan_block, "customer_id"].between(1, n).all()
    assert orders.loc[orphan_block, "customer_id"].between(low, high - 1).all()
    loans = _df(sim, "raw.loans")
    known = loans["customer_id"].between(1, n)
    assert (known | loans["customer_id"].between(low, high - 1)).all()


@_property
def test_ids_are_unique_apart_from_designed_exact_duplicates(n: int, seed: int) -> None:
    sim = _sim(n, seed)
    customers = _df(sim, "raw.customers")
    _assert_exact_duplicates(customers, "customer_id", RATES["customers.duplicate_rows"])
    assert customers["customer_id"].nunique() == n
    _assert_exact_duplicates(_df(sim, "raw.orders"), "order_id", RATES["orders.duplicate_rows"])
    _assert_exact_duplicates(_df(sim, "raw.loans"), "loan_id", RATES["loans.duplicate_rows"])


@_property
def test_timestamps_precede_the_as_of_date_except_designed_future_rows(n: int, seed: int) -> None:
    sim = _sim(n, seed)
    customers = _df(sim, "raw.customers").drop_duplicates("customer_id")
    signup = pd.to_datetime(customers.set_index("customer_id")["signup_date"])
    assert (signup >= START).all()
    assert (signup < AS_OF + timedelta(days=400)).all()

    orders = _df(sim, "raw.orders").drop_duplicates("order_id").sort_values("order_id")
    kinds = ("orphan", "in_future", "negative_amount", "amount_null")
    m = _clean_rows(len(orders), "orders", kinds)
    sizes = [round(m * RATES[f"orders.{kind}"]) for kind in kinds]
    first_future = m + sizes[0] + 1
    future_block = orders["order_id"].between(first_future, first_future + sizes[1] - 1)
    assert (orders.loc[future_block, "ordered_at"] > AS_OF).all()
    assert orders.loc[~future_block, "ordered_at"].between(START, AS_OF, inclusive="left").all()
    # clean orders come after the customer's signup (unless that signup is a designed future one)
    clean = orders[orders["order_id"] <= m]
    their_signup = signup.reindex(clean["customer_id"]).to_numpy()
    real = their_signup < np.datetime64(AS_OF)
    assert (clean["ordered_at"].to_numpy()[real] >= their_signup[real]).all()
    # and are generated in time order within each customer
    assert all(clean.groupby("customer_id")["ordered_at"].is_monotonic_increasing)

    loans = _df(sim, "raw.loans").drop_duplicates("loan_id")
    future = loans["applied_at"] >= AS_OF
    assert (
        loans.loc[future, "applied_at"]
        .between(AS_OF + timedelta(days=1), AS_OF + timedelta(days=300))
        .all()
    )
    assert (loans["applied_at"] >= START + timedelta(days=7)).all()


@_property
def test_no_nan_and_no_null_where_the_contract_forbids_it(n: int, seed: int) -> None:
    sim = _sim(n, seed)
    for name, table in sim.tables.items():
        for column in table.column_names:
            values = table[column]
            if pa.types.is_floating(values.type):  # a missing value is NULL, never NaN
                assert not pc.any(pc.is_nan(values)).as_py(), (name, column)
        for column in NOT_NULL[name]:
            assert table[column].null_count == 0, (name, column)


@_property
def test_values_stay_in_their_designed_ranges(n: int, seed: int) -> None:
    sim = _sim(n, seed)
    customers = _df(sim, "raw.customers")
    age = customers["age"].dropna()
    assert (age.between(18, 90) | age.isin([0, 150, -1, 200])).all()
    assert customers["household_size"].dropna().between(1, 6).all()
    canonical = customers["region"].str.strip().str.lower()
    assert set(canonical) <= set(world.REGIONS)
    orders = _df(sim, "raw.orders")
    assert orders["discount_pct"].between(0.0, 0.6).all()
    assert orders["items"].between(1, 20).all()
    category = orders["category"].dropna().str.strip().str.lower().str.replace(" ", "_")
    assert set(category) <= set(world.CATEGORIES)
    loans = _df(sim, "raw.loans")
    score = loans["credit_score"]
    assert (score.between(300, 850) | score.isin([0, 999])).all()
    assert loans["debt_to_income"].dropna().between(0.0, 1.0).all()
    assert loans["revolving_utilization"].dropna().between(0.0, 1.5).all()
    assert loans["interest_rate"].between(5.0, 30.0).all()
    assert set(loans["term"]) <= {" 36 months", " 60 months"}


@settings(max_examples=10, deadline=None, derandomize=True, database=None)
@given(n=CUSTOMERS, seed=SEEDS)
@example(n=1, seed=0)
def test_same_seed_gives_identical_tables(n: int, seed: int) -> None:
    a, b = simulate(n, seed), simulate(n, seed)
    assert a.tables.keys() == b.tables.keys()
    for name in a.tables:
        assert a.tables[name].equals(b.tables[name]), name


def test_a_single_customer_never_crashes() -> None:
    for seed in range(40):
        sim = _sim(1, seed)
        assert sim.rows["sim.customer_truth"] == 1
        assert sim.rows["raw.customers"] == 1
