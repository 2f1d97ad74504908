"""The static page: blocks escaped, figures embedded or written beside it, files readable and
written whole, one-line errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pandas as pd
import pytest

from ml.core.errors import UserError
from ml.reports.figures import figure_png, new_figure
from ml.reports.page import Report, dataframe_html, render


def _line_report(title: str = "A line") -> Report:
    report = Report("Demo <report>")
    fig, ax = new_figure()
    ax.plot([1, 2], [3, 4])
    report.section("Part & parcel").add_figure(fig, title)
    return report


def test_png_files_and_tables(tmp_path: Path) -> None:
    report = _line_report()
    sec = report.sections[0]
    sec.add_table(pd.DataFrame({"name": ["<b>x</b>"], "share": [0.25]}), formats={"share": ".0%"})
    sec.add_note("careful")
    stale = tmp_path / "figures"
    stale.mkdir()
    (stale / "07-old-plot.png").write_bytes(b"old")
    (stale / "keep.txt").write_text("mine")
    path = render(report, tmp_path, embed=False)
    page = path.read_text(encoding="utf-8")
    assert '<img src="figures/01-a-line.png" alt="A line"' in page
    assert (tmp_path / "figures" / "01-a-line.png").read_bytes().startswith(b"\x89PNG")
    assert not (stale / "07-old-plot.png").exists()
    assert (stale / "keep.txt").exists()
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "Demo &lt;report&gt;" in page
    assert "25%" in page
    assert report.notes == ["careful"]
    assert dataframe_html(pd.DataFrame({"a": range(5)}), max_rows=2).count("<tr>") == 3


def test_preformatted_and_link_blocks_are_escaped(tmp_path: Path) -> None:
    report = Report("Blocks")
    sec = report.section("Rules")
    sec.add_preformatted('|--- age <= 30.5\n|   |--- class: <young & "new">')
    sec.add_links(
        [("models/loan.html", "Loan <model>", "curves & SHAP"), ('x" onclick="y', "bad", "")]
    )
    page = render(report, tmp_path, generated_at="").read_text(encoding="utf-8")
    assert (
        "<pre>|--- age &lt;= 30.5\n|   |--- class: &lt;young &amp; &quot;new&quot;&gt;</pre>"
        in page
    )
    assert '<a href="models/loan.html">Loan &lt;model&gt;</a> &mdash; curves &amp; SHAP' in page
    assert 'href="x&quot; onclick=&quot;y"' in page


def test_figures_in_a_folder_of_their_own_and_files_readable_by_all(tmp_path: Path) -> None:
    path = render(_line_report(), tmp_path, embed=False, filename="t.html", figures_dir="figures/t")
    png = tmp_path / "figures" / "t" / "01-a-line.png"
    assert 'src="figures/t/01-a-line.png"' in path.read_text(encoding="utf-8")
    for written in (path, png):
        assert stat.S_IMODE(written.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures", "t.html"]  # no temp files


def test_embedded_page_is_one_file_with_the_same_png(tmp_path: Path) -> None:
    report = _line_report()
    path = render(report, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]
    assert 'src="data:image/png;base64,' in path.read_text(encoding="utf-8")
    fig, ax = new_figure()
    ax.plot([1, 2], [3, 4])
    assert figure_png(fig) == report.figures[0].png  # no timestamp: the same plot, same bytes


def test_unwritable_folder_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(UserError, match="cannot write the report to"):
        render(_line_report(), blocker / "out")
