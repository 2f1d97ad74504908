"""What a benchmark run measures: its sizes, tasks, repeats and limits, checked."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ml.bench.scoring import SCORING_TASK
from ml.bench.training import DEFAULT_TRAIN_TIMEOUT_S, TASKS
from ml.core.config import DEFAULT_SEED
from ml.core.errors import UserError
from ml.core.tasks import BUILTIN_TASKS

DEFAULT_SIZES = (100_000, 1_000_000, 10_000_000)
#: The sizes also measured on Spark (local[2]): its fixed costs make 10M orders take hours.
DEFAULT_SPARK_SIZES = (100_000, 1_000_000)
ORDERS_PER_CUSTOMER = 10
DEFAULT_DBT_REPEATS = 3
#: Scoring also runs on the generic (pandas) path up to this many rows.
DEFAULT_GENERIC_MAX_ROWS = 1_000_000


@dataclass
class BenchOptions:
    """The options of `python -m scripts.bench` (see its --help)."""

    sizes: list[int] = field(default_factory=lambda: list(DEFAULT_SIZES))
    spark_sizes: list[int] = field(default_factory=list)  # the sizes measured on Spark too
    workdir: Path | None = None  # None: a new folder in the temp dir, removed afterwards
    keep: bool = False
    seed: int = DEFAULT_SEED
    skip_train: bool = False
    dbt_repeats: int = DEFAULT_DBT_REPEATS
    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    train_timeout: float | None = DEFAULT_TRAIN_TIMEOUT_S  # None or 0: no limit
    batch_rows: int | None = None
    generic_max_rows: int = DEFAULT_GENERIC_MAX_ROWS
    profile: bool = False
    serving: bool = True  # the HTTP server at the smallest DuckDB size (ml.bench.serving)


def parse_sizes(text: str, flag: str = "--sizes", allow_empty: bool = False) -> list[int]:
    """`100000,1e6,10_000_000` -> [100000, 1000000, 10000000] (each at least 10 orders); an
    error names `flag`. An empty list is refused unless `allow_empty`."""
    sizes = []
    for part in text.split(","):
        part = part.strip().replace("_", "")
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise UserError(f"{flag}: {part!r} is not a number") from None
        if not math.isfinite(value) or value != int(value) or value < ORDERS_PER_CUSTOMER:
            raise UserError(f"{flag}: {part!r} must be a whole number of at least 10 orders")
        sizes.append(int(value))
    if not sizes and not allow_empty:
        raise UserError(f"{flag} is empty")
    return sorted(set(sizes))


def parse_tasks(text: str) -> list[str]:
    """`a,b` -> the built-in tasks to train, the scoring task first (scoring needs its models)."""
    tasks = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in BUILTIN_TASKS]
    if unknown:
        raise UserError(f"--tasks: unknown task {unknown[0]!r}")
    if SCORING_TASK in tasks:
        tasks.remove(SCORING_TASK)
        tasks.insert(0, SCORING_TASK)
    return tasks
