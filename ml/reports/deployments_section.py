"""The model page's Deployments section: which model of the task is deployed, since when, by which
command and why (`ml.deployments`), and the promotion decisions about its challengers
(`ml.promotion_decisions`): the evidence, the gates and the verdict of each. Drawn from
`ModelData`'s frames (no warehouse access), like the other sections.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ml.core.tables import DEPLOYMENTS, PROMOTION_DECISIONS
from ml.reports.model_data import DECISIONS_SHOWN, ModelData, fmt, num
from ml.reports.page import Report

#: Hex digits of an artifact's sha256 shown (enough to tell artifacts apart).
SHA_SHOWN = 12
#: The mark of the current deployment in the history table.
CURRENT = "current"


def _text(value: Any) -> str:
    """A cell as text, blank when missing."""
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _when(value: Any) -> str:
    """A timestamp to the minute (naive UTC, as the tables store it); blank when missing."""
    stamp = pd.to_datetime(value, errors="coerce")
    return "" if stamp is None or pd.isna(stamp) else f"{stamp:%Y-%m-%d %H:%M}"


def _flag(value: Any, yes: str = "yes", no: str = "no") -> str:
    return "" if value is None or pd.isna(value) else (yes if bool(value) else no)


def _id(value: Any) -> str:
    number = pd.to_numeric(value, errors="coerce")
    return "" if pd.isna(number) else str(int(number))


def model_of_run(model: Any, run: Any) -> str:
    """`model of run r`, blank when there is no model (a first decision's deployed side)."""
    model, run = _text(model), _text(run)
    return f"{model} of run {run}" if model else ""


def describe_deployment(row: pd.Series) -> str:
    """e.g. `tree of run r1 (deployment 2, by ml.promote on 2026-01-03 10:00 UTC: <reason>)`."""
    reason = _text(row.get("reason"))
    return (
        f"{model_of_run(row['model_name'], row['run_id'])} (deployment "
        f"{_id(row['deployment_id'])}, by {_text(row['command'])} on "
        f"{_when(row['deployed_at'])} UTC{': ' + reason if reason else ''})"
    )


# ---------------------------------------------------------------------------------------------
# tables


def deployment_table(deployments: pd.DataFrame) -> pd.DataFrame:
    """Every deployment, newest first (as given), the current one (the first) marked."""
    rows = []
    for i, (_, r) in enumerate(deployments.iterrows()):
        sha = _text(r.get("artifact_sha256"))
        rows.append({
            "status": CURRENT if i == 0 else "",
            "deployment": _id(r["deployment_id"]),
            "deployed at (UTC)": _when(r["deployed_at"]),
            "run": _text(r["run_id"]),
            "model": _text(r["model_name"]),
            "command": _text(r["command"]),
            "reason": _text(r.get("reason")),
            "replaced": _id(r.get("previous_deployment_id")),
            "sha256": sha[:SHA_SHOWN],
        })  # fmt: skip
    columns = ["status", "deployment", "deployed at (UTC)", "run", "model", "command", "reason",
               "replaced", "sha256"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _difference(r: pd.Series) -> str:
    """`+0.0123 [-0.0020, +0.0266]`: the difference and its interval (blank without evidence)."""
    diff, low, high = num(r, "difference"), num(r, "ci_low"), num(r, "ci_high")
    if not math.isfinite(diff):
        return ""
    interval = f" [{low:+.4f}, {high:+.4f}]" if math.isfinite(low) and math.isfinite(high) else ""
    return f"{diff:+.4f}{interval}"


def _p_value(r: pd.Series) -> str:
    """`0.0031 < 0.05` (significant gain) or `0.21 >= 0.05`: the p-value against alpha."""
    p, alpha = num(r, "p_value"), num(r, "alpha")
    if not math.isfinite(p):
        return ""
    text = "< 0.001" if p < 0.001 else f"{p:.3g}"
    if not math.isfinite(alpha):
        return text
    verdict = "significant" if bool(r.get("significant", False)) else "not significant"
    return f"{text} ({verdict} at {alpha:g})"


def _score(r: pd.Series, column: str) -> str:
    value = num(r, column)
    return fmt(value) if math.isfinite(value) else ""


def _rows(r: pd.Series) -> str:
    n, new = num(r, "n_rows"), num(r, "n_new_rows")
    if not math.isfinite(n) or n == 0:
        return ""
    return f"{n:,.0f}" + (f" ({new:,.0f} new)" if math.isfinite(new) and new else "")


def decision_table(decisions: pd.DataFrame) -> pd.DataFrame:
    """The promotion decisions as given (newest first): who was compared with whom, on what, the
    evidence, the gates and the verdict."""
    rows = []
    for _, r in decisions.iterrows():
        deployment = _id(r.get("deployment_id"))
        promoted = _flag(r.get("promoted"))
        rows.append({
            "decided at (UTC)": _when(r["decided_at"]),
            "mode": _text(r.get("mode")),
            "challenger": model_of_run(r["challenger_model"], r["challenger_run_id"]),
            "deployed": model_of_run(r.get("deployed_model"), r.get("deployed_run_id")),
            "metric": _text(r.get("metric")),
            "challenger score": _score(r, "challenger_score"),
            "deployed score": _score(r, "deployed_score"),
            "difference [CI]": _difference(r),
            "p-value": _p_value(r),
            "test": _text(r.get("test")),
            "rows": _rows(r),
            "quality gate": _flag(r.get("quality_passed"), "passed", "FAILED"),
            "fairness gate": _flag(r.get("fairness_passed"), "passed", "FAILED"),
            "promoted": f"{promoted} (deployment {deployment})" if deployment else promoted,
            "reason": _text(r.get("reason")),
        })  # fmt: skip
    columns = ["decided at (UTC)", "mode", "challenger", "deployed", "metric", "challenger score",
               "deployed score", "difference [CI]", "p-value", "test", "rows", "quality gate",
               "fairness gate", "promoted", "reason"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------------------------
# what the page says about the deployed model


def _decision_about_run(data: ModelData) -> pd.Series | None:
    """The newest decision about the run's champion, if one was read."""
    d = data.decisions
    if d.empty:
        return None
    champion = str(data.champion["model_name"])
    mine = d[
        (d["challenger_run_id"].astype(str) == data.run_id)
        & (d["challenger_model"].astype(str) == champion)
    ]
    return None if mine.empty else mine.iloc[0]


def not_deployed_note(data: ModelData) -> str | None:
    """The warning for the top of the summary when the run's champion is not the deployed model
    (None when it is, or when the warehouse records no deployments)."""
    current = data.deployed
    champion = str(data.champion["model_name"])
    if current is None:
        return (
            f"Not deployed: no model of task {data.task} is deployed ({DEPLOYMENTS} holds none), "
            f"so neither is the champion {champion} of this page's run {data.run_id}."
            if data.governed
            else None
        )
    if data.run_is_deployed:
        return None
    text = (
        f"Not deployed: this page's run {data.run_id} and its champion {champion} are not what "
        f"serves task {data.task}; the deployed model is {describe_deployment(current)}."
    )
    if str(current["run_id"]) == data.run_id:
        text = (
            f"Not deployed: the champion {champion} of this page's run {data.run_id} is not what "
            f"serves task {data.task}; the deployed model is another candidate of the same run, "
            f"{describe_deployment(current)}."
        )
    decision = _decision_about_run(data)
    if decision is not None:
        verdict = "promoted" if bool(decision.get("promoted", False)) else "not promoted"
        reason = _text(decision.get("reason"))
        text += (
            f" Its promotion decision of {_when(decision['decided_at'])} UTC: {verdict}"
            f"{' (' + reason + ')' if reason else ''}."
        )
    return text + " See the Deployments section."


def deployed_summary_item(data: ModelData) -> tuple[str, str] | None:
    """The summary table's `deployed` row (None when no deployment was read)."""
    current = data.deployed
    if current is None:
        return None
    if data.run_is_deployed:
        return "deployed", f"yes (deployment {_id(current['deployment_id'])})"
    deployed = model_of_run(current["model_name"], current["run_id"])
    return "deployed", f"no: {deployed} is (deployment {_id(current['deployment_id'])})"


def _status_text(data: ModelData) -> str:
    """Which model is deployed now, and whether it is the page's run's champion."""
    current = data.deployed
    champion = str(data.champion["model_name"])
    n = len(data.deployments)
    text = (
        f"Deployed now: {describe_deployment(current)}; {n} deployment{'s' * (n != 1)} of "
        f"{data.task} in all. Every scoring path uses the current deployment (the highest "
        "deployment id)."
    )
    if data.run_is_deployed:
        return (
            text + f" This page's run {data.run_id} is the deployed one: its champion {champion}."
        )
    return text + (
        f" This page's run {data.run_id} (the latest, champion {champion}) is NOT the deployed one."
    )


def add_deployments_section(report: Report, data: ModelData) -> None:
    """The Deployments section: the deployed model, the history, the promotion decisions."""
    sec = report.section("Deployments", anchor="deployments")
    if data.deployed is None:
        reason = data.skipped.get("deployments", "no deployment was read")
        sec.add_note(f"Skipped the deployment history: {reason}.")
    else:
        sec.add_text(_status_text(data))
        sec.add_table(
            deployment_table(data.deployments),
            caption=(
                f"Every deployment of {data.task}, newest first ({DEPLOYMENTS}). Replaced: the "
                f"deployment that was current before; sha256: the first {SHA_SHOWN} hex digits "
                "of the artifact's hash, checked before the artifact is loaded."
            ),
        )
    if data.decisions.empty:
        reason = data.skipped.get("decisions", "no promotion decision was read")
        sec.add_note(f"Skipped the promotion decisions: {reason}.")
        return
    shown = len(data.decisions)
    which = (
        f"the newest {shown} of {data.n_decisions}"
        if data.n_decisions > shown
        else f"{shown} decision{'s' * (shown != 1)}"
    )
    sec.add_table(
        decision_table(data.decisions),
        caption=(
            f"Promotion decisions, newest first ({PROMOTION_DECISIONS}, {which}; at most "
            f"{DECISIONS_SHOWN} are listed). Both models are scored on the same labelled rows "
            "that neither learnt from (rows: how many, and how many are newer than the deployed "
            "model); difference: challenger minus deployed, with its 1 - alpha confidence "
            "interval; significant: a gain of the challenger at level alpha. Under mode auto a "
            "challenger is promoted only with a significant gain and passing quality and "
            "fairness gates; first: the task's first run, deployed; never: evidence recorded, "
            "nothing deployed; force: deployed whatever the evidence; manual: by hand (ml.promote)."
        ),
        max_rows=DECISIONS_SHOWN,
    )
    newest = data.decisions.iloc[0]
    checks = _text(newest.get("fairness_checks"))
    if checks:
        challenger = model_of_run(newest["challenger_model"], newest["challenger_run_id"])
        sec.add_text(f"The fairness gate's checks of the newest decision ({challenger}):")
        sec.add_preformatted("\n".join(checks.split("; ")))
