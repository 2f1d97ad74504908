"""The project trained and scored exactly as a user would, in a throw-away warehouse.

    python -m scripts.load_csv train.csv --table raw.<name>
    python -m ml.train --table raw.<name> --target T [--id ID] [--problem P] [extra options]
    python -m ml.predict --task <name> --input test.csv --output scored.csv

Each is a subprocess of this interpreter (imports, reading, writing: everything a user waits
for), with WAREHOUSE_PATH and ARTIFACTS_PATH in the work folder, so the user's warehouse is
never touched. ml.train gets its default options unless extra ones are passed (`--fast`, ...).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ml.bench.process import base_env, python_module, run_command, tail
from ml.core.errors import UserError

#: ml.train options the comparison sets itself; extra options may not repeat them.
OWN_OPTIONS = ("--table", "--target", "--id", "--task", "--problem")


def project_name(train_args: Sequence[str]) -> str:
    """The project's row in the table: `project (ml.train defaults)` or with the extra options."""
    return f"project (ml.train {shlex.join(train_args) if train_args else 'defaults'})"


def check_train_args(args: Sequence[str]) -> tuple[str, ...]:
    """Extra ml.train options, refused (UserError) when they name what the comparison sets."""
    for arg in args:
        option = arg.split("=", 1)[0]
        if option in OWN_OPTIONS:
            raise UserError(
                f"--train-args may not contain {option}: the benchmark sets it "
                "(use --target, --id or --problem of the benchmark)"
            )
    return tuple(args)


def parse_train_args(text: str | None) -> tuple[str, ...]:
    """`--train-args "..."` as ml.train's argument list (shell quoting rules)."""
    try:
        return check_train_args(shlex.split(text or ""))
    except ValueError as err:
        raise UserError(f"--train-args: {err}") from None


def project_commands(
    train_csv: Path,
    test_csv: Path,
    table: str,
    target: str,
    id_column: str | None,
    problem: str,
    train_args: Sequence[str],
    scored_csv: Path,
) -> dict[str, list[str]]:
    """The three steps' arguments (after `python -m`)."""
    task = table.split(".", 1)[1]
    train = ["ml.train", "--table", table, "--target", target]
    if id_column:
        train += ["--id", id_column]
    if problem != "auto":
        train += ["--problem", problem]
    return {
        "load": ["scripts.load_csv", str(train_csv), "--table", table],
        "train": [*train, *train_args],
        "predict": [
            "ml.predict",
            "--task",
            task,
            "--input",
            str(test_csv),
            "--output",
            str(scored_csv),
        ],  # fmt: skip
    }


def run_project(
    train_csv: Path,
    test_csv: Path,
    table: str,
    target: str,
    id_column: str | None,
    problem: str,
    train_args: Sequence[str],
    workdir: Path,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Load, train and score in a fresh warehouse under `workdir`: seconds per step (load, train,
    predict) and CPU seconds; status `ok`, or `failed` with the step and its log's tail. The
    scored rows are in `<workdir>/scored.csv`."""
    warehouse = workdir / "warehouse" / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    env = base_env(warehouse, workdir / "artifacts")
    scored_csv = workdir / "scored.csv"
    steps = project_commands(
        train_csv, test_csv, table, target, id_column, problem, train_args, scored_csv
    )
    out: dict[str, Any] = {
        "status": "ok",
        "commands": ["python -m " + shlex.join(args) for args in steps.values()],
        "cpu_s": 0.0,
    }
    for step, args in steps.items():
        say(f"project: python -m {shlex.join(args[:1])} ...")
        result = run_command(python_module(*args), env, workdir / "logs" / f"{step}.log")
        out[f"{step}_s"] = result["seconds"]
        out["cpu_s"] += result["cpu_s"]
        if result["returncode"] != 0:
            out.update(status="failed", failed_step=step, log_tail=tail(result["log"], 20))
            break
    out["log_dir"] = str(workdir / "logs")
    return out
