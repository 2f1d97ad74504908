"""Score new rows with a task's champion: `python -m ml.predict` and `load_model`.

    python -m ml.predict --task loan_repayment --input new_loans.csv --output scored.csv
    python -m ml.predict --task loan_repayment --table marts.loan_features --write-table ml.loan_scores

    from ml import load_model
    load_model("loan_repayment").predict(df)   # DataFrame: id, prediction, probability, ...

The champion is the one `ml.model_runs` marks for the task's latest run; its file's sha256 must
match the registry before it is unpickled. Input is validated against the features the model was
trained on, and every input row gets exactly one output row, in input order:

- a missing column is refused (one line naming it, exit 2); extra columns are ignored; a column
  whose name differs only in case or surrounding blanks (`Credit_Score`) is taken;
- numbers written as text are parsed (`1e3`, ` 42 `); a value that is not a number (`abc`,
  `1,000`, `$5`) becomes missing and is imputed when such values are a minority of the column's
  values, and the input is refused when they are the majority (the column holds text);
- infinities and numbers beyond +/-1e15 become missing (imputed): no real feature is that large
  and the models compute in float32;
- unseen categories share the encoder's "infrequent" column; missing values are imputed;
- duplicate or missing ids are kept (each row is scored) and reported in one warning line;
  without the id column the rows are numbered 1..n;
- no rows at all (an empty or header-only file, an empty table) is refused: "no rows to score".

The output CSV is written to a temporary file beside it and renamed, so it is complete or absent;
`--write-table` replaces a table in schema `ml` atomically and may not name a table that
ml.train, ml.segment or dbt own. Adjustments (values made missing, repeated ids) are reported on
stderr in one `warning:` line; refusals are one `error:` line and exit code 2.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ml import config
from ml.cli import ArgumentParser, run
from ml.errors import UserError
from ml.experiment import ROW_NUMBER, prediction_frame, validate_task_name
from ml.features import (
    MAX_ABS_TEXT,
    MAX_ABS_VALUE,
    MISSING_TEXT,
    FeatureSet,
    finite_numbers,
    number_or_nan,
    plain_types,
    to_model_frame,
)
from ml.registry import load_verified
from ml.warehouse import (
    parse_relation,
    read_relation,
    relation_exists,
    session,
    write_table,
)

MODEL_RUNS = "ml.model_runs"
#: Tables that ml.train, ml.segment and the marts over them own; --write-table may not replace
#: them (nor any task's `<task>_predictions`). Compared case-insensitively, as DuckDB does.
PROTECTED_TABLES = {
    "model_runs",
    "feature_importance",
    "prediction_explanations",
    "evaluation_predictions",
    "customer_segments",
    "segmentation_runs",
}
#: A numeric feature is refused when more than this share of its non-empty values are not numbers.
MAX_UNPARSEABLE_SHARE = 0.5
_YES = {"y", "yes", "true", "t", "1"}
_NO = {"n", "no", "false", "f", "0"}
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


class MissingColumnError(UserError):
    """The input lacks a column the model needs."""


class NoRowsError(UserError):
    """The input has no rows to score."""


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def _as_frame(frame: Any) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    try:
        return pd.DataFrame(frame)
    except (TypeError, ValueError) as err:
        raise UserError(f"cannot score {type(frame).__name__}: expected a table of rows") from err


def _match_columns(frame: pd.DataFrame, wanted: Sequence[str]) -> dict[str, Any]:
    """wanted name -> the input's column: the same name, else the one equal to it ignoring case
    and surrounding blanks (SQL names are case-insensitive). Absent names are left out."""
    names = list(frame.columns)
    dupes = pd.Index(names)[pd.Index(names).duplicated()]
    by_key: dict[str, list[Any]] = {}
    for name in names:
        by_key.setdefault(str(name).strip().casefold(), []).append(name)
    found: dict[str, Any] = {}
    for want in wanted:
        if want in names:
            if want in dupes:
                raise UserError(f"input has more than one column named {want!r}")
            found[want] = want
            continue
        candidates = by_key.get(want.strip().casefold(), [])
        if len(candidates) > 1:
            shown = " and ".join(repr(str(c)) for c in candidates[:2])
            raise UserError(f"input has columns {shown}: which one is {want!r} is ambiguous")
        if candidates:
            found[want] = candidates[0]
    return found


def _present(series: pd.Series) -> pd.Series:
    """True where a value is given: not null and not a missing marker (`NA`, `null`, blank...)."""
    given = series.notna()
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        text = series.map(lambda v: v.strip().casefold() if isinstance(v, str) else None)
        given &= ~text.isin(MISSING_TEXT)
    return given


def _as_datetimes(series: pd.Series) -> pd.Series:
    """Dates and date-times as naive UTC timestamps; anything else NaT."""
    if pd.api.types.is_datetime64_any_dtype(series):
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return series
    usable = series.map(lambda v: isinstance(v, str | dt.date | pd.Timestamp))
    values = series.where(usable & _present(series), None).astype(object)
    try:
        parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    except (TypeError, ValueError, OverflowError):
        parsed = pd.Series(
            [_one_datetime(v) for v in values], index=series.index, dtype="datetime64[ns, UTC]"
        )
    return parsed.dt.tz_localize(None)


def _one_datetime(value: Any) -> pd.Timestamp:
    try:
        return pd.to_datetime(value, errors="coerce", utc=True)
    except (TypeError, ValueError, OverflowError):
        return pd.NaT


def _yes_no(value: Any) -> Any:
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in _YES:
            return 1.0
        if word in _NO:
            return 0.0
    return value


def _raw_numbers(series: pd.Series, kind: str) -> pd.Series:
    """The column as float64 with infinities kept (NaN where a value is missing or no number)."""
    if kind == "datetime":
        series = _as_datetimes(series)
        days = (series - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86_400.0
        return days.astype("float64")
    if kind == "bool" and not pd.api.types.is_numeric_dtype(series):
        series = series.map(_yes_no)
    if pd.api.types.is_bool_dtype(series) and series.dtype != object:
        return series.astype("float64")
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_complex_dtype(series):
        return pd.to_numeric(series, errors="coerce").astype("float64")
    return series.astype(object).map(number_or_nan).astype("float64")


def _category_text(value: Any, known: set[str]) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value)
    # a code column read as numbers with gaps arrives as floats: 3.0 means the category "3"
    if (
        isinstance(value, float | np.floating)
        and text not in known
        and float(value).is_integer()
        and abs(value) < 2**53
    ):
        return str(int(value))
    return text


def _ids(series: pd.Series) -> pd.Series:
    """Ids as given; whole numbers that arrived as floats (a column with gaps) as integers."""
    if pd.api.types.is_float_dtype(series):
        values = series.dropna()
        if (
            len(values)
            and np.isfinite(values).all()
            and (values == np.round(values)).all()
            and (values.abs() < 2**53).all()
        ):
            return series.astype("Int64")
    return series


@dataclass
class TrainedModel:
    """A task's champion pipeline with what is needed to validate and score new rows."""

    task: str
    run_id: str
    model_name: str
    pipeline: Any
    metadata: dict[str, Any]

    @property
    def features(self) -> list[str]:
        """The columns the model reads."""
        return list(self.metadata["features"])

    def _kind(self, column: str) -> str:
        dtype = str(self.metadata.get("dtypes", {}).get(column, ""))
        if dtype.startswith("datetime"):
            return "datetime"
        if dtype in ("bool", "boolean"):
            return "bool"
        return "number"

    def prepare(self, frame: Any) -> tuple[pd.DataFrame, pd.Series, list[str]]:
        """(model frame, ids, notes) of `frame`: columns matched, types coerced, extras dropped.

        Raises `UserError` for a missing column, no rows, or a numeric column of mostly text;
        `notes` says what was adjusted (values made missing, unseen categories, repeated ids).
        """
        meta = self.metadata
        frame = _as_frame(frame)
        if len(frame) == 0:
            raise NoRowsError("no rows to score: the input has no rows")
        id_column = meta["id_column"]
        found = _match_columns(frame, [*self.features, id_column])
        missing = [c for c in self.features if c not in found]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise MissingColumnError(f"input is missing column {missing[0]!r}{more}")
        work = pd.DataFrame(
            {want: frame[have].reset_index(drop=True) for want, have in found.items()}
        )
        work = plain_types(work)
        notes: list[str] = []
        for col in meta["numeric_features"]:
            work[col] = self._numeric(work[col], col, notes)
        for col in meta["categorical_features"]:
            work[col] = self._categorical(work[col], col, notes)
        features = FeatureSet(
            tuple(meta["numeric_features"]), tuple(meta["categorical_features"]), {}
        )
        if id_column in found:
            ids = _ids(work[id_column]).rename(id_column)
            self._check_ids(ids, notes)
        else:
            ids = pd.Series(np.arange(1, len(work) + 1), name=id_column)
            if id_column not in (ROW_NUMBER, f"__{ROW_NUMBER}"):  # trained with real ids
                notes.append(f"no {id_column!r} column: rows are numbered 1 to {len(work):,}")
        return to_model_frame(work, features), ids.reset_index(drop=True), notes

    def _numeric(self, series: pd.Series, col: str, notes: list[str]) -> pd.Series:
        present = _present(series)
        raw = _raw_numbers(series, self._kind(col))
        bad = present & raw.isna()
        n_present, n_bad = int(present.sum()), int(bad.sum())
        if n_bad and n_bad > MAX_UNPARSEABLE_SHARE * n_present:
            what = "dates" if self._kind(col) == "datetime" else "numbers"
            raise UserError(
                f"column {col!r} should hold {what} but {n_bad:,} of {n_present:,} values are "
                f"not {what}, such as {_show(series[bad].iloc[0])}"
                + (
                    " (write plain numbers: a decimal point, no thousands separators or units)"
                    if what == "numbers"
                    else ""
                )
            )
        if n_present == 0:
            notes.append(f"{col}: no values (imputed in every row)")
        elif n_bad:
            notes.append(
                f"{col}: {_plural(n_bad, 'value')} that {'is' if n_bad == 1 else 'are'} not "
                f"a number (e.g. {_show(series[bad].iloc[0])}) treated as missing"
            )
        extreme = raw.notna() & ~(np.isfinite(raw) & (raw.abs() <= MAX_ABS_VALUE))
        if extreme.any():
            notes.append(
                f"{col}: {_plural(int(extreme.sum()), 'value')} infinite or beyond "
                f"+/-{MAX_ABS_TEXT} treated as missing"
            )
        return finite_numbers(raw)

    def _categorical(self, series: pd.Series, col: str, notes: list[str]) -> pd.Series:
        known_list = self.metadata.get("categories", {}).get(col) or []
        known = set(known_list)
        text = series.astype(object).map(lambda v: _category_text(v, known)).astype(object)
        if 0 < len(known_list) < 200:  # the full list of training categories
            unseen = text.notna() & ~text.isin(known)
            if unseen.any():
                notes.append(
                    f"{col}: {_plural(int(unseen.sum()), 'value')} not seen in training "
                    f"(e.g. {_show(text[unseen].iloc[0])}) scored as an infrequent category"
                )
        return text

    @staticmethod
    def _check_ids(ids: pd.Series, notes: list[str]) -> None:
        absent = int(ids.isna().sum())
        if absent:
            notes.append(f"{_plural(absent, 'row')} without an id (scored; the id is left empty)")
        try:
            repeated = ids[ids.notna() & ids.duplicated(keep=False)]
        except TypeError:  # unhashable ids were made text by plain_types; be safe anyway
            return
        if len(repeated):
            notes.append(
                f"{_plural(n_ids := repeated.nunique(), 'id')} "
                f"appear{'s' if n_ids == 1 else ''} more than once "
                f"(e.g. {_show(repeated.iloc[0])}): every row is scored"
            )

    def validate(self, frame: Any) -> pd.DataFrame:
        """The model frame of `frame`: required columns present, types coerced, extras dropped."""
        return self.prepare(frame)[0]

    def predict(self, frame: Any) -> pd.DataFrame:
        """Score `frame`: id, prediction, probability (+ per class), threshold, run_id, model_name.

        One row per input row, in input order. What was adjusted is in `.attrs["notes"]`.
        """
        meta = self.metadata
        X, ids, notes = self.prepare(frame)
        scored = prediction_frame(
            self.pipeline,
            X,
            ids,
            meta["id_column"],
            meta["problem"],
            meta["classes"],
            meta["class_labels"],
            meta["threshold"],
            self.run_id,
            self.model_name,
        )
        scored[meta["id_column"]] = ids.reset_index(drop=True)  # keep the ids' own type
        _check_finite(scored, meta["problem"])
        scored.attrs["notes"] = notes
        return scored


def _check_finite(scored: pd.DataFrame, problem: str) -> None:
    """Refuse to hand out NaN or infinite predictions; clip probabilities' rounding to [0, 1]."""
    if problem == "regression":
        columns = ["prediction"]
    else:
        columns = ["probability", *(c for c in scored.columns if c.startswith("probability_"))]
    for col in columns:
        values = pd.to_numeric(scored[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            raise UserError(
                f"the model produced {_plural(int(bad.sum()), 'non-finite prediction')} "
                f"(first at input row {int(np.flatnonzero(bad)[0]) + 1}); nothing was written"
            )
        if problem != "regression":
            scored[col] = np.clip(values, 0.0, 1.0)


def champion_row(con, task: str) -> dict[str, Any]:
    """The registry row of the champion of `task`'s latest run."""
    if not relation_exists(con, MODEL_RUNS):
        raise UserError("no models trained yet: run `python -m ml.train` first")
    rows = con.execute(
        f"""
        select run_id, model_name, artifact_path, artifact_sha256
        from {MODEL_RUNS}
        where task = ? and is_champion
        order by trained_at desc, run_id desc
        limit 1
        """,
        [task],
    ).fetchall()
    if not rows:
        raise UserError(
            f"no trained model for task {task!r}: run `python -m ml.train --task {task}`"
        )
    run_id, model_name, path, digest = rows[0]
    return {"run_id": run_id, "model_name": model_name, "path": path, "sha256": digest}


def load_model(task: str, con=None) -> TrainedModel:
    """The champion of `task`, its file verified against the registry's sha256 before loading."""
    task = validate_task_name(task)
    if con is None:
        with session(read_only=True) as own:
            row = champion_row(own, task)
    else:
        row = champion_row(con, task)
    pipeline, metadata = load_verified(row["path"], row["sha256"])
    return TrainedModel(task, row["run_id"], row["model_name"], pipeline, metadata)


def read_input_csv(path: str | Path) -> pd.DataFrame:
    """Rows to score from a CSV file (delimiter and encoding sniffed like scripts.load_csv)."""
    from scripts.load_csv import EmptyCsvError, read_csv

    try:
        frame, _info = read_csv(path)
    except EmptyCsvError as err:
        raise NoRowsError(f"no rows to score: {err}") from None
    return frame.to_pandas(date_as_object=False)  # dates as datetime64, as the warehouse gives


def read_input_table(con: duckdb.DuckDBPyConnection, relation: str) -> pd.DataFrame:
    """Rows to score from a warehouse table or view."""
    try:
        return read_relation(con, relation)
    except duckdb.Error as err:  # e.g. a view over a table that was dropped
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot read {relation}: {first}") from None


def _plain_name(relation: str, flag: str) -> None:
    if not isinstance(relation, str) or not _TABLE_NAME.fullmatch(relation.strip()):
        raise UserError(
            f"invalid table name {relation!r} for {flag}: "
            "use schema.table with letters, digits and _ only"
        )


def check_output_table(relation: str) -> str:
    """`--write-table` must name a table in schema `ml` that no other step owns."""
    _plain_name(relation, "--write-table")
    schema, table = parse_relation(relation)
    if schema.lower() != "ml":
        raise UserError(f"--write-table must be in schema ml (got {relation!r})")
    owned_by_task = table.lower().removesuffix("_predictions") in config.BUILTIN_TASKS
    if table.lower() in PROTECTED_TABLES or (
        table.lower().endswith("_predictions") and owned_by_task
    ):
        raise UserError(f"--write-table {relation} would replace a table that ml.train owns")
    return f"ml.{table}"


def check_output_table_in(con: duckdb.DuckDBPyConnection, relation: str) -> None:
    """Refuse an output table that is a view or the predictions table of a trained task."""
    _, table = parse_relation(relation)
    rows = con.execute(
        "select table_type from information_schema.tables where table_catalog = "
        "current_database() and lower(table_schema) = 'ml' and lower(table_name) = lower(?)",
        [table],
    ).fetchall()
    if rows and rows[0][0] == "VIEW":
        raise UserError(f"--write-table {relation} is a view: refusing to replace it")
    if table.lower().endswith("_predictions") and relation_exists(con, MODEL_RUNS):
        tasks = con.execute(f"select distinct lower(task) from {MODEL_RUNS}").fetchall()
        if (table.lower().removesuffix("_predictions"),) in tasks:
            raise UserError(f"--write-table {relation} would replace a table that ml.train owns")


def write_csv_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` to a temporary file beside `path`, then rename it over `path`.

    A symlink is followed (the file it points to is replaced, not the link). A path that exists
    but is not a regular file (`/dev/stdout`, a named pipe) is written to directly: it cannot be
    replaced.
    """
    try:
        path = path.resolve()
        special = path.exists() and not path.is_file()
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None
    if special:
        try:
            with open(path, "w", encoding="utf-8", newline="") as fh:
                frame.to_csv(fh, index=False)
        except OSError as err:
            raise UserError(f"cannot write {path}: {err.strerror or err}") from None
        return
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=False)
        os.replace(tmp, path)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _check_output_path(text: str) -> Path:
    path = Path(text).expanduser()
    try:
        if path.is_dir():
            raise UserError(f"cannot write {text}: it is a directory")
        folder = path.resolve().parent
        if not folder.is_dir():
            raise UserError(f"cannot write {text}: no such folder {str(folder)!r}")
        warehouse = config.warehouse_path().resolve()
        if path.resolve() in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
            raise UserError(f"cannot write {text}: it is the warehouse file")
    except OSError as err:
        raise UserError(f"cannot write {text}: {err.strerror or err}") from None
    return path


def warning_line(notes: Sequence[str], limit: int = 4) -> str:
    """The notes as one line (the first `limit` of them, then how many more)."""
    shown = "; ".join(notes[:limit])
    more = len(notes) - limit
    return shown + (f"; and {more} more" if more > 0 else "")


EPILOG = """\
input rules: a missing feature column is refused; extra columns are ignored; a column name may
differ in case. Text that is not a number in a numeric column (abc, 1,000, $5) becomes missing and
is imputed when such values are a minority; a column of mostly text is refused. Infinities and
numbers beyond +/-1e15 become missing. Unseen categories are scored as infrequent. Repeated or
missing ids are kept (every row is scored, in input order) and reported. An empty input is
refused ("no rows to score"). Adjustments are reported on stderr in one warning line; refusals
are one error line and exit code 2, and write nothing."""


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = ArgumentParser(
        prog="python -m ml.predict", description=__doc__.split("\n")[0], epilog=EPILOG
    )
    parser.add_argument("--task", required=True, help="the task whose champion scores the rows")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="CSV file of rows to score")
    source.add_argument("--table", help="warehouse table or view of rows to score")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--output", help="CSV file to write (complete or not at all)")
    target.add_argument(
        "--write-table", help="warehouse table ml.NAME to write (replaced atomically)"
    )
    args = parser.parse_args(argv)

    task = validate_task_name(args.task)
    if args.table is not None:
        _plain_name(args.table, "--table")
    out_table = check_output_table(args.write_table) if args.write_table is not None else None
    out_path = _check_output_path(args.output) if args.output is not None else None
    frame = read_input_csv(args.input) if args.input is not None else None
    with session(read_only=True) as con:
        model = load_model(task, con)
        if out_table:
            check_output_table_in(con, out_table)
        if frame is None:
            frame = read_input_table(con, args.table)
            if frame.empty:
                raise NoRowsError(f"no rows to score: {args.table} is empty")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scored = model.predict(frame)
    notes = scored.attrs.get("notes", [])
    scored.attrs = {}
    done = f"scored {len(scored):,} rows with {task}/{model.model_name}"
    if out_table:
        with session() as con:
            check_output_table_in(con, out_table)
            try:
                rows = write_table(con, scored, out_table)
            except duckdb.Error as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else ""
                raise UserError(f"cannot write {out_table}: {first}") from None
        print(f"{done}; wrote {out_table} ({rows:,} rows)")
    else:
        write_csv_atomically(scored, out_path)
        print(f"{done}; wrote {args.output}")
    if notes:
        print(f"ml.predict: warning: {warning_line(notes)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main, "ml.predict")
