"""Score new rows with a task's champion: `python -m ml.predict` and `load_model`.

    python -m ml.predict --task loan_repayment --input new_loans.csv --output scored.csv
    python -m ml.predict --task loan_repayment --table marts.loan_features --write-table ml.loan_scores

    from ml import load_model
    load_model("loan_repayment").predict(df)   # DataFrame: id, prediction, probability, ...

The champion is the one `ml.model_runs` marks for the task's latest run; its file's sha256 must
match the registry before it is unpickled. Input is validated against the features the model was
trained on: a missing column is refused (one line naming it, exit 2), extra columns are ignored,
unseen categories are handled by the encoder, numbers written as text are coerced, and a column
whose values are mostly not numbers where numbers are expected is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.cli import ArgumentParser, run
from ml.errors import UserError
from ml.experiment import prediction_frame
from ml.features import FeatureSet, to_model_frame
from ml.registry import load_verified
from ml.warehouse import (
    parse_relation,
    read_relation,
    relation_exists,
    session,
    write_table,
)

MODEL_RUNS = "ml.model_runs"
#: Tables that ml.train and the other steps own; --write-table may not replace them.
PROTECTED_TABLES = {
    "model_runs",
    "feature_importance",
    "prediction_explanations",
    "customer_segments",
    "segmentation_runs",
}
#: A numeric feature is refused when more than this share of its non-empty values are not numbers.
MAX_UNPARSEABLE_SHARE = 0.5


class MissingColumnError(UserError):
    """The input lacks a column the model needs."""


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

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model frame of `frame`: required columns present, types coerced, extras dropped."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise MissingColumnError(f"input is missing column {missing[0]!r}{more}")
        frame = frame.copy()
        dtypes = self.metadata.get("dtypes", {})
        for col in self.metadata["numeric_features"]:
            series = frame[col]
            if dtypes.get(col, "").startswith("datetime"):
                frame[col] = pd.to_datetime(series, errors="coerce")
                continue
            if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
                continue
            text = series.astype("object").where(series.notna())
            text = text.map(lambda v: v.strip() if isinstance(v, str) else v).replace("", None)
            numbers = pd.to_numeric(text, errors="coerce")
            present = text.notna()
            bad = present & numbers.isna()
            if present.any() and bad.sum() > MAX_UNPARSEABLE_SHARE * present.sum():
                example = text[bad].iloc[0]
                raise UserError(
                    f"column {col!r} should be numeric but has text such as {str(example)[:40]!r}"
                )
            frame[col] = numbers
        features = FeatureSet(
            tuple(self.metadata["numeric_features"]),
            tuple(self.metadata["categorical_features"]),
            {},
        )
        return to_model_frame(frame, features)

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Score `frame`: id, prediction, probability (+ per class), threshold, run_id, model_name."""
        meta = self.metadata
        X = self.validate(frame)
        id_column = meta["id_column"]
        if id_column in frame.columns:
            ids = frame[id_column].reset_index(drop=True)
        else:
            ids = pd.Series(np.arange(1, len(frame) + 1), name=id_column)
        return prediction_frame(
            self.pipeline,
            X.reset_index(drop=True),
            ids,
            id_column,
            meta["problem"],
            meta["classes"],
            meta["class_labels"],
            meta["threshold"],
            self.run_id,
            self.model_name,
        )


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
    if con is None:
        with session(read_only=True) as own:
            row = champion_row(own, task)
    else:
        row = champion_row(con, task)
    pipeline, metadata = load_verified(row["path"], row["sha256"])
    return TrainedModel(task, row["run_id"], row["model_name"], pipeline, metadata)


def read_input_csv(path: str | Path) -> pd.DataFrame:
    """Rows to score from a CSV file (delimiter and encoding sniffed like scripts.load_csv)."""
    from scripts.load_csv import read_csv

    frame, _info = read_csv(path)
    return frame if isinstance(frame, pd.DataFrame) else frame.to_pandas()


def check_output_table(relation: str) -> str:
    """`--write-table` must name a table in schema `ml` that no other step owns."""
    schema, table = parse_relation(relation)
    if schema != "ml":
        raise UserError(f"--write-table must be in schema ml (got {relation!r})")
    if table in PROTECTED_TABLES:
        raise UserError(f"--write-table {relation} would replace a table that ml.train owns")
    return f"{schema}.{table}"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = ArgumentParser(prog="python -m ml.predict", description=__doc__.split("\n")[0])
    parser.add_argument("--task", required=True, help="the task whose champion scores the rows")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="CSV file of rows to score")
    source.add_argument("--table", help="warehouse table or view of rows to score")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--output", help="CSV file to write")
    target.add_argument("--write-table", help="warehouse table ml.NAME to write")
    args = parser.parse_args(argv)

    out_table = check_output_table(args.write_table) if args.write_table else None
    if args.output:
        out_path = Path(args.output)
        if out_path.is_dir() or not out_path.expanduser().resolve().parent.is_dir():
            raise UserError(f"cannot write {args.output}: no such folder")
    with session(read_only=True) as con:
        model = load_model(args.task, con)
        frame = read_relation(con, args.table) if args.table else None
    if frame is None:
        frame = read_input_csv(args.input)
    scored = model.predict(frame)
    if out_table:
        with session() as con:
            rows = write_table(con, scored, out_table)
        print(
            f"scored {len(scored):,} rows with {args.task}/{model.model_name}; wrote {out_table} ({rows:,} rows)"
        )
    else:
        try:
            scored.to_csv(args.output, index=False)
        except OSError as err:
            raise UserError(f"cannot write {args.output}: {err.strerror}") from None
        print(
            f"scored {len(scored):,} rows with {args.task}/{model.model_name}; wrote {args.output}"
        )
    return 0


if __name__ == "__main__":
    run(main, "ml.predict")
