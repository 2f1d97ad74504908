"""Whether a challenger replaces the deployed model: the evidence, the gates and the decision.

**The rows.** Both models are judged on the same labelled rows that neither learnt from: the
challenger run's test split (its fit, tuning, model choice and threshold never saw it), keeping

- the *newest* rows: rows that were not yet in the relation when the deployed model was trained
  (no `ml.score_log` row of its training run), scored by the deployed model's own artifact, and
- rows that the deployed model's run also held out in its test split, with that run's held-out
  predictions (`ml.evaluation_predictions`), made before its champion was refitted on every row.

A row the deployed run trained on is never used: its artifact knows that label. A shared row
must still be the row the deployed run held out: the same label, and the same values of the
deployed model's features as when it trained (the hash its run logged): another simulated world
reuses the ids, and a customer's features move with every order. The counts of both kinds are
stored with the decision (`n_rows`, `n_new_rows`).

**The test.** The task's primary metric: ROC-AUC by DeLong's test for two correlated ROC
curves, the other metrics by a seeded paired bootstrap; two-sided at alpha = 0.05, and the
challenger must be better (`ml.governance.evidence`).

**The decision.** Under `--promote auto` the challenger is deployed only with a significant
gain, a passing quality gate (the relation's latest gate run) and a passing fairness gate
(`ml.fairness.gate`). `never` records the evidence and deploys nothing; `force` deploys
whatever the evidence (recorded, with the reason). A task's first run deploys its champion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ml.core.errors import UserError
from ml.core.tables import EVALUATION_PREDICTIONS, FAIRNESS_METRICS, SCORE_LOG
from ml.core.warehouse import Warehouse
from ml.fairness.gate import GATED, FairnessLimits, GateResult, check_fairness
from ml.governance.evidence import ALPHA, Comparison, compare
from ml.quality.results import require_passing_gate
from ml.serving.bundle import ArtifactIntegrityError, load_bundle
from ml.serving.hashing import feature_hashes
from ml.serving.model import TrainedModel, deployed_row

#: What `--promote` accepts.
MODES = ("auto", "never", "force")
#: Fewer shared held-out rows than this give no evidence at all.
MIN_ROWS = 30
#: ml.score_log's scored_by of a training run's own scores (`ml.training.monitoring`).
TRAINED_BY = "ml.train"

#: Columns of ml.promotion_decisions, in order.
COLUMNS = (
    "task", "decided_at", "challenger_run_id", "challenger_model", "deployed_run_id",
    "deployed_model", "deployed_deployment_id", "mode", "metric", "test", "alpha", "n_rows",
    "n_new_rows", "challenger_score", "deployed_score", "difference", "ci_low", "ci_high",
    "p_value", "significant", "quality_passed", "fairness_passed", "fairness_checks", "promoted",
    "reason", "deployment_id",
)  # fmt: skip


@dataclass(frozen=True)
class PromotionOptions:
    """How challengers are judged (the promotion options of `ml.train` and `ml.promote`)."""

    mode: str = "auto"  # auto | never | force
    gate_attributes: tuple[str, ...] | None = None  # None: the task's default (GATED)
    min_parity_ratio: float = 0.8
    max_odds_difference: float = 0.1
    min_group_size: int = 50
    seed: int = 0  # the paired bootstrap's

    def limits(self, task: str) -> FairnessLimits:
        """The fairness gate of `task`."""
        attributes = self.gate_attributes
        return FairnessLimits(
            attributes=GATED.get(task, ()) if attributes is None else attributes,
            min_parity_ratio=self.min_parity_ratio,
            max_odds_difference=self.max_odds_difference,
            min_group_size=self.min_group_size,
        )


@dataclass
class Evidence:
    """The paired comparison of a challenger with the deployed model, and on what rows."""

    comparison: Comparison | None
    n_rows: int = 0
    n_new_rows: int = 0
    note: str = ""  # why there is no comparison

    @property
    def significant(self) -> bool:
        """A significant gain of the challenger."""
        return self.comparison is not None and self.comparison.significant

    def line(self) -> str:
        """One line: the comparison, or why there is none."""
        if self.comparison is None:
            return f"no evidence: {self.note}"
        new = (
            f", {self.n_new_rows:,} of them newer than the deployed model"
            if self.n_new_rows
            else ""
        )
        return self.comparison.line() + new


@dataclass
class Decision:
    """A promotion decision and everything it rests on."""

    task: str
    challenger: dict[str, Any]  # run_id, model_name
    deployed: dict[str, Any] | None  # the current deployment (deployed_row), None: first run
    mode: str  # first | auto | never | force | manual
    metric: str
    evidence: Evidence
    quality_passed: bool
    quality_note: str
    fairness: GateResult = field(default_factory=GateResult)
    promoted: bool = False
    reason: str = ""

    def frame(self, decided_at: datetime, deployment_id: int | None = None) -> pd.DataFrame:
        """The decision as one `ml.promotion_decisions` row."""
        c = self.evidence.comparison
        nan = float("nan")
        deployed = self.deployed or {}
        checks = [check.line() for check in self.fairness.checks] + self.fairness.notes
        row = {
            "task": self.task,
            "decided_at": pd.Timestamp(decided_at),
            "challenger_run_id": self.challenger["run_id"],
            "challenger_model": self.challenger["model_name"],
            "deployed_run_id": deployed.get("run_id"),
            "deployed_model": deployed.get("model_name"),
            "deployed_deployment_id": deployed.get("deployment_id"),
            "mode": self.mode,
            "metric": self.metric,
            "test": c.test if c else None,
            "alpha": c.alpha if c else ALPHA,
            "n_rows": self.evidence.n_rows,
            "n_new_rows": self.evidence.n_new_rows,
            "challenger_score": c.challenger if c else nan,
            "deployed_score": c.deployed if c else nan,
            "difference": c.difference if c else nan,
            "ci_low": c.ci_low if c else nan,
            "ci_high": c.ci_high if c else nan,
            "p_value": c.p_value if c else nan,
            "significant": self.evidence.significant,
            "quality_passed": self.quality_passed,
            "fairness_passed": self.fairness.passed,
            "fairness_checks": "; ".join(checks) or "report only: no attribute gated",
            "promoted": self.promoted,
            "reason": self.reason,
            "deployment_id": deployment_id,
        }
        frame = pd.DataFrame([row])
        for column in ("deployed_deployment_id", "n_rows", "n_new_rows", "deployment_id"):
            frame[column] = pd.array(frame[column].tolist(), dtype="Int64")
        for column in ("significant", "quality_passed", "fairness_passed", "promoted"):
            frame[column] = frame[column].astype(bool)
        for column in ("challenger_score", "deployed_score", "difference", "ci_low", "ci_high",
                       "p_value", "alpha"):  # fmt: skip
            frame[column] = frame[column].astype(float)
        frame["decided_at"] = frame["decided_at"].astype("datetime64[us]")
        text = [c for c in COLUMNS if frame[c].dtype == object]
        for column in text:
            frame[column] = frame[column].astype("str").where(frame[column].notna(), None)
        return frame[list(COLUMNS)]

    def lines(self) -> list[str]:
        """What the CLI prints: the verdict, the evidence and the gates."""
        ch = f"{self.challenger['run_id']}/{self.challenger['model_name']}"
        verdict = "PROMOTED" if self.promoted else "not promoted"
        out = [f"{self.task}: challenger {ch} {verdict} ({self.mode}): {self.reason}"]
        if self.deployed is not None:
            out.append(f"  evidence: {self.evidence.line()}")
            quality = "passed" if self.quality_passed else f"FAILED ({self.quality_note})"
            out.append(f"  quality gate: {quality}")
            gated = ", ".join(self.fairness.failures) if not self.fairness.passed else "passed"
            if not self.fairness.checks and not self.fairness.notes:
                gated = "report only"
            out.append(f"  fairness gate: {gated}")
        return out


def _test_rows(evaluation: pd.DataFrame, run_id: str, model_name: str) -> pd.DataFrame:
    rows = evaluation[
        (evaluation["run_id"].astype(str) == run_id)
        & (evaluation["model_name"].astype(str) == model_name)
        & (evaluation["split"].astype(str) == "test")
    ]
    return rows.drop_duplicates("entity_id").set_index(rows["entity_id"].astype(str).to_numpy())


def _values(rows: pd.DataFrame, problem: str) -> np.ndarray:
    """What the comparison reads of evaluation rows: labels (multiclass) or numbers."""
    if problem == "multiclass":
        return rows["predicted_label"].astype(str).to_numpy()
    return rows["predicted"].to_numpy(dtype=float)


def _actual(rows: pd.DataFrame, problem: str) -> np.ndarray:
    if problem == "multiclass":
        return rows["actual_label"].astype(str).to_numpy()
    return rows["actual"].to_numpy(dtype=float)


def _scored_values(scored: pd.DataFrame, problem: str) -> np.ndarray:
    """The same of a prediction frame of the deployed artifact."""
    if problem == "binary":
        return scored["probability"].to_numpy(dtype=float)
    if problem == "multiclass":
        return scored["prediction"].astype(str).to_numpy()
    return scored["prediction"].to_numpy(dtype=float)


def training_hashes(wh: Warehouse, task: str, run_id: str) -> pd.Series:
    """entity id -> hash of its feature values, of the rows the relation held when run
    `run_id` trained (its champion's score-log rows); empty when unknown (a run that trained on
    a sample logs none)."""
    if not wh.exists(SCORE_LOG):
        return pd.Series(dtype="str")
    rows = wh.query(
        f"select entity_id, feature_hash from {SCORE_LOG} "
        "where task = ? and run_id = ? and scored_by = ?",
        [task, run_id, TRAINED_BY],
    )
    rows = rows.drop_duplicates("entity_id", keep="last")
    return pd.Series(
        rows["feature_hash"].astype(str).to_numpy(), index=rows["entity_id"].astype(str)
    )


def _unchanged(
    shared: pd.Series,
    mine: pd.DataFrame,
    theirs: pd.DataFrame,
    rows: pd.DataFrame,
    deployed_hashes: pd.Series,
    model: TrainedModel,
    problem: str,
) -> pd.Series:
    """The ids of `shared` that are still the rows the deployed run held out: the same label,
    and (`rows`: the relation's rows by id) the same values of the deployed model's features
    as when it was trained (another simulated world reuses the ids; a customer's features move
    with every order)."""
    if shared.empty:
        return shared
    keep = _actual(mine.loc[list(shared)], problem) == _actual(theirs.loc[list(shared)], problem)
    shared = shared[keep]
    if shared.empty or not len(deployed_hashes):
        return shared
    shared = shared[shared.isin(set(rows.index))]
    now = feature_hashes(rows.loc[list(shared)], model.features)
    return shared[now == shared.map(deployed_hashes).to_numpy()]


def gather_evidence(
    wh: Warehouse,
    task: str,
    problem: str,
    metric: str,
    challenger: dict[str, Any],
    challenger_eval: pd.DataFrame | None,
    deployed: dict[str, Any],
    frame: pd.DataFrame | None,
    id_column: str,
    seed: int = 0,
) -> Evidence:
    """The paired comparison of `challenger` (its run's ml.evaluation_predictions rows in
    `challenger_eval`) with the `deployed` model on the rows of the module doc; `frame`: the
    relation's rows (as the challenger read them), to score the newest with the deployed
    artifact and to check that the shared rows are unchanged."""
    mine = (
        _test_rows(challenger_eval, challenger["run_id"], challenger["model_name"])
        if challenger_eval is not None and not challenger_eval.empty
        else pd.DataFrame()
    )
    if mine.empty:
        return Evidence(
            None,
            note=f"the held-out predictions of run {challenger['run_id']} are no longer kept "
            "(only the latest run's and the deployed runs' are)",
        )
    old = pd.DataFrame()
    if wh.exists(EVALUATION_PREDICTIONS):
        old = wh.query(
            f"select * from {EVALUATION_PREDICTIONS} where task = ? and run_id = ? "
            "and model_name = ? and split = 'test'",
            [task, deployed["run_id"], deployed["model_name"]],
        )
    theirs = _test_rows(old, deployed["run_id"], deployed["model_name"]) if len(old) else old
    deployed_hashes = training_hashes(wh, task, deployed["run_id"])
    ids = mine.index.to_series()
    new = ids[~ids.isin(set(deployed_hashes.index))] if len(deployed_hashes) else ids.iloc[:0]
    shared = ids[ids.isin(set(theirs.index)) & ~ids.isin(set(new))] if len(theirs) else ids.iloc[:0]
    candidates = len(shared)
    if frame is None or id_column not in frame.columns:
        new, rows = new.iloc[:0], pd.DataFrame()
    else:
        rows = frame.set_index(frame[id_column].astype(str).to_numpy())
        rows = rows[~rows.index.duplicated(keep="last")]
        new = new[new.isin(set(rows.index))]
    model = (
        TrainedModel.of(load_bundle(deployed["path"], deployed["sha256"]))
        if len(new) or (candidates and len(rows))
        else None
    )
    if model is not None:
        shared = _unchanged(shared, mine, theirs, rows, deployed_hashes, model, problem)
    deployed_values = []
    if len(new):
        scored = model.predict(rows.loc[list(new)].reset_index(drop=True))
        deployed_values.append(_scored_values(scored, problem))
    if len(shared):
        deployed_values.append(_values(theirs.loc[list(shared)], problem))
    chosen = list(new) + list(shared)
    n = len(chosen)
    if n < MIN_ROWS:
        changed = (
            f"; {candidates - len(shared):,} rows both held out have changed since the deployed "
            "model was trained (new data under old ids: --promote force deploys anyway)"
            if candidates > len(shared)
            else ""
        )
        return Evidence(
            None, n, len(new),
            f"{n} labelled rows held out by both models (at least {MIN_ROWS} needed){changed}",
        )  # fmt: skip
    rows = mine.loc[chosen]
    y = _actual(rows, problem)
    if problem != "regression" and len(np.unique(y)) < 2:
        return Evidence(None, n, len(new), "the rows held out by both models hold one class")
    comparison = compare(
        problem, metric, y, _values(rows, problem), np.concatenate(deployed_values), seed=seed,
        labels=sorted(set(y)) if problem == "multiclass" else None,
    )  # fmt: skip
    return Evidence(comparison, n, len(new))


def quality_verdict(wh: Warehouse, relation: str) -> tuple[bool, str]:
    """(passed, why not) of the relation's latest quality-gate run."""
    try:
        require_passing_gate(wh, relation)
    except UserError as error:
        return False, str(error).split(":")[0]
    return True, ""


def fairness_verdict(
    wh: Warehouse, run_id: str, model_name: str, limits: FairnessLimits, rows: pd.DataFrame | None
) -> GateResult:
    """The fairness gate on the model's rows of ml.fairness_metrics (`rows`, or read)."""
    if not limits.attributes:
        return GateResult()
    if rows is None:
        rows = (
            wh.query(f"select * from {FAIRNESS_METRICS} where run_id = ?", [run_id])
            if wh.exists(FAIRNESS_METRICS)
            else pd.DataFrame()
        )
    if rows.empty:
        return GateResult(notes=[f"no fairness metrics of run {run_id}"])
    return check_fairness(rows, run_id, model_name, limits)


def decide(decision: Decision) -> Decision:
    """Fill in `promoted` and `reason` from the mode, the evidence and the gates."""
    d = decision
    gates = []
    if not d.evidence.significant:
        gates.append(
            "no significant gain" if d.evidence.comparison is not None else d.evidence.note
        )
    if not d.quality_passed:
        gates.append("the quality gate failed")
    if not d.fairness.passed:
        gates.append("the fairness gate failed")
    if d.mode == "first":
        d.promoted, d.reason = True, "the task's first run: its champion is deployed"
    elif d.mode == "never":
        d.promoted, d.reason = False, "--promote never: evidence recorded, nothing deployed"
    elif d.mode == "force":
        d.promoted, d.reason = True, "forced" + (f": {'; '.join(gates)}" if gates else "")
    else:
        d.promoted = not gates
        d.reason = (
            "significant gain; the quality and fairness gates passed" if d.promoted
            else "; ".join(gates)
        )  # fmt: skip
    return d


def judge(
    wh: Warehouse,
    task: str,
    spec: dict[str, str],
    challenger: dict[str, Any],
    challenger_eval: pd.DataFrame | None,
    frame: pd.DataFrame | None,
    fairness_rows: pd.DataFrame | None,
    options: PromotionOptions,
    mode: str,
) -> Decision:
    """The decision on `challenger` (run_id, model_name) of `task` against its deployed model:
    `spec` names the task's problem, metric, relation and id_column; `mode` is a MODES value or
    "manual" (ml.promote without --force), "first" when nothing is deployed yet."""
    deployed = deployed_row(wh, task)
    problem, metric = spec["problem"], spec["metric"]
    if deployed is None:
        mode, evidence = "first", Evidence(None, note="nothing deployed yet")
    else:
        try:
            evidence = gather_evidence(
                wh, task, problem, metric, challenger, challenger_eval, deployed, frame,
                spec["id_column"], options.seed,
            )  # fmt: skip
        except ArtifactIntegrityError as error:
            evidence = Evidence(None, note=f"the deployed model cannot be loaded: {error}")
    quality, note = quality_verdict(wh, spec["relation"])
    fairness = fairness_verdict(
        wh, challenger["run_id"], challenger["model_name"], options.limits(task), fairness_rows
    )
    return decide(
        Decision(task, challenger, deployed, mode, metric, evidence, quality, note, fairness)
    )
