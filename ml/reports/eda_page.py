"""The EDA page: every plot of `eda_plots` drawn from `eda_data`'s frames, in sections, and
written as one static HTML page."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ml.core.config import DEFAULT_SEED, PROJECT_ROOT
from ml.reports.eda_data import (
    DEFAULT_GRADE,
    DEFAULT_PURPOSE,
    DEFAULT_SAMPLE_ROWS,
    ENTITIES,
    FEATURE_TABLES,
    RAW_TABLES,
    SAT_AGE,
    SAT_CROSS,
    SAT_INCOME,
    EdaData,
    collect_eda,
)
from ml.reports.eda_plots import (
    plot_categorical_distributions,
    plot_correlations,
    plot_default_rate,
    plot_defaulted_label,
    plot_null_shares,
    plot_numeric_distributions,
    plot_rejections,
    plot_satisfaction_by,
    plot_satisfaction_cross,
    plot_satisfaction_label,
    plot_segment_label,
)
from ml.reports.labels import ordered
from ml.reports.page import Report, Section, render
from ml.reports.reading import read_then_draw

DEFAULT_OUTPUT = PROJECT_ROOT / "reports" / "eda"


def _skip(section: Section, data: EdaData, key: str, what: str) -> bool:
    """Add a note and return True when `key` could not be read."""
    if key in data.frames:
        return False
    reason = data.skipped.get(key, "not read")
    section.add_note(f"Skipped {what}: {reason}.")
    return True


def build_report(data: EdaData, title: str = "Exploratory data analysis") -> Report:
    """Draw every plot from collected data (no warehouse access) into a `Report`."""
    report = Report(
        title=title,
        subtitle=(
            f"Histograms and correlations use a reservoir sample of at most {data.sample_rows:,}"
            f" rows per table (seed {data.seed}); counts, NULL shares and the marts use every row."
        ),
        data=dict(data.frames),
    )
    overview = report.section("Tables", anchor="tables")
    overview.add_table(
        data.frames["overview"],
        caption="Relations this report reads (blank = not in the warehouse).",
    )

    for rel, entity in FEATURE_TABLES.items():
        sec = report.section(f"Feature distributions: {rel}", anchor=f"features-{entity}")
        if _skip(sec, data, f"schema:{rel}", f"the distributions of {rel}"):
            continue
        schema = data.frames[f"schema:{rel}"]
        labels = set(schema.loc[schema["role"] == "label", "column"])
        sample = data.get(f"sample:{rel}")
        if sample is not None:
            features = sample.drop(columns=[c for c in sample.columns if c in labels])
            if features.shape[1]:
                fig, t = plot_numeric_distributions(features, entity, rel, data.rows(rel) or 0)
                sec.add_figure(
                    fig,
                    t,
                    "Heavy-tailed columns are drawn on a log x axis (all "
                    "values positive) or clipped at their 99th percentile.",
                )
        else:
            _skip(sec, data, f"sample:{rel}", f"the numeric distributions of {rel}")
        cats = data.get(f"categories:{rel}")
        if cats is not None:
            cats = cats[~cats["column"].isin(labels)]
            if len(cats):
                fig, t = plot_categorical_distributions(cats, entity, rel)
                sec.add_figure(fig, t)
        else:
            _skip(sec, data, f"categories:{rel}", f"the categorical distributions of {rel}")
        if labels:
            sec.add_text(f"Labels ({', '.join(sorted(labels))}) are shown under Label balance.")

    sec = report.section("Missing values", anchor="missingness")
    for group, rels in (("raw tables", RAW_TABLES), ("feature tables", tuple(FEATURE_TABLES))):
        frames = {r: data.frames[f"nulls:{r}"] for r in rels if f"nulls:{r}" in data.frames}
        for r in rels:
            if r not in {*frames}:
                _skip(sec, data, f"nulls:{r}", f"the NULL shares of {r}")
        if frames:
            fig, t = plot_null_shares(frames, f"Share of NULL values per column: {group}")
            sec.add_figure(fig, t)

    sec = report.section("Correlations", anchor="correlations")
    for rel in FEATURE_TABLES:
        if _skip(sec, data, f"sample:{rel}", f"the correlations of {rel}"):
            continue
        sample = data.frames[f"sample:{rel}"]
        if sample.select_dtypes("number").shape[1] >= 2:
            fig, t = plot_correlations(sample, rel)
            sec.add_figure(fig, t, "Labels included, so their strongest correlates stand out.")

    sec = report.section("Satisfaction by age group and income bracket", anchor="satisfaction")
    if not _skip(sec, data, SAT_AGE, "satisfaction by age group"):
        fig, t = plot_satisfaction_by(data.frames[SAT_AGE], "age_group", "age group")
        sec.add_figure(fig, t, f"From {SAT_AGE}. Error bars: 95 % CI = 1.96 sd / sqrt(n).")
    if not _skip(sec, data, SAT_INCOME, "satisfaction by income bracket"):
        fig, t = plot_satisfaction_by(data.frames[SAT_INCOME], "income_bracket", "income bracket")
        sec.add_figure(fig, t, f"From {SAT_INCOME}.")
    if not _skip(sec, data, SAT_CROSS, "satisfaction by age group and income bracket"):
        fig, t = plot_satisfaction_cross(data.frames[SAT_CROSS])
        sec.add_figure(
            fig, t, f"From {SAT_CROSS}; cells with fewer than 20 surveyed customers are grey."
        )
    if SAT_AGE in data.frames:
        df = data.frames[SAT_AGE]
        sec.add_table(
            df.set_index("age_group")
            .reindex(ordered(list(df["age_group"]), "age_group"))
            .reset_index(),
            caption=SAT_AGE,
            float_format=".2f",
        )

    sec = report.section("Default rate by purpose and grade", anchor="default-rate")
    if not _skip(sec, data, DEFAULT_GRADE, "default rate by grade"):
        fig, t = plot_default_rate(data.frames[DEFAULT_GRADE], "grade")
        sec.add_figure(fig, t, f"From {DEFAULT_GRADE}.")
    if not _skip(sec, data, DEFAULT_PURPOSE, "default rate by purpose"):
        fig, t = plot_default_rate(data.frames[DEFAULT_PURPOSE], "purpose")
        sec.add_figure(fig, t, f"From {DEFAULT_PURPOSE}.")

    sec = report.section("Label balance", anchor="labels")
    if not _skip(sec, data, "label:customer_satisfaction", "the satisfaction label"):
        fig, t = plot_satisfaction_label(
            data.frames["label:customer_satisfaction"],
            data.frames["label:customer_satisfaction_nulls"],
        )
        sec.add_figure(fig, t)
    if not _skip(sec, data, "label:segment", "the segment label"):
        fig, t = plot_segment_label(data.frames["label:segment"])
        sec.add_figure(fig, t)
    if not _skip(sec, data, "label:defaulted", "the default label"):
        fig, t = plot_defaulted_label(data.frames["label:defaulted"])
        sec.add_figure(fig, t)

    sec = report.section("Rejected rows", anchor="rejected")
    rejected = {}
    for entity in ENTITIES:
        key = f"rejected:{entity}"
        if not _skip(sec, data, key, f"the rejected {entity}"):
            rejected[entity] = data.frames[key]
    if rejected:
        raw_rows = {e: data.rows(f"raw.{e}") for e in rejected}
        fig, t = plot_rejections(rejected, raw_rows)
        sec.add_figure(
            fig,
            t,
            "Each raw row is either staged or rejected with the first reason "
            "that applies (docs/data_contract.md).",
        )
    return report


def write_eda(
    out_dir: str | Path = DEFAULT_OUTPUT,
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = DEFAULT_SEED,
    embed: bool = True,
    path: str | Path | None = None,
) -> tuple[Path, int]:
    """Read the warehouse (read-only, closed before anything is drawn) and write
    `out_dir/index.html`; returns the page and its number of plots."""
    report = read_then_draw(
        path, partial(collect_eda, sample_rows=sample_rows, seed=seed), build_report
    )
    return render(report, out_dir, embed=embed), len(report.figures)
