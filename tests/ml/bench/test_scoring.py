"""ml.bench.score_worker: which path scored, as bench.json reports it."""

from __future__ import annotations

from ml.bench.score_worker import scoring_path
from ml.serving.batch import ScoringStats


def test_scoring_path_reports_path_reason_and_trees() -> None:
    stats = ScoringStats(fast=True, compiled_trees={"xgboost": "compiled"})
    assert scoring_path(stats) == {
        "scoring_path": "fast",
        "fallback_reason": None,
        "compiled_trees": {"xgboost": "compiled"},
    }
    generic = scoring_path(ScoringStats(fast=False, fallback_reason="fast path not requested"))
    assert generic["scoring_path"] == "generic"
    assert generic["fallback_reason"] == "fast path not requested"
