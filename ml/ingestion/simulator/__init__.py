"""Simulate realistic raw business data (`python -m scripts.simulate --customers N --seed S`).

Lands `raw.customers`, `raw.orders` and `raw.loans` (messy, as a source system would hand them
over) and the noise-free ground truth `sim.customer_truth` and `sim.loan_truth` (never a feature)
in the warehouse. The columns and the designed mess rates are documented in
docs/data_contract.md; the rates are `RATES`.

    sim = simulate(50_000, seed=42)   # Arrow tables, deterministic for the seed: batch 0
    seconds = write(sim)              # one transaction replacing raw.* and sim.*
    batch, seconds = append(months=1, drift="income=1.5")  # the next batch, appended

Every raw row carries its `batch_id` and `loaded_at` (the batch's as-of date); `batches`
continues the world period by period and `drift` parses the named shifts a batch may apply.

The modules, one job each: `world` (calendar, rates, categories and their spellings), `sampling`
(lookup-table draws), `customers`, `orders`, `loans` (the generative model), `landing` (the raw
tables with their mess, as Arrow) and `simulation` (the driver and the write).
"""

from ml.ingestion.simulator.batches import append
from ml.ingestion.simulator.simulation import Simulation, simulate, write
from ml.ingestion.simulator.world import RATES

__all__ = ["RATES", "Simulation", "append", "simulate", "write"]
