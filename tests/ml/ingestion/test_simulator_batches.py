"""Batches (`scripts.simulate --append`): batch 0 unchanged, a batch deterministic, ids continued,
the batch columns, rates that continue the base world, the designed mess, and every drift doing
what docs/data_contract.md says (the CLI: tests/scripts/test_simulate.py)."""

from __future__ import annotations

import copy
import hashlib
from datetime import date

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import roc_auc_score

from ml.core.errors import UserError
from ml.core.warehouse import open_warehouse
from ml.ingestion.simulator import append, simulate, write
from ml.ingestion.simulator.batches import World, base_world, next_batch
from ml.ingestion.simulator.drift import Drift, parse_drift
from ml.ingestion.simulator.simulation import generate_base
from ml.ingestion.simulator.world import DAY_S, PURPOSES, US, spellings

AS_OF = date(2026, 1, 1)

#: sha256 of simulate(300, seed=1)'s tables (batch columns left out, floats to 9 significant
#: digits), as landed before batches existed: batch 0 must stay exactly what it was.
BEFORE_BATCHES = {
    "raw.customers": "3b32a51d635efc62266d5b4c10700b1d2f875c6f2a26ab22c5cf83766e6bbef0",
    "raw.orders": "d7e8dc2bfd159494bf4f749ec3482558d8e5d550a39004fb75736b3200e7f4ca",
    "raw.loans": "f9b770dbbb7cb7e4facbd506fdcfb780ad3b1dbfdd5679750e1844271e67f8c1",
    "sim.customer_truth": "cc906c3eb5efabe1296b41b261305db876613b64bc6ed20aa26cd3a603dceff6",
    "sim.loan_truth": "67fca40cda2942d79b11e4ce3ce7a8ebc8685442108b37381dc6e77760921338",
}


def _digest(table: pa.Table) -> str:
    table = table.combine_chunks()
    table = table.drop_columns([c for c in ("batch_id", "loaded_at") if c in table.column_names])
    h = hashlib.sha256()
    for name in table.column_names:
        column = table[name]
        if pa.types.is_dictionary(column.type):
            column = column.cast(pa.string())
        values = column.to_pylist()
        if pa.types.is_floating(column.type):
            # numpy's exp and log may differ in the last bit between CPUs (SIMD paths): 9
            # significant digits are what the simulator means, the bits are the machine's
            values = [None if v is None else f"{v:.9g}" for v in values]
        h.update(name.encode())
        h.update(str(column.type).encode())
        h.update(repr(values).encode())
    return h.hexdigest()


def test_batch_zero_is_what_simulate_landed_before_batches() -> None:
    sim = simulate(300, seed=1, as_of=AS_OF)
    for name, digest in BEFORE_BATCHES.items():
        assert _digest(sim.tables[name]) == digest, name
    for name, table in sim.tables.items():
        if name.startswith("raw."):
            assert table.column_names[-2:] == ["batch_id", "loaded_at"], name
            assert table.schema.field("loaded_at").type == pa.timestamp("us")
            loaded = {str(v) for v in table["loaded_at"].to_pylist()}
            assert loaded == {"2026-01-01 00:00:00"}, name
        else:
            assert table.column_names[-1] == "batch_id", name
        assert table.schema.field("batch_id").type == pa.int32()
        assert set(table["batch_id"].to_pylist()) == {0}


@pytest.fixture(scope="module")
def world() -> World:
    return base_world(2000, 11, AS_OF)


def _batch(world: World, spec: str = "", months: int = 1, seed: int = 11):
    """The next batch of a copy of `world` (the fixture stays at batch 0)."""
    w = copy.deepcopy(world)
    return w, next_batch(w, months, parse_drift(spec), seed)


def test_a_batch_is_deterministic_and_depends_on_the_seed(world: World) -> None:
    _, a = _batch(world)
    _, b = _batch(world)
    _, other = _batch(world, seed=12)
    for name in a.tables:
        assert a.tables[name].equals(b.tables[name]), name
    assert not a.tables["raw.orders"].equals(other.tables["raw.orders"])


def test_the_base_world_state_matches_simulate() -> None:
    _, g = generate_base(500, 3, AS_OF)
    sim = simulate(500, 3, as_of=AS_OF)
    w = base_world(500, 3, AS_OF)
    assert w.rows == {t: sim.rows[f"raw.{t}"] for t in ("customers", "orders", "loans")}
    assert w.next_order_id == max(sim.tables["raw.orders"]["order_id"].to_pylist()) + 1
    assert w.next_loan_id == max(sim.tables["raw.loans"]["loan_id"].to_pylist()) + 1
    assert w.orders["count"].sum() == len(g["o"]["amount"])


def test_ids_continue_and_batch_columns_are_last(world: World) -> None:
    w = copy.deepcopy(world)
    first = next_batch(w, 1, Drift(), 11)
    second = next_batch(w, 2, Drift(), 11)
    assert (first.batch_id, second.batch_id) == (1, 2)
    assert (first.period_start, first.as_of_date) == (date(2026, 1, 1), date(2026, 2, 1))
    assert (second.period_start, second.as_of_date) == (date(2026, 2, 1), date(2026, 4, 1))
    seen = {
        "customer_id": 2000,
        "order_id": world.next_order_id - 1,
        "loan_id": world.next_loan_id - 1,
    }
    for sim in (first, second):
        for name, key in (
            ("customers", "customer_id"),
            ("orders", "order_id"),
            ("loans", "loan_id"),
        ):
            table = sim.tables[f"raw.{name}"]
            ids = np.unique(table[key].to_numpy())
            assert ids.min() == seen[key] + 1 and ids.max() == seen[key] + len(ids), name
            seen[key] = ids.max()
            assert table.column_names[-2:] == ["batch_id", "loaded_at"]
            assert table.schema.field("batch_id").type == pa.int32()
            assert table.schema.field("loaded_at").type == pa.timestamp("us")
            assert set(table["batch_id"].to_pylist()) == {sim.batch_id}
            loaded = {v.date() for v in table["loaded_at"].to_pylist()}
            assert loaded == {sim.as_of_date}
        truth = sim.tables["sim.customer_truth"]
        assert truth["customer_id"].to_pylist() == sorted(
            set(sim.tables["raw.customers"]["customer_id"].to_pylist())
        )
        assert truth.column_names[-1] == "batch_id"
        loans = set(sim.tables["raw.loans"]["loan_id"].to_pylist())
        assert set(sim.tables["sim.loan_truth"]["loan_id"].to_pylist()) == loans


def test_rates_continue_the_base_world() -> None:
    n = 3000
    w = base_world(n, 5, AS_OF)
    _, g = generate_base(n, 5, AS_OF)
    last_month = (
        g["o"]["ordered_at"] // US >= (AS_OF - date(1970, 1, 1)).days * DAY_S - 31 * DAY_S
    ).sum()
    sim = next_batch(w, 3, Drift(), 5)
    months = 3
    assert 0.012 * n * months < sim.meta["new_customers"] < 0.028 * n * months
    orders_per_month = sim.meta["clean_orders"] / months
    assert 0.7 * last_month < orders_per_month < 1.4 * last_month
    assert 0.03 * n < sim.meta["applications"] / months < 0.055 * n
    assert 0.12 < sim.meta["default_rate"] < 0.23
    # every row is dated inside the period, apart from the designed future rows
    start, end = (
        (d - date(1970, 1, 1)).days * DAY_S * US for d in (sim.period_start, sim.as_of_date)
    )
    o = sim.arrays["orders"]
    assert start <= o["ordered_at"].min() and o["ordered_at"].max() < end


def test_the_designed_mess_is_in_every_batch(world: World) -> None:
    _, sim = _batch(world, months=4)
    for name, key, dated in (
        ("customers", "customer_id", "signup_date"),
        ("orders", "order_id", "ordered_at"),
        ("loans", "loan_id", "applied_at"),
    ):
        df = sim.tables[f"raw.{name}"].to_pandas()
        assert df.duplicated().sum() > 0, name
        assert not df[key].isna().any()
        future = df[dated].astype("datetime64[us]") >= df["loaded_at"]
        assert future.mean() < 0.01, name  # only the designed rows "in the future"
    orders = sim.tables["raw.orders"].to_pandas()
    assert ((orders["ordered_at"] >= orders["loaded_at"]).sum()) > 0
    known = set(range(1, sim.tables["raw.customers"]["customer_id"].to_numpy().max() + 1))
    assert (~orders["customer_id"].isin(known)).sum() > 0  # orphans
    assert (orders["amount"] < 0).sum() > 0 and orders["amount"].isna().sum() > 0
    customers = sim.tables["raw.customers"].to_pandas()
    assert customers["segment"].isna().sum() > 0 and customers["income"].isna().sum() > 0
    assert len(set(customers["region"].dropna())) > 5  # messy spellings


def test_income_drift_scales_the_reported_incomes_only(world: World) -> None:
    _, plain = _batch(world, months=6)
    _, shifted = _batch(world, "income=1.5", months=6)
    a, b = plain.arrays["loans"], shifted.arrays["loans"]
    ea, eb = a["cust"] < 2000, b["cust"] < 2000  # applicants who existed before the batch
    ratio = np.median(b["annual_income"][eb]) / np.median(a["annual_income"][ea])
    assert ratio == pytest.approx(1.5, rel=0.1)
    for column in ("credit_score", "loan_amount", "dti", "revol"):  # the rest stays put
        before, after = np.median(a[column][ea]), np.median(b[column][eb])
        assert after == pytest.approx(before, rel=0.12), column
    c_a = plain.tables["raw.customers"].to_pandas()
    c_b = shifted.tables["raw.customers"].to_pandas()
    assert c_b["income"].median() / c_a["income"].median() == pytest.approx(1.5, rel=0.15)
    assert c_b["age"].median() == pytest.approx(c_a["age"].median(), abs=3)
    assert shifted.drift == "income=1.5"


def test_income_drift_keeps_p_y_given_x() -> None:
    """The truth follows the reported income: the same application with its income x F gets
    the default probability of the base formula at that income."""
    w = base_world(1500, 2, AS_OF)
    _, sim = _batch(w, "income=2", months=3, seed=2)
    ln = sim.arrays["loans"]
    np.testing.assert_allclose(ln["prob"], ln["base_prob"])  # no concept change
    assert ln["prob"].mean() < 0.17  # a lower instalment burden: fewer defaults


def test_new_purpose_drift_adds_a_category_at_its_share(world: World) -> None:
    _, plain = _batch(world, months=3)
    _, sim = _batch(world, "new_purpose=crypto_mining:0.3", months=3)
    ln = sim.arrays["loans"]
    purposes = sim.tables["raw.loans"]["purpose"].to_pylist()
    new_words = set(spellings("crypto_mining"))
    share = np.mean([p in new_words for p in purposes])
    assert share == pytest.approx(0.3, abs=0.03)
    assert {p for p in purposes if p in new_words} - {"crypto_mining"}  # messy spellings too
    canonical = {p.strip().lower().replace(" ", "_") for p in purposes}
    assert canonical >= {*PURPOSES[:3], "crypto_mining"}
    np.testing.assert_array_equal(ln["credit_score"], plain.arrays["loans"]["credit_score"])
    default_share = np.mean([p in new_words for p in parse_drift("").purposes.words])
    assert default_share == 0
    assert sim.drift == "new_purpose=crypto_mining:0.3"


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def test_concept_drift_reverses_the_dependence_not_the_distribution() -> None:
    w = base_world(4000, 7, AS_OF)
    _, plain = _batch(w, months=4, seed=7)
    _, sim = _batch(w, "concept=credit_score", months=4, seed=7)
    a, b = plain.arrays["loans"], sim.arrays["loans"]
    np.testing.assert_array_equal(a["credit_score"], b["credit_score"])  # distribution unchanged
    np.testing.assert_allclose(b["base_prob"], a["prob"])  # batch 0's formula, as without drift
    score = b["credit_score"].astype(float)
    high = score >= 640  # outside the debt x low-score interaction: the score's term alone
    change = _logit(b["base_prob"])[high] - _logit(b["prob"])[high]
    slope = np.polyfit(score[high], change, 1)[0]
    assert slope == pytest.approx(-0.012, abs=1e-9)  # the term -0.006 per point, reversed
    auc_before = roc_auc_score(a["defaulted"], a["base_prob"])
    auc_after = roc_auc_score(b["defaulted"], b["base_prob"])
    assert auc_before - auc_after > 0.1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("speed=2", "'speed'"),
        ("income", "income"),
        ("income=0", "income=0"),
        ("income=-1", "income=-1"),
        ("income=abc", "income=abc"),
        ("income=nan", "income=nan"),
        ("income=2,income=3", "twice"),
        ("new_purpose=Crypto", "snake_case"),
        ("new_purpose=car", "known purpose"),
        ("new_purpose=crypto:0", "share"),
        ("new_purpose=crypto:1.5", "share"),
        ("new_purpose=crypto:x", "crypto:x"),
        ("concept=shoe_size", "shoe_size"),
    ],
)
def test_bad_drift_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_drift(spec)


def test_drift_specs_parse_and_print_canonically() -> None:
    drift = parse_drift(" concept=grade , income=1.50,new_purpose=crypto ")
    assert drift == Drift(income=1.5, new_purpose="crypto", new_purpose_share=0.2, concept="grade")
    assert drift.spec == "income=1.5,new_purpose=crypto:0.2,concept=grade"
    assert parse_drift(drift.spec) == drift
    assert parse_drift("").spec == "" and parse_drift(None) == Drift()


def test_append_continues_the_warehouse_world(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    write(simulate(800, seed=4, as_of=AS_OF), path)
    first, _ = append(path=path)
    second, _ = append(months=2, drift="concept=grade", seed=9, path=path)
    assert (first.batch_id, second.batch_id) == (1, 2)
    with open_warehouse(path, read_only=True) as wh:
        runs = wh.read_frame("sim.simulation_runs", order_by="batch_id")
        assert list(runs["batch_id"]) == [0, 1, 2]
        assert list(runs["seed"]) == [4, 4, 9]
        assert list(runs["drift"]) == ["", "", "concept=grade"]
        assert list(runs["months"])[1:] == [1, 2]
        assert [d.isoformat() for d in runs["as_of_date"].map(lambda v: v.date() if hasattr(v, "date") else v)] == [
            "2026-01-01", "2026-02-01", "2026-04-01"
        ]  # fmt: skip
        counts = wh.query("select batch_id, count(*) as n from raw.orders group by 1 order by 1")
        assert list(counts["n"]) == list(runs["raw_orders"])
        dup = wh.query("select count(*) - count(distinct loan_id) as d from sim.loan_truth")
        assert dup["d"][0] == 0
    # the same commands on another warehouse land the same batch 2
    other = tmp_path / "o.duckdb"
    write(simulate(800, seed=4, as_of=AS_OF), other)
    append(path=other)
    again, _ = append(months=2, drift="concept=grade", seed=9, path=other)
    for name, table in second.tables.items():
        assert table.equals(again.tables[name]), name


def test_append_needs_a_base_world(tmp_path) -> None:
    with pytest.raises(UserError, match="simulation_runs"):
        append(path=tmp_path / "empty.duckdb")
    path = tmp_path / "w.duckdb"
    write(simulate(300, seed=1, as_of=AS_OF), path)
    with open_warehouse(path) as wh:
        wh.append_rows("raw.orders", wh.read_arrow("raw.orders").slice(0, 5))
    with pytest.raises(UserError, match="raw.orders"):
        append(path=path)
