"""The model reports: one static page per trained task, titled plots, robust to old runs."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml import warehouse
from ml.errors import UserError
from scripts import report_models as rm
from tests.conftest import run_python

TASK = "loan_repayment"
_IMG = re.compile(r"<img\b[^>]*>")
_ATTR = re.compile(r'(\w+)="([^"]*)"')
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


def _images(page: str) -> list[dict[str, str]]:
    return [dict(_ATTR.findall(tag)) for tag in _IMG.findall(page)]


@pytest.fixture(scope="module")
def trained_loans(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the built warehouse after `ml.train --fast --task loan_repayment`."""
    workdir = tmp_path_factory.mktemp("report_models")
    path = workdir / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    env = {"ARTIFACTS_PATH": str(workdir / "artifacts")}
    run_python("ml.train", "--fast", "--task", TASK, "--seed", "3", warehouse=path, env_extra=env)
    return {"warehouse": path, "env": env, "workdir": workdir}


@pytest.fixture(scope="module")
def cli_run(trained_loans: dict):
    out = trained_loans["workdir"] / "models"
    proc = run_python(
        "scripts.report_models",
        "--output",
        str(out),
        warehouse=trained_loans["warehouse"],
        env_extra=trained_loans["env"],
    )
    return proc, out


# ---------------------------------------------------------------------------------------------
# the whole flow on the tiny warehouse


def test_cli_writes_one_page_per_task_and_one_line_each(cli_run) -> None:
    proc, out = cli_run
    page = out / f"{TASK}.html"
    assert page.is_file()
    assert sorted(p.name for p in out.glob("*.html")) == [f"{TASK}.html"]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    match = re.fullmatch(r"wrote (.+) \((\d+) plots\)", lines[0])
    assert match and match.group(1) == str(page)
    assert int(match.group(2)) == len(_images(page.read_text(encoding="utf-8")))


def test_binary_page_has_distinct_titled_plots(cli_run) -> None:
    page = (cli_run[1] / f"{TASK}.html").read_text(encoding="utf-8")
    images = _images(page)
    assert len(images) >= 8
    assert len({img["src"] for img in images}) == len(images), "some plots are identical"
    assert all(img["src"].startswith("data:image/png;base64,") for img in images)
    alts = [html.unescape(img.get("alt", "")).strip() for img in images]
    assert all(alts) and len(set(alts)) == len(alts), "a plot without a distinct title"
    for title in BINARY_TITLES:
        assert title in alts
    assert sum(a.startswith("SHAP dependence of ") for a in alts) == rm.DEPENDENCE_FEATURES
    assert "Skipped" not in page
    assert not re.search(r"https?://", page) and "<script" not in page.lower()


def test_page_names_the_champion_and_the_oracle(cli_run, trained_loans) -> None:
    page = (cli_run[1] / f"{TASK}.html").read_text(encoding="utf-8")
    with warehouse.session(trained_loans["warehouse"], read_only=True) as con:
        champ = con.execute(
            "select model_name, run_id, test_roc_auc, oracle_roc_auc from ml.model_runs"
            " where task = ? and is_champion",
            [TASK],
        ).fetchall()[0]
    name, run_id, test, oracle = champ
    assert f"Champion {name} of run {run_id}: test roc_auc = {test:.4f}" in page
    assert f"reaches {oracle:.4f}" in page and f"test / oracle = {test / oracle:.3f}" in page
    assert f"{name} (champion)" in page
    assert "oracle (simulator&#x27;s truth)" in page


def test_run_without_evaluation_rows_gets_a_note(trained_loans, tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    shutil.copy(trained_loans["warehouse"], path)
    with warehouse.session(path) as con:
        con.execute("drop table ml.evaluation_predictions")
    with warehouse.session(path, read_only=True) as con:
        report = rm.build_model_report(con, TASK, shap_rows=0)
    titles = [f.title for f in report.figures]
    assert "ROC curves of every candidate" not in titles
    # the registry's confusion counts still give the matrix
    assert "Confusion matrix of the champion at its threshold" in titles
    notes = [b.text for s in report.sections for b in s.blocks if getattr(b, "kind", "") == "note"]
    assert any("holds no predictions of run" in n for n in notes)
    assert any("--shap-rows 0" in n for n in notes)


def test_unknown_task_is_a_user_error(trained_loans, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="customer_segment.*has no trained champion"):
        rm.write_model_reports(
            tmp_path / "out", ["customer_segment"], path=trained_loans["warehouse"]
        )
    assert not (tmp_path / "out").exists()


def test_nothing_trained_is_one_line_exit_2(built_warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    proc = run_python(
        "scripts.report_models", "--output", str(out), warehouse=built_warehouse, check=False
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "ml.model_runs not found" in proc.stderr
    assert proc.stdout == ""
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# pure helpers on synthetic data


def _runs(problem: str, metric: str, champion: str = "voting") -> pd.DataFrame:
    rows = []
    for i, name in enumerate(["linear", "tree", "xgboost", "keras", "voting", "stacking"]):
        row = {
            "task": "t",
            "run_id": "r2",
            "model_name": name,
            "problem": problem,
            "primary_metric": metric,
            "selection_score": 0.5 + 0.01 * i,
            "threshold": 0.4 if problem == "binary" else np.nan,
            "is_champion": name == champion,
            "n_train": 600,
            "n_val": 200,
            "n_test": 200,
            "cv_folds": 3,
            "fit_seconds": 1.0,
            "relation": "main.t",
            "target": "y",
            "id_column": "id",
            "trained_at": pd.Timestamp("2026-01-02"),
            "test_confusion": json.dumps({"tn": 120, "fp": 20, "fn": 25, "tp": 35}),
        }
        for m in rm.METRICS[problem]:
            for prefix in ("cv_", "val_", "test_", "oracle_"):
                col = f"{prefix}{m}_mean" if prefix == "cv_" else f"{prefix}{m}"
                row[col] = 0.7 + 0.01 * i
            row[f"cv_{m}_std"] = 0.02
        rows.append(row)
    return pd.DataFrame(rows)


def _evaluation(problem: str, n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for name in ["linear", "tree", "xgboost", "keras", "voting", "stacking"]:
        part = pd.DataFrame({"model_name": name, "split": "test", "entity_id": range(n)})
        if problem == "regression":
            actual = rng.normal(5, 2, n)
            part["actual"], part["predicted"] = actual, actual + rng.normal(0, 0.7, n)
        elif problem == "binary":
            p = rng.uniform(0, 1, n)
            part["actual"] = (rng.uniform(0, 1, n) < p).astype(float)
            part["predicted"] = np.clip(p + rng.normal(0, 0.1, n), 0, 1)
        else:
            actual = rng.integers(0, 3, n)
            logits = rng.normal(0, 1, (n, 3))
            logits[np.arange(n), actual] += 1.5
            proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            labels = np.array(["gold", "silver", "bronze"], dtype=object)
            part["actual"], part["predicted"] = actual.astype(float), proba.argmax(1).astype(float)
            part["actual_label"] = labels[actual]
            part["predicted_label"] = labels[proba.argmax(1)]
            part["probabilities"] = list(proba)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _data(problem: str, metric: str, with_evaluation: bool = True) -> rm.ModelData:
    evaluation = _evaluation(problem) if with_evaluation else pd.DataFrame()
    data = rm.ModelData(
        task="t",
        run_id="r2",
        runs=_runs(problem, metric),
        evaluation=evaluation,
        importance=pd.DataFrame(
            {
                "feature": ["a", "b", "c"],
                "mean_abs_shap": [0.3, 0.2, 0.1],
                "rank": [1, 2, 3],
                "n_rows": 100,
                "output_space": "value" if problem == "regression" else "probability",
            }
        ),
    )
    if problem == "multiclass" and with_evaluation:
        data.class_labels = rm._class_labels(evaluation)
    if not with_evaluation:
        data.skipped["evaluation"] = "no rows"
    rng = np.random.default_rng(1)
    X = pd.DataFrame(
        {
            "a": rng.normal(0, 1, 100),
            "b": pd.Series(rng.choice(["x", "y", None], 100), dtype=object),
            "c": rng.integers(0, 4, 100).astype(float),
        }
    )
    data.shap = rm.ShapSample(
        rng.normal(0, 0.1, (100, 3)), ["a", "b", "c"], X, "value", frozenset({"b"})
    )
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
    assert rm.latest_runs(runs) == {"a": "r1", "b": "r5"}
    assert rm.latest_runs(runs.iloc[0:0]) == {}


def test_feature_colour_values_are_scaled_per_feature() -> None:
    values = pd.Series([*range(100), np.nan, 1e6])
    colour = rm.feature_colour_values(values)
    assert np.isnan(colour[100])
    assert colour[101] == 1.0  # an outlier is clipped at the 95th percentile
    assert colour[0] == 0.0 and 0.4 < colour[50] < 0.6
    assert np.all((colour[:100] >= 0) & (colour[:100] <= 1))
    assert np.isnan(rm.feature_colour_values(pd.Series(["a", "b"], dtype=object))).all()
    assert np.isnan(rm.feature_colour_values(pd.Series([1.0, 2.0]), categorical=True)).all()
    assert (rm.feature_colour_values(pd.Series([3.0, 3.0, np.nan]))[:2] == 0.5).all()


def test_swarm_offsets_are_bounded_and_seeded() -> None:
    values = np.random.default_rng(0).normal(size=500)
    a = rm.swarm_offsets(values, np.random.default_rng(4), width=0.4)
    b = rm.swarm_offsets(values, np.random.default_rng(4), width=0.4)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a).max() <= 0.4
    # points in the dense middle spread wider than those in the tails
    middle, tails = np.abs(values) < 0.5, np.abs(values) > 2
    assert np.abs(a[middle]).mean() > np.abs(a[tails]).mean()
    assert rm.swarm_offsets(np.ones(3), np.random.default_rng(0)).shape == (3,)


def test_calibration_error_and_binned_mean() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20_000)
    y = (rng.uniform(0, 1, p.size) < p).astype(int)
    assert rm.expected_calibration_error(y, p) < 0.02
    assert rm.expected_calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.1
    centres, means, _ = rm.binned_mean(np.arange(100.0), np.arange(100.0) * 2, bins=10)
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
    report = rm.build_report(_data(problem, metric))
    titles = [f.title for f in report.figures]
    for title in [f"Leaderboard: {metric} by candidate", *expected]:
        assert title in titles
    assert "SHAP dependence of b (rank 2)" in titles  # a categorical strip plot
    assert len(set(titles)) == len(titles)
    assert len({f.png for f in report.figures}) == len(titles)
    table, _ = rm.leaderboard_table(_data(problem, metric))
    assert table["model"].tolist()[-1] == "oracle (simulator's truth)"
    assert "voting (champion)" in table["model"].tolist()
    page = rm.render_page(report, tmp_path, "t", embed=False)
    assert page == tmp_path / "t.html"
    files = sorted((tmp_path / "figures" / "t").glob("*.png"))
    assert len(files) == len(titles)
    assert f'src="figures/t/{files[0].name}"' in page.read_text(encoding="utf-8")


def test_page_without_evaluation_rows_has_a_note_not_a_crash() -> None:
    data = _data("binary", "roc_auc", with_evaluation=False)
    report = rm.build_report(data)
    titles = [f.title for f in report.figures]
    assert "ROC curves of every candidate" not in titles
    assert "Confusion matrix of the champion at its threshold" in titles
    assert "SHAP summary (beeswarm) of the top features" in titles
    regression = rm.build_report(_data("regression", "r2", with_evaluation=False))
    assert "Predicted vs actual" not in [f.title for f in regression.figures]
