"""The reference profile ml.train stores and the PSI the drift marts compute from it."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from ml.monitoring.profile import COLUMNS, numeric_edges, psi, reference_profile


def _profile(frame: pd.DataFrame, scores: pd.Series, problem: str = "binary") -> pd.DataFrame:
    return reference_profile(
        task="t",
        run_id="r",
        model_name="m",
        relation="marts.x",
        id_column="id",
        target="y",
        primary_metric="roc_auc",
        training_metric=0.9,
        frame=frame,
        numeric=[c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])],
        categorical=[c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])],
        scores=scores,
        problem=problem,
        population="snapshot",
        created_at=datetime(2026, 1, 1),
    )


def test_numeric_bins_are_deciles_that_cover_every_value() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=10_000)
    frame = pd.DataFrame({"x": np.where(rng.random(10_000) < 0.1, np.nan, values)})
    profile = _profile(frame, pd.Series(rng.random(10_000)))
    assert list(profile.columns) == list(COLUMNS)
    x = profile[profile["feature"] == "x"].sort_values("bin")
    assert len(x) == 10
    assert x["share"].sum() == pytest.approx(1.0)
    assert x["share"].to_numpy() == pytest.approx(np.full(10, 0.1), abs=0.002)
    assert x["missing_share"].iloc[0] == pytest.approx(0.1, abs=0.01)
    assert pd.isna(x["lower"].iloc[0]) and pd.isna(x["upper"].iloc[-1])
    # each bin is lower < v <= upper: the upper edge of one bin is the lower edge of the next
    assert x["upper"].iloc[:-1].tolist() == x["lower"].iloc[1:].tolist()
    score = profile[profile["subject"] == "score"]
    assert len(score) == 10 and score["share"].sum() == pytest.approx(1.0)


def test_few_distinct_values_merge_repeated_edges() -> None:
    edges = numeric_edges(np.array([1, 1, 1, 2, 2, 3, 6, 6, 6, 6], dtype=float))
    assert list(edges) == sorted(set(edges))
    frame = pd.DataFrame({"k": [1.0] * 90 + [2.0] * 10})
    k = _profile(frame, pd.Series(np.linspace(0, 1, 100)))
    k = k[k["feature"] == "k"]
    assert k["share"].sum() == pytest.approx(1.0)
    assert (k["share"] > 0).sum() == 2


def test_categorical_and_multiclass_score_shares() -> None:
    frame = pd.DataFrame({"c": pd.Series(["a", "a", "b", None], dtype="str")})
    profile = _profile(frame, pd.Series(["x", "y", "y", "y"]), problem="multiclass")
    c = profile[profile["feature"] == "c"].set_index("category")
    assert c["share"].to_dict() == {"a": pytest.approx(2 / 3), "b": pytest.approx(1 / 3)}
    assert c["missing_share"].iloc[0] == pytest.approx(0.25)
    score = profile[profile["subject"] == "score"].set_index("category")["share"]
    assert score.to_dict() == {"x": 0.25, "y": 0.75}


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift() -> None:
    e = np.full(10, 0.1)
    assert psi(e, e) == 0.0
    small = psi(e, np.array([0.12, 0.08] * 5))
    large = psi(e, np.array([0.3, 0.02] * 5))
    assert 0 < small < 0.1 <= 0.25 <= large
    # an empty bin is floored, not infinite
    assert np.isfinite(psi(e, np.array([0.0, 0.2] * 5)))
