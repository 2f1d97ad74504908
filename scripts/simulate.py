"""Simulate realistic raw business data: `python -m scripts.simulate --customers N --seed S`.

Lands `raw.customers`, `raw.orders` and `raw.loans` (messy, as a source system would hand them
over) and the noise-free ground truth `sim.customer_truth` and `sim.loan_truth` (never a feature)
in the warehouse (`WAREHOUSE_PATH`). The columns and the designed mess rates are documented in
docs/data_contract.md; the rates are the module constants below.

Everything is vectorised with numpy (no Python loop per row, no pandas) and handed to DuckDB as
Arrow arrays over the numpy buffers, so 1M customers and 10M orders take a few seconds. The same
seed gives identical tables. What keeps it fast:
- categorical draws are inverse-CDF lookups: one 16-bit uniform per row indexes a precomputed
  table of the distribution's quantiles for the row's group (every probability is resolved to
  1/65,536). A category and its messy spelling are one joint draw (for orders, whether the order
  was returned too), and the order discounts and item counts are drawn the same way;
- orders are generated already sorted by customer and time: a customer's order times are the
  order statistics of uniforms, built from exponential spacings, so nothing is sorted;
- rare mess (NULLs, bad values) is drawn as positions (a binomial count, then the rows), not as one
  uniform per row;
- text is dictionary-encoded, and the mess rows added to a table (extra rows, exact duplicates)
  form a second small Arrow chunk, so the big columns are never copied.

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

import functools
import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
_US = 1_000_000  # microseconds a second (landed timestamps are in microseconds)

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


# --------------------------------------------------------------------------------------------
# Sampling helpers: inverse-CDF lookup tables, row-wise choices, rare events, messy spellings

#: Resolution of the lookup-table draws: one 16-bit uniform per row.
_BITS = 16
_LEVELS = 1 << _BITS
_MIDPOINTS = (np.arange(_LEVELS) + 0.5) / _LEVELS


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _inverse_cdf(probs: np.ndarray | Sequence[float]) -> np.ndarray:
    """Lookup tables (groups x 65,536) for drawing from the rows of `probs` (groups x outcomes).

    Entry j of row g is the outcome whose CDF interval holds (j + 0.5) / 65,536, so a uniform
    16-bit index draws an outcome of P(. | g) with every probability resolved to 1/65,536.
    """
    probs = np.atleast_2d(np.asarray(probs, dtype=float))
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    k = probs.shape[1]
    table = np.empty((len(probs), _LEVELS), dtype=np.int8 if k <= 127 else np.int32)
    for g, row in enumerate(cdf):
        table[g] = np.minimum(np.searchsorted(row, _MIDPOINTS, side="right"), k - 1)
    return table


def _empty(n: int, dtype: type | np.dtype) -> np.ndarray:
    """An uninitialised array in Arrow's memory pool, for the big columns that are filled in place
    and then wrapped by Arrow without a copy (the pool also reuses memory instead of faulting in
    fresh pages)."""
    dtype = np.dtype(dtype)
    return np.frombuffer(pa.allocate_buffer(n * dtype.itemsize), dtype=dtype)


def _group_key(groups: np.ndarray) -> np.ndarray:
    """A row's group as the high bits of its index into a flattened lookup table."""
    return groups.astype(np.int32) << _BITS


def _lookup(
    rng: np.random.Generator,
    table: np.ndarray,
    n: int,
    key: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """One draw per row from `table` (groups x 65,536): row `key >> 16`, column a fresh uniform."""
    u = rng.integers(0, _LEVELS, n, dtype=np.uint16)
    return np.take(table.reshape(-1), u if key is None else key | u, out=out, mode="clip")


def _choose(rng: np.random.Generator, weights: list[np.ndarray]) -> np.ndarray:
    """One draw per row from unnormalised row-wise weights (k columns): inverse CDF, one uniform."""
    u = rng.random(len(weights[0])) * sum(weights)
    acc = np.zeros_like(u)
    out = np.zeros(len(u), dtype=np.int8)
    for w in weights[:-1]:
        acc += w
        out += u >= acc
    return out


def _rows_hit(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Positions of the rows an event of probability `rate` hits, independently per row."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    return rng.choice(n, size=rng.binomial(n, rate), replace=False, shuffle=False)


def _mask(rng: np.random.Generator, n: int, rate: float | np.ndarray) -> np.ndarray:
    """Boolean mask of an event of probability `rate` (a scalar, or one per row)."""
    if np.ndim(rate):
        return rng.random(n) < rate
    mask = np.zeros(n, dtype=bool)
    mask[_rows_hit(rng, n, rate)] = True
    return mask


@dataclass(frozen=True, eq=False)
class _Vocabulary:
    """The distinct spellings (`words`) of a categorical column, each word's canonical code, and
    P(word | canonical value): the canonical spelling with CANONICAL_SPELLING_SHARE, the rest
    spread evenly over the other variants."""

    words: list[str]
    canonical: np.ndarray  # (words,)
    given: np.ndarray  # (codes x words)

    @classmethod
    def of(cls, spellings: list[list[str]]) -> _Vocabulary:
        n_var = max(len(s) for s in spellings)
        words: list[str] = []
        shares: list[dict[str, float]] = []
        for variants in spellings:
            share: dict[str, float] = {}
            for v in range(n_var):
                word = variants[v % len(variants)]
                if word not in words:
                    words.append(word)
                if n_var == 1:
                    p = 1.0
                elif v == 0:
                    p = CANONICAL_SPELLING_SHARE
                else:
                    p = (1.0 - CANONICAL_SPELLING_SHARE) / (n_var - 1)
                share[word] = share.get(word, 0.0) + p
            shares.append(share)
        given = np.zeros((len(spellings), len(words)))
        canonical = np.full(len(words), -1, dtype=np.int8)
        for k, share in enumerate(shares):
            for word, p in share.items():
                j = words.index(word)
                if canonical[j] not in (-1, k):
                    raise ValueError(f"spelling {word!r} belongs to two canonical values")
                canonical[j], given[k, j] = k, p
        return cls(words, canonical, given)

    def joint(self, probs: np.ndarray | Sequence[float]) -> np.ndarray:
        """P(word | group) when the canonical value is drawn from `probs` (groups x codes)."""
        return np.atleast_2d(np.asarray(probs, dtype=float)) @ self.given

    @functools.cached_property
    def spell_table(self) -> np.ndarray:
        """Lookup table drawing a word for a known canonical code (the table's group)."""
        return _inverse_cdf(self.given)

    @functools.cached_property
    def dictionary(self) -> pa.Array:
        return pa.array(self.words, pa.string())


def _spell(rng: np.random.Generator, codes: np.ndarray, vocab: _Vocabulary) -> np.ndarray:
    """A messy spelling (word index) of every canonical code."""
    return _lookup(rng, vocab.spell_table, len(codes), _group_key(codes))


_GENDER = _Vocabulary.of(list(GENDER.values()))
_REGION = _Vocabulary.of([_spellings(v) for v in REGIONS])
_ACQUISITION = _Vocabulary.of([_spellings(v) for v in ACQUISITION_CHANNELS])
_CATEGORY = _Vocabulary.of([_spellings(v) for v in CATEGORIES])
_ORDER_CHANNEL = _Vocabulary.of([_spellings(v) for v in ORDER_CHANNELS])
_PURPOSE = _Vocabulary.of([_spellings(v) for v in PURPOSES])
_GRADE = _Vocabulary.of([[g, g.lower(), f" {g}", f"{g} ", g] for g in GRADES])
_HOME = _Vocabulary.of(
    [[v.upper(), v, v.title(), f" {v.upper()}", v.upper()] for v in HOME_OWNERSHIP]
)


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
# The generative model

_GENDER_P = [0.49, 0.48, 0.03]
_REGION_P = [0.22, 0.24, 0.18, 0.2, 0.16]
_ACQUISITION_P = [[0.35, 0.3, 0.15, 0.12, 0.08], [0.3, 0.1, 0.45, 0.1, 0.05]]  # age >= 30, < 30


@functools.cache
def _customer_tables() -> dict[str, np.ndarray]:
    return {
        "gender": _inverse_cdf(_GENDER.joint(_GENDER_P)),
        "region": _inverse_cdf(_REGION.joint(_REGION_P)),
        "acquisition": _inverse_cdf(_ACQUISITION.joint(_ACQUISITION_P)),
    }


def _customers(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Latent and observed traits of every customer (clean, before the mess)."""
    tables = _customer_tables()
    age = np.clip(np.round(18 + rng.gamma(3.0, 8.0, n)), 18, 90).astype(np.int32)
    a = (age - 18).astype(float)
    log_income = 10.25 + 0.035 * a - 0.0005 * a**2 + rng.normal(0.0, 0.45, n)
    income = np.round(np.exp(log_income), -2)
    z_inc = (log_income - 10.75) / 0.5
    z_age = (age - 42.0) / 14.0
    # persona: multinomial logit on age and income (bargain, loyal, premium, occasional)
    persona = _choose(
        rng,
        [
            np.exp(0.2 - 0.9 * z_inc - 0.5 * z_age),
            np.exp(0.1 + 0.6 * z_age),
            np.exp(-0.9 + 1.4 * z_inc + 0.2 * z_age),
            np.ones(n),
        ],
    )
    # the categories are drawn as messy spellings (word indices); region also as its code
    gender = _lookup(rng, tables["gender"], n)
    region_word = _lookup(rng, tables["region"], n)
    channel = _lookup(rng, tables["acquisition"], n, _group_key(age < 30))
    household = np.clip(1 + rng.poisson(1.3, n), 1, 6).astype(np.int32)
    span = AS_OF_DAY - START_DAY
    signup_day = START_DAY + np.floor(span * np.sqrt(rng.random(n))).astype(np.int32)
    signup_day = np.minimum(signup_day, AS_OF_DAY - 1)
    return {
        "age": age,
        "income": income,
        "log_income": log_income,
        "persona": persona,
        "gender_word": gender,
        "region": _REGION.canonical[region_word],
        "region_word": region_word,
        "channel_word": channel,
        "household": household,
        "signup_day": signup_day,
    }


# persona-level behaviour: bargain hunter, loyal, premium, occasional
_ORDER_RATE = np.array([1.25, 1.9, 0.95, 0.32])  # relative order frequency
_RECENCY_POWER = np.array([0.9, 0.6, 0.8, 1.8])  # >1 pushes orders early (churned), <1 late
_AMOUNT_OFFSET = np.array([-0.35, 0.0, 0.75, 0.1])
_DISCOUNT_BETA = np.array([[3.0, 6.0], [1.2, 12.0], [0.8, 18.0], [1.0, 9.0]])
_MAX_DISCOUNT = 0.6
_ITEMS_POISSON = np.array([2.2, 1.2, 1.2, 1.2])  # items = 1 + Poisson, at most 20
_MAX_ITEMS = 20
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
_ORDER_CHANNEL_P = np.array([[0.45, 0.2, 0.35], [0.35, 0.5, 0.15]])  # age >= 35, < 35


def _beta_quantiles(a: float, b: float, q: np.ndarray) -> np.ndarray:
    """Quantiles of Beta(a, b): the CDF integrated on a fine grid (in t = x**a, where the
    density (1 - x)**(b - 1) is bounded), then inverted by interpolation."""
    x = np.linspace(0.0, 1.0, (1 << 17) + 1)
    t = x**a
    g = (1.0 - x) ** (b - 1.0)
    cdf = np.concatenate([[0.0], np.cumsum((g[1:] + g[:-1]) / 2 * np.diff(t))])
    return np.interp(q, cdf / cdf[-1], x)


def _poisson_pmf(lam: float, k_max: int) -> np.ndarray:
    """P(X = 0..k_max - 1) of Poisson(lam), with P(X >= k_max - 1) lumped into the last."""
    pmf = np.array([math.exp(-lam) * lam**k / math.factorial(k) for k in range(k_max)])
    pmf[-1] = max(0.0, 1.0 - pmf[:-1].sum())
    return pmf


@functools.cache
def _order_tables() -> dict[str, np.ndarray]:
    """Lookup tables of the order-level draws, by group = persona * 2 + (age < 35)."""
    persona = np.arange(8) // 2
    young = np.arange(8) % 2
    # joint draw of (category spelling, returned): code = word * 2 + returned
    word_p = _CATEGORY.joint(_CATEGORY_MIX[persona])
    category = _CATEGORY.canonical
    returned_p = np.clip(_RETURN_BASE[persona, None] + _CATEGORY_RETURN[category], 0.0, 1.0)
    joint = np.stack([word_p * (1.0 - returned_p), word_p * returned_p], axis=2)
    items = np.stack([_poisson_pmf(lam, _MAX_ITEMS) for lam in _ITEMS_POISSON[persona]])
    discount = np.stack(
        [
            np.minimum(_beta_quantiles(*_DISCOUNT_BETA[p], _MIDPOINTS), _MAX_DISCOUNT)
            for p in range(4)
        ]
    )
    return {
        "category": _inverse_cdf(joint.reshape(8, -1)),
        "amount_offset": np.repeat(_CATEGORY_AMOUNT[category], 2),  # by code
        "items": (_inverse_cdf(items) + 1).astype(np.int32),
        # discount in units of 0.0001 (the landed precision), so the table stays small
        "discount": np.rint(discount[persona] * 1e4).astype(np.uint16),
        "channel": _inverse_cdf(_ORDER_CHANNEL.joint(_ORDER_CHANNEL_P[young])),
    }


#: Customers whose orders are generated together: the temporaries stay cache-sized and are reused,
#: only the output columns are allocated at full length.
_BLOCK = 1 << 14
_THREADS = min(4, os.cpu_count() or 1)


def _applications(rng: np.random.Generator, c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Who applies for a loan and when (the rest of the application is drawn in `_loans`)."""
    n = len(c["age"])
    counts = rng.poisson(LOANS_PER_CUSTOMER * np.array([1.5, 0.9, 0.7, 0.9])[c["persona"]])
    cust = np.repeat(np.arange(n, dtype=np.int64), counts)
    start_s = (c["signup_day"][cust].astype(np.int64) + 7) * DAY_S
    applied_s = start_s + np.floor(
        rng.random(len(cust)) * np.maximum(AS_OF_DAY * DAY_S - start_s - 1, 1)
    ).astype(np.int64)
    return {"cust": cust, "applied_s": np.minimum(applied_s, AS_OF_DAY * DAY_S - 1)}


def _first_at_or_after(
    times: np.ndarray, lo: np.ndarray, hi: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """Per query, the first index in [lo, hi) whose time is >= t (`times` sorted in each range)."""
    lo, hi = lo.copy(), hi.copy()
    last = max(len(times) - 1, 0)
    while True:
        open_ = lo < hi
        if not open_.any():
            return lo
        mid = (lo + hi) // 2
        earlier = open_ & (times[np.minimum(mid, last)] < t)
        lo = np.where(earlier, mid + 1, lo)
        hi = np.where(open_ & ~earlier, mid, hi)


def _orders(
    rng: np.random.Generator, c: dict[str, np.ndarray], applications: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The purchase history (clean, sorted by customer then time), its per-customer totals, and
    every loan applicant's purchases strictly before the application (no leakage)."""
    n = len(c["age"])
    persona = c["persona"]
    tables = _order_tables()
    tenure_years = (AS_OF_DAY - c["signup_day"]) / 365.25
    # gamma-Poisson (negative binomial): heavy-tailed counts; scaled to ~10 orders a customer
    mean = _ORDER_RATE[persona] * np.sqrt(tenure_years + 0.25)
    mean *= np.exp(0.3 * (c["log_income"] - 10.75))  # exp(0.15 z), z = standardised log income
    mean *= ORDERS_PER_CUSTOMER / mean.mean()
    counts = rng.poisson(mean * rng.gamma(1.2, 1 / 1.2, n))
    ends = np.cumsum(counts)
    m = int(ends[-1])

    # the outputs, allocated once at full length (in Arrow's pool) and filled block by block
    o = {
        "counts": counts,
        "order_id": _empty(m, np.int64),
        "customer_id": _empty(m, np.int64),
        "ordered_at": _empty(m, np.int64),  # microseconds since the epoch
        "amount": _empty(m, np.float64),
        "discount": _empty(m, np.float64),
        "items": _empty(m, np.int32),
        "category_word": _empty(m, np.int8),
        "channel_word": _empty(m, np.int8),
        "returned": _empty(m, np.bool_),
    }
    totals = {name: _empty(n, np.float64) for name in ("spend", "returns", "discount")}
    totals["last_s"] = _empty(n, np.int64)
    loan_cust, applied_s = applications["cust"], applications["applied_s"]
    prior = {name: np.zeros(len(loan_cust)) for name in ("count", "returns", "discount")}
    loan_bounds = np.searchsorted(loan_cust, [*range(0, n, _BLOCK), n])

    def fill(block: int) -> None:
        """Generate the orders of one block of customers into their rows of the outputs."""
        rng = np.random.default_rng(streams[block])
        lo = block * _BLOCK
        hi = min(lo + _BLOCK, n)
        who = slice(lo, hi)
        cnt = counts[who]
        a, z = int(ends[lo] - cnt[0]), int(ends[hi - 1])
        local_end = np.cumsum(cnt)
        local_start = local_end - cnt
        has = cnt > 0
        for name in ("spend", "returns", "discount"):
            totals[name][who] = 0.0
        totals["last_s"][who] = -1
        if z == a:
            return
        rows = slice(a, z)
        mb = z - a
        o["order_id"][rows] = np.arange(a + 1, z + 1)
        o["customer_id"][rows] = np.repeat(np.arange(lo + 1, hi + 1), cnt)
        p = persona[who]

        # Order times, sorted within each customer without sorting: the order statistics of k
        # uniforms are the partial sums of k + 1 exponential spacings over their total.
        cum = rng.standard_exponential(mb + hi - lo)
        np.cumsum(cum, out=cum)
        last = local_end + np.arange(hi - lo)  # each customer's (k + 1)-th spacing
        before = np.concatenate([[0.0], cum])[last - cnt]
        total = np.maximum(cum[last] - before, 1e-300)
        u = np.delete(cum, last)
        u -= np.repeat(before, cnt)
        u *= np.repeat(1.0 / total, cnt)
        np.clip(u, 0.0, 1.0, out=u)
        np.power(u, np.repeat(_RECENCY_POWER[p], cnt), out=u)
        start_s = c["signup_day"][who].astype(np.int64) * DAY_S
        u *= np.repeat((AS_OF_DAY * DAY_S - start_s - 1).astype(float), cnt)
        ordered_s = u.astype(np.int64)  # floor, u >= 0
        ordered_s += np.repeat(start_s, cnt)
        np.multiply(ordered_s, _US, out=o["ordered_at"][rows])

        key = np.repeat(_group_key(p.astype(np.int32) * 2 + (c["age"][who] < 35)), cnt)
        code = _lookup(rng, tables["category"], mb, key)  # category spelling * 2 + returned
        np.right_shift(code, 1, out=o["category_word"][rows])
        returned = o["returned"][rows]
        np.bitwise_and(code, 1, out=returned.view(np.int8))
        _lookup(rng, tables["items"], mb, key, out=o["items"][rows])
        discount = o["discount"][rows]
        np.divide(_lookup(rng, tables["discount"], mb, key), 1e4, out=discount)
        _lookup(rng, tables["channel"], mb, key, out=o["channel_word"][rows])
        amount = o["amount"][rows]
        rng.standard_normal(mb, out=amount)
        amount *= 0.55
        z_inc = (c["log_income"][who] - 10.75) / 0.5
        amount += np.repeat(3.55 + 0.35 * z_inc + _AMOUNT_OFFSET[p], cnt)
        amount += tables["amount_offset"][code]
        np.exp(amount, out=amount)
        amount *= 1.0 - discount
        np.round(amount, 2, out=amount)

        # per-customer totals (orders are grouped by customer)
        buyers = lo + np.flatnonzero(has)
        totals["spend"][buyers] = np.add.reduceat(amount, local_start[has])
        totals["returns"][buyers] = np.add.reduceat(returned, local_start[has], dtype=np.float64)
        totals["discount"][buyers] = np.add.reduceat(discount, local_start[has])
        totals["last_s"][buyers] = ordered_s[local_end[has] - 1]

        # the block's loan applicants: their orders strictly before the application
        loans = slice(loan_bounds[block], loan_bounds[block + 1])
        applicant = loan_cust[loans] - lo
        first = local_start[applicant]
        upto = _first_at_or_after(ordered_s, first, local_end[applicant], applied_s[loans])
        cum_returns = np.concatenate([[0], np.cumsum(returned, dtype=np.int64)])
        cum_discount = np.concatenate([[0.0], np.cumsum(discount)])
        prior["count"][loans] = upto - first
        prior["returns"][loans] = cum_returns[upto] - cum_returns[first]
        prior["discount"][loans] = cum_discount[upto] - cum_discount[first]

    # Every block draws from its own stream spawned from the seed, so blocks can be generated in
    # parallel threads (numpy releases the GIL) and the result does not depend on scheduling.
    streams = np.random.SeedSequence(int(rng.integers(2**63))).spawn(len(loan_bounds) - 1)
    if len(streams) == 1:
        fill(0)
    else:
        with ThreadPoolExecutor(max_workers=_THREADS) as pool:
            list(pool.map(fill, range(len(streams))))
    return o, totals, prior


def _customer_behaviour(
    o: dict[str, np.ndarray], totals: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Per-customer aggregates of the clean purchase history (what dbt will compute too)."""
    count = o["counts"]
    has = count > 0
    safe = np.maximum(count, 1)
    recency_days = np.where(has, (AS_OF_DAY * DAY_S - totals["last_s"]) / DAY_S, 2000.0)
    return {
        "count": count,
        "spend": totals["spend"],
        "return_rate": np.where(has, totals["returns"] / safe, 0.1),
        "discount": np.where(has, totals["discount"] / safe, 0.1),
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


_PURPOSE_P = [0.42, 0.2, 0.09, 0.06, 0.04, 0.07, 0.04, 0.08]
_HOME_P = [[0.6, 0.1, 0.27, 0.03], [0.3, 0.2, 0.47, 0.03]]  # age <= 40, > 40


@functools.cache
def _loan_tables() -> dict[str, np.ndarray]:
    return {
        "purpose": _inverse_cdf(_PURPOSE.joint(_PURPOSE_P)),
        "home": _inverse_cdf(_HOME.joint(_HOME_P)),
    }


def _intercept(logit: np.ndarray, target: float) -> float:
    """The c in [-10, 10] with mean(sigmoid(logit + c)) = target: Newton steps kept inside a
    shrinking bisection bracket (the mean is increasing in c)."""
    lo, hi, c = -10.0, 10.0, 0.0
    if len(logit) == 0:
        return c
    for _ in range(100):
        p = _sigmoid(logit + c)
        gap = p.mean() - target
        if abs(gap) < 1e-13 or hi - lo < 1e-13:
            break
        lo, hi = (c, hi) if gap < 0 else (lo, c)
        slope = (p * (1.0 - p)).mean()
        step = c - gap / slope if slope > 0 else lo - 1.0
        c = step if lo < step < hi else (lo + hi) / 2
    return c


def _loans(
    rng: np.random.Generator,
    c: dict[str, np.ndarray],
    applications: dict[str, np.ndarray],
    prior: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Loan applications (clean) with the default probability and the drawn outcome."""
    persona = c["persona"]
    tables = _loan_tables()
    cust = applications["cust"]
    m = len(cust)
    p = persona[cust]
    age = c["age"][cust].astype(float)
    income = np.exp(c["log_income"][cust])
    annual_income = np.round(income * np.exp(rng.normal(0.0, 0.08, m)), -2)
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
    purpose_word = _lookup(rng, tables["purpose"], m)
    purpose = _PURPOSE.canonical[purpose_word]
    loan_amount = np.round(np.clip(income * np.exp(rng.normal(-1.7, 0.5, m)), 1000, 40000), -2)
    emp_years = np.clip(np.floor((age - 18) * rng.beta(2, 2, m) / 2.5), 0, 10).astype(int)
    home_word = _lookup(rng, tables["home"], m, _group_key(age > 40))
    home = _HOME.canonical[home_word]
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
    # intercept chosen so the mean default probability is the target rate
    prob = _sigmoid(logit + _intercept(logit, TARGET_DEFAULT_RATE))
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
        "defaulted": defaulted,
    }


# --------------------------------------------------------------------------------------------
# Assembling the raw tables, with the designed mess. A table is first a list of chunks, each a
# dict of equally long numpy columns (a nullable column's NULLs in "<column>.null"); the big
# clean chunk is never copied, the mess rows form a small second chunk.

_Chunk = dict[str, np.ndarray]


def _take(chunk: _Chunk, idx: np.ndarray) -> _Chunk:
    return {name: values[idx] for name, values in chunk.items()}


def _concat(chunks: list[_Chunk]) -> _Chunk:
    return {name: np.concatenate([ch[name] for ch in chunks]) for name in chunks[0]}


def _length(chunk: _Chunk) -> int:
    return len(next(iter(chunk.values())))


def _arrow_column(
    chunk: _Chunk, name: str, kind: pa.DataType | _Vocabulary | list[str]
) -> pa.Array:
    nulls = chunk.get(f"{name}.null")
    if nulls is not None and not nulls.any():
        nulls = None
    values = chunk[name]
    if isinstance(kind, pa.DataType):
        return pa.array(values, type=kind, mask=nulls)
    dictionary = kind.dictionary if isinstance(kind, _Vocabulary) else pa.array(kind, pa.string())
    indices = pa.array(values.astype(np.int8, copy=False), type=pa.int8(), mask=nulls)
    return pa.DictionaryArray.from_arrays(indices, dictionary)


def _land(
    rng: np.random.Generator,
    chunks: list[_Chunk],
    schema: dict[str, pa.DataType | _Vocabulary | list[str]],
    duplicate_rate: float,
) -> pa.Table:
    """The Arrow table of `chunks`, plus exact copies of `duplicate_rate` of its rows at the end."""
    sizes = [_length(ch) for ch in chunks]
    n_dup = int(round(sum(sizes) * duplicate_rate))
    tail = chunks[1:]
    if n_dup:
        idx = np.sort(rng.choice(sum(sizes), size=n_dup, replace=False))
        bounds = np.cumsum([0, *sizes])
        for ch, lo, hi in zip(chunks, bounds[:-1], bounds[1:], strict=True):
            tail.append(_take(ch, idx[(idx >= lo) & (idx < hi)] - lo))
    parts = [chunks[0], _concat(tail)] if tail else [chunks[0]]
    return pa.table(
        {
            name: pa.chunked_array([_arrow_column(part, name, kind) for part in parts])
            for name, kind in schema.items()
        }
    )


_TIMESTAMP = pa.timestamp("us")


def _raw_customers(
    rng: np.random.Generator, c: dict[str, np.ndarray], satisfaction: np.ndarray
) -> pa.Table:
    n = len(c["age"])
    age = c["age"].copy()
    bad_age = _rows_hit(rng, n, RATES["customers.age_out_of_range"])
    age[bad_age] = rng.choice(np.array([0, 150, -1, 200], dtype=np.int32), len(bad_age))
    young = c["age"] < 25
    income_null = _mask(
        rng,
        n,
        np.where(young, RATES["customers.income_null_young"], RATES["customers.income_null_other"]),
    )
    signup = c["signup_day"].copy()
    future = _rows_hit(rng, n, RATES["customers.signup_in_future"])
    signup[future] = AS_OF_DAY + rng.integers(1, 400, len(future))
    observed_persona = c["persona"].copy()
    wrong = _rows_hit(rng, n, RATES["customers.segment_wrong"])
    observed_persona[wrong] = (observed_persona[wrong] + rng.integers(1, 4, len(wrong))) % 4
    chunk = {
        "customer_id": np.arange(1, n + 1, dtype=np.int64),
        "age": age,
        "age.null": _mask(rng, n, RATES["customers.age_null"]),
        "income": c["income"],
        "income.null": income_null,
        "gender": c["gender_word"],
        "gender.null": _mask(rng, n, RATES["customers.gender_null"]),
        "region": c["region_word"],
        "acquisition_channel": c["channel_word"],
        "household_size": c["household"],
        "household_size.null": _mask(rng, n, RATES["customers.household_size_null"]),
        "signup_date": signup.astype(np.int32),
        "customer_satisfaction": satisfaction,
        "customer_satisfaction.null": _mask(rng, n, RATES["customers.satisfaction_null"]),
        "segment": observed_persona,
        "segment.null": _mask(rng, n, RATES["customers.segment_null"]),
    }
    schema = {
        "customer_id": pa.int64(),
        "age": pa.int32(),
        "income": pa.float64(),
        "gender": _GENDER,
        "region": _REGION,
        "acquisition_channel": _ACQUISITION,
        "household_size": pa.int32(),
        "signup_date": pa.date32(),
        "customer_satisfaction": pa.float64(),
        "segment": PERSONA_LABELS,
    }
    return _land(rng, [chunk], schema, RATES["customers.duplicate_rows"])


def _raw_orders(rng: np.random.Generator, n: int, o: dict[str, np.ndarray]) -> pa.Table:
    """Clean history + extra messy rows (orphans, future, negative, missing amount)."""
    m = len(o["amount"])
    clean = {
        "order_id": o["order_id"],
        "customer_id": o["customer_id"],
        "ordered_at": o["ordered_at"],
        "amount": o["amount"],
        "amount.null": np.zeros(m, dtype=bool),
        "discount_pct": o["discount"],
        "items": o["items"],
        "category": o["category_word"],
        "category.null": _mask(rng, m, RATES["orders.category_null"]),
        "channel": o["channel_word"],
        "is_returned": o["returned"],
    }
    extra: dict[str, int] = {
        kind: int(round(m * RATES[f"orders.{kind}"]))
        for kind in ("orphan", "in_future", "negative_amount", "amount_null")
    }
    n_extra = sum(extra.values())
    mess = _take(clean, rng.integers(0, max(m, 1), n_extra))  # n_extra is 0 when m is
    mess["order_id"] = np.arange(m + 1, m + n_extra + 1, dtype=np.int64)
    mess["category.null"] = _mask(rng, n_extra, RATES["orders.category_null"])
    kinds = np.repeat(np.arange(4), list(extra.values()))
    mess["customer_id"][kinds == 0] = n + 1 + rng.integers(0, max(n // 10, 10), extra["orphan"])
    mess["ordered_at"][kinds == 1] = (
        AS_OF_DAY * DAY_S + rng.integers(DAY_S, 300 * DAY_S, extra["in_future"])
    ) * _US
    mess["amount"][kinds == 2] = -np.abs(mess["amount"][kinds == 2])
    mess["amount.null"][kinds == 3] = True
    schema = {
        "order_id": pa.int64(),
        "customer_id": pa.int64(),
        "ordered_at": _TIMESTAMP,
        "amount": pa.float64(),
        "discount_pct": pa.float64(),
        "items": pa.int32(),
        "category": _CATEGORY,
        "channel": _ORDER_CHANNEL,
        "is_returned": pa.bool_(),
    }
    return _land(rng, [clean, mess], schema, RATES["orders.duplicate_rows"])


def _raw_loans(rng: np.random.Generator, n: int, ln: dict[str, np.ndarray]) -> pa.Table:
    k = len(ln["cust"])
    loan_cust = ln["cust"] + 1
    orphan = _rows_hit(rng, k, RATES["loans.orphan"])
    loan_cust[orphan] = n + 1 + rng.integers(0, max(n // 10, 10), len(orphan))
    applied = ln["applied_s"].copy()
    fut = _rows_hit(rng, k, RATES["loans.in_future"])
    applied[fut] = AS_OF_DAY * DAY_S + rng.integers(DAY_S, 300 * DAY_S, len(fut))
    amount = ln["loan_amount"].copy()
    bad_amt = _rows_hit(rng, k, RATES["loans.non_positive_amount"])
    amount[bad_amt] = rng.choice(np.array([0.0, -1000.0, -5000.0]), len(bad_amt))
    score = ln["credit_score"].copy()
    bad_score = _rows_hit(rng, k, RATES["loans.credit_score_out_of_range"])
    score[bad_score] = rng.choice(np.array([0, 999], dtype=np.int32), len(bad_score))
    emp_null = _mask(rng, k, RATES["loans.employment_length_null"])
    emp_codes = np.where(rng.random(k) < 0.03, len(EMPLOYMENT), ln["emp_years"])  # n/a
    chunk = {
        "loan_id": np.arange(1, k + 1, dtype=np.int64),
        "customer_id": loan_cust,
        "applied_at": applied * _US,
        "loan_amount": amount,
        "term": ln["term60"].astype(np.int8),
        "purpose": ln["purpose_word"],
        "grade": _spell(rng, ln["grade"], _GRADE),
        "interest_rate": ln["interest"],
        "annual_income": ln["annual_income"],
        "annual_income.null": _mask(rng, k, RATES["loans.annual_income_null"]),
        "employment_length": emp_codes,
        "employment_length.null": emp_null,
        "home_ownership": ln["home_word"],
        "credit_score": score,
        "debt_to_income": ln["dti"],
        "debt_to_income.null": _mask(rng, k, RATES["loans.debt_to_income_null"]),
        "delinquencies_2y": ln["delinq"],
        "credit_history_years": ln["history"],
        "open_accounts": ln["open_acc"],
        "revolving_utilization": ln["revol"],
        "revolving_utilization.null": _mask(rng, k, RATES["loans.revolving_utilization_null"]),
        "defaulted": ln["defaulted"],
    }
    schema = {
        "loan_id": pa.int64(),
        "customer_id": pa.int64(),
        "applied_at": _TIMESTAMP,
        "loan_amount": pa.float64(),
        "term": [" 36 months", " 60 months"],
        "purpose": _PURPOSE,
        "grade": _GRADE,
        "interest_rate": pa.float64(),
        "annual_income": pa.float64(),
        "employment_length": [*EMPLOYMENT, "n/a"],
        "home_ownership": _HOME,
        "credit_score": pa.int32(),
        "debt_to_income": pa.float64(),
        "delinquencies_2y": pa.int32(),
        "credit_history_years": pa.float64(),
        "open_accounts": pa.int32(),
        "revolving_utilization": pa.float64(),
        "defaulted": pa.int32(),
    }
    return _land(rng, [chunk], schema, RATES["loans.duplicate_rows"])


def simulate(n_customers: int, seed: int) -> Simulation:
    """Generate every table for `n_customers` customers, deterministically for `seed`."""
    if n_customers < 1:
        raise UserError("--customers must be at least 1")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = n_customers
    c = _customers(rng, n)
    applications = _applications(rng, c)
    o, totals, prior = _orders(rng, c, applications)
    expected, noise_sd, satisfaction = _satisfaction(rng, c, _customer_behaviour(o, totals))
    ln = _loans(rng, c, applications, prior)
    k = len(ln["cust"])
    tables = {
        "raw.customers": _raw_customers(rng, c, satisfaction),
        "raw.orders": _raw_orders(rng, n, o),
        "raw.loans": _raw_loans(rng, n, ln),
        # ---- ground truth
        "sim.customer_truth": pa.table(
            {
                "customer_id": pa.array(np.arange(1, n + 1, dtype=np.int64), pa.int64()),
                "expected_satisfaction": pa.array(expected, pa.float64()),
                "noise_sd": pa.array(noise_sd, pa.float64()),
                "persona": _arrow_column({"persona": c["persona"]}, "persona", PERSONAS),
            }
        ),
        "sim.loan_truth": pa.table(
            {
                "loan_id": pa.array(np.arange(1, k + 1, dtype=np.int64), pa.int64()),
                "default_probability": pa.array(ln["prob"], pa.float64()),
            }
        ),
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
