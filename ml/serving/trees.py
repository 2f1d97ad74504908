"""xgboost tree ensembles evaluated by a compiled, vectorised kernel, with xgboost's exact numbers.

`ml.serving.batch` scores big tables; with an xgboost model (alone or inside an ensemble), evaluating
the trees is most of the work, and xgboost's predictor walks each tree node by node, row by row.
`CompiledTrees` holds the same trees as padded arrays and evaluates them with a numba kernel
that works on blocks of rows at a time, one tree level at a time, with contiguous loads and no
branches, so the compiler vectorises it: on the 2-core machine of the benchmark it computes
2-3 times as many rows per second as xgboost's own `inplace_predict` for the loan model.

The arithmetic is xgboost's, step by step, so the results are the same bits:

- each input value is rounded to float32 (xgboost's predictor stores features as float);
- a split sends a row left when `value < split_condition` (float32), a missing value (NaN) the
  way the split's `default_left` says;
- the margin starts at xgboost's own base margin (read back from xgboost, not recomputed) and
  adds each tree's leaf value in float32, in tree order, as xgboost's CPU predictor does;
- binary:logistic and reg:logistic apply xgboost's float32 sigmoid, 1 / (1 + expf(-x)).

`CompiledTrees.of` refuses (raises `Unsupported`) what it does not reproduce: other boosters and
objectives, categorical splits, several targets or classes, trees deeper than `MAX_DEPTH`, a
`missing` other than NaN. `ml.serving.batch` also checks every compiled model against xgboost on its
first rows and keeps xgboost where the two differ in any bit.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost as xgb
from xgboost import XGBClassifier, XGBModel, XGBRegressor

#: Deeper trees are left to xgboost: the kernel evaluates all 2**depth - 1 splits of a padded tree.
MAX_DEPTH = 6
#: Rows per block of the kernel (per thread at a time).
BLOCK_ROWS = 1024
#: Objectives reproduced, with their prediction transform.
OBJECTIVES = {
    "binary:logistic": "sigmoid",
    "reg:logistic": "sigmoid",
    "reg:squarederror": "identity",
    "reg:absoluteerror": "identity",
    "reg:pseudohubererror": "identity",
}
_TRANSFORM_CODE = {"identity": 0, "sigmoid": 1}

#: Rows per thread below which one thread evaluates a call.
MIN_ROWS_PER_THREAD = 16_384


def _threads(n: int) -> int:
    """Threads for n rows: one per CPU this process may use, at most one per MIN_ROWS_PER_THREAD."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, n // MIN_ROWS_PER_THREAD))


class Unsupported(Exception):
    """The model has something `CompiledTrees` does not reproduce."""


def _require(condition: bool, why: str) -> None:
    if not condition:
        raise Unsupported(why)


def _get_kernel():
    """The numba kernel (importing numba and loading the compiled code from numba's disk cache,
    or compiling it, the first time: about a second)."""
    from ml.serving._tree_kernel import evaluate  # imports numba: ~1 s, in the background

    return evaluate


_warm = threading.Event()
_warm_lock = threading.Lock()
_warm_thread: threading.Thread | None = None
_warm_error: BaseException | None = None


def _load_kernel() -> None:
    global _warm_error
    try:
        kernel = _get_kernel()
        one = np.ones((1, 1), np.int32)
        kernel(
            np.zeros((1, 1), order="F"),
            np.zeros(1, np.int64),
            1,
            one * 0,
            np.zeros((1, 1), np.float32),
            one,
            np.zeros((1, 2), np.float32),
            np.float32(0),
            0,
            BLOCK_ROWS,
            0,
            1,
            np.empty(1, np.float32),
        )
    except BaseException as err:  # reported by kernel_state(); xgboost keeps predicting
        _warm_error = err
    else:
        _warm.set()


def warm_up() -> None:
    """Start loading the kernel in a background thread (once per process), so that a caller
    can keep predicting with xgboost meanwhile instead of waiting for numba."""
    global _warm_thread
    with _warm_lock:
        if _warm_thread is None:
            _warm_thread = threading.Thread(
                target=_load_kernel, name="ml.serving.trees warm-up", daemon=True
            )
            _warm_thread.start()


def kernel_ready(wait: float | None = 0.0) -> bool:
    """True once the kernel is loaded (`wait`: seconds to wait for it, None: until loaded or
    failed). Starts loading it if nobody has."""
    warm_up()
    if wait is None:
        _warm_thread.join()
        return _warm.is_set()
    return _warm.wait(wait)


def kernel_error() -> BaseException | None:
    """Why the kernel could not be loaded, if it could not."""
    return _warm_error


def _depth(tree: dict) -> int:
    left, right = tree["left_children"], tree["right_children"]
    depth, frontier = 0, [0]
    while True:
        frontier = [c for n in frontier if left[n] != -1 for c in (left[n], right[n])]
        if not frontier:
            return depth
        depth += 1


@dataclass
class CompiledTrees:
    """The trees of an xgboost model as padded perfect trees of one depth.

    Tree t's splits are at `feat[t]` / `thr[t]` / `nan_right[t]` in breadth-first order
    (children of split k at 2k+1 and 2k+2), its leaves at `leaf[t]`. A leaf above the full depth
    becomes splits whose two sides hold the same value. `feat` indexes `used`, the input columns
    the trees read.
    """

    objective: str
    n_features: int
    depth: int
    used: np.ndarray
    feat: np.ndarray
    thr: np.ndarray
    nan_right: np.ndarray
    leaf: np.ndarray
    base_margin: np.float32

    @classmethod
    def of(cls, estimator: Any) -> CompiledTrees:
        """The trees of a fitted XGBClassifier / XGBRegressor, as its predictions use them."""
        _require(isinstance(estimator, XGBModel), "not an xgboost model")
        _require(type(estimator) in (XGBClassifier, XGBRegressor), "not XGBClassifier/XGBRegressor")
        missing = estimator.missing
        _require(isinstance(missing, float) and np.isnan(missing), "missing is not NaN")
        booster = estimator.get_booster()
        model = json.loads(booster.save_raw("json"))
        learner = model["learner"]
        objective = learner["objective"]["name"]
        _require(objective in OBJECTIVES, f"objective {objective} is not reproduced")
        if isinstance(estimator, XGBClassifier):
            _require(objective == "binary:logistic", "classifier objective is not binary:logistic")
        params = learner["learner_model_param"]
        _require(params.get("num_target", "1") == "1", "more than one target")
        _require(params.get("num_class", "0") in ("0", "1"), "more than one class")
        gbm = learner["gradient_booster"]
        _require(gbm.get("name") == "gbtree", f"booster is {gbm.get('name')}, not gbtree")
        trees_model = gbm["model"]
        begin, end = estimator._get_iteration_range(None)
        indptr = trees_model.get("iteration_indptr")
        trees = trees_model["trees"]
        if (begin, end) != (0, 0):
            _require(indptr is not None, "no iteration index for an iteration range")
            trees = trees[indptr[begin] : indptr[end]]
        _require(len(trees) > 0, "no trees")
        _require(all(g == 0 for g in trees_model["tree_info"]), "trees of several groups")
        for tree in trees:
            _require(not any(tree.get("split_type", [])), "categorical splits")
            _require(tree["tree_param"].get("size_leaf_vector", "1") in ("0", "1"), "leaf vectors")
        depth = max(_depth(t) for t in trees)
        _require(depth <= MAX_DEPTH, f"trees of depth {depth} > {MAX_DEPTH}")
        n_features = int(params["num_feature"])

        n_splits = max((1 << depth) - 1, 1)
        feat = np.zeros((len(trees), n_splits), np.int32)
        thr = np.zeros((len(trees), n_splits), np.float32)
        nan_right = np.zeros((len(trees), n_splits), np.int32)
        leaf = np.zeros((len(trees), 1 << depth), np.float32)
        for k, tree in enumerate(trees):
            left, right = tree["left_children"], tree["right_children"]
            index, cond, default_left = (
                tree["split_indices"],
                tree["split_conditions"],
                tree["default_left"],
            )
            stack = [(0, 0, 0)]  # (xgboost node, padded position, level)
            while stack:
                node, pos, level = stack.pop()
                if level == depth:
                    leaf[k, pos - ((1 << depth) - 1)] = cond[node]
                elif left[node] == -1:  # a leaf above the full depth: both sides the same
                    stack += [(node, 2 * pos + 1, level + 1), (node, 2 * pos + 2, level + 1)]
                else:
                    _require(0 <= index[node] < n_features, "split on an unknown feature")
                    feat[k, pos] = index[node]
                    thr[k, pos] = cond[node]
                    nan_right[k, pos] = 0 if default_left[node] else 1
                    stack += [
                        (left[node], 2 * pos + 1, level + 1),
                        (right[node], 2 * pos + 2, level + 1),
                    ]
        used = np.unique(feat).astype(np.int64)
        remap = np.zeros(n_features, np.int32)
        remap[used] = np.arange(len(used), dtype=np.int32)
        return cls(
            objective=objective,
            n_features=n_features,
            depth=depth,
            used=used,
            feat=remap[feat],
            thr=thr,
            nan_right=nan_right,
            leaf=leaf,
            base_margin=_base_margin(model, n_features),
        )

    def _evaluate(self, X: np.ndarray, transform: str) -> np.ndarray:
        X = np.asarray(X)
        _require(X.ndim == 2 and X.shape[1] == self.n_features, "input of the wrong width")
        if X.dtype != np.float64 or not X.flags.f_contiguous:
            X = np.asfortranarray(X, dtype=np.float64)
        out = np.empty(X.shape[0], np.float32)
        if X.shape[0] == 0:
            return out
        kernel = _get_kernel()
        args = (self.used, self.depth, self.feat, self.thr, self.nan_right, self.leaf)
        args += (self.base_margin, _TRANSFORM_CODE[transform], BLOCK_ROWS)
        n = X.shape[0]
        threads = _threads(n)
        if threads == 1:
            kernel(X, *args, 0, n, out)
            return out
        bounds = np.linspace(0, n, threads + 1).astype(int)
        with ThreadPoolExecutor(threads, thread_name_prefix="ml.serving.trees") as pool:
            done = [
                pool.submit(kernel, X, *args, int(lo), int(hi), out)
                for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
            ]
            for future in done:
                future.result()
        return out

    def margin(self, X: np.ndarray) -> np.ndarray:
        """`booster.inplace_predict(X, predict_type="margin")`."""
        return self._evaluate(X, "identity")

    def predict(self, X: np.ndarray) -> np.ndarray:
        """`XGBRegressor.predict(X)` (float32)."""
        return self._evaluate(X, OBJECTIVES[self.objective])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """`XGBClassifier.predict_proba(X)` of a binary model: float32 [1 - p, p]."""
        _require(self.objective == "binary:logistic", "predict_proba of a regressor")
        p = self._evaluate(X, "sigmoid")
        return np.vstack((1.0 - p, p)).transpose()


def _base_margin(model: dict, n_features: int) -> np.float32:
    """xgboost's base margin, as its predictor starts from: the margin of a model that is one
    tree with a single leaf of 0 (so nothing is recomputed here, whatever the objective)."""
    stub = json.loads(json.dumps(model))
    trees_model = stub["learner"]["gradient_booster"]["model"]
    tree = trees_model["trees"][0]
    empty = {
        "base_weights": [0.0],
        "categories": [],
        "categories_nodes": [],
        "categories_segments": [],
        "categories_sizes": [],
        "default_left": [0],
        "id": 0,
        "left_children": [-1],
        "loss_changes": [0.0],
        "parents": [2147483647],
        "right_children": [-1],
        "split_conditions": [0.0],
        "split_indices": [0],
        "split_type": [0],
        "sum_hessian": [0.0],
    }
    tree = {**{k: v for k, v in tree.items() if k in empty or k == "tree_param"}, **empty}
    tree["tree_param"] = {**tree["tree_param"], "num_nodes": "1", "num_deleted": "0"}
    trees_model["trees"] = [tree]
    trees_model["tree_info"] = [0]
    trees_model["iteration_indptr"] = [0, 1]
    trees_model["gbtree_model_param"] = {
        **trees_model["gbtree_model_param"],
        "num_trees": "1",
        "num_parallel_tree": "1",
    }
    stub["learner"]["attributes"] = {}
    try:
        booster = xgb.Booster(model_file=bytearray(json.dumps(stub).encode()))
        margin = booster.inplace_predict(
            np.zeros((1, n_features), np.float32), predict_type="margin"
        )
    except Exception as err:  # xgboost's model format moved on: leave this model to xgboost
        raise Unsupported(f"cannot read the base margin back from xgboost: {err}") from None
    return np.float32(np.asarray(margin).reshape(-1)[0])
