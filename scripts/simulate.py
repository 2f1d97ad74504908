"""Simulate realistic raw business data: `python -m scripts.simulate --customers N --seed S`.

Lands `raw.customers`, `raw.orders` and `raw.loans` (messy, as a source system would hand them
over) and the noise-free ground truth `sim.customer_truth` and `sim.loan_truth` (never a feature)
in the warehouse (`WAREHOUSE_PATH`), replacing what was there: batch 0. With `--append`, the same
world continues for the next `--months` (default 1) as the next batch, optionally shifted by
`--drift SPEC` (`income=F`, `new_purpose=NAME[:SHARE]`, `concept=FEATURE`, comma separated).
The world, the designed mess, the batches and drifts: `ml.ingestion.simulator` and
docs/data_contract.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from ml.core import config
from ml.core.cli import ArgumentParser, positive_int, run
from ml.core.errors import UserError
from ml.ingestion.simulator import Simulation, append, simulate, write


def _summary(sim: Simulation, write_s: float) -> list[str]:
    total_s = sim.seconds + write_s
    lines = [f"  {name:<22} {rows:>12,} rows" for name, rows in sim.rows.items()]
    lines.append(
        f"  generate {sim.seconds:.1f}s + write {write_s:.1f}s = {total_s:.1f}s; "
        f"{sim.raw_rows / max(total_s, 1e-9):,.0f} raw rows/s; "
        f"default rate {sim.meta['default_rate']:.1%}"
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: simulate (or append a batch), write, print a summary."""
    parser = ArgumentParser(prog="python -m scripts.simulate", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--customers",
        type=positive_int,
        default=None,
        help="number of customers (default 50000; orders are ~10x, loans ~0.4x); not with --append",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed (default 42; with --append, the base world's seed)",
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="continue the warehouse's world with the next batch instead of replacing it",
    )
    parser.add_argument(
        "--months",
        type=positive_int,
        default=None,
        help="with --append: months the batch covers (default 1)",
    )
    parser.add_argument(
        "--drift",
        default=None,
        help="with --append: e.g. income=1.5, new_purpose=crypto:0.3, concept=credit_score",
    )
    args = parser.parse_args(argv)
    if args.seed is not None and args.seed < 0:
        raise UserError(f"--seed must be a whole number >= 0, got {args.seed}")
    if args.append:
        if args.customers is not None:
            raise UserError(
                "--customers cannot be used with --append (the base world's size is fixed)"
            )
        sim, write_s = append(args.months or 1, args.drift, args.seed)
        print(
            f"appended batch {sim.batch_id} ({sim.period_start} .. {sim.as_of_date}, "
            f"{sim.months} month{'s' if sim.months > 1 else ''}, drift {sim.drift or 'none'}, "
            f"seed {sim.seed}) to {config.warehouse_path()}"
        )
        print(
            "\n".join(_summary(sim, write_s)).replace(
                "default rate", f"{int(sim.meta['new_customers']):,} new customers; default rate"
            )
        )
        return 0
    if args.months is not None or args.drift is not None:
        raise UserError("--months and --drift need --append (they describe a batch)")
    customers = args.customers or 50_000
    seed = 42 if args.seed is None else args.seed
    sim = simulate(customers, seed)
    write_s = write(sim)
    print(f"simulated {customers:,} customers with seed {seed} into {config.warehouse_path()}")
    print("\n".join(_summary(sim, write_s)))
    return 0


if __name__ == "__main__":
    run(main, "scripts.simulate")
