"""The request rows of a task, as a pydantic model built from the deployed bundle's input contract.

Every feature column is a required field (a row without it is a 422 naming it) that may be
`null` (missing, imputed as in training). Numeric columns take JSON numbers or numeric text, never
other text, infinities or NaN; categorical columns take text (or a number, read as its text);
an unseen category is scored as infrequent, as `ml.predict` scores it. The id column is optional.
Other fields are ignored, so a row of the feature table (labels, timestamps) can be posted as is.

Field names are the contract's column names exactly (aliases, so any column name works); the
error locations name them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from ml.serving.bundle import InputContract

#: The pydantic config of every row model.
ROW_CONFIG = ConfigDict(
    extra="ignore",
    coerce_numbers_to_str=True,
    allow_inf_nan=False,
    populate_by_name=False,
    frozen=True,
)


def _is_integer(dtype: str) -> bool:
    try:
        return pd.api.types.is_integer_dtype(pd.api.types.pandas_dtype(dtype))
    except TypeError:
        return False


def _is_bool(dtype: str) -> bool:
    try:
        return pd.api.types.is_bool_dtype(pd.api.types.pandas_dtype(dtype))
    except TypeError:
        return False


def field_specs(contract: InputContract) -> list[dict[str, Any]]:
    """One dict per field, in the model frame's order: name, kind (number, integer, boolean,
    category, datetime), description, and for numbers the training range (min, median, max), for
    categories the known values. What `/v1/tasks` returns and the page builds its form from."""
    specs = []
    for column in contract.features:
        dtype = contract.dtypes.get(column, "")
        spec: dict[str, Any] = {"name": column, "required": True, "nullable": True}
        if column in contract.categorical:
            spec["kind"] = "category"
            spec["categories"] = list(contract.categories.get(column, []))
        elif _is_bool(dtype):
            spec["kind"] = "boolean"
        elif str(dtype).startswith("datetime"):
            spec["kind"] = "datetime"  # ISO text, parsed as ml.predict parses it
        else:
            spec["kind"] = "integer" if _is_integer(dtype) else "number"
            low_mid_high = contract.ranges.get(column) or []
            if len(low_mid_high) == 3:
                spec["min"], spec["median"], spec["max"] = low_mid_high
        specs.append(spec)
    return specs


def _annotation(spec: dict[str, Any]) -> Any:
    kind = spec["kind"]
    if kind in ("category", "datetime"):
        return str | None
    if kind == "boolean":
        return bool | None
    return float | None  # integers too: 36.0 is 36; the model's preparation casts


def row_model(task: str, contract: InputContract) -> type[BaseModel]:
    """The pydantic model of one request row of `task`."""
    fields: dict[str, Any] = {
        "row_id": (
            int | str | None,
            Field(default=None, alias=contract.id_column, description="the row's id (optional)"),
        )
    }
    for i, spec in enumerate(field_specs(contract)):
        description = spec["kind"]
        if "min" in spec:
            description += f", {spec['min']:g} to {spec['max']:g} in training"
        fields[f"f{i}"] = (
            _annotation(spec),
            Field(..., alias=spec["name"], description=description),
        )
    name = "".join(part.capitalize() for part in task.split("_")) + "Row"
    return create_model(name, __config__=ROW_CONFIG, **fields)


def rows_adapter(model: type[BaseModel]) -> TypeAdapter:
    """Validates a list of rows of `model`."""
    return TypeAdapter(list[model])


def columns_of(rows: list[BaseModel], contract: InputContract) -> dict[str, list[Any]]:
    """The validated rows as columns named by the contract: the id column, then the features."""
    names = ["row_id", *(f"f{i}" for i in range(len(contract.features)))]
    columns = [contract.id_column, *contract.features]
    return {
        column: [getattr(row, name) for row in rows]
        for column, name in zip(columns, names, strict=True)
    }
