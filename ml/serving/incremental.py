"""Incremental scoring (`python -m ml.score`): score, with a task's deployed model, only the rows
that have no score from it or whose feature values changed since they were scored.

Each row's feature values are hashed (`ml.serving.hashing`, over the model's input columns) and
compared with the hash of its latest row in `ml.score_log`. A row is scored when it is new (no
log row), changed (another hash), or last scored by another model (a new deployment); `every`
rescores all ("all"); "missing" is a row whose log is current but which has no row in the
predictions table (someone replaced it). The rows go through the bundle's contract and batch scoring exactly as
`ml.predict` does. Then ONE transaction replaces `ml.<task>_predictions` (the unchanged rows as
they were, the scored rows, and no row whose entity left the relation) and appends the scored
rows to `ml.score_log`: a failure or a kill leaves both as they were.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.core.errors import UserError
from ml.core.tables import SCORE_LOG, predictions_relation
from ml.core.warehouse import Warehouse, open_warehouse
from ml.serving.hashing import feature_hashes
from ml.serving.model import TrainedModel, load_model
from ml.serving.output import now
from ml.serving.score_log import log_rows

#: ml.score_log's `scored_by` of the rows ml.score scored.
SCORED_BY = "ml.score"
#: Why a row is scored (the counts ml.score prints), in the order they are decided.
REASONS = ("new", "changed", "model", "missing", "all")


@dataclass
class ScoringResult:
    """What one incremental scoring of a task did."""

    task: str
    relation: str
    run_id: str
    model_name: str
    rows: int  # rows of the relation
    scored: dict[str, int] = field(default_factory=dict)  # reason -> rows
    removed: int = 0  # predictions dropped: their entity is no longer in the relation
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def scored_rows(self) -> int:
        """Rows scored, whatever the reason."""
        return sum(self.scored.values())


def _latest_scores(wh: Warehouse, task: str) -> pd.DataFrame:
    """entity_id, feature_hash, run_id, model_name of each entity's latest log row."""
    if not wh.exists(SCORE_LOG):
        return pd.DataFrame(columns=["entity_id", "feature_hash", "run_id", "model_name"])
    return wh.query(
        f"""
        select entity_id, feature_hash, run_id, model_name
        from (
            select
                *,
                row_number() over (
                    partition by entity_id order by scored_at desc, run_id desc
                ) as recency
            from {SCORE_LOG}
            where task = ?
        ) as ranked
        where recency = 1
        """,
        [task],
    )


def _reasons(
    ids: pd.Series, hashes: np.ndarray, latest: pd.DataFrame, predicted: set, model: TrainedModel
) -> np.ndarray:
    """Why each row must be scored ("" when it need not be)."""
    known = latest.set_index(latest["entity_id"].astype(str))
    key = ids.astype(str)
    old_hash = key.map(known["feature_hash"]).to_numpy(dtype=object)
    old_model = (key.map(known["run_id"]) + "/" + key.map(known["model_name"])).to_numpy(
        dtype=object
    )
    reason = np.full(len(ids), "", dtype=object)
    missing_log = pd.isna(old_hash)
    reason[missing_log] = "new"
    changed = ~missing_log & (old_hash != hashes)
    reason[changed] = "changed"
    other_model = ~missing_log & ~changed & (old_model != f"{model.run_id}/{model.model_name}")
    reason[other_model] = "model"
    unpredicted = (reason == "") & ~key.isin(predicted).to_numpy()
    reason[unpredicted] = "missing"
    return reason


def score_incremental(task: str, every: bool = False) -> ScoringResult:
    """Score `task`'s new and changed rows (every row when `every`) with its deployed model and
    write them (see the module doc)."""
    started = time.perf_counter()
    target = predictions_relation(task)
    with open_warehouse(read_only=True) as wh:
        model = load_model(task, wh)
        relation = model.info.get("relation")
        if not relation or not wh.exists(relation):
            raise UserError(f"{task}: the relation its model was trained on ({relation}) is gone")
        id_column = model.output.id_column
        columns = wh.describe(relation).names
        if id_column not in columns:
            raise UserError(f"{task}: {relation} has no id column {id_column!r} to score by")
        frame = wh.read_frame(relation, order_by=id_column)
        latest = _latest_scores(wh, task)
        old = wh.read_frame(target) if wh.exists(target) else pd.DataFrame()
    result = ScoringResult(task, relation, model.run_id, model.model_name, len(frame))
    hashes = feature_hashes(frame, model.features)
    ids = frame[id_column]
    predicted = set(old[id_column].astype(str)) if not old.empty else set()
    if every:
        reason = np.full(len(frame), "all", dtype=object)
    else:
        reason = _reasons(ids, hashes, latest, predicted, model)
    chosen = reason != ""
    result.scored = {r: int((reason == r).sum()) for r in REASONS if (reason == r).any()}
    kept = pd.DataFrame()
    if not old.empty:
        alive = old[id_column].astype(str).isin(set(ids.astype(str)))
        result.removed = int((~alive).sum())
        rescored = set(ids[chosen].astype(str))
        kept = old[alive & ~old[id_column].astype(str).isin(rescored)]
    rows = frame.loc[chosen]
    if rows.empty and result.removed == 0:
        result.seconds = time.perf_counter() - started
        return result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scored = model.predict(rows) if not rows.empty else model.predict(frame.head(0))
    result.notes = scored.attrs.get("notes", [])
    scored.attrs = {}
    batches = rows["batch_id"].reset_index(drop=True) if "batch_id" in rows.columns else None
    log = log_rows(
        task, scored, id_column, hashes[chosen], batches, model.output.problem, SCORED_BY, now()
    )
    table = pd.concat([kept, scored], ignore_index=True, sort=False) if not kept.empty else scored
    table = table.sort_values(id_column, kind="stable", ignore_index=True)
    with open_warehouse() as wh:
        wh.replace_tables({target: table, SCORE_LOG: wh.appended(SCORE_LOG, log)})
    result.seconds = time.perf_counter() - started
    return result
