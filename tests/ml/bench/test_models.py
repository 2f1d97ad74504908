"""`ml.bench.models`: the split, the target's resolution, the metrics, the baselines' threshold
(chosen on the training rows' out-of-fold probabilities only) and the report (fast; the whole
command: tests/scripts/test_benchmark_models.py)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from ml.bench.models import (
    Split,
    headline_metrics,
    project_metrics,
    read_table,
    resolve_target,
    split_rows,
    summarise,
    table_name,
    write_split,
)
from ml.bench.models_baselines import (
    BASELINES,
    feature_frame,
    fit_baseline,
    make_baseline,
    oof_threshold,
    out_of_fold_proba,
)
from ml.bench.models_project import check_train_args, parse_train_args, project_commands
from ml.bench.models_report import check_output, markdown, write_output
from ml.core.errors import UserError
from ml.training.evaluate import choose_threshold


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """One thread per model: tiny fits on a busy machine are slowest when threads wait on each
    other (OpenMP in HistGradientBoosting and xgboost)."""
    monkeypatch.setenv("ML_THREADS", "1")
    with threadpool_limits(limits=1):
        yield


def _frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    city = rng.choice(["north", "south", "east"], size=n)
    logit = 2.0 * x1 - 1.0 * x2 + np.where(city == "north", 1.0, 0.0) - 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "city": city})
    frame.loc[::17, "x2"] = np.nan
    frame.loc[::23, "city"] = None
    return frame, y


# -- split -------------------------------------------------------------------------------------


def test_split_is_stratified_seeded_disjoint_and_leaves_out_unlabelled_rows() -> None:
    target = pd.Series(["a"] * 80 + ["b"] * 20 + [None] * 5, name="t")
    split = split_rows(target, classes=True, test_size=0.2, seed=0)
    assert split.stratified and split.unlabelled == 5
    assert len(split.train) == 80 and len(split.test) == 20
    assert not set(split.train) & set(split.test)
    assert set(split.train) | set(split.test) == set(range(100))  # no unlabelled row
    assert (target.iloc[split.test] == "b").sum() == 4  # the class shares are kept
    again = split_rows(target, classes=True, test_size=0.2, seed=0)
    assert np.array_equal(split.test, again.test)
    other = split_rows(target, classes=True, test_size=0.2, seed=1)
    assert not np.array_equal(split.test, other.test)


def test_split_refuses_a_class_of_one_row_and_a_bad_share() -> None:
    with pytest.raises(UserError, match="class 'c'"):
        split_rows(pd.Series(["a"] * 10 + ["b"] * 10 + ["c"], name="t"), classes=True)
    with pytest.raises(UserError, match="between 0 and 1"):
        split_rows(pd.Series(range(10), name="t"), classes=False, test_size=1.5)


def test_a_regression_split_is_not_stratified() -> None:
    split = split_rows(pd.Series(np.arange(50.0), name="t"), classes=False, seed=3)
    assert not split.stratified and len(split.test) == 10


# -- the target, by the project's rule ------------------------------------------------------


def test_two_text_labels_make_the_rarer_one_positive_as_the_project_does() -> None:
    train = pd.Series(["<=50K"] * 30 + [">50K"] * 10, name="class")
    test = pd.Series(["<=50K", ">50K", ">50K"], name="class")
    target = resolve_target(train, test)
    assert target.problem == "binary" and target.positive == ">50K"
    assert target.y_train.sum() == 10
    assert target.y_test.tolist() == [0, 1, 1]


def test_yes_no_labels_map_yes_to_one_whatever_is_rarer() -> None:
    target = resolve_target(pd.Series(["Y"] * 30 + ["N"] * 10), pd.Series(["N", "Y"]))
    assert target.positive == "Y" and target.y_test.tolist() == [0, 1]


def test_multiclass_codes_follow_sorted_labels_and_regression_keeps_values() -> None:
    target = resolve_target(pd.Series(["b", "a", "c", "a"] * 5), pd.Series(["c", "a"]))
    assert target.problem == "multiclass" and target.class_labels == ["a", "b", "c"]
    assert target.y_test.tolist() == [2, 0]
    values = resolve_target(pd.Series(np.linspace(0, 1, 40)), pd.Series([0.5, 2.0]))
    assert values.problem == "regression" and values.y_test.tolist() == [0.5, 2.0]


def test_a_test_label_unknown_to_the_training_rows_is_refused() -> None:
    with pytest.raises(UserError, match="not among"):
        resolve_target(pd.Series(["a", "b", "c"] * 5), pd.Series(["d"]))


# -- metrics --------------------------------------------------------------------------------


def test_headline_metrics_of_each_problem_type() -> None:
    y = np.array([0, 0, 1, 1])
    binary = headline_metrics("binary", y, np.array([0.1, 0.6, 0.4, 0.9]), np.array([0, 1, 0, 1]))
    assert binary == {"roc_auc": 0.75, "f1": 0.5}
    multi = headline_metrics("multiclass", np.array([0, 1, 2, 2]), predicted=np.array([0, 1, 2, 1]))
    assert multi["accuracy"] == 0.75 and multi["f1_macro"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    reg = headline_metrics("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert reg["rmse"] == pytest.approx(np.sqrt(1 / 3)) and reg["r2"] == pytest.approx(0.5)


def test_summary_names_the_best_peer_and_the_gap_in_each_direction() -> None:
    rows = [
        {"model": "p", "role": "project", "status": "ok", "metrics": {"r2": 0.8, "rmse": 1.0}},
        {"model": "a", "role": "baseline", "status": "ok", "metrics": {"r2": 0.9, "rmse": 1.5}},
        {"model": "b", "role": "baseline", "status": "ok", "metrics": {"r2": 0.7, "rmse": 1.2}},
        {"model": "c", "role": "baseline", "status": "failed", "metrics": {}},
    ]
    summary = summarise(rows, "regression")
    assert summary["r2"]["best_peer"] == "a" and summary["r2"]["gap"] == pytest.approx(-0.1)
    assert not summary["r2"]["ahead"]
    assert summary["rmse"]["best_peer"] == "b" and summary["rmse"]["gap"] == pytest.approx(-0.2)
    assert summary["rmse"]["ahead"]  # lower is better


def test_project_metrics_read_the_positive_probability_and_the_projects_own_prediction() -> None:
    target = resolve_target(pd.Series(["n"] * 20 + ["p"] * 10), pd.Series(["n", "p", "p", "n"]))
    scored = pd.DataFrame(
        {
            "row_number": [1, 2, 3, 4],
            "prediction": ["0", "1", "0", "1"],  # at the project's threshold 0.3
            "probability": [0.1, 0.8, 0.25, 0.35],
            "threshold": [0.3] * 4,
            "model_name": ["xgboost"] * 4,
        }
    )
    metrics, threshold = project_metrics(scored, target)
    assert threshold == 0.3
    assert metrics["roc_auc"] == 0.75  # from `probability`, the positive class's
    assert metrics["f1"] == 0.5  # from `prediction`, not re-thresholded here
    with pytest.raises(UserError, match="rows"):
        project_metrics(scored.iloc[:3], target)


def test_project_metrics_of_a_multiclass_task_compare_labels() -> None:
    target = resolve_target(pd.Series(["x", "y", "z"] * 10), pd.Series(["x", "z", "y"]))
    scored = pd.DataFrame({"prediction": ["x", "z", "z"], "probability": [0.5, 0.6, 0.7]})
    metrics, _ = project_metrics(scored, target)
    assert metrics["accuracy"] == pytest.approx(2 / 3)


# -- the baselines: the threshold never sees a test row ------------------------------------


def test_the_threshold_is_chosen_on_out_of_fold_probabilities_of_the_training_rows() -> None:
    frame, y = _frame()
    train, test = np.arange(240), np.arange(240, 300)
    X_train, X_test = feature_frame(frame, train, test, exclude=set())
    fit = fit_baseline("logistic", "binary", X_train, y[train], X_test, seed=0)
    model = make_baseline("logistic", "binary", X_train, seed=0)
    oof = out_of_fold_proba(model, X_train, y[train], seed=0)
    assert fit.threshold == oof_threshold(y[train], oof) == choose_threshold(y[train], oof)
    # other test rows (here: noise) change the predictions, never the threshold
    noise = X_test.sample(frac=1.0, random_state=1).reset_index(drop=True)
    noise["x1"] = np.random.default_rng(2).normal(size=len(noise)) * 10
    again = fit_baseline("logistic", "binary", X_train, y[train], noise, seed=0)
    assert again.threshold == fit.threshold
    assert not np.allclose(again.values, fit.values)
    # and no test label can be handed in
    assert not any(
        "test" in p and p.startswith("y") for p in inspect.signature(fit_baseline).parameters
    )


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_learns_a_learnable_target(name: str) -> None:
    frame, y = _frame(400)
    train, test = np.arange(320), np.arange(320, 400)
    X_train, X_test = feature_frame(frame, train, test, exclude=set())
    fit = fit_baseline(name, "binary", X_train, y[train], X_test, seed=0)
    assert fit.values.shape == (80,) and 0 < fit.threshold < 1
    assert roc_auc_score(y[test], fit.values) > 0.7


def test_baselines_of_multiclass_and_regression_tasks() -> None:
    frame, y = _frame(200)
    train, test = np.arange(160), np.arange(160, 200)
    X_train, X_test = feature_frame(frame, train, test, exclude=set())
    classes = (frame["x1"].to_numpy() > 0).astype(int) + (frame["x2"].fillna(0).to_numpy() > 0)
    fit = fit_baseline("xgboost", "multiclass", X_train, classes[train], X_test, seed=0)
    assert fit.values.shape == (40, 3) and fit.threshold is None
    values = 3 * frame["x1"].to_numpy()
    fit = fit_baseline("logistic", "regression", X_train, values[train], X_test, seed=0)
    assert fit.label == "linear regression (ridge)"
    assert headline_metrics("regression", values[test], fit.values)["r2"] > 0.9


def test_feature_frame_leaves_out_target_id_and_empty_columns_and_types_the_rest() -> None:
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "t": [0, 1, 0, 1],
            "flag": [True, False, True, None],
            "when": pd.to_datetime(["1970-01-02", "1970-01-03", None, "1970-01-01"]),
            "empty": [None, None, None, 1.0],
            "text": pd.Series(["x", None, "y", "x"], dtype="str"),
        }
    )
    X_train, X_test = feature_frame(frame, np.array([0, 1, 2]), np.array([3]), {"id", "t"})
    assert list(X_train.columns) == ["flag", "when", "text"]
    assert X_train["when"].tolist()[:2] == [1.0, 2.0]
    assert X_train["text"].dtype == object and pd.isna(X_train["text"].iloc[1])
    assert X_test["when"].tolist() == [0.0]


# -- files, names, options, the report -------------------------------------------------------


def test_the_split_files_read_back_as_the_original_types(tmp_path: Path) -> None:
    csv = tmp_path / "data.csv"
    csv.write_text("code,n,label\n0001,1.5,a\n0002,?,b\n0003,NA,a\n0004,2,b\n", encoding="utf-8")
    table, frame = read_table(csv)
    split = Split(train=np.array([0, 1, 3]), test=np.array([2]), stratified=False)
    train_csv, test_csv = write_split(table, split, "label", tmp_path / "split")
    train_table, _ = read_table(train_csv)
    assert train_table.column("code").to_pylist() == ["0001", "0002", "0004"]  # still text
    assert train_table.column("n").to_pylist() == ["1.5", "?", "2"]  # `?` is text, as loaded
    test_table, _ = read_table(test_csv)
    assert test_table.column_names == ["code", "n"]  # no target


def test_table_name_is_a_plain_identifier_and_avoids_the_simulators_tables() -> None:
    assert table_name(Path("/x/Loan Prediction-train.csv")) == "raw.loan_prediction_train"
    assert table_name(Path("2024.csv")) == "raw.data_2024"
    assert table_name(Path("loans.csv")) == "raw.my_loans"


def test_train_args_may_not_repeat_what_the_benchmark_sets() -> None:
    assert parse_train_args("--fast --max-rows 1000") == ("--fast", "--max-rows", "1000")
    with pytest.raises(UserError, match="--target"):
        check_train_args(["--fast", "--target=y"])
    with pytest.raises(UserError, match="--train-args"):
        parse_train_args('--fast "unclosed')
    commands = project_commands(
        Path("tr.csv"), Path("te.csv"), "raw.d", "y", "id", "auto", ("--fast",), Path("s.csv")
    )
    assert commands["train"] == [
        "ml.train",
        "--table",
        "raw.d",
        "--target",
        "y",
        "--id",
        "id",
        "--fast",
    ]
    assert commands["predict"][:3] == ["ml.predict", "--task", "d"]


def _result() -> dict:
    rows = [
        {
            "model": "project (ml.train defaults)",
            "role": "project",
            "status": "ok",
            "champion": "xgboost",
            "load_s": 1.0,
            "train_s": 10.0,
            "predict_s": 2.0,
            "threshold": 0.3,
            "metrics": {"roc_auc": 0.9, "f1": 0.7},
        },
        {
            "model": "logistic regression",
            "role": "baseline",
            "status": "ok",
            "train_s": 0.5,
            "predict_s": 0.01,
            "threshold": 0.4,
            "metrics": {"roc_auc": 0.88, "f1": 0.72},
        },
    ]
    return {
        "dataset": "d",
        "command": "python -m scripts.benchmark_models d.csv --target y",
        "target": "y",
        "id_column": None,
        "problem": "binary",
        "positive_class": "yes",
        "metrics": ["roc_auc", "f1"],
        "seed": 0,
        "test_size": 0.2,
        "stratified": True,
        "rows": {"train": 80, "test": 20, "unlabelled_left_out": 0},
        "train_args": [],
        "threshold_folds": 5,
        "models": rows,
        "summary": summarise(rows, "binary"),
        "machine": {"cores": 2, "load_average": [1.0, 1.0, 1.0]},
        "load_average_end": [1.0, 1.0, 1.0],
        "versions": {"scikit-learn": "1"},
    }


def test_markdown_shows_every_model_the_best_peer_and_the_gap(tmp_path: Path) -> None:
    text = markdown(_result())
    assert (
        "| project (ml.train defaults), champion xgboost | 0.9000 | 0.7000 | 0.300 | 11.0 | 2.0 |"
        in text
    )
    assert "| best peer | 0.8800 (logistic regression) | 0.7200 (logistic regression) |" in text
    assert "+0.0200 (ahead)" in text and "-0.0200 (behind)" in text
    out = check_output(tmp_path / "r.json")
    write_output(_result(), out)
    assert json.loads(out.read_text())["summary"]["f1"]["best_peer"] == "logistic regression"
    with pytest.raises(UserError, match=".md or .json"):
        check_output(tmp_path / "r.txt")
    with pytest.raises(UserError, match="does not exist"):
        check_output(tmp_path / "missing" / "r.md")
