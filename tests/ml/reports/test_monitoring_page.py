"""The monitoring page, drawn from synthetic monitoring marts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.monitoring.status import Monitoring
from ml.reports.monitoring_page import monitoring_report
from ml.reports.page import render


def _monitoring() -> Monitoring:
    rng = np.random.default_rng(0)
    drift, performance = [], []
    for task, population in (("loans", "arrivals"), ("customers", "snapshot")):
        for batch in range(4):
            for feature in [f"f{i}" for i in range(9)] + ["score"]:
                psi = 0.0 if batch == 0 else float(rng.uniform(0, 0.05))
                if feature == "f0" and batch == 3:
                    psi = 0.6
                drift.append(
                    {
                        "task": task,
                        "batch_id": batch,
                        "subject": "score" if feature == "score" else "feature",
                        "feature": feature,
                        "kind": "numeric",
                        "row_count": 1000,
                        "psi": psi,
                        "missing_share": 0.01,
                        "reference_missing_share": 0.01,
                        "status": "act" if psi >= 0.25 else "stable",
                    }
                )
            if batch:
                performance.append(
                    {
                        "task": task,
                        "batch_id": batch,
                        "metric": "roc_auc",
                        "row_count": 500,
                        "realised_metric": 0.9 - 0.1 * (batch == 3),
                        "training_metric": 0.9,
                        "metric_drop": 0.1 * (batch == 3),
                        "is_gated": population == "arrivals",
                        "status": "act" if batch == 3 else "stable",
                    }
                )
    return Monitoring(pd.DataFrame(drift), pd.DataFrame(performance), [0, 1, 2, 3])


def test_the_page_plots_psi_and_realised_metric_per_task(tmp_path) -> None:
    report = monitoring_report(_monitoring())
    assert len(report.figures) == 4  # per task: PSI by batch, realised metric by batch
    page = render(report, tmp_path, filename="monitoring.html")
    text = page.read_text()
    assert "loans" in text and "customers" in text and text.count("<img") == 4
    assert "act" in text


def test_worst_status_per_task() -> None:
    monitoring = _monitoring()
    assert monitoring.worst("loans") == "act"
    quiet = Monitoring(
        monitoring.drift[monitoring.drift["batch_id"] < 3],
        monitoring.performance[monitoring.performance["batch_id"] < 3],
        [0, 1, 2],
    )
    assert quiet.worst() == "stable"
