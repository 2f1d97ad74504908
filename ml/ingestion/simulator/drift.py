"""`--drift SPEC`: the named ways a batch may shift the simulated world (docs/data_contract.md,
"Batches and drift").

    income=F                 the incomes the batch reports x F (F > 0): new customers' income
                             and the annual_income of the batch's loan applications; what depends
                             on them follows the reported value (covariate shift, P(y | x) kept)
    new_purpose=NAME[:SHARE] a share (default 0.2, in (0, 1]) of the batch's loan applications
                             have purpose NAME (snake_case, never seen before), in the usual
                             messy spellings; its logit effect is 0
    concept=FEATURE          every term of the default logit that involves FEATURE changes sign
                             for the batch's applications; FEATURE's distribution is unchanged

Items are comma separated, each name at most once: `income=1.5,concept=grade`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ml.core.errors import UserError
from ml.ingestion.simulator.loans import CONCEPT_FEATURES
from ml.ingestion.simulator.sampling import Vocabulary
from ml.ingestion.simulator.world import PURPOSE_WORDS, PURPOSES, spellings

#: The share of applications `new_purpose=NAME` gives the new purpose when SHARE is not given.
DEFAULT_NEW_PURPOSE_SHARE = 0.2
_SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


@dataclass(frozen=True)
class Drift:
    """A parsed drift spec (the identity when nothing is given)."""

    income: float = 1.0
    new_purpose: str | None = None
    new_purpose_share: float = 0.0
    concept: str | None = None

    @property
    def spec(self) -> str:
        """The canonical spec ('' when none), as sim.simulation_runs.drift records it."""
        items = []
        if self.income != 1.0:
            items.append(f"income={self.income:g}")
        if self.new_purpose:
            items.append(f"new_purpose={self.new_purpose}:{self.new_purpose_share:g}")
        if self.concept:
            items.append(f"concept={self.concept}")
        return ",".join(items)

    @property
    def purposes(self) -> Vocabulary:
        """The purpose vocabulary of the batch: the new purpose's spellings come last."""
        if not self.new_purpose:
            return PURPOSE_WORDS
        return Vocabulary.of([spellings(v) for v in [*PURPOSES, self.new_purpose]])

    @property
    def reverse(self) -> tuple[str, ...]:
        return (self.concept,) if self.concept else ()


def _number(item: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"--drift {item}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UserError(f"--drift {item}: {text!r} is not a finite number")
    return value


def parse_drift(spec: str | None) -> Drift:
    """The `Drift` of a spec such as `income=1.5,new_purpose=crypto:0.3,concept=grade`; a
    UserError naming the item that is unknown or has a bad value."""
    fields: dict[str, object] = {}
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = (part.strip() for part in item.partition("="))
        if name not in ("income", "new_purpose", "concept"):
            known = "income=F, new_purpose=NAME[:SHARE], concept=FEATURE"
            raise UserError(f"--drift: unknown drift {name!r} (known: {known})")
        if not sep or not value:
            raise UserError(f"--drift {name}: needs a value ({name}=...)")
        if name in fields or (name == "new_purpose" and "new_purpose_share" in fields):
            raise UserError(f"--drift {name}: given twice")
        if name == "income":
            factor = _number(item, value)
            if factor <= 0:
                raise UserError(f"--drift income={value}: the factor must be > 0")
            fields["income"] = factor
        elif name == "new_purpose":
            purpose, colon, share_text = value.partition(":")
            if not _SNAKE.fullmatch(purpose):
                raise UserError(f"--drift new_purpose={value}: {purpose!r} is not snake_case")
            if purpose in PURPOSES:
                raise UserError(f"--drift new_purpose={value}: {purpose!r} is a known purpose")
            share = _number(item, share_text) if colon else DEFAULT_NEW_PURPOSE_SHARE
            if not 0 < share <= 1:
                raise UserError(f"--drift new_purpose={value}: the share must be in (0, 1]")
            fields["new_purpose"], fields["new_purpose_share"] = purpose, share
        else:
            if value not in CONCEPT_FEATURES:
                known = ", ".join(CONCEPT_FEATURES)
                raise UserError(f"--drift concept={value}: unknown feature (known: {known})")
            fields["concept"] = value
    return Drift(**fields)  # type: ignore[arg-type]
