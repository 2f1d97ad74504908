"""Compare the project with plain baselines on any CSV: `python -m scripts.benchmark_models`.

    python -m scripts.benchmark_models DATA.csv --target T [--id ID] [--problem auto]
    python -m scripts.benchmark_models DATA.csv --target T --train-args "--fast" --output cmp.md
    python -m scripts.benchmark_models DATA.csv --target T --seed 1 --output cmp.json

One seeded split of the labelled rows (80/20, stratified by class for binary and multiclass
targets). The project is trained and scored as a user would, in a throw-away warehouse
(WAREHOUSE_PATH and ARTIFACTS_PATH in a temporary folder): `scripts.load_csv` of the training
rows, `ml.train --table ... --target ...` with its default options (plus `--train-args`), and
`ml.predict --input` of the test rows, each a subprocess of this interpreter. The baselines
(logistic regression, HistGradientBoosting, xgboost defaults, each with a plain preprocessing)
are fitted in-process on the identical rows. Every model is scored on the test rows: ROC-AUC and
F1 (binary; F1 at a threshold chosen without the test rows), macro F1 and accuracy
(multiclass), R² and RMSE (regression), with train and predict seconds. The table names the
best peer per metric and the project's gap. The measurements are `ml.bench.models`'.

Exit code 0 when every model ran, 1 when one failed (the table says which), 2 with one
`error:` line on bad input (a missing file, target or id column, a target that cannot be
split or trained on).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from ml.bench.models import DEFAULT_SPLIT_SEED, DEFAULT_TEST_SIZE, ModelsOptions, compare_models
from ml.bench.models_baselines import BASELINES
from ml.bench.models_project import parse_train_args
from ml.bench.models_report import check_output, markdown, write_output
from ml.core.cli import ArgumentParser, run
from ml.core.cli import seed as seed_type
from ml.core.errors import UserError
from ml.core.tasks import PROBLEM_TYPES


def say(message: str) -> None:
    """A progress line on stderr (stdout holds the table)."""
    print(f"[benchmark_models {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {value}")
    return value


def parse_baselines(text: str) -> tuple[str, ...]:
    """`--baselines a,b`: known names, in the order given; '' for none."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise UserError(f"--baselines: unknown {unknown[0]!r}; choose from {','.join(BASELINES)}")
    return names


def join_train_args(argv: Sequence[str]) -> list[str]:
    """`--train-args "--fast"` as `--train-args=--fast`: argparse would take a value that starts
    with `--` for an option of its own."""
    out, args = [], list(argv)
    i = 0
    while i < len(args):
        if args[i] == "--train-args" and i + 1 < len(args):
            out.append(f"--train-args={args[i + 1]}")
            i += 2
            continue
        out.append(args[i])
        i += 1
    return out


def parser() -> ArgumentParser:
    """The command's options."""
    p = ArgumentParser(
        prog="python -m scripts.benchmark_models", description=__doc__.split("\n")[0]
    )
    p.add_argument("csv", help="the CSV file (read as scripts.load_csv reads it)")
    p.add_argument("--target", required=True, help="target column (matched ignoring case)")
    p.add_argument("--id", dest="id_column", help="id column (passed to ml.train; not a feature)")
    p.add_argument(
        "--problem",
        default="auto",
        choices=["auto", *PROBLEM_TYPES],
        help="problem type (default: inferred from the target, as ml.train infers it)",
    )
    p.add_argument(
        "--seed",
        type=seed_type,
        default=DEFAULT_SPLIT_SEED,
        help=f"seed of the split, the baselines and their folds (default {DEFAULT_SPLIT_SEED}); "
        "ml.train keeps its own default unless --train-args says --seed",
    )
    p.add_argument(
        "--test-size",
        type=_share,
        default=DEFAULT_TEST_SIZE,
        help=f"share of the labelled rows held out (default {DEFAULT_TEST_SIZE})",
    )
    p.add_argument(
        "--train-args",
        default="",
        help='extra ml.train options, quoted as one argument (e.g. "--fast")',
    )
    p.add_argument(
        "--baselines",
        default=",".join(BASELINES),
        help=f"baselines to fit, comma-separated (default {','.join(BASELINES)})",
    )
    p.add_argument("--output", help="also save the report: FILE.md or FILE.json")
    p.add_argument(
        "--workdir", help="folder for the split, warehouse and logs (default: a temporary one)"
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary folder afterwards")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(join_train_args(argv))
    output = check_output(args.output) if args.output else None
    csv = Path(args.csv)
    if not csv.is_file():
        raise UserError(f"{args.csv}: no such file")
    options = ModelsOptions(
        csv=csv,
        target=args.target,
        id_column=args.id_column,
        problem=args.problem,
        seed=args.seed,
        test_size=args.test_size,
        train_args=parse_train_args(args.train_args),
        baselines=parse_baselines(args.baselines),
        workdir=Path(args.workdir) if args.workdir else None,
        keep=args.keep,
    )
    command = "python -m scripts.benchmark_models " + shlex.join(argv)
    result = compare_models(options, command, say)
    print(markdown(result), end="")
    if output is not None:
        write_output(result, output)
        say(f"wrote {output}")
    return 0 if all(r["status"] == "ok" for r in result["models"]) else 1


if __name__ == "__main__":
    run(main, "scripts.benchmark_models")
