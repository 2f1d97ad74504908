"""The numba kernel of `ml.serving.trees` (its own module so numba can cache the compiled code on disk,
and so numba is imported only when a model is compiled).

The kernel is serial and releases the GIL: `ml.serving.trees` runs it on row ranges from a few Python
threads. (numba's parallel mode would run it on OpenMP threads, which spin after every call and
take the CPU the scoring pipeline's reader and writer threads need.)
"""

import numba as nb
import numpy as np


@nb.njit(cache=True, boundscheck=False, nogil=True)
def evaluate(X, used, depth, feat, thr, nan_right, leaf, base, transform, block, start, stop, out):
    """out[i] = transform(base + the leaf value of row i in each tree, summed in float32), for the
    rows start <= i < stop. transform 0: none, 1: xgboost's sigmoid.

    Rows go in blocks of `block`. A block's used columns are first copied as float32, one
    contiguous array per column. Then each tree is walked one level at a time for all rows of the
    block: every split of the level is compared for every row (contiguous loads, no branches, so
    the compiler vectorises the loop) and its outcome kept for the rows that are at that split.
    A block without missing values skips the missing-value term (`nan_right`) of every compare.
    """
    n_used = used.shape[0]
    n_trees = feat.shape[0]
    for lo in range(start, stop, block):
        m = min(stop, lo + block) - lo
        xb = np.empty((n_used, m), np.float32)
        nans = 0
        for f in range(n_used):
            column = used[f]
            for i in range(m):
                x = np.float32(X[lo + i, column])
                xb[f, i] = x
                nans += np.int32(x != x)
        acc = np.full(m, base, np.float32)
        node = np.zeros(m, np.int32)  # the row's position within the current level
        right = np.zeros(m, np.int32)  # the row goes right at this level
        for t in range(n_trees):
            ft, tt, nt = feat[t], thr[t], nan_right[t]
            first = 0  # the level's first split (breadth-first)
            for level in range(depth):
                for j in range(1 << level):
                    x_f = xb[ft[first + j]]
                    threshold = tt[first + j]
                    missing_right = nt[first + j]
                    here = np.int32(j)
                    if level == 0 and nans == 0:
                        for i in range(m):
                            right[i] = np.int32(x_f[i] >= threshold)
                    elif level == 0:
                        for i in range(m):
                            x = x_f[i]
                            right[i] = np.int32(x >= threshold) | (np.int32(x != x) & missing_right)
                    elif nans == 0:
                        for i in range(m):
                            right[i] |= np.int32(x_f[i] >= threshold) & np.int32(node[i] == here)
                    else:
                        for i in range(m):
                            x = x_f[i]
                            goes = np.int32(x >= threshold) | (np.int32(x != x) & missing_right)
                            right[i] |= goes & np.int32(node[i] == here)
                for i in range(m):
                    node[i] = 2 * node[i] + right[i]
                    right[i] = 0
                first += 1 << level
            leaves = leaf[t]
            for i in range(m):
                acc[i] += leaves[node[i]]
                node[i] = 0
        if transform == 1:
            one = np.float32(1.0)
            for i in range(m):
                z = min(-acc[i], np.float32(88.7))
                acc[i] = one / (np.float32(np.exp(z)) + one + np.float32(1e-16))
        for i in range(m):
            out[lo + i] = acc[i]
