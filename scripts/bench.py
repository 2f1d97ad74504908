"""Benchmark the warehouse at growing sizes: `python -m scripts.bench` (`make bench`).

    python -m scripts.bench                                   # 100k, 1M, 10M; Spark 100k, 1M
    python -m scripts.bench --sizes 100000,1000000 --keep --workdir /tmp/bench
    python -m scripts.bench --sizes 3000 --spark-sizes '' --skip-train   # a smoke test in minutes

Every size is a number of orders (customers = orders / 10) in its own fresh warehouse under
`--workdir` (WAREHOUSE_PATH and ARTIFACTS_PATH point there for every subprocess). Per size:

1. simulate: `ml.ingestion.simulator.simulate()` + `write()`; raw rows landed per second, as
   the simulator's own summary line computes it;
2. dbt: `dbt build --selector production_build` (dbt_project/selectors.yml: the production
   build, as `make dbt-build`) in a subprocess with target/ and logs/ under the workdir, after
   a timed `dbt parse` that does the full parse, so the build partially parses as a repeated
   `make dbt-build` does; dbt's own run_results.json says where its time went;
3. DuckDB alone: the SAME compiled SQL that build ran (target/manifest.json), in dependency
   order, on a copy of the same raw warehouse opened through the warehouse interface. Steps 2
   and 3 run as `--dbt-repeats` pairs (default 3), each on fresh copies of the raw warehouse:
   dbt_vs_duckdb_ratio is the median of the pairs' ratios (dbt build wall time / DuckDB wall
   time), and every pair is reported;
4. train: what `python -m ml.train --fast --task T --seed S --skip-gate` runs, per task, each in
   its own process, with each training step timed (the training API's progress callback);
5. scoring: `bench.scoring_input`, as many rows as the size has orders (marts.loan_features rows
   repeated with new loan ids), scored by the loan_repayment champion and by the xgboost
   candidate of the same run with `ml.serving.batch.score_table`, each in its own process so its
   peak RSS is the scoring's own (fast path; the generic pandas path too up to
   --generic-max-rows); the report says which path scored and why.

6. serving (at the smallest size, after training loan_repayment; `--no-serving` skips it):
   `python -m ml.serve` on that warehouse, single-row and 1,000-row requests with 1, 4 and 16
   concurrent clients on loopback, for the deployed champion and the xgboost candidate, beside
   the same scoring in-process (`ml.bench.serving`).

Writes `<output>/bench.json` (the largest size's headline numbers at the top level, every size
under "runs"), `<output>/bench.md` (tables, targets, where the time goes) and
`<output>/bench.png` (log-log time against rows). Timings on a shared machine are noisy: every
step also records its CPU seconds, and the report states the load average. The measurements
are `ml.bench`'s.

Spark (`--spark-sizes`, default 100k and 1M orders; '' for none; Java 17+ needed): after
DuckDB's sizes, each Spark size runs in a fresh lakehouse (WAREHOUSE_ENGINE=spark,
WAREHOUSE_PATH=<size folder>/lakehouse, its own ARTIFACTS_PATH, Spark `local[2]`): simulate,
one dbt build of the same selector (no DuckDB-alone pairs), training as above, and scoring of the
same two models over a `bench.scoring_input` of the size's rows (distributed). The bench process
never opens a lakehouse (its Derby metastore admits one process at a time and an in-process JVM
holds it until the process exits): every Spark step runs in a worker process. bench.md and
bench.json gain a "Spark beside DuckDB" section: per step and size, seconds, µs per row and
growth on both engines, and a paragraph read from those numbers; the six targets are DuckDB's.
A Spark size that fails is reported (and the exit code is 1) after DuckDB's report is written.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from ml.bench.markdown import fmt
from ml.bench.options import (
    DEFAULT_DBT_REPEATS,
    DEFAULT_GENERIC_MAX_ROWS,
    DEFAULT_SIZES,
    DEFAULT_SPARK_SIZES,
    BenchOptions,
    parse_sizes,
    parse_tasks,
)
from ml.bench.reports import write_reports
from ml.bench.run import run_bench
from ml.bench.training import DEFAULT_TRAIN_TIMEOUT_S, TASKS
from ml.core.cli import ArgumentParser, positive_int, run
from ml.core.config import DEFAULT_SEED
from ml.core.errors import UserError

VERDICTS = {True: "met", False: "NOT met", None: "not measured"}


def say(message: str) -> None:
    """A progress line on stdout."""
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", flush=True)


def parser() -> ArgumentParser:
    """The command's options."""
    p = ArgumentParser(prog="python -m scripts.bench", description=__doc__.split("\n")[0])
    p.add_argument(
        "--sizes",
        default=",".join(str(s) for s in DEFAULT_SIZES),
        help="orders per size, comma-separated (default 100000,1000000,10000000)",
    )
    p.add_argument(
        "--spark-sizes",
        default=",".join(str(s) for s in DEFAULT_SPARK_SIZES),
        help="orders per size also measured on Spark (local[2]), comma-separated; '' for none "
        "(default 100000,1000000; needs Java 17+)",
    )
    p.add_argument("--output", default="reports", help="folder of bench.md/json/png")
    p.add_argument(
        "--workdir", help="folder for the warehouses (default: a new folder in the temp dir)"
    )
    p.add_argument("--keep", action="store_true", help="keep the warehouses afterwards")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    p.add_argument("--skip-train", action="store_true", help="no training (smoke tests)")
    p.add_argument(
        "--dbt-repeats",
        type=positive_int,
        default=DEFAULT_DBT_REPEATS,
        help="(dbt build, DuckDB alone) pairs per size; the ratio is the median pair's "
        f"(default {DEFAULT_DBT_REPEATS})",
    )
    p.add_argument(
        "--tasks", default=",".join(TASKS), help=f"tasks to train (default {','.join(TASKS)})"
    )
    p.add_argument(
        "--train-timeout",
        type=float,
        default=DEFAULT_TRAIN_TIMEOUT_S,
        help="seconds after which a training task is stopped and reported as timed out, with "
        f"the step it was in (default {DEFAULT_TRAIN_TIMEOUT_S:.0f}; 0: no limit)",
    )
    p.add_argument("--batch-rows", type=positive_int, default=None, help="rows per scoring batch")
    p.add_argument(
        "--generic-max-rows",
        type=int,
        default=DEFAULT_GENERIC_MAX_ROWS,
        help="also score on the generic (pandas) path up to this many rows (default 1,000,000)",
    )
    p.add_argument(
        "--profile", action="store_true", help="cProfile the scoring at the largest size"
    )
    p.add_argument(
        "--no-serving",
        action="store_true",
        help="skip the HTTP server's latency and throughput (measured at the smallest size)",
    )
    return p


def require_java() -> None:
    """Refuse, in one line, to measure Spark without Java (Spark runs on the JVM)."""
    home = os.environ.get("JAVA_HOME", "")
    if shutil.which("java") or (home and shutil.which("java", path=os.path.join(home, "bin"))):
        return
    raise UserError(
        "--spark-sizes: Spark needs Java 17 or newer and java is not on PATH: install it with "
        "'apt-get install -y openjdk-17-jre-headless' (or set JAVA_HOME), or pass "
        "--spark-sizes '' to measure DuckDB only"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    options = BenchOptions(
        sizes=parse_sizes(args.sizes),
        spark_sizes=parse_sizes(args.spark_sizes, "--spark-sizes", allow_empty=True),
        workdir=Path(args.workdir) if args.workdir else None,
        keep=args.keep,
        seed=args.seed,
        skip_train=args.skip_train,
        dbt_repeats=args.dbt_repeats,
        tasks=parse_tasks(args.tasks),
        train_timeout=args.train_timeout,
        batch_rows=args.batch_rows,
        generic_max_rows=args.generic_max_rows,
        profile=args.profile,
        serving=not args.no_serving,
    )
    if options.spark_sizes:
        require_java()
    # The bench process itself works on DuckDB only (simulating, building the scoring input and
    # fitting the stand-in in-process); every Spark step runs in a worker whose environment says
    # spark (ml.bench.process.base_env), whatever WAREHOUSE_ENGINE this shell exported.
    os.environ["WAREHOUSE_ENGINE"] = "duckdb"
    command = "python -m scripts.bench " + " ".join(shlex.quote(a) for a in argv)
    result = run_bench(options, command, say)
    json_path, md_path, _ = write_reports(result, Path(args.output))
    for t in result["targets"]:
        say(f"{t['metric']}: {fmt(t['value'], 2)} (target {t['target']}): {VERDICTS[t['met']]}")
    failed = (result.get("spark") or {}).get("failed") or []
    if failed:
        say(f"Spark failed at {', '.join(f'{n:,}' for n in failed)} orders: see {md_path}")
    say(f"wrote {md_path} and {json_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    run(main, "scripts.bench")
