"""Landing a CSV file as a warehouse table: `load_csv(path, "raw.my_data")`.

`table` must be `schema.name` of letters, digits and `_`. The project's own schemas (staging,
marts, ml, sim, quality, main), DuckDB's catalog names (temp, system, memory, warehouse_db) and the
simulator's tables (raw.customers, raw.orders, raw.loans) are refused: dbt, training and the
simulator own them. `raw` is the place for your data; any other schema of your own is allowed.

`if_exists="replace"` (the default, so a load can be re-run) swaps the new table in atomically;
`"fail"` refuses when the table exists. A refused load writes nothing: the file is read and
checked completely before the warehouse is opened, and a previous version stays as it was.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from ml.core.errors import UserError
from ml.core.names import parse_relation
from ml.core.warehouse import RelationInfo, open_warehouse
from ml.core.warehouse.duckdb import RESERVED_SCHEMAS
from ml.ingestion.csv.info import CsvInfo
from ml.ingestion.csv.parsing import read_csv

#: Schemas that dbt, training, the quality gate or DuckDB itself own; a CSV never lands there.
MANAGED_SCHEMAS = frozenset(
    {"staging", "marts", "ml", "sim", "quality", "main", "information_schema", "pg_catalog"}
)
#: Tables the simulator writes and dbt reads as sources; a CSV must not replace them.
PROTECTED_TABLES = frozenset({"raw.customers", "raw.orders", "raw.loans"})
IF_EXISTS = ("replace", "fail")


def check_table_name(table: str) -> tuple[str, str]:
    """Validate `--table`: `schema.name` of plain identifiers, outside the managed schemas."""
    try:
        if not isinstance(table, str) or table.count(".") != 1:
            raise UserError("not schema.name")
        schema, name = parse_relation(table, flag="--table")
    except UserError:
        raise UserError(
            f"invalid table name {table!r}: use schema.name (e.g. raw.my_data) "
            "with letters, digits and _ only"
        ) from None
    if schema.lower() in MANAGED_SCHEMAS:
        raise UserError(
            f"refusing to write into schema {schema!r}: the project manages it "
            f"({', '.join(sorted(MANAGED_SCHEMAS - {'information_schema', 'pg_catalog'}))}); "
            "load into raw (e.g. raw.my_data) or a schema of your own"
        )
    if schema.lower() in RESERVED_SCHEMAS:
        raise UserError(
            f"refusing to write into schema {schema!r}: DuckDB uses that name for a catalog; "
            "load into raw (e.g. raw.my_data) or a schema of your own"
        )
    if f"{schema}.{name}".lower() in PROTECTED_TABLES:
        raise UserError(
            f"refusing to replace {schema}.{name}: the simulator writes it and dbt reads it; "
            f"choose another name, e.g. raw.my_{name.lower()}"
        )
    return schema, name


def _existing(relations: list[RelationInfo], name: str) -> RelationInfo | None:
    """The relation called `name` among `relations` (matched case-insensitively, as SQL does)."""
    return next((r for r in relations if r.name.lower() == name.lower()), None)


def load_csv(
    path: str | Path,
    table: str,
    if_exists: str = "replace",
    warehouse: str | Path | None = None,
) -> CsvInfo:
    """Read `path` and write it to `table` (`schema.name`) in the warehouse, atomically.

    `if_exists` is `replace` (swap the new table in) or `fail` (refuse when the table exists).
    `warehouse` defaults to `WAREHOUSE_PATH`. Nothing is written when anything is refused.
    """
    if if_exists not in IF_EXISTS:
        raise UserError(f"--if-exists must be one of {', '.join(IF_EXISTS)}, got {if_exists!r}")
    schema, name = check_table_name(table)
    relation = f"{schema}.{name}"
    data, info = read_csv(path)
    start = time.perf_counter()
    with open_warehouse(warehouse) as wh:
        existing = _existing(wh.relations(schema), name)
        if existing is not None and existing.kind == "view":
            raise UserError(
                f"{relation} is a view in the warehouse, not a table: refusing to replace it"
            )
        if existing is not None and if_exists == "fail":
            raise UserError(
                f"table {relation} already exists (--if-exists fail); "
                "use --if-exists replace to overwrite it"
            )
        wh.replace_table(relation, data)  # one transaction: the old table or the new one
    return replace(
        info,
        table=relation,
        replaced=existing is not None,
        seconds=info.seconds + time.perf_counter() - start,
    )
