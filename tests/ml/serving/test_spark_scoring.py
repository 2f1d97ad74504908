"""Scoring on Spark: the same bundle gives the same rows, columns, types and predictions on the
Spark executors (`mapInArrow`) as on DuckDB's streamed path; the shipped bytes are hash-checked
before they are unpickled; a refusal on an executor reaches the caller as one line.

One small model per problem type is fitted here on the tiny built warehouse and saved as a file,
so scoring ships the file's bytes with the registry-style sha256, as ml.predict does.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ml.core.errors import UserError
from ml.core.tasks import BUILTIN_TASKS
from ml.core.warehouse import open_warehouse
from ml.serving.batch import ScoringStats, score_table
from ml.serving.bundle import ArtifactIntegrityError, load_bundle, save_bundle
from ml.serving.model import TrainedModel
from ml.serving.output import predict_values
from ml.serving.prepare import NoRowsError
from ml.serving.shipping import ShippedModel, ship
from ml.training import ensemble
from ml.training.data import prepare_task
from ml.training.records import make_bundle
from ml.training.zoo import base_estimator, make_pipeline

pytestmark = [pytest.mark.spark, pytest.mark.slow]  # a Spark session; models fitted on dbt's marts

#: task -> the model scored: xgboost (binary), a stacking of linear and tree (multiclass), and
#: a linear model (regression).
MODELS = {
    "loan_repayment": "xgboost",
    "customer_segment": "stacking",
    "customer_satisfaction": "linear",
}


def _fit(data, name: str):
    X = data.X_all.iloc[data.labelled].reset_index(drop=True)
    problem = data.spec.problem

    def base(kind: str):
        estimator = base_estimator(kind, problem, data.y, 0)
        if kind == "xgboost":
            estimator.set_params(n_estimators=20, n_jobs=1)
        return make_pipeline(data.features, estimator).fit(X, data.y)

    if name != "stacking":
        return base(name)
    bases = {kind: base(kind) for kind in ("linear", "tree")}
    oof = [predict_values(m, X, problem, data.classes) for m in bases.values()]
    return ensemble.build_stacking(problem, bases, oof, X, data.y, 0)


@pytest.fixture(scope="module")
def models(built_warehouse: Path, tmp_path_factory) -> dict[str, TrainedModel]:
    """The models of MODELS, saved as files and loaded back hash-checked."""
    folder = tmp_path_factory.mktemp("spark-models")
    out = {}
    with open_warehouse(built_warehouse, engine="duckdb", read_only=True) as wh:
        prepared = {task: prepare_task(wh, BUILTIN_TASKS[task]) for task in MODELS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for task, name in MODELS.items():
            data = prepared[task]
            threshold = 0.3 if data.spec.problem == "binary" else None
            bundle = make_bundle(data, "run-spark", name, _fit(data, name), threshold, seed=0)
            path, digest = save_bundle(bundle, folder / task)
            out[task] = TrainedModel.of(load_bundle(path, digest))
    return out


def _scored_on_duckdb(built_warehouse: Path, tmp_path: Path, model, source: str, extra=None):
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(built_warehouse.read_bytes())
    with open_warehouse(copy, engine="duckdb") as wh:
        if extra is not None:
            wh.execute(extra)
        stats = ScoringStats()
        rows = score_table(wh, model, source, "ml.scored", stats=stats)
        return rows, wh.read_frame("ml.scored"), wh.sql_types("ml.scored"), stats


def _assert_same(spark: pd.DataFrame, duck: pd.DataFrame, id_column: str) -> None:
    assert list(spark.columns) == list(duck.columns)
    assert dict(spark.dtypes) == dict(duck.dtypes)
    spark = spark.sort_values(id_column).reset_index(drop=True)
    duck = duck.sort_values(id_column).reset_index(drop=True)
    assert len(spark) == len(duck)
    for column in duck.columns:
        a, b = spark[column], duck[column]
        if column == "scored_at":
            assert a.nunique() == 1
        elif pd.api.types.is_float_dtype(b.dtype):
            assert np.array_equal(a.isna(), b.isna()), column
            np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=0, atol=1e-9)
        else:
            assert a.tolist() == b.tolist(), column


SPARK_TYPES = {
    "VARCHAR": "STRING",
    "BIGINT": "BIGINT",
    "DOUBLE": "DOUBLE",
    "TIMESTAMP": "TIMESTAMP",
}


@pytest.mark.parametrize("task", list(MODELS))
def test_spark_scores_as_duckdb_does(models, built_warehouse, spark_features, tmp_path, task):
    model = models[task]
    relation = BUILTIN_TASKS[task].relation
    rows, duck, duck_types, duck_stats = _scored_on_duckdb(
        built_warehouse, tmp_path, model, relation
    )
    stats = ScoringStats()
    with open_warehouse(spark_features, engine="spark") as wh:
        assert score_table(wh, model, relation, f"ml.scored_{task}", stats=stats) == rows
        spark = wh.read_frame(f"ml.scored_{task}")
        spark_types = wh.sql_types(f"ml.scored_{task}")
    assert stats.path == "distributed" and duck_stats.path == "fast"
    assert spark_types == {c: SPARK_TYPES[t] for c, t in duck_types.items()}
    _assert_same(spark, duck, model.output.id_column)


def test_rows_without_ids_are_numbered_as_on_duckdb(
    models, built_warehouse, spark_features, tmp_path
):
    model = models["loan_repayment"]
    select = "select * exclude (loan_id) from marts.loan_features order by loan_id"
    _, duck, _, _ = _scored_on_duckdb(
        built_warehouse,
        tmp_path,
        model,
        "main.anonymous",
        f"create table main.anonymous as {select}",
    )
    with open_warehouse(built_warehouse, engine="duckdb", read_only=True) as src:
        anonymous = src.query_arrow(select)
    with open_warehouse(spark_features, engine="spark") as wh:
        wh.replace_table("main.anonymous", anonymous)
        score_table(wh, model, "main.anonymous", "ml.scored_anonymous")
        spark = wh.read_frame("ml.scored_anonymous")
    assert sorted(spark["loan_id"]) == list(range(1, len(anonymous) + 1))
    _assert_same(spark, duck, "loan_id")


def test_a_refusal_on_an_executor_is_one_line_and_keeps_the_old_table(models, spark_features):
    model = models["loan_repayment"]
    with open_warehouse(spark_features, engine="spark") as wh:
        loans = wh.read_arrow("marts.loan_features")
        column = loans.schema.get_field_index("credit_score")
        texty = loans.set_column(column, "credit_score", pa.array(["abc"] * loans.num_rows))
        wh.replace_table("main.texty", texty)
        wh.replace_table("ml.scored_texty", pd.DataFrame({"loan_id": [42], "note": ["old"]}))
        with pytest.raises(UserError, match="credit_score") as refused:
            score_table(wh, model, "main.texty", "ml.scored_texty")
        assert "\n" not in str(refused.value) and "Traceback" not in str(refused.value)
        assert wh.read_frame("ml.scored_texty")["note"].tolist() == ["old"]
        wh.replace_table("main.nothing", loans.slice(0, 0))
        with pytest.raises(NoRowsError, match="no rows to score"):
            score_table(wh, model, "main.nothing", "ml.scored_texty")
        assert wh.read_frame("ml.scored_texty")["note"].tolist() == ["old"]
        assert score_table(wh, model, "main.nothing", "ml.scored_texty", allow_empty=True) == 0
        empty = wh.read_frame("ml.scored_texty")
    assert empty.empty and list(empty.columns) == list(model.output.columns)


def test_shipped_bytes_are_checked_before_unpickling(models) -> None:
    shipped = ship(models["loan_repayment"])
    assert shipped.sha256 == models["loan_repayment"].artifact_sha256
    tampered = ShippedModel(shipped.content[:-1] + b"x", shipped.sha256, shipped.name)
    with pytest.raises(ArtifactIntegrityError, match="does not match"):
        tampered.load()
    assert shipped.load().model_name == "xgboost"
