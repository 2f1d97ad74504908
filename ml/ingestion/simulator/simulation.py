"""The simulation: every table for N customers from one seed, and landing them in the warehouse.

Everything is vectorised with numpy (no Python loop per row, no pandas) and handed to the
warehouse as Arrow arrays over the numpy buffers, so 1M customers and 10M orders take a few
seconds. The same seed gives identical tables.
"""

from __future__ import annotations

import time
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from ml.core.errors import UserError
from ml.core.warehouse import open_warehouse
from ml.ingestion.simulator.customers import customer_behaviour, customers, satisfaction
from ml.ingestion.simulator.landing import (
    arrow_column,
    raw_customers,
    raw_loans,
    raw_orders,
    with_batch,
)
from ml.ingestion.simulator.loans import applications, loans
from ml.ingestion.simulator.orders import orders
from ml.ingestion.simulator.world import (
    DAY_S,
    PERSONAS,
    START_DATE,
    US,
    configured_as_of,
    epoch_day,
)

#: One row per batch: the seed, the sizes, the period and drift of the batch's rows in raw.*, sim.*.
SIMULATION_RUNS = "sim.simulation_runs"


@dataclass
class Simulation:
    """The simulated tables as Arrow tables, and how long generating them took."""

    tables: dict[str, pa.Table]
    seconds: float
    seed: int
    customers: int
    meta: dict[str, float] = field(default_factory=dict)
    #: The day after the simulated world (this batch's period) ends: its rows' loaded_at.
    as_of_date: date = field(default_factory=configured_as_of)
    #: The batch (0: the base world) and its period [period_start, as_of_date).
    batch_id: int = 0
    period_start: date = START_DATE
    months: int = 0
    #: The batch's drift spec ('' when none).
    drift: str = ""
    #: A batch's clean arrays (`orders`, `loans`: truth and drift diagnostics), for measuring.
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def rows(self) -> dict[str, int]:
        """Row count of every table."""
        return {name: t.num_rows for name, t in self.tables.items()}

    @property
    def raw_rows(self) -> int:
        """Rows of the raw.* tables (what the landing speed is measured in)."""
        return sum(rows for name, rows in self.rows.items() if name.startswith("raw."))


def generate_base(n_customers: int, seed: int, as_of: date) -> tuple[np.random.Generator, dict]:
    """The base world's clean arrays (batch 0, before the mess) and the generator that lands
    them: `c` customers, `applied` applications, `o` orders, `totals` per customer, `prior`
    behaviour before each application, `truth` (expected, noise_sd, observed satisfaction),
    `ln` loans."""
    if n_customers < 1:
        raise UserError("--customers must be at least 1")
    if seed < 0:
        raise UserError(f"--seed must be a whole number >= 0, got {seed}")
    day = epoch_day(as_of)
    rng = np.random.default_rng(seed)
    c = customers(rng, n_customers, day)
    applied = applications(rng, c, day)
    o, totals, prior = orders(rng, c, applied, day)
    truth = satisfaction(rng, c, customer_behaviour(o, totals, day), day)
    ln = loans(rng, c, applied, prior)
    world = {"c": c, "applied": applied, "o": o, "totals": totals, "prior": prior}
    return rng, {**world, "truth": truth, "ln": ln}


def simulate(n_customers: int, seed: int, *, as_of: date | None = None) -> Simulation:
    """Generate every table for `n_customers` customers, deterministically for `seed`: batch 0.

    The world ends the day before `as_of` (default: the dbt var `as_of_date`).
    """
    started = time.perf_counter()
    as_of = as_of or configured_as_of()
    day = epoch_day(as_of)
    rng, g = generate_base(n_customers, seed, as_of)
    n = n_customers
    c, o, ln = g["c"], g["o"], g["ln"]
    expected, noise_sd, observed = g["truth"]
    k = len(ln["cust"])
    loaded_at = day * DAY_S * US
    tables = {
        "raw.customers": raw_customers(rng, c, observed, day),
        "raw.orders": raw_orders(rng, n, o, day),
        "raw.loans": raw_loans(rng, n, ln, day),
        # ---- ground truth
        "sim.customer_truth": customer_truth(1, expected, noise_sd, c["persona"]),
        "sim.loan_truth": loan_truth(1, ln["prob"]),
    }
    tables = {
        name: with_batch(t, 0, loaded_at if name.startswith("raw.") else None)
        for name, t in tables.items()
    }
    return Simulation(
        tables=tables,
        seconds=time.perf_counter() - started,
        seed=seed,
        customers=n,
        meta={"default_rate": float(ln["defaulted"].mean()) if k else 0.0},
        as_of_date=as_of,
        period_start=START_DATE,
        months=months_between(START_DATE, as_of),
    )


def customer_truth(
    first_id: int, expected: np.ndarray, noise_sd: np.ndarray, persona: np.ndarray
) -> pa.Table:
    """sim.customer_truth's rows for customers numbered from `first_id` (without batch_id)."""
    return pa.table(
        {
            "customer_id": pa.array(
                np.arange(first_id, first_id + len(expected), dtype=np.int64), pa.int64()
            ),
            "expected_satisfaction": pa.array(expected, pa.float64()),
            "noise_sd": pa.array(noise_sd, pa.float64()),
            "persona": arrow_column({"persona": persona}, "persona", PERSONAS),
        }
    )


def loan_truth(first_id: int, prob: np.ndarray) -> pa.Table:
    """sim.loan_truth's rows for loans numbered from `first_id` (without batch_id)."""
    return pa.table(
        {
            "loan_id": pa.array(np.arange(first_id, first_id + len(prob), dtype=np.int64)),
            "default_probability": pa.array(prob, pa.float64()),
        }
    )


def months_between(start: date, end: date) -> int:
    """Whole months from `start` to `end`."""
    return (end.year - start.year) * 12 + end.month - start.month


def add_months(day: date, months: int) -> date:
    """`day` moved by whole months (the day of the month clamped to the month's length)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, monthrange(year, month)[1]))


def runs_table(sim: Simulation) -> pa.Table:
    """The one row `sim.simulation_runs` holds about this simulation (one batch)."""
    return pa.table(
        {
            "seed": pa.array([sim.seed], pa.int64()),
            "customers": pa.array([sim.customers], pa.int64()),
            "raw_customers": pa.array([sim.rows["raw.customers"]], pa.int64()),
            "raw_orders": pa.array([sim.rows["raw.orders"]], pa.int64()),
            "raw_loans": pa.array([sim.rows["raw.loans"]], pa.int64()),
            "generate_seconds": pa.array([sim.seconds], pa.float64()),
            "as_of_date": pa.array([sim.as_of_date], pa.date32()),
            "simulated_at": pa.array([datetime.now(UTC).replace(tzinfo=None)], pa.timestamp("us")),
            "batch_id": pa.array([sim.batch_id], pa.int32()),
            "months": pa.array([sim.months], pa.int32()),
            "drift": pa.array([sim.drift], pa.string()),
            "period_start": pa.array([sim.period_start], pa.date32()),
        }
    )


def write(sim: Simulation, path: str | Path | None = None) -> float:
    """Replace raw.*, sim.* and sim.simulation_runs in the warehouse (`path`, default
    `WAREHOUSE_PATH`) in one transaction; return the seconds it took.

    The columns keep the Arrow types (dictionary-encoded text lands as VARCHAR): the contract of
    docs/data_contract.md.
    """
    started = time.perf_counter()
    with open_warehouse(path) as warehouse:
        warehouse.replace_tables({**sim.tables, SIMULATION_RUNS: runs_table(sim)})
    return time.perf_counter() - started
