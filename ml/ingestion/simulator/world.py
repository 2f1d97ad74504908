"""What the simulated world is made of: its calendar, the designed mess rates, the categories and
the spellings a source system uses for them (docs/data_contract.md documents them all)."""

from __future__ import annotations

from datetime import date

from ml.core import config
from ml.ingestion.simulator.sampling import Vocabulary

# --------------------------------------------------------------------------------------------
# The world's calendar: from START_DATE up to (not including) the as-of date of dbt_project.yml
START_DATE = date(2018, 1, 1)
EPOCH = date(1970, 1, 1)
START_DAY = (START_DATE - EPOCH).days
DAY_S = 86_400
US = 1_000_000  # microseconds a second (landed timestamps are in microseconds)


def configured_as_of() -> date:
    """The day after the simulated world ends: the dbt var `as_of_date`."""
    return date.fromisoformat(config.as_of_date())


def epoch_day(day: date) -> int:
    """Days since 1970-01-01 (how dates are computed and landed)."""
    return (day - EPOCH).days


# --------------------------------------------------------------------------------------------
# Designed mess rates (docs/data_contract.md). Tests check the landed data against these.
RATES = {
    "customers.age_null": 0.01,
    "customers.age_out_of_range": 0.003,
    "customers.income_null_young": 0.15,  # age < 25: missing not at random
    "customers.income_null_other": 0.05,
    "customers.gender_null": 0.03,
    "customers.household_size_null": 0.02,
    "customers.signup_in_future": 0.002,
    "customers.satisfaction_null": 0.05,
    "customers.segment_null": 0.10,
    "customers.segment_wrong": 0.05,  # of the observed labels
    "customers.duplicate_rows": 0.005,
    "orders.orphan": 0.005,
    "orders.in_future": 0.001,
    "orders.negative_amount": 0.002,
    "orders.amount_null": 0.001,
    "orders.category_null": 0.01,
    "orders.duplicate_rows": 0.005,
    "loans.orphan": 0.003,
    "loans.in_future": 0.001,
    "loans.non_positive_amount": 0.001,
    "loans.credit_score_out_of_range": 0.002,
    "loans.annual_income_null": 0.04,
    "loans.employment_length_null": 0.03,
    "loans.debt_to_income_null": 0.03,
    "loans.revolving_utilization_null": 0.02,
    "loans.duplicate_rows": 0.003,
}
ORDERS_PER_CUSTOMER = 10.0
LOANS_PER_CUSTOMER = 0.4
TARGET_DEFAULT_RATE = 0.17

# --------------------------------------------------------------------------------------------
# Categories: canonical values and the spellings a source system uses for them.
PERSONAS = ["bargain_hunter", "loyal", "premium", "occasional"]
PERSONA_LABELS = ["Bargain Hunter", "Loyal", "Premium", "Occasional"]
GENDER = {
    "female": ["female", "F", " Female ", "FEMALE", "f"],
    "male": ["male", "M", "Male ", "MALE", "m"],
    "other": ["other", "Other", "OTHER", " other", "Other "],
}
REGIONS = ["north", "south", "east", "west", "central"]
ACQUISITION_CHANNELS = ["web", "store", "mobile_app", "referral", "partner"]
ORDER_CHANNELS = ["web", "mobile_app", "store"]
CATEGORIES = ["electronics", "fashion", "grocery", "home", "beauty", "sports"]
PURPOSES = [
    "debt_consolidation",
    "credit_card",
    "home_improvement",
    "major_purchase",
    "small_business",
    "car",
    "medical",
    "other",
]
GRADES = list("ABCDEFG")
HOME_OWNERSHIP = ["rent", "own", "mortgage", "other"]
EMPLOYMENT = ["< 1 year", "1 year"] + [f"{k} years" for k in range(2, 10)] + ["10+ years"]
TERMS = [" 36 months", " 60 months"]


def spellings(value: str) -> list[str]:
    """How a messy source writes a snake_case category: as is, Title, UPPER, padded, spaced."""
    spaced = value.replace("_", " ")
    return [value, spaced.title(), value.upper(), f" {value}", f"{spaced} "]


GENDER_WORDS = Vocabulary.of(list(GENDER.values()))
REGION_WORDS = Vocabulary.of([spellings(v) for v in REGIONS])
ACQUISITION_WORDS = Vocabulary.of([spellings(v) for v in ACQUISITION_CHANNELS])
CATEGORY_WORDS = Vocabulary.of([spellings(v) for v in CATEGORIES])
ORDER_CHANNEL_WORDS = Vocabulary.of([spellings(v) for v in ORDER_CHANNELS])
PURPOSE_WORDS = Vocabulary.of([spellings(v) for v in PURPOSES])
GRADE_WORDS = Vocabulary.of([[g, g.lower(), f" {g}", f"{g} ", g] for g in GRADES])
HOME_WORDS = Vocabulary.of(
    [[v.upper(), v, v.title(), f" {v.upper()}", v.upper()] for v in HOME_OWNERSHIP]
)
