"""Training on Spark: a task trains on a seeded sample of the feature mart read through the
interface, the registry records the rows available and used, the champion's xgboost refits on
every row with xgboost.spark and the champion scores every row on the executors;
`ml.predict --table --write-table` then scores the mart where it lies, with the same
predictions.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ml.core.tasks import BUILTIN_TASKS
from ml.core.warehouse import open_warehouse
from ml.estimators.preprocessing import plain_types, to_model_frame
from ml.predict import main as predict_main
from ml.serving.output import predict_values
from ml.training import evaluate, experiment
from ml.training.data import prepare_task, target_codes
from ml.training.distributed import labelled_rows, refit_xgboost
from ml.training.zoo import base_estimator, fit_params, make_pipeline
from tests.ml.training.test_row_cap import TASK, assert_capped_run, train_capped

pytestmark = [pytest.mark.spark, pytest.mark.slow]  # trains six candidates on a Spark session


def test_capped_training_and_scoring_on_spark(spark_features, tmp_path, monkeypatch, capsys):
    """The xgboost candidate alone (the rest is the same on every engine: test_row_cap.py),
    so that it is the champion refitted on Spark."""
    monkeypatch.setattr(experiment, "BASE_MODELS", ("xgboost",))
    monkeypatch.setattr(experiment, "ENSEMBLES", ())
    result, runs, predictions, rows = train_capped(
        monkeypatch, "spark", spark_features, tmp_path / "artifacts", 500
    )
    assert_capped_run(result, runs, predictions, rows, 500, candidates=1)
    champion = runs[runs["is_champion"]].iloc[0]
    with open_warehouse(spark_features, engine="spark", read_only=True) as wh:
        every_row = labelled_rows(wh, result.results[0].data)
    assert json.loads(champion["params"])["xgboost_fit_rows"] == every_row
    assert champion["fit_rows"] == every_row > 500
    assert result.results[0].importance["n_rows"].iloc[0] == 200  # explained (SHAP), a sample

    argv = ["--task", TASK, "--table", BUILTIN_TASKS[TASK].relation, "--write-table", "ml.scores"]
    assert predict_main(argv) == 0
    assert f"wrote ml.scores ({rows:,} rows)" in capsys.readouterr().out
    with open_warehouse(spark_features, engine="spark", read_only=True) as wh:
        scores = wh.read_frame("ml.scores", order_by="loan_id")
    trained = predictions.sort_values("loan_id").reset_index(drop=True)
    assert scores["loan_id"].tolist() == trained["loan_id"].tolist()
    assert scores["prediction"].tolist() == trained["prediction"].tolist()
    np.testing.assert_allclose(scores["probability"], trained["probability"], rtol=0, atol=1e-9)


def test_a_multiclass_xgboost_refits_on_every_row_on_the_executors(spark_features, built_warehouse):
    spec = BUILTIN_TASKS["customer_segment"]
    with open_warehouse(spark_features, engine="spark", read_only=True) as wh:
        data = prepare_task(wh, spec, max_rows=600, seed=1)
        full = plain_types(wh.read_frame(spec.relation))
        X = data.X_all.iloc[data.labelled].reset_index(drop=True)
        problem = data.spec.problem
        estimator = base_estimator("xgboost", problem, data.y, 0).set_params(n_estimators=25)
        pipeline = make_pipeline(data.features, estimator)
        pipeline.fit(X, data.y, **fit_params("xgboost", problem, data.y))
        refitted, rows = refit_xgboost(wh, data, pipeline, X, data.y)
    assert data.sampled and data.distributed
    y = target_codes(full[spec.target], problem, data.class_labels, data.target_mapping)
    labelled = ~np.isnan(y)
    assert rows == int(full[spec.target].notna().sum()) == int(labelled.sum()) > data.rows_used
    assert [name for name, _ in refitted.steps] == ["prep", "model"]
    model = refitted.named_steps["model"]
    assert type(model) is type(estimator) and model.get_booster().num_boosted_rounds() == 25
    X_full = to_model_frame(full, data.features).loc[labelled]
    values = predict_values(refitted, X_full, problem, data.classes)
    metric = evaluate.score(problem, y[labelled], values, data.classes)["roc_auc"]
    assert metric > 0.75  # it learnt: every row was in its training data
    with open_warehouse(built_warehouse, engine="duckdb", read_only=True) as duck:
        sampled_here = prepare_task(duck, spec, max_rows=600, seed=1)
        assert refit_xgboost(duck, sampled_here, pipeline, X, data.y) is None  # no workers
