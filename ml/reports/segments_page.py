"""The segments page: the headline, the candidates and profiles tables and every plot of
`segments_plots`, drawn from `segments_data`'s frames and written as one static HTML page."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ml.core.config import PROJECT_ROOT
from ml.core.tables import (
    CUSTOMER_SEGMENTS,
    EXPLANATION_DEPTH,
    NO_ORDERS_SEGMENT,
    SEGMENTATION_RUNS,
)
from ml.reports.page import Report, render
from ml.reports.reading import read_then_draw
from ml.reports.segments_data import (
    DEFAULT_MAX_POINTS,
    DEFAULT_SEED,
    PROFILES_RELATION,
    TRUTH_RELATION,
    SegmentsData,
    collect_segments,
    contingency,
)
from ml.reports.segments_plots import (
    plot_ari,
    plot_contingency,
    plot_inertia,
    plot_projection,
    plot_projection_persona,
    plot_silhouette,
    plot_sizes,
    plot_stability,
    plot_zscores,
)

DEFAULT_OUTPUT = PROJECT_ROOT / "reports"
FILENAME = "segments.html"


def ari_meaning(ari: float | None) -> str:
    """A phrase saying how well an adjusted Rand index recovers the true groups."""
    if ari is None or pd.isna(ari):
        return "not available"
    if ari < 0.05:
        return "no better than chance"
    if ari < 0.2:
        return "weak agreement"
    if ari < 0.5:
        return "moderate agreement"
    if ari < 0.8:
        return "strong agreement"
    return "near-perfect recovery"


def _present(value: object) -> bool:
    return value is not None and not pd.isna(value)


def _how_chosen(runs: pd.DataFrame, chosen: pd.Series) -> str:
    """Why the chosen candidate won: stability (this version) or the silhouette (older runs)."""
    algorithms = sorted(runs["algorithm"].astype(str).unique())
    ks = runs["k"].astype(int)
    tried = f"{ks.min()}..{ks.max()}" if ks.max() > ks.min() else f"{ks.min()} only"
    what = f"{chosen['algorithm']}, k = {int(chosen['k'])}"
    pool = f"{' and '.join(algorithms)} with k {tried}"
    if _present(chosen.get("stability")):
        return (
            f"Chosen {what} (candidates: {pool}): the most stable segmentation"
            f" (stability {chosen['stability']:.3f}: adjusted Rand index between refits on two"
            " disjoint halves of the customers, 1 = the same segments whatever the draw), the"
            " smallest k among the near-ties; no truth is used."
        )
    return (
        f"Chosen {what} (candidates: {pool}): the best silhouette"
        f" ({chosen['silhouette']:.3f}; -1 to 1, higher = tighter, better separated clusters)."
    )


def headline(runs: pd.DataFrame) -> str:
    """One paragraph: the chosen method and k and why, the adjusted Rand index next to its
    supervised ceiling and what they mean, the tree."""
    chosen = runs.loc[runs["is_chosen"]].iloc[0]
    text = _how_chosen(runs, chosen)
    ari = chosen.get("adjusted_rand_index")
    if not _present(ari):
        text += (
            " Adjusted Rand index: not available (no true personas in the warehouse, e.g. your"
            " own data)."
        )
    else:
        text += (
            f" Adjusted Rand index against the simulator's personas: {ari:.3f}"
            f" ({ari_meaning(ari)}; 0 = chance agreement, 1 = perfect recovery of the personas,"
            " negative = worse than chance)"
        )
        ceiling = chosen.get("ari_ceiling")
        if _present(ceiling) and ceiling > 0:
            text += (
                f", {ari / ceiling:.0%} of the supervised ceiling {ceiling:.3f} (a classifier"
                " told the personas, cross-validated on the same behaviour)."
            )
        else:
            text += "."
        scored = runs.dropna(subset=["adjusted_rand_index"])
        best = scored.loc[scored["adjusted_rand_index"].idxmax()]
        if best.name != chosen.name:
            text += (
                f" The personas would be recovered best by {best['algorithm']} at k ="
                f" {int(best['k'])} (adjusted Rand {best['adjusted_rand_index']:.3f}); the"
                " choice never sees the personas."
            )
    acc = chosen.get("explanation_accuracy")
    if _present(acc):
        text += (
            f" A depth-{EXPLANATION_DEPTH} decision tree reproduces the segment of"
            f" {acc:.1%} of customers (rules at the end of the page)."
        )
    return text


def _candidates_table(runs: pd.DataFrame) -> pd.DataFrame:
    cols = ["algorithm", "k"]
    cols += [c for c in ("stability", "silhouette", "inertia", "bic") if runs[c].notna().any()]
    cols += [c for c in ("adjusted_rand_index", "ari_ceiling") if runs[c].notna().any()]
    table = runs[cols].copy()
    table["k"] = table["k"].astype("int64")
    table["chosen"] = np.where(runs["is_chosen"], "chosen", "")
    table["fit_seconds"] = runs["fit_seconds"]
    return table


def _profiles_table(profiles: pd.DataFrame) -> pd.DataFrame:
    return profiles.drop(columns=[c for c in ("run_id",) if c in profiles.columns])


def _run_subtitle(data: SegmentsData) -> str:
    c = data.chosen
    created = pd.Timestamp(c["created_at"]).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Latest ml.segment run {data.run_id} ({created}): {c['algorithm']} on"
        f" {int(c['n_clustered']):,} of {int(c['n_customers']):,} customers (the rest have no"
        f" orders yet), {len(data.features)} behavioural features, seed {int(c['seed'])}."
    )


def build_report(data: SegmentsData, title: str = "Customer segmentation") -> Report:
    """Draw every plot from collected data (no warehouse access)."""
    runs, k = data.runs, data.k
    report = Report(title=title, subtitle=_run_subtitle(data))
    report.data.update(runs=runs, segments=data.segments)

    sec = report.section("Choosing the method and k", anchor="choosing-k")
    sec.add_note(headline(runs))
    if runs["stability"].notna().any():
        fig, t = plot_stability(runs)
        sec.add_figure(
            fig,
            t,
            "Adjusted Rand index between the segmentations of two refits on disjoint seeded"
            " halves of the fit sample (mean of the pairs); the most stable candidate wins, the"
            " smallest k among near-ties.",
        )
    fig, t = plot_silhouette(runs)
    sec.add_figure(
        fig,
        t,
        "Mean silhouette of one seeded sample of clustered customers, the same for every"
        " candidate; recorded, not choosing (older runs chose by it).",
    )
    fig, t = plot_inertia(runs)
    sec.add_figure(
        fig,
        t,
        "Within-cluster sum of squares on the scaled features; it always falls as k grows.",
    )
    if runs["adjusted_rand_index"].notna().any():
        fig, t = plot_ari(runs)
        sec.add_figure(
            fig,
            t,
            f"Agreement of each candidate's clusters (plus '{NO_ORDERS_SEGMENT}') with the"
            f" personas of {TRUTH_RELATION}, and the supervised ceiling (dashed) where recorded;"
            " never used to choose.",
        )
    sec.add_table(
        _candidates_table(runs),
        caption=f"Candidates of run {data.run_id} ({SEGMENTATION_RUNS}).",
        formats={
            "stability": ".3f",
            "silhouette": ".4f",
            "inertia": ",.0f",
            "bic": ",.0f",
            "adjusted_rand_index": ".3f",
            "ari_ceiling": ".3f",
            "fit_seconds": ".2f",
        },
    )

    sec = report.section("Segment profiles", anchor="profiles")
    if data.profiles is not None:
        report.data["profiles"] = data.profiles
        stale = set(data.profiles.get("run_id", pd.Series(dtype=str)).astype(str)) - {data.run_id}
        if stale:
            sec.add_note(
                f"{PROFILES_RELATION} was built from run {', '.join(sorted(stale))}, not the"
                f" latest run {data.run_id}: rebuild it with"
                " `dbt build --select source:ml_segmentation+`."
            )
        sec.add_table(
            _profiles_table(data.profiles),
            caption=f"{PROFILES_RELATION}: size and mean traits and behaviour per segment.",
            formats={
                "customer_share": ".1%",
                "mean_age": ".1f",
                "mean_income": ",.0f",
                "mean_satisfaction": ".2f",
                "mean_total_spend": ",.0f",
                "mean_order_count": ".1f",
                "mean_recency_days": ".0f",
            },
        )
    else:
        sec.add_note(f"Skipped the profile table: {data.skipped['profiles']}.")
    fig, t = plot_sizes(data.segments, k)
    sec.add_figure(fig, t, f"From {CUSTOMER_SEGMENTS}, every customer of the run.")

    if data.zscores is not None:
        report.data["zscores"] = data.zscores
        fig, t = plot_zscores(data.zscores)
        n_clustered = int(data.chosen.get("n_clustered", 0))
        sec.add_figure(
            fig,
            t,
            "Every behaviour feature, scaled as ml.segment scaled it (its preprocessor on the"
            f" {n_clustered:,} clustered customers); red = above,"
            f" blue = below the average. '{NO_ORDERS_SEGMENT}' has no behaviour and is left out.",
        )
    else:
        sec.add_note(f"Skipped the standardised behaviour: {data.skipped['zscores']}.")

    sec = report.section("Projection", anchor="projection")
    proj = data.projection
    if proj is not None:
        report.data["projection"] = proj.points
        fig, t = plot_projection(proj, k)
        sec.add_figure(
            fig,
            t,
            "First two principal components of the scaled behaviour (PCA fitted by ml.segment on"
            f" all clustered customers, seed {int(data.chosen['seed'])});"
            f" '{NO_ORDERS_SEGMENT}' is not plotted. Clusters that overlap here may still separate"
            " in the other dimensions.",
        )
        if data.truth is not None:
            fig, t = plot_projection_persona(proj, data.truth)
            sec.add_figure(fig, t, "The same customers and axes, coloured by simulator persona.")
    else:
        sec.add_note(f"Skipped the projection: {data.skipped['projection']}.")
    if data.truth is not None:
        table = contingency(data.segments, data.truth)
        report.data["contingency"] = table
        fig, t = plot_contingency(table)
        sec.add_figure(
            fig,
            t,
            "Every customer of the run; a segment that matches a persona has one dark cell in"
            " its row.",
        )
    else:
        sec.add_note(f"Skipped the comparison with true personas: {data.skipped['truth']}.")

    sec = report.section("Decision-tree rules", anchor="rules")
    chosen = data.chosen
    rules, accuracy = chosen.get("explanation_rules"), chosen.get("explanation_accuracy")
    if rules is None or pd.isna(rules) or not str(rules).strip():
        sec.add_note(f"Skipped the rules: run {data.run_id} recorded none.")
    else:
        acc = "" if accuracy is None or pd.isna(accuracy) else f" accuracy {accuracy:.1%}"
        sec.add_text(
            f"A depth-{EXPLANATION_DEPTH} decision tree predicts each customer's segment from the"
            " unscaled behaviour (missing values filled as ml.segment fills them), so its"
            f" thresholds are in the warehouse's own units;{acc} on every customer says how"
            " faithfully these rules describe the segments."
        )
        sec.add_text(f"Rules ({SEGMENTATION_RUNS}, run {data.run_id}):")
        sec.add_preformatted(str(rules).rstrip())
    return report


def write_segments_report(
    out_dir: str | Path = DEFAULT_OUTPUT,
    embed: bool = True,
    *,
    path: str | Path | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    seed: int = DEFAULT_SEED,
) -> tuple[Path, int]:
    """Read the warehouse (read-only, closed before drawing), write `out_dir/segments.html`.

    Returns the page's path and its number of plots.
    """
    read = partial(collect_segments, max_points=max_points, seed=seed)
    report = read_then_draw(path, read, build_report)
    return render(report, out_dir, embed=embed, filename=FILENAME), len(report.figures)
