"""Figures of the report pages: matplotlib figures made without pyplot, as PNG bytes, and the
colours and axis formats the pages share.

    fig, ax = new_figure(figsize=(6.4, 4.0))
    ax.plot(...); ax.set_title(...); ax.set_xlabel(...); ax.set_ylabel(...)
    png = figure_png(fig)

A figure made by `new_figure` involves no GUI backend and stays registered nowhere; a pyplot
figure passed to `figure_png` is closed once saved.
"""

from __future__ import annotations

import io
import sys
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

matplotlib.use("Agg")  # non-interactive, should anything in the process import pyplot

DEFAULT_DPI = 100

ACCENT = "#3b6ea8"
ACCENT_LIGHT = "#a9c1e0"
HIGHLIGHT = "#d1495b"
GREY = "#9e9e9e"
#: matplotlib's tab10 palette: one colour per class or segment.
TAB10 = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def new_figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    figsize: tuple[float, float] | None = None,
    squeeze: bool = True,
    **subplot_kw: Any,
) -> tuple[Figure, Any]:
    """A pyplot-free figure with a grid of axes (like `plt.subplots`), constrained layout."""
    fig = Figure(figsize=figsize or (6.4, 4.0), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, **subplot_kw)
    return fig, axes


def figure_png(fig: Figure, dpi: int = DEFAULT_DPI) -> bytes:
    """The figure as PNG bytes (no metadata, so identical plots give identical bytes); a pyplot
    figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    pyplot = sys.modules.get("matplotlib.pyplot")  # only pyplot can have registered the figure
    if pyplot is not None and pyplot.fignum_exists(getattr(fig, "number", -1)):
        pyplot.close(fig)
    return buf.getvalue()


def thousands(ax: Any, axis: str = "y") -> None:
    """Tick labels with thousands separators (1,000) on the `axis` ("x" or "y") of `ax`."""
    fmt = FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def label_axes(
    ax: Any, xlabel: str, ylabel: str, *, legend: str | None = "best", grid: str = "both"
) -> None:
    """Axis labels, a small legend at `legend` (None: no legend) and a light grid on `grid`
    ("both", "x" or "y")."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend is not None:
        ax.legend(fontsize=8, loc=legend)
    ax.grid(axis=grid, alpha=0.3)


def titled(
    fig: Figure, ax: Any, title: str, particulars: str = "", **font: Any
) -> tuple[Figure, str]:
    """Show `title` and its `particulars` (split, sample size ...) above `ax`; returns (fig,
    title): the title names the plot on the page, the particulars stand on the image only."""
    ax.set_title(title + particulars, **font)
    return fig, title


def cell_text(ax: Any, i: int, j: int, text: str, fontsize: float, color: str) -> None:
    """`text` centred in the heatmap cell of row `i`, column `j`."""
    ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color=color)


def reference_line(
    ax: Any, value: float, label: str, *, vertical: bool = False, color: str = "black"
) -> None:
    """A dashed horizontal (or `vertical`) line at `value`, named in the legend."""
    line = ax.axvline if vertical else ax.axhline
    line(value, color=color, linestyle="--", lw=1.2, label=label)
