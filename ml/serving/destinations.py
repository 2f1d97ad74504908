"""Where scored rows may go: a CSV file written whole, or a table of schema `ml` no step owns."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ml.core import config
from ml.core.errors import UserError
from ml.core.files import atomic_write
from ml.core.names import parse_relation
from ml.core.tables import MODEL_RUNS, OWNED
from ml.core.tasks import BUILTIN_TASKS
from ml.core.warehouse import Warehouse

#: Suffixes of the per-task tables ml.train, ml.score and ml.governance own.
_TASK_SUFFIXES = ("_predictions", "_prediction_archive")


def _owned_predictions(table: str, tasks: set[str]) -> bool:
    name = table.lower()
    return any(name.endswith(s) and name.removesuffix(s) in tasks for s in _TASK_SUFFIXES)


def check_output_table(relation: str) -> str:
    """`--write-table` must name a table in schema `ml` that no other step owns."""
    schema, table = parse_relation(relation, flag="--write-table")
    if schema.lower() != "ml":
        raise UserError(f"--write-table must be in schema ml (got {relation!r})")
    if table.lower() in OWNED or _owned_predictions(table, set(BUILTIN_TASKS)):
        raise UserError(f"--write-table {relation} would replace a table that ml.train owns")
    return f"ml.{table}"


def check_output_table_in(wh: Warehouse, relation: str) -> None:
    """Refuse an output table that is a view or the predictions table of a trained task."""
    _, table = parse_relation(relation)
    for info in wh.relations("ml"):
        if info.name.lower() == table.lower() and info.kind == "view":
            raise UserError(f"--write-table {relation} is a view: refusing to replace it")
    if table.lower().endswith(_TASK_SUFFIXES) and wh.exists(MODEL_RUNS):
        trained = wh.query(f"select distinct lower(task) as task from {MODEL_RUNS}")
        if _owned_predictions(table, set(trained["task"])):
            raise UserError(f"--write-table {relation} would replace a table that ml.train owns")


def check_output_path(text: str) -> Path:
    """`--output` must be a file in an existing folder, and not the warehouse itself."""
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


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` as CSV, complete or not at all (`ml.core.files.atomic_write`)."""
    atomic_write(path, lambda fh: frame.to_csv(fh, index=False), text=True)


def warning_line(notes: Sequence[str], limit: int = 4) -> str:
    """The notes as one line (the first `limit` of them, then how many more)."""
    shown = "; ".join(notes[:limit])
    more = len(notes) - limit
    return shown + (f"; and {more} more" if more > 0 else "")
