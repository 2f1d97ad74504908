"""Where a task's rows find their sensitive attributes: in the task's own relation when it has
them (the customer tasks: `marts.customer_features` holds age group, gender and region), or
through its `customer_id` in `marts.customer_features` (the loan applications: the applicant's).
A relation with neither (a user's own CSV without such columns) has none: nothing is measured.
"""

from __future__ import annotations

import pandas as pd

from ml.core.warehouse import Warehouse
from ml.fairness.metrics import SENSITIVE_ATTRIBUTES

CUSTOMERS = "marts.customer_features"
CUSTOMER_KEY = "customer_id"


def _as_keys(ids: pd.Series) -> pd.Series:
    """Ids as the text ml.evaluation_predictions stores (`str` of each id; whole numbers read
    as floats because of missing values are written without '.0')."""
    if pd.api.types.is_float_dtype(ids) and (ids.dropna() % 1 == 0).all():
        ids = ids.astype("Int64")
    return ids.astype("str")


def sensitive_attributes(wh: Warehouse, relation: str, id_column: str | None) -> pd.DataFrame:
    """`entity_id` and one column per sensitive attribute found for `relation`'s rows."""
    none = pd.DataFrame({"entity_id": pd.Series(dtype="str")})
    if id_column is None:  # rows numbered at training: nothing to join on
        return none
    columns = set(wh.describe(relation).names)
    own = [a for a in SENSITIVE_ATTRIBUTES if a in columns]
    if own:
        frame = wh.read_frame(relation, [id_column, *own])
    elif CUSTOMER_KEY in columns and relation != CUSTOMERS and wh.exists(CUSTOMERS):
        found = set(wh.describe(CUSTOMERS).names)
        theirs = [a for a in SENSITIVE_ATTRIBUTES if a in found]
        if not theirs:
            return none
        rows = wh.read_frame(relation, [id_column, CUSTOMER_KEY])
        customers = wh.read_frame(CUSTOMERS, [CUSTOMER_KEY, *theirs])
        frame = rows.merge(customers.drop_duplicates(CUSTOMER_KEY), on=CUSTOMER_KEY, how="left")
        frame = frame.drop(columns=[CUSTOMER_KEY]) if id_column != CUSTOMER_KEY else frame
    else:
        return none
    frame = frame.rename(columns={id_column: "entity_id"})
    frame["entity_id"] = _as_keys(frame["entity_id"])
    return frame
