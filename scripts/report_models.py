"""Model reports: one static HTML page per trained task, from the latest `ml.train` run.

`python -m scripts.report_models [--output reports/models] [--task T ...]` reads the warehouse
(`WAREHOUSE_PATH`, read-only; the connection is closed before anything is explained or drawn) and
writes `<task>.html` for every task with a champion (or the tasks named) with:

- a headline (champion, run, primary metric on the test split against the oracle, the
  simulator's truth used as a model) and the leaderboard of every candidate;
- a leaderboard chart: cross-validation mean and standard deviation, test score, oracle;
- the evaluation of the held-out test split, from `ml.evaluation_predictions`:
  binary: ROC and precision-recall curves of every candidate, the champion's confusion matrix at
  its threshold, its calibration (with the best other candidate) and its probabilities by class;
  multiclass: one-vs-rest ROC curves, confusion matrix, calibration of the predicted class's
  confidence and per-class precision, recall and F1; regression: predicted against actual,
  residuals against fitted values and the distribution of residuals;
- SHAP explanations of the champion: global importance (`ml.feature_importance`), a beeswarm of
  the top features and dependence plots of the top three, computed for a seeded sample of at most
  `--shap-rows` rows of the task's relation with the hash-verified champion.

The latest run of a task is the run of its most recent champion row in `ml.model_runs`. A part
that cannot be drawn (a run trained before `ml.evaluation_predictions` existed, a missing model
file, a dropped relation) is skipped with a note on the page.

Exit codes: 0 written; 2 a user error (no warehouse, locked, nothing trained, unknown task, output
not writable), printed as one line.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LinearSegmentedColormap, Normalize
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from ml import config, warehouse
from ml.cli import ArgumentParser, non_negative_int, run
from ml.errors import UserError
from ml.warehouse import qualified, relation_exists
from scripts.eda import ORDERS, axis_label, unit
from scripts.report_html import FIGURES_DIR, Report, new_figure, page_html, render, slugify

DEFAULT_OUTPUT = config.PROJECT_ROOT / "reports" / "models"
DEFAULT_SHAP_ROWS = 1_000
DEFAULT_SEED = 0

MODEL_RUNS = "ml.model_runs"
EVALUATION_PREDICTIONS = "ml.evaluation_predictions"
FEATURE_IMPORTANCE = "ml.feature_importance"
#: Metrics of each problem type, as ml.evaluate reports them (kept here so that listing the
#: trained tasks does not import scikit-learn's model zoo).
METRICS = {
    "regression": ("mae", "rmse", "r2"),
    "binary": ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "brier"),
    "multiclass": ("accuracy", "precision", "recall", "f1", "roc_auc", "brier", "log_loss"),
}
LOWER_IS_BETTER = frozenset({"mae", "rmse", "brier", "log_loss"})
BASE_MODELS = ("linear", "tree", "xgboost", "keras")

#: Features in the SHAP beeswarm, dependence plots drawn, bars in the importance chart.
BEESWARM_FEATURES = 12
DEPENDENCE_FEATURES = 3
IMPORTANCE_BARS = 20
#: Categories of a categorical feature shown in its dependence plot (the most frequent).
MAX_CATEGORIES = 15
MISSING_LABEL = "(missing)"
#: Multiclass tasks with many classes: ROC curves drawn (the most frequent classes), classes whose
#: confusion cells and F1 bars are annotated with numbers.
MAX_CURVES = 10
MAX_ANNOTATED_CLASSES = 15

ACCENT = "#3b6ea8"
HIGHLIGHT = "#d1495b"
GREY = "#9e9e9e"
MODEL_COLOURS = {
    "linear": "#1f77b4",
    "tree": "#8c564b",
    "xgboost": "#2ca02c",
    "keras": "#9467bd",
    "voting": "#ff7f0e",
    "stacking": "#17becf",
}
CLASS_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
#: Blue (low) to red (high) for feature values in the beeswarm, as shap draws them.
FEATURE_CMAP = LinearSegmentedColormap.from_list("feature_value", ["#1e88e5", "#7e57c2", "#ff0052"])

_FIGURE_FILE = re.compile(r"^\d{2,}-[a-z0-9-]+\.png$")


# ---------------------------------------------------------------------------------------------
# collect: every query, with the connection open; returns plain frames


@dataclass
class ShapSample:
    """SHAP values of the champion for a sample of rows, with the rows' feature values."""

    values: np.ndarray  # (n, n_columns)
    columns: list[str]
    X: pd.DataFrame  # model frame of the explained rows (numbers as float, text as object)
    output_space: str  # "value" | "log-odds" | "probability"
    categorical: frozenset[str]
    seconds: float = 0.0


@dataclass
class ModelData:
    """What a task's page is drawn from: the latest run's candidates, its held-out predictions,
    the champion's SHAP importance, and why a part could not be read."""

    task: str
    run_id: str
    runs: pd.DataFrame  # one row per candidate of the latest run, best selection score first
    evaluation: pd.DataFrame  # ml.evaluation_predictions rows of the run (may be empty)
    importance: pd.DataFrame  # ml.feature_importance rows of the run's champion (may be empty)
    class_labels: list[str] | None = None  # multiclass: label of each class code
    shap: ShapSample | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    shap_rows: int = DEFAULT_SHAP_ROWS
    seed: int = DEFAULT_SEED
    # the champion and the sample it explains, read with the warehouse open (see explain_sample)
    model: Any = None
    sample: pd.DataFrame | None = None

    @property
    def champion(self) -> pd.Series:
        return self.runs.loc[self.runs["is_champion"]].iloc[0]

    @property
    def problem(self) -> str:
        return str(self.champion["problem"])

    @property
    def metric(self) -> str:
        return str(self.champion["primary_metric"])


def _df(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def _bool(series: pd.Series) -> pd.Series:
    return series.astype("object").map(lambda v: bool(v) if not pd.isna(v) else False).astype(bool)


def latest_runs(runs: pd.DataFrame) -> dict[str, str]:
    """Each task's latest run: the run of its most recent champion row (by `trained_at`, then
    `run_id`), as {task: run_id} in task order. Tasks without a champion row are left out."""
    if runs.empty or "is_champion" not in runs.columns:
        return {}
    champions = runs.loc[_bool(runs["is_champion"])]
    keys = [c for c in ("trained_at", "run_id") if c in champions.columns]
    champions = champions.sort_values(["task", *keys], kind="stable")
    last = champions.groupby("task", sort=True).tail(1)
    return {str(t): str(r) for t, r in zip(last["task"], last["run_id"], strict=True)}


def trained_tasks(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """{task: latest run_id} of every task with a champion; `UserError` when there is none."""
    if not relation_exists(con, MODEL_RUNS):
        raise UserError(f"{MODEL_RUNS} not found: no models trained yet, run `python -m ml.train`")
    runs = _df(con, f"select * from {qualified(MODEL_RUNS)}")
    latest = latest_runs(runs)
    if not latest:
        raise UserError(f"{MODEL_RUNS} has no champion: run `python -m ml.train` first")
    return latest


def _class_labels(evaluation: pd.DataFrame) -> list[str] | None:
    """Multiclass: the label of each class code, from the evaluation rows' (code, label) pairs."""
    if evaluation.empty or "probabilities" not in evaluation.columns:
        return None
    first = evaluation["probabilities"].dropna()
    if first.empty:
        return None
    labels = [f"class {i}" for i in range(len(first.iloc[0]))]
    for code_col, label_col in (("actual", "actual_label"), ("predicted", "predicted_label")):
        pairs = evaluation[[code_col, label_col]].dropna().drop_duplicates()
        for code, label in zip(pairs[code_col], pairs[label_col], strict=True):
            if 0 <= int(code) < len(labels):
                labels[int(code)] = str(label)
    return labels


def _read_sample(
    con: duckdb.DuckDBPyConnection, relation: str, id_column: str | None, rows: int, seed: int
) -> pd.DataFrame:
    """A seeded reservoir sample of at most `rows` rows of `relation`, ordered by its id."""
    total = int(con.execute(f"select count(*) from {qualified(relation)}").fetchall()[0][0])
    sample = ""
    if total > rows:
        sample = f" using sample reservoir({int(rows)} rows) repeatable ({int(seed)})"
    frame = _df(con, f"select * from {qualified(relation)}{sample}")
    if id_column and id_column in frame.columns:
        frame = frame.sort_values(id_column, kind="stable", ignore_index=True)
    return frame


def collect_model_data(
    con: duckdb.DuckDBPyConnection,
    task: str,
    *,
    shap_rows: int = DEFAULT_SHAP_ROWS,
    seed: int = DEFAULT_SEED,
) -> ModelData:
    """Read `task`'s latest run, its evaluation rows and importance, load its champion (hash
    verified) and read the rows to explain. Raises `UserError` when the task has no champion."""
    latest = trained_tasks(con)
    if task not in latest:
        known = ", ".join(latest)
        raise UserError(f"task {task!r} has no trained champion in {MODEL_RUNS} (trained: {known})")
    run_id = latest[task]
    runs = _df(
        con, f"select * from {qualified(MODEL_RUNS)} where task = ? and run_id = ?", [task, run_id]
    )
    runs["is_champion"] = _bool(runs["is_champion"])
    if "selection_score" in runs.columns:
        metric = str(runs.loc[runs["is_champion"], "primary_metric"].iloc[0])
        ascending = metric in LOWER_IS_BETTER
        runs = runs.sort_values(
            "selection_score", ascending=ascending, na_position="last", kind="stable"
        )
    runs = runs.reset_index(drop=True)
    data = ModelData(
        task=task,
        run_id=run_id,
        runs=runs,
        evaluation=pd.DataFrame(),
        importance=pd.DataFrame(),
        shap_rows=shap_rows,
        seed=seed,
    )
    retrain = f"retrain with `python -m ml.train --task {task}` to get them"
    if relation_exists(con, EVALUATION_PREDICTIONS):
        data.evaluation = _df(
            con,
            f"select * from {qualified(EVALUATION_PREDICTIONS)}"
            " where task = ? and run_id = ? and split = 'test'",
            [task, run_id],
        )
    if data.evaluation.empty:
        data.skipped["evaluation"] = (
            f"{EVALUATION_PREDICTIONS} holds no predictions of run {run_id} (it was trained by an "
            f"older version of ml.train); {retrain}"
        )
    elif data.problem == "multiclass":
        data.class_labels = _class_labels(data.evaluation)
    champion = str(data.champion["model_name"])
    if relation_exists(con, FEATURE_IMPORTANCE):
        data.importance = _df(
            con,
            f"select * from {qualified(FEATURE_IMPORTANCE)}"
            " where task = ? and run_id = ? and model_name = ? order by rank",
            [task, run_id, champion],
        )
    if data.importance.empty:
        data.skipped["importance"] = (
            f"{FEATURE_IMPORTANCE} holds no SHAP importance of run {run_id} "
            "(trained with --explain-rows 0 or by an older version)"
        )
    if shap_rows <= 0:
        data.skipped["shap"] = "the SHAP sample was turned off (--shap-rows 0)"
        return data
    relation = data.champion.get("relation")
    relation = relation if isinstance(relation, str) else ""
    if not relation or not relation_exists(con, relation):
        data.skipped["shap"] = (
            f"the task's relation {relation or '(unknown)'} is not in the warehouse"
        )
        return data
    from ml.predict import load_model  # imports the model zoo; only needed here

    try:
        model = load_model(task, con)
    except UserError as err:  # a missing or changed model file
        data.skipped["shap"] = f"the champion could not be loaded ({err})"
        return data
    if model.run_id != run_id:
        data.skipped["shap"] = f"the registry's champion is of run {model.run_id}, not {run_id}"
        return data
    id_column = data.champion.get("id_column")
    data.model = model
    data.sample = _read_sample(
        con, relation, str(id_column) if id_column else None, shap_rows, seed
    )
    if data.problem == "multiclass" and model.metadata.get("class_labels"):
        data.class_labels = [str(v) for v in model.metadata["class_labels"]]
    return data


def explain_sample(data: ModelData) -> ShapSample | None:
    """SHAP values of the champion for the sample `collect_model_data` read (no warehouse
    access); stored in `data.shap`. None (with a note in `data.skipped`) when not possible."""
    if data.shap is not None or data.model is None or data.sample is None:
        return data.shap
    from ml.explain import explain

    model = data.model
    start = time.perf_counter()
    try:
        X = model.validate(data.sample).reset_index(drop=True)
        if X.empty:
            data.skipped["shap"] = "the task's relation has no rows to explain"
            return None
        explanation = explain(model.pipeline, X, reference=X, seed=data.seed)
    except (UserError, TypeError, ValueError) as err:
        data.skipped["shap"] = f"the champion could not be explained ({err})"
        return None
    data.shap = ShapSample(
        values=np.asarray(explanation.values, dtype=float),
        columns=list(explanation.columns),
        X=X,
        output_space=explanation.output_space,
        categorical=frozenset(model.metadata.get("categorical_features", ())),
        seconds=time.perf_counter() - start,
    )
    return data.shap


# ---------------------------------------------------------------------------------------------
# helpers of the plots (pure)


def _num(row: pd.Series, column: str) -> float:
    value = row.get(column, np.nan)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _fmt(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def direction(metric: str) -> str:
    return "lower is better" if metric in LOWER_IS_BETTER else "higher is better"


def positive_label(champion: pd.Series) -> str:
    """What the positive class (1) of a binary task means, for legends."""
    target = str(champion.get("target", "target"))
    mapping = champion.get("target_mapping")
    if isinstance(mapping, str) and mapping:
        try:
            for label, code in json.loads(mapping).items():
                if int(code) == 1:
                    return f"{target} = {label}"
        except (ValueError, TypeError, AttributeError):
            pass
    return f"{target} = 1"


def output_description(output_space: str, problem: str, champion: pd.Series) -> str:
    """What a SHAP value adds to, for axis labels."""
    target = str(champion.get("target", "target"))
    if output_space == "value":
        return f"predicted {target}, {unit(target)}"
    if output_space == "log-odds":
        return f"log-odds of {positive_label(champion)}"
    if problem == "multiclass":
        return "probability of the predicted class"
    return f"probability of {positive_label(champion)}"


def feature_colour_values(series: pd.Series, categorical: bool = False) -> np.ndarray:
    """A feature's values scaled to 0-1 for the beeswarm colours, per feature: numbers clipped
    to their 5th-95th percentile (so an outlier does not wash out the rest), a constant 0.5;
    NaN for missing values and for categorical features (drawn grey)."""
    n = len(series)
    if categorical or not (
        pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
    ):
        return np.full(n, np.nan)
    values = pd.to_numeric(series, errors="coerce").astype(float).to_numpy()
    finite = np.isfinite(values)
    out = np.full(n, np.nan)
    if not finite.any():
        return out
    lo, hi = np.percentile(values[finite], [5, 95])
    if hi <= lo:
        lo, hi = values[finite].min(), values[finite].max()
    if hi <= lo:
        out[finite] = 0.5
        return out
    out[finite] = np.clip((values[finite] - lo) / (hi - lo), 0.0, 1.0)
    return out


def swarm_offsets(
    values: np.ndarray, rng: np.random.Generator, width: float = 0.38, bins: int = 40
) -> np.ndarray:
    """Vertical offsets of a beeswarm row: uniform jitter scaled by the local density of the
    values, so dense regions spread wider (within +-`width`)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return np.zeros(0)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        density = np.ones(len(values))
    else:
        counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
        which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, bins - 1)
        density = counts[which] / counts.max()
    return rng.uniform(-1.0, 1.0, len(values)) * width * np.sqrt(density)


def feature_order(data: ModelData) -> list[str]:
    """Features by importance: `ml.feature_importance`'s ranks, else the sample's mean |SHAP|."""
    shap = data.shap
    columns = shap.columns if shap is not None else []
    if not data.importance.empty:
        ranked = [str(f) for f in data.importance.sort_values("rank")["feature"]]
        if shap is None:
            return ranked
        in_sample = [f for f in ranked if f in columns]
        return in_sample + [c for c in columns if c not in set(in_sample)]
    if shap is None:
        return []
    order = np.argsort(-np.abs(shap.values).mean(axis=0), kind="stable")
    return [columns[i] for i in order]


def _model_label(name: str, champion: str) -> str:
    return f"{name} (champion)" if name == champion else name


def _models_in_order(runs: pd.DataFrame) -> list[str]:
    return [str(m) for m in runs["model_name"]]


def _test_rows(data: ModelData, model: str | None = None) -> pd.DataFrame:
    ev = data.evaluation
    rows = ev[ev["split"] == "test"]
    if model is not None:
        rows = rows[rows["model_name"] == model]
    return rows


def _best_other(data: ModelData) -> str | None:
    """The best candidate by selection score other than the champion (a base if possible)."""
    champion = str(data.champion["model_name"])
    others = [m for m in _models_in_order(data.runs) if m != champion]
    bases = [m for m in others if m in BASE_MODELS]
    return (bases or others or [None])[0]


def _proba_matrix(rows: pd.DataFrame) -> np.ndarray:
    return np.vstack([np.asarray(p, dtype=float) for p in rows["probabilities"]])


# ---------------------------------------------------------------------------------------------
# tables


def headline(data: ModelData) -> str:
    """One sentence: the champion's primary metric on the test split against the oracle."""
    ch, metric = data.champion, data.metric
    test, oracle = _num(ch, f"test_{metric}"), _num(ch, f"oracle_{metric}")
    text = (
        f"Champion {ch['model_name']} of run {data.run_id}: test {metric} = {_fmt(test)}"
        f" ({direction(metric)})"
    )
    if math.isfinite(oracle):
        text += f"; the oracle (the simulator's truth used as a model) reaches {_fmt(oracle)}"
        if oracle:
            text += f", so test / oracle = {test / oracle:.3f}"
        text += "."
    else:
        text += "; no oracle (the task has no simulator truth)."
    return text


def summary_table(data: ModelData) -> pd.DataFrame:
    """The run at a glance, as (item, value) rows."""
    ch, metric = data.champion, data.metric
    test, oracle = _num(ch, f"test_{metric}"), _num(ch, f"oracle_{metric}")
    ratio = test / oracle if math.isfinite(oracle) and oracle else math.nan
    items: list[tuple[str, str]] = [
        ("task", data.task),
        ("problem", data.problem),
        ("target", f"{ch.get('target', '')} of {ch.get('relation', '')}"),
        ("champion", str(ch["model_name"])),
        ("run", data.run_id),
        ("trained at", str(ch.get("trained_at", ""))[:19]),
        ("primary metric", f"{metric} ({direction(metric)})"),
        ("selection score", _fmt(_num(ch, "selection_score"))),
        (f"test {metric}", _fmt(test)),
        (f"oracle {metric}", _fmt(oracle)),
        ("test / oracle", _fmt(ratio, 3)),
    ]
    if data.problem == "binary":
        items.append(("decision threshold", _fmt(_num(ch, "threshold"))))
    sizes = [
        f"{int(_num(ch, f'n_{s}')):,} {s}"
        for s in ("train", "val", "test")
        if math.isfinite(_num(ch, f"n_{s}"))
    ]
    items.append(
        ("rows", ", ".join(sizes) + f" ({_fmt(_num(ch, 'cv_folds'), 0)}-fold CV on train)")
    )
    if math.isfinite(_num(ch, "n_features")):
        items.append(("features", f"{int(_num(ch, 'n_features'))}"))
    if math.isfinite(_num(ch, "seed")):
        items.append(("seed", f"{int(_num(ch, 'seed'))}"))
    return pd.DataFrame(items, columns=["item", "value"]).astype("str")


def leaderboard_table(data: ModelData) -> tuple[pd.DataFrame, dict[str, str]]:
    """Every candidate (best selection score first) and the oracle: the primary metric's CV
    mean +- sd, selection score, validation, test and test / oracle, then the other metrics on
    the test split. Returns the table and its column formats."""
    metric, runs = data.metric, data.runs
    champion = str(data.champion["model_name"])
    others = [m for m in METRICS.get(data.problem, ()) if m != metric]
    oracle = _num(data.champion, f"oracle_{metric}")
    rows = []
    for _, r in runs.iterrows():
        mean, std = _num(r, f"cv_{metric}_mean"), _num(r, f"cv_{metric}_std")
        test = _num(r, f"test_{metric}")
        row: dict[str, Any] = {
            "model": _model_label(str(r["model_name"]), champion),
            f"cv {metric} (mean ± sd)": f"{_fmt(mean)} ± {_fmt(std)}",
            "selection": _num(r, "selection_score"),
            f"val {metric}": _num(r, f"val_{metric}"),
            f"test {metric}": test,
            "test / oracle": test / oracle if math.isfinite(oracle) and oracle else math.nan,
        }
        for m in others:
            row[f"test {m}"] = _num(r, f"test_{m}")
        if data.problem == "binary":
            row["threshold"] = _num(r, "threshold")
        row["fit s"] = _num(r, "fit_seconds")
        rows.append(row)
    if math.isfinite(oracle):
        row = {"model": "oracle (simulator's truth)", f"cv {metric} (mean ± sd)": ""}
        row[f"test {metric}"] = oracle
        for m in others:
            row[f"test {m}"] = _num(data.champion, f"oracle_{m}")
        rows.append(row)
    table = pd.DataFrame(rows)
    for col in table.columns[2:]:
        table[col] = pd.to_numeric(table[col], errors="coerce").astype(float)
    empty = [c for c in table.columns[2:] if table[c].isna().all()]
    table = table.drop(columns=empty)
    formats = {c: ".4f" for c in table.columns[2:]}
    formats.update({"test / oracle": ".3f", "fit s": ".2f", "threshold": ".3f"})
    return table, formats


# ---------------------------------------------------------------------------------------------
# plots: pure functions of frames; each returns (figure, title)


def plot_leaderboard(
    runs: pd.DataFrame, metric: str, champion: str, oracle: float = math.nan
) -> tuple[Any, str]:
    """CV mean +- sd per candidate, its test score, and the oracle as a horizontal line."""
    names = _models_in_order(runs)
    x = np.arange(len(names))
    mean = np.array([_num(r, f"cv_{metric}_mean") for _, r in runs.iterrows()])
    std = np.nan_to_num(np.array([_num(r, f"cv_{metric}_std") for _, r in runs.iterrows()]))
    test = np.array([_num(r, f"test_{metric}") for _, r in runs.iterrows()])
    fig, ax = new_figure(figsize=(8, 4.6))
    colours = [HIGHLIGHT if n == champion else ACCENT for n in names]
    for xi, m, s, c in zip(x, mean, std, colours, strict=True):
        ax.errorbar(xi - 0.12, m, yerr=s, fmt="o", color=c, capsize=5, markersize=7, lw=1.6)
    ax.scatter(x + 0.12, test, marker="D", s=46, color=colours, edgecolor="black", zorder=3)
    # legend proxies
    ax.errorbar(
        [], [], yerr=[], fmt="o", color=ACCENT, capsize=5, label="CV mean ± sd (train folds)"
    )
    ax.scatter([], [], marker="D", color=ACCENT, edgecolor="black", label="test split")
    ax.scatter([], [], marker="s", color=HIGHLIGHT, label="champion")
    if math.isfinite(oracle):
        ax.axhline(
            oracle,
            color="black",
            linestyle="--",
            lw=1.2,
            label=f"oracle (simulator's truth) = {oracle:.4f}",
        )
    for xi, t in zip(x, test, strict=True):
        if math.isfinite(t):
            ax.annotate(
                f"{t:.3f}", (xi + 0.12, t), xytext=(8, -3), textcoords="offset points", fontsize=7
            )
    ax.set_xticks(x, [_model_label(n, champion).replace(" (", "\n(") for n in names])
    for label, n in zip(ax.get_xticklabels(), names, strict=True):
        if n == champion:
            label.set_fontweight("bold")
            label.set_color(HIGHLIGHT)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_xlabel("candidate model (best selection score first)")
    ax.set_ylabel(f"{metric} ({direction(metric)})")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    title = f"Leaderboard: {metric} by candidate"
    ax.set_title(f"{title} (CV vs test{' vs oracle' if math.isfinite(oracle) else ''})")
    return fig, title


def _roc_frame(ax: Any, false_positives: str, true_positives: str) -> None:
    """Chance diagonal, unit square, axis labels, legend and grid of a ROC plot."""
    ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", lw=1, label="chance: AUC 0.5")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel(f"false positive rate ({false_positives})")
    ax.set_ylabel(f"true positive rate ({true_positives})")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)


def plot_roc_binary(test: pd.DataFrame, models: Sequence[str], champion: str) -> tuple[Any, str]:
    """ROC curves of every candidate on the test split, AUC in the legend, chance diagonal."""
    fig, ax = new_figure(figsize=(6.4, 5.6))
    n = 0
    for name in models:
        rows = test[test["model_name"] == name]
        y, p = rows["actual"].to_numpy(int), rows["predicted"].to_numpy(float)
        if len(np.unique(y)) < 2:
            continue
        n = len(rows)
        fpr, tpr, _ = skm.roc_curve(y, p)
        auc = skm.roc_auc_score(y, p)
        is_champ = name == champion
        ax.plot(
            fpr,
            tpr,
            color=MODEL_COLOURS.get(name, ACCENT),
            lw=2.6 if is_champ else 1.2,
            alpha=1.0 if is_champ else 0.8,
            zorder=3 if is_champ else 2,
            label=f"{_model_label(name, champion)}: AUC {auc:.3f}",
        )
    _roc_frame(ax, "share of negatives flagged", "recall: share of positives flagged")
    title = "ROC curves of every candidate"
    ax.set_title(f"{title} (test split, n = {n:,})")
    return fig, title


def plot_pr_binary(
    test: pd.DataFrame, models: Sequence[str], champion: str, positive: str
) -> tuple[Any, str]:
    """Precision-recall curves of every candidate (average precision) and the prevalence line."""
    fig, ax = new_figure(figsize=(6.4, 5.2))
    prevalence = math.nan
    for name in models:
        rows = test[test["model_name"] == name]
        y, p = rows["actual"].to_numpy(int), rows["predicted"].to_numpy(float)
        if len(np.unique(y)) < 2:
            continue
        prevalence = float(y.mean())
        precision, recall, _ = skm.precision_recall_curve(y, p)
        ap = skm.average_precision_score(y, p)
        is_champ = name == champion
        ax.step(
            recall,
            precision,
            where="post",
            color=MODEL_COLOURS.get(name, ACCENT),
            lw=2.6 if is_champ else 1.2,
            alpha=1.0 if is_champ else 0.8,
            zorder=3 if is_champ else 2,
            label=f"{_model_label(name, champion)}: AP {ap:.3f}",
        )
    if math.isfinite(prevalence):
        ax.axhline(
            prevalence,
            color=GREY,
            linestyle="--",
            lw=1,
            label=f"no skill: prevalence {prevalence:.1%}",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"recall (share of {positive} found)")
    ax.set_ylabel(f"precision (share of flagged rows that are {positive})")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    title = "Precision-recall curves of every candidate"
    ax.set_title(f"{title} (test split)")
    return fig, title


def plot_confusion(
    matrix: np.ndarray, labels: Sequence[str], title: str, subtitle: str, xlabel: str
) -> tuple[Any, str]:
    """A confusion matrix: cells coloured by the share of their actual class (row), annotated
    with the count and that share."""
    matrix = np.asarray(matrix, dtype=float)
    k = len(labels)
    row_sums = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, row_sums, out=np.zeros_like(matrix), where=row_sums > 0)
    size = min(max(4.8, 1.1 * k + 2.6), 14.0)
    fig, ax = new_figure(figsize=(size + 1.2, size))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    total = matrix.sum()
    for i in range(k if k <= MAX_ANNOTATED_CLASSES else 0):
        for j in range(k):
            colour = "white" if share[i, j] > 0.55 else "black"
            text = f"{int(matrix[i, j]):,}\n{share[i, j]:.1%} of row"
            if k <= 2 and total:
                text += f"\n{matrix[i, j] / total:.1%} of all"
            ax.text(j, i, text, ha="center", va="center", fontsize=9 if k <= 4 else 7, color=colour)
    ticks = 8 if k <= 12 else 6
    ax.set_xticks(
        range(k),
        labels,
        rotation=30 if k > 3 else 0,
        ha="right" if k > 3 else "center",
        fontsize=ticks,
    )
    ax.set_yticks(
        range(k),
        [f"{lab}\n(n={int(s):,})" for lab, s in zip(labels, row_sums[:, 0], strict=True)],
        fontsize=ticks,
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("actual class (n = test rows)")
    fig.colorbar(im, ax=ax, label="share of the actual class (row %)", shrink=0.8)
    ax.set_title(f"{title}\n{subtitle}", fontsize=11)
    return fig, title


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Mean |observed rate - mean predicted probability| over quantile bins of `p`, weighted by
    the rows in each bin (the gap a reliability diagram shows, as one number)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(y) == 0:
        return math.nan
    edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
    which = np.clip(np.searchsorted(edges[1:-1], p, side="right"), 0, max(len(edges) - 2, 0))
    gap = 0.0
    for b in np.unique(which):
        hit = which == b
        gap += hit.sum() * abs(y[hit].mean() - p[hit].mean())
    return float(gap / len(y))


def plot_calibration(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
    champion: str,
    xlabel: str,
    ylabel: str,
    title: str,
    n_bins: int = 10,
    brier: bool = True,
) -> tuple[Any, str]:
    """Reliability diagram: per quantile bin of the predicted probability, the observed rate;
    `curves` holds (model, outcome 0/1, predicted probability) per model. The legend gives each
    curve's expected calibration error (and Brier score when `brier`)."""
    fig, ax = new_figure(figsize=(6.4, 5.4))
    ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", lw=1, label="perfectly calibrated")
    n = 0
    for name, y, p in curves:
        y, p = np.asarray(y, dtype=int), np.clip(np.asarray(p, dtype=float), 0, 1)
        if len(y) == 0:
            continue
        n = len(y)
        bins = int(max(2, min(n_bins, len(np.unique(p)))))
        observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
        score = f"ECE {expected_calibration_error(y, p, bins):.3f}"
        if brier:
            score = f"Brier {float(np.mean((p - y) ** 2)):.4f}, {score}"
        is_champ = name == champion
        ax.plot(
            predicted,
            observed,
            marker="o",
            color=MODEL_COLOURS.get(name, ACCENT),
            lw=2.4 if is_champ else 1.3,
            markersize=6 if is_champ else 4,
            label=f"{_model_label(name, champion)} ({score})",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    ax.set_title(f"{title}\n(test split, n = {n:,}, {n_bins} quantile bins)", fontsize=11)
    return fig, title


def plot_probability_histogram(
    y: np.ndarray, p: np.ndarray, threshold: float, champion: str, positive: str, negative: str
) -> tuple[Any, str]:
    """The champion's predicted probability of the positive class, split by the actual class."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    fig, ax = new_figure(figsize=(7.5, 4.4))
    bins = np.linspace(0, 1, 26)
    for cls, label, colour in ((0, negative, ACCENT), (1, positive, HIGHLIGHT)):
        values = p[y == cls]
        if len(values):
            ax.hist(
                values,
                bins=bins,
                weights=np.full(len(values), 1 / len(values)),
                color=colour,
                alpha=0.55,
                edgecolor=colour,
                label=f"actual {label} (n={len(values):,})",
            )
    if math.isfinite(threshold):
        ax.axvline(
            threshold,
            color="black",
            linestyle="--",
            lw=1.2,
            label=f"decision threshold {threshold:.3f}",
        )
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"predicted probability of {positive} ({champion})")
    ax.set_ylabel("share of the class's test rows (per bin of 0.04)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    title = "Predicted probability by actual class"
    ax.set_title(f"{title} (champion, test split)")
    return fig, title


def plot_roc_multiclass(
    y: np.ndarray, proba: np.ndarray, labels: Sequence[str], champion: str
) -> tuple[Any, str]:
    """One-vs-rest ROC curve of every class for the champion, AUC in the legend."""
    y = np.asarray(y, dtype=int)
    fig, ax = new_figure(figsize=(6.4, 5.6))
    counts = np.bincount(y, minlength=len(labels))
    shown = sorted(np.argsort(-counts, kind="stable")[:MAX_CURVES])
    for k in shown:
        label = labels[k]
        truth = (y == k).astype(int)
        if truth.min() == truth.max():
            continue
        fpr, tpr, _ = skm.roc_curve(truth, proba[:, k])
        auc = skm.roc_auc_score(truth, proba[:, k])
        ax.plot(
            fpr,
            tpr,
            lw=1.8,
            color=CLASS_COLOURS[k % len(CLASS_COLOURS)],
            label=f"{label} vs rest: AUC {auc:.3f}",
        )
    _roc_frame(ax, "share of other classes flagged", "share of the class found")
    title = "One-vs-rest ROC curves per class"
    more = f", the {MAX_CURVES} most frequent classes" if len(labels) > MAX_CURVES else ""
    ax.set_title(f"{title}\n({champion}, test split, n = {len(y):,}{more})", fontsize=11)
    return fig, title


def plot_per_class_scores(
    y: np.ndarray, predicted: np.ndarray, labels: Sequence[str], champion: str
) -> tuple[Any, str]:
    """Precision, recall and F1 of every class for the champion, grouped bars."""
    codes = list(range(len(labels)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        np.asarray(y, int), np.asarray(predicted, int), labels=codes, zero_division=0
    )
    fig, ax = new_figure(figsize=(min(max(6.4, 1.6 * len(labels) + 2), 16.0), 4.6))
    x = np.arange(len(labels))
    width = 0.26
    for offset, values, name, colour in (
        (-width, precision, "precision", "#a9c1e0"),
        (0.0, recall, "recall", "#6a93c4"),
        (width, f1, "F1", HIGHLIGHT),
    ):
        ax.bar(x + offset, values, width=width, color=colour, label=name)
    for xi, v in zip(x if len(labels) <= MAX_ANNOTATED_CLASSES else [], f1, strict=False):
        ax.text(xi + width, v + 0.01, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(
        x,
        [f"{lab}\n(n={int(s):,})" for lab, s in zip(labels, support, strict=True)],
        fontsize=8 if len(labels) <= 12 else 6,
        rotation=0 if len(labels) <= 8 else 45,
    )
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("actual class (n = test rows)")
    ax.set_ylabel("score (0-1)")
    ax.legend(fontsize=8, ncol=3, loc="upper center")
    ax.grid(axis="y", alpha=0.3)
    title = "Per-class precision, recall and F1"
    ax.set_title(f"{title} ({champion}, test split; macro F1 {np.mean(f1):.3f})")
    return fig, title


def plot_predicted_vs_actual(
    actual: np.ndarray, predicted: np.ndarray, target: str, champion: str
) -> tuple[Any, str]:
    """The champion's predictions against the actual values with the y = x line."""
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    fig, ax = new_figure(figsize=(6.2, 5.6))
    ax.scatter(actual, predicted, s=10, alpha=0.45, color=ACCENT, edgecolor="none")
    lo = float(np.nanmin([actual.min(), predicted.min()])) if len(actual) else 0.0
    hi = float(np.nanmax([actual.max(), predicted.max()])) if len(actual) else 1.0
    pad = 0.03 * (hi - lo or 1)
    ax.plot(
        [lo - pad, hi + pad],
        [lo - pad, hi + pad],
        color="black",
        linestyle="--",
        lw=1.2,
        label="perfect prediction (y = x)",
    )
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    if len(actual) > 1:
        r2 = skm.r2_score(actual, predicted)
        mae = skm.mean_absolute_error(actual, predicted)
        ax.text(
            0.03,
            0.97,
            f"R² {r2:.3f}\nMAE {mae:.3f}",
            transform=ax.transAxes,
            va="top",
            fontsize=9,
            bbox={"facecolor": "white", "edgecolor": "#d9dee7"},
        )
    ax.set_xlabel(f"actual {axis_label(target)}")
    ax.set_ylabel(f"predicted {axis_label(target)}")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    title = "Predicted vs actual"
    ax.set_title(f"{title} ({champion}, test split, n = {len(actual):,})")
    return fig, title


def binned_mean(
    x: np.ndarray, y: np.ndarray, bins: int = 15
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres, means and standard deviations of y in (at most) `bins` quantile bins of x; a
    robust stand-in for a LOWESS line."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return np.array([x.mean()]), np.array([y.mean()]), np.array([y.std()])
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    centres, means, stds = [], [], []
    for b in range(len(edges) - 1):
        hit = which == b
        if hit.any():
            centres.append(x[hit].mean())
            means.append(y[hit].mean())
            stds.append(y[hit].std())
    return np.array(centres), np.array(means), np.array(stds)


def plot_residuals_vs_fitted(
    actual: np.ndarray, predicted: np.ndarray, target: str, champion: str
) -> tuple[Any, str]:
    """Residual (actual - predicted) against the prediction, with a binned mean line and band."""
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    residual = actual - predicted
    fig, ax = new_figure(figsize=(7.5, 4.6))
    ax.scatter(
        predicted, residual, s=10, alpha=0.4, color=ACCENT, edgecolor="none", label="test rows"
    )
    centres, means, stds = binned_mean(predicted, residual)
    if len(centres):
        ax.fill_between(
            centres,
            means - stds,
            means + stds,
            color=HIGHLIGHT,
            alpha=0.15,
            label="± 1 sd of the bin",
        )
        ax.plot(
            centres,
            means,
            color=HIGHLIGHT,
            lw=2,
            marker="o",
            markersize=4,
            label="binned mean (15 quantile bins)",
        )
    ax.axhline(0, color="black", linestyle="--", lw=1)
    ax.set_xlabel(f"predicted {axis_label(target)}")
    ax.set_ylabel(f"residual: actual - predicted ({unit(target)})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    title = "Residuals vs fitted values"
    ax.set_title(f"{title} ({champion}, test split)")
    return fig, title


def plot_residual_histogram(
    actual: np.ndarray, predicted: np.ndarray, target: str, champion: str
) -> tuple[Any, str]:
    """Distribution of the champion's residuals with their mean and standard deviation."""
    residual = np.asarray(actual, float) - np.asarray(predicted, float)
    fig, ax = new_figure(figsize=(7.5, 4.2))
    ax.hist(residual, bins=40, color=ACCENT, alpha=0.85, edgecolor="white")
    mean, sd = float(residual.mean()), float(residual.std())
    ax.axvline(0, color="black", linestyle="--", lw=1, label="zero error")
    ax.axvline(mean, color=HIGHLIGHT, lw=1.6, label=f"mean {mean:+.3f} (sd {sd:.3f})")
    ax.set_xlabel(f"residual: actual - predicted ({unit(target)})")
    ax.set_ylabel("test rows")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    title = "Distribution of residuals"
    ax.set_title(f"{title} ({champion}, test split, n = {len(residual):,})")
    return fig, title


def plot_importance(importance: pd.DataFrame, xlabel: str, champion: str) -> tuple[Any, str]:
    """Mean |SHAP| per feature (the top `IMPORTANCE_BARS`), largest on top."""
    df = importance.sort_values("rank").head(IMPORTANCE_BARS)
    n_rows = int(df["n_rows"].iloc[0]) if "n_rows" in df.columns and len(df) else 0
    fig, ax = new_figure(figsize=(8, 0.32 * len(df) + 1.6))
    y = np.arange(len(df))
    values = df["mean_abs_shap"].to_numpy(float)
    ax.barh(y, values, color=ACCENT)
    ax.set_yticks(y, df["feature"].astype(str).tolist(), fontsize=8)
    ax.invert_yaxis()
    for yi, v in zip(y, values, strict=True):
        ax.text(v, yi, f" {v:.3g}", va="center", fontsize=7)
    ax.set_xlim(0, max(values.max(), 1e-12) * 1.15)
    ax.set_xlabel(f"mean |SHAP value| ({xlabel})")
    ax.set_ylabel("feature")
    ax.grid(axis="x", alpha=0.3)
    more = len(importance) - len(df)
    title = "Global feature importance (mean |SHAP|)"
    suffix = f"; {more} more not shown" if more > 0 else ""
    ax.set_title(f"{title}\n({champion}, {n_rows:,} rows explained{suffix})", fontsize=11)
    return fig, title


def plot_beeswarm(
    shap: ShapSample, features: Sequence[str], xlabel: str, seed: int = 0
) -> tuple[Any, str]:
    """SHAP value of every sampled row for each top feature (most important on top), coloured by
    the feature's value (blue low, red high, grey categorical or missing)."""
    features = list(features)[:BEESWARM_FEATURES]
    rng = np.random.default_rng(seed)
    fig, ax = new_figure(figsize=(8.5, 0.45 * len(features) + 1.8))
    position = {c: j for j, c in enumerate(shap.columns)}
    for i, feature in enumerate(features):
        y0 = len(features) - 1 - i
        values = shap.values[:, position[feature]]
        colour = feature_colour_values(shap.X[feature], feature in shap.categorical)
        y = y0 + swarm_offsets(values, rng)
        grey = np.isnan(colour)
        ax.scatter(values[grey], y[grey], s=7, color=GREY, alpha=0.6, edgecolor="none")
        ax.scatter(
            values[~grey],
            y[~grey],
            s=7,
            c=colour[~grey],
            cmap=FEATURE_CMAP,
            vmin=0,
            vmax=1,
            alpha=0.8,
            edgecolor="none",
        )
    ax.axvline(0, color="black", lw=0.8)
    labels = [f"{f} (categorical)" if f in shap.categorical else f for f in features]
    ax.set_yticks(range(len(features)), list(reversed(labels)), fontsize=8)
    ax.set_ylim(-0.6, len(features) - 0.4)
    ax.set_xlabel(f"SHAP value (contribution to the {xlabel})")
    ax.set_ylabel("feature (most important on top)")
    ax.grid(axis="x", alpha=0.3)
    mappable = ScalarMappable(norm=Normalize(0, 1), cmap=FEATURE_CMAP)
    bar = fig.colorbar(mappable, ax=ax, ticks=[0, 1], shrink=0.8, pad=0.01)
    bar.ax.set_yticklabels(["low", "high"])
    bar.set_label(
        "feature value (5th-95th percentile per feature; grey: categorical or missing)", fontsize=8
    )
    title = "SHAP summary (beeswarm) of the top features"
    ax.set_title(f"{title}\n({len(shap.values):,} sampled rows, one dot per row)", fontsize=11)
    return fig, title


def _category_order(feature: str, text: pd.Series, values: np.ndarray) -> list[str]:
    counts = text.value_counts()
    shown = list(counts.index[:MAX_CATEGORIES])
    if feature in ORDERS:
        rank = {v: i for i, v in enumerate(ORDERS[feature])}
        return sorted(shown, key=lambda v: (v == MISSING_LABEL, rank.get(v, len(rank)), v))
    means = pd.Series(values).groupby(text.to_numpy()).mean()
    return sorted(shown, key=lambda v: (v == MISSING_LABEL, float(means.get(v, 0.0))))


def plot_dependence(
    shap: ShapSample, feature: str, ylabel: str, rank: int, seed: int = 0
) -> tuple[Any, str]:
    """SHAP value against the feature's value: a scatter with a binned mean for numbers, a strip
    plot per category (with the category mean) for categorical features."""
    rng = np.random.default_rng(seed)
    values = shap.values[:, shap.columns.index(feature)]
    raw = shap.X[feature]
    title = f"SHAP dependence of {feature} (rank {rank})"
    fig, ax = new_figure(figsize=(7.5, 4.6))
    if feature in shap.categorical or not pd.api.types.is_numeric_dtype(raw):
        text = raw.astype("object").map(lambda v: MISSING_LABEL if pd.isna(v) else str(v))
        order = _category_order(feature, text, values)
        codes = {c: i for i, c in enumerate(order)}
        x = text.map(codes).to_numpy(dtype=float)
        shown = ~np.isnan(x)
        ax.scatter(
            x[shown] + rng.uniform(-0.28, 0.28, shown.sum()),
            values[shown],
            s=9,
            alpha=0.45,
            color=ACCENT,
            edgecolor="none",
            label="sampled rows",
        )
        means = [values[shown][x[shown] == i].mean() for i in range(len(order))]
        ax.scatter(
            range(len(order)),
            means,
            marker="D",
            s=50,
            color=HIGHLIGHT,
            edgecolor="black",
            zorder=3,
            label="category mean",
        )
        counts = text.value_counts()
        ax.set_xticks(
            range(len(order)),
            [f"{c}\n(n={int(counts[c]):,})" for c in order],
            fontsize=8,
            rotation=0 if len(order) <= 6 else 30,
        )
        ax.set_xlabel(f"{feature} (category; n = sampled rows)")
        hidden = int((~shown).sum())
        note = f"; {hidden} rows in rarer categories not shown" if hidden else ""
    else:
        x = raw.to_numpy(dtype=float)
        finite = np.isfinite(x)
        distinct = np.unique(x[finite])
        jitter = 0.0
        if 1 < len(distinct) <= 12:  # few values (counts, flags): spread the dots a little
            jitter = 0.15 * float(np.min(np.diff(distinct)))
        ax.scatter(
            x[finite] + rng.uniform(-jitter, jitter, finite.sum()),
            values[finite],
            s=9,
            alpha=0.45,
            color=ACCENT,
            edgecolor="none",
            label="sampled rows",
        )
        centres, means, _ = binned_mean(x[finite], values[finite])
        if len(centres) > 1:
            ax.plot(
                centres, means, color=HIGHLIGHT, lw=2, marker="o", markersize=4, label="binned mean"
            )
        ax.set_xlabel(axis_label(feature))
        missing = int((~finite).sum())
        note = f"; {missing} rows with a missing value not shown" if missing else ""
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel(f"SHAP value of {feature}\n({ylabel})", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(f"{title}\n({len(values):,} sampled rows{note})", fontsize=11)
    return fig, title


# ---------------------------------------------------------------------------------------------
# the report


def registry_confusion(champion: pd.Series) -> np.ndarray | None:
    """The champion's test confusion matrix [[tn, fp], [fn, tp]] as ml.model_runs records it."""
    text = champion.get("test_confusion")
    if not isinstance(text, str) or not text:
        return None
    try:
        c = json.loads(text)
        return np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]], dtype=float)
    except (ValueError, KeyError, TypeError):
        return None


def _negative_label(positive: str) -> str:
    return positive.rsplit("=", 1)[0] + "= 0" if positive.endswith("= 1") else "negative"


def _binary_confusion(data: ModelData, matrix: np.ndarray, threshold: float) -> tuple[Any, str]:
    positive = positive_label(data.champion)
    champion = str(data.champion["model_name"])
    return plot_confusion(
        matrix,
        [_negative_label(positive), positive],
        "Confusion matrix of the champion at its threshold",
        f"({champion}, threshold {threshold:.3f}, test split, n = {int(np.sum(matrix)):,})",
        f"predicted class (probability >= {threshold:.3f} means {positive})",
    )


def _evaluation_section(report: Report, data: ModelData) -> None:
    sec = report.section("Evaluation on the test split", anchor="evaluation")
    if "evaluation" in data.skipped:
        sec.add_note(f"Skipped the evaluation plots: {data.skipped['evaluation']}.")
        matrix = registry_confusion(data.champion)
        if data.problem == "binary" and matrix is not None:
            fig, t = _binary_confusion(data, matrix, _num(data.champion, "threshold"))
            sec.add_figure(fig, t, f"From the test_confusion counts in {MODEL_RUNS}.")
        return
    test = _test_rows(data)
    champion = str(data.champion["model_name"])
    champ_rows = test[test["model_name"] == champion]
    if champ_rows.empty:
        sec.add_note(f"Skipped the evaluation plots: no test predictions of {champion}.")
        return
    models = [m for m in _models_in_order(data.runs) if m in set(test["model_name"])]
    target = str(data.champion.get("target", "target"))
    sec.add_text(
        f"Every candidate was fitted on the training split only and scored on the "
        f"{len(champ_rows):,} held-out test rows; these are the predictions the leaderboard's "
        "test metrics come from. (The deployed champion was then refitted on every labelled row.)"
    )
    if data.problem == "binary":
        positive = positive_label(data.champion)
        negative = _negative_label(positive)
        fig, t = plot_roc_binary(test, models, champion)
        sec.add_figure(fig, t, "Thick line: the champion. Closer to the top-left corner is better.")
        fig, t = plot_pr_binary(test, models, champion, positive)
        sec.add_figure(fig, t, "AP: average precision. The dashed line is a random ranking.")
        y = champ_rows["actual"].to_numpy(int)
        p = champ_rows["predicted"].to_numpy(float)
        threshold = _num(data.champion, "threshold")
        if not math.isfinite(threshold):
            threshold = float(champ_rows["threshold"].iloc[0])
        matrix = skm.confusion_matrix(y, (p >= threshold).astype(int), labels=[0, 1])
        fig, t = _binary_confusion(data, matrix, threshold)
        sec.add_figure(
            fig,
            t,
            "The threshold was chosen on the training folds and validation rows "
            "(max F1, or min cost with --cost-fp/--cost-fn).",
        )
        curves = [(champion, y, p)]
        other = _best_other(data)
        if other is not None:
            rows = test[test["model_name"] == other]
            curves.append((other, rows["actual"].to_numpy(int), rows["predicted"].to_numpy(float)))
        fig, t = plot_calibration(
            curves,
            champion,
            f"mean predicted probability of {positive} (per bin)",
            f"observed share of {positive} (per bin)",
            "Calibration (reliability diagram)",
        )
        sec.add_figure(
            fig,
            t,
            f"The champion and the best other candidate ({other}). On the diagonal, a "
            "predicted 20 % happens 20 % of the time; ECE: expected calibration error, the mean "
            "gap to the diagonal weighted by the rows of each bin.",
        )
        fig, t = plot_probability_histogram(y, p, threshold, champion, positive, negative)
        sec.add_figure(fig, t, "Each class's bars sum to 1; good separation puts them apart.")
    elif data.problem == "multiclass":
        labels = data.class_labels or _class_labels(data.evaluation) or []
        y = champ_rows["actual"].to_numpy(int)
        proba = _proba_matrix(champ_rows)
        labels = labels + [f"class {i}" for i in range(len(labels), proba.shape[1])]
        predicted = proba.argmax(axis=1)
        fig, t = plot_roc_multiclass(y, proba, labels, champion)
        sec.add_figure(fig, t, "Each class's probability ranks that class against all others.")
        k = len(labels)
        matrix = skm.confusion_matrix(y, predicted, labels=list(range(k)))
        fig, t = plot_confusion(
            matrix,
            labels,
            "Confusion matrix of the champion",
            f"({champion}, most probable class, test split, n = {len(y):,})",
            "predicted class (most probable)",
        )
        sec.add_figure(
            fig, t, "Rows: the actual class; the diagonal holds the correct predictions."
        )
        curves = [(champion, (predicted == y).astype(int), proba.max(axis=1))]
        other = _best_other(data)
        if other is not None:
            rows = test[test["model_name"] == other]
            op = _proba_matrix(rows)
            curves.append(
                (other, (op.argmax(1) == rows["actual"].to_numpy(int)).astype(int), op.max(axis=1))
            )
        fig, t = plot_calibration(
            curves,
            champion,
            "confidence: probability of the predicted class (mean per bin)",
            "accuracy: share of correct predictions (per bin)",
            "Calibration of the predicted class's confidence",
            brier=False,
        )
        sec.add_figure(
            fig,
            t,
            f"The champion and the best other candidate ({other}). On the diagonal, predictions "
            "made with 80 % confidence are right 80 % of the time; ECE: expected calibration "
            "error, the mean gap to the diagonal weighted by the rows of each bin.",
        )
        fig, t = plot_per_class_scores(y, predicted, labels, champion)
        sec.add_figure(fig, t)
    else:
        actual = champ_rows["actual"].to_numpy(float)
        predicted = champ_rows["predicted"].to_numpy(float)
        fig, t = plot_predicted_vs_actual(actual, predicted, target, champion)
        sec.add_figure(fig, t, "Points on the dashed line are predicted exactly.")
        fig, t = plot_residuals_vs_fitted(actual, predicted, target, champion)
        sec.add_figure(fig, t, "A binned mean away from zero shows where the model is biased.")
        fig, t = plot_residual_histogram(actual, predicted, target, champion)
        sec.add_figure(fig, t)


def _shap_section(report: Report, data: ModelData) -> None:
    sec = report.section("Explanations (SHAP)", anchor="shap")
    champion = str(data.champion["model_name"])
    space = (
        str(data.importance["output_space"].iloc[0])
        if not data.importance.empty and "output_space" in data.importance.columns
        else (data.shap.output_space if data.shap is not None else "value")
    )
    described = output_description(space, data.problem, data.champion)
    sec.add_text(
        f"SHAP values split each prediction of the champion ({champion}) into additive "
        f"contributions of the features, in the {space} space ({described}): the base value "
        "plus a row's SHAP values is the model's output for that row."
        + (
            " Multiclass: each row explains the probability of its predicted class."
            if data.problem == "multiclass"
            else ""
        )
    )
    if "importance" in data.skipped:
        sec.add_note(f"Skipped the global importance: {data.skipped['importance']}.")
    else:
        fig, t = plot_importance(data.importance, described, champion)
        sec.add_figure(fig, t, f"From {FEATURE_IMPORTANCE}, computed by ml.train.")
    shap = explain_sample(data)
    if shap is None:
        reason = data.skipped.get("shap", "no sample was read")
        sec.add_note(f"Skipped the beeswarm and dependence plots: {reason}.")
        return
    described = output_description(shap.output_space, data.problem, data.champion)
    order = feature_order(data)
    fig, t = plot_beeswarm(shap, order[:BEESWARM_FEATURES], described, seed=data.seed)
    sec.add_figure(
        fig,
        t,
        f"A seeded sample of {len(shap.values):,} rows of {data.champion.get('relation', '')} "
        f"(seed {data.seed}), explained with the hash-verified champion in "
        f"{shap.seconds:.1f} s. Dots right of 0 push the prediction up.",
    )
    for rank, feature in enumerate(order[:DEPENDENCE_FEATURES], start=1):
        fig, t = plot_dependence(shap, feature, described, rank, seed=data.seed + rank)
        sec.add_figure(fig, t)


def build_report(data: ModelData) -> Report:
    """Draw the page of one task from collected data (computes the SHAP sample if needed)."""
    ch = data.champion
    champion, metric = str(ch["model_name"]), data.metric
    report = Report(
        title=f"Model report: {data.task}",
        subtitle=(
            f"{data.problem} task: {ch.get('target', '')} of {ch.get('relation', '')}. "
            f"Run {data.run_id}, champion {champion}."
        ),
        data={"runs": data.runs, "evaluation": data.evaluation, "importance": data.importance},
    )
    sec = report.section("Summary", anchor="summary")
    sec.add_text(headline(data))
    sec.add_table(summary_table(data), caption="The latest run of the task (ml.model_runs).")
    table, formats = leaderboard_table(data)
    sec.add_table(
        table,
        caption=(
            f"Leaderboard, best selection score first. Selection: {metric} on the pooled "
            "out-of-fold and validation predictions (what picked the champion); test: the "
            "held-out 20 %; the oracle row scores the simulator's truth on the same test rows."
        ),
        formats=formats,
    )
    sec = report.section("Leaderboard", anchor="leaderboard")
    fig, t = plot_leaderboard(data.runs, metric, champion, _num(ch, f"oracle_{metric}"))
    sec.add_figure(
        fig,
        t,
        "Circles: mean over the cross-validation folds of the training split, bars ± 1 sd; "
        "diamonds: the test split.",
    )
    _evaluation_section(report, data)
    _shap_section(report, data)
    return report


def build_model_report(
    con: duckdb.DuckDBPyConnection,
    task: str,
    *,
    shap_rows: int = DEFAULT_SHAP_ROWS,
    seed: int = DEFAULT_SEED,
) -> Report:
    """Query the warehouse and draw `task`'s page (data in `report.data`)."""
    return build_report(collect_model_data(con, task, shap_rows=shap_rows, seed=seed))


# ---------------------------------------------------------------------------------------------
# writing


def _write_atomic(path: Path, payload: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render_page(report: Report, out_dir: Path, task: str, *, embed: bool = True) -> Path:
    """Write `out_dir/<task>.html`. Not embedded: the PNGs go to `out_dir/figures/<task>/`
    (each task its own folder, so pages in one folder do not replace each other's plots)."""
    if embed:
        return render(report, out_dir, filename=f"{task}.html")
    fig_dir = out_dir / FIGURES_DIR / task
    fig_dir.mkdir(parents=True, exist_ok=True)
    for stale in fig_dir.iterdir():
        if stale.is_file() and _FIGURE_FILE.match(stale.name):
            stale.unlink()
    img_src: dict[int, str] = {}
    for i, fig in enumerate(report.figures, start=1):
        name = f"{i:02d}-{slugify(fig.title, 50)}.png"
        _write_atomic(fig_dir / name, fig.png)
        img_src[id(fig)] = f"{FIGURES_DIR}/{task}/{name}"
    stamp = time.strftime("%Y-%m-%d %H:%M %Z")
    path = out_dir / f"{task}.html"
    _write_atomic(path, page_html(report, img_src, stamp).encode("utf-8"))
    return path


def write_model_reports(
    out_dir: Path,
    tasks: list[str] | None = None,
    embed: bool = True,
    *,
    shap_rows: int = DEFAULT_SHAP_ROWS,
    seed: int = DEFAULT_SEED,
    path: str | Path | None = None,
) -> list[tuple[Path, int]]:
    """Write `out_dir/<task>.html` for each task (default: every task with a champion).

    The warehouse is read (read-only) and closed before anything is explained or drawn.
    Returns (page, number of plots) per task. Raises `UserError` when nothing is trained, a
    task is unknown or the folder is not writable.
    """
    out_dir = Path(out_dir)
    with warehouse.session(path, read_only=True) as con:
        latest = trained_tasks(con)
        chosen = list(dict.fromkeys(tasks)) if tasks else list(latest)
        unknown = [t for t in chosen if t not in latest]
        if unknown:
            raise UserError(
                f"task {unknown[0]!r} has no trained champion in {MODEL_RUNS} "
                f"(trained: {', '.join(latest)})"
            )
        collected = [collect_model_data(con, t, shap_rows=shap_rows, seed=seed) for t in chosen]
    pages = []
    for data in collected:
        report = build_report(data)
        try:
            page = render_page(report, out_dir, data.task, embed=embed)
        except OSError as err:
            raise UserError(
                f"cannot write the report to {out_dir}: {err.strerror or err}"
            ) from None
        pages.append((page, len(report.figures)))
    return pages


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write one page per task, print one line per page."""
    parser = ArgumentParser(
        prog="python -m scripts.report_models", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="DIR",
        help="folder for <task>.html (default: reports/models in the repository)",
    )
    parser.add_argument(
        "--task",
        action="append",
        metavar="TASK",
        help="a task to report (repeatable; default: every task with a trained champion)",
    )
    parser.add_argument(
        "--shap-rows",
        type=non_negative_int,
        default=DEFAULT_SHAP_ROWS,
        metavar="N",
        help=f"rows sampled for the SHAP beeswarm and dependence plots, 0: none "
        f"(default {DEFAULT_SHAP_ROWS:,})",
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=DEFAULT_SEED,
        help=f"seed of the SHAP sample and the jitter (default {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--png-files",
        action="store_true",
        help="write the plots as PNG files in DIR/figures/<task>/ instead of embedding them",
    )
    args = parser.parse_args(argv)
    pages = write_model_reports(
        args.output,
        args.task,
        embed=not args.png_files,
        shap_rows=args.shap_rows,
        seed=args.seed,
    )
    for page, n_plots in pages:
        print(f"wrote {page} ({n_plots} plots)")
    return 0


if __name__ == "__main__":
    run(main, "scripts.report_models")
