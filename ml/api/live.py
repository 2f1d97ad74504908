"""The models a running server answers with: each task's deployed model, kept in step with the
deployment manifest (`ml.serving.manifest`) without a restart.

Every request first compares the manifest file's identity (inode, size, mtime: one `stat`) with
the one last read; when it changed, the file is read again and every task whose deployed model
changed is loaded again. A model is loaded once, from its file, only when the file's sha256 is
the one the manifest carries (the registry's); a model that fails that check makes its task
unavailable (503 with the reason) rather than leave the previous model answering in its name.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, TypeAdapter

from ml.api.schema import columns_of, field_specs, row_model, rows_adapter
from ml.core.errors import UserError
from ml.core.text import plural
from ml.explanation.shap import Explainer
from ml.serving import decisions
from ml.serving.bundle import InputContract, load_bundle
from ml.serving.fastpath import BatchScorer
from ml.serving.manifest import file_state, read_manifest
from ml.serving.model import TrainedModel
from ml.serving.output import prediction_columns


class Unavailable(UserError):
    """The task has no usable model right now (503)."""


class UnknownTask(UserError):
    """No model of that task is deployed (404)."""


@dataclass
class Served:
    """One loaded model of a task and everything needed to answer with it.

    A request is scored by `ml.serving.fastpath.BatchScorer` (the batch scorer's fast path:
    matrices built straight from the validated columns, compiled xgboost trees, one call of each
    ensemble member per request), checked at load against the generic
    path on the bundle's reference rows; the same matrices feed the explainer. A model the fast
    path cannot reproduce is scored through `TrainedModel.prepare` and its pipeline instead.
    The scorer's buffers are reused between requests, so one request of a model is scored at a
    time (the work is CPU-bound: concurrent requests would only share the same cores).
    """

    task: str
    deployment: dict[str, Any]
    model: TrainedModel
    deployed: bool
    rows: type[BaseModel]
    adapter: TypeAdapter
    cutoffs: tuple[float, float] | None = None  # (approve_below, decline_at_or_above)
    scorer: BatchScorer | None = field(default=None, repr=False)
    _explainer: Explainer | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, task: str, deployment: dict[str, Any], model: TrainedModel, deployed: bool,
             cutoffs: tuple[float, float] | None) -> Served:  # fmt: skip
        """The served model, its fast path compiled and checked on the reference rows."""
        rows = row_model(task, model.contract)
        schema = arrow_schema(model.contract)
        scorer = BatchScorer(model, schema)
        if scorer.fast:
            if model.reference is None:  # an old bundle: nothing to check the fast path on
                scorer.fall_back("the bundle has no reference rows to check the fast path on")
            else:
                scorer.verify(_reference_table(model, schema))
        return cls(task, deployment, model, deployed, rows, rows_adapter(rows), cutoffs, scorer)

    @property
    def decides(self) -> bool:
        """True when the task's predictions are decisions with reasons (loans)."""
        return self.cutoffs is not None

    def explainer(self) -> Explainer | None:
        """The SHAP explainer of the model (built on first use; None without a reference)."""
        if self._explainer is None and self.model.reference is not None:
            with self._lock:
                if self._explainer is None:
                    self._explainer = Explainer(
                        self.model.pipeline,
                        self.model.features,
                        self.model.reference[self.model.features],
                        seed=int(self.model.info.get("seed", 0)),
                    )
        return self._explainer

    def describe(self) -> dict[str, Any]:
        """What `/v1/tasks` says of this task."""
        info = self.model.info
        out = self.model.output
        answer = {
            "task": self.task,
            "problem": out.problem,
            "deployment": {k: v for k, v in self.deployment.items() if k != "candidates"},
            "candidates": sorted(self.deployment.get("candidates", {})),
            "metrics": info.get("metrics", {}),
            "threshold": out.threshold,
            "classes": list(out.class_labels) if out.class_labels is not None else None,
            "input": {
                "id_column": self.model.contract.id_column,
                "fields": field_specs(self.model.contract),
            },
            "relation": info.get("relation"),
            "target": info.get("target"),
            "scoring": "fast path" if self.scorer is not None and self.scorer.fast else "pipeline",
        }
        if self.cutoffs is not None:
            answer["decision"] = {
                "approve_below": self.cutoffs[0],
                "decline_at_or_above": self.cutoffs[1],
                "mart": decisions.DECISION_TASKS[self.task],
            }
        return answer

    def predict(self, raw_rows: list[Any], explain: bool = True) -> dict[str, Any]:
        """Validate (pydantic; raises its ValidationError), score and, for a decision task,
        decide and explain `raw_rows`. One answer row per input row, in order."""
        rows = self.adapter.validate_python(raw_rows)
        contract = self.model.contract
        columns = columns_of(rows, contract)
        explainer = self.explainer() if explain and self.decides else None
        with self._lock:
            values, notes, shap_values = self._score(columns, explainer)
        out = self.model.output
        predicted = prediction_columns(out, values)
        n = len(rows)
        answers: list[dict[str, Any]] = [{"id": v} for v in columns[contract.id_column]]
        for name in ("prediction", "probability"):
            for a, v in zip(answers, _json_values(predicted[name]), strict=True):
                a[name] = v
        threshold = None if out.threshold is None else float(out.threshold)
        for a in answers:
            a["threshold"] = threshold
        if out.problem == "multiclass":
            labels = [str(v) for v in out.class_labels]
            by_class = np.column_stack([predicted[c] for c in out.class_columns]) if n else None
            for i, a in enumerate(answers):
                a["probabilities"] = dict(zip(labels, by_class[i].tolist(), strict=True))
        if self.cutoffs is not None:
            self._decide(answers, columns, shap_values)
        return {"rows": answers, "notes": notes}

    def _score(self, columns: dict[str, list], explainer: Explainer | None):
        """(values, notes, SHAP values or None) of the validated columns; under the lock."""
        scorer = self.scorer
        if scorer is not None and scorer.fast:
            table = _table(columns, scorer.schema)  # the schema made once, at load
            try:
                matrices = scorer.prepare(table)
                values = scorer.predict_prepared(matrices)
            finally:
                scorer.timings.clear()  # the batch scorer's per-call timings: not kept here
            shap_values = None
            if explainer is not None:
                keys = [member.prep_key for member in scorer.members]
                shap_values = explainer.explain_matrices([matrices[k]["F"] for k in keys]).values
            return values, _notes(columns, self.model.contract), shap_values
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            X, _, notes = self.model.prepare(pd.DataFrame(columns))
            values = self.model.values(X)
        shap_values = explainer.explain(X).values if explainer is not None else None
        return values, notes, shap_values

    def _decide(self, answers, columns, shap_values) -> None:
        approve, decline = self.cutoffs
        verdicts = [decisions.decide(a["probability"], approve, decline) for a in answers]
        for a, v in zip(answers, verdicts, strict=True):
            a["decision"] = v
        if shap_values is None:
            return
        features = self.model.features
        records = [
            dict(zip(features, row, strict=True))
            for row in zip(*map(columns.get, features), strict=True)
        ]
        top_k = int(self.model.info.get("explain_top_k") or decisions.DEFAULT_TOP_K)
        texts = decisions.reasons(
            shap_values, self.model.features, records, verdicts, LABELS.get(), top_k
        )
        for a, t in zip(answers, texts, strict=True):
            a["reasons"] = t


def arrow_schema(contract: InputContract) -> pa.Schema:
    """The Arrow types of the validated columns: text for categories and datetimes (ISO text:
    the fast path refuses such a model, which is then scored through `prepare`), float64 for
    numbers and booleans."""
    text = set(contract.categorical) | {
        c for c in contract.features if str(contract.dtypes.get(c, "")).startswith("datetime")
    }
    return pa.schema(
        [pa.field(c, pa.string() if c in text else pa.float64()) for c in contract.features]
    )


def _table(columns: dict[str, list], schema: pa.Schema) -> pa.Table:
    """The validated columns as an Arrow table of `schema` (`arrow_schema`)."""
    arrays = []
    for f in schema:
        values = columns[f.name]
        if f.type == pa.float64():  # booleans as 1.0 / 0.0, as the model frame holds them
            values = [float(v) if isinstance(v, bool) else v for v in values]
        arrays.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _reference_table(model: TrainedModel, schema: pa.Schema) -> pa.Table:
    """The bundle's reference rows (training rows, model frame) as the API's columns."""
    reference = model.reference[model.features]
    columns = {
        c: [None if v is None or v != v else v for v in reference[c].tolist()]
        for c in model.features
    }
    return _table(columns, schema)


def _notes(columns: dict[str, list], contract: InputContract) -> list[str]:
    """What the fast path would have adjusted: unseen categories, repeated ids."""
    notes = []
    for c in contract.categorical:
        known = set(contract.categories.get(c, []))
        unseen = sum(1 for v in columns[c] if v is not None and v not in known)
        if known and unseen:
            notes.append(
                f"{c}: {plural(unseen, 'row')} with a category not seen in training "
                "(scored as infrequent)"
            )
    ids = [v for v in columns[contract.id_column] if v is not None]
    if len(set(ids)) < len(ids):
        notes.append(f"{contract.id_column}: repeated ids")
    return notes


def _json_values(column: np.ndarray) -> list[Any]:
    """A column as JSON values: NaN (a regression's probability) becomes null."""
    values = column.tolist()
    if column.dtype.kind == "f":
        return [None if v != v else v for v in values]
    return values


class _Labels:
    """The seed's feature labels, read once."""

    def __init__(self) -> None:
        self._labels: dict[str, str] | None = None

    def get(self) -> dict[str, str]:
        if self._labels is None:
            self._labels = decisions.feature_labels()
        return self._labels


LABELS = _Labels()


class LiveModels:
    """Each task's deployed model (and candidates asked for by name), following the manifest."""

    def __init__(self, manifest: Path, cutoffs: decisions.Cutoffs | None = None):
        self.manifest = manifest
        self.cutoffs = cutoffs if cutoffs is not None else decisions.Cutoffs.from_vars()
        self._lock = threading.RLock()
        self._state: tuple[int, int, int] | None = None
        self._deployments: dict[str, dict[str, Any]] = {}
        self._served: dict[tuple[str, str], Served] = {}  # (task, model_name) -> loaded
        self._errors: dict[str, str] = {}  # task -> why its deployed model cannot answer
        self.reloads = 0

    def refresh(self) -> None:
        """Read the manifest again if the file changed; load what it now deploys."""
        state = file_state(self.manifest)
        if state == self._state and self._state is not None:
            return
        with self._lock:
            state = file_state(self.manifest)
            if state == self._state and self._state is not None:
                return
            tasks = read_manifest(self.manifest)["tasks"]
            served, errors = {}, {}
            for task, deployment in tasks.items():
                key = (task, deployment["model_name"])
                old = self._served.get(key)
                if old is not None and _same(old.deployment, deployment):
                    old.deployment = deployment  # same model, maybe a newer deployment id
                    served[key] = old
                    continue
                try:
                    served[key] = self._load(task, deployment, deployment["model_name"])
                except UserError as err:
                    errors[task] = str(err)
            self._deployments = tasks
            self._served = served
            self._errors = errors
            self._state = state
            self.reloads += 1

    def _load(self, task: str, deployment: dict[str, Any], model_name: str) -> Served:
        deployed = model_name == deployment["model_name"]
        if deployed:
            path, sha = deployment["artifact_path"], deployment["artifact_sha256"]
        else:
            candidate = deployment.get("candidates", {}).get(model_name)
            if candidate is None:
                known = ", ".join(sorted(deployment.get("candidates", {}))) or "none"
                raise UnknownTask(
                    f"{task}: the deployed run {deployment['run_id']} has no model "
                    f"{model_name!r} (candidates: {known})"
                )
            path, sha = candidate["path"], candidate["sha256"]
        model = TrainedModel.of(load_bundle(path, sha))
        cutoffs = None
        if task in decisions.DECISION_TASKS and model.output.problem == "binary":
            cutoffs = self.cutoffs.at(float(model.output.threshold))
        return Served.load(task, deployment, model, deployed, cutoffs)

    def warm(self) -> None:
        """Load every deployed model and its explainer now, so the first request is served at
        the usual speed (a task that cannot load stays unavailable with its reason)."""
        for task in self.tasks():
            try:
                served = self.served(task)
            except UserError:
                continue
            if served.decides:
                served.explainer()

    def tasks(self) -> list[str]:
        """Every task the manifest deploys, in name order."""
        self.refresh()
        return sorted(self._deployments)

    def errors(self) -> dict[str, str]:
        """task -> why its deployed model cannot answer."""
        self.refresh()
        return dict(self._errors)

    def served(self, task: str, model_name: str | None = None) -> Served:
        """The loaded model of `task`: its deployed model, or `model_name` of the deployed run."""
        self.refresh()
        with self._lock:
            deployment = self._deployments.get(task)
            if deployment is None:
                known = ", ".join(sorted(self._deployments)) or "none"
                raise UnknownTask(f"no deployed model for task {task!r} (deployed: {known})")
            if task in self._errors:
                raise Unavailable(f"{task}: {self._errors[task]}")
            name = model_name or deployment["model_name"]
            key = (task, name)
            if key not in self._served:
                self._served[key] = self._load(task, deployment, name)
            return self._served[key]


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a["run_id"], a["model_name"], a["artifact_sha256"]) == (
        b["run_id"],
        b["model_name"],
        b["artifact_sha256"],
    )
