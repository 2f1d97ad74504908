"""The loan decision of `marts.loan_decisions`, for rows scored outside the warehouse.

The mart turns the deployed model's probability of default into approve / review / decline at
two cut-offs (dbt vars, macro `loan_decision_cutoffs`) and explains the decision with up to three
plain-word reasons (macros `reason_text` and `feature_value_text`, labels from the seed
`feature_labels`). The HTTP API (`ml.api`) answers the same for a row it scores: the same vars,
the same labels file, the same words and the same rounding, so a loan decided online reads as
the mart reads it. `tests/serving/test_decisions.py` checks both against each other.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.core.config import DBT_PROJECT_DIR, dbt_vars
from ml.core.errors import UserError

#: The tasks whose predictions are decisions, and the mart that holds them.
DECISION_TASKS = {"loan_repayment": "marts.loan_decisions"}
#: Reasons given per decision (reason_1..reason_3 of the mart).
REASONS = 3
#: Features kept per explained row when the bundle does not say (ml.train's default --top-k).
DEFAULT_TOP_K = 5
#: The seed the mart labels features with.
FEATURE_LABELS = DBT_PROJECT_DIR / "seeds" / "feature_labels.csv"


@dataclass(frozen=True)
class Cutoffs:
    """The dbt vars of `loan_decision_cutoffs`: absolute cut-offs, else factors of the tuned
    threshold."""

    approve_factor: float = 0.5
    decline_factor: float = 1.0
    approve_below: float | None = None
    decline_at_or_above: float | None = None

    @classmethod
    def from_vars(cls, values: Mapping[str, Any] | None = None) -> Cutoffs:
        """The cut-offs of dbt_project.yml's vars (or `values`), refused as the macro refuses
        them: not a number, a factor below 0, an absolute cut-off outside 0..1, approve above
        decline."""
        values = dbt_vars() if values is None else values
        names = {
            "loan_approve_threshold_factor": 0.5,
            "loan_decline_threshold_factor": 1.0,
            "loan_approve_below": None,
            "loan_decline_at_or_above": None,
        }
        parsed: dict[str, float | None] = {}
        for name, default in names.items():
            value = values.get(name)
            if value is None:
                parsed[name] = default
                continue
            try:
                if isinstance(value, bool):
                    raise ValueError
                parsed[name] = float(value)
            except (TypeError, ValueError):
                raise UserError(f"dbt var {name} must be a number, got {value!r}") from None
        approve_factor = float(parsed["loan_approve_threshold_factor"])
        decline_factor = float(parsed["loan_decline_threshold_factor"])
        for name, factor in (
            ("loan_approve_threshold_factor", approve_factor),
            ("loan_decline_threshold_factor", decline_factor),
        ):
            if factor < 0:
                raise UserError(f"dbt var {name} must be a number >= 0, got {factor}")
        for name in ("loan_approve_below", "loan_decline_at_or_above"):
            cut = parsed[name]
            if cut is not None and not 0 <= cut <= 1:
                raise UserError(f"dbt var {name} must be null or a probability in 0..1, got {cut}")
        if approve_factor > decline_factor:
            raise UserError(
                f"dbt var loan_approve_threshold_factor ({approve_factor}) must not exceed "
                f"loan_decline_threshold_factor ({decline_factor})"
            )
        approve, decline = parsed["loan_approve_below"], parsed["loan_decline_at_or_above"]
        if approve is not None and decline is not None and approve > decline:
            raise UserError(
                f"dbt var loan_approve_below ({approve}) must not exceed "
                f"loan_decline_at_or_above ({decline})"
            )
        return cls(approve_factor, decline_factor, approve, decline)

    def at(self, threshold: float) -> tuple[float, float]:
        """(approve_below, decline_at_or_above) for a model whose tuned threshold is
        `threshold`. An approval cut-off above the decline cut-off (one absolute, one derived)
        is refused, as the mart's data test refuses it."""
        approve = (
            threshold * self.approve_factor if self.approve_below is None else self.approve_below
        )
        decline = (
            threshold * self.decline_factor
            if self.decline_at_or_above is None
            else self.decline_at_or_above
        )
        if approve > decline:
            raise UserError(
                f"the loan cut-offs cross at threshold {threshold:.4f}: approve below {approve:.4f} "
                f"but decline at or above {decline:.4f} (dbt vars loan_approve_below / "
                "loan_decline_at_or_above and the factors)"
            )
        return approve, decline


def decide(probability: float, approve_below: float, decline_at_or_above: float) -> str | None:
    """'decline' at or above the decline cut-off, 'approve' below the approval cut-off, else
    'review'; None for a missing probability."""
    if probability is None or math.isnan(probability):
        return None
    if probability >= decline_at_or_above:
        return "decline"
    if probability < approve_below:
        return "approve"
    return "review"


def feature_labels(path: Path = FEATURE_LABELS) -> dict[str, str]:
    """feature -> label of the seed `feature_labels` (empty when the file is absent)."""
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8", newline="") as fh:
        return {row["feature"]: row["label"] for row in csv.DictReader(fh)}


def _stored_text(value: Any) -> str | None:
    """A value as `ml.prediction_explanations.feature_value` stores it
    (`ml.explanation.tables.value_text`)."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | float | np.integer | np.floating):
        return None if math.isnan(float(value)) else format(float(value), ".10g")
    return str(value)


def _round_half_away(x: float) -> float:
    return math.copysign(math.floor(abs(x) + 0.5), x)


def value_text(value: Any) -> str:
    """A feature value for a sentence, as the macro `feature_value_text` writes the stored text:
    numbers rounded to 2 decimals with trailing zeros trimmed, other text as is, missing as
    `missing`."""
    text = _stored_text(value)
    if text is None or not text.strip():
        return "missing"
    try:
        number = float(text)
    except ValueError:
        return text.strip()
    if math.isnan(number):
        return "missing"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    formatted = "%.2f" % (_round_half_away(number * 100) / 100 + 0.0)
    return formatted.rstrip("0").rstrip(".")


def reason_text(label: str, value: Any, contribution: float) -> str | None:
    """`<label> <value> raises risk` / `lowers risk` (macro `reason_text`); None without a
    direction."""
    if contribution is None or math.isnan(contribution) or contribution == 0:
        return None
    direction = "raises risk" if contribution > 0 else "lowers risk"
    return f"{label} {value_text(value)} {direction}"


def reasons(
    shap_values: np.ndarray,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    decisions: Sequence[str | None],
    labels: Mapping[str, str],
    top_k: int = DEFAULT_TOP_K,
) -> list[list[str]]:
    """Up to `REASONS` reasons per row, as `marts.loan_decisions` picks them: among the row's
    `top_k` largest |SHAP| features (what `ml.prediction_explanations` keeps), an approval is
    explained by those lowering the risk, a review or decline by those raising it, strongest
    first."""
    values = np.asarray(shap_values, dtype=float)
    k = min(top_k, values.shape[1]) if values.ndim == 2 else 0
    answers: list[list[str]] = []
    for i, decision in enumerate(decisions):
        if decision is None or k == 0:
            answers.append([])
            continue
        order = np.argsort(-np.abs(values[i]), kind="stable")[:k]
        wanted = (lambda v: v < 0) if decision == "approve" else (lambda v: v > 0)
        picked = [j for j in order if wanted(values[i, j])][:REASONS]
        texts = []
        for j in picked:
            feature = str(columns[j])
            label = labels.get(feature) or feature.replace("_", " ")
            text = reason_text(label, rows[i].get(feature), float(values[i, j]))
            if text is not None:
                texts.append(text)
        answers.append(texts)
    return answers
