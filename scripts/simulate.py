"""Simulate realistic raw business data: `python -m scripts.simulate --customers N --seed S`.

Lands `raw.customers`, `raw.orders` and `raw.loans` (messy, as a source system would hand them
over) and the noise-free ground truth `sim.customer_truth` and `sim.loan_truth` (never a feature)
in the warehouse (`WAREHOUSE_PATH`). The world, the designed mess and how it is generated:
`ml.ingestion.simulator` and docs/data_contract.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from ml.core import config
from ml.core.cli import ArgumentParser, positive_int, run
from ml.ingestion.simulator import simulate, write


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: simulate, write, print a summary."""
    parser = ArgumentParser(prog="python -m scripts.simulate", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--customers",
        type=positive_int,
        default=50_000,
        help="number of customers (default 50000; orders are ~10x, loans ~0.4x)",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    args = parser.parse_args(argv)
    sim = simulate(args.customers, args.seed)
    write_s = write(sim)
    total_s = sim.seconds + write_s
    print(
        f"simulated {args.customers:,} customers with seed {args.seed} "
        f"into {config.warehouse_path()}"
    )
    for name, rows in sim.rows.items():
        print(f"  {name:<22} {rows:>12,} rows")
    print(
        f"  generate {sim.seconds:.1f}s + write {write_s:.1f}s = {total_s:.1f}s; "
        f"{sim.raw_rows / total_s:,.0f} raw rows/s; default rate {sim.meta['default_rate']:.1%}"
    )
    return 0


if __name__ == "__main__":
    run(main, "scripts.simulate")
