"""What a column means on a plot: its unit for axis labels, and the display order of bucketed
categories (age groups, income brackets, grades)."""

from __future__ import annotations

from collections.abc import Sequence

#: Shown for a missing value, and for the rarer values folded into one bar.
MISSING_LABEL = "(missing)"
OTHER_VALUES = "(other values)"

#: Display order of bucketed categories (anything else: by frequency).
ORDERS: dict[str, list[str]] = {
    "age_group": ["18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown"],
    "income_bracket": ["<25k", "25-50k", "50-75k", "75-100k", "100-150k", "150k+", "unknown"],
    "grade": [*"ABCDEFG", "unknown"],
}

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
    """`column (unit)`."""
    return f"{column} ({unit(column)})"


def ordered(values: Sequence[str], column: str) -> list[str]:
    """`values` in the display order of `column`'s buckets (others after them, in the order
    given), the missing and the folded values last."""
    order = ORDERS.get(column, [])
    rank = {v: i for i, v in enumerate(order)}
    tail = [MISSING_LABEL, OTHER_VALUES]
    return sorted(
        values,
        key=lambda v: (v in tail, rank.get(v, len(order)), tail.index(v) if v in tail else 0),
    )
