"""Incremental scoring (`python -m ml.score`): score, with a task's deployed model, only the rows
that have no score from it or whose feature values changed since they were scored.

Each row's feature values are hashed (`ml.serving.hashing`, over the model's input columns) and
compared with the hash of the deployed model's latest `ml.score_log` row of it (the log also
holds challengers' scores, which do not count). A row is scored when it is new (no log row),
changed (another hash), or only ever scored by other models ("model"); `every` rescores all
("all"); "missing" is a row whose log is current but which has no row in the
predictions table (someone replaced it). The rows go through the bundle's contract and batch scoring exactly as
`ml.predict` does. Then ONE transaction replaces `ml.<task>_predictions` (the unchanged rows as
they were, the scored rows, and no row whose entity left the relation) and appends the scored
rows to `ml.score_log` and `ml.<task>_prediction_archive`: a failure or a kill leaves them as
they were.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.core.errors import UserError
from ml.core.tables import SCORE_LOG, prediction_archive_relation, predictions_relation
from ml.core.warehouse import Warehouse, open_warehouse
from ml.serving.archive import archive_rows, updated_archive
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


def _latest_scores(wh: Warehouse, task: str, model: TrainedModel) -> pd.DataFrame:
    """entity_id, feature_hash, run_id, model_name of each entity's latest log row by `model`
    (the deployed one; the log also holds the scores of challengers that ml.train logged),
    with `run_id` null for an entity only other models scored."""
    if not wh.exists(SCORE_LOG):
        return pd.DataFrame(columns=["entity_id", "feature_hash", "run_id", "model_name"])
    return wh.query(
        f"""
        select entity_id, feature_hash, run_id, model_name
        from (
            select
                entity_id,
                case when mine then feature_hash end as feature_hash,
                case when mine then run_id end as run_id,
                case when mine then model_name end as model_name,
                row_number() over (
                    partition by entity_id order by mine desc, scored_at desc
                ) as recency
            from (
                select *, (run_id = ? and model_name = ?) as mine
                from {SCORE_LOG}
                where task = ?
            ) as logged
        ) as ranked
        where recency = 1
        """,
        [model.run_id, model.model_name, task],
    )


def _reasons(
    ids: pd.Series, hashes: np.ndarray, latest: pd.DataFrame, predicted: set
) -> np.ndarray:
    """Why each row must be scored ("" when it need not be)."""
    known = latest.set_index(latest["entity_id"].astype(str))
    key = ids.astype(str)
    old_hash = key.map(known["feature_hash"]).to_numpy(dtype=object)
    reason = np.full(len(ids), "", dtype=object)
    logged = key.isin(set(known.index)).to_numpy()
    reason[~logged] = "new"
    other_model = logged & pd.isna(key.map(known["run_id"])).to_numpy()
    reason[other_model] = "model"
    mine = logged & ~other_model
    changed = mine & (old_hash != hashes)
    reason[changed] = "changed"
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
        latest = _latest_scores(wh, task, model)
        old = wh.read_frame(target) if wh.exists(target) else pd.DataFrame()
    result = ScoringResult(task, relation, model.run_id, model.model_name, len(frame))
    hashes = feature_hashes(frame, model.features)
    ids = frame[id_column]
    predicted = set(old[id_column].astype(str)) if not old.empty else set()
    if every:
        reason = np.full(len(frame), "all", dtype=object)
    else:
        reason = _reasons(ids, hashes, latest, predicted)
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
    archive = archive_rows(scored, hashes[chosen])
    with open_warehouse() as wh:
        wh.replace_tables(
            {
                target: table,
                SCORE_LOG: wh.appended(SCORE_LOG, log),
                prediction_archive_relation(task): updated_archive(wh, task, archive, id_column),
            }
        )
    result.seconds = time.perf_counter() - started
    return result
