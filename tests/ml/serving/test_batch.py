"""`ml.serving.batch.score_table`: batch scoring equals `TrainedModel.predict` row for row, at any batch
size, on the fast and the generic path; a failure or a kill half-way leaves the old table.

The models are fitted here, small, on the tiny built warehouse's feature tables: the base
pipelines ml.train makes (linear, tree, xgboost, Keras) and the voting / stacking ensembles over
them, for the three problem types.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.pipeline import Pipeline

from ml.core.errors import RelationNotFoundError, UserError
from ml.core.tasks import BUILTIN_TASKS
from ml.core.warehouse import open_warehouse
from ml.serving import batch, fastpath, matrices, trees
from ml.serving.batch import ScoringStats, score_table
from ml.serving.model import TrainedModel
from ml.serving.output import predict_values
from ml.serving.prepare import MissingColumnError, NoRowsError
from ml.training import ensemble
from ml.training.data import prepare_task
from ml.training.records import make_bundle
from ml.training.zoo import base_estimator, make_pipeline

pytestmark = pytest.mark.slow  # fits a dozen models on the dbt-built tiny warehouse

ROOT = Path(__file__).resolve().parents[3]
SMALL = {"xgboost": {"n_estimators": 20, "n_jobs": 1}, "keras": {"epochs": 2, "units": 8}}
CONSTANT = ["threshold", "run_id", "model_name"]


def _fit_bases(data, names: list[str], seed: int = 0) -> dict:
    X = data.X_all.iloc[data.labelled].reset_index(drop=True)
    fitted = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            estimator = base_estimator(name, data.spec.problem, data.y, seed)
            estimator.set_params(**SMALL.get(name, {}))
            fitted[name] = make_pipeline(data.features, estimator).fit(X, data.y)
    return fitted


def _ensembles(data, bases: dict, seed: int = 0) -> dict:
    X = data.X_all.iloc[data.labelled].reset_index(drop=True)
    problem = data.spec.problem
    oof = [predict_values(m, X, problem, data.classes) for m in bases.values()]
    return {
        "voting": ensemble.build_voting(problem, bases, X, data.y),
        "stacking": ensemble.build_stacking(problem, bases, oof, X, data.y, seed),
    }


def _trained(data, pipeline, name: str) -> TrainedModel:
    threshold = 0.3 if data.spec.problem == "binary" else None
    return TrainedModel.of(make_bundle(data, "run-test", name, pipeline, threshold, seed=0))


def _relation(model: TrainedModel) -> str:
    return model.info["relation"]


@pytest.fixture(scope="module")
def models(built_warehouse: Path) -> dict[str, TrainedModel]:
    """Base pipelines and ensembles of the three built-in tasks, fitted small."""
    with open_warehouse(built_warehouse, read_only=True) as wh:
        data = {name: prepare_task(wh, spec) for name, spec in BUILTIN_TASKS.items()}
    out: dict[str, TrainedModel] = {}
    loans = data["loan_repayment"]
    bases = _fit_bases(loans, ["linear", "tree", "xgboost", "keras"])
    out["loan_xgboost"] = _trained(loans, bases["xgboost"], "xgboost")
    out["loan_keras"] = _trained(loans, bases["keras"], "keras")
    for name, model in _ensembles(loans, bases).items():
        out[f"loan_{name}"] = _trained(loans, model, name)
    satisfaction = data["customer_satisfaction"]
    bases = _fit_bases(satisfaction, ["linear", "tree", "xgboost"])
    out["satisfaction_linear"] = _trained(satisfaction, bases["linear"], "linear")
    out["satisfaction_stacking"] = _trained(
        satisfaction, _ensembles(satisfaction, bases)["stacking"], "stacking"
    )
    segment = data["customer_segment"]
    bases = _fit_bases(segment, ["linear", "tree", "xgboost"])
    for name, model in _ensembles(segment, bases).items():
        out[f"segment_{name}"] = _trained(segment, model, name)
    return out


def _reference(wh, model: TrainedModel, relation: str) -> pd.DataFrame:
    """What ml.predict --table returns for the whole relation."""
    return model.predict(wh.read_frame(relation))


def _has_keras(model: TrainedModel) -> bool:
    return "Keras" in repr(model.pipeline)


def _assert_same_rows(
    got: pd.DataFrame,
    expected: pd.DataFrame,
    id_column: str,
    exact: bool = True,
    *,
    same_batches: bool = False,
) -> None:
    """Row for row equal (scored_at aside), in id order.

    Class predictions exactly; probabilities and regression values to the last bits (rtol 1e-12), or
    (`exact=False`, for models with a Keras member) to 1e-6. Matrix products round a row's last
    bit differently depending on the rows batched with it (OpenBLAS picks its kernel by the
    matrix shape: seen as a 1-ulp difference in a multinomial logistic regression's
    probabilities; TensorFlow's float32 products by about 1e-7), on either path, so scoring in
    batches and scoring the whole table in one call may differ there. `same_batches`: both were
    scored in the same batches, so every value must be bit for bit equal.
    """
    assert list(got.columns) == list(expected.columns)
    got = got.sort_values(id_column, kind="stable").reset_index(drop=True)
    expected = expected.sort_values(id_column, kind="stable").reset_index(drop=True)
    assert len(got) == len(expected)
    for col in expected.columns:
        if col == "scored_at":
            assert got[col].nunique() == 1
            continue
        a, b = got[col].to_numpy(), expected[col].to_numpy()
        if col in CONSTANT or col == "prediction" and a.dtype == object:
            assert [None if pd.isna(x) else x for x in a] == [
                None if pd.isna(x) else x for x in b
            ], col
        elif same_batches or col == "prediction" and not pd.api.types.is_float_dtype(a.dtype):
            np.testing.assert_array_equal(a.astype(float), b.astype(float), err_msg=f"column {col}")
        elif exact:
            np.testing.assert_allclose(
                a.astype(float), b.astype(float), rtol=1e-12, atol=1e-15, err_msg=f"column {col}"
            )
        else:
            np.testing.assert_allclose(
                a.astype(float), b.astype(float), rtol=1e-6, atol=1e-7, err_msg=f"column {col}"
            )


@pytest.mark.parametrize(
    "name",
    [
        "loan_xgboost",
        "loan_keras",
        "loan_voting",
        "loan_stacking",
        "satisfaction_linear",
        "satisfaction_stacking",
        "segment_voting",
        "segment_stacking",
    ],
)
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "generic"])
def test_batches_equal_predict_row_for_row(models, built_copy, name, fast) -> None:
    model = models[name]
    relation = _relation(model)
    stats = ScoringStats()
    with open_warehouse(built_copy) as wh:
        rows = score_table(wh, model, relation, "ml.scored", batch_rows=256, fast=fast, stats=stats)
        expected = _reference(wh, model, relation)
        got = wh.read_frame("ml.scored")
    assert rows == len(expected) == len(got) and stats.batches > 1
    assert stats.fast is fast, stats.fallback_reason
    _assert_same_rows(got, expected, model.output.id_column, exact=not _has_keras(model))


def test_ensemble_members_share_one_preprocessing(models, built_copy) -> None:
    model = models["loan_stacking"]
    stats = ScoringStats()
    with open_warehouse(built_copy) as wh:
        score_table(wh, model, "marts.loan_features", "ml.scored", 500, stats=stats)
        schema = wh.describe("marts.loan_features")
    assert set(stats.estimator_s) == {"linear", "tree", "xgboost", "keras"}
    assert len(fastpath.BatchScorer(model, schema).preps) == 1


def test_odd_values_score_like_predict(models, built_copy) -> None:
    """Unseen, missing and enum-typed categories; missing, infinite and huge numbers: the fast
    path equals the generic path exactly (same batches), and both equal predict."""
    with open_warehouse(built_copy) as wh:
        wh.execute("create type grade_t as enum ('A', 'B', 'C', 'D', 'E', 'F', 'G')")
        wh.execute(
            """
            create table main.odd as
            select * replace (
                case when loan_id % 7 = 0 then 'never_seen'
                     when loan_id % 11 = 0 then null else purpose end as purpose,
                cast(grade as grade_t) as grade,
                case when loan_id % 5 = 0 then 'infinity'::double
                     when loan_id % 13 = 0 then 1e16
                     when loan_id % 3 = 0 then -1e15
                     when loan_id % 17 = 0 then null else annual_income end as annual_income,
                case when loan_id % 4 = 0 then null else credit_score end as credit_score
            )
            from marts.loan_features
            """
        )
        for name in ("loan_xgboost", "loan_stacking", "loan_keras"):
            model = models[name]
            scored = {}
            for fast in (True, False):
                stats = ScoringStats()
                score_table(wh, model, "main.odd", "ml.scored", 300, fast=fast, stats=stats)
                assert stats.fast is fast, stats.fallback_reason
                scored[fast] = wh.read_frame("ml.scored")
            _assert_same_rows(scored[True], scored[False], "loan_id", same_batches=True)
            expected = _reference(wh, model, "main.odd")
            _assert_same_rows(scored[True], expected, "loan_id", exact=not _has_keras(model))


@pytest.mark.parametrize("batch_rows", [1, 5, 37, 1000])
def test_batch_boundaries(models, built_copy, batch_rows) -> None:
    model = models["loan_voting"]
    sizes = []
    with open_warehouse(built_copy) as wh:
        wh.execute("create table main.few as select * from marts.loan_features limit 37")
        rows = score_table(wh, model, "main.few", "ml.scored", batch_rows, progress=sizes.append)
        got = wh.read_frame("ml.scored")
        expected = _reference(wh, model, "main.few")
    assert rows == 37 and sizes[-1] == 37
    steps = np.diff([0, *sizes])
    assert steps.max() <= batch_rows and len(sizes) >= int(np.ceil(37 / batch_rows))
    _assert_same_rows(got, expected, "loan_id", exact=False)


def test_rows_without_ids_are_numbered_across_batches(models, built_copy) -> None:
    model = models["loan_xgboost"]
    with open_warehouse(built_copy) as wh:
        wh.execute(
            "create table main.anonymous as "
            "select * exclude (loan_id) from marts.loan_features order by loan_id limit 50"
        )
        score_table(wh, model, "main.anonymous", "ml.scored", 8)
        got = wh.read_frame("ml.scored")
        expected = _reference(wh, model, "main.anonymous")
    assert sorted(got["loan_id"]) == list(range(1, 51))
    _assert_same_rows(got, expected, "loan_id")


def _old_table(wh) -> pd.DataFrame:
    wh.replace_table("ml.scored", pd.DataFrame({"loan_id": [42], "note": ["old"]}))
    return wh.read_frame("ml.scored")


def _temporary_tables(wh) -> list[str]:
    return [r.name for r in wh.relations() if r.name.startswith("__tmp_")]


def test_empty_source_is_refused_or_written_empty(models, built_copy) -> None:
    model = models["loan_xgboost"]
    with open_warehouse(built_copy) as wh:
        old = _old_table(wh)
        wh.execute("create table main.nothing as select * from marts.loan_features where false")
        with pytest.raises(NoRowsError, match="no rows to score"):
            score_table(wh, model, "main.nothing", "ml.scored")
        pd.testing.assert_frame_equal(wh.read_frame("ml.scored"), old)
        assert score_table(wh, model, "main.nothing", "ml.scored", allow_empty=True) == 0
        empty = wh.read_frame("ml.scored")
        few = _reference(wh, model, "marts.loan_features")
        assert _temporary_tables(wh) == []
    assert empty.empty and list(empty.columns) == list(few.columns)


class _Boom(Exception):
    pass


@pytest.mark.parametrize("background", [True, False])
def test_a_failure_half_way_keeps_the_old_table(models, built_copy, background) -> None:
    model = models["loan_stacking"]

    def fail_on_second_batch(rows: int) -> None:
        if rows > 100:
            raise _Boom("stop")

    with open_warehouse(built_copy) as wh:
        old = _old_table(wh)
        with pytest.raises(_Boom):
            score_table(
                wh,
                model,
                "marts.loan_features",
                "ml.scored",
                100,
                progress=fail_on_second_batch,
                background=background,
            )
        pd.testing.assert_frame_equal(wh.read_frame("ml.scored"), old)
        assert _temporary_tables(wh) == []
        # the connection is usable afterwards: the transaction was rolled back
        assert score_table(wh, model, "marts.loan_features", "ml.scored") > 100


def test_an_insert_error_in_the_writer_thread_surfaces(models, built_copy, monkeypatch) -> None:
    model = models["loan_xgboost"]
    original = batch.output_batch
    calls = []

    def bad_second_batch(*args, **kwargs):
        table = original(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:  # text where the table has BIGINT: the insert fails
            table = table.set_column(1, "prediction", pa.array(["x"] * table.num_rows))
        return table

    monkeypatch.setattr(batch, "output_batch", bad_second_batch)
    with open_warehouse(built_copy) as wh:
        old = _old_table(wh)
        with pytest.raises(Exception, match="(?i)conver|cast"):
            score_table(wh, model, "marts.loan_features", "ml.scored", 100)
        pd.testing.assert_frame_equal(wh.read_frame("ml.scored"), old)
        assert _temporary_tables(wh) == []


def test_an_error_in_the_reader_thread_surfaces(models, built_copy, monkeypatch) -> None:
    model = models["loan_stacking"]
    original = fastpath.BatchScorer.prepare
    calls = []

    def fail_on_third_batch(self, batch, slot=0):
        calls.append(1)
        if len(calls) == 4:  # the check of the first batch prepares once more
            raise _Boom("bad batch")
        return original(self, batch, slot)

    monkeypatch.setattr(fastpath.BatchScorer, "prepare", fail_on_third_batch)
    with open_warehouse(built_copy) as wh:
        old = _old_table(wh)
        with pytest.raises(_Boom):
            score_table(wh, model, "marts.loan_features", "ml.scored", 100)
        pd.testing.assert_frame_equal(wh.read_frame("ml.scored"), old)
        assert _temporary_tables(wh) == []


def test_a_kill_half_way_keeps_the_old_table(models, built_copy, tmp_path) -> None:
    model = models["loan_xgboost"]
    model_file = tmp_path / "model.joblib"
    joblib.dump(model, model_file)
    with open_warehouse(built_copy) as wh:
        old = _old_table(wh)
    script = textwrap.dedent(
        f"""
        import os, signal, joblib
        from ml.core.warehouse import open_warehouse
        from ml.serving.batch import score_table

        model = joblib.load({str(model_file)!r})

        def die(rows):
            if rows > 200:
                os.kill(os.getpid(), signal.SIGKILL)

        with open_warehouse({str(built_copy)!r}) as wh:
            score_table(wh, model, "marts.loan_features", "ml.scored", 100, progress=die)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=600
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    with open_warehouse(built_copy, read_only=True) as wh:
        pd.testing.assert_frame_equal(wh.read_frame("ml.scored"), old)
        assert _temporary_tables(wh) == []


def test_a_model_the_fast_path_does_not_know_falls_back(models, built_copy) -> None:
    model = models["loan_xgboost"]
    inner = Pipeline([("inner", model.pipeline)])  # a pipeline of a pipeline
    wrapped = TrainedModel(**{**vars(model), "pipeline": inner})
    stats = ScoringStats()
    with open_warehouse(built_copy) as wh:
        score_table(wh, wrapped, "marts.loan_features", "ml.scored", 300, stats=stats)
        expected = _reference(wh, wrapped, "marts.loan_features")
        got = wh.read_frame("ml.scored")
    assert not stats.fast and "pipeline" in stats.fallback_reason
    _assert_same_rows(got, expected, "loan_id")


def test_the_first_batch_check_catches_a_wrong_fast_path(models, built_copy, monkeypatch) -> None:
    model = models["loan_voting"]
    original = matrices.NumericBlock.fill

    def off_by_a_little(self, rows, numeric):
        original(self, rows, numeric)
        rows[0] += 1e-9

    monkeypatch.setattr(matrices.NumericBlock, "fill", off_by_a_little)
    stats = ScoringStats()
    with open_warehouse(built_copy) as wh:
        score_table(wh, model, "marts.loan_features", "ml.scored", 300, stats=stats)
        expected = _reference(wh, model, "marts.loan_features")
        got = wh.read_frame("ml.scored")
    assert not stats.fast and "differs" in stats.fallback_reason
    _assert_same_rows(got, expected, "loan_id", exact=False)


def test_duckdb_memory_limit_is_restored(models, built_copy) -> None:
    def limit(wh) -> str:
        return wh.query("select current_setting('memory_limit') as m")["m"].iloc[0]

    with open_warehouse(built_copy) as wh:
        before = limit(wh)
        score_table(wh, models["loan_xgboost"], "marts.loan_features", "ml.scored")
        assert limit(wh) == before
        with pytest.raises(UserError, match="memory limit"):
            score_table(
                wh, models["loan_xgboost"], "marts.loan_features", "ml.scored", memory_limit="1'"
            )
        assert limit(wh) == before


def test_bad_requests_are_refused(models, built_copy) -> None:
    model = models["loan_xgboost"]
    with open_warehouse(built_copy) as wh:
        with pytest.raises(RelationNotFoundError):
            score_table(wh, model, "marts.no_such_table", "ml.scored")
        wh.execute("create table main.partial as select loan_id, grade from marts.loan_features")
        with pytest.raises(MissingColumnError, match="missing column"):
            score_table(wh, model, "main.partial", "ml.scored")
        with pytest.raises(UserError, match="into itself"):
            score_table(wh, model, "marts.loan_features", "MARTS.loan_features")
        with pytest.raises(UserError, match="batch_rows"):
            score_table(wh, model, "marts.loan_features", "ml.scored", 0)


def test_xgboost_members_are_evaluated_by_compiled_trees(models, built_copy) -> None:
    """Binary and regression xgboost members run on ml.serving.trees; a multiclass one stays
    xgboost's."""
    assert trees.kernel_ready(wait=None), trees.kernel_error()
    reports = {}
    with open_warehouse(built_copy) as wh:
        for name in ("loan_xgboost", "satisfaction_stacking", "segment_voting"):
            model = models[name]
            stats = ScoringStats()
            score_table(wh, model, _relation(model), "ml.scored", 400, stats=stats)
            assert stats.fast, stats.fallback_reason
            reports[name] = stats.compiled_trees
    assert reports["loan_xgboost"] == {"xgboost": "compiled"}
    assert reports["satisfaction_stacking"]["xgboost"] == "compiled"
    assert "multi:softprob" in reports["segment_voting"]["xgboost"]


def test_compiled_trees_that_differ_from_xgboost_are_dropped(models, built_copy, monkeypatch):
    assert trees.kernel_ready(wait=None), trees.kernel_error()
    original = trees.CompiledTrees.predict_proba

    def off_by_a_little(self, X):
        return np.nextafter(original(self, X), np.float32(2))

    monkeypatch.setattr(trees.CompiledTrees, "predict_proba", off_by_a_little)
    model = models["loan_xgboost"]
    stats = ScoringStats()
    with open_warehouse(built_copy) as wh:
        score_table(wh, model, "marts.loan_features", "ml.scored", 300, stats=stats)
        expected = _reference(wh, model, "marts.loan_features")
        got = wh.read_frame("ml.scored")
    assert stats.fast and "differ" in stats.compiled_trees["xgboost"]
    _assert_same_rows(got, expected, "loan_id")


@pytest.mark.parametrize("error", [None, ImportError("no numba")], ids=["loading", "failed"])
def test_xgboost_predicts_while_the_kernel_is_not_loaded(models, built_copy, monkeypatch, error):
    monkeypatch.setattr(trees, "kernel_ready", lambda wait=0.0: False)
    monkeypatch.setattr(trees, "kernel_error", lambda: error)
    model = models["loan_xgboost"]
    stats = ScoringStats()
    with open_warehouse(built_copy) as wh:
        score_table(wh, model, "marts.loan_features", "ml.scored", 300, stats=stats)
        expected = _reference(wh, model, "marts.loan_features")
        got = wh.read_frame("ml.scored")
    assert stats.fast
    reason = stats.compiled_trees["xgboost"]
    assert ("not used" in reason) if error is None else ("no numba" in reason)
    _assert_same_rows(got, expected, "loan_id")
