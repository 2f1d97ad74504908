"""`python -m scripts.benchmark_models`: one `error:` line and exit 2 on bad input; the whole
comparison on a small learnable CSV (the pieces: tests/ml/bench/test_models.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.core.cli import run
from scripts.benchmark_models import join_train_args, main
from tests.conftest import run_cli


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """The command in-process, through the same error boundary."""
    with pytest.raises(SystemExit) as exc:
        run(main, "scripts.benchmark_models", argv)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def _learnable_csv(path: Path, n: int = 400, seed: int = 0) -> Path:
    """A binary target (`stay`/`churn`, churn the rarer) that two features and a text column
    explain, with missing values and an id column."""
    rng = np.random.default_rng(seed)
    tenure, spend = rng.normal(size=n), rng.normal(size=n)
    plan = rng.choice(["basic", "plus", "pro"], size=n)
    logit = -2.0 * tenure + 1.0 * spend + np.where(plan == "basic", 1.0, -0.5) - 1.2
    churn = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "tenure": tenure.round(3),
            "spend": spend.round(3),
            "plan": plan,
            "outcome": np.where(churn, "churn", "stay"),
        }
    )
    frame.loc[::13, "spend"] = np.nan
    frame.loc[::19, "plan"] = "?"
    frame.to_csv(path, index=False)
    return path


def test_a_missing_file_is_one_error_line(tmp_path: Path, capsys) -> None:
    code, out, err = _cli([str(tmp_path / "nope.csv"), "--target", "y"], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("scripts.benchmark_models: error:")
    assert "nope.csv" in err


def test_a_missing_target_column_is_one_error_line(tmp_path: Path, capsys) -> None:
    csv = _learnable_csv(tmp_path / "d.csv", n=60)
    code, _, err = _cli([str(csv), "--target", "nope"], capsys)
    assert code == 2 and "target column 'nope' is not in" in err and err.count("\n") == 1
    code, _, err = _cli([str(csv), "--target", "outcome", "--id", "missing"], capsys)
    assert code == 2 and "id column 'missing'" in err


def test_bad_options_are_refused_before_anything_runs(tmp_path: Path, capsys) -> None:
    csv = _learnable_csv(tmp_path / "d.csv", n=60)
    code, _, err = _cli([str(csv), "--target", "outcome", "--output", "x.txt"], capsys)
    assert code == 2 and ".md or .json" in err
    code, _, err = _cli([str(csv), "--target", "outcome", "--train-args", "--target y"], capsys)
    assert code == 2 and "--train-args may not contain --target" in err
    code, _, err = _cli([str(csv), "--target", "outcome", "--baselines", "svm"], capsys)
    assert code == 2 and "unknown 'svm'" in err
    code, _, err = _cli([str(csv)], capsys)
    assert code == 2 and "--target" in err


def test_train_args_may_start_with_dashes() -> None:
    assert join_train_args(["d.csv", "--train-args", "--fast", "--seed", "1"]) == [
        "d.csv",
        "--train-args=--fast",
        "--seed",
        "1",
    ]


@pytest.mark.slow
def test_the_comparison_on_a_learnable_csv(tmp_path: Path) -> None:
    csv = _learnable_csv(tmp_path / "churn.csv")
    report = tmp_path / "report.json"
    proc = run_cli(
        [
            sys.executable,
            "-m",
            "scripts.benchmark_models",
            str(csv),
            "--target",
            "OUTCOME",  # matched ignoring case, as ml.train matches it
            "--id",
            "customer_id",
            "--train-args",
            "--fast --explain-rows 0",
            "--output",
            str(report),
        ],
        # one thread per model: the numbers are checked here, not the times
        env_extra={"ML_THREADS": "1", "OMP_NUM_THREADS": "1"},
        timeout=900,
    )
    result = json.loads(report.read_text())
    assert result["problem"] == "binary" and result["positive_class"] == "churn"  # the rarer
    assert result["rows"] == {"train": 320, "test": 80, "unlabelled_left_out": 0}
    models = {r["model"]: r for r in result["models"]}
    assert len(models) == 4 and all(r["status"] == "ok" for r in models.values())
    project = models["project (ml.train --fast --explain-rows 0)"]
    assert project["commands"][1].startswith(
        "python -m ml.train --table raw.churn --target outcome --id customer_id --fast"
    )
    for row in models.values():
        assert row["metrics"]["roc_auc"] > 0.7, row
        assert 0.3 < row["metrics"]["f1"] <= 1.0, row
        assert 0.0 < row["threshold"] < 1.0, row
        assert row["train_s"] > 0 and row["predict_s"] >= 0
    assert project["load_s"] > 0 and project["train_s"] > 0 and project["predict_s"] > 0
    assert set(result["summary"]) == {"roc_auc", "f1"}
    gap = result["summary"]["roc_auc"]
    assert gap["gap"] == pytest.approx(project["metrics"]["roc_auc"] - gap["best_value"])
    # stdout is the same table
    assert "| project (ml.train --fast --explain-rows 0), champion" in proc.stdout
    assert "| best peer |" in proc.stdout and "| project − best peer |" in proc.stdout
