"""The promotion options `ml.train` and `ml.promote` share: the fairness gate's limits."""

from __future__ import annotations

import argparse

from ml.core.cli import non_negative_int
from ml.fairness.gate import GATED
from ml.fairness.metrics import SENSITIVE_ATTRIBUTES
from ml.governance.promotion import PromotionOptions


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def add_gate_arguments(parser: argparse.ArgumentParser) -> None:
    """The fairness gate's options."""
    defaults = PromotionOptions()
    gated = "; ".join(f"{t}: {', '.join(a)}" for t, a in GATED.items())
    parser.add_argument(
        "--gate-attribute",
        action="append",
        choices=[*SENSITIVE_ATTRIBUTES, "none"],
        help="a sensitive attribute the fairness gate checks (repeatable; 'none': report only; "
        f"default per task: {gated}; other tasks report only)",
    )
    parser.add_argument(
        "--min-parity-ratio",
        type=_fraction,
        default=defaults.min_parity_ratio,
        help="fairness gate: lowest demographic parity ratio between groups "
        f"(default {defaults.min_parity_ratio:g}, the four-fifths rule)",
    )
    parser.add_argument(
        "--max-odds-difference",
        type=_fraction,
        default=defaults.max_odds_difference,
        help="fairness gate: highest equalized odds difference between groups "
        f"(default {defaults.max_odds_difference:g})",
    )
    parser.add_argument(
        "--min-group-size",
        type=non_negative_int,
        default=defaults.min_group_size,
        help="fairness gate: groups with fewer held-out rows are left out of the gaps "
        f"(default {defaults.min_group_size})",
    )


def promotion_options(args: argparse.Namespace, mode: str, seed: int = 0) -> PromotionOptions:
    """The PromotionOptions of parsed arguments (`add_gate_arguments`)."""
    attributes = args.gate_attribute
    if attributes is not None:
        attributes = tuple(dict.fromkeys(a for a in attributes if a != "none"))
    return PromotionOptions(
        mode=mode,
        gate_attributes=attributes,
        min_parity_ratio=args.min_parity_ratio,
        max_odds_difference=args.max_odds_difference,
        min_group_size=args.min_group_size,
        seed=seed,
    )
