"""Loans: who applies and when, the application, and whether the loan defaults.

A loan defaults with a probability from a logistic model with interactions over the application,
the applicant and the customer's purchase behaviour before the application date; the intercept is
solved for so that the mean default probability is TARGET_DEFAULT_RATE.
"""

from __future__ import annotations

import functools

import numpy as np

from ml.ingestion.simulator.sampling import (
    Vocabulary,
    group_key,
    inverse_cdf,
    lookup,
    sigmoid,
    spell,
)
from ml.ingestion.simulator.world import (
    DAY_S,
    HOME_WORDS,
    LOANS_PER_CUSTOMER,
    PURPOSE_WORDS,
    TARGET_DEFAULT_RATE,
)


def applications(
    rng: np.random.Generator, c: dict[str, np.ndarray], as_of_day: int
) -> dict[str, np.ndarray]:
    """Who applies for a loan and when (the rest of the application is drawn in `loans`)."""
    n = len(c["age"])
    counts = rng.poisson(LOANS_PER_CUSTOMER * np.array([1.5, 0.9, 0.7, 0.9])[c["persona"]])
    cust = np.repeat(np.arange(n, dtype=np.int64), counts)
    start_s = (c["signup_day"][cust].astype(np.int64) + 7) * DAY_S
    applied_s = start_s + np.floor(
        rng.random(len(cust)) * np.maximum(as_of_day * DAY_S - start_s - 1, 1)
    ).astype(np.int64)
    return {"cust": cust, "applied_s": np.minimum(applied_s, as_of_day * DAY_S - 1)}


_PURPOSE_P = [0.42, 0.2, 0.09, 0.06, 0.04, 0.07, 0.04, 0.08]
_PURPOSE_EFFECT = [0.0, -0.1, -0.2, 0.0, 0.7, -0.25, 0.35, 0.1]
_HOME_P = [[0.6, 0.1, 0.27, 0.03], [0.3, 0.2, 0.47, 0.03]]  # age <= 40, > 40


@functools.cache
def _loan_tables() -> dict[str, np.ndarray]:
    return {
        "purpose": inverse_cdf(PURPOSE_WORDS.joint(_PURPOSE_P)),
        "home": inverse_cdf(HOME_WORDS.joint(_HOME_P)),
    }


def _intercept(logit: np.ndarray, target: float) -> float:
    """The c in [-10, 10] with mean(sigmoid(logit + c)) = target: Newton steps kept inside a
    shrinking bisection bracket (the mean is increasing in c)."""
    lo, hi, c = -10.0, 10.0, 0.0
    if len(logit) == 0:
        return c
    for _ in range(100):
        p = sigmoid(logit + c)
        gap = p.mean() - target
        if abs(gap) < 1e-13 or hi - lo < 1e-13:
            break
        lo, hi = (c, hi) if gap < 0 else (lo, c)
        slope = (p * (1.0 - p)).mean()
        step = c - gap / slope if slope > 0 else lo - 1.0
        c = step if lo < step < hi else (lo + hi) / 2
    return c


#: The default logit's terms, each with the application features it involves (`concept=F`
#: reverses every term t that involves F around its mean over the batch's applications:
#: t -> 2 mean(t) - t).
LOGIT_TERMS = {
    "grade": ("grade",),
    "credit_score": ("credit_score",),
    "debt_to_income": ("debt_to_income",),
    "debt_x_low_score": ("debt_to_income", "credit_score"),
    "burden": ("installment_to_income",),
    "delinquencies": ("delinquencies_2y",),
    "revolving": ("revolving_utilization",),
    "term": ("term",),
    "employment": ("employment_years",),
    "purpose": ("purpose",),
    "renting": ("home_ownership",),
    "prior_orders": ("prior_order_count",),
    "prior_returns": ("prior_return_rate",),
    "prior_discount": ("prior_avg_discount_pct",),
    "history": ("credit_history_years",),
}
#: The features `concept=FEATURE` accepts.
CONCEPT_FEATURES = tuple(dict.fromkeys(f for fs in LOGIT_TERMS.values() for f in fs))


def loans(
    rng: np.random.Generator,
    c: dict[str, np.ndarray],
    applications: dict[str, np.ndarray],
    prior: dict[str, np.ndarray],
    *,
    intercept: float | None = None,
    income_factor: np.ndarray | float = 1.0,
    reverse: tuple[str, ...] = (),
    purposes: Vocabulary = PURPOSE_WORDS,
    new_purpose_share: float = 0.0,
) -> dict[str, np.ndarray]:
    """Loan applications (clean) with the default probability and the drawn outcome.

    `intercept` None solves for the one giving TARGET_DEFAULT_RATE (the base world; a batch
    reuses the base world's). The drifts: `income_factor` scales the stated annual income (the
    burden term follows it), `reverse` reverses the logit terms of these features (see
    LOGIT_TERMS), and
    `new_purpose_share` of the applications get the last purpose of `purposes` (logit effect 0).
    """
    persona = c["persona"]
    tables = _loan_tables()
    cust = applications["cust"]
    m = len(cust)
    p = persona[cust]
    age = c["age"][cust].astype(float)
    income = np.exp(c["log_income"][cust])
    annual_income = np.round(income * np.exp(rng.normal(0.0, 0.08, m)) * income_factor, -2)
    z_inc = (c["log_income"][cust] - 10.75) / 0.5
    # purchase behaviour strictly before the application
    prior_count = prior["count"]
    safe = np.maximum(prior_count, 1)
    prior_return = np.where(prior_count > 0, prior["returns"] / safe, 0.1)
    prior_discount = np.where(prior_count > 0, prior["discount"] / safe, 0.1)

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
    purpose_word = lookup(rng, tables["purpose"], m)
    purpose = PURPOSE_WORDS.canonical[purpose_word]
    loan_amount = np.round(np.clip(income * np.exp(rng.normal(-1.7, 0.5, m)), 1000, 40000), -2)
    emp_years = np.clip(np.floor((age - 18) * rng.beta(2, 2, m) / 2.5), 0, 10).astype(int)
    home_word = lookup(rng, tables["home"], m, group_key(age > 40))
    home = HOME_WORDS.canonical[home_word]
    dti = np.clip(rng.beta(2.2, 6.5, m) + 0.05 * (p == 0), 0.0, 1.0)
    delinq = np.minimum(rng.poisson(np.where(credit_score < 640, 0.6, 0.15)), 10).astype(np.int32)
    history = np.round(np.clip((age - 18) * rng.beta(4, 2, m), 0.5, None), 1)
    open_acc = (1 + rng.poisson(7, m)).astype(np.int32)
    revol = np.clip(rng.beta(2, 3, m) * 1.3 + 0.1 * (p == 0), 0.0, 1.5)
    r = interest / 1200.0
    months = np.where(term60, 60, 36)
    installment = loan_amount * r / (1.0 - (1.0 + r) ** -months)
    burden = installment / (annual_income / 12.0)

    if new_purpose_share:
        new = rng.choice(m, size=int(round(new_purpose_share * m)), replace=False)
        code = len(purposes.given) - 1
        purpose_word[new] = spell(rng, np.full(len(new), code, dtype=np.int8), purposes)
        purpose = purposes.canonical[purpose_word]

    low_score = credit_score < 640
    purpose_effect = np.zeros(len(purposes.given))
    purpose_effect[: len(_PURPOSE_EFFECT)] = _PURPOSE_EFFECT
    terms = {
        "grade": 0.38 * grade,
        "credit_score": -(0.006 * (credit_score - 690)),
        "debt_to_income": 3.0 * (dti - 0.25),
        "debt_x_low_score": 2.0 * dti * low_score,  # interaction: debt hurts more with a weak score
        "burden": 9.0 * (burden - 0.06),
        "delinquencies": 0.35 * delinq,
        "revolving": 0.9 * (revol - 0.5),
        "term": 0.35 * term60,
        "employment": -(0.05 * emp_years),
        "purpose": purpose_effect[purpose],
        "renting": 0.25 * (home == 0),
        "prior_orders": -(0.25 * np.log1p(prior_count)),  # an engaged customer repays more often
        "prior_returns": 2.5 * (prior_return - 0.1),  # serial returners default more
        "prior_discount": 1.5 * (prior_discount - 0.1),
        "history": -(0.02 * np.minimum(history, 25)),
    }
    logit = _total(terms)
    if intercept is None:  # chosen so the mean default probability is the target rate
        intercept = _intercept(logit, TARGET_DEFAULT_RATE)
    base_prob = sigmoid(logit + intercept)
    prob = base_prob
    if reverse:
        flipped = {
            # the slope reversed around the term's mean: the default rate stays comparable
            name: 2.0 * term.mean() - term if set(LOGIT_TERMS[name]) & set(reverse) else term
            for name, term in terms.items()
        }
        prob = sigmoid(_total(flipped) + intercept)
    defaulted = (rng.random(m) < prob).astype(np.int32)
    return {
        "cust": cust,
        "applied_s": applications["applied_s"],
        "loan_amount": loan_amount,
        "term60": term60,
        "purpose_word": purpose_word,
        "grade": grade,
        "interest": interest,
        "annual_income": annual_income,
        "emp_years": emp_years,
        "home_word": home_word,
        "credit_score": credit_score,
        "dti": np.round(dti, 4),
        "delinq": delinq,
        "history": history,
        "open_acc": open_acc,
        "revol": np.round(revol, 4),
        "prob": prob,
        "base_prob": base_prob,  # batch 0's formula (differs from `prob` under a concept drift)
        "defaulted": defaulted,
        "intercept": np.float64(intercept),
    }


def _total(terms: dict[str, np.ndarray]) -> np.ndarray:
    """The sum of the logit's terms, in their order."""
    values = iter(terms.values())
    total = next(values)
    for term in values:
        total = total + term
    return total
