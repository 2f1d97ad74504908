"""Step 1 of a size: simulate the raw tables and land them, timed as the simulator reports it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ml.bench.process import self_cpu
from ml.ingestion.simulator import simulate, write


def run_simulate(customers: int, seed: int, warehouse: Path) -> dict[str, Any]:
    """Simulate and land raw.* and sim.*; raw rows per second as `scripts.simulate` reports
    it (generation + the write, the simulator's own timings)."""
    cpu0, wall0 = self_cpu(), time.perf_counter()
    sim = simulate(customers, seed)
    generate_s = float(sim.seconds)
    write_s = float(write(sim, warehouse))
    rows = {name: int(n) for name, n in sim.rows.items()}
    del sim
    raw_rows = sum(n for name, n in rows.items() if name.startswith("raw."))
    seconds = generate_s + write_s
    return {
        "customers": customers,
        "rows": rows,
        "raw_rows": raw_rows,
        "generate_s": generate_s,
        "write_s": write_s,
        "seconds": seconds,
        "wall_s": time.perf_counter() - wall0,
        "cpu_s": self_cpu() - cpu0,
        "rows_per_s": raw_rows / seconds if seconds > 0 else None,
    }
