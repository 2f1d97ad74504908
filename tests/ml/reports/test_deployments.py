"""Model governance on the reports: the model page's Deployments section (history, decisions,
the deployed model against the page's run), the fairness gate's limits on the fairness plots and
gap table, and the index's deployed models."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from matplotlib.patches import Rectangle

from ml.core.tables import DEPLOYMENTS, MODEL_RUNS, PROMOTION_DECISIONS
from ml.fairness.gate import FairnessLimits, default_limits, gaps_of_large_groups
from ml.reports import index, model_page
from ml.reports.deployments_section import CURRENT, decision_table, deployment_table
from ml.reports.fairness_plots import GATED, REPORTED_ONLY, gap_table, plot_metrics_by_group
from ml.reports.model_data import DECISIONS_SHOWN, ModelData, collect_model_data
from ml.reports.page import Note, Preformatted, Report, Section, Table
from ml.reports.reading import open_read_only
from tests.ml.reports import synthetic

LOANS = "loan_repayment"


def _collect(tmp_path: Path, **changes: pd.DataFrame | None) -> ModelData:
    """The model data of task t from the synthetic tables with `changes` (None: table absent)."""
    tables = {**synthetic.trained("binary", "roc_auc"), **changes}
    tables = {name: frame for name, frame in tables.items() if frame is not None}
    path = synthetic.write(tmp_path / "w.duckdb", tables)
    with open_read_only(path) as wh:
        return collect_model_data(wh, "t", shap_rows=0)


def _section(report: Report, anchor: str) -> Section:
    (section,) = [s for s in report.sections if s.anchor == anchor]
    return section


def _texts(section: Section) -> list[str]:
    return [b.text for b in section.blocks if isinstance(b, Note | Preformatted)]


def _tables(section: Section) -> list[Table]:
    return [b for b in section.blocks if isinstance(b, Table)]


# ---------------------------------------------------------------------------------------------
# the Deployments section


def test_the_section_lists_the_history_and_the_decisions_newest_first(tmp_path: Path) -> None:
    data = _collect(tmp_path)
    assert "deployments" not in data.skipped and "decisions" not in data.skipped
    assert data.deployments["deployment_id"].tolist() == [2, 1]  # newest (current) first
    assert data.deployed["run_id"] == "r2" and data.run_is_deployed is True
    assert data.decisions["challenger_run_id"].tolist() == ["r2", "r1"] and data.n_decisions == 2

    history = deployment_table(data.deployments)
    assert history["status"].tolist() == [CURRENT, ""]
    assert history["deployment"].tolist() == ["2", "1"]
    assert history["command"].tolist() == ["ml.promote", "ml.train"]
    assert history["deployed at (UTC)"].tolist() == ["2026-01-02 08:30", "2026-01-01 08:30"]
    assert history["replaced"].tolist() == ["1", ""]
    assert history["sha256"].tolist() == ["02" + "ab" * 5, "01" + "ab" * 5]  # 12 hex digits

    decisions = decision_table(data.decisions)
    promoted, first = decisions.iloc[0], decisions.iloc[1]
    assert promoted["challenger"] == "voting of run r2" and promoted["deployed"] == "tree of run r1"
    assert promoted["difference [CI]"] == "+0.0300 [+0.0120, +0.0480]"
    assert promoted["p-value"] == "0.0021 (significant at 0.05)"
    assert promoted["test"] == "DeLong" and promoted["rows"] == "400 (150 new)"
    assert (promoted["quality gate"], promoted["fairness gate"]) == ("passed", "passed")
    assert promoted["promoted"] == "yes (deployment 2)"
    assert promoted["challenger score"] == "0.8100" and promoted["deployed score"] == "0.7800"
    # the first run's decision has no deployed model and no evidence: blanks, not "nan"
    assert first["mode"] == "first" and first["deployed"] == "" and first["difference [CI]"] == ""
    assert first["p-value"] == "" and first["promoted"] == "yes (deployment 1)"

    report = model_page.build_report(data)
    section = _section(report, "deployments")
    texts = _texts(section)
    assert texts[0].startswith("Deployed now: voting of run r2 (deployment 2, by ml.promote on ")
    assert "This page's run r2 is the deployed one" in texts[0]
    assert "gender demographic_parity_ratio 0.870 >= 0.8 ok" in texts[-1]  # the newest checks
    history_html, decisions_html = (t.html for t in _tables(section))
    assert "<td>current</td><td>2</td>" in history_html
    assert "significant gain; the quality and fairness gates passed" in decisions_html
    summary = _section(report, "summary")
    assert not any(isinstance(b, Note) and b.kind == "note" for b in summary.blocks)
    assert "<td>deployed</td><td>yes (deployment 2)</td>" in _tables(summary)[0].html
    assert not any("Not deployed" in n for n in report.notes)


def test_a_champion_that_is_not_deployed_is_said_at_the_top(tmp_path: Path) -> None:
    data = _collect(tmp_path, **{DEPLOYMENTS: synthetic.deployments(synthetic.ROLLED_BACK)})
    assert data.deployed["deployment_id"] == 3 and data.run_is_deployed is False
    report = model_page.build_report(data)
    summary = _section(report, "summary")
    top = summary.blocks[0]
    assert isinstance(top, Note) and top.kind == "note"
    assert top.text.startswith("Not deployed: this page's run r2 and its champion voting")
    assert "the deployed model is tree of run r1 (deployment 3, by ml.rollback" in top.text
    assert "Its promotion decision of 2026-01-01 20:00 UTC: promoted" in top.text
    assert "<td>deployed</td><td>no: tree of run r1 is (deployment 3)</td>" in (
        _tables(summary)[0].html
    )
    texts = _texts(_section(report, "deployments"))
    assert "This page's run r2 (the latest, champion voting) is NOT the deployed one." in texts[0]
    history = deployment_table(data.deployments)
    assert history["status"].tolist() == [CURRENT, "", ""]
    assert history.iloc[0][["run", "model", "command"]].tolist() == ["r1", "tree", "ml.rollback"]


def test_another_candidate_of_the_same_run_is_not_the_champion(tmp_path: Path) -> None:
    history = (*synthetic.DEPLOYED, ("r2", "stacking", "ml.promote"))
    data = _collect(tmp_path, **{DEPLOYMENTS: synthetic.deployments(history)})
    note = model_page.build_report(data).notes[0]
    assert "another candidate of the same run, stacking of run r2 (deployment 3" in note


def test_absent_tables_give_skip_notes(tmp_path: Path) -> None:
    data = _collect(tmp_path, **{DEPLOYMENTS: None, PROMOTION_DECISIONS: None})
    assert data.deployed is None and data.run_is_deployed is None and not data.governed
    assert data.skipped["deployments"].startswith("ml.deployments not found")
    report = model_page.build_report(data)
    texts = _texts(_section(report, "deployments"))
    assert texts == [
        f"Skipped the deployment history: {data.skipped['deployments']}.",
        f"Skipped the promotion decisions: {data.skipped['decisions']}.",
    ]
    assert "ml.promotion_decisions not found" in texts[1]
    assert not any(n.startswith("Not deployed") for n in report.notes)
    summary = _tables(_section(report, "summary"))[0].html
    assert "<td>deployed</td>" not in summary


def test_other_tasks_rows_and_old_layouts_give_skip_notes(tmp_path: Path) -> None:
    old = synthetic.promotion_decisions().drop(columns=["promoted"])
    data = _collect(
        tmp_path,
        **{DEPLOYMENTS: synthetic.deployments(task="other"), PROMOTION_DECISIONS: old},
    )
    assert data.skipped["deployments"] == "ml.deployments holds no deployment of task t"
    assert data.skipped["decisions"] == "ml.promotion_decisions has no column 'promoted'"
    # the warehouse records deployments, none of this task: nothing of it is deployed
    assert data.governed and data.deployed is None
    report = model_page.build_report(data)
    assert report.notes[0] == (
        "Not deployed: no model of task t is deployed (ml.deployments holds none), so neither is "
        "the champion voting of this page's run r2."
    )
    assert _texts(_section(report, "deployments")) == [
        "Skipped the deployment history: ml.deployments holds no deployment of task t.",
        "Skipped the promotion decisions: ml.promotion_decisions has no column 'promoted'.",
    ]


def test_at_most_twenty_decisions_are_listed(tmp_path: Path) -> None:
    data = _collect(tmp_path, **{PROMOTION_DECISIONS: synthetic.promotion_decisions(n_auto=24)})
    assert data.n_decisions == 25 and len(data.decisions) == DECISIONS_SHOWN
    assert data.decisions["challenger_run_id"].iloc[0] == "r2"  # the newest
    assert data.decisions["decided_at"].is_monotonic_decreasing
    tables = _tables(_section(model_page.build_report(data), "deployments"))
    assert f"the newest {DECISIONS_SHOWN} of 25" in tables[1].caption
    assert tables[1].html.count("<tr>") == DECISIONS_SHOWN + 1  # and the header
    shown = decision_table(data.decisions)
    assert shown["p-value"].iloc[1] == "0.09 (not significant at 0.05)"
    assert shown["promoted"].iloc[1] == "no" and shown["reason"].iloc[1] == "no significant gain"


# ---------------------------------------------------------------------------------------------
# the fairness gate's limits on the fairness section


def _fairness(problem: str = "binary") -> pd.DataFrame:
    rows = synthetic.fairness(problem)
    return rows[(rows["model_name"] == "voting") & (rows["split"] == "test")]


def _legend(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_the_metrics_by_group_plot_draws_the_gates_limits() -> None:
    rows = _fairness()
    limits = default_limits(LOANS)
    fig, title = plot_metrics_by_group(rows, "gender", "binary", limits)
    assert title == "Metrics by gender"
    ax = fig.axes[0]
    assert ax.get_title() == "Metrics by gender (test split, gated)"
    labels = _legend(fig)
    floor = "selection rate floor: 0.8 x the highest group's (demographic parity ratio)"
    assert floor in labels
    for rate in ("true positive rate", "false positive rate"):
        assert f"{rate}: allowed band, the highest group's minus 0.1 (equalized odds)" in labels
    assert labels[:3] == ["selection rate", "true positive rate", "false positive rate"]
    groups = rows[(rows["attribute"] == "gender") & (rows["kind"] == "group")].pivot_table(
        index="group_value", columns="metric", values="value"
    )
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == floor]
    assert line.get_linestyle() == "--"
    assert line.get_ydata()[0] == pytest.approx(0.8 * groups["selection_rate"].max())
    (band,) = [
        p for p in ax.patches if isinstance(p, Rectangle) and p.get_label().startswith("true")
    ]
    top = groups["true_positive_rate"].max()
    assert band.get_y() == pytest.approx(max(top - 0.1, 0.0))  # y in data units (axhspan)
    assert band.get_y() + band.get_height() == pytest.approx(top)
    # age groups are reported only; groups under 50 rows are marked and left out of the limits
    fig, _ = plot_metrics_by_group(rows, "age_group", "binary", limits)
    assert fig.axes[0].get_title() == "Metrics by age group (test split, reported only)"
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    counts = rows[(rows["attribute"] == "age_group") & (rows["metric"] == "count")]
    small = counts[(counts["kind"] == "group") & (counts["value"] < 50)]
    marked = [f"{g}\n(n={n:,.0f} < 50)" for g, n in small[["group_value", "value"]].to_numpy()]
    assert marked and set(marked) <= set(ticks)


def test_no_limits_without_a_binary_task_or_enough_large_groups() -> None:
    rows = _fairness()
    fig, _ = plot_metrics_by_group(rows, "gender", "binary")  # no limits given
    assert not any("floor" in t or "band" in t for t in _legend(fig))
    strict = FairnessLimits(attributes=("gender",), min_group_size=10_000)
    fig, _ = plot_metrics_by_group(rows, "gender", "binary", strict)
    assert not any("floor" in t or "band" in t for t in _legend(fig))
    assert "no limits: fewer than two groups of 10000+ rows" in fig.axes[0].get_title()
    fig, _ = plot_metrics_by_group(_fairness("regression"), "gender", "regression", strict)
    assert not any("floor" in t or "band" in t for t in _legend(fig))
    assert fig.axes[0].get_title() == "Metrics by gender (test split)"


def test_the_gap_table_takes_the_gates_limits_and_says_what_is_gated() -> None:
    rows = _fairness()
    gaps = gap_table(rows, default_limits(LOANS))
    assert list(gaps.columns) == ["attribute", "gate", "gap", "value", "value (large groups)",
                                  "limit", "within"]  # fmt: skip
    assert set(gaps.loc[gaps["attribute"] == "gender", "gate"]) == {GATED}
    assert set(gaps.loc[gaps["attribute"] == "age_group", "gate"]) == {REPORTED_ONLY}
    large, _ = gaps_of_large_groups(rows[rows["attribute"] == "gender"], 50)
    ratio = gaps[(gaps["attribute"] == "gender") & (gaps["gap"] == "demographic parity ratio")]
    assert ratio["limit"].iloc[0] == ">= 0.8"
    assert ratio["value (large groups)"].iloc[0] == pytest.approx(large["demographic_parity_ratio"])
    assert ratio["within"].iloc[0] == ("yes" if large["demographic_parity_ratio"] >= 0.8 else "no")
    odds = gaps[(gaps["attribute"] == "gender") & (gaps["gap"] == "equalized odds difference")]
    assert odds["limit"].iloc[0] == "<= 0.1"
    difference = gaps[gaps["gap"] == "demographic parity difference"]
    assert set(difference["limit"]) == {""} and set(difference["within"]) == {""}
    # other limits are the table's: nothing of its own
    strict = gap_table(rows, FairnessLimits(attributes=(), min_parity_ratio=0.999))
    assert set(strict["gate"]) == {REPORTED_ONLY}
    assert ">= 0.999" in set(strict["limit"])
    unmeasured = gap_table(rows, FairnessLimits(min_group_size=10_000))
    assert set(unmeasured.loc[unmeasured["limit"] != "", "within"]) == {
        "not measured: fewer than two groups of 10000+ rows"
    }


def test_the_fairness_section_of_a_gated_task(tmp_path: Path) -> None:
    data = _collect(tmp_path)
    data.task = LOANS
    section = _section(model_page.build_report(data), "fairness")
    (table,) = _tables(section)
    assert "Gated attributes of loan_repayment: gender;" in table.caption
    assert "demographic parity ratio >= 0.8; equalized odds difference <= 0.1" in table.caption
    assert "<td>gender</td><td>gated</td>" in table.html
    assert "<td>age_group</td><td>reported only</td>" in table.html
    assert all("shaded band" in f.caption for f in section.figures)


# ---------------------------------------------------------------------------------------------
# the index


def test_the_index_lists_each_tasks_deployed_model(tmp_path: Path) -> None:
    old = synthetic.model_runs("binary", "roc_auc", run_id="r1", champion="tree")
    new = synthetic.model_runs("binary", "roc_auc", run_id="r2")
    other = synthetic.model_runs("regression", "r2", task="u", run_id="r0")
    runs = pd.concat([old.assign(trained_at=pd.Timestamp("2025-01-01")), new, other])
    tables = {MODEL_RUNS: runs, DEPLOYMENTS: synthetic.deployments(synthetic.ROLLED_BACK)}
    path = synthetic.write(tmp_path / "w.duckdb", tables)
    with open_read_only(path) as wh:
        best, note = index.champions(wh)
    assert note == ""
    assert best["task"].tolist() == ["t", "u"]
    t, u = best.iloc[0], best.iloc[1]
    # task t serves run r1's tree (rolled back), not run r2's champion
    assert (t["model"], t["run_id"]) == ("tree", "r1")
    assert t["test"] == pytest.approx(0.71)  # tree's test score in run r1
    assert t["deployment"] == "3 by ml.rollback, 2026-01-03 08:30 UTC"
    assert t["latest champion"] == "voting of run r2: not deployed"
    # task u has no deployment: its latest champion, said so
    assert (u["model"], u["run_id"]) == ("voting", "r0")
    assert u["deployment"] == "none recorded: the latest champion"
    page = index.index_report([], [], best, pd.DataFrame(), note)
    assert [s.title for s in page.sections] == ["Pages", "Deployed models"]


def test_the_index_falls_back_to_the_latest_champions_with_a_note(tmp_path: Path) -> None:
    runs = synthetic.model_runs("binary", "roc_auc")
    path = synthetic.write(tmp_path / "w.duckdb", {MODEL_RUNS: runs})
    with open_read_only(path) as wh:
        best, note = index.champions(wh)
    assert best["model"].tolist() == ["voting"] and "deployment" not in best.columns
    assert note.startswith("ml.deployments not found")
    page = index.index_report([], [], best, pd.DataFrame(), note)
    section = page.sections[-1]
    assert section.title == "Champions" and note in page.notes
