"""Customers: their traits, their latent persona, and their satisfaction.

A customer has traits (age, income, gender, region, channel, household) and a latent persona
(bargain hunter, loyal, premium, occasional) that depends on age and income. Satisfaction is a
nonlinear function of traits and realised purchase behaviour plus Gaussian noise of known
standard deviation.
"""

from __future__ import annotations

import functools

import numpy as np

from ml.ingestion.simulator.sampling import choose, group_key, inverse_cdf, lookup, sigmoid
from ml.ingestion.simulator.world import (
    ACQUISITION_WORDS,
    DAY_S,
    GENDER_WORDS,
    REGION_WORDS,
    START_DAY,
)

_GENDER_P = [0.49, 0.48, 0.03]
_REGION_P = [0.22, 0.24, 0.18, 0.2, 0.16]
_ACQUISITION_P = [[0.35, 0.3, 0.15, 0.12, 0.08], [0.3, 0.1, 0.45, 0.1, 0.05]]  # age >= 30, < 30


@functools.cache
def _customer_tables() -> dict[str, np.ndarray]:
    return {
        "gender": inverse_cdf(GENDER_WORDS.joint(_GENDER_P)),
        "region": inverse_cdf(REGION_WORDS.joint(_REGION_P)),
        "acquisition": inverse_cdf(ACQUISITION_WORDS.joint(_ACQUISITION_P)),
    }


def customers(
    rng: np.random.Generator,
    n: int,
    as_of_day: int,
    *,
    signup_between: tuple[int, int] | None = None,
    income_factor: float = 1.0,
) -> dict[str, np.ndarray]:
    """Latent and observed traits of every customer (clean, before the mess).

    Signup days follow the base world's growth (denser towards `as_of_day`), or are uniform in
    `signup_between` (days [lo, hi), a batch's period). `income_factor` scales every income
    before anything that depends on it is drawn (the `income=F` drift: P(traits | income) stays).
    """
    tables = _customer_tables()
    age = np.clip(np.round(18 + rng.gamma(3.0, 8.0, n)), 18, 90).astype(np.int32)
    a = (age - 18).astype(float)
    log_income = 10.25 + 0.035 * a - 0.0005 * a**2 + rng.normal(0.0, 0.45, n)
    if income_factor != 1.0:
        log_income += np.log(income_factor)
    income = np.round(np.exp(log_income), -2)
    z_inc = (log_income - 10.75) / 0.5
    z_age = (age - 42.0) / 14.0
    # persona: multinomial logit on age and income (bargain, loyal, premium, occasional)
    persona = choose(
        rng,
        [
            np.exp(0.2 - 0.9 * z_inc - 0.5 * z_age),
            np.exp(0.1 + 0.6 * z_age),
            np.exp(-0.9 + 1.4 * z_inc + 0.2 * z_age),
            np.ones(n),
        ],
    )
    # the categories are drawn as messy spellings (word indices); region also as its code
    gender = lookup(rng, tables["gender"], n)
    region_word = lookup(rng, tables["region"], n)
    channel = lookup(rng, tables["acquisition"], n, group_key(age < 30))
    household = np.clip(1 + rng.poisson(1.3, n), 1, 6).astype(np.int32)
    if signup_between is None:
        span = as_of_day - START_DAY
        signup_day = START_DAY + np.floor(span * np.sqrt(rng.random(n))).astype(np.int32)
        signup_day = np.minimum(signup_day, as_of_day - 1)
    else:
        lo, hi = signup_between
        signup_day = lo + np.floor((hi - lo) * rng.random(n)).astype(np.int32)
    return {
        "age": age,
        "income": income,
        "log_income": log_income,
        "persona": persona,
        "gender_word": gender,
        "region": REGION_WORDS.canonical[region_word],
        "region_word": region_word,
        "channel_word": channel,
        "household": household,
        "signup_day": signup_day,
    }


def customer_behaviour(
    o: dict[str, np.ndarray], totals: dict[str, np.ndarray], as_of_day: int
) -> dict[str, np.ndarray]:
    """Per-customer aggregates of the clean purchase history (what dbt will compute too)."""
    count = o["counts"]
    has = count > 0
    safe = np.maximum(count, 1)
    recency_days = np.where(has, (as_of_day * DAY_S - totals["last_s"]) / DAY_S, 2000.0)
    return {
        "count": count,
        "spend": totals["spend"],
        "return_rate": np.where(has, totals["returns"] / safe, 0.1),
        "discount": np.where(has, totals["discount"] / safe, 0.1),
        "recency_days": recency_days,
    }


def satisfaction(
    rng: np.random.Generator, c: dict[str, np.ndarray], b: dict[str, np.ndarray], as_of_day: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected satisfaction (noise-free), its noise sd, and the observed score."""
    age = c["age"].astype(float)
    young = sigmoid((40.0 - age) / 6.0)
    tenure_years = (as_of_day - c["signup_day"]) / 365.25
    expected = (
        6.3
        + 1.1 * np.tanh((b["count"] - 8.0) / 6.0)  # engagement, saturating
        - 4.0 * (b["return_rate"] - 0.1)  # returns hurt
        - 0.9 * sigmoid((b["recency_days"] - 240.0) / 60.0)  # lapsed customers
        + 0.5 * (c["log_income"] - 10.75) * (2.0 * young - 1.0)  # age x income interaction
        - 0.0009 * (age - 50.0) ** 2  # inverted U in age
        + 2.0 * (b["discount"] - 0.1)
        + 0.25 * np.log1p(tenure_years)
        + np.array([0.2, -0.1, 0.0, 0.15, -0.25])[c["region"]]
    )
    noise_sd = np.where(c["household"] >= 4, 0.75, 0.6)
    observed = np.clip(expected + rng.normal(0.0, 1.0, len(age)) * noise_sd, 1.0, 10.0)
    return expected, noise_sd, np.round(observed, 2)
