"""Exploratory data analysis of the warehouse as one static HTML page with plots.

`python -m scripts.eda [--output reports/eda]` reads the warehouse (`WAREHOUSE_PATH`, read-only;
the connection is closed before any plot is drawn) and writes `index.html` with: the distribution
of every feature of `marts.customer_features` and `marts.loan_features`, NULL shares of `raw.*`
and the feature tables, Spearman correlations of the numeric features, satisfaction by age group
and income bracket, default rate by purpose and grade, the balance of the labels and the rows
staging rejected, by reason.

Aggregates (counts, NULL shares, category frequencies, the marts) are computed in SQL over whole
tables; only the histograms and correlations read rows, a seeded reservoir sample of at most
`--sample-rows` per table, so the report stays fast on large warehouses. A table that is missing
(a warehouse without loans, or not yet built by dbt) skips its part with a note on the page.

Exit codes: 0 written; 2 a user error (no warehouse, locked, none of the tables, output not
writable), printed as one line.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ml import config, warehouse
from ml.cli import ArgumentParser, non_negative_int, positive_int, run
from ml.errors import UserError
from ml.warehouse import qualified, quote_ident, relation_exists
from scripts.report_html import Report, Section, new_figure, render

DEFAULT_OUTPUT = config.PROJECT_ROOT / "reports" / "eda"
DEFAULT_SAMPLE_ROWS = 200_000
DEFAULT_SEED = 42

CUSTOMER_FEATURES = "marts.customer_features"
LOAN_FEATURES = "marts.loan_features"
FEATURE_TABLES = {CUSTOMER_FEATURES: "customers", LOAN_FEATURES: "loans"}
RAW_TABLES = ("raw.customers", "raw.orders", "raw.loans")
ENTITIES = ("customers", "orders", "loans")
SAT_AGE = "marts.satisfaction_by_age_group"
SAT_INCOME = "marts.satisfaction_by_income_bracket"
SAT_CROSS = "marts.satisfaction_by_age_group_and_income_bracket"
DEFAULT_PURPOSE = "marts.default_rate_by_purpose"
DEFAULT_GRADE = "marts.default_rate_by_grade"

#: Labels of the built-in tasks per relation: shown under "label balance", not as features.
LABELS: dict[str, tuple[str, ...]] = {
    rel: tuple(t.target for t in config.BUILTIN_TASKS.values() if t.relation == rel)
    for rel in FEATURE_TABLES
}

#: Display order of bucketed categories (anything else: by frequency).
ORDERS: dict[str, list[str]] = {
    "age_group": ["18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown"],
    "income_bracket": ["<25k", "25-50k", "50-75k", "75-100k", "100-150k", "150k+", "unknown"],
    "grade": [*"ABCDEFG", "unknown"],
}
MISSING_LABEL = "(missing)"

#: Units of the known columns, for axis labels; `unit()` guesses the rest from the name.
UNITS: dict[str, str] = {
    "age": "years",
    "customer_age": "years",
    "income": "$ per year",
    "annual_income": "$ per year",
    "household_size": "people",
    "age_x_income": "years x $ / 1000",
    "order_count": "orders",
    "prior_order_count": "orders",
    "orders_last_90d": "orders",
    "avg_items_per_order": "items",
    "distinct_categories": "categories",
    "customer_satisfaction": "score 1-10",
    "term_months": "months",
    "interest_rate": "% per year",
    "credit_score": "points",
    "debt_to_income": "ratio",
    "delinquencies_2y": "count",
    "open_accounts": "accounts",
    "revolving_utilization": "ratio",
    "loan_to_income": "ratio",
    "installment_to_income": "ratio",
    "monthly_installment": "$ per month",
    "defaulted": "0 = repaid, 1 = defaulted",
}

_INT_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
}
_FLOAT_TYPES = {"FLOAT", "DOUBLE", "REAL"}
_TIME_TYPES = {
    "DATE",
    "TIMESTAMP",
    "TIMESTAMP_NS",
    "TIMESTAMP_MS",
    "TIMESTAMP_S",
    "TIMESTAMP WITH TIME ZONE",
}
_TEXT_TYPES = {"VARCHAR", "BOOLEAN"}
#: The query failed because a table or column is not what this report expects (a user's own
#: warehouse, a half-built one): skip that part with a note rather than fail the whole report.
_SCHEMA_ERRORS = (duckdb.CatalogException, duckdb.BinderException)

ACCENT = "#3b6ea8"
ACCENT_LIGHT = "#a9c1e0"
CI_Z = 1.96


def unit(column: str) -> str:
    """The unit of a column for an axis label (known columns, else guessed from the name)."""
    if column in UNITS:
        return UNITS[column]
    name = column.lower()
    if name.endswith("_days") or name.startswith("days_") or "_days_" in name:
        return "days"
    if name.endswith("_years"):
        return "years"
    if name.startswith("share_") or name.endswith(("_share", "_rate", "_pct")):
        return "share 0-1"
    if any(w in name for w in ("amount", "spend", "income", "value", "price")):
        return "$"
    if name.endswith("_at") or name.endswith("_date"):
        return "date"
    return "value"


def axis_label(column: str) -> str:
    return f"{column} ({unit(column)})"


def _kind(duck_type: str) -> str | None:
    base = duck_type.upper().split("(")[0].strip()
    if base in _INT_TYPES or base in _FLOAT_TYPES or base == "DECIMAL":
        return "numeric"
    if base in _TIME_TYPES:
        return "time"
    if base in _TEXT_TYPES or base.startswith("ENUM"):
        return "categorical"
    return None  # lists, structs, blobs: not plotted


def _is_id(column: str) -> bool:
    return column == "id" or column.endswith("_id")


# ---------------------------------------------------------------------------------------------
# collect: every query, with the connection open; returns plain frames


@dataclass
class EdaData:
    """What the report is drawn from: frames by key, and why a part could not be read."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    sample_rows: int = DEFAULT_SAMPLE_ROWS
    seed: int = DEFAULT_SEED

    def get(self, key: str) -> pd.DataFrame | None:
        return self.frames.get(key)


def _df(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    return int(con.execute(f"select count(*) from {qualified(relation)}").fetchall()[0][0])


def _schema(con: duckdb.DuckDBPyConnection, relation: str) -> pd.DataFrame:
    rows = con.execute(f"describe select * from {qualified(relation)}").fetchall()
    return pd.DataFrame(
        {
            "column": [r[0] for r in rows],
            "type": [r[1] for r in rows],
            "kind": [_kind(r[1]) for r in rows],
        }
    )


def _try(
    data: EdaData,
    key: str,
    relations: Sequence[str],
    con: duckdb.DuckDBPyConnection,
    read: Callable[[], pd.DataFrame],
) -> None:
    """Store `read()` under `key`, or the reason it could not be read under `data.skipped`."""
    absent = [r for r in relations if not relation_exists(con, r)]
    if absent:
        data.skipped[key] = f"{', '.join(absent)} not found in the warehouse"
        return
    try:
        data.frames[key] = read()
    except _SCHEMA_ERRORS as err:
        first = str(err).splitlines()[0]
        data.skipped[key] = f"{', '.join(relations)} could not be read as expected ({first})"


def _null_shares(con: duckdb.DuckDBPyConnection, relation: str) -> pd.DataFrame:
    columns = _schema(con, relation)["column"].tolist()
    counts = ", ".join(f"count({quote_ident(c)})" for c in columns)
    row = con.execute(f"select count(*), {counts} from {qualified(relation)}").fetchall()[0]
    total = int(row[0])
    non_null = np.array(row[1:], dtype=float)
    return pd.DataFrame(
        {
            "column": columns,
            "rows": total,
            "null_count": (total - non_null).astype(int),
            "null_share": (1 - non_null / total) if total else np.zeros(len(columns)),
        }
    )


def _sample(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[str], max_rows: int, seed: int
) -> pd.DataFrame:
    """Numeric and time columns of a seeded reservoir sample (the whole table when it is small).

    Numbers are read as DOUBLE (so an integer column with NULLs is NaN, not an object column).
    """
    schema = _schema(con, relation).set_index("column")
    select = ", ".join(
        f"cast({quote_ident(c)} as {'double' if schema.at[c, 'kind'] == 'numeric' else 'timestamp'})"
        f" as {quote_ident(c)}"
        for c in columns
    )
    sample = ""
    if _count(con, relation) > max_rows:
        sample = f" using sample reservoir({int(max_rows)} rows) repeatable ({int(seed)})"
    return _df(con, f"select {select} from {qualified(relation)}{sample}")


def _categories(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[str], top: int = 25
) -> pd.DataFrame:
    """Frequency of each value (the `top` most frequent, the rest as one row) per column."""
    frames = []
    total = _count(con, relation)
    for col in columns:
        ident = quote_ident(col)
        df = _df(
            con,
            f"select cast({ident} as varchar) as value, count(*) as n from {qualified(relation)}"
            f" group by 1 order by n desc, value limit {int(top) + 1}",
        )
        if len(df) > top:
            df = df.head(top)
            rest = total - int(df["n"].sum())
            df = pd.concat([df, pd.DataFrame({"value": ["(other values)"], "n": [rest]})])
        df["value"] = df["value"].astype(object).where(df["value"].notna(), MISSING_LABEL)
        df.insert(0, "column", col)
        frames.append(df)
    if not frames:
        return pd.DataFrame({"column": [], "value": [], "n": []})
    return pd.concat(frames, ignore_index=True)


def _feature_columns(con: duckdb.DuckDBPyConnection, relation: str) -> pd.DataFrame:
    """The table's schema with a `role`: id, label, or feature."""
    schema = _schema(con, relation)
    labels = set(LABELS.get(relation, ()))
    schema["role"] = [
        "id" if _is_id(c) else "label" if c in labels else "feature" for c in schema["column"]
    ]
    return schema


def collect_eda(
    con: duckdb.DuckDBPyConnection,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = DEFAULT_SEED,
) -> EdaData:
    """Run every query of the report; returns frames keyed by what they hold.

    Raises `UserError` when the warehouse holds none of the tables the report reads.
    """
    data = EdaData(sample_rows=sample_rows, seed=seed)
    relations = [
        *RAW_TABLES,
        *(f"staging.stg_{e}" for e in ENTITIES),
        *(f"staging.stg_{e}_rejected" for e in ENTITIES),
        *FEATURE_TABLES,
        SAT_AGE,
        SAT_INCOME,
        SAT_CROSS,
        DEFAULT_PURPOSE,
        DEFAULT_GRADE,
    ]
    present = [r for r in relations if relation_exists(con, r)]
    if not present:
        raise UserError(
            "the warehouse holds none of the tables the EDA reads (raw.*, staging.*, marts.*): "
            "run the simulator (or scripts.load_csv) and `dbt build` first"
        )
    data.frames["overview"] = pd.DataFrame(
        {
            "relation": relations,
            "rows": [_count(con, r) if r in present else None for r in relations],
            "columns": [len(_schema(con, r)) if r in present else None for r in relations],
        }
    )

    for rel in FEATURE_TABLES:
        _try(data, f"schema:{rel}", [rel], con, lambda rel=rel: _feature_columns(con, rel))
        schema = data.get(f"schema:{rel}")
        if schema is None:
            continue
        plotted = schema[schema["role"] != "id"]
        rows_cols = plotted[plotted["kind"].isin(["numeric", "time"])]["column"].tolist()
        cat_cols = plotted[plotted["kind"] == "categorical"]["column"].tolist()
        _try(
            data,
            f"sample:{rel}",
            [rel],
            con,
            lambda rel=rel, c=rows_cols: _sample(con, rel, c, sample_rows, seed),
        )
        _try(
            data,
            f"categories:{rel}",
            [rel],
            con,
            lambda rel=rel, c=cat_cols: _categories(con, rel, c),
        )

    for rel in (*RAW_TABLES, *FEATURE_TABLES):
        _try(data, f"nulls:{rel}", [rel], con, lambda rel=rel: _null_shares(con, rel))

    for rel in (SAT_AGE, SAT_INCOME, SAT_CROSS, DEFAULT_PURPOSE, DEFAULT_GRADE):
        _try(data, rel, [rel], con, lambda rel=rel: _df(con, f"select * from {qualified(rel)}"))

    cf, lf = qualified(CUSTOMER_FEATURES), qualified(LOAN_FEATURES)
    label_queries = {
        "label:customer_satisfaction": (
            CUSTOMER_FEATURES,
            f"select floor(customer_satisfaction * 4) / 4 as bin, count(*) as n from {cf}"
            " where customer_satisfaction is not null group by 1 order by 1",
        ),
        "label:customer_satisfaction_nulls": (
            CUSTOMER_FEATURES,
            "select count(*) as n, count(customer_satisfaction) as surveyed,"
            f" avg(customer_satisfaction) as mean from {cf}",
        ),
        "label:segment": (
            CUSTOMER_FEATURES,
            f"select segment as value, count(*) as n from {cf} group by 1 order by n desc",
        ),
        "label:defaulted": (
            LOAN_FEATURES,
            f"select cast(defaulted as integer) as value, count(*) as n from {lf}"
            " group by 1 order by 1",
        ),
    }
    for key, (rel, sql) in label_queries.items():
        _try(data, key, [rel], con, lambda sql=sql: _df(con, sql))

    for entity in ENTITIES:
        rej = f"staging.stg_{entity}_rejected"
        sql = (
            "select coalesce(rejection_reason, '(no reason)') as reason, count(*) as n"
            f" from {qualified(rej)} group by 1 order by n desc, reason"
        )
        _try(data, f"rejected:{entity}", [rej], con, lambda sql=sql: _df(con, sql))
    return data


# ---------------------------------------------------------------------------------------------
# plots: pure functions of the collected frames


def _ordered(values: Sequence[str], column: str) -> list[str]:
    order = ORDERS.get(column, [])
    rank = {v: i for i, v in enumerate(order)}
    tail = [MISSING_LABEL, "(other values)"]
    return sorted(
        values,
        key=lambda v: (v in tail, rank.get(v, len(order)), tail.index(v) if v in tail else 0),
    )


def _grid(n: int, ncols: int, panel: tuple[float, float]) -> tuple[Any, list[Any]]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = new_figure(
        nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows + 0.6), squeeze=False
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _thousands(ax: Any, axis: str = "y") -> None:
    fmt = FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _bins(x: np.ndarray, lo: float, hi: float, n: int = 40) -> Any:
    """`n` equal bins, or integer-aligned ones for whole numbers (no empty comb teeth)."""
    if np.all(x == np.round(x)) and hi > lo:
        width = max(1, math.ceil((hi - lo + 1) / n))
        return np.arange(lo - 0.5, hi + width, width)
    return n


def _compact_x(ax: Any) -> None:
    """Tick labels like 20k / 1.5M on a linear x axis, so large numbers do not overlap."""

    def fmt(v: float, _: Any) -> str:
        for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(v) >= div:
                return f"{v / div:g}{suffix}"
        return f"{v:g}"

    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.xaxis.set_major_formatter(FuncFormatter(fmt))


def _histogram(ax: Any, values: pd.Series, column: str, entity: str, first_col: bool) -> None:
    """One panel: discrete bars, a log-x histogram or a p99-clipped histogram, as fits the data."""
    raw = values.dropna()
    null_share = 1 - len(raw) / len(values) if len(values) else 0.0
    suffix = f", {null_share:.0%} NULL" if null_share >= 0.005 else ""
    label = axis_label(column)
    discrete = False
    if raw.empty:
        ax.text(0.5, 0.5, "all values NULL", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(f"{column}{suffix}", fontsize=10)
        ax.set_xlabel(label, fontsize=8)
        return
    if pd.api.types.is_datetime64_any_dtype(raw):
        ax.hist(raw, bins=40, color=ACCENT)
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_title(f"{column}{suffix}", fontsize=10)
    else:
        x = raw.to_numpy(dtype=float)
        distinct = np.unique(x)
        if len(distinct) <= 25 and np.all(distinct == np.round(distinct)):
            discrete = True
            counts = pd.Series(x).value_counts().sort_index()
            ax.bar(counts.index, counts.to_numpy(), width=0.8, color=ACCENT)
            if len(distinct) <= 12:
                ax.set_xticks(counts.index)
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(f"{column}{suffix}", fontsize=10)
        else:
            lo, p99, hi = np.quantile(x, [0.0, 0.99, 1.0])
            skew = float(pd.Series(x).skew())
            if skew > 2 and lo > 0 and hi / lo > 100:
                ax.hist(x, bins=np.geomspace(lo, hi, 41), color=ACCENT)
                ax.set_xscale("log")
                ax.set_title(f"{column} (log x{suffix})", fontsize=10)
            elif skew > 2 and p99 < hi:
                above = int((x > p99).sum())
                ax.hist(np.minimum(x, p99), bins=40, range=(lo, p99), color=ACCENT)
                ax.set_title(f"{column} (clipped at p99{suffix})", fontsize=10)
                ax.text(
                    0.98,
                    0.95,
                    f"{above:,} > {p99:,.3g}\nin last bin",
                    ha="right",
                    va="top",
                    fontsize=7,
                    transform=ax.transAxes,
                )
            else:
                ax.hist(x, bins=_bins(x, lo, hi), color=ACCENT)
                ax.set_title(f"{column}{suffix}", fontsize=10)
    if (
        not discrete
        and ax.get_xscale() == "linear"
        and not pd.api.types.is_datetime64_any_dtype(raw)
    ):
        _compact_x(ax)
    ax.set_xlabel(label, fontsize=8)
    if first_col:
        ax.set_ylabel(entity, fontsize=8)
    ax.tick_params(labelsize=7)
    _thousands(ax)


def plot_numeric_distributions(
    sample: pd.DataFrame, entity: str, relation: str, total_rows: int
) -> tuple[Any, str]:
    """Small multiples: a histogram per numeric or date column of the sample."""
    columns = list(sample.columns)
    ncols = 5
    fig, axes = _grid(len(columns), ncols, (3.2, 2.5))
    for i, (ax, col) in enumerate(zip(axes, columns, strict=True)):
        _histogram(ax, sample[col], col, entity, first_col=i % ncols == 0)
    sampled = (
        f"sample of {len(sample):,} of {total_rows:,} rows"
        if len(sample) < total_rows
        else f"all {total_rows:,} rows"
    )
    title = f"{relation}: distribution of the numeric features ({sampled})"
    fig.suptitle(title, fontsize=13)
    return fig, title


def plot_categorical_distributions(
    cats: pd.DataFrame, entity: str, relation: str
) -> tuple[Any, str]:
    """Small multiples: a bar chart of value counts per categorical column."""
    columns = list(dict.fromkeys(cats["column"]))
    ncols = 3
    fig, axes = _grid(len(columns), ncols, (4.6, 3.2))
    for i, (ax, col) in enumerate(zip(axes, columns, strict=True)):
        part = cats[cats["column"] == col].set_index("value")["n"]
        if col in ORDERS:
            part = part.reindex(_ordered(list(part.index), col))
        else:
            part = part.reindex(_ordered(list(part.sort_values(ascending=False).index), col))
        labels = [str(v) for v in part.index]
        colors = ["#b0b0b0" if v in (MISSING_LABEL, "(other values)") else ACCENT for v in labels]
        ax.bar(range(len(part)), part.to_numpy(), color=colors)
        ax.set_xticks(range(len(part)), labels, rotation=35, ha="right", fontsize=8)
        ax.set_title(col, fontsize=10)
        ax.set_xlabel(f"{col} (category)", fontsize=8)
        if i % ncols == 0:
            ax.set_ylabel(entity, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        _thousands(ax)
    title = f"{relation}: distribution of the categorical features (all rows; grey = missing)"
    fig.suptitle(title, fontsize=13)
    return fig, title


def plot_null_shares(frames: dict[str, pd.DataFrame], title: str) -> tuple[Any, str]:
    """Horizontal bars of the NULL share per column, a panel per table."""
    n = len(frames)
    longest = max(len(f) for f in frames.values())
    fig, axes = new_figure(1, n, figsize=(4.6 * n, 0.22 * longest + 1.6), squeeze=False)
    for ax, (rel, df) in zip(axes[0], frames.items(), strict=True):
        share = df["null_share"].to_numpy() * 100
        y = np.arange(len(df))
        ax.barh(y, share, color=[ACCENT if s > 0 else ACCENT_LIGHT for s in share])
        ax.set_yticks(y, df["column"].tolist(), fontsize=8)
        ax.invert_yaxis()
        top = max(5.0, float(share.max()) * 1.3)
        ax.set_xlim(0, top)
        for yi, s in zip(y, share, strict=True):
            if s > 0:
                ax.text(s + top * 0.01, yi, f"{s:.1f} %", va="center", fontsize=7)
        rows = int(df["rows"].iloc[0]) if len(df) else 0
        ax.set_title(f"{rel} ({rows:,} rows)", fontsize=10)
        ax.set_xlabel("NULL share (% of rows)", fontsize=8)
        ax.set_ylabel("column", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(title, fontsize=13)
    return fig, title


def plot_correlations(sample: pd.DataFrame, relation: str) -> tuple[Any, str]:
    """Spearman rank correlation heatmap of the numeric columns (robust to heavy tails)."""
    numeric = sample.select_dtypes("number")
    numeric = numeric.loc[:, numeric.nunique() > 1]
    corr = numeric.corr(method="spearman", min_periods=30)
    k = len(corr)
    size = max(6.0, 0.36 * k + 2.5)
    fig, axes = new_figure(figsize=(size + 1.2, size))
    ax = axes
    im = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(k), corr.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), corr.index, fontsize=8)
    for i in range(k):
        for j in range(k):
            r = corr.iat[i, j]
            if i != j and not np.isnan(r) and abs(r) >= 0.3:
                ax.text(
                    j,
                    i,
                    f"{r:.1f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if abs(r) > 0.65 else "black",
                )
    fig.colorbar(im, ax=ax, shrink=0.7, label="Spearman rank correlation (-1 to 1, unitless)")
    ax.set_xlabel("feature", fontsize=9)
    ax.set_ylabel("feature", fontsize=9)
    title = f"{relation}: Spearman correlation of numeric columns (|r| >= 0.3 annotated)"
    ax.set_title(title, fontsize=11)
    return fig, title


def _ci(sd: pd.Series, n: pd.Series) -> np.ndarray:
    """Half-width of the 95 % confidence interval of a mean, from stddev and count."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (CI_Z * sd.astype(float) / np.sqrt(n.astype(float))).fillna(0).to_numpy()


def plot_satisfaction_by(df: pd.DataFrame, column: str, what: str) -> tuple[Any, str]:
    """Mean satisfaction per bucket: 95 % CI of the mean (dark) and +-1 SD (light)."""
    df = df.set_index(column).reindex(_ordered(list(df[column]), column)).reset_index()
    x = np.arange(len(df))
    mean = df["mean_satisfaction"].to_numpy(dtype=float)
    sd = df["stddev_satisfaction"].fillna(0).to_numpy(dtype=float)
    fig, ax = new_figure(figsize=(8, 4.4))
    ax.errorbar(
        x,
        mean,
        yerr=sd,
        fmt="none",
        ecolor=ACCENT_LIGHT,
        elinewidth=8,
        alpha=0.7,
        label="+-1 standard deviation",
    )
    ax.errorbar(
        x,
        mean,
        yerr=_ci(df["stddev_satisfaction"], df["surveyed_count"]),
        fmt="o",
        color=ACCENT,
        ecolor="black",
        capsize=5,
        label="mean, 95 % CI of the mean",
    )
    labels = [f"{v}\nn={int(n):,}" for v, n in zip(df[column], df["surveyed_count"], strict=True)]
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_xlabel(f"{what} (n = surveyed customers)")
    ax.set_ylabel("customer satisfaction (score 1-10)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    title = f"Mean satisfaction by {what}"
    ax.set_title(title)
    return fig, title


def plot_satisfaction_cross(df: pd.DataFrame, min_n: int = 20) -> tuple[Any, str]:
    """Heatmap of mean satisfaction per age group x income bracket (cells with n < min_n grey)."""
    rows = _ordered(list(df["age_group"].unique()), "age_group")
    cols = _ordered(list(df["income_bracket"].unique()), "income_bracket")
    mean = df.pivot(index="age_group", columns="income_bracket", values="mean_satisfaction")
    count = df.pivot(index="age_group", columns="income_bracket", values="surveyed_count")
    mean, count = mean.reindex(index=rows, columns=cols), count.reindex(index=rows, columns=cols)
    shown = mean.where(count.fillna(0) >= min_n)
    fig, ax = new_figure(figsize=(9, 6))
    ax.set_facecolor("#e6e6e6")
    im = ax.imshow(shown.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    finite = shown.to_numpy(dtype=float)
    mid = np.nanmean(finite) if np.isfinite(finite).any() else 0
    for i in range(len(rows)):
        for j in range(len(cols)):
            m, n = mean.iat[i, j], count.iat[i, j]
            if pd.isna(n) or n == 0:
                continue
            text = f"{m:.2f}\nn={int(n):,}" if n >= min_n else f"n={int(n)}\n(< {min_n})"
            color = "white" if n >= min_n and m < mid else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("income bracket ($ per year)")
    ax.set_ylabel("age group (years)")
    fig.colorbar(im, ax=ax, label="mean satisfaction (score 1-10)")
    title = "Mean satisfaction by age group and income bracket"
    ax.set_title(f"{title} (n = surveyed customers)")
    return fig, title


def _rate_ci(rate: pd.Series, n: pd.Series) -> np.ndarray:
    p, m = rate.astype(float).to_numpy(), n.astype(float).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(CI_Z * np.sqrt(p * (1 - p) / m))


def plot_default_rate(df: pd.DataFrame, column: str) -> tuple[Any, str]:
    """Default rate per bucket with the 95 % CI of a proportion (normal approximation)."""
    if column in ORDERS:
        df = df.set_index(column).reindex(_ordered(list(df[column]), column)).reset_index()
    else:
        df = df.sort_values("default_rate", ascending=True)
    rate = df["default_rate"].astype(float) * 100
    err = _rate_ci(df["default_rate"], df["loan_count"]) * 100
    labels = [f"{v} (n={int(n):,})" for v, n in zip(df[column], df["loan_count"], strict=True)]
    title = f"Default rate by {column}"
    if column in ORDERS:
        fig, ax = new_figure(figsize=(8, 4.4))
        x = np.arange(len(df))
        ax.bar(x, rate, yerr=err, capsize=4, color=ACCENT)
        ax.set_xticks(x, [lab.replace(" (", "\n(") for lab in labels], fontsize=8)
        ax.set_xlabel(f"{column} (n = loan applications)")
        ax.set_ylabel("default rate (% of loans)")
        for xi, r in zip(x, rate, strict=True):
            ax.text(xi, r / 2, f"{r:.1f} %", ha="center", color="white", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    else:
        fig, ax = new_figure(figsize=(8, 0.45 * len(df) + 1.5))
        y = np.arange(len(df))
        ax.barh(y, rate, xerr=err, capsize=4, color=ACCENT)
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_ylabel(f"{column} (n = loan applications)")
        ax.set_xlabel("default rate (% of loans)")
        for yi, r in zip(y, rate, strict=True):
            ax.text(r / 2, yi, f"{r:.1f} %", va="center", ha="center", color="white", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{title} (error bars: 95 % CI)")
    return fig, title


def plot_satisfaction_label(bins: pd.DataFrame, totals: pd.DataFrame) -> tuple[Any, str]:
    n, surveyed, mean = (totals.iat[0, i] for i in range(3))
    fig, ax = new_figure(figsize=(8, 4))
    ax.bar(bins["bin"].astype(float) + 0.125, bins["n"], width=0.25, color=ACCENT)
    if surveyed:
        ax.axvline(float(mean), color="black", linestyle="--", label=f"mean {float(mean):.2f}")
        ax.legend(fontsize=8)
    ax.set_xlabel("customer_satisfaction (score 1-10, bins of 0.25)")
    ax.set_ylabel("customers")
    _thousands(ax)
    missing = (n - surveyed) / n if n else 0
    title = "Label balance: customer satisfaction"
    ax.set_title(f"{title} ({int(surveyed):,} surveyed, {missing:.1%} not surveyed)")
    return fig, title


def _count_bars(ax: Any, labels: list[str], counts: np.ndarray, total: int) -> None:
    colors = ["#b0b0b0" if lab == MISSING_LABEL else ACCENT for lab in labels]
    x = np.arange(len(labels))
    ax.bar(x, counts, color=colors)
    ax.set_xticks(x, labels, fontsize=9)
    for xi, c in zip(x, counts, strict=True):
        ax.text(xi, c, f"{int(c):,}\n{c / total:.1%}", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, max(counts.max(), 1) * 1.22)
    _thousands(ax)


def plot_segment_label(df: pd.DataFrame) -> tuple[Any, str]:
    df = df.assign(value=df["value"].astype(object).where(df["value"].notna(), MISSING_LABEL))
    df = df.set_index("value").reindex(_ordered(list(df["value"]), "segment")).reset_index()
    total = int(df["n"].sum())
    fig, ax = new_figure(figsize=(8, 4))
    _count_bars(ax, df["value"].tolist(), df["n"].to_numpy(), total)
    ax.set_xlabel("segment (CRM label; grey = missing)")
    ax.set_ylabel("customers")
    title = "Label balance: customer segments"
    ax.set_title(f"{title} ({total:,} customers)")
    return fig, title


def plot_defaulted_label(df: pd.DataFrame) -> tuple[Any, str]:
    names = {0: "repaid (0)", 1: "defaulted (1)"}
    labels = [MISSING_LABEL if pd.isna(v) else names.get(int(v), str(v)) for v in df["value"]]
    total = int(df["n"].sum())
    counts = df["n"].to_numpy()
    positive = int(df.loc[df["value"] == 1, "n"].sum())
    fig, ax = new_figure(figsize=(6, 4))
    _count_bars(ax, labels, counts, total)
    ax.set_xlabel("defaulted (0 = repaid, 1 = defaulted)")
    ax.set_ylabel("loan applications")
    share = positive / total if total else 0
    title = "Label balance: loan defaults"
    ax.set_title(f"{title} ({share:.1%} of {total:,} defaulted)")
    return fig, title


def plot_rejections(
    rejected: dict[str, pd.DataFrame], raw_rows: dict[str, int | None]
) -> tuple[Any, str]:
    n = len(rejected)
    longest = max(max(len(df) for df in rejected.values()), 1)
    fig, axes = new_figure(1, n, figsize=(5.2 * n, 0.45 * longest + 2.0), squeeze=False)
    for ax, (entity, df) in zip(axes[0], rejected.items(), strict=True):
        total = int(df["n"].sum())
        raw = raw_rows.get(entity)
        of_raw = f" of {raw:,} raw rows ({total / raw:.1%})" if raw else ""
        ax.set_title(f"stg_{entity}_rejected: {total:,}{of_raw}", fontsize=10)
        ax.set_xlabel("rejected rows", fontsize=8)
        ax.set_ylabel("rejection_reason", fontsize=8)
        if df.empty:
            ax.text(0.5, 0.5, "no rejected rows", ha="center", va="center", transform=ax.transAxes)
            ax.set_yticks([])
            continue
        y = np.arange(len(df))
        counts = df["n"].to_numpy()
        ax.barh(y, counts, color=ACCENT)
        ax.set_yticks(y, df["reason"].tolist(), fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, counts.max() * 1.3)
        for yi, c in zip(y, counts, strict=True):
            ax.text(c, yi, f" {int(c):,}", va="center", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        _thousands(ax, "x")
    title = "Rows rejected by staging, by reason"
    fig.suptitle(title, fontsize=13)
    return fig, title


# ---------------------------------------------------------------------------------------------
# the report


def _skip(section: Section, data: EdaData, key: str, what: str) -> bool:
    """Add a note and return True when `key` could not be read."""
    if key in data.frames:
        return False
    reason = data.skipped.get(key, "not read")
    section.add_note(f"Skipped {what}: {reason}.")
    return True


def _rows(data: EdaData, relation: str) -> int | None:
    ov = data.frames["overview"].set_index("relation")["rows"]
    value = ov.get(relation)
    return None if value is None or pd.isna(value) else int(value)


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
                fig, t = plot_numeric_distributions(features, entity, rel, _rows(data, rel) or 0)
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
            .reindex(_ordered(list(df["age_group"]), "age_group"))
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
        raw_rows = {e: _rows(data, f"raw.{e}") for e in rejected}
        fig, t = plot_rejections(rejected, raw_rows)
        sec.add_figure(
            fig,
            t,
            "Each raw row is either staged or rejected with the first reason "
            "that applies (docs/data_contract.md).",
        )
    return report


def build_eda(
    con: duckdb.DuckDBPyConnection,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = DEFAULT_SEED,
) -> Report:
    """Query the warehouse and draw the report (data in `report.data`, figures in sections)."""
    return build_report(collect_eda(con, sample_rows=sample_rows, seed=seed))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: query (read-only, closed before plotting), draw, write, print path and plot count."""
    parser = ArgumentParser(prog="python -m scripts.eda", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="DIR",
        help="folder for index.html (default: reports/eda in the repository)",
    )
    parser.add_argument(
        "--sample-rows",
        type=positive_int,
        default=DEFAULT_SAMPLE_ROWS,
        metavar="N",
        help=f"rows sampled per table for histograms and correlations (default {DEFAULT_SAMPLE_ROWS:,})",
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=DEFAULT_SEED,
        help="seed of the sample (default 42)",
    )
    parser.add_argument(
        "--png-files",
        action="store_true",
        help="write the plots as PNG files in DIR/figures/ instead of embedding them in the page",
    )
    args = parser.parse_args(argv)
    start = time.monotonic()
    with warehouse.session(read_only=True) as con:
        data = collect_eda(con, sample_rows=args.sample_rows, seed=args.seed)
    report = build_report(data)
    try:
        path = render(report, args.output, embed=not args.png_files)
    except OSError as err:
        raise UserError(
            f"cannot write the report to {args.output}: {err.strerror or err}"
        ) from None
    print(f"{path}: {len(report.figures)} plots ({time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    run(main, "scripts.eda")
