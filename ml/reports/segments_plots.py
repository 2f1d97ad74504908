"""The plots of the segments page: how k was chosen, what the segments are, where they lie.
Pure functions of `segments_data`'s frames, each returning (figure, title)."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.ticker import MaxNLocator

from ml.reports.figures import (
    ACCENT,
    GREY,
    HIGHLIGHT,
    TAB10,
    cell_text,
    label_axes,
    new_figure,
    thousands,
    titled,
)
from ml.reports.segments_data import UNKNOWN_PERSONA, Projection

NO_ORDERS_COLOUR = GREY
#: Segment colours by cluster_id (tab10), persona colours from another palette (Dark2), so a
#: persona is never mistaken for the segment of the same colour.
SEGMENT_COLOURS = (*TAB10[:7], *TAB10[8:], TAB10[7])  # grey last: the no-orders segment's
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


def _segment_colour(cluster_id: int, k: int) -> str:
    return NO_ORDERS_COLOUR if cluster_id >= k else SEGMENT_COLOURS[cluster_id % 10]


def _wrap(name: str, width: int = 16) -> str:
    return "\n".join(textwrap.wrap(name, width)) or name


def _score_by_k(
    runs: pd.DataFrame, column: str, ylabel: str, title: str, note: str = ""
) -> tuple[Any, str]:
    """A line with markers over k per algorithm; the chosen candidate as a large red marker with
    its value."""
    df = runs.dropna(subset=[column])
    fig, ax = new_figure(figsize=(6.4, 4.0))
    algorithms = df["algorithm"].astype(str) if "algorithm" in df else pd.Series("", df.index)
    for i, (algorithm, part) in enumerate(df.groupby(algorithms, sort=True)):
        ax.plot(
            part["k"],
            part[column],
            marker="o" if i == 0 else "s",
            linestyle="-" if i == 0 else "--",
            color=ACCENT if i == 0 else TAB10[(i + 1) % 10],
            label=algorithm or column.replace("_", " "),
        )
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
    label_axes(ax, "k (number of clusters)", ylabel)
    thousands(ax)
    ax.set_title(title + note, fontsize=11)
    return fig, title


def plot_stability(runs: pd.DataFrame) -> tuple[Any, str]:
    return _score_by_k(
        runs,
        "stability",
        "stability (adjusted Rand between refits, 0 to 1)",
        "Stability by k",
        " (higher = reproducible; picks the method and k)",
    )


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
    ax = fig.axes[0]
    ax.axhline(0, color="black", linewidth=0.8)
    ceiling = runs["ari_ceiling"].dropna() if "ari_ceiling" in runs else pd.Series(dtype=float)
    if len(ceiling):
        ax.axhline(
            float(ceiling.iloc[0]),
            color=GREY,
            linestyle=":",
            linewidth=1.5,
            label=f"supervised ceiling {float(ceiling.iloc[0]):.3f}",
        )
        ax.legend(fontsize=8)
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
            cell_text(ax, i, j, f"{v:+.2f}", 7, "white" if abs(v) > 1.2 else "black")
    ax.set_xticks(range(n_seg), [_wrap(s) for s in mat.columns], fontsize=8)
    ax.set_yticks(range(n_feat), mat.index, fontsize=8)
    ax.xaxis.set_ticks_position("top")
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("segment (cluster)")
    ax.set_ylabel("behavioural feature (log1p of counts, money, days; then standardised)")
    fig.colorbar(
        im,
        ax=ax,
        shrink=0.6,
        label=f"segment mean (z-score, standard deviations; colour capped at ±{Z_LIMIT:g})",
    )
    return titled(
        fig,
        ax,
        "Standardised mean behaviour per segment",
        " (0 = average clustered customer)",
        fontsize=11,
    )


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
    thousands(ax, "x")
    label_axes(ax, "customers", "segment", legend=None, grid="x")
    return titled(
        fig,
        ax,
        "Segment sizes",
        f" ({total:,} customers; grey = no orders, not clustered)",
        fontsize=11,
    )


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
    return titled(fig, ax, "PCA projection coloured by segment", f"\n({_shown(proj)})", fontsize=11)


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
    return titled(
        fig, ax, "PCA projection coloured by true persona", f"\n({_shown(proj)})", fontsize=11
    )


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
            cell_text(ax, i, j, f"{int(v):,}{share}", 7, "white" if v > 0.6 * top else "black")
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
    ax.set_ylabel("segment")
    fig.colorbar(im, ax=ax, shrink=0.8, label="customers (count)")
    return titled(fig, ax, "Segments vs. true personas", " (customers per cell)", fontsize=11)
