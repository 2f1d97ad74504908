"""The EDA page: one static page with titled plots, robust to missing tables and columns."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.core.errors import UserError
from ml.core.warehouse import open_warehouse
from ml.reports import eda_page
from ml.reports.eda_data import collect_eda
from ml.reports.labels import MISSING_LABEL, axis_label, ordered, unit
from ml.reports.page import render
from ml.reports.reading import open_read_only
from tests.ml.reports.pages import images
from tests.ml.reports.synthetic import write

LOAN_RELATIONS = (
    "marts.loan_features",
    "marts.default_rate_by_grade",
    "marts.default_rate_by_purpose",
    "staging.stg_loans_rejected",
    "staging.stg_loans",
    "raw.loans",
)


# ---------------------------------------------------------------------------------------------
# synthetic tables


def _customers(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = pd.array(rng.integers(18, 80, n), dtype="Int32")
    age[::10] = pd.NA
    return pd.DataFrame(
        {
            "customer_id": np.arange(n, dtype="int64"),
            "age": age,
            "income": rng.lognormal(10, 0.5, n),
            "age_group": rng.choice(["18-24", "25-34", "65+"], n),
            "region": pd.Series(rng.choice(["north", "south", None], n), dtype=object),
            "signup_date": pd.date_range("2024-01-01", periods=n, freq="D").date,
            "is_member": rng.integers(0, 2, n).astype(bool),
            "customer_satisfaction": rng.uniform(1, 10, n),
            "segment": rng.choice(["gold", "silver"], n),
        }
    )


def _warehouse(path: Path, **overrides: pd.DataFrame) -> Path:
    tables = {
        "raw.customers": _customers().drop(columns=["segment"]),
        "marts.customer_features": _customers(),
        "marts.satisfaction_by_age_group": pd.DataFrame(
            {
                "age_group": ["65+", "18-24"],
                "surveyed_count": [30, 40],
                "mean_satisfaction": [6.0, 7.0],
                "stddev_satisfaction": [1.0, 1.5],
            }
        ),
        "staging.stg_customers_rejected": pd.DataFrame(
            {"customer_id": [1, 2, 3], "rejection_reason": ["bad age", "bad age", None]}
        ),
        **overrides,
    }
    return write(path, tables)


def test_collect_reads_kinds_samples_and_skips(tmp_path: Path) -> None:
    path = _warehouse(tmp_path / "w.duckdb")
    with open_read_only(path) as wh:
        data = collect_eda(wh, sample_rows=50, seed=1)
        again = collect_eda(wh, sample_rows=50, seed=1)
    rel = "marts.customer_features"
    schema = data.frames[f"schema:{rel}"].set_index("column")
    assert schema.loc["customer_id", "role"] == "id"
    assert schema.loc["customer_satisfaction", "role"] == "label"
    assert schema["kind"].to_dict() == {
        "customer_id": "numeric",
        "age": "numeric",
        "income": "numeric",
        "age_group": "categorical",
        "region": "categorical",
        "signup_date": "time",
        "is_member": "categorical",
        "customer_satisfaction": "numeric",
        "segment": "categorical",
    }
    sample = data.frames[f"sample:{rel}"]
    assert list(sample.columns) == ["age", "income", "signup_date", "customer_satisfaction"]
    assert len(sample) == 50  # bounded ...
    pd.testing.assert_frame_equal(sample, again.frames[f"sample:{rel}"])  # ... and seeded
    assert pd.api.types.is_float_dtype(sample["age"]) and sample["age"].isna().any()
    assert pd.api.types.is_datetime64_any_dtype(sample["signup_date"])
    cats = data.frames[f"categories:{rel}"]
    region = cats[cats["column"] == "region"].set_index("value")["n"]
    assert int(region.sum()) == 400 and MISSING_LABEL in region.index
    assert data.rows(rel) == 400 and data.rows("raw.orders") is None
    nulls = data.frames[f"nulls:{rel}"].set_index("column")
    assert nulls.loc["age", "null_count"] == 40
    assert data.frames["rejected:customers"]["n"].tolist() == [2, 1]
    assert data.skipped["marts.default_rate_by_grade"] == (
        "marts.default_rate_by_grade not found in the warehouse"
    )


def test_a_column_the_page_needs_is_skipped_with_the_reason(tmp_path: Path) -> None:
    features = _customers().drop(columns=["segment"])
    rejected = pd.DataFrame({"customer_id": [1], "reason": ["x"]})
    path = _warehouse(
        tmp_path / "w.duckdb",
        **{"marts.customer_features": features, "staging.stg_customers_rejected": rejected},
    )
    with open_read_only(path) as wh:
        data = collect_eda(wh)
    assert data.skipped["label:segment"] == (
        "marts.customer_features could not be read as expected (it has no column 'segment')"
    )
    assert "rejection_reason" in data.skipped["rejected:customers"]
    report = eda_page.build_report(data)
    assert "Skipped the segment label: marts.customer_features could not be read" in " ".join(
        report.notes
    )
    titles = [f.title for f in report.figures]
    assert "Label balance: customer satisfaction" in titles
    assert "Label balance: customer segments" not in titles


def test_page_from_synthetic_tables(tmp_path: Path) -> None:
    path = _warehouse(tmp_path / "w.duckdb")
    page, n_plots = eda_page.write_eda(tmp_path / "eda", sample_rows=100, path=path)
    text = page.read_text(encoding="utf-8")
    alts = [img["alt"] for img in images(text)]
    assert n_plots == len(alts) >= 7
    assert "Mean satisfaction by age group" in alts
    assert "Rows rejected by staging, by reason" in alts
    assert "Skipped default rate by grade: marts.default_rate_by_grade not found" in text


def test_empty_warehouse_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    open_warehouse(path).close()
    with open_read_only(path) as wh, pytest.raises(UserError, match="none"):
        collect_eda(wh)


def test_units_and_order_for_axes() -> None:
    assert axis_label("income") == "income ($ per year)"
    assert unit("avg_days_between_orders") == "days"
    assert unit("share_home") == "share 0-1"
    assert unit("mystery") == "value"
    assert ordered(["65+", MISSING_LABEL, "zzz", "18-24"], "age_group") == [
        "18-24",
        "65+",
        "zzz",
        MISSING_LABEL,
    ]


# ---------------------------------------------------------------------------------------------
# the dbt-built tiny warehouse


@pytest.fixture(scope="module")
def built_page(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("eda") / "report"
    page, _ = eda_page.write_eda(out, path=built_warehouse)
    return page.read_text(encoding="utf-8")


@pytest.mark.slow
def test_page_has_at_least_12_distinct_titled_plots(built_page: str) -> None:
    imgs = images(built_page)
    assert len(imgs) >= 12
    assert len({img["src"] for img in imgs}) == len(imgs), "some plots are identical"
    assert all(img["src"].startswith("data:image/png;base64,") for img in imgs)
    assert all(img.get("alt", "").strip() for img in imgs), "a plot without a title"
    captions = re.findall(r"<figcaption><b>([^<]+)</b>", built_page)
    assert [img["alt"] for img in imgs] == captions


@pytest.mark.slow
def test_page_has_the_required_sections(built_page: str) -> None:
    alts = {img["alt"] for img in images(built_page)}
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
        assert f'<section id="{anchor}">' in built_page
    assert "Skipped" not in built_page  # the full warehouse has every table


@pytest.mark.slow
def test_page_is_static_and_offline(built_page: str) -> None:
    assert not re.search(r"https?://", built_page)
    assert "<script" not in built_page.lower()
    assert "<link" not in built_page.lower()


@pytest.mark.slow
def test_warehouse_without_loans_renders_with_notes(built_copy: Path, tmp_path: Path) -> None:
    with open_warehouse(built_copy) as wh:
        for rel in LOAN_RELATIONS:
            kind = "view" if rel == "marts.loan_features" else "table"
            wh.execute(f"drop {kind} {rel}")
    with open_read_only(built_copy) as wh:
        report = eda_page.build_report(collect_eda(wh))
    page = render(report, tmp_path / "report").read_text(encoding="utf-8")
    assert "Skipped the distributions of marts.loan_features: marts.loan_features not found" in (
        page
    )
    assert "Skipped default rate by grade" in page
    alts = {img["alt"] for img in images(page)}
    assert "Mean satisfaction by age group" in alts
    assert "Default rate by grade" not in alts
    assert len(alts) >= 8


@pytest.mark.slow
def test_sample_is_bounded_and_seeded(built_warehouse: Path) -> None:
    with open_read_only(built_warehouse) as wh:
        a = collect_eda(wh, sample_rows=500, seed=1)
        b = collect_eda(wh, sample_rows=500, seed=1)
    sample = a.frames["sample:marts.customer_features"]
    assert len(sample) == 500
    pd.testing.assert_frame_equal(sample, b.frames["sample:marts.customer_features"])
    assert a.rows("marts.customer_features") > 500  # counts use every row, not the sample
    assert "customer_id" not in sample.columns  # ids are not distributions
