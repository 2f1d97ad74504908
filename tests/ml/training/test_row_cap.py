"""The training row cap (`ml.train --max-rows`): beyond it a seeded sample of the relation is
trained on, the same rows for the same seed on every run, in id order; `ml.model_runs` records
the rows available and used (an older registry without those columns keeps working); the
champion still scores every row of the relation into `ml.<task>_predictions`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.core.tables import MODEL_RUNS, predictions_relation
from ml.core.tasks import BASE_MODELS, BUILTIN_TASKS, ENSEMBLES, TaskSpec
from ml.core.warehouse import open_warehouse
from ml.training import settings
from ml.training.data import prepare_task
from ml.training.experiment import TrainOptions
from ml.training.run import run_training

TASK = "loan_repayment"


def _table(tmp_path: Path, rows: int = 1_000) -> Path:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "loan_id": rng.permutation(np.arange(1, rows + 1)),
            "x": rng.normal(size=rows),
            "y": rng.integers(0, 2, rows),
        }
    )
    path = tmp_path / "w.duckdb"
    with open_warehouse(path) as wh:
        wh.replace_table("marts.t", frame)
    return path


def test_a_relation_beyond_the_cap_is_sampled_with_the_seed(tmp_path) -> None:
    spec = TaskSpec("t", "marts.t", "y", "binary", id_column="loan_id")
    with open_warehouse(_table(tmp_path), read_only=True) as wh:
        whole = prepare_task(wh, spec)
        capped = prepare_task(wh, spec, max_rows=1_000)
        a, b = (prepare_task(wh, spec, max_rows=300, seed=7) for _ in range(2))
        other = prepare_task(wh, spec, max_rows=300, seed=8)
    assert (whole.rows_available, whole.rows_used, whole.sampled) == (1_000, 1_000, False)
    assert not capped.sampled and capped.fingerprint == whole.fingerprint
    assert (a.rows_available, a.rows_used, a.sampled) == (1_000, 300, True)
    assert a.ids.is_monotonic_increasing and a.ids.is_unique
    assert a.ids.tolist() == b.ids.tolist() and a.fingerprint == b.fingerprint
    assert a.ids.tolist() != other.ids.tolist()
    assert set(a.ids) < set(whole.ids)
    expected = whole.frame.set_index("loan_id").loc[a.ids, "x"].to_numpy()
    np.testing.assert_array_equal(a.frame["x"].to_numpy(), expected)


def tiny_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `--fast` search spaces made smaller still: these tests check what is written."""
    monkeypatch.setitem(settings.KERAS_TRIALS, "fast", 1)
    monkeypatch.setitem(settings.KERAS_FIT, "fast", {"epochs": 2, "patience": 1, "batch_size": 256})
    monkeypatch.setitem(settings.CV_FOLDS, "fast", 2)
    fast = {**settings.SEARCH_SPACES["fast"]}
    fast["xgboost"] = {**fast["xgboost"], "n_estimators": [20], "max_depth": [3]}
    fast["tree"] = {**fast["tree"], "max_depth": [4]}
    monkeypatch.setitem(settings.SEARCH_SPACES, "fast", fast)


def train_capped(monkeypatch, engine: str, path: Path, artifacts: Path, max_rows: int):
    """Train TASK on `path` with the row cap; return (model_runs, predictions, rows)."""
    tiny_training(monkeypatch)
    monkeypatch.setenv("WAREHOUSE_ENGINE", engine)
    monkeypatch.setenv("WAREHOUSE_PATH", str(path))
    monkeypatch.setenv("ARTIFACTS_PATH", str(artifacts))
    options = TrainOptions(fast=True, skip_gate=True, explain_rows=200, max_rows=max_rows)
    result = run_training([BUILTIN_TASKS[TASK]], options)
    with open_warehouse(path, engine=engine, read_only=True) as wh:
        runs = wh.read_frame(MODEL_RUNS)
        predictions = wh.read_frame(predictions_relation(TASK))
        rows = wh.row_count(BUILTIN_TASKS[TASK].relation)
    return result, runs, predictions, rows


N_CANDIDATES = len(BASE_MODELS) + len(ENSEMBLES)


def assert_capped_run(
    result, runs, predictions, rows: int, max_rows: int, candidates: int = N_CANDIDATES
) -> None:
    """What a capped run writes: both counts per candidate, every row scored by the champion."""
    new = runs[runs["run_id"] == result.run_id]
    assert len(new) == candidates and new["is_champion"].sum() == 1
    assert new["rows_available"].tolist() == [rows] * candidates
    assert new["rows_used"].tolist() == [max_rows] * candidates
    n = result.results[0].split_sizes
    assert n["train"] + n["val"] + n["test"] <= max_rows < rows
    assert new["oracle_roc_auc"].notna().all()  # the oracle, on the sample's test rows
    champion = new.loc[new["is_champion"], "model_name"].iloc[0]
    assert len(predictions) == rows and predictions["loan_id"].is_unique
    assert set(predictions["run_id"]) == {result.run_id}
    assert set(predictions["model_name"]) == {champion}
    assert predictions["probability"].between(0, 1).all()


@pytest.mark.slow  # trains the six candidates (tiny search spaces)
def test_capped_training_on_duckdb_with_an_older_registry(
    built_warehouse, tmp_path, monkeypatch
) -> None:
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    with open_warehouse(path) as wh:  # a registry from before the row cap
        wh.replace_table(MODEL_RUNS, pd.DataFrame({"run_id": ["old"], "task": ["old_task"]}))
    result, runs, predictions, rows = train_capped(
        monkeypatch, "duckdb", path, tmp_path / "artifacts", 500
    )
    assert_capped_run(result, runs, predictions, rows, 500)
    old = runs[runs["run_id"] == "old"]
    assert old["rows_available"].isna().all() and old["rows_used"].isna().all()
