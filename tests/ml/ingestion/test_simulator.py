"""The simulator: deterministic, designed mess at the documented rates, truth kept apart, the
contract's types in the warehouse (the CLI: tests/scripts/test_simulate.py)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest
import yaml

from ml.core.config import DBT_PROJECT_DIR
from ml.core.errors import UserError
from ml.core.warehouse import open_warehouse
from ml.ingestion.simulator import RATES, Simulation, simulate, write
from ml.ingestion.simulator import orders as orders_mod
from ml.ingestion.simulator.sampling import LEVELS, MIDPOINTS, beta_quantiles, inverse_cdf
from ml.ingestion.simulator.world import PURPOSES, configured_as_of

N = 20_000


@pytest.fixture(scope="module")
def big() -> Simulation:
    return simulate(N, seed=3)


def _df(sim: Simulation, name: str):
    return sim.tables[name].to_pandas()


def test_same_seed_gives_identical_tables() -> None:
    a, b = simulate(1500, seed=5), simulate(1500, seed=5)
    assert a.tables.keys() == b.tables.keys()
    for name in a.tables:
        assert a.tables[name].equals(b.tables[name]), name


def test_other_seed_gives_other_tables() -> None:
    a, b = simulate(1500, seed=5), simulate(1500, seed=6)
    for name in ("raw.customers", "raw.orders", "raw.loans", "sim.customer_truth"):
        assert not a.tables[name].equals(b.tables[name]), name


def test_row_counts_are_near_the_design(big: Simulation) -> None:
    rows = big.rows
    assert rows["sim.customer_truth"] == N
    assert N * (1 + RATES["customers.duplicate_rows"]) == pytest.approx(
        rows["raw.customers"], rel=0.01
    )
    assert 8 * N < rows["raw.orders"] < 13 * N
    assert 0.3 * N < rows["raw.loans"] < 0.55 * N
    assert rows["sim.loan_truth"] == pc.count_distinct(big.tables["raw.loans"]["loan_id"]).as_py()


def test_orders_are_heavy_tailed(big: Simulation) -> None:
    counts = _df(big, "raw.orders").groupby("customer_id").size()
    assert counts.quantile(0.99) > 4 * counts.median()


@pytest.mark.parametrize(
    ("column", "rate"),
    [
        ("age", RATES["customers.age_null"]),
        ("gender", RATES["customers.gender_null"]),
        ("household_size", RATES["customers.household_size_null"]),
        ("customer_satisfaction", RATES["customers.satisfaction_null"]),
        ("segment", RATES["customers.segment_null"]),
    ],
)
def test_customer_null_rates(big: Simulation, column: str, rate: float) -> None:
    observed = _df(big, "raw.customers")[column].isna().mean()
    assert observed == pytest.approx(rate, abs=4 * np.sqrt(rate * (1 - rate) / N) + 1e-4)


def test_income_is_missing_not_at_random(big: Simulation) -> None:
    df = _df(big, "raw.customers")
    young = df["age"].between(18, 24)
    old = df["age"].between(25, 100)
    assert df.loc[young, "income"].isna().mean() == pytest.approx(
        RATES["customers.income_null_young"], abs=0.02
    )
    assert df.loc[old, "income"].isna().mean() == pytest.approx(
        RATES["customers.income_null_other"], abs=0.01
    )


def test_out_of_range_and_future_values(big: Simulation) -> None:
    customers = _df(big, "raw.customers")
    bad_age = (~customers["age"].between(18, 100) & customers["age"].notna()).mean()
    assert bad_age == pytest.approx(RATES["customers.age_out_of_range"], abs=0.0015)
    orders = _df(big, "raw.orders")
    assert (orders["amount"] < 0).mean() == pytest.approx(RATES["orders.negative_amount"], rel=0.2)
    assert (orders["ordered_at"] >= configured_as_of().isoformat()).mean() == pytest.approx(
        RATES["orders.in_future"], rel=0.3
    )
    orphans = ~orders["customer_id"].isin(customers["customer_id"])
    assert orphans.mean() == pytest.approx(RATES["orders.orphan"], rel=0.2)


def test_exact_duplicates(big: Simulation) -> None:
    for name, key in (("customers", "customer_id"), ("orders", "order_id"), ("loans", "loan_id")):
        df = _df(big, f"raw.{name}")
        dup_rate = df.duplicated().mean()
        assert dup_rate == pytest.approx(RATES[f"{name}.duplicate_rows"], rel=0.25), name
        # every repeated id is an exact copy of a row, not another record under the same id
        assert df.duplicated().sum() == df[key].duplicated().sum(), name


def test_categories_are_messy_but_canonicalisable(big: Simulation) -> None:
    gender = _df(big, "raw.customers")["gender"].dropna()
    assert gender.nunique() > 5
    canonical = (
        gender.str.strip().str.lower().str[0].map({"f": "female", "m": "male", "o": "other"})
    )
    assert canonical.notna().all()
    assert set(canonical) == {"female", "male", "other"}
    purposes = _df(big, "raw.loans")["purpose"]
    normalised = purposes.str.strip().str.lower().str.replace(" ", "_")
    assert set(normalised) == set(PURPOSES)


def test_default_rate_and_persona_drive_behaviour(big: Simulation) -> None:
    loans = _df(big, "raw.loans")
    assert 0.14 <= loans["defaulted"].mean() <= 0.21
    orders = _df(big, "raw.orders")
    truth = _df(big, "sim.customer_truth")
    per_customer = orders.groupby("customer_id").size().rename("n")
    joined = truth.join(per_customer, on="customer_id").fillna({"n": 0})
    mean_orders = joined.groupby("persona")["n"].mean()
    assert mean_orders["loyal"] > 2 * mean_orders["occasional"]
    discount = orders.join(truth.set_index("customer_id")["persona"], on="customer_id")
    by_persona = discount.groupby("persona")["discount_pct"].mean()
    assert by_persona["bargain_hunter"] == by_persona.max()


def test_satisfaction_is_truth_plus_noise_of_known_sd(big: Simulation) -> None:
    customers = _df(big, "raw.customers").drop_duplicates("customer_id")
    truth = _df(big, "sim.customer_truth")
    joined = customers.merge(truth, on="customer_id").dropna(subset=["customer_satisfaction"])
    inside = joined["expected_satisfaction"].between(2.5, 8.5)  # away from the clipping at 1, 10
    resid = (joined["customer_satisfaction"] - joined["expected_satisfaction"])[inside]
    z = resid / joined.loc[inside, "noise_sd"]
    assert abs(z.mean()) < 0.05
    assert z.std() == pytest.approx(1.0, abs=0.05)
    # the signal is far from trivial: the oracle explains most but not all of the variance
    r2 = 1 - (resid**2).mean() / joined.loc[inside, "customer_satisfaction"].var()
    assert 0.6 < r2 < 0.95


def test_truth_is_kept_apart(big: Simulation) -> None:
    truth_columns = {"expected_satisfaction", "noise_sd", "persona", "default_probability"}
    for name in ("raw.customers", "raw.orders", "raw.loans"):
        assert truth_columns.isdisjoint(big.tables[name].column_names), name


#: The landed columns and their warehouse types (docs/data_contract.md).
CONTRACT = {
    "raw.customers": {
        "customer_id": "BIGINT",
        "age": "INTEGER",
        "income": "DOUBLE",
        "gender": "VARCHAR",
        "region": "VARCHAR",
        "acquisition_channel": "VARCHAR",
        "household_size": "INTEGER",
        "signup_date": "DATE",
        "customer_satisfaction": "DOUBLE",
        "segment": "VARCHAR",
        "batch_id": "INTEGER",
        "loaded_at": "TIMESTAMP",
    },
    "raw.orders": {
        "order_id": "BIGINT",
        "customer_id": "BIGINT",
        "ordered_at": "TIMESTAMP",
        "amount": "DOUBLE",
        "discount_pct": "DOUBLE",
        "items": "INTEGER",
        "category": "VARCHAR",
        "channel": "VARCHAR",
        "is_returned": "BOOLEAN",
        "batch_id": "INTEGER",
        "loaded_at": "TIMESTAMP",
    },
    "raw.loans": {
        "loan_id": "BIGINT",
        "customer_id": "BIGINT",
        "applied_at": "TIMESTAMP",
        "loan_amount": "DOUBLE",
        "term": "VARCHAR",
        "purpose": "VARCHAR",
        "grade": "VARCHAR",
        "interest_rate": "DOUBLE",
        "annual_income": "DOUBLE",
        "employment_length": "VARCHAR",
        "home_ownership": "VARCHAR",
        "credit_score": "INTEGER",
        "debt_to_income": "DOUBLE",
        "delinquencies_2y": "INTEGER",
        "credit_history_years": "DOUBLE",
        "open_accounts": "INTEGER",
        "revolving_utilization": "DOUBLE",
        "defaulted": "INTEGER",
        "batch_id": "INTEGER",
        "loaded_at": "TIMESTAMP",
    },
    "sim.customer_truth": {
        "customer_id": "BIGINT",
        "expected_satisfaction": "DOUBLE",
        "noise_sd": "DOUBLE",
        "persona": "VARCHAR",
        "batch_id": "INTEGER",
    },
    "sim.loan_truth": {
        "loan_id": "BIGINT",
        "default_probability": "DOUBLE",
        "batch_id": "INTEGER",
    },
    "sim.simulation_runs": {
        "seed": "BIGINT",
        "customers": "BIGINT",
        "raw_customers": "BIGINT",
        "raw_orders": "BIGINT",
        "raw_loans": "BIGINT",
        "generate_seconds": "DOUBLE",
        "as_of_date": "DATE",
        "simulated_at": "TIMESTAMP",
        "batch_id": "INTEGER",
        "months": "INTEGER",
        "drift": "VARCHAR",
        "period_start": "DATE",
    },
}


def test_write_lands_every_table_with_the_contract_types(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    sim = simulate(500, seed=1)
    assert write(sim, path) > 0
    with open_warehouse(path, read_only=True) as wh:
        assert sorted(r.relation for r in wh.relations()) == sorted(CONTRACT)
        for relation, types in CONTRACT.items():
            assert wh.sql_types(relation) == types, relation
        for relation, rows in sim.rows.items():
            assert wh.row_count(relation) == rows, relation
        (run,) = wh.read_frame("sim.simulation_runs").to_dict("records")
    assert (run["seed"], run["customers"], run["raw_orders"]) == (1, 500, sim.rows["raw.orders"])
    assert run["as_of_date"] == pd.Timestamp(configured_as_of())


def test_write_replaces_every_table(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    write(simulate(300, seed=1), path)
    second = simulate(200, seed=2)
    write(second, path)
    with open_warehouse(path, read_only=True) as wh:
        for relation, rows in second.rows.items():
            assert wh.row_count(relation) == rows, relation
        assert wh.read_frame("sim.simulation_runs")["seed"].tolist() == [2]


def test_the_as_of_date_comes_from_dbt_project_yml() -> None:
    sim = simulate(300, seed=1)
    with open(DBT_PROJECT_DIR / "dbt_project.yml", encoding="utf-8") as fh:
        declared = str(yaml.safe_load(fh)["vars"]["as_of_date"])
    assert sim.as_of_date == configured_as_of() == date.fromisoformat(declared)
    earlier = simulate(300, seed=1, as_of=date(2024, 1, 1))
    assert earlier.as_of_date == date(2024, 1, 1)
    ordered = earlier.tables["raw.orders"]["ordered_at"].to_pandas()
    in_future = (ordered >= pd.Timestamp("2024-01-01")).mean()
    assert 0 < in_future < 0.01  # only the designed future rows end after the world


def test_bad_sizes_and_seeds_are_user_errors() -> None:
    with pytest.raises(UserError, match="--customers"):
        simulate(0, seed=1)
    with pytest.raises(UserError, match="--seed"):
        simulate(10, seed=-1)


def test_result_does_not_depend_on_the_number_of_threads(monkeypatch) -> None:
    # more customers than one block, so the orders are generated by several threads
    n = 2 * orders_mod.BLOCK + 123
    threaded = simulate(n, seed=4)
    monkeypatch.setattr(orders_mod, "THREADS", 1)
    single = simulate(n, seed=4)
    for name in threaded.tables:
        assert threaded.tables[name].equals(single.tables[name]), name


def test_lookup_tables_resolve_every_probability_to_one_in_65536() -> None:
    probs = np.array([[0.5, 0.3, 0.2, 0.0], [0.001, 0.009, 0.09, 0.9]])
    table = inverse_cdf(probs)
    for row, p in zip(table, probs, strict=True):
        share = np.bincount(row, minlength=len(p)) / LEVELS
        assert np.abs(share - p).max() <= 1 / LEVELS


def test_discount_quantiles_are_beta_quantiles() -> None:
    special = pytest.importorskip("scipy.special")
    q = MIDPOINTS[::97]
    for a, b in orders_mod.DISCOUNT_BETA:
        exact = special.betaincinv(a, b, q)
        assert np.abs(beta_quantiles(a, b, q) - exact).max() < 1e-5


def test_orders_are_sorted_by_customer_then_time_and_follow_the_signup(
    big: Simulation,
) -> None:
    orders = _df(big, "raw.orders").drop_duplicates("order_id")
    extra = ("orphan", "in_future", "negative_amount", "amount_null")
    # the clean history is order_id 1..m; the designed extra rows follow it
    m = next(
        m
        for m in range(len(orders), 0, -1)
        if m + sum(round(m * RATES[f"orders.{kind}"]) for kind in extra) == len(orders)
    )
    clean = orders[orders["order_id"] <= m].sort_values("order_id")
    assert clean["customer_id"].is_monotonic_increasing
    assert all(clean.groupby("customer_id")["ordered_at"].is_monotonic_increasing)
    signup = _df(big, "raw.customers").drop_duplicates("customer_id").set_index("customer_id")
    signup_at = pd.to_datetime(signup["signup_date"]).reindex(clean["customer_id"]).to_numpy()
    real = signup_at < np.datetime64(configured_as_of())  # not a designed future signup
    assert (clean["ordered_at"].to_numpy()[real] >= signup_at[real]).all()
