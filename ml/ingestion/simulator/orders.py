"""Orders: every customer's purchase history, generated already sorted by customer and time.

The persona and income drive the purchase history: how many orders (heavy-tailed), when, how
large, which categories, how much discount, how often returned. What keeps it fast:
- a category and its messy spelling are one joint draw with whether the order was returned, and
  the discounts and item counts are lookup-table draws too (`sampling`);
- a customer's order times are the order statistics of uniforms, built from exponential
  spacings, so nothing is sorted;
- customers are generated in blocks, each from its own random stream, in parallel threads (numpy
  releases the GIL), into output columns allocated once at full length.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ml.ingestion.simulator.sampling import (
    MIDPOINTS,
    beta_quantiles,
    empty,
    group_key,
    inverse_cdf,
    lookup,
    poisson_pmf,
)
from ml.ingestion.simulator.world import (
    CATEGORY_WORDS,
    DAY_S,
    ORDER_CHANNEL_WORDS,
    ORDERS_PER_CUSTOMER,
    US,
)

# persona-level behaviour: bargain hunter, loyal, premium, occasional
_ORDER_RATE = np.array([1.25, 1.9, 0.95, 0.32])  # relative order frequency
_RECENCY_POWER = np.array([0.9, 0.6, 0.8, 1.8])  # >1 pushes orders early (churned), <1 late
_AMOUNT_OFFSET = np.array([-0.35, 0.0, 0.75, 0.1])
DISCOUNT_BETA = np.array([[3.0, 6.0], [1.2, 12.0], [0.8, 18.0], [1.0, 9.0]])
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


@functools.cache
def _order_tables() -> dict[str, np.ndarray]:
    """Lookup tables of the order-level draws, by group = persona * 2 + (age < 35)."""
    persona = np.arange(8) // 2
    young = np.arange(8) % 2
    # joint draw of (category spelling, returned): code = word * 2 + returned
    word_p = CATEGORY_WORDS.joint(_CATEGORY_MIX[persona])
    category = CATEGORY_WORDS.canonical
    returned_p = np.clip(_RETURN_BASE[persona, None] + _CATEGORY_RETURN[category], 0.0, 1.0)
    joint = np.stack([word_p * (1.0 - returned_p), word_p * returned_p], axis=2)
    items = np.stack([poisson_pmf(lam, _MAX_ITEMS) for lam in _ITEMS_POISSON[persona]])
    discount = np.stack(
        [np.minimum(beta_quantiles(*DISCOUNT_BETA[p], MIDPOINTS), _MAX_DISCOUNT) for p in range(4)]
    )
    return {
        "category": inverse_cdf(joint.reshape(8, -1)),
        "amount_offset": np.repeat(_CATEGORY_AMOUNT[category], 2),  # by code
        "items": (inverse_cdf(items) + 1).astype(np.int32),
        # discount in units of 0.0001 (the landed precision), so the table stays small
        "discount": np.rint(discount[persona] * 1e4).astype(np.uint16),
        "channel": inverse_cdf(ORDER_CHANNEL_WORDS.joint(_ORDER_CHANNEL_P[young])),
    }


#: Customers whose orders are generated together: the temporaries stay cache-sized and are reused,
#: only the output columns are allocated at full length.
BLOCK = 1 << 14
THREADS = min(4, os.cpu_count() or 1)


_ATTRIBUTES = ("category_word", "returned", "items", "discount", "channel_word", "amount")


def _attributes(
    rng: np.random.Generator,
    tables: dict[str, np.ndarray],
    key: np.ndarray,
    level: np.ndarray,
    out: dict[str, np.ndarray],
) -> None:
    """Draw every order's category spelling and returned flag, items, discount, channel and
    amount (log-normal around `level`) into the arrays of `out`; `key` is the order's group."""
    mb = len(key)
    code = lookup(rng, tables["category"], mb, key)  # category spelling * 2 + returned
    np.right_shift(code, 1, out=out["category_word"])
    np.bitwise_and(code, 1, out=out["returned"].view(np.int8))
    lookup(rng, tables["items"], mb, key, out=out["items"])
    discount = out["discount"]
    np.divide(lookup(rng, tables["discount"], mb, key), 1e4, out=discount)
    lookup(rng, tables["channel"], mb, key, out=out["channel_word"])
    amount = out["amount"]
    rng.standard_normal(mb, out=amount)
    amount *= 0.55
    amount += level
    amount += tables["amount_offset"][code]
    np.exp(amount, out=amount)
    amount *= 1.0 - discount
    np.round(amount, 2, out=amount)


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


def orders(
    rng: np.random.Generator,
    c: dict[str, np.ndarray],
    applications: dict[str, np.ndarray],
    as_of_day: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The purchase history (clean, sorted by customer then time), its per-customer totals, and
    every loan applicant's purchases strictly before the application (no leakage)."""
    n = len(c["age"])
    persona = c["persona"]
    tables = _order_tables()
    tenure_years = (as_of_day - c["signup_day"]) / 365.25
    # gamma-Poisson (negative binomial): heavy-tailed counts; scaled to ~10 orders a customer
    mean = _ORDER_RATE[persona] * np.sqrt(tenure_years + 0.25)
    mean *= np.exp(0.3 * (c["log_income"] - 10.75))  # exp(0.15 z), z = standardised log income
    scale = ORDERS_PER_CUSTOMER / mean.mean()
    mean *= scale
    activity = rng.gamma(1.2, 1 / 1.2, n)  # a customer's lasting propensity to order
    counts = rng.poisson(mean * activity)
    ends = np.cumsum(counts)
    m = int(ends[-1])

    # the outputs, allocated once at full length (in Arrow's pool) and filled block by block
    o = {
        "counts": counts,
        "activity": activity,
        "scale": np.float64(scale),
        "order_id": empty(m, np.int64),
        "customer_id": empty(m, np.int64),
        "ordered_at": empty(m, np.int64),  # microseconds since the epoch
        "amount": empty(m, np.float64),
        "discount": empty(m, np.float64),
        "items": empty(m, np.int32),
        "category_word": empty(m, np.int8),
        "channel_word": empty(m, np.int8),
        "returned": empty(m, np.bool_),
    }
    totals = {name: empty(n, np.float64) for name in ("spend", "returns", "discount")}
    totals["last_s"] = empty(n, np.int64)
    loan_cust, applied_s = applications["cust"], applications["applied_s"]
    prior = {name: np.zeros(len(loan_cust)) for name in ("count", "returns", "discount")}
    loan_bounds = np.searchsorted(loan_cust, [*range(0, n, BLOCK), n])

    def fill(block: int) -> None:
        """Generate the orders of one block of customers into their rows of the outputs."""
        rng = np.random.default_rng(streams[block])
        lo = block * BLOCK
        hi = min(lo + BLOCK, n)
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
        u *= np.repeat((as_of_day * DAY_S - start_s - 1).astype(float), cnt)
        ordered_s = u.astype(np.int64)  # floor, u >= 0
        ordered_s += np.repeat(start_s, cnt)
        np.multiply(ordered_s, US, out=o["ordered_at"][rows])

        key = np.repeat(group_key(p.astype(np.int32) * 2 + (c["age"][who] < 35)), cnt)
        z_inc = (c["log_income"][who] - 10.75) / 0.5
        level = np.repeat(3.55 + 0.35 * z_inc + _AMOUNT_OFFSET[p], cnt)
        _attributes(rng, tables, key, level, {name: o[name][rows] for name in _ATTRIBUTES})
        amount, discount, returned = o["amount"][rows], o["discount"][rows], o["returned"][rows]

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
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            list(pool.map(fill, range(len(streams))))
    return o, totals, prior


def expected_orders(c: dict[str, np.ndarray], scale: float, tenure_days: np.ndarray) -> np.ndarray:
    """The expected number of orders a customer has placed by `tenure_days` after signing up:
    the base world's count model (persona, income, tenure, the customer's activity)."""
    tenure_years = np.maximum(tenure_days, 0.0) / 365.25
    mean = _ORDER_RATE[c["persona"]] * np.sqrt(tenure_years + 0.25)
    mean *= np.exp(0.3 * (c["log_income"] - 10.75))
    return mean * scale * c["activity"]


def period_orders(
    rng: np.random.Generator,
    c: dict[str, np.ndarray],
    scale: float,
    period: tuple[int, int],
    first_id: int,
) -> dict[str, np.ndarray]:
    """The orders every customer places in the days [t0, t1) of `period` (clean, sorted by
    customer then time; ids from `first_id`; `counts` per customer).

    It continues the base world: had the base world ended at t1, a customer would have
    `expected_orders(t1)` orders, the k-th fraction of them by tenure T1 * F**power (F uniform);
    the period holds the orders with tenure >= T0 = t0 - signup, so a customer who signed up
    inside the period places all of theirs in it, as the base world's newest customers do.
    """
    t0, t1 = period
    n = len(c["age"])
    persona = c["persona"]
    power = _RECENCY_POWER[persona]
    signup = c["signup_day"].astype(np.int64)
    t1_tenure = np.maximum(t1 - signup, 0).astype(float)
    t0_tenure = np.clip(t0 - signup, 0, None).astype(float)
    before = np.zeros(n)
    np.power(t0_tenure / np.maximum(t1_tenure, 1.0), 1.0 / power, out=before)
    counts = rng.poisson(expected_orders(c, scale, t1_tenure) * (1.0 - before))
    cust = np.repeat(np.arange(n, dtype=np.int64), counts)
    m = len(cust)
    share = before[cust] + (1.0 - before[cust]) * rng.random(m)
    tenure_s = np.floor(t1_tenure[cust] * DAY_S * share ** power[cust]).astype(np.int64)
    ordered_s = np.clip(signup[cust] * DAY_S + tenure_s, t0 * DAY_S, t1 * DAY_S - 1)
    ordered_s = np.maximum(ordered_s, signup[cust] * DAY_S)
    ordered_s = ordered_s[np.lexsort((ordered_s, cust))]  # `cust` is sorted already
    p = persona[cust]
    key = group_key(p.astype(np.int32) * 2 + (c["age"][cust] < 35))
    z_inc = (c["log_income"][cust] - 10.75) / 0.5
    o = {
        "counts": counts,
        "order_id": np.arange(first_id, first_id + m, dtype=np.int64),
        "customer_id": cust + 1,
        "ordered_at": ordered_s * US,
        "amount": np.empty(m),
        "discount": np.empty(m),
        "items": np.empty(m, np.int32),
        "category_word": np.empty(m, np.int8),
        "channel_word": np.empty(m, np.int8),
        "returned": np.empty(m, np.bool_),
    }
    _attributes(rng, _order_tables(), key, 3.55 + 0.35 * z_inc + _AMOUNT_OFFSET[p], o)
    return o
