"""A task's model page: the summary and leaderboard tables, the evaluation and SHAP sections
drawn from `model_data`'s frames (the fairness and deployments sections are drawn by
`fairness_plots` and `deployments_section`), and the writer of one page per trained task."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from ml.core.config import PROJECT_ROOT
from ml.core.errors import UserError
from ml.core.tables import FEATURE_IMPORTANCE, MODEL_RUNS, SHAP_SAMPLE
from ml.core.tasks import BASE_MODELS, METRICS
from ml.reports.deployments_section import (
    add_deployments_section,
    deployed_summary_item,
    not_deployed_note,
)
from ml.reports.evaluation_plots import (
    plot_calibration,
    plot_confusion,
    plot_leaderboard,
    plot_per_class_scores,
    plot_pr_binary,
    plot_predicted_vs_actual,
    plot_probability_histogram,
    plot_residual_histogram,
    plot_residuals_vs_fitted,
    plot_roc_binary,
    plot_roc_multiclass,
)
from ml.reports.fairness_plots import add_fairness_section
from ml.reports.model_data import (
    DEFAULT_SEED,
    DEFAULT_SHAP_ROWS,
    ModelData,
    collect_model_data,
    direction,
    evaluation_class_labels,
    feature_order,
    fmt,
    model_label,
    models_in_order,
    negative_label,
    num,
    positive_label,
    registry_confusion,
    trained_tasks,
)
from ml.reports.page import FIGURES_DIR, Report, render
from ml.reports.reading import open_read_only
from ml.reports.shap_plots import (
    BEESWARM_FEATURES,
    DEPENDENCE_FEATURES,
    output_description,
    plot_beeswarm,
    plot_dependence,
    plot_importance,
)

DEFAULT_OUTPUT = PROJECT_ROOT / "reports" / "models"


def _test_rows(data: ModelData, model: str | None = None) -> pd.DataFrame:
    ev = data.evaluation
    rows = ev[ev["split"] == "test"]
    if model is not None:
        rows = rows[rows["model_name"] == model]
    return rows


def _best_other(data: ModelData) -> str | None:
    """The best candidate by selection score other than the champion (a base if possible)."""
    champion = str(data.champion["model_name"])
    others = [m for m in models_in_order(data.runs) if m != champion]
    bases = [m for m in others if m in BASE_MODELS]
    return (bases or others or [None])[0]


def _proba_matrix(rows: pd.DataFrame) -> np.ndarray:
    return np.vstack([np.asarray(p, dtype=float) for p in rows["probabilities"]])


# ---------------------------------------------------------------------------------------------
# tables


def headline(data: ModelData) -> str:
    """One sentence: the champion's primary metric on the test split against the oracle."""
    ch, metric = data.champion, data.metric
    test, oracle = num(ch, f"test_{metric}"), num(ch, f"oracle_{metric}")
    text = (
        f"Champion {ch['model_name']} of run {data.run_id}: test {metric} = {fmt(test)}"
        f" ({direction(metric)})"
    )
    if math.isfinite(oracle):
        text += f"; the oracle (the simulator's truth used as a model) reaches {fmt(oracle)}"
        if oracle:
            text += f", so test / oracle = {test / oracle:.3f}"
        text += "."
    else:
        text += "; no oracle (the task has no simulator truth)."
    return text


def summary_table(data: ModelData) -> pd.DataFrame:
    """The run at a glance, as (item, value) rows."""
    ch, metric = data.champion, data.metric
    test, oracle = num(ch, f"test_{metric}"), num(ch, f"oracle_{metric}")
    ratio = test / oracle if math.isfinite(oracle) and oracle else math.nan
    items: list[tuple[str, str]] = [
        ("task", data.task),
        ("problem", data.problem),
        ("target", f"{ch.get('target', '')} of {ch.get('relation', '')}"),
        ("champion", str(ch["model_name"])),
        ("run", data.run_id),
        ("trained at", str(ch.get("trained_at", ""))[:19]),
        ("primary metric", f"{metric} ({direction(metric)})"),
        ("selection score", fmt(num(ch, "selection_score"))),
        (f"test {metric}", fmt(test)),
        (f"oracle {metric}", fmt(oracle)),
        ("test / oracle", fmt(ratio, 3)),
    ]
    if data.problem == "binary":
        items.append(("decision threshold", fmt(num(ch, "threshold"))))
    sizes = [
        f"{int(num(ch, f'n_{s}')):,} {s}"
        for s in ("train", "val", "test")
        if math.isfinite(num(ch, f"n_{s}"))
    ]
    items.append(("rows", ", ".join(sizes) + f" ({fmt(num(ch, 'cv_folds'), 0)}-fold CV on train)"))
    if math.isfinite(num(ch, "n_features")):
        items.append(("features", f"{int(num(ch, 'n_features'))}"))
    if math.isfinite(num(ch, "seed")):
        items.append(("seed", f"{int(num(ch, 'seed'))}"))
    deployed = deployed_summary_item(data)
    if deployed is not None:
        items.append(deployed)
    return pd.DataFrame(items, columns=["item", "value"]).astype("str")


def leaderboard_table(data: ModelData) -> tuple[pd.DataFrame, dict[str, str]]:
    """Every candidate (best selection score first) and the oracle: the primary metric's CV
    mean +- sd, selection score, validation, test and test / oracle, then the other metrics on
    the test split. Returns the table and its column formats."""
    metric, runs = data.metric, data.runs
    champion = str(data.champion["model_name"])
    others = [m for m in METRICS.get(data.problem, ()) if m != metric]
    oracle = num(data.champion, f"oracle_{metric}")
    rows = []
    for _, r in runs.iterrows():
        mean, std = num(r, f"cv_{metric}_mean"), num(r, f"cv_{metric}_std")
        test = num(r, f"test_{metric}")
        row: dict[str, Any] = {
            "model": model_label(str(r["model_name"]), champion),
            f"cv {metric} (mean ± sd)": f"{fmt(mean)} ± {fmt(std)}",
            "selection": num(r, "selection_score"),
            f"val {metric}": num(r, f"val_{metric}"),
            f"test {metric}": test,
            "test / oracle": test / oracle if math.isfinite(oracle) and oracle else math.nan,
        }
        for m in others:
            row[f"test {m}"] = num(r, f"test_{m}")
        if data.problem == "binary":
            row["threshold"] = num(r, "threshold")
        row["fit s"] = num(r, "fit_seconds")
        rows.append(row)
    if math.isfinite(oracle):
        row = {"model": "oracle (simulator's truth)", f"cv {metric} (mean ± sd)": ""}
        row[f"test {metric}"] = oracle
        for m in others:
            row[f"test {m}"] = num(data.champion, f"oracle_{m}")
        rows.append(row)
    table = pd.DataFrame(rows)
    for col in table.columns[2:]:
        table[col] = pd.to_numeric(table[col], errors="coerce").astype(float)
    empty = [c for c in table.columns[2:] if table[c].isna().all()]
    table = table.drop(columns=empty)
    formats = {c: ".4f" for c in table.columns[2:]}
    formats.update({"test / oracle": ".3f", "fit s": ".2f", "threshold": ".3f"})
    return table, formats


# ---------------------------------------------------------------------------------------------
# the sections and the page


def _binary_confusion(data: ModelData, matrix: np.ndarray, threshold: float) -> tuple[Any, str]:
    positive = positive_label(data.champion)
    champion = str(data.champion["model_name"])
    return plot_confusion(
        matrix,
        [negative_label(positive), positive],
        "Confusion matrix of the champion at its threshold",
        f"({champion}, threshold {threshold:.3f}, test split, n = {int(np.sum(matrix)):,})",
        f"predicted class (probability >= {threshold:.3f} means {positive})",
    )


def _evaluation_section(report: Report, data: ModelData) -> None:
    sec = report.section("Evaluation on the test split", anchor="evaluation")
    if "evaluation" in data.skipped:
        sec.add_note(f"Skipped the evaluation plots: {data.skipped['evaluation']}.")
        matrix = registry_confusion(data.champion)
        if data.problem == "binary" and matrix is not None:
            fig, t = _binary_confusion(data, matrix, num(data.champion, "threshold"))
            sec.add_figure(fig, t, f"From the test_confusion counts in {MODEL_RUNS}.")
        return
    test = _test_rows(data)
    champion = str(data.champion["model_name"])
    champ_rows = test[test["model_name"] == champion]
    if champ_rows.empty:
        sec.add_note(f"Skipped the evaluation plots: no test predictions of {champion}.")
        return
    models = [m for m in models_in_order(data.runs) if m in set(test["model_name"])]
    target = str(data.champion.get("target", "target"))
    sec.add_text(
        f"Every candidate was fitted on the training split only and scored on the "
        f"{len(champ_rows):,} held-out test rows; these are the predictions the leaderboard's "
        "test metrics come from. (The deployed champion was then refitted on every labelled row.)"
    )
    if data.problem == "binary":
        positive = positive_label(data.champion)
        negative = negative_label(positive)
        fig, t = plot_roc_binary(test, models, champion)
        sec.add_figure(fig, t, "Thick line: the champion. Closer to the top-left corner is better.")
        fig, t = plot_pr_binary(test, models, champion, positive)
        sec.add_figure(fig, t, "AP: average precision. The dashed line is a random ranking.")
        y = champ_rows["actual"].to_numpy(int)
        p = champ_rows["predicted"].to_numpy(float)
        threshold = num(data.champion, "threshold")
        if not math.isfinite(threshold):
            threshold = float(champ_rows["threshold"].iloc[0])
        matrix = skm.confusion_matrix(y, (p >= threshold).astype(int), labels=[0, 1])
        fig, t = _binary_confusion(data, matrix, threshold)
        sec.add_figure(
            fig,
            t,
            "The threshold was chosen on the training folds and validation rows "
            "(max F1, or min cost with --cost-fp/--cost-fn).",
        )
        curves = [(champion, y, p)]
        other = _best_other(data)
        if other is not None:
            rows = test[test["model_name"] == other]
            curves.append((other, rows["actual"].to_numpy(int), rows["predicted"].to_numpy(float)))
        fig, t = plot_calibration(
            curves,
            champion,
            f"mean predicted probability of {positive} (per bin)",
            f"observed share of {positive} (per bin)",
            "Calibration (reliability diagram)",
        )
        sec.add_figure(
            fig,
            t,
            f"The champion and the best other candidate ({other}). On the diagonal, a "
            "predicted 20 % happens 20 % of the time; ECE: expected calibration error, the mean "
            "gap to the diagonal weighted by the rows of each bin.",
        )
        fig, t = plot_probability_histogram(y, p, threshold, champion, positive, negative)
        sec.add_figure(fig, t, "Each class's bars sum to 1; good separation puts them apart.")
    elif data.problem == "multiclass":
        labels = data.class_labels or evaluation_class_labels(data.evaluation) or []
        y = champ_rows["actual"].to_numpy(int)
        proba = _proba_matrix(champ_rows)
        labels = labels + [f"class {i}" for i in range(len(labels), proba.shape[1])]
        predicted = proba.argmax(axis=1)
        fig, t = plot_roc_multiclass(y, proba, labels, champion)
        sec.add_figure(fig, t, "Each class's probability ranks that class against all others.")
        k = len(labels)
        matrix = skm.confusion_matrix(y, predicted, labels=list(range(k)))
        fig, t = plot_confusion(
            matrix,
            labels,
            "Confusion matrix of the champion",
            f"({champion}, most probable class, test split, n = {len(y):,})",
            "predicted class (most probable)",
        )
        sec.add_figure(
            fig, t, "Rows: the actual class; the diagonal holds the correct predictions."
        )
        curves = [(champion, (predicted == y).astype(int), proba.max(axis=1))]
        other = _best_other(data)
        if other is not None:
            rows = test[test["model_name"] == other]
            op = _proba_matrix(rows)
            curves.append(
                (other, (op.argmax(1) == rows["actual"].to_numpy(int)).astype(int), op.max(axis=1))
            )
        fig, t = plot_calibration(
            curves,
            champion,
            "confidence: probability of the predicted class (mean per bin)",
            "accuracy: share of correct predictions (per bin)",
            "Calibration of the predicted class's confidence",
            brier=False,
        )
        sec.add_figure(
            fig,
            t,
            f"The champion and the best other candidate ({other}). On the diagonal, predictions "
            "made with 80 % confidence are right 80 % of the time; ECE: expected calibration "
            "error, the mean gap to the diagonal weighted by the rows of each bin.",
        )
        fig, t = plot_per_class_scores(y, predicted, labels, champion)
        sec.add_figure(fig, t)
    else:
        actual = champ_rows["actual"].to_numpy(float)
        predicted = champ_rows["predicted"].to_numpy(float)
        fig, t = plot_predicted_vs_actual(actual, predicted, target, champion)
        sec.add_figure(fig, t, "Points on the dashed line are predicted exactly.")
        fig, t = plot_residuals_vs_fitted(actual, predicted, target, champion)
        sec.add_figure(fig, t, "A binned mean away from zero shows where the model is biased.")
        fig, t = plot_residual_histogram(actual, predicted, target, champion)
        sec.add_figure(fig, t)


def _shap_section(report: Report, data: ModelData) -> None:
    sec = report.section("Explanations (SHAP)", anchor="shap")
    champion = str(data.champion["model_name"])
    space = (
        str(data.importance["output_space"].iloc[0])
        if not data.importance.empty and "output_space" in data.importance.columns
        else (data.shap.output_space if data.shap is not None else "value")
    )
    described = output_description(space, data.problem, data.champion)
    sec.add_text(
        f"SHAP values split each prediction of the champion ({champion}) into additive "
        f"contributions of the features, in the {space} space ({described}): the base value "
        "plus a row's SHAP values is the model's output for that row."
        + (
            " Multiclass: each row explains the probability of its predicted class."
            if data.problem == "multiclass"
            else ""
        )
    )
    if "importance" in data.skipped:
        sec.add_note(f"Skipped the global importance: {data.skipped['importance']}.")
    else:
        fig, t = plot_importance(data.importance, described, champion)
        sec.add_figure(fig, t, f"From {FEATURE_IMPORTANCE}, computed by ml.train.")
    shap = data.shap
    if shap is None:
        reason = data.skipped.get("shap", "no sample was read")
        sec.add_note(f"Skipped the beeswarm and dependence plots: {reason}.")
        return
    described = output_description(shap.output_space, data.problem, data.champion)
    order = feature_order(data)
    fig, t = plot_beeswarm(shap, order[:BEESWARM_FEATURES], described, seed=data.seed)
    sec.add_figure(
        fig,
        t,
        f"{_shap_rows_text(data)} Dots right of 0 push the prediction up.",
    )
    for rank, feature in enumerate(order[:DEPENDENCE_FEATURES], start=1):
        fig, t = plot_dependence(shap, feature, described, rank, seed=data.seed + rank)
        sec.add_figure(fig, t)


def _shap_rows_text(data: ModelData) -> str:
    """Which rows the beeswarm shows: those ml.train explained, or a sample of them."""
    shap, relation = data.shap, data.champion.get("relation", "")
    n = len(shap.values)
    if n < shap.stored_rows:
        return (
            f"A seeded sample (seed {data.seed}) of {n:,} of the {shap.stored_rows:,} rows of "
            f"{relation} that ml.train explained with the champion ({SHAP_SAMPLE})."
        )
    return (
        f"The {n:,} rows of {relation} that ml.train explained with the champion ({SHAP_SAMPLE})."
    )


def build_report(data: ModelData) -> Report:
    """Draw the page of one task from collected data (no warehouse access)."""
    ch = data.champion
    champion, metric = str(ch["model_name"]), data.metric
    report = Report(
        title=f"Model report: {data.task}",
        subtitle=(
            f"{data.problem} task: {ch.get('target', '')} of {ch.get('relation', '')}. "
            f"Run {data.run_id}, champion {champion}."
        ),
        data={"runs": data.runs, "evaluation": data.evaluation, "importance": data.importance},
    )
    sec = report.section("Summary", anchor="summary")
    warning = not_deployed_note(data)
    if warning is not None:
        sec.add_note(warning)
    sec.add_text(headline(data))
    sec.add_table(summary_table(data), caption="The latest run of the task (ml.model_runs).")
    table, formats = leaderboard_table(data)
    sec.add_table(
        table,
        caption=(
            f"Leaderboard, best selection score first. Selection: {metric} on the pooled "
            "out-of-fold and validation predictions (what picked the champion); test: the "
            "held-out 20 %; the oracle row scores the simulator's truth on the same test rows."
        ),
        formats=formats,
    )
    sec = report.section("Leaderboard", anchor="leaderboard")
    fig, t = plot_leaderboard(data.runs, metric, champion, num(ch, f"oracle_{metric}"))
    sec.add_figure(
        fig,
        t,
        "Circles: mean over the cross-validation folds of the training split, bars ± 1 sd; "
        "diamonds: the test split.",
    )
    _evaluation_section(report, data)
    _shap_section(report, data)
    add_fairness_section(report, data)
    add_deployments_section(report, data)
    return report


def render_page(report: Report, out_dir: Path, task: str, *, embed: bool = True) -> Path:
    """Write `out_dir/<task>.html`. Not embedded: the PNGs go to `out_dir/figures/<task>/`
    (each task its own folder, so pages in one folder do not replace each other's plots)."""
    return render(
        report, out_dir, embed=embed, filename=f"{task}.html", figures_dir=f"{FIGURES_DIR}/{task}"
    )


def write_model_reports(
    out_dir: str | Path = DEFAULT_OUTPUT,
    tasks: list[str] | None = None,
    embed: bool = True,
    *,
    shap_rows: int = DEFAULT_SHAP_ROWS,
    seed: int = DEFAULT_SEED,
    path: str | Path | None = None,
) -> list[tuple[Path, int]]:
    """Write `out_dir/<task>.html` for each task (default: every task with a champion).

    The warehouse is read (read-only) and closed before anything is drawn. Returns (page,
    number of plots) per task. Raises `UserError` when nothing is trained, a task is unknown or
    the folder is not writable.
    """
    with open_read_only(path) as wh:
        latest = trained_tasks(wh)
        chosen = list(dict.fromkeys(tasks)) if tasks else list(latest)
        unknown = [t for t in chosen if t not in latest]
        if unknown:
            raise UserError(
                f"task {unknown[0]!r} has no trained champion in {MODEL_RUNS} "
                f"(trained: {', '.join(latest)})"
            )
        collected = [
            collect_model_data(wh, t, shap_rows=shap_rows, seed=seed, latest=latest) for t in chosen
        ]
    pages = []
    for data in collected:
        report = build_report(data)
        pages.append(
            (render_page(report, Path(out_dir), data.task, embed=embed), len(report.figures))
        )
    return pages
