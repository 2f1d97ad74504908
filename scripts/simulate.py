"""Simulate realistic raw business data: `python -m scripts.simulate --customers N --seed S`.

Lands `raw.customers`, `raw.orders` and `raw.loans` (messy, as a source system would hand them
over) and the noise-free ground truth `sim.customer_truth` and `sim.loan_truth` (never a feature)
in the warehouse (`WAREHOUSE_PATH`). The columns and the designed mess rates are documented in
docs/data_contract.md; the rates are the module constants below.

Everything is vectorised with numpy (no Python loop per row) and written through Arrow, so 1M
customers and 10M orders take seconds. The same seed gives identical tables.

The world, in short:
- a customer has traits (age, income, gender, region, channel, household) and a latent persona
  (bargain hunter, loyal, premium, occasional) that depends on age and income;
- the persona and income drive the purchase history: how many orders (heavy-tailed), when, how
  large, which categories, how much discount, how often returned;
- satisfaction is a nonlinear function of traits and realised purchase behaviour plus Gaussian
  noise of known standard deviation;
- a loan defaults with a probability from a logistic model with interactions over the application,
  the applicant and the customer's purchase behaviour before the application date.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa

from ml import config
from ml.cli import ArgumentParser, positive_int, run
from ml.errors import UserError
from ml.warehouse import session

# --------------------------------------------------------------------------------------------
# The world's calendar
START_DATE = date(2018, 1, 1)
AS_OF_DATE = date.fromisoformat(config.AS_OF_DATE)
_EPOCH = date(1970, 1, 1)
START_DAY = (START_DATE - _EPOCH).days
AS_OF_DAY = (AS_OF_DATE - _EPOCH).days
DAY_S = 86_400

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


def _spellings(value: str) -> list[str]:
    """How a messy source writes a snake_case category: as is, Title, UPPER, padded, spaced."""
    spaced = value.replace("_", " ")
    return [value, spaced.title(), value.upper(), f" {value}", f"{spaced} "]


# Share of rows written in the canonical spelling; the rest spread over the other spellings.
CANONICAL_SPELLING_SHARE = 0.8


@dataclass
class Simulation:
    """The simulated tables as Arrow tables, and how long generating them took."""

    tables: dict[str, pa.Table]
    seconds: float
    seed: int
    customers: int
    meta: dict[str, float] = field(default_factory=dict)

    @property
    def rows(self) -> dict[str, int]:
        """Row count of every table."""
        return {name: t.num_rows for name, t in self.tables.items()}


# --------------------------------------------------------------------------------------------
# Small vectorised helpers


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row from row-wise probabilities `probs` (n x k): inverse-CDF, vectorised."""
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random(len(probs))[:, None]
    return np.minimum((u > cdf).sum(axis=1), probs.shape[1] - 1)


def _messy_text(
    rng: np.random.Generator,
    codes: np.ndarray,
    spellings: list[list[str]],
    null_mask: np.ndarray | None = None,
) -> pa.DictionaryArray:
    """Arrow text column: canonical value `codes[i]` written in one of its spellings."""
    dictionary: list[str] = []
    table = np.zeros((len(spellings), max(len(s) for s in spellings)), dtype=np.int32)
    for k, variants in enumerate(spellings):
        for v in range(table.shape[1]):
            word = variants[v % len(variants)]
            if word not in dictionary:
                dictionary.append(word)
            table[k, v] = dictionary.index(word)
    n_var = table.shape[1]
    other = rng.integers(1, n_var, size=len(codes)) if n_var > 1 else np.zeros(len(codes), int)
    variant = np.where(rng.random(len(codes)) < CANONICAL_SPELLING_SHARE, 0, other)
    indices = table[codes, variant]
    return pa.DictionaryArray.from_arrays(
        pa.array(indices, type=pa.int32(), mask=null_mask), pa.array(dictionary, pa.string())
    )


def _text(
    codes: np.ndarray, values: list[str], null_mask: np.ndarray | None = None
) -> pa.DictionaryArray:
    """Arrow text column with clean values."""
    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32), type=pa.int32(), mask=null_mask),
        pa.array(values, pa.string()),
    )


def _timestamps(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds.astype(np.int64) * 1_000_000, type=pa.timestamp("us"))


def _masked(values: np.ndarray, mask: np.ndarray | None, type_: pa.DataType) -> pa.Array:
    return pa.array(values, type=type_, mask=mask)


def _duplicate(rng: np.random.Generator, table: pa.Table, rate: float) -> pa.Table:
    """Append exact copies of `rate` of the rows, then shuffle copies among the originals' tail."""
    n_dup = int(round(table.num_rows * rate))
    if n_dup == 0:
        return table
    idx = np.sort(rng.choice(table.num_rows, size=n_dup, replace=False))
    return pa.concat_tables([table, table.take(pa.array(idx))])


# --------------------------------------------------------------------------------------------
# The generative model


def _customers(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Latent and observed traits of every customer (clean, before the mess)."""
    age = np.clip(np.round(18 + rng.gamma(3.0, 8.0, n)), 18, 90).astype(np.int32)
    a = (age - 18).astype(float)
    log_income = 10.25 + 0.035 * a - 0.0005 * a**2 + rng.normal(0.0, 0.45, n)
    income = np.round(np.exp(log_income), -2)
    z_inc = (log_income - 10.75) / 0.5
    z_age = (age - 42.0) / 14.0
    # persona: multinomial logit on age and income (bargain, loyal, premium, occasional)
    logits = np.stack(
        [
            0.2 - 0.9 * z_inc - 0.5 * z_age,
            0.1 + 0.6 * z_age,
            -0.9 + 1.4 * z_inc + 0.2 * z_age,
            np.zeros(n),
        ],
        axis=1,
    )
    persona = _categorical(rng, np.exp(logits)).astype(np.int8)
    gender = _categorical(rng, np.tile([0.49, 0.48, 0.03], (n, 1)))
    region = _categorical(rng, np.tile([0.22, 0.24, 0.18, 0.2, 0.16], (n, 1)))
    young = age < 30
    channel_p = np.where(young[:, None], [0.3, 0.1, 0.45, 0.1, 0.05], [0.35, 0.3, 0.15, 0.12, 0.08])
    channel = _categorical(rng, channel_p)
    household = np.clip(1 + rng.poisson(1.3, n), 1, 6).astype(np.int32)
    span = AS_OF_DAY - START_DAY
    signup_day = START_DAY + np.floor(span * np.sqrt(rng.random(n))).astype(np.int32)
    signup_day = np.minimum(signup_day, AS_OF_DAY - 1)
    return {
        "age": age,
        "income": income,
        "log_income": log_income,
        "persona": persona,
        "gender": gender,
        "region": region,
        "channel": channel,
        "household": household,
        "signup_day": signup_day,
    }


# persona-level behaviour: bargain hunter, loyal, premium, occasional
_ORDER_RATE = np.array([1.25, 1.9, 0.95, 0.32])  # relative order frequency
_RECENCY_POWER = np.array([0.9, 0.6, 0.8, 1.8])  # >1 pushes orders early (churned), <1 late
_AMOUNT_OFFSET = np.array([-0.35, 0.0, 0.75, 0.1])
_DISCOUNT_BETA = np.array([[3.0, 6.0], [1.2, 12.0], [0.8, 18.0], [1.0, 9.0]])
_RETURN_BASE = np.array([0.16, 0.06, 0.09, 0.11])
_CATEGORY_MIX = np.array(
    [
        [0.10, 0.25, 0.35, 0.12, 0.10, 0.08],
        [0.12, 0.18, 0.30, 0.18, 0.12, 0.10],
        [0.30, 0.25, 0.08, 0.17, 0.12, 0.08],
        [0.22, 0.20, 0.15, 0.15, 0.13, 0.15],
    ]
)
_CATEGORY_AMOUNT = np.array([0.9, 0.2, -0.5, 0.4, -0.2, 0.1])
_CATEGORY_RETURN = np.array([0.03, 0.10, -0.04, 0.0, 0.0, 0.02])


def _orders(rng: np.random.Generator, c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The purchase history (clean), sorted by customer then time."""
    n = len(c["age"])
    persona = c["persona"]
    tenure_years = (AS_OF_DAY - c["signup_day"]) / 365.25
    z_inc = (c["log_income"] - 10.75) / 0.5
    # gamma-Poisson (negative binomial): heavy-tailed counts; scaled to ~10 orders a customer
    mean = _ORDER_RATE[persona] * np.sqrt(tenure_years + 0.25) * np.exp(0.15 * z_inc)
    mean *= ORDERS_PER_CUSTOMER / mean.mean()
    counts = rng.poisson(mean * rng.gamma(1.2, 1 / 1.2, n))
    cust = np.repeat(np.arange(n, dtype=np.int64), counts)
    m = len(cust)
    p = persona[cust]
    start_s = c["signup_day"][cust].astype(np.int64) * DAY_S
    window = AS_OF_DAY * DAY_S - start_s
    u = rng.random(m) ** _RECENCY_POWER[p]
    ordered_s = start_s + np.floor(u * (window - 1)).astype(np.int64)
    # sort by (customer, time): cust is already grouped, so sort within groups by one key
    order = np.lexsort((ordered_s, cust))
    ordered_s = ordered_s[order]
    category = _categorical(rng, _CATEGORY_MIX[p])
    log_amount = (
        3.55
        + 0.35 * z_inc[cust]
        + _AMOUNT_OFFSET[p]
        + _CATEGORY_AMOUNT[category]
        + rng.normal(0.0, 0.55, m)
    )
    beta = _DISCOUNT_BETA[p]
    discount = np.clip(rng.beta(beta[:, 0], beta[:, 1]), 0.0, 0.6)
    amount = np.round(np.exp(log_amount) * (1.0 - discount), 2)
    items = np.clip(1 + rng.poisson(np.where(p == 0, 2.2, 1.2)), 1, 20).astype(np.int32)
    young = c["age"][cust] < 35
    ch_p = np.where(young[:, None], [0.35, 0.5, 0.15], [0.45, 0.2, 0.35])
    channel = _categorical(rng, ch_p)
    returned = rng.random(m) < np.clip(_RETURN_BASE[p] + _CATEGORY_RETURN[category], 0.0, 1.0)
    return {
        "cust": cust,
        "ordered_s": ordered_s,
        "category": category,
        "amount": amount,
        "discount": discount,
        "items": items,
        "channel": channel,
        "returned": returned,
    }


def _customer_behaviour(n: int, o: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-customer aggregates of the clean purchase history (what dbt will compute too)."""
    cust = o["cust"]
    count = np.bincount(cust, minlength=n)
    has = count > 0
    safe = np.maximum(count, 1)
    spend = np.bincount(cust, weights=o["amount"], minlength=n)
    return_rate = np.where(has, np.bincount(cust, weights=o["returned"], minlength=n) / safe, 0.1)
    discount = np.where(has, np.bincount(cust, weights=o["discount"], minlength=n) / safe, 0.1)
    last_s = np.full(n, -1, dtype=np.int64)
    ends = np.cumsum(count) - 1
    last_s[has] = o["ordered_s"][ends[has]]
    recency_days = np.where(has, (AS_OF_DAY * DAY_S - last_s) / DAY_S, 2000.0)
    return {
        "count": count,
        "spend": spend,
        "return_rate": return_rate,
        "discount": discount,
        "recency_days": recency_days,
    }


def _satisfaction(
    rng: np.random.Generator, c: dict[str, np.ndarray], b: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected satisfaction (noise-free), its noise sd, and the observed score."""
    age = c["age"].astype(float)
    young = _sigmoid((40.0 - age) / 6.0)
    tenure_years = (AS_OF_DAY - c["signup_day"]) / 365.25
    expected = (
        6.3
        + 1.1 * np.tanh((b["count"] - 8.0) / 6.0)  # engagement, saturating
        - 4.0 * (b["return_rate"] - 0.1)  # returns hurt
        - 0.9 * _sigmoid((b["recency_days"] - 240.0) / 60.0)  # lapsed customers
        + 0.5 * (c["log_income"] - 10.75) * (2.0 * young - 1.0)  # age x income interaction
        - 0.0009 * (age - 50.0) ** 2  # inverted U in age
        + 2.0 * (b["discount"] - 0.1)
        + 0.25 * np.log1p(tenure_years)
        + np.array([0.2, -0.1, 0.0, 0.15, -0.25])[c["region"]]
    )
    noise_sd = np.where(c["household"] >= 4, 0.75, 0.6)
    observed = np.clip(expected + rng.normal(0.0, 1.0, len(age)) * noise_sd, 1.0, 10.0)
    return expected, noise_sd, np.round(observed, 2)


def _loans(
    rng: np.random.Generator, c: dict[str, np.ndarray], o: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Loan applications (clean) with the default probability and the drawn outcome."""
    n = len(c["age"])
    persona = c["persona"]
    counts = rng.poisson(LOANS_PER_CUSTOMER * np.array([1.5, 0.9, 0.7, 0.9])[persona])
    cust = np.repeat(np.arange(n, dtype=np.int64), counts)
    m = len(cust)
    p = persona[cust]
    start_s = (c["signup_day"][cust].astype(np.int64) + 7) * DAY_S
    applied_s = start_s + np.floor(
        rng.random(m) * np.maximum(AS_OF_DAY * DAY_S - start_s - 1, 1)
    ).astype(np.int64)
    applied_s = np.minimum(applied_s, AS_OF_DAY * DAY_S - 1)
    age = c["age"][cust].astype(float)
    income = np.exp(c["log_income"][cust])
    annual_income = np.round(income * np.exp(rng.normal(0.0, 0.08, m)), -2)
    z_inc = (c["log_income"][cust] - 10.75) / 0.5

    # purchase behaviour strictly before the application (searchsorted on (customer, time) keys)
    span = np.int64(4_000_000_000)
    order_key = o["cust"] * span + o["ordered_s"]
    first = np.searchsorted(order_key, cust * span, side="left")
    upto = np.searchsorted(order_key, cust * span + applied_s, side="left")
    prior_count = upto - first
    cs_ret = np.concatenate([[0.0], np.cumsum(o["returned"])])
    cs_disc = np.concatenate([[0.0], np.cumsum(o["discount"])])
    safe = np.maximum(prior_count, 1)
    prior_return = np.where(prior_count > 0, (cs_ret[upto] - cs_ret[first]) / safe, 0.1)
    prior_discount = np.where(prior_count > 0, (cs_disc[upto] - cs_disc[first]) / safe, 0.1)

    credit_score = np.clip(
        np.round(
            690
            + 35 * z_inc
            + 1.2 * (age - 40)
            + np.array([-35, 15, 20, 0])[p]
            + rng.normal(0, 55, m)
        ),
        300,
        850,
    ).astype(np.int32)
    grade = np.clip(np.floor((760 - credit_score + rng.normal(0, 25, m)) / 40), 0, 6).astype(int)
    term60 = rng.random(m) < 0.3
    interest = np.round(6.0 + 3.1 * grade + 1.2 * term60 + rng.normal(0, 0.8, m), 2)
    interest = np.clip(interest, 5.0, 30.0)
    purpose = _categorical(rng, np.tile([0.42, 0.2, 0.09, 0.06, 0.04, 0.07, 0.04, 0.08], (m, 1)))
    loan_amount = np.round(np.clip(income * np.exp(rng.normal(-1.7, 0.5, m)), 1000, 40000), -2)
    emp_years = np.clip(np.floor((age - 18) * rng.beta(2, 2, m) / 2.5), 0, 10).astype(int)
    own_p = np.where((age > 40)[:, None], [0.3, 0.2, 0.47, 0.03], [0.6, 0.1, 0.27, 0.03])
    home = _categorical(rng, own_p)
    dti = np.clip(rng.beta(2.2, 6.5, m) + 0.05 * (p == 0), 0.0, 1.0)
    delinq = np.minimum(rng.poisson(np.where(credit_score < 640, 0.6, 0.15)), 10).astype(np.int32)
    history = np.round(np.clip((age - 18) * rng.beta(4, 2, m), 0.5, None), 1)
    open_acc = (1 + rng.poisson(7, m)).astype(np.int32)
    revol = np.clip(rng.beta(2, 3, m) * 1.3 + 0.1 * (p == 0), 0.0, 1.5)
    r = interest / 1200.0
    months = np.where(term60, 60, 36)
    installment = loan_amount * r / (1.0 - (1.0 + r) ** -months)
    burden = installment / (annual_income / 12.0)

    low_score = credit_score < 640
    logit = (
        0.38 * grade
        - 0.006 * (credit_score - 690)
        + 3.0 * (dti - 0.25)
        + 2.0 * dti * low_score  # interaction: debt hurts more with a weak score
        + 9.0 * (burden - 0.06)
        + 0.35 * delinq
        + 0.9 * (revol - 0.5)
        + 0.35 * term60
        - 0.05 * emp_years
        + np.array([0.0, -0.1, -0.2, 0.0, 0.7, -0.25, 0.35, 0.1])[purpose]
        + 0.25 * (home == 0)
        - 0.25 * np.log1p(prior_count)  # an engaged customer repays more often
        + 2.5 * (prior_return - 0.1)  # serial returners default more
        + 1.5 * (prior_discount - 0.1)
        - 0.02 * np.minimum(history, 25)
    )
    # intercept chosen so the mean default probability is the target rate (bisection)
    lo, hi = -10.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _sigmoid(logit + mid).mean() < TARGET_DEFAULT_RATE else (lo, mid)
    prob = _sigmoid(logit + (lo + hi) / 2)
    defaulted = (rng.random(m) < prob).astype(np.int32)
    return {
        "cust": cust,
        "applied_s": applied_s,
        "loan_amount": loan_amount,
        "term60": term60,
        "purpose": purpose,
        "grade": grade,
        "interest": interest,
        "annual_income": annual_income,
        "emp_years": emp_years,
        "home": home,
        "credit_score": credit_score,
        "dti": np.round(dti, 4),
        "delinq": delinq,
        "history": history,
        "open_acc": open_acc,
        "revol": np.round(revol, 4),
        "prob": prob,
        "defaulted": defaulted,
    }


# --------------------------------------------------------------------------------------------
# Assembling the raw tables, with the designed mess


def _mask(rng: np.random.Generator, n: int, rate: float | np.ndarray) -> np.ndarray:
    return rng.random(n) < rate


def simulate(n_customers: int, seed: int) -> Simulation:
    """Generate every table for `n_customers` customers, deterministically for `seed`."""
    if n_customers < 1:
        raise UserError("--customers must be at least 1")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = n_customers
    c = _customers(rng, n)
    o = _orders(rng, c)
    b = _customer_behaviour(n, o)
    expected, noise_sd, satisfaction = _satisfaction(rng, c, b)
    ln = _loans(rng, c, o)
    customer_ids = np.arange(1, n + 1, dtype=np.int64)

    # ---- raw.customers
    age = c["age"].copy()
    bad_age = _mask(rng, n, RATES["customers.age_out_of_range"])
    age[bad_age] = rng.choice(np.array([0, 150, -1, 200], dtype=np.int32), bad_age.sum())
    young = c["age"] < 25
    income_null = _mask(
        rng,
        n,
        np.where(young, RATES["customers.income_null_young"], RATES["customers.income_null_other"]),
    )
    signup = c["signup_day"].copy()
    future = _mask(rng, n, RATES["customers.signup_in_future"])
    signup[future] = AS_OF_DAY + rng.integers(1, 400, future.sum())
    observed_persona = c["persona"].copy()
    wrong = _mask(rng, n, RATES["customers.segment_wrong"])
    observed_persona[wrong] = (observed_persona[wrong] + rng.integers(1, 4, wrong.sum())) % 4
    customers = pa.table(
        {
            "customer_id": pa.array(customer_ids, pa.int64()),
            "age": _masked(age, _mask(rng, n, RATES["customers.age_null"]), pa.int32()),
            "income": _masked(c["income"], income_null, pa.float64()),
            "gender": _messy_text(
                rng,
                c["gender"],
                list(GENDER.values()),
                _mask(rng, n, RATES["customers.gender_null"]),
            ),
            "region": _messy_text(rng, c["region"], [_spellings(v) for v in REGIONS]),
            "acquisition_channel": _messy_text(
                rng, c["channel"], [_spellings(v) for v in ACQUISITION_CHANNELS]
            ),
            "household_size": _masked(
                c["household"], _mask(rng, n, RATES["customers.household_size_null"]), pa.int32()
            ),
            "signup_date": pa.array(signup.astype(np.int32), pa.date32()),
            "customer_satisfaction": _masked(
                satisfaction, _mask(rng, n, RATES["customers.satisfaction_null"]), pa.float64()
            ),
            "segment": _text(
                observed_persona, PERSONA_LABELS, _mask(rng, n, RATES["customers.segment_null"])
            ),
        }
    )
    customers = _duplicate(rng, customers, RATES["customers.duplicate_rows"])

    # ---- raw.orders: clean history + extra messy rows (orphans, future, negative, missing)
    m = len(o["cust"])
    order_cols = {
        "order_id": np.arange(1, m + 1, dtype=np.int64),
        "customer_id": o["cust"] + 1,
        "ordered_s": o["ordered_s"],
        "amount": o["amount"],
        "discount_pct": np.round(o["discount"], 4),
        "items": o["items"],
        "category": o["category"],
        "channel": o["channel"],
        "is_returned": o["returned"],
    }
    extra: dict[str, int] = {
        kind: int(round(m * RATES[f"orders.{kind}"]))
        for kind in ("orphan", "in_future", "negative_amount", "amount_null")
    }
    n_extra = sum(extra.values())
    src = rng.integers(0, max(m, 1), n_extra) if m else np.zeros(0, dtype=np.int64)
    for key, values in order_cols.items():
        order_cols[key] = np.concatenate([values, values[src]]) if m else values
    extra_ids = np.arange(m + 1, m + n_extra + 1, dtype=np.int64)
    order_cols["order_id"][m:] = extra_ids
    kinds = np.repeat(np.arange(4), list(extra.values()))
    tail = slice(m, m + n_extra)
    cid = order_cols["customer_id"][tail]
    cid[kinds == 0] = n + 1 + rng.integers(0, max(n // 10, 10), (kinds == 0).sum())
    osec = order_cols["ordered_s"][tail]
    osec[kinds == 1] = AS_OF_DAY * DAY_S + rng.integers(DAY_S, 300 * DAY_S, (kinds == 1).sum())
    amt = order_cols["amount"][tail]
    amt[kinds == 2] = -np.abs(amt[kinds == 2])
    total = m + n_extra
    amount_null = np.zeros(total, dtype=bool)
    amount_null[m:][kinds == 3] = True
    orders = pa.table(
        {
            "order_id": pa.array(order_cols["order_id"], pa.int64()),
            "customer_id": pa.array(order_cols["customer_id"], pa.int64()),
            "ordered_at": _timestamps(order_cols["ordered_s"]),
            "amount": _masked(order_cols["amount"], amount_null, pa.float64()),
            "discount_pct": pa.array(order_cols["discount_pct"], pa.float64()),
            "items": pa.array(order_cols["items"], pa.int32()),
            "category": _messy_text(
                rng,
                order_cols["category"],
                [_spellings(v) for v in CATEGORIES],
                _mask(rng, total, RATES["orders.category_null"]),
            ),
            "channel": _messy_text(
                rng, order_cols["channel"], [_spellings(v) for v in ORDER_CHANNELS]
            ),
            "is_returned": pa.array(order_cols["is_returned"], pa.bool_()),
        }
    )
    orders = _duplicate(rng, orders, RATES["orders.duplicate_rows"])

    # ---- raw.loans
    k = len(ln["cust"])
    loan_ids = np.arange(1, k + 1, dtype=np.int64)
    loan_cust = ln["cust"] + 1
    orphan = _mask(rng, k, RATES["loans.orphan"])
    loan_cust[orphan] = n + 1 + rng.integers(0, max(n // 10, 10), orphan.sum())
    applied = ln["applied_s"].copy()
    fut = _mask(rng, k, RATES["loans.in_future"])
    applied[fut] = AS_OF_DAY * DAY_S + rng.integers(DAY_S, 300 * DAY_S, fut.sum())
    amount = ln["loan_amount"].copy()
    bad_amt = _mask(rng, k, RATES["loans.non_positive_amount"])
    amount[bad_amt] = rng.choice(np.array([0.0, -1000.0, -5000.0]), bad_amt.sum())
    score = ln["credit_score"].copy()
    bad_score = _mask(rng, k, RATES["loans.credit_score_out_of_range"])
    score[bad_score] = rng.choice(np.array([0, 999], dtype=np.int32), bad_score.sum())
    emp_null = _mask(rng, k, RATES["loans.employment_length_null"])
    emp_codes = np.where(rng.random(k) < 0.03, len(EMPLOYMENT), ln["emp_years"])  # n/a
    loans = pa.table(
        {
            "loan_id": pa.array(loan_ids, pa.int64()),
            "customer_id": pa.array(loan_cust, pa.int64()),
            "applied_at": _timestamps(applied),
            "loan_amount": pa.array(amount, pa.float64()),
            "term": _text(ln["term60"].astype(int), [" 36 months", " 60 months"]),
            "purpose": _messy_text(rng, ln["purpose"], [_spellings(v) for v in PURPOSES]),
            "grade": _messy_text(
                rng, ln["grade"], [[g, g.lower(), f" {g}", f"{g} ", g] for g in GRADES]
            ),
            "interest_rate": pa.array(ln["interest"], pa.float64()),
            "annual_income": _masked(
                ln["annual_income"], _mask(rng, k, RATES["loans.annual_income_null"]), pa.float64()
            ),
            "employment_length": _text(emp_codes, [*EMPLOYMENT, "n/a"], emp_null),
            "home_ownership": _messy_text(
                rng,
                ln["home"],
                [[v.upper(), v, v.title(), f" {v.upper()}", v.upper()] for v in HOME_OWNERSHIP],
            ),
            "credit_score": pa.array(score, pa.int32()),
            "debt_to_income": _masked(
                ln["dti"], _mask(rng, k, RATES["loans.debt_to_income_null"]), pa.float64()
            ),
            "delinquencies_2y": pa.array(ln["delinq"], pa.int32()),
            "credit_history_years": pa.array(ln["history"], pa.float64()),
            "open_accounts": pa.array(ln["open_acc"], pa.int32()),
            "revolving_utilization": _masked(
                ln["revol"], _mask(rng, k, RATES["loans.revolving_utilization_null"]), pa.float64()
            ),
            "defaulted": pa.array(ln["defaulted"], pa.int32()),
        }
    )
    loans = _duplicate(rng, loans, RATES["loans.duplicate_rows"])

    # ---- ground truth
    customer_truth = pa.table(
        {
            "customer_id": pa.array(customer_ids, pa.int64()),
            "expected_satisfaction": pa.array(expected, pa.float64()),
            "noise_sd": pa.array(noise_sd, pa.float64()),
            "persona": _text(c["persona"], PERSONAS),
        }
    )
    loan_truth = pa.table(
        {
            "loan_id": pa.array(loan_ids, pa.int64()),
            "default_probability": pa.array(ln["prob"], pa.float64()),
        }
    )
    tables = {
        "raw.customers": customers,
        "raw.orders": orders,
        "raw.loans": loans,
        "sim.customer_truth": customer_truth,
        "sim.loan_truth": loan_truth,
    }
    return Simulation(
        tables=tables,
        seconds=time.perf_counter() - started,
        seed=seed,
        customers=n,
        meta={"default_rate": float(ln["defaulted"].mean()) if k else 0.0},
    )


# DuckDB types of every landed column (the contract); Arrow dictionary text becomes VARCHAR.
_SQL_TYPES = {
    pa.int64(): "bigint",
    pa.int32(): "integer",
    pa.float64(): "double",
    pa.bool_(): "boolean",
    pa.date32(): "date",
    pa.timestamp("us"): "timestamp",
    pa.string(): "varchar",
}


def _sql_type(t: pa.DataType) -> str:
    return "varchar" if pa.types.is_dictionary(t) else _SQL_TYPES[t]


def write(sim: Simulation, path: str | None = None) -> float:
    """Replace raw.* and sim.* in the warehouse in one transaction; return the seconds it took."""
    started = time.perf_counter()
    with session(path) as con:
        con.execute("begin transaction")
        try:
            for schema in ("raw", "sim"):
                con.execute(f"create schema if not exists {schema}")
            for name, table in sim.tables.items():
                columns = ", ".join(f'"{f.name}" {_sql_type(f.type)}' for f in table.schema)
                view = "__sim_" + name.replace(".", "_")
                con.register(view, table)
                con.execute(f"create or replace table {name} ({columns})")
                con.execute(f"insert into {name} select * from {view}")
                con.unregister(view)
            runs = pa.table(
                {
                    "seed": [sim.seed],
                    "customers": [sim.customers],
                    "raw_customers": [sim.rows["raw.customers"]],
                    "raw_orders": [sim.rows["raw.orders"]],
                    "raw_loans": [sim.rows["raw.loans"]],
                    "generate_seconds": [sim.seconds],
                    "as_of_date": [AS_OF_DATE],
                    "simulated_at": [datetime.now(UTC).replace(tzinfo=None)],
                }
            )
            con.register("__sim_runs", runs)
            con.execute("create or replace table sim.simulation_runs as select * from __sim_runs")
            con.unregister("__sim_runs")
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: simulate, write, print a summary."""
    parser = ArgumentParser(prog="python -m scripts.simulate", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--customers",
        type=positive_int,
        default=50_000,
        help="number of customers (default 50000; orders are ~10x, loans ~0.4x)",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    args = parser.parse_args(argv)
    sim = simulate(args.customers, args.seed)
    write_s = write(sim)
    total_s = sim.seconds + write_s
    raw_rows = sum(v for k, v in sim.rows.items() if k.startswith("raw."))
    print(
        f"simulated {args.customers:,} customers with seed {args.seed} "
        f"into {config.warehouse_path()}"
    )
    for name, rows in sim.rows.items():
        print(f"  {name:<22} {rows:>12,} rows")
    print(
        f"  generate {sim.seconds:.1f}s + write {write_s:.1f}s = {total_s:.1f}s; "
        f"{raw_rows / total_s:,.0f} raw rows/s; default rate {sim.meta['default_rate']:.1%}"
    )
    return 0


if __name__ == "__main__":
    run(main, "scripts.simulate")
