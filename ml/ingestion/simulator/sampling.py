"""Fast vectorised draws: inverse-CDF lookup tables, row-wise choices, rare events and the messy
spellings of a categorical column.

Categorical draws are inverse-CDF lookups: one 16-bit uniform per row indexes a precomputed table
of the distribution's quantiles for the row's group, so every probability is resolved to
1/65,536. Rare events are drawn as positions (a binomial count, then the rows), not as one
uniform per row.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

#: Resolution of the lookup-table draws: one 16-bit uniform per row.
BITS = 16
LEVELS = 1 << BITS
MIDPOINTS = (np.arange(LEVELS) + 0.5) / LEVELS
#: Share of rows written in the canonical spelling; the rest spread over the other spellings.
CANONICAL_SPELLING_SHARE = 0.8


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def inverse_cdf(probs: np.ndarray | Sequence[float]) -> np.ndarray:
    """Lookup tables (groups x 65,536) for drawing from the rows of `probs` (groups x outcomes).

    Entry j of row g is the outcome whose CDF interval holds (j + 0.5) / 65,536, so a uniform
    16-bit index draws an outcome of P(. | g) with every probability resolved to 1/65,536.
    """
    probs = np.atleast_2d(np.asarray(probs, dtype=float))
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    k = probs.shape[1]
    table = np.empty((len(probs), LEVELS), dtype=np.int8 if k <= 127 else np.int32)
    for g, row in enumerate(cdf):
        table[g] = np.minimum(np.searchsorted(row, MIDPOINTS, side="right"), k - 1)
    return table


def empty(n: int, dtype: type | np.dtype) -> np.ndarray:
    """An uninitialised array in Arrow's memory pool, for the big columns that are filled in place
    and then wrapped by Arrow without a copy (the pool also reuses memory instead of faulting in
    fresh pages)."""
    dtype = np.dtype(dtype)
    return np.frombuffer(pa.allocate_buffer(n * dtype.itemsize), dtype=dtype)


def group_key(groups: np.ndarray) -> np.ndarray:
    """A row's group as the high bits of its index into a flattened lookup table."""
    return groups.astype(np.int32) << BITS


def lookup(
    rng: np.random.Generator,
    table: np.ndarray,
    n: int,
    key: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """One draw per row from `table` (groups x 65,536): row `key >> 16`, column a fresh uniform."""
    u = rng.integers(0, LEVELS, n, dtype=np.uint16)
    return np.take(table.reshape(-1), u if key is None else key | u, out=out, mode="clip")


def choose(rng: np.random.Generator, weights: list[np.ndarray]) -> np.ndarray:
    """One draw per row from unnormalised row-wise weights (k columns): inverse CDF, one uniform."""
    u = rng.random(len(weights[0])) * sum(weights)
    acc = np.zeros_like(u)
    out = np.zeros(len(u), dtype=np.int8)
    for w in weights[:-1]:
        acc += w
        out += u >= acc
    return out


def rows_hit(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Positions of the rows an event of probability `rate` hits, independently per row."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    return rng.choice(n, size=rng.binomial(n, rate), replace=False, shuffle=False)


def mask(rng: np.random.Generator, n: int, rate: float | np.ndarray) -> np.ndarray:
    """Boolean mask of an event of probability `rate` (a scalar, or one per row)."""
    if np.ndim(rate):
        return rng.random(n) < rate
    hit = np.zeros(n, dtype=bool)
    hit[rows_hit(rng, n, rate)] = True
    return hit


def beta_quantiles(a: float, b: float, q: np.ndarray) -> np.ndarray:
    """Quantiles of Beta(a, b): the CDF integrated on a fine grid (in t = x**a, where the
    density (1 - x)**(b - 1) is bounded), then inverted by interpolation."""
    x = np.linspace(0.0, 1.0, (1 << 17) + 1)
    t = x**a
    g = (1.0 - x) ** (b - 1.0)
    cdf = np.concatenate([[0.0], np.cumsum((g[1:] + g[:-1]) / 2 * np.diff(t))])
    return np.interp(q, cdf / cdf[-1], x)


def poisson_pmf(lam: float, k_max: int) -> np.ndarray:
    """P(X = 0..k_max - 1) of Poisson(lam), with P(X >= k_max - 1) lumped into the last."""
    pmf = np.array([math.exp(-lam) * lam**k / math.factorial(k) for k in range(k_max)])
    pmf[-1] = max(0.0, 1.0 - pmf[:-1].sum())
    return pmf


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """The distinct spellings (`words`) of a categorical column, each word's canonical code, and
    P(word | canonical value): the canonical spelling with CANONICAL_SPELLING_SHARE, the rest
    spread evenly over the other variants."""

    words: list[str]
    canonical: np.ndarray  # (words,)
    given: np.ndarray  # (codes x words)

    @classmethod
    def of(cls, spellings: list[list[str]]) -> Vocabulary:
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
        return inverse_cdf(self.given)

    @functools.cached_property
    def dictionary(self) -> pa.Array:
        return pa.array(self.words, pa.string())


def spell(rng: np.random.Generator, codes: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    """A messy spelling (word index) of every canonical code."""
    return lookup(rng, vocab.spell_table, len(codes), group_key(codes))
