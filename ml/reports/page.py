"""A static HTML page with embedded plots: the page, its sections and blocks, and its writer.

A page is built in memory (`Report` -> `Section`s -> blocks) and written by `render` as one HTML
file that opens in a browser from disk: no server, no internet, no scripts. Figures are PNGs,
either embedded as base64 `<img>` (one self-contained file, the default) or written into a
`figures/` folder beside the HTML and linked relatively.

    report = Report("Model report", subtitle="run 9a0aa59a")
    section = report.section("Leaderboard")
    section.add_table(leaderboard_df, caption="test metrics")
    fig, ax = new_figure()
    ax.plot(...)
    section.add_figure(fig, "ROC curve of the champion")
    path = render(report, Path("reports/model"))
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure as MplFigure

from ml.core.errors import UserError
from ml.core.files import atomic_write
from ml.reports.figures import DEFAULT_DPI, figure_png

#: Folder (inside the output folder) for PNG files when figures are not embedded.
FIGURES_DIR = "figures"
#: Pages and figures are for everyone to read, whatever the umask (a shared reports folder).
READABLE = 0o644
_FIGURE_FILE = re.compile(r"^\d{2,}-[a-z0-9-]+\.png$")


def slugify(text: str, max_len: int = 60) -> str:
    """Lower-case ASCII words joined by `-`: for anchors and file names."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].rstrip("-") or "item"


# ---------------------------------------------------------------------------------------------
# blocks of a section


@dataclass
class Figure:
    """A rendered plot: PNG bytes plus the title used as alt text and caption."""

    title: str
    png: bytes
    caption: str = ""


@dataclass
class Table:
    """A small table (already-formatted HTML from a DataFrame) with an optional caption."""

    html: str
    caption: str = ""


@dataclass
class Note:
    """A short paragraph; `kind` "note" renders as a highlighted remark (e.g. a skipped part)."""

    text: str
    kind: str = "text"  # "text" | "note"


@dataclass
class Preformatted:
    """Text shown as written (monospace, whitespace kept): rules, logs, SQL."""

    text: str


@dataclass
class Links:
    """A list of links to other pages: (href relative to this page, label, description)."""

    items: list[tuple[str, str, str]]


Block = Figure | Table | Note | Preformatted | Links


@dataclass
class Section:
    """A titled part of the page holding figures, tables and notes in order."""

    title: str
    anchor: str = ""
    blocks: list[Block] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.anchor = self.anchor or slugify(self.title)

    def add_figure(
        self, fig: MplFigure | bytes, title: str, caption: str = "", dpi: int = DEFAULT_DPI
    ) -> Figure:
        """Add a matplotlib figure (converted to PNG) or ready PNG bytes."""
        png = fig if isinstance(fig, bytes) else figure_png(fig, dpi=dpi)
        block = Figure(title=title, png=png, caption=caption)
        self.blocks.append(block)
        return block

    def add_table(self, df: pd.DataFrame, caption: str = "", **kwargs: Any) -> Table:
        """Add a DataFrame as a simple HTML table (see `dataframe_html` for the options)."""
        block = Table(html=dataframe_html(df, **kwargs), caption=caption)
        self.blocks.append(block)
        return block

    def add_note(self, text: str) -> Note:
        """Add a highlighted remark, e.g. why part of the section was skipped."""
        block = Note(text=text, kind="note")
        self.blocks.append(block)
        return block

    def add_text(self, text: str) -> Note:
        """Add a plain paragraph."""
        block = Note(text=text)
        self.blocks.append(block)
        return block

    def add_preformatted(self, text: str) -> Preformatted:
        """Add text shown as written (e.g. decision-tree rules)."""
        block = Preformatted(text=text)
        self.blocks.append(block)
        return block

    def add_links(self, items: Sequence[tuple[str, str, str]]) -> Links:
        """Add a list of (relative href, label, description) links."""
        block = Links(items=list(items))
        self.blocks.append(block)
        return block

    @property
    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]


@dataclass
class Report:
    """A page: title, subtitle, sections; `data` keeps the frames the figures were drawn from."""

    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)
    data: dict[str, pd.DataFrame] = field(default_factory=dict)

    def section(self, title: str, anchor: str = "") -> Section:
        """Append a new section and return it."""
        taken = {s.anchor for s in self.sections}
        base = anchor or slugify(title)
        unique, n = base, 2
        while unique in taken:
            unique, n = f"{base}-{n}", n + 1
        sec = Section(title=title, anchor=unique)
        self.sections.append(sec)
        return sec

    @property
    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]

    @property
    def notes(self) -> list[str]:
        """The highlighted remarks of every section (what was skipped, and why)."""
        return [b.text for s in self.sections for b in s.blocks if getattr(b, "kind", "") == "note"]


# ---------------------------------------------------------------------------------------------
# tables


def _format_cell(value: Any, float_format: str) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (hasattr(value, "dtype") and pd.api.types.is_integer(value)):
        return f"{int(value):,}"
    if isinstance(value, float) or pd.api.types.is_float(value):
        return format(float(value), float_format)
    return str(value)


def dataframe_html(
    df: pd.DataFrame,
    *,
    max_rows: int = 50,
    float_format: str = ",.3f",
    index: bool = False,
    formats: dict[str, str] | None = None,
) -> str:
    """A DataFrame as an escaped HTML table; numbers right-aligned, at most `max_rows` rows.

    `formats` maps a column to a format spec (e.g. `{"share": ".1%"}`); other floats use
    `float_format`, integers get thousands separators, missing values are blank.
    """
    frame = df.reset_index() if index else df
    formats = formats or {}
    shown = frame.head(max_rows)
    numeric = {c: pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns}
    head = "".join(
        f"<th{' class=num' if numeric[c] else ''}>{html.escape(str(c))}</th>" for c in frame.columns
    )
    rows = []
    for values in shown.itertuples(index=False, name=None):
        cells = []
        for col, value in zip(frame.columns, values, strict=True):
            text = _format_cell(value, formats.get(col, float_format))
            cls = " class=num" if numeric[col] else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if len(frame) > max_rows:
        more = f'<p class="more">{len(frame) - max_rows:,} more rows not shown</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


# ---------------------------------------------------------------------------------------------
# page

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1d2433; background: #fafbfc; line-height: 1.45; }
header { background: #1d2433; color: #fff; padding: 1.2rem 2rem; }
header h1 { margin: 0 0 .3rem 0; font-size: 1.6rem; }
header p { margin: 0; color: #c8cfdc; }
nav { padding: .8rem 2rem; background: #eef1f5; border-bottom: 1px solid #d9dee7; }
nav a { margin-right: 1.1rem; color: #2457a6; text-decoration: none; white-space: nowrap; }
main { padding: 0 2rem 3rem 2rem; max-width: 1500px; }
section { margin-top: 2rem; }
h2 { border-bottom: 2px solid #d9dee7; padding-bottom: .2rem; }
figure { margin: 1rem 0 1.6rem 0; background: #fff; border: 1px solid #e1e5ec;
         padding: .6rem; display: inline-block; max-width: 100%; box-sizing: border-box; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: .9rem; color: #4a5468; margin-top: .4rem; }
figcaption b { color: #1d2433; }
table { border-collapse: collapse; margin: .6rem 0 1.2rem 0; font-size: .88rem; background: #fff; }
th, td { border: 1px solid #d9dee7; padding: .25rem .6rem; }
th { background: #eef1f5; text-align: left; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.caption { font-size: .9rem; color: #4a5468; margin-bottom: 0; }
.note { background: #fff7e0; border-left: 4px solid #e0a800; padding: .5rem .8rem; }
.more { font-size: .85rem; color: #6b7486; }
pre { background: #fff; border: 1px solid #e1e5ec; padding: .6rem .8rem; font-size: .85rem;
      overflow-x: auto; }
ul.links li { margin: .3rem 0; }
footer { padding: 1rem 2rem; color: #6b7486; font-size: .85rem; }
"""


def _block_html(block: Block, img_src: dict[int, str]) -> str:
    if isinstance(block, Figure):
        alt = html.escape(block.title, quote=True)
        caption = f"<b>{html.escape(block.title)}</b>"
        if block.caption:
            caption += f" {html.escape(block.caption)}"
        return (
            f'<figure><img src="{img_src[id(block)]}" alt="{alt}" title="{alt}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    if isinstance(block, Table):
        caption = f'<p class="caption">{html.escape(block.caption)}</p>' if block.caption else ""
        return caption + block.html
    if isinstance(block, Preformatted):
        return f"<pre>{html.escape(block.text)}</pre>"
    if isinstance(block, Links):
        items = "".join(
            f'<li><a href="{html.escape(href, quote=True)}">{html.escape(label)}</a>'
            + (f" &mdash; {html.escape(text)}" if text else "")
            + "</li>"
            for href, label, text in block.items
        )
        return f'<ul class="links">{items}</ul>'
    cls = ' class="note"' if block.kind == "note" else ""
    return f"<p{cls}>{html.escape(block.text)}</p>"


def page_html(report: Report, img_src: dict[int, str], generated_at: str = "") -> str:
    """The whole page as a string; `img_src` maps `id(figure)` to its `src` attribute."""
    nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in report.sections)
    body = []
    for sec in report.sections:
        blocks = "\n".join(_block_html(b, img_src) for b in sec.blocks)
        body.append(
            f'<section id="{sec.anchor}"><h2>{html.escape(sec.title)}</h2>\n{blocks}</section>'
        )
    subtitle = f"<p>{html.escape(report.subtitle)}</p>" if report.subtitle else ""
    footer = f"<footer>Generated {html.escape(generated_at)}</footer>" if generated_at else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head>\n"
        f"<body><header><h1>{html.escape(report.title)}</h1>{subtitle}</header>\n"
        f"<nav>{nav}</nav>\n<main>\n" + "\n".join(body) + f"\n</main>{footer}</body></html>\n"
    )


def render(
    report: Report,
    out_dir: str | Path,
    *,
    embed: bool = True,
    filename: str = "index.html",
    generated_at: str | None = None,
    figures_dir: str = FIGURES_DIR,
) -> Path:
    """Write the report as `out_dir/filename`; return its path.

    `embed=True`: PNGs inlined as base64 (one self-contained file). `embed=False`: PNGs in
    `out_dir/figures_dir/` (files this function wrote there before, named `NN-slug.png`, are
    replaced), linked relatively. Every file is written atomically, so a reader never sees half
    a page. Raises `UserError` when the folder cannot be written.
    """
    out = Path(out_dir)
    img_src: dict[int, str] = {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        if embed:
            for fig in report.figures:
                img_src[id(fig)] = "data:image/png;base64," + base64.b64encode(fig.png).decode()
        else:
            fig_dir = out / figures_dir
            fig_dir.mkdir(parents=True, exist_ok=True)
            for stale in fig_dir.iterdir():
                if stale.is_file() and _FIGURE_FILE.match(stale.name):
                    stale.unlink()
            for i, fig in enumerate(report.figures, start=1):
                name = f"{i:02d}-{slugify(fig.title, 50)}.png"
                atomic_write(fig_dir / name, fig.png, permissions=READABLE)
                img_src[id(fig)] = f"{Path(figures_dir).as_posix()}/{name}"
    except OSError as err:
        raise UserError(f"cannot write the report to {out}: {err.strerror or err}") from None
    stamp = (
        generated_at
        if generated_at is not None
        else dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    )
    path = out / filename
    atomic_write(path, page_html(report, img_src, stamp).encode("utf-8"), permissions=READABLE)
    return path
