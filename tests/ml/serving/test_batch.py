"""`ml.scoring.score_table`: batch scoring equals `TrainedModel.predict` row for row, at any batch
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
import pytest

from ml import config, ensemble, scoring
from ml.errors import RelationNotFoundError, UserError
from ml.experiment import predict_values, prepare_task
from ml.models import base_estimator, make_pipeline
from ml.predict import MissingColumnError, NoRowsError, TrainedModel
from ml.scoring import ScoringStats, score_table
from ml.warehouse import read_relation, session

ROOT = Path(__file__).resolve().parents[2]
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
    features = data.features
    metadata = {  # what ml.experiment.metadata_for writes and ml.predict reads
        "task": data.spec.name,
        "problem": data.spec.problem,
        "relation": data.spec.relation,
        "id_column": data.id_column,
        "features": features.columns,
        "numeric_features": list(features.numeric),
        "categorical_features": list(features.categorical),
        "dtypes": {c: str(data.frame[c].dtype) for c in features.columns},
        "categories": {
            c: sorted(map(str, data.frame[c].dropna().unique()))[:200] for c in features.categorical
        },
        "classes": data.classes,
        "class_labels": data.class_labels,
        "threshold": 0.3 if data.spec.problem == "binary" else None,
    }
    return TrainedModel(data.spec.name, "run-test", name, pipeline, metadata)


@pytest.fixture(scope="module")
def models(built_warehouse: Path) -> dict[str, TrainedModel]:
    """Base pipelines and ensembles of the three built-in tasks, fitted small."""
    with session(built_warehouse, read_only=True) as con:
        data = {name: prepare_task(con, spec) for name, spec in config.BUILTIN_TASKS.items()}
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


def _reference(con, model: TrainedModel, relation: str) -> pd.DataFrame:
    """What ml.predict --table returns for the whole relation."""
    return model.predict(read_relation(con, relation))


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
    relation = model.metadata["relation"]
    stats = ScoringStats()
    with session(built_copy) as con:
        rows = score_table(
            con, model, relation, "ml.scored", batch_rows=256, fast=fast, stats=stats
        )
        expected = _reference(con, model, relation)
        got = read_relation(con, "ml.scored")
    assert rows == len(expected) == len(got) and stats.batches > 1
    assert stats.fast is fast, stats.fallback_reason
    _assert_same_rows(got, expected, model.metadata["id_column"], exact=not _has_keras(model))


def test_ensemble_members_share_one_preprocessing(models, built_copy) -> None:
    model = models["loan_stacking"]
    stats = ScoringStats()
    with session(built_copy) as con:
        score_table(con, model, "marts.loan_features", "ml.scored", 500, stats=stats)
        schema = con.sql("select * from marts.loan_features limit 0").to_arrow_table().schema
    assert set(stats.estimator_s) == {"linear", "tree", "xgboost", "keras"}
    assert len(scoring.BatchScorer(model, schema).preps) == 1


def test_odd_values_score_like_predict(models, built_copy) -> None:
    """Unseen, missing and enum-typed categories; missing, infinite and huge numbers: the fast
    path equals the generic path exactly (same batches), and both equal predict."""
    with session(built_copy) as con:
        con.execute("create type grade_t as enum ('A', 'B', 'C', 'D', 'E', 'F', 'G')")
        con.execute(
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
                score_table(con, model, "main.odd", "ml.scored", 300, fast=fast, stats=stats)
                assert stats.fast is fast, stats.fallback_reason
                scored[fast] = read_relation(con, "ml.scored")
            _assert_same_rows(scored[True], scored[False], "loan_id", same_batches=True)
            expected = _reference(con, model, "main.odd")
            _assert_same_rows(scored[True], expected, "loan_id", exact=not _has_keras(model))


@pytest.mark.parametrize("batch_rows", [1, 5, 37, 1000])
def test_batch_boundaries(models, built_copy, batch_rows) -> None:
    model = models["loan_voting"]
    sizes = []
    with session(built_copy) as con:
        con.execute("create table main.few as select * from marts.loan_features limit 37")
        rows = score_table(con, model, "main.few", "ml.scored", batch_rows, progress=sizes.append)
        got = read_relation(con, "ml.scored")
        expected = _reference(con, model, "main.few")
    assert rows == 37 and sizes[-1] == 37
    steps = np.diff([0, *sizes])
    assert steps.max() <= batch_rows and len(sizes) >= int(np.ceil(37 / batch_rows))
    _assert_same_rows(got, expected, "loan_id", exact=False)


def test_rows_without_ids_are_numbered_across_batches(models, built_copy) -> None:
    model = models["loan_xgboost"]
    with session(built_copy) as con:
        con.execute(
            "create table main.anonymous as "
            "select * exclude (loan_id) from marts.loan_features order by loan_id limit 50"
        )
        score_table(con, model, "main.anonymous", "ml.scored", 8)
        got = read_relation(con, "ml.scored")
        expected = _reference(con, model, "main.anonymous")
    assert sorted(got["loan_id"]) == list(range(1, 51))
    _assert_same_rows(got, expected, "loan_id")


def _old_table(con) -> pd.DataFrame:
    con.execute("create or replace table ml.scored as select 42 as loan_id, 'old' as note")
    return read_relation(con, "ml.scored")


def _temporary_tables(con) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_name like '__tmp_%'"
        ).fetchall()
    ]


def test_empty_source_is_refused_or_written_empty(models, built_copy) -> None:
    model = models["loan_xgboost"]
    with session(built_copy) as con:
        con.execute("create schema if not exists ml")
        old = _old_table(con)
        con.execute("create table main.nothing as select * from marts.loan_features where false")
        with pytest.raises(NoRowsError, match="no rows to score"):
            score_table(con, model, "main.nothing", "ml.scored")
        pd.testing.assert_frame_equal(read_relation(con, "ml.scored"), old)
        assert score_table(con, model, "main.nothing", "ml.scored", allow_empty=True) == 0
        empty = read_relation(con, "ml.scored")
        few = _reference(con, model, "marts.loan_features")
        assert _temporary_tables(con) == []
    assert empty.empty and list(empty.columns) == list(few.columns)


class _Boom(Exception):
    pass


@pytest.mark.parametrize("background", [True, False])
def test_a_failure_half_way_keeps_the_old_table(models, built_copy, background) -> None:
    model = models["loan_stacking"]

    def fail_on_second_batch(rows: int) -> None:
        if rows > 100:
            raise _Boom("stop")

    with session(built_copy) as con:
        con.execute("create schema if not exists ml")
        old = _old_table(con)
        with pytest.raises(_Boom):
            score_table(
                con,
                model,
                "marts.loan_features",
                "ml.scored",
                100,
                progress=fail_on_second_batch,
                background=background,
            )
        pd.testing.assert_frame_equal(read_relation(con, "ml.scored"), old)
        assert _temporary_tables(con) == []
        # the connection is usable afterwards: the transaction was rolled back
        assert score_table(con, model, "marts.loan_features", "ml.scored") > 100


def test_an_insert_error_in_the_writer_thread_surfaces(models, built_copy, monkeypatch) -> None:
    model = models["loan_xgboost"]
    original = scoring.output_batch
    calls = []

    def bad_second_batch(*args, **kwargs):
        table = original(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:  # text where the table has BIGINT: the insert fails
            table = table.set_column(1, "prediction", scoring.pa.array(["x"] * table.num_rows))
        return table

    monkeypatch.setattr(scoring, "output_batch", bad_second_batch)
    with session(built_copy) as con:
        con.execute("create schema if not exists ml")
        old = _old_table(con)
        with pytest.raises(Exception, match="(?i)conver|cast"):
            score_table(con, model, "marts.loan_features", "ml.scored", 100)
        pd.testing.assert_frame_equal(read_relation(con, "ml.scored"), old)
        assert _temporary_tables(con) == []


def test_an_error_in_the_reader_thread_surfaces(models, built_copy, monkeypatch) -> None:
    model = models["loan_stacking"]
    original = scoring.BatchScorer.prepare
    calls = []

    def fail_on_third_batch(self, batch, slot=0):
        calls.append(1)
        if len(calls) == 4:  # the check of the first batch prepares once more
            raise _Boom("bad batch")
        return original(self, batch, slot)

    monkeypatch.setattr(scoring.BatchScorer, "prepare", fail_on_third_batch)
    with session(built_copy) as con:
        con.execute("create schema if not exists ml")
        old = _old_table(con)
        with pytest.raises(_Boom):
            score_table(con, model, "marts.loan_features", "ml.scored", 100)
        pd.testing.assert_frame_equal(read_relation(con, "ml.scored"), old)
        assert _temporary_tables(con) == []


def test_a_kill_half_way_keeps_the_old_table(models, built_copy, tmp_path) -> None:
    model = models["loan_xgboost"]
    model_file = tmp_path / "model.joblib"
    joblib.dump(model, model_file)
    with session(built_copy) as con:
        con.execute("create schema if not exists ml")
        old = _old_table(con)
    script = textwrap.dedent(
        f"""
        import os, signal, joblib
        from ml.scoring import score_table
        from ml.warehouse import session

        model = joblib.load({str(model_file)!r})

        def die(rows):
            if rows > 200:
                os.kill(os.getpid(), signal.SIGKILL)

        with session({str(built_copy)!r}) as con:
            score_table(con, model, "marts.loan_features", "ml.scored", 100, progress=die)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=600
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    with session(built_copy, read_only=True) as con:
        pd.testing.assert_frame_equal(read_relation(con, "ml.scored"), old)
        assert _temporary_tables(con) == []


def test_a_model_the_fast_path_does_not_know_falls_back(models, built_copy) -> None:
    model = models["loan_xgboost"]
    from sklearn.pipeline import Pipeline

    wrapped = TrainedModel(
        model.task,
        model.run_id,
        "wrapped",
        Pipeline([("inner", model.pipeline)]),  # a pipeline of a pipeline
        model.metadata,
    )
    stats = ScoringStats()
    with session(built_copy) as con:
        score_table(con, wrapped, "marts.loan_features", "ml.scored", 300, stats=stats)
        expected = _reference(con, wrapped, "marts.loan_features")
        got = read_relation(con, "ml.scored")
    assert not stats.fast and "pipeline" in stats.fallback_reason
    _assert_same_rows(got, expected, "loan_id")


def test_the_first_batch_check_catches_a_wrong_fast_path(models, built_copy, monkeypatch) -> None:
    model = models["loan_voting"]
    original = scoring._NumericBlock.fill

    def off_by_a_little(self, rows, numeric):
        original(self, rows, numeric)
        rows[0] += 1e-9

    monkeypatch.setattr(scoring._NumericBlock, "fill", off_by_a_little)
    stats = ScoringStats()
    with session(built_copy) as con:
        score_table(con, model, "marts.loan_features", "ml.scored", 300, stats=stats)
        expected = _reference(con, model, "marts.loan_features")
        got = read_relation(con, "ml.scored")
    assert not stats.fast and "differs" in stats.fallback_reason
    _assert_same_rows(got, expected, "loan_id", exact=False)


def test_duckdb_memory_limit_is_restored(models, built_copy) -> None:
    def limit(con) -> str:
        return con.execute("select current_setting('memory_limit')").fetchall()[0][0]

    with session(built_copy) as con:
        before = limit(con)
        score_table(con, models["loan_xgboost"], "marts.loan_features", "ml.scored")
        assert limit(con) == before
        with pytest.raises(UserError, match="memory limit"):
            score_table(
                con, models["loan_xgboost"], "marts.loan_features", "ml.scored", memory_limit="1'"
            )
        assert limit(con) == before


def test_bad_requests_are_refused(models, built_copy) -> None:
    model = models["loan_xgboost"]
    with session(built_copy) as con:
        with pytest.raises(RelationNotFoundError):
            score_table(con, model, "marts.no_such_table", "ml.scored")
        con.execute("create table main.partial as select loan_id, grade from marts.loan_features")
        with pytest.raises(MissingColumnError, match="missing column"):
            score_table(con, model, "main.partial", "ml.scored")
        with pytest.raises(UserError, match="into itself"):
            score_table(con, model, "marts.loan_features", "MARTS.loan_features")
        with pytest.raises(UserError, match="batch_rows"):
            score_table(con, model, "marts.loan_features", "ml.scored", 0)


def test_xgboost_members_are_evaluated_by_compiled_trees(models, built_copy) -> None:
    """Binary and regression xgboost members run on ml.trees; a multiclass one stays xgboost's."""
    from ml import trees

    assert trees.kernel_ready(wait=None), trees.kernel_error()
    reports = {}
    with session(built_copy) as con:
        for name in ("loan_xgboost", "satisfaction_stacking", "segment_voting"):
            model = models[name]
            stats = ScoringStats()
            score_table(con, model, model.metadata["relation"], "ml.scored", 400, stats=stats)
            assert stats.fast, stats.fallback_reason
            reports[name] = stats.compiled_trees
    assert reports["loan_xgboost"] == {"xgboost": "compiled"}
    assert reports["satisfaction_stacking"]["xgboost"] == "compiled"
    assert "multi:softprob" in reports["segment_voting"]["xgboost"]


def test_compiled_trees_that_differ_from_xgboost_are_dropped(models, built_copy, monkeypatch):
    from ml import trees
    from ml.trees import CompiledTrees

    assert trees.kernel_ready(wait=None), trees.kernel_error()
    original = CompiledTrees.predict_proba

    def off_by_a_little(self, X):
        return np.nextafter(original(self, X), np.float32(2))

    monkeypatch.setattr(CompiledTrees, "predict_proba", off_by_a_little)
    model = models["loan_xgboost"]
    stats = ScoringStats()
    with session(built_copy) as con:
        score_table(con, model, "marts.loan_features", "ml.scored", 300, stats=stats)
        expected = _reference(con, model, "marts.loan_features")
        got = read_relation(con, "ml.scored")
    assert stats.fast and "differ" in stats.compiled_trees["xgboost"]
    _assert_same_rows(got, expected, "loan_id")


@pytest.mark.parametrize("error", [None, ImportError("no numba")], ids=["loading", "failed"])
def test_xgboost_predicts_while_the_kernel_is_not_loaded(models, built_copy, monkeypatch, error):
    from ml import trees

    monkeypatch.setattr(trees, "kernel_ready", lambda wait=0.0: False)
    monkeypatch.setattr(trees, "kernel_error", lambda: error)
    model = models["loan_xgboost"]
    stats = ScoringStats()
    with session(built_copy) as con:
        score_table(con, model, "marts.loan_features", "ml.scored", 300, stats=stats)
        expected = _reference(con, model, "marts.loan_features")
        got = read_relation(con, "ml.scored")
    assert stats.fast
    reason = stats.compiled_trees["xgboost"]
    assert ("not used" in reason) if error is None else ("no numba" in reason)
    _assert_same_rows(got, expected, "loan_id")
