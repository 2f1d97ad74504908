"""The EDA report: one static page with titled plots, robust to missing tables, one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ml import warehouse
from ml.errors import UserError
from scripts import eda
from scripts.report_html import Report, dataframe_html, new_figure, render
from tests.conftest import run_python

LOAN_RELATIONS = (
    "marts.loan_features",
    "marts.default_rate_by_grade",
    "marts.default_rate_by_purpose",
    "staging.stg_loans_rejected",
    "staging.stg_loans",
    "raw.loans",
)
_IMG = re.compile(r"<img\b[^>]*>")
_ATTR = re.compile(r'(\w+)="([^"]*)"')


def _images(page: str) -> list[dict[str, str]]:
    return [dict(_ATTR.findall(tag)) for tag in _IMG.findall(page)]


@pytest.fixture(scope="module")
def cli_run(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("eda") / "report"
    proc = run_python("scripts.eda", "--output", str(out), warehouse=built_warehouse)
    return proc, out


def test_cli_writes_one_page_and_prints_one_line(cli_run) -> None:
    proc, out = cli_run
    page = out / "index.html"
    assert page.is_file()
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    assert str(page) in lines[0]
    n = int(re.search(r"(\d+) plots", lines[0]).group(1))
    assert n == len(_images(page.read_text(encoding="utf-8")))


def test_page_has_at_least_12_distinct_titled_plots(cli_run) -> None:
    page = (cli_run[1] / "index.html").read_text(encoding="utf-8")
    images = _images(page)
    assert len(images) >= 12
    assert len({img["src"] for img in images}) == len(images), "some plots are identical"
    assert all(img["src"].startswith("data:image/png;base64,") for img in images)
    assert all(img.get("alt", "").strip() for img in images), "a plot without a title"
    captions = re.findall(r"<figcaption><b>([^<]+)</b>", page)
    assert len(captions) == len(images)
    assert [img["alt"] for img in images] == captions


def test_page_has_the_required_sections(cli_run) -> None:
    page = (cli_run[1] / "index.html").read_text(encoding="utf-8")
    alts = {img["alt"] for img in _images(page)}
    for title in (
        "Mean satisfaction by age group",
        "Mean satisfaction by income bracket",
        "Mean satisfaction by age group and income bracket",
        "Default rate by grade",
        "Default rate by purpose",
        "Rows rejected by staging, by reason",
        "Label balance: loan defaults",
    ):
        assert title in alts
    for anchor in ("satisfaction", "default-rate", "missingness", "correlations", "labels"):
        assert f'<section id="{anchor}">' in page
    assert "Skipped" not in page  # the full warehouse has every table


def test_page_is_static_and_offline(cli_run) -> None:
    page = (cli_run[1] / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"https?://", page)
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()


def test_missing_warehouse_is_one_line_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = run_python(
        "scripts.eda", "--output", str(out), warehouse=tmp_path / "absent.duckdb", check=False
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "does not exist" in proc.stderr
    assert not out.exists()


def test_warehouse_without_loans_renders_with_notes(built_copy: Path, tmp_path: Path) -> None:
    with warehouse.session(built_copy) as con:
        for rel in LOAN_RELATIONS:
            con.execute(f"drop table {rel}")
    with warehouse.session(built_copy, read_only=True) as con:
        report = eda.build_eda(con)
    path = render(report, tmp_path / "report")
    page = path.read_text(encoding="utf-8")
    assert "Skipped the distributions of marts.loan_features: marts.loan_features not found" in (
        page
    )
    assert "Skipped default rate by grade" in page
    alts = {img["alt"] for img in _images(page)}
    assert "Mean satisfaction by age group" in alts
    assert "Default rate by grade" not in alts
    assert len(alts) >= 8


def test_sample_is_bounded_and_seeded(built_warehouse: Path) -> None:
    with warehouse.session(built_warehouse, read_only=True) as con:
        a = eda.collect_eda(con, sample_rows=500, seed=1)
        b = eda.collect_eda(con, sample_rows=500, seed=1)
    sample = a.frames["sample:marts.customer_features"]
    assert len(sample) == 500
    pd.testing.assert_frame_equal(sample, b.frames["sample:marts.customer_features"])
    overview = a.frames["overview"].set_index("relation")["rows"]
    assert overview["marts.customer_features"] > 500  # counts use every row, not the sample
    assert "customer_id" not in sample.columns  # ids are not distributions


def test_empty_warehouse_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    with warehouse.session(path, read_only=True) as con, pytest.raises(UserError, match="none"):
        eda.collect_eda(con)


def test_units_for_axis_labels() -> None:
    assert eda.axis_label("income") == "income ($ per year)"
    assert eda.unit("avg_days_between_orders") == "days"
    assert eda.unit("share_home") == "share 0-1"
    assert eda.unit("mystery") == "value"


def test_report_html_png_files_and_tables(tmp_path: Path) -> None:
    report = Report("Demo <report>")
    sec = report.section("Part & parcel")
    fig, ax = new_figure()
    ax.plot([1, 2], [3, 4])
    sec.add_figure(fig, "A line")
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
