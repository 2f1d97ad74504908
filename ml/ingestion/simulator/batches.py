"""Batches: the simulated world continued period by period (`scripts.simulate --append`).

Batch b >= 1 covers the days [previous as-of, previous as-of + months): new customers sign up,
every customer places orders, loan applications arrive, with the base world's designed mess and
their truth in sim.*. The world is not read back from the warehouse: it is regenerated from
`sim.simulation_runs` (the base world from its seed, size and as-of, then every batch from its
seed, months and drift), so a batch is a function of the seed, its options and the batches before
it. Each batch draws from `SeedSequence([seed, batch_id])`: one stream generates, another lands.

    world = regenerate(runs)                          # the state after the last batch
    sim = next_batch(world, months=1, drift=parse_drift("income=1.5"), seed=42)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.core.errors import UserError
from ml.core.warehouse import open_warehouse
from ml.ingestion.simulator.customers import customer_behaviour, customers, satisfaction
from ml.ingestion.simulator.drift import Drift, parse_drift
from ml.ingestion.simulator.landing import (
    landed_rows,
    mess_orders,
    raw_customers,
    raw_loans,
    raw_orders,
    with_batch,
)
from ml.ingestion.simulator.loans import loans
from ml.ingestion.simulator.orders import period_orders
from ml.ingestion.simulator.simulation import (
    SIMULATION_RUNS,
    Simulation,
    add_months,
    customer_truth,
    generate_base,
    loan_truth,
    runs_table,
)
from ml.ingestion.simulator.world import DAY_S, US, epoch_day

#: New customers a month, as a share of the base world's customers (the base world's own
#: signup rate at its end: its signups grow linearly, so the last month holds ~2 %).
NEW_CUSTOMERS_PER_MONTH = 0.02
#: Loan applications a month per customer (the base world's rate in its last month, ~0.04).
APPLICATIONS_PER_CUSTOMER_MONTH = 0.04
#: Days after signup before a customer may apply for a loan (as in the base world).
_APPLY_AFTER_DAYS = 7
_KEYS = ("age", "log_income", "persona", "signup_day", "activity")
_RAW = ("customers", "orders", "loans")


@dataclass
class World:
    """What the next batch continues: every customer's latent traits (index = customer_id - 1),
    their clean order totals so far, the base world's constants and the next free ids."""

    seed: int
    base_customers: int
    as_of: date
    batch_id: int
    c: dict[str, np.ndarray]
    orders: dict[str, np.ndarray]  # per customer: count, returns, discount (sums)
    scale: float  # the base world's order-count scale
    intercept: float  # the base world's default-logit intercept
    next_order_id: int
    next_loan_id: int
    #: P(persona, tenure bin, prior-order bin) of the base world's applications, and the bins.
    reference: np.ndarray = field(repr=False)
    tenure_edges: np.ndarray = field(repr=False)
    prior_edges: np.ndarray = field(repr=False)
    #: Rows the last batch landed per raw table (to check the warehouse against).
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.c["age"])


def _cell(world: World, persona: np.ndarray, tenure: np.ndarray, prior: np.ndarray) -> np.ndarray:
    nt, np_ = len(world.tenure_edges) + 1, len(world.prior_edges) + 1
    tb = np.searchsorted(world.tenure_edges, tenure, side="right")
    pb = np.searchsorted(world.prior_edges, prior, side="right")
    return (persona.astype(np.int64) * nt + tb) * np_ + pb


def base_world(n_customers: int, seed: int, as_of: date) -> World:
    """The world after batch 0 (`simulate(n_customers, seed, as_of=as_of)`), without landing."""
    _, g = generate_base(n_customers, seed, as_of)
    c, o, totals, ln, prior = g["c"], g["o"], g["totals"], g["ln"], g["prior"]
    m, k = len(o["amount"]), len(ln["cust"])
    applicant = ln["cust"]
    tenure = ln["applied_s"] / DAY_S - c["signup_day"][applicant]
    grid = np.linspace(0.0, 1.0, 11)[1:-1]
    world = World(
        seed=seed,
        base_customers=n_customers,
        as_of=as_of,
        batch_id=0,
        c={name: (o["activity"] if name == "activity" else c[name]) for name in _KEYS},
        orders={"count": o["counts"].astype(np.int64), **{
            name: totals[name].copy() for name in ("returns", "discount")
        }},
        scale=float(o["scale"]),
        intercept=float(ln["intercept"]),
        next_order_id=m + mess_orders(m) + 1,
        next_loan_id=k + 1,
        reference=np.zeros(0),
        tenure_edges=np.unique(np.quantile(tenure, grid)) if k else np.zeros(0),
        prior_edges=np.unique(np.quantile(prior["count"], grid)) if k else np.zeros(0),
        rows={"customers": landed_rows(n_customers, "customers"),
              "orders": landed_rows(m, "orders"), "loans": landed_rows(k, "loans")},
    )  # fmt: skip
    cells = (len(world.tenure_edges) + 1) * (len(world.prior_edges) + 1) * 4
    counts = np.bincount(_cell(world, c["persona"][applicant], tenure, prior["count"]), None, cells)
    world.reference = counts / max(k, 1)
    return world


def _applications(
    rng: np.random.Generator, world: World, period: tuple[int, int], batch_counts: np.ndarray
) -> dict[str, np.ndarray]:
    """Who applies in the period and when. Applicants are drawn so that the applications look
    like the base world's (the same joint shares of persona, tenure at application and orders
    before it): without a drift, a loan model meets the population it was trained on."""
    t0, t1 = period
    c = world.c
    months = (t1 - t0) / 30.4375
    k = int(rng.poisson(APPLICATIONS_PER_CUSTOMER_MONTH * world.n * months))
    signup = c["signup_day"].astype(np.int64)
    eligible = signup + _APPLY_AFTER_DAYS < t1
    tenure = np.maximum((t0 + t1) / 2 - signup, _APPLY_AFTER_DAYS)
    cell = _cell(world, c["persona"], tenure, world.orders["count"] + batch_counts)
    have = np.bincount(cell[eligible], None, len(world.reference))
    weight = np.where(
        eligible & (have[cell] > 0), world.reference[cell] / np.maximum(have[cell], 1), 0
    )
    if k == 0 or weight.sum() == 0:
        return {"cust": np.zeros(0, np.int64), "applied_s": np.zeros(0, np.int64)}
    cust = rng.choice(world.n, size=k, p=weight / weight.sum())
    start_s = np.maximum(t0, signup[cust] + _APPLY_AFTER_DAYS) * DAY_S
    applied_s = start_s + np.floor(rng.random(k) * (t1 * DAY_S - start_s)).astype(np.int64)
    order = np.lexsort((applied_s, cust))
    return {"cust": cust[order].astype(np.int64), "applied_s": applied_s[order]}


def _prior(world: World, o: dict[str, np.ndarray], apps: dict[str, np.ndarray]) -> dict:
    """Each applicant's clean orders before the application over their whole history: the
    totals of the earlier batches plus this batch's orders strictly before it."""
    cust, applied_s = apps["cust"], apps["applied_s"]
    key = (o["customer_id"] - 1) << 32 | (o["ordered_at"] // US)
    lo = np.searchsorted(key, cust << 32)
    hi = np.searchsorted(key, cust << 32 | applied_s)
    cum_returns = np.concatenate([[0.0], np.cumsum(o["returned"], dtype=np.float64)])
    cum_discount = np.concatenate([[0.0], np.cumsum(o["discount"])])
    return {
        "count": world.orders["count"][cust] + (hi - lo),
        "returns": world.orders["returns"][cust] + cum_returns[hi] - cum_returns[lo],
        "discount": world.orders["discount"][cust] + cum_discount[hi] - cum_discount[lo],
    }


def next_batch(
    world: World, months: int, drift: Drift, seed: int, *, land: bool = True
) -> Simulation:
    """Batch `world.batch_id + 1`: generate it, advance `world` past it, and (with `land`) return
    its raw.* and sim.* tables (without `land`, only the row counts)."""
    started = time.perf_counter()
    batch_id = world.batch_id + 1
    if months < 1:
        raise UserError("--months must be at least 1")
    start, as_of = world.as_of, add_months(world.as_of, months)
    period = (epoch_day(start), epoch_day(as_of))
    day = period[1]
    generate, landing = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, batch_id]).spawn(2)
    )
    n_before = world.n
    # ---- new customers, then everyone's orders in the period
    n_new = int(generate.poisson(NEW_CUSTOMERS_PER_MONTH * world.base_customers * months))
    new = customers(generate, n_new, day, signup_between=period, income_factor=drift.income)
    new["activity"] = generate.gamma(1.2, 1 / 1.2, n_new)
    world.c = {name: np.concatenate([world.c[name], new[name]]) for name in _KEYS}
    world.orders = {
        name: np.concatenate([values, np.zeros(n_new, values.dtype)])
        for name, values in world.orders.items()
    }
    o = period_orders(generate, world.c, world.scale, period, world.next_order_id)
    # ---- the new customers' satisfaction, from their orders so far (all in this period)
    mine = slice(n_before, None)
    buyer = o["customer_id"] - 1
    totals = {
        "spend": np.bincount(buyer, o["amount"], world.n)[mine],
        "returns": np.bincount(buyer, o["returned"], world.n)[mine],
        "discount": np.bincount(buyer, o["discount"], world.n)[mine],
        "last_s": np.full(n_new, -1, np.int64),
    }
    if len(buyer):
        last = np.full(world.n, -1, np.int64)
        np.maximum.at(last, buyer, o["ordered_at"] // US)
        totals["last_s"] = last[mine]
    behaviour = customer_behaviour({"counts": o["counts"][mine]}, totals, day)
    expected, noise_sd, observed = satisfaction(generate, new, behaviour, day)
    # ---- loan applications of existing and new customers
    apps = _applications(generate, world, period, o["counts"])
    ln = loans(
        generate,
        world.c,
        apps,
        _prior(world, o, apps),
        intercept=world.intercept,
        income_factor=np.where(apps["cust"] < n_before, drift.income, 1.0),
        reverse=drift.reverse,
        purposes=drift.purposes,
        new_purpose_share=drift.new_purpose_share,
    )
    # ---- advance the world
    m, k = len(o["order_id"]), len(ln["cust"])
    first_order, first_loan = world.next_order_id, world.next_loan_id
    world.orders["count"] += o["counts"]
    world.orders["returns"] += np.bincount(buyer, o["returned"], world.n)
    world.orders["discount"] += np.bincount(buyer, o["discount"], world.n)
    world.next_order_id += m + mess_orders(m)
    world.next_loan_id += k
    world.as_of, world.batch_id = as_of, batch_id
    world.rows = {
        "customers": landed_rows(n_new, "customers"),
        "orders": landed_rows(m, "orders"),
        "loans": landed_rows(k, "loans"),
    }
    tables: dict[str, pa.Table] = {}
    if land:
        loaded_at = day * DAY_S * US
        raw = {
            "raw.customers": raw_customers(landing, new, observed, day, n_before + 1),
            "raw.orders": raw_orders(landing, world.n, o, day, first_order),
            "raw.loans": raw_loans(landing, world.n, ln, day, first_loan, drift.purposes),
        }
        tables = {name: with_batch(t, batch_id, loaded_at) for name, t in raw.items()}
        tables["sim.customer_truth"] = with_batch(
            customer_truth(n_before + 1, expected, noise_sd, new["persona"]), batch_id, None
        )
        tables["sim.loan_truth"] = with_batch(loan_truth(first_loan, ln["prob"]), batch_id, None)
    meta = {
        "default_rate": float(ln["defaulted"].mean()) if k else 0.0,
        "new_customers": float(n_new),
        "clean_orders": float(m),
        "applications": float(k),
    }
    sim = Simulation(
        tables=tables,
        seconds=time.perf_counter() - started,
        seed=seed,
        customers=world.base_customers,
        meta=meta,
        as_of_date=as_of,
        batch_id=batch_id,
        period_start=start,
        months=months,
        drift=drift.spec,
        arrays={"orders": o, "loans": ln},
    )
    return sim


_RUN_COLUMNS = ("batch_id", "seed", "customers", "as_of_date", "months", "drift")


def regenerate(runs: pd.DataFrame) -> World:
    """The world after the last batch of `runs` (sim.simulation_runs), checking that every batch
    regenerates to the row counts the runs table recorded."""
    missing = [name for name in _RUN_COLUMNS if name not in runs.columns]
    if missing:
        raise UserError(
            f"{SIMULATION_RUNS} has no {', '.join(missing)} (landed before batches existed): "
            "land a world with `python -m scripts.simulate` first"
        )
    runs = runs.sort_values("batch_id", kind="stable").reset_index(drop=True)
    if list(runs["batch_id"]) != list(range(len(runs))):
        raise UserError(f"{SIMULATION_RUNS}: batch ids {list(runs['batch_id'])} are not 0, 1, ...")
    base = runs.iloc[0]
    world = base_world(int(base["customers"]), int(base["seed"]), _date(base["as_of_date"]))
    _check(world, base)
    for _, run in runs.iloc[1:].iterrows():
        next_batch(
            world, int(run["months"]), parse_drift(run["drift"]), int(run["seed"]), land=False
        )
        _check(world, run)
    return world


def _date(value: object) -> date:
    return pd.Timestamp(value).date()


def _check(world: World, run: pd.Series) -> None:
    for table in _RAW:
        recorded = int(run[f"raw_{table}"])
        if recorded != world.rows[table]:
            raise UserError(
                f"{SIMULATION_RUNS}: batch {world.batch_id} recorded {recorded:,} raw.{table} rows "
                f"but regenerates {world.rows[table]:,} (landed by another simulator version?): "
                "land a fresh world with `python -m scripts.simulate`"
            )
    if _date(run["as_of_date"]) != world.as_of:
        raise UserError(f"{SIMULATION_RUNS}: batch {world.batch_id}'s as_of_date does not follow")


def append(
    months: int = 1,
    drift: str | None = None,
    seed: int | None = None,
    path: str | Path | None = None,
) -> tuple[Simulation, float]:
    """Generate the next batch of the warehouse's world (`path`, default WAREHOUSE_PATH) and
    append it to raw.*, sim.* and sim.simulation_runs in one transaction; the batch and the
    seconds the write took. `seed` defaults to the base world's."""
    parsed = parse_drift(drift)
    if months < 1:
        raise UserError("--months must be at least 1")
    if seed is not None and seed < 0:
        raise UserError(f"--seed must be a whole number >= 0, got {seed}")
    with open_warehouse(path) as warehouse:
        if not warehouse.exists(SIMULATION_RUNS):
            raise UserError(
                f"--append: {warehouse.location} has no {SIMULATION_RUNS}: "
                "land a world with `python -m scripts.simulate` first"
            )
        runs = warehouse.read_frame(SIMULATION_RUNS)
        world = regenerate(runs)
        for table in _RAW:
            want = int(runs[f"raw_{table}"].sum())
            have = warehouse.row_count(f"raw.{table}") if warehouse.exists(f"raw.{table}") else 0
            if have != want:
                raise UserError(
                    f"--append: raw.{table} holds {have:,} rows but {SIMULATION_RUNS} recorded "
                    f"{want:,}: land a fresh world with `python -m scripts.simulate`"
                )
        sim = next_batch(world, months, parsed, world.seed if seed is None else seed)
        started = time.perf_counter()
        warehouse.append_tables({**sim.tables, SIMULATION_RUNS: runs_table(sim)})
    return sim, time.perf_counter() - started
