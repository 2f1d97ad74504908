"""The simulation: every table for N customers from one seed, and landing them in the warehouse.

Everything is vectorised with numpy (no Python loop per row, no pandas) and handed to the
warehouse as Arrow arrays over the numpy buffers, so 1M customers and 10M orders take a few
seconds. The same seed gives identical tables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from ml.core.errors import UserError
from ml.core.warehouse import open_warehouse
from ml.ingestion.simulator.customers import customer_behaviour, customers, satisfaction
from ml.ingestion.simulator.landing import arrow_column, raw_customers, raw_loans, raw_orders
from ml.ingestion.simulator.loans import applications, loans
from ml.ingestion.simulator.orders import orders
from ml.ingestion.simulator.world import PERSONAS, configured_as_of, epoch_day

#: One row per landing: the seed, the sizes and the as-of date of the tables in raw.* and sim.*.
SIMULATION_RUNS = "sim.simulation_runs"


@dataclass
class Simulation:
    """The simulated tables as Arrow tables, and how long generating them took."""

    tables: dict[str, pa.Table]
    seconds: float
    seed: int
    customers: int
    meta: dict[str, float] = field(default_factory=dict)
    #: The day after the simulated world ends.
    as_of_date: date = field(default_factory=configured_as_of)

    @property
    def rows(self) -> dict[str, int]:
        """Row count of every table."""
        return {name: t.num_rows for name, t in self.tables.items()}

    @property
    def raw_rows(self) -> int:
        """Rows of the raw.* tables (what the landing speed is measured in)."""
        return sum(rows for name, rows in self.rows.items() if name.startswith("raw."))


def simulate(n_customers: int, seed: int, *, as_of: date | None = None) -> Simulation:
    """Generate every table for `n_customers` customers, deterministically for `seed`.

    The world ends the day before `as_of` (default: the dbt var `as_of_date`).
    """
    if n_customers < 1:
        raise UserError("--customers must be at least 1")
    if seed < 0:
        raise UserError(f"--seed must be a whole number >= 0, got {seed}")
    started = time.perf_counter()
    as_of = as_of or configured_as_of()
    day = epoch_day(as_of)
    rng = np.random.default_rng(seed)
    n = n_customers
    c = customers(rng, n, day)
    applied = applications(rng, c, day)
    o, totals, prior = orders(rng, c, applied, day)
    expected, noise_sd, observed = satisfaction(rng, c, customer_behaviour(o, totals, day), day)
    ln = loans(rng, c, applied, prior)
    k = len(ln["cust"])
    tables = {
        "raw.customers": raw_customers(rng, c, observed, day),
        "raw.orders": raw_orders(rng, n, o, day),
        "raw.loans": raw_loans(rng, n, ln, day),
        # ---- ground truth
        "sim.customer_truth": pa.table(
            {
                "customer_id": pa.array(np.arange(1, n + 1, dtype=np.int64), pa.int64()),
                "expected_satisfaction": pa.array(expected, pa.float64()),
                "noise_sd": pa.array(noise_sd, pa.float64()),
                "persona": arrow_column({"persona": c["persona"]}, "persona", PERSONAS),
            }
        ),
        "sim.loan_truth": pa.table(
            {
                "loan_id": pa.array(np.arange(1, k + 1, dtype=np.int64), pa.int64()),
                "default_probability": pa.array(ln["prob"], pa.float64()),
            }
        ),
    }
    return Simulation(
        tables=tables,
        seconds=time.perf_counter() - started,
        seed=seed,
        customers=n,
        meta={"default_rate": float(ln["defaulted"].mean()) if k else 0.0},
        as_of_date=as_of,
    )


def runs_table(sim: Simulation) -> pa.Table:
    """The one row `sim.simulation_runs` holds about this simulation."""
    return pa.table(
        {
            "seed": [sim.seed],
            "customers": [sim.customers],
            "raw_customers": [sim.rows["raw.customers"]],
            "raw_orders": [sim.rows["raw.orders"]],
            "raw_loans": [sim.rows["raw.loans"]],
            "generate_seconds": [sim.seconds],
            "as_of_date": [sim.as_of_date],
            "simulated_at": [datetime.now(UTC).replace(tzinfo=None)],
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
