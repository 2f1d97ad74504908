"""The customer segmentation report: one static HTML page with the plots of the latest `ml.segment`.

`python -m scripts.report_segments [--output reports]` reads the warehouse (`WAREHOUSE_PATH`,
read-only; the connection is closed before anything is computed or drawn) and writes
`segments.html` with:

- how k was chosen: silhouette and inertia (elbow) by k, the adjusted Rand index against the
  simulator's personas by k, a table of the candidates and a headline;
- what the segments are: `marts.segment_profiles`, the mean standardised behaviour of each
  segment (the space k-means clustered in) and the segment sizes;
- where they lie: a PCA projection of the same scaled features (`ml.segment.build_preprocessor`
  fitted on the clustered customers, as k-means was) for a seeded sample of at most
  `--max-points` customers, coloured by segment and, when `sim.customer_truth` exists, by true
  persona, plus the segment x persona contingency table;
- how to read them: the depth-3 decision-tree rules and their accuracy.

Customers without orders form the fixed segment "no orders yet": they are counted in the sizes
and the contingency table but have no behaviour to project. A part whose table is missing
(`marts.segment_profiles` before the second `dbt build`, `sim.customer_truth` for your own data)
is skipped with a note on the page.

Exit codes: 0 written; 2 a user error (no warehouse, locked, no segmentation yet, output not
writable), printed as one line.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.ticker import FuncFormatter, MaxNLocator
from sklearn.decomposition import PCA

from ml import config, warehouse
from ml.cli import ArgumentParser, non_negative_int, positive_int, run
from ml.errors import UserError
from ml.segment import (
    BEHAVIOUR_FEATURES,
    CUSTOMER_SEGMENTS,
    EXPLANATION_DEPTH,
    FEATURES_RELATION,
    NO_ORDERS_SEGMENT,
    SEGMENTATION_RUNS,
    TRUTH_RELATION,
    behaviour_frame,
    build_preprocessor,
)
from ml.warehouse import qualified, quote_ident, relation_exists
from scripts.report_html import Report, new_figure, render

DEFAULT_OUTPUT = config.PROJECT_ROOT / "reports"
FILENAME = "segments.html"
DEFAULT_MAX_POINTS = 5_000
DEFAULT_SEED = 0
PROFILES_RELATION = "marts.segment_profiles"
UNKNOWN_PERSONA = "(no persona)"

ACCENT = "#3b6ea8"
HIGHLIGHT = "#d1495b"
NO_ORDERS_COLOUR = "#9e9e9e"
#: Segment colours by cluster_id (tab10), persona colours from another palette (Dark2), so a
#: persona is never mistaken for the segment of the same colour.
SEGMENT_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#7f7f7f",
)
PERSONA_COLOURS = (
    "#1b9e77",
    "#d95f02",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#e6ab02",
    "#a6761d",
    "#666666",
)
#: The heatmap's colour scale saturates at this many standard deviations (values still printed).
Z_LIMIT = 2.0


# ---------------------------------------------------------------------------------------------
# collect: every query, with the connection open; returns plain frames


@dataclass
class SegmentsData:
    """What the report is drawn from: the latest run's candidates, its customers, the marts."""

    run_id: str
    runs: pd.DataFrame  # one row per candidate k of the latest run, by k
    segments: pd.DataFrame  # customer_id, segment, cluster_id (every customer of the run)
    features: list[str]
    behaviour: pd.DataFrame | None = None  # customer_id, cluster_id, segment, *features
    truth: pd.DataFrame | None = None  # customer_id, persona
    profiles: pd.DataFrame | None = None  # marts.segment_profiles
    skipped: dict[str, str] = field(default_factory=dict)
    max_points: int = DEFAULT_MAX_POINTS
    seed: int = DEFAULT_SEED

    @property
    def chosen(self) -> pd.Series:
        return self.runs.loc[self.runs["is_chosen"]].iloc[0]

    @property
    def k(self) -> int:
        return int(self.chosen["k"])


def _df(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def latest_run(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows of the most recent run (by `created_at`, then `run_id`), ordered by k.

    Raises `UserError` when there is no run, or the latest one has no chosen k.
    """
    if runs.empty:
        raise UserError(f"{SEGMENTATION_RUNS} is empty: run `python -m ml.segment` first")
    stamps = runs.groupby("run_id")["created_at"].max().reset_index()
    newest = stamps.sort_values(["created_at", "run_id"], kind="stable").iloc[-1]["run_id"]
    rows = runs[runs["run_id"] == newest].sort_values("k", kind="stable").reset_index(drop=True)
    rows["is_chosen"] = rows["is_chosen"].fillna(False).astype(bool)
    if rows["is_chosen"].sum() != 1:
        raise UserError(
            f"run {newest} in {SEGMENTATION_RUNS} has no single chosen k: "
            "run `python -m ml.segment` again"
        )
    return rows


def _features_of(chosen: pd.Series) -> list[str]:
    try:
        features = json.loads(chosen["features"])
    except (TypeError, ValueError):
        features = None
    if not isinstance(features, list) or not features:
        return list(BEHAVIOUR_FEATURES)
    return [str(f) for f in features]


def collect_segments(
    con: duckdb.DuckDBPyConnection,
    *,
    max_points: int = DEFAULT_MAX_POINTS,
    seed: int = DEFAULT_SEED,
) -> SegmentsData:
    """Read the latest segmentation run and what the report draws next to it.

    Raises `UserError` when `ml.segmentation_runs` or `ml.customer_segments` is missing or does
    not hold the latest run.
    """
    if max_points < 1:
        raise UserError(f"max_points must be at least 1, got {max_points}")
    for rel in (SEGMENTATION_RUNS, CUSTOMER_SEGMENTS):
        if not relation_exists(con, rel):
            raise UserError(f"{rel} not found in the warehouse: run `python -m ml.segment` first")
    runs = latest_run(_df(con, f"select * from {qualified(SEGMENTATION_RUNS)}"))
    run_id = str(runs.at[0, "run_id"])
    segments = _df(
        con,
        "select customer_id, cast(segment as varchar) as segment, cluster_id"
        f" from {qualified(CUSTOMER_SEGMENTS)} where run_id = ? order by customer_id",
        [run_id],
    )
    if segments.empty:
        held = con.execute(
            f"select distinct run_id from {qualified(CUSTOMER_SEGMENTS)} limit 1"
        ).fetchall()
        which = f"run {held[0][0]}" if held else "no customers"
        raise UserError(
            f"{CUSTOMER_SEGMENTS} holds {which}, not the latest run {run_id} of "
            f"{SEGMENTATION_RUNS}: run `python -m ml.segment` again"
        )
    data = SegmentsData(
        run_id=run_id,
        runs=runs,
        segments=segments,
        features=_features_of(runs.loc[runs["is_chosen"]].iloc[0]),
        max_points=max_points,
        seed=seed,
    )

    if not relation_exists(con, FEATURES_RELATION):
        data.skipped["behaviour"] = f"{FEATURES_RELATION} not found in the warehouse"
    else:
        cols = ", ".join(f"f.{quote_ident(c)}" for c in data.features)
        try:
            data.behaviour = _df(
                con,
                "select s.customer_id, s.cluster_id, cast(s.segment as varchar) as segment,"
                f" {cols} from {qualified(CUSTOMER_SEGMENTS)} as s"
                f" inner join {qualified(FEATURES_RELATION)} as f"
                " on s.customer_id = f.customer_id"
                " where s.run_id = ? and s.cluster_id < ? order by s.customer_id",
                [run_id, data.k],
            )
        except duckdb.BinderException as err:
            first = str(err).splitlines()[0]
            data.skipped["behaviour"] = f"{FEATURES_RELATION} lacks a feature of the run ({first})"

    if relation_exists(con, TRUTH_RELATION):
        data.truth = _df(
            con,
            f"select customer_id, cast(persona as varchar) as persona"
            f" from {qualified(TRUTH_RELATION)}",
        )
    else:
        data.skipped["truth"] = (
            f"{TRUTH_RELATION} not found (your own data has no true personas to compare with)"
        )

    if relation_exists(con, PROFILES_RELATION):
        data.profiles = _df(
            con, f"select * from {qualified(PROFILES_RELATION)} order by cluster_id"
        )
    else:
        data.skipped["profiles"] = (
            f"{PROFILES_RELATION} not found: build it with "
            "`dbt build --select source:ml_segmentation+` after `python -m ml.segment`"
        )
    return data


# ---------------------------------------------------------------------------------------------
# compute: pure functions of the collected frames


def sample_rows(n: int, max_points: int, seed: int) -> np.ndarray:
    """Sorted positions of a seeded sample of at most `max_points` of `n` rows (all when fewer)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


@dataclass
class Projection:
    """Scaled behaviour of the clustered customers: mean z per segment and a 2-D PCA sample."""

    zscores: pd.DataFrame  # rows = segment names (cluster order), columns = features
    points: pd.DataFrame  # customer_id, cluster_id, segment, pc1, pc2 (the sample)
    explained: tuple[float, float]  # share of variance of PC1 and PC2
    n_clustered: int


def project(
    behaviour: pd.DataFrame, features: Sequence[str], max_points: int, seed: int
) -> Projection:
    """Scale the features as `ml.segment` did (its preprocessor fitted on the clustered
    customers), average them per segment and project a seeded sample onto the first two
    principal components (fitted on every clustered customer)."""
    frame = behaviour.sort_values("customer_id", kind="stable").reset_index(drop=True)
    raw = behaviour_frame(frame, features)
    scaled = build_preprocessor(list(features)).fit_transform(raw)
    X = scaled.to_numpy(dtype=np.float64)
    names = (
        frame[["cluster_id", "segment"]]
        .drop_duplicates("cluster_id")
        .sort_values("cluster_id")
        .set_index("cluster_id")["segment"]
    )
    means = pd.DataFrame(X, columns=scaled.columns).groupby(frame["cluster_id"].to_numpy()).mean()
    means.index = [str(names[c]) for c in means.index]
    pca = PCA(n_components=2, random_state=seed).fit(X)
    idx = sample_rows(len(frame), max_points, seed)
    xy = pca.transform(X[idx])
    points = frame.loc[idx, ["customer_id", "cluster_id", "segment"]].reset_index(drop=True)
    points["pc1"], points["pc2"] = xy[:, 0], xy[:, 1]
    ratio = pca.explained_variance_ratio_
    return Projection(means, points, (float(ratio[0]), float(ratio[1])), len(frame))


def contingency(segments: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Customers per segment (rows, by cluster_id) x true persona (columns, by size)."""
    merged = segments.merge(truth[["customer_id", "persona"]], on="customer_id", how="left")
    persona = merged["persona"].astype(object).where(merged["persona"].notna(), UNKNOWN_PERSONA)
    table = pd.crosstab(merged["cluster_id"], persona)
    order = table.sum().sort_values(ascending=False, kind="stable").index.tolist()
    if UNKNOWN_PERSONA in order:  # last, whatever its size
        order = [p for p in order if p != UNKNOWN_PERSONA] + [UNKNOWN_PERSONA]
    names = segments.drop_duplicates("cluster_id").set_index("cluster_id")["segment"]
    table = table[order].sort_index()
    table.index = [str(names[c]) for c in table.index]
    table.index.name, table.columns.name = "segment", "persona"
    return table


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


def headline(runs: pd.DataFrame) -> str:
    """One paragraph: the chosen k and why, the adjusted Rand index and what it means, the tree."""
    chosen = runs.loc[runs["is_chosen"]].iloc[0]
    k = int(chosen["k"])
    ks = runs["k"].astype(int)
    tried = f"{ks.min()}..{ks.max()}" if ks.max() > ks.min() else f"{ks.min()} only"
    text = (
        f"Chosen k = {k} (candidates {tried}): the best silhouette ({chosen['silhouette']:.3f};"
        " -1 to 1, higher = tighter, better separated clusters)."
    )
    ari = chosen.get("adjusted_rand_index")
    if ari is None or pd.isna(ari):
        text += (
            " Adjusted Rand index: not available (no true personas in the warehouse, e.g. your"
            " own data)."
        )
    else:
        text += (
            f" Adjusted Rand index against the simulator's personas: {ari:.3f}"
            f" ({ari_meaning(ari)}; 0 = chance agreement, 1 = perfect recovery of the personas,"
            " negative = worse than chance)."
        )
        scored = runs.dropna(subset=["adjusted_rand_index"])
        best = scored.loc[scored["adjusted_rand_index"].idxmax()]
        if int(best["k"]) != k:
            text += (
                f" The personas would be recovered best at k = {int(best['k'])} (adjusted Rand"
                f" {best['adjusted_rand_index']:.3f}); k is chosen by the silhouette, which never"
                " sees the personas."
            )
    acc = chosen.get("explanation_accuracy")
    if acc is not None and not pd.isna(acc):
        text += (
            f" A depth-{EXPLANATION_DEPTH} decision tree reproduces the segment of"
            f" {acc:.1%} of customers (rules at the end of the page)."
        )
    return text


# ---------------------------------------------------------------------------------------------
# plots: pure functions returning (figure, title)


def _segment_colour(cluster_id: int, k: int) -> str:
    return NO_ORDERS_COLOUR if cluster_id >= k else SEGMENT_COLOURS[cluster_id % 10]


def _thousands(ax: Any, axis: str = "y") -> None:
    fmt = FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _wrap(name: str, width: int = 16) -> str:
    return "\n".join(textwrap.wrap(name, width)) or name


def _score_by_k(
    runs: pd.DataFrame, column: str, ylabel: str, title: str, note: str = ""
) -> tuple[Any, str]:
    """A line with markers over k; the chosen k as a large red marker with its value."""
    df = runs.dropna(subset=[column])
    fig, ax = new_figure(figsize=(6.4, 4.0))
    ax.plot(df["k"], df[column], marker="o", color=ACCENT, label=column.replace("_", " "))
    chosen = runs.loc[runs["is_chosen"]].iloc[0]
    if not pd.isna(chosen[column]):
        ax.plot(
            [chosen["k"]],
            [chosen[column]],
            marker="o",
            markersize=13,
            markerfacecolor="none",
            markeredgewidth=2.5,
            color=HIGHLIGHT,
            linestyle="none",
            label=f"chosen k = {int(chosen['k'])}",
        )
        ax.annotate(
            f"{chosen[column]:,.3f}" if abs(chosen[column]) < 1000 else f"{chosen[column]:,.0f}",
            (chosen["k"], chosen[column]),
            textcoords="offset points",
            xytext=(10, 8),
            color=HIGHLIGHT,
            fontsize=9,
        )
    ax.margins(x=0.08, y=0.15)  # room for the chosen marker and its value
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("k (number of k-means clusters)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    _thousands(ax)
    ax.set_title(title + note, fontsize=11)
    return fig, title


def plot_silhouette(runs: pd.DataFrame) -> tuple[Any, str]:
    size = int(runs["silhouette_sample_size"].iloc[0])
    return _score_by_k(
        runs,
        "silhouette",
        "mean silhouette (-1 to 1, unitless)",
        "Silhouette by k",
        f" (higher is better; sample of {size:,})",
    )


def plot_inertia(runs: pd.DataFrame) -> tuple[Any, str]:
    return _score_by_k(
        runs,
        "inertia",
        "inertia (sum of squared distances, scaled units²)",
        "Inertia by k (elbow)",
        " (lower = tighter; look for the bend)",
    )


def plot_ari(runs: pd.DataFrame) -> tuple[Any, str]:
    fig, title = _score_by_k(
        runs,
        "adjusted_rand_index",
        "adjusted Rand index (0 = chance, 1 = perfect)",
        "Adjusted Rand index vs. true personas by k",
        " (diagnostic only)",
    )
    fig.axes[0].axhline(0, color="black", linewidth=0.8)
    return fig, title


def plot_zscores(zscores: pd.DataFrame) -> tuple[Any, str]:
    """Heatmap: mean standardised feature (rows) per segment (columns), values annotated."""
    mat = zscores.T  # features x segments
    n_feat, n_seg = mat.shape
    fig, ax = new_figure(figsize=(max(6.5, 1.35 * n_seg + 4.2), 0.3 * n_feat + 2.2))
    values = mat.to_numpy(dtype=float)
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-Z_LIMIT, vmax=Z_LIMIT)
    im = ax.imshow(np.clip(values, -Z_LIMIT, Z_LIMIT), cmap="RdBu_r", norm=norm, aspect="auto")
    for i in range(n_feat):
        for j in range(n_seg):
            v = values[i, j]
            ax.text(
                j,
                i,
                f"{v:+.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if abs(v) > 1.2 else "black",
            )
    ax.set_xticks(range(n_seg), [_wrap(s) for s in mat.columns], fontsize=8)
    ax.set_yticks(range(n_feat), mat.index, fontsize=8)
    ax.xaxis.set_ticks_position("top")
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("segment (k-means cluster)")
    ax.set_ylabel("behavioural feature (log1p of counts, money, days; then standardised)")
    fig.colorbar(
        im,
        ax=ax,
        shrink=0.6,
        label=f"segment mean (z-score, standard deviations; colour capped at ±{Z_LIMIT:g})",
    )
    title = "Standardised mean behaviour per segment"
    ax.set_title(f"{title} (0 = average clustered customer)", fontsize=11)
    return fig, title


def plot_sizes(segments: pd.DataFrame, k: int) -> tuple[Any, str]:
    """Horizontal bars: customers per segment (no-orders segment grey), count and share."""
    sizes = (
        segments.groupby(["cluster_id", "segment"])
        .size()
        .reset_index(name="n")
        .sort_values("cluster_id")
    )
    total = int(sizes["n"].sum())
    fig, ax = new_figure(figsize=(7.5, 0.5 * len(sizes) + 1.6))
    y = np.arange(len(sizes))
    counts = sizes["n"].to_numpy()
    ax.barh(y, counts, color=[_segment_colour(int(c), k) for c in sizes["cluster_id"]])
    ax.set_yticks(y, sizes["segment"].astype(str).tolist(), fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, counts.max() * 1.28)
    for yi, c in zip(y, counts, strict=True):
        ax.text(c, yi, f" {int(c):,} ({c / total:.1%})", va="center", fontsize=8)
    ax.set_xlabel("customers")
    ax.set_ylabel("segment")
    _thousands(ax, "x")
    ax.grid(axis="x", alpha=0.3)
    title = "Segment sizes"
    ax.set_title(f"{title} ({total:,} customers; grey = no orders, not clustered)", fontsize=11)
    return fig, title


def _pc_labels(ax: Any, explained: tuple[float, float]) -> None:
    ax.set_xlabel(f"PC1 ({explained[0]:.1%} of variance; scaled units)")
    ax.set_ylabel(f"PC2 ({explained[1]:.1%} of variance; scaled units)")


def _scatter(ax: Any, xy: pd.DataFrame, groups: list[tuple[str, Any, str]]) -> None:
    """`groups`: (label, boolean mask, colour); smaller groups drawn last, so they stay visible."""
    size = 6 if len(xy) > 2000 else 12
    for label, mask, colour in sorted(groups, key=lambda g: -int(g[1].sum())):
        part = xy[mask]
        ax.scatter(
            part["pc1"],
            part["pc2"],
            s=size,
            alpha=0.55,
            color=colour,
            linewidths=0,
            label=f"{label} ({len(part):,})",
        )


def plot_projection(proj: Projection, k: int) -> tuple[Any, str]:
    pts = proj.points
    groups = [
        (str(seg), (pts["cluster_id"] == cid).to_numpy(), _segment_colour(int(cid), k))
        for cid, seg in pts.drop_duplicates("cluster_id")
        .sort_values("cluster_id")[["cluster_id", "segment"]]
        .itertuples(index=False)
    ]
    fig, ax = new_figure(figsize=(6.6, 6.4))
    _scatter(ax, pts, groups)
    _pc_labels(ax, proj.explained)
    _outside_legend(fig, ax, "segment (customers shown)")
    ax.grid(alpha=0.3)
    title = "PCA projection coloured by segment"
    ax.set_title(f"{title}\n({_shown(proj)})", fontsize=11)
    return fig, title


def plot_projection_persona(proj: Projection, truth: pd.DataFrame) -> tuple[Any, str]:
    pts = proj.points.merge(truth[["customer_id", "persona"]], on="customer_id", how="left")
    persona = pts["persona"].astype(object).where(pts["persona"].notna(), UNKNOWN_PERSONA)
    names = sorted(p for p in persona.unique() if p != UNKNOWN_PERSONA)
    groups = [
        (p, (persona == p).to_numpy(), PERSONA_COLOURS[i % len(PERSONA_COLOURS)])
        for i, p in enumerate(names)
    ]
    if (persona == UNKNOWN_PERSONA).any():
        groups.append((UNKNOWN_PERSONA, (persona == UNKNOWN_PERSONA).to_numpy(), "#bbbbbb"))
    fig, ax = new_figure(figsize=(6.6, 6.4))
    _scatter(ax, pts, groups)
    _pc_labels(ax, proj.explained)
    _outside_legend(fig, ax, "true persona (customers shown)")
    ax.grid(alpha=0.3)
    title = "PCA projection coloured by true persona"
    ax.set_title(f"{title}\n({_shown(proj)})", fontsize=11)
    return fig, title


def _outside_legend(fig: Any, ax: Any, title: str) -> None:
    """The legend below the axes (it would hide points inside them)."""
    handles, labels = ax.get_legend_handles_labels()  # largest group first (drawn first)
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=2,
        fontsize=8,
        markerscale=2.5,
        title=title,
        title_fontsize=8,
        frameon=False,
    )


def _shown(proj: Projection) -> str:
    n = len(proj.points)
    if n < proj.n_clustered:
        return f"sample of {n:,} of {proj.n_clustered:,} clustered customers"
    return f"all {n:,} clustered customers"


def plot_contingency(table: pd.DataFrame) -> tuple[Any, str]:
    """Heatmap of customer counts, segment (rows) x true persona (columns), with totals."""
    n_seg, n_per = table.shape
    fig, ax = new_figure(figsize=(max(6.4, 1.5 * n_per + 3.8), 0.55 * n_seg + 2.2))
    values = table.to_numpy(dtype=float)
    im = ax.imshow(values, cmap="Blues", aspect="auto")
    top = values.max() if values.size else 0
    for i in range(n_seg):
        row_total = values[i].sum()
        for j in range(n_per):
            v = values[i, j]
            share = f"\n{v / row_total:.0%} of row" if row_total else ""
            ax.text(
                j,
                i,
                f"{int(v):,}{share}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if v > 0.6 * top else "black",
            )
    col_totals = values.sum(axis=0)
    row_totals = values.sum(axis=1)
    ax.set_xticks(
        range(n_per),
        [f"{p}\n(n={int(t):,})" for p, t in zip(table.columns, col_totals, strict=True)],
        fontsize=8,
    )
    ax.set_yticks(
        range(n_seg),
        [f"{s} (n={int(t):,})" for s, t in zip(table.index, row_totals, strict=True)],
        fontsize=8,
    )
    ax.set_xlabel("true persona (simulator ground truth)")
    ax.set_ylabel("segment (k-means)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="customers (count)")
    title = "Segments vs. true personas"
    ax.set_title(f"{title} (customers per cell)", fontsize=11)
    return fig, title


# ---------------------------------------------------------------------------------------------
# the report


def _candidates_table(runs: pd.DataFrame) -> pd.DataFrame:
    cols = ["k", "silhouette", "inertia"]
    if runs["adjusted_rand_index"].notna().any():
        cols.append("adjusted_rand_index")
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
    """Compute the projection and draw every plot from collected data (no warehouse access)."""
    runs, k = data.runs, data.k
    report = Report(title=title, subtitle=_run_subtitle(data))
    report.data.update(runs=runs, segments=data.segments)

    sec = report.section("Choosing k", anchor="choosing-k")
    sec.add_note(headline(runs))
    fig, t = plot_silhouette(runs)
    sec.add_figure(
        fig,
        t,
        "Mean silhouette of one seeded sample of clustered customers, the same for every k;"
        " the best one picks k.",
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
            f"Agreement of each k's clusters (plus '{NO_ORDERS_SEGMENT}') with the personas of"
            f" {TRUTH_RELATION}; recorded, never used to choose k.",
        )
    sec.add_table(
        _candidates_table(runs),
        caption=f"Candidates of run {data.run_id} ({SEGMENTATION_RUNS}).",
        formats={"silhouette": ".4f", "inertia": ",.0f", "fit_seconds": ".2f"},
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

    proj = None
    if data.behaviour is not None and len(data.behaviour) >= 3:
        proj = project(data.behaviour, data.features, data.max_points, data.seed)
        report.data["zscores"] = proj.zscores
        report.data["projection"] = proj.points
        fig, t = plot_zscores(proj.zscores)
        sec.add_figure(
            fig,
            t,
            "The features k-means clustered on, scaled as it scaled them (ml.segment's"
            f" preprocessor on the {proj.n_clustered:,} clustered customers); red = above,"
            f" blue = below the average. '{NO_ORDERS_SEGMENT}' has no behaviour and is left out.",
        )
    else:
        reason = data.skipped.get("behaviour", "too few clustered customers")
        sec.add_note(f"Skipped the standardised behaviour and the projection: {reason}.")

    sec = report.section("Projection", anchor="projection")
    if proj is not None:
        fig, t = plot_projection(proj, k)
        sec.add_figure(
            fig,
            t,
            f"First two principal components of the scaled behaviour (PCA fitted on all clustered"
            f" customers, seed {data.seed}); '{NO_ORDERS_SEGMENT}' is not plotted. Clusters that"
            " overlap here may still separate in the other dimensions.",
        )
        if data.truth is not None:
            fig, t = plot_projection_persona(proj, data.truth)
            sec.add_figure(fig, t, "The same customers and axes, coloured by simulator persona.")
    else:
        sec.add_note("Skipped the projection: no behavioural features to project.")
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


def build_segments_report(
    con: duckdb.DuckDBPyConnection,
    *,
    max_points: int = DEFAULT_MAX_POINTS,
    seed: int = DEFAULT_SEED,
) -> Report:
    """Query the warehouse and draw the report (data in `report.data`, figures in sections)."""
    return build_report(collect_segments(con, max_points=max_points, seed=seed))


def write_segments_report(
    out_dir: Path,
    embed: bool = True,
    *,
    max_points: int = DEFAULT_MAX_POINTS,
    seed: int = DEFAULT_SEED,
    path: str | Path | None = None,
) -> tuple[Path, int]:
    """Read the warehouse (read-only, closed before drawing), write `out_dir/segments.html`.

    Returns the page's path and its number of plots.
    """
    with warehouse.session(path, read_only=True) as con:
        data = collect_segments(con, max_points=max_points, seed=seed)
    report = build_report(data)
    try:
        page = render(report, out_dir, embed=embed, filename=FILENAME)
    except OSError as err:
        raise UserError(f"cannot write the report to {out_dir}: {err.strerror or err}") from None
    return page, len(report.figures)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write the page, print its path and plot count."""
    parser = ArgumentParser(
        prog="python -m scripts.report_segments", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="DIR",
        help=f"folder for {FILENAME} (default: reports in the repository)",
    )
    parser.add_argument(
        "--max-points",
        type=positive_int,
        default=DEFAULT_MAX_POINTS,
        metavar="N",
        help=f"customers drawn in the projection (default {DEFAULT_MAX_POINTS:,})",
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=DEFAULT_SEED,
        help=f"seed of the projection's sample and PCA (default {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--png-files",
        action="store_true",
        help="write the plots as PNG files in DIR/figures/ instead of embedding them",
    )
    args = parser.parse_args(argv)
    page, n_plots = write_segments_report(
        args.output, embed=not args.png_files, max_points=args.max_points, seed=args.seed
    )
    print(f"wrote {page} ({n_plots} plots)")
    return 0


if __name__ == "__main__":
    run(main, "scripts.report_segments")
