"""What a task's model page is drawn from, read from the tables `ml.train` writes: the latest
run's candidates (`ml.model_runs`), their held-out predictions (`ml.evaluation_predictions`), the
champion's SHAP importance (`ml.feature_importance`) and its stored SHAP sample
(`ml.shap_sample`); and the task's deployments and promotion decisions (`ml.deployments`,
`ml.promotion_decisions`, written by ml.train and the governance commands). Nothing here loads
a model or explains a row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.core.errors import UserError
from ml.core.tables import (
    DEPLOYMENTS,
    EVALUATION_PREDICTIONS,
    FAIRNESS_METRICS,
    FEATURE_IMPORTANCE,
    MODEL_RUNS,
    PROMOTION_DECISIONS,
    SHAP_SAMPLE,
)
from ml.core.tasks import LOWER_IS_BETTER
from ml.core.warehouse import Warehouse
from ml.reports.reading import as_bool, json_value, missing_columns, sample_positions, select

DEFAULT_SHAP_ROWS = 1_000
DEFAULT_SEED = 0
_SHAP_COLUMNS = (
    "entity_id",
    "feature",
    "value",
    "value_text",
    "is_categorical",
    "shap_value",
    "output_space",
)
#: The promotion decisions a page lists, newest first.
DECISIONS_SHOWN = 20
#: The columns a page needs of ml.deployments and ml.promotion_decisions (others are optional).
DEPLOYMENT_COLUMNS = ("task", "deployment_id", "run_id", "model_name", "deployed_at", "command")
DECISION_COLUMNS = ("task", "decided_at", "challenger_run_id", "challenger_model", "promoted")


@dataclass
class ShapSample:
    """SHAP values of the champion for a sample of rows, with the rows' feature values."""

    values: np.ndarray  # (n, n_columns)
    columns: list[str]
    X: pd.DataFrame  # feature values of the rows (numbers as float, categories as text)
    output_space: str  # "value" | "log-odds" | "probability"
    categorical: frozenset[str]
    stored_rows: int = 0  # rows of the stored sample this one was drawn from


@dataclass
class ModelData:
    """What a task's page is drawn from: the latest run's candidates, its held-out predictions,
    the champion's SHAP importance and sample, and why a part could not be read."""

    task: str
    run_id: str
    runs: pd.DataFrame  # one row per candidate of the latest run, best selection score first
    evaluation: pd.DataFrame  # ml.evaluation_predictions rows of the run (may be empty)
    importance: pd.DataFrame  # ml.feature_importance rows of the run's champion (may be empty)
    class_labels: list[str] | None = None  # multiclass: label of each class code
    shap: ShapSample | None = None
    #: ml.fairness_metrics rows of the champion on the test split (may be empty)
    fairness: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: ml.deployments rows of the task, newest (the current one) first (may be empty)
    deployments: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: ml.promotion_decisions rows of the task, newest first, at most DECISIONS_SHOWN
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)
    n_decisions: int = 0  # the task's decisions in all
    governed: bool = False  # ml.deployments was read: the warehouse records deployments
    skipped: dict[str, str] = field(default_factory=dict)
    shap_rows: int = DEFAULT_SHAP_ROWS
    seed: int = DEFAULT_SEED

    @property
    def champion(self) -> pd.Series:
        return self.runs.loc[self.runs["is_champion"]].iloc[0]

    @property
    def problem(self) -> str:
        return str(self.champion["problem"])

    @property
    def metric(self) -> str:
        return str(self.champion["primary_metric"])

    @property
    def deployed(self) -> pd.Series | None:
        """The task's current deployment (its highest deployment_id), None when none was read."""
        return None if self.deployments.empty else self.deployments.iloc[0]

    @property
    def run_is_deployed(self) -> bool | None:
        """Whether the run's champion is the deployed model (None: no deployment was read)."""
        current = self.deployed
        if current is None:
            return None
        return str(current["run_id"]) == self.run_id and str(current["model_name"]) == str(
            self.champion["model_name"]
        )


# ---------------------------------------------------------------------------------------------
# the values of a run's row


def num(row: pd.Series, column: str) -> float:
    """`row[column]` as a float (NaN when missing or not a number)."""
    value = row.get(column, np.nan)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def fmt(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def direction(metric: str) -> str:
    return "lower is better" if metric in LOWER_IS_BETTER else "higher is better"


def model_label(name: str, champion: str) -> str:
    return f"{name} (champion)" if name == champion else name


def models_in_order(runs: pd.DataFrame) -> list[str]:
    return [str(m) for m in runs["model_name"]]


def positive_label(champion: pd.Series) -> str:
    """What the positive class (1) of a binary task means, for legends."""
    target = str(champion.get("target", "target"))
    mapping = json_value(champion.get("target_mapping"), {})
    try:
        for label, code in mapping.items():
            if int(code) == 1:
                return f"{target} = {label}"
    except (ValueError, TypeError, AttributeError):
        pass
    return f"{target} = 1"


def negative_label(positive: str) -> str:
    return positive.rsplit("=", 1)[0] + "= 0" if positive.endswith("= 1") else "negative"


def registry_confusion(champion: pd.Series) -> np.ndarray | None:
    """The champion's test confusion matrix [[tn, fp], [fn, tp]] as ml.model_runs records it."""
    c = json_value(champion.get("test_confusion"))
    try:
        return np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]], dtype=float)
    except (KeyError, TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# reading


def latest_runs(runs: pd.DataFrame) -> dict[str, str]:
    """Each task's latest run: the run of its most recent champion row (by `trained_at`, then
    `run_id`), as {task: run_id} in task order. Tasks without a champion row are left out."""
    if runs.empty or "is_champion" not in runs.columns:
        return {}
    champions = runs.loc[as_bool(runs["is_champion"])]
    keys = [c for c in ("trained_at", "run_id") if c in champions.columns]
    champions = champions.sort_values(["task", *keys], kind="stable")
    last = champions.groupby("task", sort=True).tail(1)
    return {str(t): str(r) for t, r in zip(last["task"], last["run_id"], strict=True)}


def trained_tasks(wh: Warehouse) -> dict[str, str]:
    """{task: latest run_id} of every task with a champion; `UserError` when there is none."""
    if not wh.exists(MODEL_RUNS):
        raise UserError(f"{MODEL_RUNS} not found: no models trained yet, run `python -m ml.train`")
    latest = latest_runs(wh.read_frame(MODEL_RUNS))
    if not latest:
        raise UserError(f"{MODEL_RUNS} has no champion: run `python -m ml.train` first")
    return latest


def evaluation_class_labels(evaluation: pd.DataFrame) -> list[str] | None:
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


def _by_id(ids: set[str]) -> list[str]:
    """Entity ids in order: by number when every id is one, else as text."""
    text = sorted(ids)
    numbers = pd.to_numeric(pd.Series(text, dtype="object"), errors="coerce")
    if len(text) and numbers.notna().all():
        return [text[i] for i in np.argsort(numbers.to_numpy(dtype=float), kind="stable")]
    return text


def shap_sample(rows: pd.DataFrame, max_rows: int, seed: int) -> ShapSample:
    """`ml.shap_sample`'s long rows of one run pivoted to a row per entity (by id), a column per
    feature; a seeded sample of at most `max_rows` of its entities."""
    ids = _by_id(set(rows["entity_id"].astype(str)))
    columns = list(dict.fromkeys(rows["feature"].astype(str)))
    keep = [ids[i] for i in sample_positions(len(ids), max_rows, seed)]
    frame = rows.assign(
        entity_id=rows["entity_id"].astype(str), feature=rows["feature"].astype(str)
    )
    frame = frame[frame["entity_id"].isin(set(keep))]

    def wide(column: str) -> pd.DataFrame:
        table = frame.pivot(index="entity_id", columns="feature", values=column)
        return table.reindex(index=keep, columns=columns)

    categorical = frozenset(
        frame.loc[as_bool(frame["is_categorical"]), "feature"].astype(str).unique()
    )
    numbers, texts = wide("value"), wide("value_text")
    X = pd.DataFrame(
        {
            c: texts[c].astype("object").where(texts[c].notna(), None)
            if c in categorical
            else pd.to_numeric(numbers[c], errors="coerce").astype("float64")
            for c in columns
        }
    ).reset_index(drop=True)
    spaces = rows["output_space"].dropna()
    return ShapSample(
        values=wide("shap_value").to_numpy(dtype=float),
        columns=columns,
        X=X,
        output_space=str(spaces.iloc[0]) if len(spaces) else "value",
        categorical=categorical,
        stored_rows=len(ids),
    )


def _read_shap(wh: Warehouse, data: ModelData) -> None:
    """The run's stored SHAP sample into `data.shap`, or the reason there is none."""
    if data.shap_rows <= 0:
        data.skipped["shap"] = "the SHAP sample was turned off (--shap-rows 0)"
        return
    rows = pd.DataFrame()
    if wh.exists(SHAP_SAMPLE):
        absent = missing_columns(wh, SHAP_SAMPLE, ("task", "run_id", *_SHAP_COLUMNS))
        if absent:
            data.skipped["shap"] = f"{SHAP_SAMPLE} has no column {absent[0]!r}: retrain the task"
            return
        where = {"task": data.task, "run_id": data.run_id}
        rows = select(wh, SHAP_SAMPLE, where=where, columns=_SHAP_COLUMNS, order_by="entity_id")
    if rows.empty:
        data.skipped["shap"] = (
            f"{SHAP_SAMPLE} holds no SHAP values of run {data.run_id} "
            "(trained with --explain-rows 0 or by an older version)"
        )
        return
    data.shap = shap_sample(rows, data.shap_rows, data.seed)


def _task_rows(
    wh: Warehouse, relation: str, wanted: tuple[str, ...], task: str, what: str
) -> tuple[pd.DataFrame | None, str]:
    """(rows of `task` in `relation`, "" or, when there are none, why); rows None when the
    relation cannot be read (absent, or of another layout)."""
    if not wh.exists(relation):
        return None, (
            f"{relation} not found: the warehouse predates model governance (ml.train and the "
            "governance commands write it)"
        )
    absent = missing_columns(wh, relation, wanted)
    if absent:
        return None, f"{relation} has no column {absent[0]!r}"
    rows = select(wh, relation, where={"task": task})
    return rows, f"{relation} holds no {what} of task {task}" if rows.empty else ""


def _read_governance(wh: Warehouse, data: ModelData) -> None:
    """The task's deployments (newest first) and its latest promotion decisions into `data`, or
    why they could not be read."""
    rows, reason = _task_rows(wh, DEPLOYMENTS, DEPLOYMENT_COLUMNS, data.task, "deployment")
    data.governed = rows is not None
    if reason:
        data.skipped["deployments"] = reason
    else:
        rows = rows.assign(deployment_id=pd.to_numeric(rows["deployment_id"], errors="coerce"))
        data.deployments = rows.sort_values(
            "deployment_id", ascending=False, kind="stable"
        ).reset_index(drop=True)
    rows, reason = _task_rows(
        wh, PROMOTION_DECISIONS, DECISION_COLUMNS, data.task, "promotion decision"
    )
    if reason:
        data.skipped["decisions"] = reason
        return
    rows = rows.assign(decided_at=pd.to_datetime(rows["decided_at"], errors="coerce"))
    newest = rows.iloc[::-1].sort_values("decided_at", ascending=False, kind="stable")
    data.n_decisions = len(rows)
    data.decisions = newest.head(DECISIONS_SHOWN).reset_index(drop=True)


def collect_model_data(
    wh: Warehouse,
    task: str,
    *,
    shap_rows: int = DEFAULT_SHAP_ROWS,
    seed: int = DEFAULT_SEED,
    latest: dict[str, str] | None = None,
) -> ModelData:
    """Read `task`'s latest run (`latest`: `trained_tasks`, if read already), its evaluation
    rows, importance and SHAP sample, and the task's deployments and promotion decisions.
    Raises `UserError` when the task has no champion."""
    latest = latest if latest is not None else trained_tasks(wh)
    if task not in latest:
        known = ", ".join(latest)
        raise UserError(f"task {task!r} has no trained champion in {MODEL_RUNS} (trained: {known})")
    run_id = latest[task]
    runs = select(wh, MODEL_RUNS, where={"task": task, "run_id": run_id})
    runs["is_champion"] = as_bool(runs["is_champion"])
    if "selection_score" in runs.columns:
        metric = str(runs.loc[runs["is_champion"], "primary_metric"].iloc[0])
        runs = runs.sort_values(
            "selection_score",
            ascending=metric in LOWER_IS_BETTER,
            na_position="last",
            kind="stable",
        )
    data = ModelData(
        task=task,
        run_id=run_id,
        runs=runs.reset_index(drop=True),
        evaluation=pd.DataFrame(),
        importance=pd.DataFrame(),
        shap_rows=shap_rows,
        seed=seed,
    )
    if wh.exists(EVALUATION_PREDICTIONS):
        where = {"task": task, "run_id": run_id, "split": "test"}
        data.evaluation = select(wh, EVALUATION_PREDICTIONS, where=where)
    if data.evaluation.empty:
        data.skipped["evaluation"] = (
            f"{EVALUATION_PREDICTIONS} holds no predictions of run {run_id} (it was trained by an "
            f"older version of ml.train); retrain with `python -m ml.train --task {task}` to get "
            "them"
        )
    if data.problem == "multiclass":
        stored = json_value(data.champion.get("class_labels"))
        data.class_labels = (
            [str(v) for v in stored]
            if isinstance(stored, list) and stored
            else evaluation_class_labels(data.evaluation)
        )
    champion = str(data.champion["model_name"])
    if wh.exists(FEATURE_IMPORTANCE):
        where = {"task": task, "run_id": run_id, "model_name": champion}
        data.importance = select(wh, FEATURE_IMPORTANCE, where=where, order_by="rank")
    if data.importance.empty:
        data.skipped["importance"] = (
            f"{FEATURE_IMPORTANCE} holds no SHAP importance of run {run_id} "
            "(trained with --explain-rows 0 or by an older version)"
        )
    if wh.exists(FAIRNESS_METRICS):
        where = {"task": task, "run_id": run_id, "model_name": champion, "split": "test"}
        data.fairness = select(wh, FAIRNESS_METRICS, where=where)
    if data.fairness.empty:
        data.skipped["fairness"] = (
            f"{FAIRNESS_METRICS} holds no metrics of run {run_id}: its rows have no sensitive "
            "attribute (age group, gender, region), or an older version of ml.train trained it"
        )
    _read_shap(wh, data)
    _read_governance(wh, data)
    return data


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
