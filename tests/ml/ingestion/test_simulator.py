"""The simulator: deterministic, designed mess at the documented rates, truth kept apart, clean CLI."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest

from scripts import simulate as sim_mod
from scripts.simulate import RATES, simulate, write
from tests.conftest import run_python

N = 20_000


@pytest.fixture(scope="module")
def big() -> sim_mod.Simulation:
    return simulate(N, seed=3)


def _df(sim: sim_mod.Simulation, name: str):
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


def test_row_counts_are_near_the_design(big: sim_mod.Simulation) -> None:
    rows = big.rows
    assert rows["sim.customer_truth"] == N
    assert N * (1 + RATES["customers.duplicate_rows"]) == pytest.approx(
        rows["raw.customers"], rel=0.01
    )
    assert 8 * N < rows["raw.orders"] < 13 * N
    assert 0.3 * N < rows["raw.loans"] < 0.55 * N
    assert rows["sim.loan_truth"] == pc.count_distinct(big.tables["raw.loans"]["loan_id"]).as_py()


def test_orders_are_heavy_tailed(big: sim_mod.Simulation) -> None:
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
def test_customer_null_rates(big: sim_mod.Simulation, column: str, rate: float) -> None:
    observed = _df(big, "raw.customers")[column].isna().mean()
    assert observed == pytest.approx(rate, abs=4 * np.sqrt(rate * (1 - rate) / N) + 1e-4)


def test_income_is_missing_not_at_random(big: sim_mod.Simulation) -> None:
    df = _df(big, "raw.customers")
    young = df["age"].between(18, 24)
    old = df["age"].between(25, 100)
    assert df.loc[young, "income"].isna().mean() == pytest.approx(
        RATES["customers.income_null_young"], abs=0.02
    )
    assert df.loc[old, "income"].isna().mean() == pytest.approx(
        RATES["customers.income_null_other"], abs=0.01
    )


def test_out_of_range_and_future_values(big: sim_mod.Simulation) -> None:
    customers = _df(big, "raw.customers")
    bad_age = (~customers["age"].between(18, 100) & customers["age"].notna()).mean()
    assert bad_age == pytest.approx(RATES["customers.age_out_of_range"], abs=0.0015)
    orders = _df(big, "raw.orders")
    assert (orders["amount"] < 0).mean() == pytest.approx(RATES["orders.negative_amount"], rel=0.2)
    assert (orders["ordered_at"] >= sim_mod.AS_OF_DATE.isoformat()).mean() == pytest.approx(
        RATES["orders.in_future"], rel=0.3
    )
    orphans = ~orders["customer_id"].isin(customers["customer_id"])
    assert orphans.mean() == pytest.approx(RATES["orders.orphan"], rel=0.2)


def test_exact_duplicates(big: sim_mod.Simulation) -> None:
    for name, key in (("customers", "customer_id"), ("orders", "order_id"), ("loans", "loan_id")):
        df = _df(big, f"raw.{name}")
        dup_rate = df.duplicated().mean()
        assert dup_rate == pytest.approx(RATES[f"{name}.duplicate_rows"], rel=0.25), name
        # every repeated id is an exact copy of a row, not another record under the same id
        assert df.duplicated().sum() == df[key].duplicated().sum(), name


def test_categories_are_messy_but_canonicalisable(big: sim_mod.Simulation) -> None:
    gender = _df(big, "raw.customers")["gender"].dropna()
    assert gender.nunique() > 5
    canonical = (
        gender.str.strip().str.lower().str[0].map({"f": "female", "m": "male", "o": "other"})
    )
    assert canonical.notna().all()
    assert set(canonical) == {"female", "male", "other"}
    purposes = _df(big, "raw.loans")["purpose"]
    normalised = purposes.str.strip().str.lower().str.replace(" ", "_")
    assert set(normalised) == set(sim_mod.PURPOSES)


def test_default_rate_and_persona_drive_behaviour(big: sim_mod.Simulation) -> None:
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


def test_satisfaction_is_truth_plus_noise_of_known_sd(big: sim_mod.Simulation) -> None:
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


def test_truth_is_kept_apart(big: sim_mod.Simulation) -> None:
    truth_columns = {"expected_satisfaction", "noise_sd", "persona", "default_probability"}
    for name in ("raw.customers", "raw.orders", "raw.loans"):
        assert truth_columns.isdisjoint(big.tables[name].column_names), name


def test_write_lands_the_contract_types(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    write(simulate(500, seed=1), str(path))
    con = duckdb.connect(str(path), read_only=True)
    try:
        types = dict(
            con.execute(
                "select table_schema || '.' || table_name || '.' || column_name, data_type "
                "from information_schema.columns where table_schema in ('raw', 'sim')"
            ).fetchall()
        )
    finally:
        con.close()
    assert types["raw.customers.customer_id"] == "BIGINT"
    assert types["raw.customers.age"] == "INTEGER"
    assert types["raw.customers.signup_date"] == "DATE"
    assert types["raw.orders.ordered_at"] == "TIMESTAMP"
    assert types["raw.orders.is_returned"] == "BOOLEAN"
    assert types["raw.loans.term"] == "VARCHAR"
    assert types["sim.loan_truth.default_probability"] == "DOUBLE"
    assert "sim.simulation_runs.seed" in types


def test_cli_prints_a_summary(tmp_path) -> None:
    proc = run_python(
        "scripts.simulate", "--customers", "300", "--seed", "2", warehouse=tmp_path / "w.duckdb"
    )
    assert "raw.orders" in proc.stdout
    assert "raw rows/s" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customers", "0"], "--customers"),
        (["--customers", "many"], "--customers"),
        (["--seed", "x"], "--seed"),
        (["--bogus"], "unrecognized"),
    ],
)
def test_cli_bad_arguments_are_one_line(tmp_path, args: list[str], message: str) -> None:
    proc = run_python("scripts.simulate", *args, warehouse=tmp_path / "w.duckdb", check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_unwritable_path_is_one_line(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = run_python(
        "scripts.simulate", "--customers", "50", warehouse=blocker / "sub" / "w.duckdb", check=False
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_result_does_not_depend_on_the_number_of_threads(monkeypatch) -> None:
    # more customers than one block, so the orders are generated by several threads
    n = 2 * sim_mod._BLOCK + 123
    threaded = simulate(n, seed=4)
    monkeypatch.setattr(sim_mod, "_THREADS", 1)
    single = simulate(n, seed=4)
    for name in threaded.tables:
        assert threaded.tables[name].equals(single.tables[name]), name


def test_lookup_tables_resolve_every_probability_to_one_in_65536() -> None:
    probs = np.array([[0.5, 0.3, 0.2, 0.0], [0.001, 0.009, 0.09, 0.9]])
    table = sim_mod._inverse_cdf(probs)
    for row, p in zip(table, probs, strict=True):
        share = np.bincount(row, minlength=len(p)) / sim_mod._LEVELS
        assert np.abs(share - p).max() <= 1 / sim_mod._LEVELS


def test_discount_quantiles_are_beta_quantiles() -> None:
    special = pytest.importorskip("scipy.special")
    q = sim_mod._MIDPOINTS[::97]
    for a, b in sim_mod._DISCOUNT_BETA:
        exact = special.betaincinv(a, b, q)
        assert np.abs(sim_mod._beta_quantiles(a, b, q) - exact).max() < 1e-5


def test_orders_are_sorted_by_customer_then_time_and_follow_the_signup(
    big: sim_mod.Simulation,
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
    real = signup_at < np.datetime64(sim_mod.AS_OF_DATE)  # not a designed future signup
    assert (clean["ordered_at"].to_numpy()[real] >= signup_at[real]).all()
