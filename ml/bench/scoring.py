"""Step 5 of a size: batch scoring at the size's row count, each run in its own process.

`bench.scoring_input` holds as many rows as the size has orders (marts.loan_features repeated
with new loan ids). The loan_repayment champion and the xgboost candidate of the latest training
run score it through `ml.serving.batch.score_table` in a worker (`ml.bench.score_worker`), so
its peak memory is the scoring's own. Without a trained run (`--skip-train`) a stand-in xgboost
pipeline, fitted and saved here as a model bundle, serves as both.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ml.bench import score_worker
from ml.bench.process import run_worker, tail
from ml.core.tables import MODEL_RUNS
from ml.core.tasks import BUILTIN_TASKS
from ml.core.warehouse import open_warehouse
from ml.core.warehouse.base import BATCH_ROWS
from ml.serving.bundle import save_bundle
from ml.training.data import prepare_task
from ml.training.records import make_bundle
from ml.training.settings import SEARCH_SPACES
from ml.training.zoo import base_estimator, make_pipeline

SCORING_TASK = "loan_repayment"
SCORING_INPUT = "bench.scoring_input"
#: The table the scoring input repeats, and its key.
FEATURES, LOAN_ID = "marts.loan_features", "loan_id"
STAND_IN_RUN_ID = "bench-stand-in"


def repeated(base: pa.Table, rows: int, batch_rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
    """`base`'s rows copy after copy until there are `rows`, their loan ids replaced by 1..rows
    (BIGINT, in place), in tables of at most `batch_rows` rows."""
    index = base.schema.get_field_index(LOAN_ID)
    field = pa.field(LOAN_ID, pa.int64())
    done = 0
    while done < rows:
        copy = base.slice(0, min(base.num_rows, rows - done))
        for batch in copy.to_batches(max_chunksize=batch_rows):
            ids = pa.array(np.arange(done + 1, done + 1 + batch.num_rows, dtype=np.int64))
            yield pa.Table.from_batches([batch]).set_column(index, field, ids)
            done += batch.num_rows


def build_scoring_input(warehouse: Path | str, rows: int) -> dict[str, Any]:
    """`bench.scoring_input`: `rows` rows of marts.loan_features (in loan id order) repeated,
    loan ids 1..rows, streamed into the warehouse in batches (on either engine)."""
    t0 = time.perf_counter()
    with open_warehouse(warehouse) as wh:
        base = wh.read_arrow(FEATURES).sort_by(LOAN_ID)
        if not base.num_rows:
            raise RuntimeError(f"{FEATURES} is empty")
        schema = base.schema.set(
            base.schema.get_field_index(LOAN_ID), pa.field(LOAN_ID, pa.int64())
        )
        with wh.table_writer(SCORING_INPUT, schema) as writer:
            for table in repeated(base, rows):
                writer.append(table)
        count = wh.row_count(SCORING_INPUT)
    return {"rows": count, "base_rows": base.num_rows, "seconds": time.perf_counter() - t0}


def scoring_models(
    warehouse: Path | str, workdir: Path | str, seed: int
) -> dict[str, dict[str, Any]]:
    """The loan_repayment champion and xgboost candidate of the latest run, from ml.model_runs.

    Without a trained run (--skip-train), an xgboost pipeline is fitted here on
    marts.loan_features (the --fast grid's first configuration) and used for both.
    """
    with open_warehouse(warehouse, read_only=True) as wh:
        rows = []
        if wh.exists(MODEL_RUNS):
            rows = wh.query(
                f"""
                select model_name, run_id, artifact_path, artifact_sha256, is_champion
                from {MODEL_RUNS}
                where task = ? and run_id = (
                    select max(run_id) from {MODEL_RUNS} where task = ?
                )
                """,
                [SCORING_TASK, SCORING_TASK],
            ).itertuples(index=False)
        found = {
            name: {
                "model_name": name,
                "run_id": run_id,
                "path": path,
                "sha256": sha,
                "champion": bool(champion),
            }
            for name, run_id, path, sha, champion in rows
        }
    champion = next((m for m in found.values() if m["champion"]), None)
    if champion and "xgboost" in found:
        return {"champion": champion, "xgboost": found["xgboost"]}
    stand_in = fit_stand_in_model(warehouse, Path(workdir), seed)
    return {"champion": stand_in, "xgboost": stand_in}


def fit_stand_in_model(warehouse: Path | str, workdir: Path, seed: int) -> dict[str, Any]:
    """An untuned xgboost pipeline for loan_repayment, saved as a bundle as ml.train saves one."""
    with open_warehouse(warehouse, read_only=True) as wh:
        data = prepare_task(wh, BUILTIN_TASKS[SCORING_TASK])
    fast = SEARCH_SPACES["fast"]["xgboost"]
    pipeline = make_pipeline(data.features, base_estimator("xgboost", "binary", data.y, seed))
    pipeline.set_params(**{f"model__{k}": v[0] for k, v in fast.items()})
    X = data.X_all.iloc[data.labelled].reset_index(drop=True)
    pipeline.fit(X, data.y)
    bundle = make_bundle(data, STAND_IN_RUN_ID, "xgboost", pipeline, 0.5, seed)
    path, digest = save_bundle(bundle, workdir / "stand-in")
    return {
        "model_name": "xgboost",
        "run_id": STAND_IN_RUN_ID,
        "path": str(path),
        "sha256": digest,
        "champion": True,
        "stand_in": True,
    }


def run_scoring(
    warehouse: Path,
    model: dict[str, Any],
    target: str,
    env: dict[str, str],
    workdir: Path,
    *,
    fast: bool = True,
    batch_rows: int | None = None,
    profile: bool = False,
) -> dict[str, Any]:
    """Score bench.scoring_input into `target` in a worker process: its measurements (see
    `ml.bench.score_worker`), which path scored, and the process's wall and CPU seconds."""
    label = (
        target.replace(".", "_") + ("" if fast else "_generic") + ("_profile" if profile else "")
    )
    result_file = workdir / f"score-{label}.json"
    result_file.unlink(missing_ok=True)
    spec = {
        "warehouse": str(warehouse),
        "model": model,
        "source": SCORING_INPUT,
        "target": target,
        "fast": fast,
        "batch_rows": batch_rows,
        "profile": profile,
        "result": str(result_file),
    }
    proc = run_worker(score_worker.__name__, spec, f"score-{label}", workdir, env)
    if proc["returncode"] != 0 or not result_file.exists():
        raise RuntimeError(f"scoring {model['model_name']} failed:\n{tail(proc['log'])}")
    out = json.loads(result_file.read_text())
    out["process_s"] = proc["seconds"]
    out["process_cpu_s"] = proc["cpu_s"]
    return out
