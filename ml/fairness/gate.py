"""The fairness gate of a promotion: limits on the gaps between groups of the gated attributes.

A binary task's model passes when, on its held-out test rows and for every gated attribute,
fairlearn's demographic parity ratio (lowest group selection rate over the highest) is at least
`min_parity_ratio` (the four-fifths rule, 0.8) and its equalized odds difference (the larger of
the between-groups differences of the true and false positive rates) at most
`max_odds_difference` (0.1). The gaps are taken over the groups of at least `min_group_size`
rows, read from the group rows of `ml.fairness_metrics` (`ml.fairness.metrics`): a rate of a
group of a dozen rows is noise, and a gate on noise blocks at random.

Which attributes are gated is a choice, made per task (`GATED`) and measured at the default
size (50,000 customers, seed 42; the champion's 4,279 test applications):

- gender is gated: parity ratio 0.87, equalized odds difference 0.04;
- region is reported, not gated: its equalized odds difference is 0.11, but each of its five
  groups holds about 130 defaults, so each group's true positive rate has a standard error of
  about 0.04, and the range of five such estimates is about 0.09 for a perfectly even model:
  a 0.1 limit there would block challengers at random;
- age groups are reported, not gated: 18-24 year-olds default about ten times as often as the
  over-65s (34 % against 3 %), so any model that ranks risk at all has an age-group parity ratio
  near 0.05 and an equalized odds difference near 0.6, with or without the age column (README,
  "Fairness"); the four-fifths rule there would block every model.

`--gate-attribute region --gate-attribute age_group` gates them anyway. Other tasks are
report-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

#: The gaps the gate checks: (metric of ml.fairness_metrics, ">=" or "<=").
PARITY_RATIO = "demographic_parity_ratio"
ODDS_DIFFERENCE = "equalized_odds_difference"


@dataclass(frozen=True)
class FairnessLimits:
    """What the fairness gate requires of a challenger."""

    attributes: tuple[str, ...] = ()  # gated attributes; empty: report only
    min_parity_ratio: float = 0.8
    max_odds_difference: float = 0.1
    min_group_size: int = 50
    split: str = "test"

    @property
    def limits(self) -> dict[str, tuple[str, float]]:
        """Each gated gap: (comparison, limit)."""
        return {
            PARITY_RATIO: (">=", self.min_parity_ratio),
            ODDS_DIFFERENCE: ("<=", self.max_odds_difference),
        }


#: The attributes gated by default, per task; any other task is report-only.
GATED: dict[str, tuple[str, ...]] = {"loan_repayment": ("gender",)}


def default_limits(task: str) -> FairnessLimits:
    """The fairness gate of `task` by default."""
    return FairnessLimits(attributes=GATED.get(task, ()))


@dataclass
class GateCheck:
    """One gap of one attribute against its limit."""

    attribute: str
    metric: str
    value: float
    comparison: str
    limit: float
    groups: int  # groups large enough to count
    passed: bool

    def line(self) -> str:
        """e.g. `gender demographic_parity_ratio 0.87 >= 0.8 ok`."""
        verdict = "ok" if self.passed else "FAILS"
        return (
            f"{self.attribute} {self.metric} {self.value:.3f} {self.comparison} {self.limit:g} "
            f"{verdict}"
        )


@dataclass
class GateResult:
    """The fairness gate's verdict on one model."""

    checks: list[GateCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # attributes that could not be measured

    @property
    def passed(self) -> bool:
        """Every check passed (and nothing gated went unmeasured)."""
        return all(c.passed for c in self.checks) and not self.notes

    @property
    def failures(self) -> list[str]:
        """One line per failed check or unmeasured attribute."""
        return [c.line() for c in self.checks if not c.passed] + self.notes


def gaps_of_large_groups(rows: pd.DataFrame, min_group_size: int) -> tuple[dict[str, float], int]:
    """(gap -> value, number of groups counted) of one attribute's group rows (one model, one
    split), over the groups of at least `min_group_size` rows."""
    groups = rows[rows["kind"] == "group"].pivot_table(
        index="group_value", columns="metric", values="value"
    )
    if "count" in groups.columns:
        groups = groups[groups["count"] >= min_group_size]
    if len(groups) < 2 or "selection_rate" not in groups.columns:
        return {}, len(groups)
    rates = groups["selection_rate"]
    ratio = float(rates.min() / rates.max()) if rates.max() > 0 else 1.0
    odds = max(
        float(groups[m].max() - groups[m].min())
        for m in ("true_positive_rate", "false_positive_rate")
    )
    return {PARITY_RATIO: ratio, ODDS_DIFFERENCE: odds}, len(groups)


def check_fairness(
    rows: pd.DataFrame, run_id: str, model_name: str, limits: FairnessLimits
) -> GateResult:
    """The gate's verdict on one model from its `ml.fairness_metrics` rows (`rows` may hold
    other models' and splits' rows too)."""
    result = GateResult()
    if not limits.attributes:
        return result
    mine = rows[
        (rows["run_id"].astype(str) == run_id)
        & (rows["model_name"].astype(str) == model_name)
        & (rows["split"].astype(str) == limits.split)
    ] if not rows.empty else rows  # fmt: skip
    for attribute in limits.attributes:
        part = mine[mine["attribute"] == attribute] if not mine.empty else mine
        gaps, n_groups = gaps_of_large_groups(part, limits.min_group_size) if len(part) else ({}, 0)
        if not gaps:
            result.notes.append(
                f"{attribute}: fewer than two groups of at least {limits.min_group_size} rows "
                f"on the {limits.split} split to compare"
            )
            continue
        for metric, (comparison, limit) in limits.limits.items():
            value = gaps[metric]
            passed = value >= limit if comparison == ">=" else value <= limit
            result.checks.append(
                GateCheck(attribute, metric, value, comparison, limit, n_groups, passed)
            )
    return result
