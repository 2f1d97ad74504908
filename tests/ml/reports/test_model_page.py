"""The model pages: one static page per trained task, drawn from the tables ml.train writes
(titled plots, robust to old runs), and their helpers."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.core.errors import UserError
from ml.core.tables import EVALUATION_PREDICTIONS, MODEL_RUNS, SHAP_SAMPLE
from ml.core.warehouse import open_warehouse
from ml.fairness.gate import default_limits
from ml.reports import model_page
from ml.reports.evaluation_plots import binned_mean, expected_calibration_error
from ml.reports.fairness_plots import gap_table
from ml.reports.model_data import (
    ModelData,
    ShapSample,
    collect_model_data,
    evaluation_class_labels,
    latest_runs,
)
from ml.reports.page import Table
from ml.reports.reading import open_read_only
from ml.reports.shap_plots import DEPENDENCE_FEATURES, feature_colour_values, swarm_offsets
from tests.conftest import run_python
from tests.ml.reports import synthetic
from tests.ml.reports.pages import alts, images

TASK = "loan_repayment"
BINARY_TITLES = (
    "Leaderboard: roc_auc by candidate",
    "ROC curves of every candidate",
    "Precision-recall curves of every candidate",
    "Confusion matrix of the champion at its threshold",
    "Calibration (reliability diagram)",
    "Predicted probability by actual class",
    "Global feature importance (mean |SHAP|)",
    "SHAP summary (beeswarm) of the top features",
)


# ---------------------------------------------------------------------------------------------
# pure helpers and pages on synthetic data


def _data(problem: str, metric: str, with_evaluation: bool = True) -> ModelData:
    evaluation = synthetic.evaluation(problem) if with_evaluation else pd.DataFrame()
    data = ModelData(
        task="t",
        run_id="r2",
        runs=synthetic.model_runs(problem, metric),
        evaluation=evaluation,
        importance=synthetic.importance(problem),
    )
    if problem == "multiclass" and with_evaluation:
        data.class_labels = evaluation_class_labels(evaluation)
    if not with_evaluation:
        data.skipped["evaluation"] = "no rows"
    else:
        rows = synthetic.fairness(problem, evaluation)
        data.fairness = rows[(rows["model_name"] == "voting") & (rows["split"] == "test")]
    values, X = synthetic.shap_wide()
    data.shap = ShapSample(values, ["a", "b", "c"], X, "value", frozenset({"b"}), 100)
    return data


def test_latest_runs_picks_each_tasks_most_recent_champion() -> None:
    runs = pd.DataFrame(
        {
            "task": ["a", "a", "a", "a", "b", "b", "c"],
            "run_id": ["r9", "r9", "r1", "r1", "r5", "r5", "r7"],
            "model_name": ["linear", "tree"] * 3 + ["linear"],
            "is_champion": [True, False, False, True, False, True, False],
            "trained_at": pd.to_datetime(
                ["2026-01-01", "2026-01-01", "2026-02-01", "2026-02-01"]
                + ["2026-01-05"] * 2
                + ["2026-03-01"]
            ),
        }
    )
    # task a: run r1 is newer by trained_at although "r9" sorts later; c has no champion
    assert latest_runs(runs) == {"a": "r1", "b": "r5"}
    assert latest_runs(runs.iloc[0:0]) == {}


def test_feature_colour_values_are_scaled_per_feature() -> None:
    values = pd.Series([*range(100), np.nan, 1e6])
    colour = feature_colour_values(values)
    assert np.isnan(colour[100])
    assert colour[101] == 1.0  # an outlier is clipped at the 95th percentile
    assert colour[0] == 0.0 and 0.4 < colour[50] < 0.6
    assert np.all((colour[:100] >= 0) & (colour[:100] <= 1))
    assert np.isnan(feature_colour_values(pd.Series(["a", "b"], dtype=object))).all()
    assert np.isnan(feature_colour_values(pd.Series([1.0, 2.0]), categorical=True)).all()
    assert (feature_colour_values(pd.Series([3.0, 3.0, np.nan]))[:2] == 0.5).all()


def test_swarm_offsets_are_bounded_and_seeded() -> None:
    values = np.random.default_rng(0).normal(size=500)
    a = swarm_offsets(values, np.random.default_rng(4), width=0.4)
    b = swarm_offsets(values, np.random.default_rng(4), width=0.4)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a).max() <= 0.4
    # points in the dense middle spread wider than those in the tails
    middle, tails = np.abs(values) < 0.5, np.abs(values) > 2
    assert np.abs(a[middle]).mean() > np.abs(a[tails]).mean()
    assert swarm_offsets(np.ones(3), np.random.default_rng(0)).shape == (3,)


def test_calibration_error_and_binned_mean() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20_000)
    y = (rng.uniform(0, 1, p.size) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.02
    assert expected_calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.1
    centres, means, _ = binned_mean(np.arange(100.0), np.arange(100.0) * 2, bins=10)
    assert len(centres) == 10
    np.testing.assert_allclose(means, centres * 2)


@pytest.mark.parametrize(
    ("problem", "metric", "expected"),
    [
        ("regression", "r2", ["Predicted vs actual", "Residuals vs fitted values",
                              "Distribution of residuals"]),
        ("binary", "roc_auc", ["ROC curves of every candidate",
                               "Calibration (reliability diagram)"]),
        ("multiclass", "f1", ["One-vs-rest ROC curves per class",
                              "Confusion matrix of the champion",
                              "Calibration of the predicted class's confidence",
                              "Per-class precision, recall and F1"]),
    ],
)  # fmt: skip
def test_pages_of_every_problem_type(problem, metric, expected, tmp_path: Path) -> None:
    report = model_page.build_report(_data(problem, metric))
    titles = [f.title for f in report.figures]
    for title in [f"Leaderboard: {metric} by candidate", *expected]:
        assert title in titles
    assert "SHAP dependence of b (rank 2)" in titles  # a categorical strip plot
    assert {"Metrics by age group", "Metrics by gender"} <= set(titles)  # the fairness section
    assert len(set(titles)) == len(titles)
    assert len({f.png for f in report.figures}) == len(titles)
    table, _ = model_page.leaderboard_table(_data(problem, metric))
    assert table["model"].tolist()[-1] == "oracle (simulator's truth)"
    assert "voting (champion)" in table["model"].tolist()
    page = model_page.render_page(report, tmp_path, "t", embed=False)
    assert page == tmp_path / "t.html"
    files = sorted((tmp_path / "figures" / "t").glob("*.png"))
    assert len(files) == len(titles)
    assert f'src="figures/t/{files[0].name}"' in page.read_text(encoding="utf-8")


def test_page_without_evaluation_rows_has_a_note_not_a_crash() -> None:
    data = _data("binary", "roc_auc", with_evaluation=False)
    report = model_page.build_report(data)
    titles = [f.title for f in report.figures]
    assert "ROC curves of every candidate" not in titles
    assert "Confusion matrix of the champion at its threshold" in titles
    assert "SHAP summary (beeswarm) of the top features" in titles
    regression = model_page.build_report(_data("regression", "r2", with_evaluation=False))
    assert "Predicted vs actual" not in [f.title for f in regression.figures]
    assert any("Skipped the fairness section" in n for n in regression.notes)


def test_the_fairness_section_shows_groups_and_gaps_with_the_gates_limits() -> None:
    data = _data("binary", "roc_auc")
    report = model_page.build_report(data)
    (section,) = [s for s in report.sections if s.anchor == "fairness"]
    (table,) = [b for b in section.blocks if isinstance(b, Table)]
    assert "equalized odds difference" in table.html and "&gt;= 0.8" in table.html
    assert "t gates no attribute: every gap is reported only." in table.caption
    gaps = gap_table(data.fairness, default_limits("t"))
    assert set(gaps["attribute"]) == {"age_group", "gender"}
    assert set(gaps["gate"]) == {"reported only"}
    ratio = gaps[(gaps["attribute"] == "gender") & (gaps["gap"] == "demographic parity ratio")]
    assert ratio["limit"].iloc[0] == ">= 0.8"
    value = ratio["value (large groups)"].iloc[0]
    assert ratio["within"].iloc[0] == ("yes" if value >= 0.8 else "no")


# ---------------------------------------------------------------------------------------------
# reading the stored tables (synthetic warehouse)


def _stored(tmp_path: Path, problem: str = "multiclass", metric: str = "f1", **changes) -> Path:
    tables = {**synthetic.trained(problem, metric), **changes}
    return synthetic.write(tmp_path / "w.duckdb", tables)


def test_collect_reads_the_stored_tables(tmp_path: Path) -> None:
    path = _stored(tmp_path)
    with open_read_only(path) as wh:
        data = collect_model_data(wh, "t")
    assert data.run_id == "r2" and data.champion["model_name"] == "voting"
    assert data.runs["model_name"].tolist()[0] == "stacking"  # best selection score first
    assert data.class_labels == list(synthetic.CLASSES)  # ml.model_runs.class_labels
    assert data.skipped == {}
    values, X = synthetic.shap_wide()
    shap = data.shap
    assert shap.columns == ["a", "b", "c"] and shap.categorical == {"b"}
    assert shap.stored_rows == 100 and shap.output_space == "value"
    np.testing.assert_allclose(shap.values, values)  # entity ids 1..100 by number, not text
    np.testing.assert_allclose(shap.X["a"].to_numpy(), X["a"].to_numpy())
    assert pd.api.types.is_float_dtype(shap.X["c"])
    assert shap.X["b"].tolist() == X["b"].tolist()  # categories as text, None when missing


def test_class_labels_fall_back_to_the_evaluation_rows(tmp_path: Path) -> None:
    runs = synthetic.model_runs("multiclass", "f1").drop(columns=["class_labels"])
    evaluation = synthetic.evaluation("multiclass")
    evaluation["actual_label"] = evaluation["actual_label"].str.upper()
    evaluation["predicted_label"] = evaluation["predicted_label"].str.upper()
    path = _stored(tmp_path, **{MODEL_RUNS: runs, EVALUATION_PREDICTIONS: evaluation})
    with open_read_only(path) as wh:
        data = collect_model_data(wh, "t")
    assert data.class_labels == ["GOLD", "SILVER", "BRONZE"]


def test_shap_rows_draws_a_seeded_subsample_of_the_stored_rows(tmp_path: Path) -> None:
    path = _stored(tmp_path, "regression", "r2")
    with open_read_only(path) as wh:
        a = collect_model_data(wh, "t", shap_rows=30, seed=4)
        b = collect_model_data(wh, "t", shap_rows=30, seed=4)
        c = collect_model_data(wh, "t", shap_rows=30, seed=5)
        off = collect_model_data(wh, "t", shap_rows=0)
    assert a.shap.values.shape == (30, 3) and a.shap.stored_rows == 100
    np.testing.assert_array_equal(a.shap.values, b.shap.values)
    assert not np.array_equal(a.shap.values, c.shap.values)
    assert off.shap is None and "--shap-rows 0" in off.skipped["shap"]
    report = model_page.build_report(a)
    (caption,) = [
        b.caption for s in report.sections for b in s.figures if b.title.startswith("SHAP summary")
    ]
    assert "A seeded sample (seed 4) of 30 of the 100 rows" in caption


def test_a_run_without_stored_shap_values_gets_a_note(tmp_path: Path) -> None:
    other_run = synthetic.shap_sample(run_id="r1")
    path = _stored(tmp_path, "binary", "roc_auc", **{SHAP_SAMPLE: other_run})
    with open_read_only(path) as wh:
        report = model_page.build_report(collect_model_data(wh, "t"))
    titles = [f.title for f in report.figures]
    assert "Global feature importance (mean |SHAP|)" in titles
    assert not any(t.startswith("SHAP summary") for t in titles)
    assert any(
        "Skipped the beeswarm and dependence plots: ml.shap_sample holds no SHAP values of run r2"
        in note
        for note in report.notes
    )


def test_a_shap_sample_of_another_layout_gets_a_note(tmp_path: Path) -> None:
    older = synthetic.shap_sample().drop(columns=["is_categorical"])
    path = _stored(tmp_path, "regression", "r2", **{SHAP_SAMPLE: older})
    with open_read_only(path) as wh:
        data = collect_model_data(wh, "t")
    assert data.shap is None
    assert data.skipped["shap"] == "ml.shap_sample has no column 'is_categorical': retrain the task"


def test_write_model_reports_from_the_stored_tables(tmp_path: Path) -> None:
    path = _stored(tmp_path, "binary", "roc_auc")
    pages = model_page.write_model_reports(tmp_path / "models", path=path)
    assert pages == [(tmp_path / "models" / "t.html", pages[0][1])]
    page = pages[0][0].read_text(encoding="utf-8")
    titles = alts(page)
    assert len(titles) == pages[0][1]
    for title in BINARY_TITLES:
        assert title in titles
    assert sum(a.startswith("SHAP dependence of ") for a in titles) == DEPENDENCE_FEATURES
    assert "Skipped" not in page


def test_unknown_task_and_nothing_trained_are_user_errors(tmp_path: Path) -> None:
    path = _stored(tmp_path, "binary", "roc_auc")
    with pytest.raises(UserError, match="'nope' has no trained champion.*trained: t"):
        model_page.write_model_reports(tmp_path / "out", ["nope"], path=path)
    assert not (tmp_path / "out").exists()
    empty = synthetic.write(tmp_path / "e.duckdb", {"main.x": pd.DataFrame({"a": [1]})})
    with pytest.raises(UserError, match="ml.model_runs not found"):
        model_page.write_model_reports(tmp_path / "out", path=empty)


# ---------------------------------------------------------------------------------------------
# after real training on the tiny warehouse


@pytest.fixture(scope="module")
def trained_loans(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the built warehouse after `ml.train --fast --task loan_repayment`, and its
    model page."""
    workdir = tmp_path_factory.mktemp("report_models")
    path = workdir / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    env = {"ARTIFACTS_PATH": str(workdir / "artifacts")}
    run_python("ml.train", "--fast", "--task", TASK, "--seed", "3", warehouse=path, env_extra=env)
    ((page, n_plots),) = model_page.write_model_reports(workdir / "models", path=path)
    return {"warehouse": path, "page": page.read_text(encoding="utf-8"), "plots": n_plots}


@pytest.mark.slow
def test_binary_page_has_distinct_titled_plots(trained_loans) -> None:
    page = trained_loans["page"]
    imgs = images(page)
    assert len(imgs) == trained_loans["plots"] >= 8
    assert len({img["src"] for img in imgs}) == len(imgs), "some plots are identical"
    assert all(img["src"].startswith("data:image/png;base64,") for img in imgs)
    titles = alts(page)
    assert all(titles) and len(set(titles)) == len(titles), "a plot without a distinct title"
    for title in BINARY_TITLES:
        assert title in titles
    assert sum(a.startswith("SHAP dependence of ") for a in titles) == DEPENDENCE_FEATURES
    assert "Skipped" not in page
    assert not re.search(r"https?://", page) and "<script" not in page.lower()


@pytest.mark.slow
def test_page_names_the_champion_and_the_oracle(trained_loans) -> None:
    page = trained_loans["page"]
    with open_read_only(trained_loans["warehouse"]) as wh:
        champ = wh.query(
            "select model_name, run_id, test_roc_auc, oracle_roc_auc from ml.model_runs"
            " where task = ? and is_champion",
            [TASK],
        ).iloc[0]
    name, run_id, test, oracle = champ.tolist()
    assert f"Champion {name} of run {run_id}: test roc_auc = {test:.4f}" in page
    assert f"reaches {oracle:.4f}" in page and f"test / oracle = {test / oracle:.3f}" in page
    assert f"{name} (champion)" in page
    assert "oracle (simulator&#x27;s truth)" in page


@pytest.mark.slow
def test_run_without_evaluation_rows_gets_a_note(trained_loans, tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    shutil.copy(trained_loans["warehouse"], path)
    with open_warehouse(path) as wh:
        wh.execute(f"drop table {EVALUATION_PREDICTIONS}")
    with open_read_only(path) as wh:
        report = model_page.build_report(collect_model_data(wh, TASK, shap_rows=0))
    titles = [f.title for f in report.figures]
    assert "ROC curves of every candidate" not in titles
    # the registry's confusion counts still give the matrix
    assert "Confusion matrix of the champion at its threshold" in titles
    assert any("holds no predictions of run" in n for n in report.notes)
    assert any("--shap-rows 0" in n for n in report.notes)


@pytest.mark.slow
def test_the_real_page_shows_the_deployment_and_the_gated_fairness(trained_loans) -> None:
    page = trained_loans["page"]
    with open_read_only(trained_loans["warehouse"]) as wh:
        run_id = wh.query(
            "select run_id from ml.model_runs where task = ? and is_champion", [TASK]
        ).iloc[0, 0]
    # the task's first run deploys its champion: this page's run is the deployed one
    assert '<section id="deployments">' in page and "<td>current</td><td>1</td>" in page
    assert f"This page&#x27;s run {run_id} is the deployed one" in page
    assert "Not deployed" not in page
    assert (
        "<td>gender</td><td>gated</td>" in page
        and "<td>age_group</td><td>reported only</td>" in page
    )
