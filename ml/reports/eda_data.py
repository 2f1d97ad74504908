"""What the EDA page is drawn from: counts, NULL shares, category frequencies and marts read in
SQL over whole tables, and a seeded sample of rows for the histograms and correlations.

Every query runs here, with the warehouse open; the plots (`eda_plots`) draw the plain frames
this module returns. A part whose table is missing, or is not shaped as expected, is recorded in
`EdaData.skipped` with the reason, for a note on the page.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.core.config import DEFAULT_SEED
from ml.core.errors import UserError
from ml.core.names import qualified, quote_ident
from ml.core.tasks import BUILTIN_TASKS
from ml.core.warehouse import Warehouse
from ml.reports.labels import MISSING_LABEL, OTHER_VALUES
from ml.reports.reading import missing_columns

DEFAULT_SAMPLE_ROWS = 200_000

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
MARTS = (SAT_AGE, SAT_INCOME, SAT_CROSS, DEFAULT_PURPOSE, DEFAULT_GRADE)
#: Every relation the page reads, in the order of its overview table.
RELATIONS = (
    *RAW_TABLES,
    *(f"staging.stg_{e}" for e in ENTITIES),
    *(f"staging.stg_{e}_rejected" for e in ENTITIES),
    *FEATURE_TABLES,
    *MARTS,
)

#: Labels of the built-in tasks per relation: shown under "label balance", not as features.
LABELS: dict[str, tuple[str, ...]] = {
    rel: tuple(t.target for t in BUILTIN_TASKS.values() if t.relation == rel)
    for rel in FEATURE_TABLES
}
#: Most frequent values of a categorical column drawn (the rest: one bar).
TOP_CATEGORIES = 25


@dataclass
class EdaData:
    """What the page is drawn from: frames by key, and why a part could not be read."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    sample_rows: int = DEFAULT_SAMPLE_ROWS
    seed: int = DEFAULT_SEED

    def get(self, key: str) -> pd.DataFrame | None:
        return self.frames.get(key)

    def rows(self, relation: str) -> int | None:
        """Rows of `relation` (None when it was not read)."""
        counts = self.frames["overview"].set_index("relation")["rows"]
        value = counts.get(relation)
        return None if value is None or pd.isna(value) else int(value)


def _kind(kind: pa.DataType) -> str | None:
    """How a column is drawn: "numeric", "time", "categorical", or None (lists, blobs ...)."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "numeric"
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        return "time"
    if pa.types.is_boolean(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "categorical"
    return None


def _is_id(column: str) -> bool:
    return column == "id" or column.endswith("_id")


def _schema(wh: Warehouse, relation: str) -> pd.DataFrame:
    """column, type (the engine's name), kind and role (id, label or feature) of each column."""
    types = wh.sql_types(relation)
    labels = set(LABELS.get(relation, ()))
    columns = list(types)
    return pd.DataFrame(
        {
            "column": columns,
            "type": [types[c] for c in columns],
            "kind": [_kind(f.type) for f in wh.describe(relation)],
            "role": ["id" if _is_id(c) else "label" if c in labels else "feature" for c in columns],
        }
    )


def _overview(wh: Warehouse, present: set[str]) -> pd.DataFrame:
    rows, columns = [], []
    for rel in RELATIONS:
        n = width = None
        if rel in present:
            # a view that cannot be read: its parts say why they are skipped
            with contextlib.suppress(UserError):
                n, width = wh.row_count(rel), len(wh.sql_types(rel))
        rows.append(n)
        columns.append(width)
    return pd.DataFrame({"relation": list(RELATIONS), "rows": rows, "columns": columns})


def _null_shares(wh: Warehouse, relation: str) -> pd.DataFrame:
    columns = list(wh.sql_types(relation))
    counts = ", ".join(f"count({quote_ident(c)})" for c in columns)
    row = wh.query(f"select count(*), {counts} from {qualified(relation)}").iloc[0].tolist()
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


def _as_kind(values: pd.Series, kind: str) -> pd.Series:
    """Numbers as float (an integer column with NULLs is NaN, not an object column), times as
    naive timestamps."""
    if kind == "numeric":
        return pd.to_numeric(values, errors="coerce").astype("float64")
    times = pd.to_datetime(values)
    return times.dt.tz_localize(None) if times.dt.tz is not None else times


def _sample(
    wh: Warehouse, relation: str, schema: pd.DataFrame, max_rows: int, seed: int
) -> pd.DataFrame:
    """The numeric and time columns (but ids) of a seeded sample of at most `max_rows` rows
    (the whole table when it is small)."""
    plotted = schema[(schema["role"] != "id") & schema["kind"].isin(["numeric", "time"])]
    rows = wh.sample_frame(relation, max_rows, seed)
    return pd.DataFrame(
        {c: _as_kind(rows[c], k) for c, k in zip(plotted["column"], plotted["kind"], strict=True)},
        index=rows.index,
    )


def _categories(wh: Warehouse, relation: str, columns: list[str]) -> pd.DataFrame:
    """Frequency of each value (the most frequent, the rest as one row) per column."""
    frames = []
    total = wh.row_count(relation)
    for col in columns:
        df = wh.query(
            f"select cast({quote_ident(col)} as varchar) as value, count(*) as n"
            f" from {qualified(relation)}"
            f" group by 1 order by n desc, value limit {TOP_CATEGORIES + 1}"
        )
        if len(df) > TOP_CATEGORIES:
            df = df.head(TOP_CATEGORIES)
            rest = total - int(df["n"].sum())
            df = pd.concat([df, pd.DataFrame({"value": [OTHER_VALUES], "n": [rest]})])
        df["value"] = df["value"].astype(object).where(df["value"].notna(), MISSING_LABEL)
        df.insert(0, "column", col)
        frames.append(df)
    if not frames:
        return pd.DataFrame({"column": [], "value": [], "n": []})
    return pd.concat(frames, ignore_index=True)


def _query(wh: Warehouse, relation: str, needs: Sequence[str], sql: str) -> pd.DataFrame:
    """`sql` over `relation`, or a `UserError` naming a column it needs that is not there."""
    absent = missing_columns(wh, relation, needs)
    if absent:
        raise UserError(f"it has no column {absent[0]!r}")
    return wh.query(sql)


def _label_queries() -> dict[str, tuple[str, tuple[str, ...], str]]:
    cf, lf = qualified(CUSTOMER_FEATURES), qualified(LOAN_FEATURES)
    sat, seg, dflt = ("customer_satisfaction",), ("segment",), ("defaulted",)
    return {
        "label:customer_satisfaction": (
            CUSTOMER_FEATURES,
            sat,
            f"select floor(customer_satisfaction * 4) / 4 as bin, count(*) as n from {cf}"
            " where customer_satisfaction is not null group by 1 order by 1",
        ),
        "label:customer_satisfaction_nulls": (
            CUSTOMER_FEATURES,
            sat,
            "select count(*) as n, count(customer_satisfaction) as surveyed,"
            f" avg(customer_satisfaction) as mean from {cf}",
        ),
        "label:segment": (
            CUSTOMER_FEATURES,
            seg,
            f"select segment as value, count(*) as n from {cf} group by 1 order by n desc",
        ),
        "label:defaulted": (
            LOAN_FEATURES,
            dflt,
            f"select cast(defaulted as integer) as value, count(*) as n from {lf}"
            " group by 1 order by 1",
        ),
    }


def collect_eda(
    wh: Warehouse, sample_rows: int = DEFAULT_SAMPLE_ROWS, seed: int = DEFAULT_SEED
) -> EdaData:
    """Run every query of the page; returns frames keyed by what they hold.

    Raises `UserError` when the warehouse holds none of the tables the page reads.
    """
    data = EdaData(sample_rows=sample_rows, seed=seed)
    present = {r for r in RELATIONS if wh.exists(r)}
    if not present:
        raise UserError(
            "the warehouse holds none of the tables the EDA reads (raw.*, staging.*, marts.*): "
            "run the simulator (or scripts.load_csv) and `dbt build` first"
        )
    data.frames["overview"] = _overview(wh, present)

    def attempt(key: str, relation: str, read: Callable[[], pd.DataFrame]) -> None:
        """Store `read()` under `key`, or the reason it could not be read under `skipped`."""
        if relation not in present:
            data.skipped[key] = f"{relation} not found in the warehouse"
            return
        try:
            data.frames[key] = read()
        except UserError as err:
            data.skipped[key] = f"{relation} could not be read as expected ({err})"

    for rel in FEATURE_TABLES:
        attempt(f"schema:{rel}", rel, lambda rel=rel: _schema(wh, rel))
        schema = data.get(f"schema:{rel}")
        if schema is None:
            continue
        plotted = schema[schema["role"] != "id"]
        categorical = plotted.loc[plotted["kind"] == "categorical", "column"].tolist()
        attempt(
            f"sample:{rel}", rel, lambda rel=rel, s=schema: _sample(wh, rel, s, sample_rows, seed)
        )
        attempt(f"categories:{rel}", rel, lambda rel=rel, c=categorical: _categories(wh, rel, c))

    for rel in (*RAW_TABLES, *FEATURE_TABLES):
        attempt(f"nulls:{rel}", rel, lambda rel=rel: _null_shares(wh, rel))

    for rel in MARTS:
        attempt(rel, rel, lambda rel=rel: wh.read_frame(rel))

    for key, (rel, needs, sql) in _label_queries().items():
        attempt(key, rel, lambda rel=rel, needs=needs, sql=sql: _query(wh, rel, needs, sql))

    for entity in ENTITIES:
        rej = f"staging.stg_{entity}_rejected"
        sql = (
            "select coalesce(rejection_reason, '(no reason)') as reason, count(*) as n"
            f" from {qualified(rej)} group by 1 order by n desc, reason"
        )
        attempt(
            f"rejected:{entity}",
            rej,
            lambda rej=rej, sql=sql: _query(wh, rej, ("rejection_reason",), sql),
        )
    return data
