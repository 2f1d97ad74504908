"""An honest comparison on any CSV: the project against plain baselines on the same split.

`python -m scripts.benchmark_models DATA.csv --target T` (the entry point) calls `compare_models`:

1. the CSV is read as `scripts.load_csv` reads it (`ml.ingestion.csv.read_csv`: the same types,
   the same missing markers); rows without a target are left out;
2. the target is resolved by the project's own rule (`ml.training.data`: the problem type, and for
   a two-level text target that is not yes/no, the rarer label is the positive class), on the
   training rows only, exactly as `ml.train` sees them;
3. one split, 80/20 by default, stratified by class for binary and multiclass targets, seeded;
4. the project is trained and scored as a user would (`models_project`: load_csv -> ml.train ->
   ml.predict, subprocesses, a throw-away warehouse); the baselines on the identical rows
   in-process (`models_baselines`: logistic regression, HistGradientBoosting, xgboost defaults);
5. every model is scored on the held-out rows with the same two metrics: ROC-AUC and F1 (binary;
   F1 at a threshold chosen without the test rows), macro F1 and accuracy (multiclass), R² and
   RMSE (regression); the best peer per metric and the project's gap (`summarise`).

Functions compute and return values; `models_report` renders them; only the entry point prints.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split

from ml.bench.models_baselines import (
    BASELINE_NAMES,
    BASELINES,
    THRESHOLD_FOLDS,
    feature_frame,
    fit_baseline,
)
from ml.bench.models_project import project_name, run_project
from ml.bench.process import load_average, machine_info
from ml.core.errors import UserError
from ml.core.names import require_column
from ml.core.runs import library_versions
from ml.core.tasks import BUILTIN_TASKS
from ml.estimators.preprocessing import plain_types
from ml.ingestion.csv import read_csv
from ml.ingestion.csv.loading import PROTECTED_TABLES
from ml.training.data import resolve_target as resolve_target_rule
from ml.training.data import target_codes

#: The two headline metrics of each problem type, as the table shows them.
METRICS = {
    "binary": ("roc_auc", "f1"),
    "multiclass": ("f1_macro", "accuracy"),
    "regression": ("r2", "rmse"),
}
LOWER_IS_BETTER = frozenset({"rmse"})
DEFAULT_TEST_SIZE = 0.2
DEFAULT_SPLIT_SEED = 0


@dataclass(frozen=True)
class ModelsOptions:
    """What one comparison runs."""

    csv: Path
    target: str
    id_column: str | None = None
    problem: str = "auto"
    seed: int = DEFAULT_SPLIT_SEED
    test_size: float = DEFAULT_TEST_SIZE
    train_args: tuple[str, ...] = ()  # extra options of ml.train (e.g. --fast)
    baselines: tuple[str, ...] = BASELINES
    workdir: Path | None = None
    keep: bool = False


@dataclass
class Target:
    """The target of the labelled rows, resolved by the project's rule on the training rows."""

    problem: str  # binary | multiclass | regression
    y_train: np.ndarray  # 0/1, class codes 0..K-1, or values
    y_test: np.ndarray
    class_labels: list[str] | None = None  # multiclass: what each code means
    mapping: dict[str, int] | None = None  # binary: text label -> 0/1, when the target is text
    positive: str | None = None  # binary: the label of class 1, as written


@dataclass
class Split:
    """One seeded split of the labelled rows (positions in the CSV's rows)."""

    train: np.ndarray
    test: np.ndarray
    stratified: bool
    unlabelled: int = 0  # rows left out for having no target


# -- the data: read, resolve, split -----------------------------------------------------------


def read_table(path: Path) -> tuple[pa.Table, pd.DataFrame]:
    """The CSV as `scripts.load_csv` types it (Arrow), and as the models see it (pandas)."""
    table, _ = read_csv(path)
    return table, plain_types(table.to_pandas(date_as_object=False))


def _labels_text(values: pd.Series) -> pd.Series:
    """A target's values as stripped text (how the project compares labels)."""
    return values.astype("object").map(lambda v: v if pd.isna(v) else str(v).strip())


def split_rows(
    target: pd.Series, classes: bool, test_size: float = DEFAULT_TEST_SIZE, seed: int = 0
) -> Split:
    """Split the rows with a target into train and test, seeded; stratified by label when the
    target is classes. Refuses (UserError) a class with fewer than two rows or a test share
    that leaves either side empty."""
    if not 0.0 < test_size < 1.0:
        raise UserError(f"--test-size must be between 0 and 1, got {test_size}")
    labelled = np.flatnonzero(target.notna().to_numpy())
    unlabelled = len(target) - len(labelled)
    if len(labelled) < 2:
        raise UserError(f"target column {target.name!r} has {len(labelled)} labelled rows")
    strata = None
    if classes:
        strata = _labels_text(target.iloc[labelled]).to_numpy()
        counts = pd.Series(strata).value_counts()
        if counts.min() < 2:
            raise UserError(
                f"class {counts.idxmin()!r} of {target.name!r} has {counts.min()} row; every "
                "class needs at least 2 to be split (the project needs 10 in the training rows)"
            )
    try:
        train, test = train_test_split(
            labelled, test_size=test_size, random_state=seed, shuffle=True, stratify=strata
        )
    except ValueError as err:
        raise UserError(
            f"cannot split {len(labelled)} rows {test_size:.0%} for test: {err}"
        ) from None
    return Split(np.sort(train), np.sort(test), strata is not None, unlabelled)


def resolve_target(train: pd.Series, test: pd.Series, problem: str = "auto") -> Target:
    """The target as the project resolves it: by `ml.training.data`'s rule, on the training
    rows only (as ml.train, which never sees the test rows), then the test rows mapped the same
    way. Test labels the training rows lack are refused (a stratified split has none)."""
    resolved, y, mapping = resolve_target_rule(train.reset_index(drop=True), problem)
    labels = None
    positive = None
    if resolved == "binary":
        y_train = y.to_numpy(dtype=float).astype(int)
        if mapping:
            positive = next(k for k, v in mapping.items() if v == 1)
        else:
            values = pd.to_numeric(_labels_text(train), errors="coerce").dropna()
            positive = str(values.max()) if not values.empty else "1"
    elif resolved == "multiclass":
        labels = sorted({str(v) for v in y})
        y_train = np.searchsorted(np.asarray(labels, dtype=object), y.astype(str)).astype(int)
    else:
        y_train = y.to_numpy(dtype=float)
    codes = target_codes(test.reset_index(drop=True), resolved, labels, mapping)
    if resolved != "regression" and np.isnan(codes).any():
        unknown = test.iloc[int(np.flatnonzero(np.isnan(codes))[0])]
        raise UserError(f"test label {unknown!r} is not among the training rows' labels")
    y_test = codes if resolved == "regression" else codes.astype(int)
    return Target(resolved, y_train, y_test, labels, mapping, positive)


def _classes_guess(target: pd.Series, problem: str) -> bool:
    """Whether the target is classes (to stratify the split), by the project's rule on all the
    labelled rows."""
    if problem != "auto":
        return problem != "regression"
    return resolve_target_rule(target.dropna().reset_index(drop=True), "auto")[0] != "regression"


def table_name(path: Path) -> str:
    """The warehouse table a user would load the CSV as: raw.<the file's stem>, in lowercase
    letters, digits and `_` (prefixed when it would clash with a built-in name)."""
    name = re.sub(r"[^0-9a-z_]+", "_", path.stem.lower()).strip("_") or "data"
    if not name[0].isalpha():
        name = "data_" + name
    if name in BUILTIN_TASKS or f"raw.{name}" in PROTECTED_TABLES:
        name = "my_" + name
    return f"raw.{name}"


def write_split(table: pa.Table, split: Split, target: str, folder: Path) -> tuple[Path, Path]:
    """train.csv (the training rows, every column) and test.csv (the test rows, without the
    target) in `folder`: what a user would hand to load_csv and to ml.predict."""
    folder.mkdir(parents=True, exist_ok=True)
    train_csv, test_csv = folder / "train.csv", folder / "test.csv"
    pa_csv.write_csv(table.take(pa.array(split.train)), train_csv)
    test = table.take(pa.array(split.test))
    pa_csv.write_csv(test.drop_columns([target]), test_csv)
    return train_csv, test_csv


# -- metrics -------------------------------------------------------------------------------


def headline_metrics(
    problem: str,
    y_true: np.ndarray,
    values: np.ndarray | None = None,
    predicted: np.ndarray | None = None,
) -> dict[str, float]:
    """The two metrics of `problem` on the test rows.

    binary: ROC-AUC of `values` (positive-class probabilities) and F1 of `predicted` (0/1 at
    the model's own threshold); multiclass: macro F1 and accuracy of `predicted` (class codes);
    regression: R² and RMSE of `values`.
    """
    y_true = np.asarray(y_true)
    if problem == "regression":
        pred = np.asarray(values, dtype=float)
        return {
            "r2": float(skm.r2_score(y_true, pred)),
            "rmse": float(skm.root_mean_squared_error(y_true, pred)),
        }
    predicted = np.asarray(predicted)
    if problem == "binary":
        try:
            auc = float(skm.roc_auc_score(y_true, np.asarray(values, dtype=float)))
        except ValueError:
            auc = float("nan")
        return {"roc_auc": auc, "f1": float(skm.f1_score(y_true, predicted, zero_division=0))}
    return {
        "f1_macro": float(skm.f1_score(y_true, predicted, average="macro", zero_division=0)),
        "accuracy": float(skm.accuracy_score(y_true, predicted)),
    }


def summarise(rows: Sequence[dict[str, Any]], problem: str) -> dict[str, dict[str, Any]]:
    """Per metric: the best peer (baseline), the project's value, and the gap (project minus the
    best peer; `ahead` says whether the project is at least as good, whatever the direction)."""
    project = next((r for r in rows if r["role"] == "project" and r["status"] == "ok"), None)
    peers = [r for r in rows if r["role"] == "baseline" and r["status"] == "ok"]
    out: dict[str, dict[str, Any]] = {}
    for metric in METRICS[problem]:
        scored = [r for r in peers if np.isfinite(r["metrics"].get(metric, np.nan))]
        if not scored:
            continue
        lower = metric in LOWER_IS_BETTER
        best = (min if lower else max)(scored, key=lambda r: r["metrics"][metric])
        entry: dict[str, Any] = {"best_peer": best["model"], "best_value": best["metrics"][metric]}
        if project is not None:
            value = project["metrics"][metric]
            gap = value - best["metrics"][metric]
            entry.update(project=value, gap=gap, ahead=bool(gap <= 0 if lower else gap >= 0))
        out[metric] = entry
    return out


# -- the comparison ------------------------------------------------------------------------


def _baseline_row(
    name: str,
    target: Target,
    X_train: pd.DataFrame,
    X_test: pd.DataFrame,
    seed: int,
) -> dict[str, Any]:
    fit = fit_baseline(name, target.problem, X_train, target.y_train, X_test, seed)
    row = {
        "model": fit.label,
        "role": "baseline",
        "status": "ok",
        "train_s": fit.train_s,
        "predict_s": fit.predict_s,
        "threshold": fit.threshold,
    }
    if target.problem == "binary":
        predicted = (fit.values >= fit.threshold).astype(int)
        row["metrics"] = headline_metrics("binary", target.y_test, fit.values, predicted)
    elif target.problem == "multiclass":
        predicted = np.argmax(fit.values, axis=1)
        row["metrics"] = headline_metrics("multiclass", target.y_test, predicted=predicted)
    else:
        row["metrics"] = headline_metrics("regression", target.y_test, fit.values)
    return row


def project_metrics(scored: pd.DataFrame, target: Target) -> tuple[dict[str, float], float | None]:
    """The project's metrics from ml.predict's output (rows in test.csv's order): binary reads
    `probability` (the positive class's) and `prediction` (0/1 at the project's own threshold,
    chosen by ml.train on its training rows); multiclass `prediction` (the label); regression
    `prediction` (the value)."""
    if len(scored) != len(target.y_test):
        raise UserError(f"ml.predict wrote {len(scored)} rows for {len(target.y_test)} test rows")
    if target.problem == "binary":
        proba = pd.to_numeric(scored["probability"], errors="coerce").to_numpy(dtype=float)
        predicted = pd.to_numeric(scored["prediction"], errors="coerce").to_numpy(dtype=float)
        threshold = pd.to_numeric(scored["threshold"], errors="coerce").dropna()
        metrics = headline_metrics("binary", target.y_test, proba, predicted.astype(int))
        return metrics, float(threshold.iloc[0]) if len(threshold) else None
    if target.problem == "multiclass":
        positions = {label: code for code, label in enumerate(target.class_labels or [])}
        labels = scored["prediction"].astype("object").map(lambda v: str(v).strip())
        predicted = labels.map(lambda v: positions.get(v, -1)).to_numpy(dtype=int)
        return headline_metrics("multiclass", target.y_test, predicted=predicted), None
    values = pd.to_numeric(scored["prediction"], errors="coerce").to_numpy(dtype=float)
    return headline_metrics("regression", target.y_test, values), None


def _project_row(
    run: dict[str, Any], target: Target, scored_csv: Path, train_args: Sequence[str]
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model": project_name(train_args),
        "role": "project",
        "status": run["status"],
        "load_s": run.get("load_s"),
        "train_s": run.get("train_s"),
        "predict_s": run.get("predict_s"),
        "cpu_s": run.get("cpu_s"),
        "commands": run["commands"],
        "metrics": {},
    }
    if run["status"] != "ok":
        row.update(failed_step=run.get("failed_step"), log_tail=run.get("log_tail"))
        return row
    scored = pd.read_csv(scored_csv, dtype={"prediction": str}, keep_default_na=False)
    row["metrics"], row["threshold"] = project_metrics(scored, target)
    names = scored["model_name"].dropna().unique() if "model_name" in scored else []
    row["champion"] = str(names[0]) if len(names) else None
    return row


def compare_models(
    options: ModelsOptions, command: str = "", say: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    """Run the comparison of `options`; the result as plain values (what the report shows).

    Refused with a `UserError` (one line): a missing or unreadable CSV, a missing target or id
    column, a target the project cannot train on, a split that leaves a class out.
    """
    started = datetime.now(UTC).replace(tzinfo=None)
    machine = machine_info()
    csv = Path(options.csv)
    table, frame = read_table(csv)
    target_col = require_column(list(frame.columns), options.target, "target", str(csv))
    id_col = None
    if options.id_column:
        id_col = require_column(list(frame.columns), options.id_column, "id", str(csv))
        if id_col == target_col:
            raise UserError(f"{target_col!r} cannot be both the target and the id column")
    labels = frame[target_col]
    split = split_rows(labels, _classes_guess(labels, options.problem), options.test_size,
                       options.seed)  # fmt: skip
    target = resolve_target(labels.iloc[split.train], labels.iloc[split.test], options.problem)
    say(
        f"{csv.name}: {target.problem}, {len(split.train):,} train / {len(split.test):,} test "
        f"rows (seed {options.seed})"
        + (f", positive class {target.positive!r}" if target.positive else "")
    )

    workdir = Path(options.workdir or tempfile.mkdtemp(prefix="benchmark_models_"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        train_csv, test_csv = write_split(table, split, target_col, workdir / "data")
        name = table_name(csv)
        say(f"project: load_csv -> ml.train -> ml.predict in a throw-away warehouse ({workdir})")
        run = run_project(
            train_csv, test_csv, name, target_col, id_col, options.problem,
            options.train_args, workdir, say,
        )  # fmt: skip
        rows = [_project_row(run, target, workdir / "scored.csv", options.train_args)]
        X_train, X_test = feature_frame(frame, split.train, split.test, {target_col, id_col})
        for baseline in options.baselines:
            say(f"baseline: {BASELINE_NAMES[baseline]}")
            start = time.perf_counter()
            try:
                rows.append(_baseline_row(baseline, target, X_train, X_test, options.seed))
            except (ValueError, MemoryError) as err:  # a baseline's failure is reported, not fatal
                rows.append(
                    {
                        "model": BASELINE_NAMES[baseline],
                        "role": "baseline",
                        "status": "failed",
                        "error": str(err).splitlines()[0][:200],
                        "train_s": time.perf_counter() - start,
                        "metrics": {},
                    }
                )
    finally:
        if not options.keep and options.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return {
        "dataset": csv.stem,
        "csv": str(csv),
        "command": command,
        "target": target_col,
        "id_column": id_col,
        "problem": target.problem,
        "positive_class": target.positive,
        "class_labels": target.class_labels,
        "metrics": list(METRICS[target.problem]),
        "seed": options.seed,
        "test_size": options.test_size,
        "stratified": split.stratified,
        "rows": {
            "train": int(len(split.train)),
            "test": int(len(split.test)),
            "unlabelled_left_out": int(split.unlabelled),
        },
        "train_args": list(options.train_args),
        "threshold_folds": THRESHOLD_FOLDS,
        "models": rows,
        "summary": summarise(rows, target.problem),
        "machine": machine,
        "load_average_end": load_average(),
        "versions": library_versions(
            ("scikit-learn", "xgboost", "xgboost-cpu", "duckdb", "pandas")
        ),
        "started_at": started.isoformat(timespec="seconds"),
        "workdir": str(workdir) if options.keep or options.workdir else None,
    }
