"""Exact, additive SHAP explanations of trained models, named by the relation's columns.

`explain(model, X, reference)` explains a champion (a base Pipeline, a Voting* or a Stacking*
ensemble over base Pipelines) row by row:

1. every base pipeline is explained in its own transformed space Z = prep(X), with the explainer
   that is exact for it: closed-form interventional SHAP for linear models, the boosters' own
   TreeSHAP for gradient boosting (xgboost's `pred_contribs`, LightGBM's `pred_contrib`), shap's TreeExplainer for decision trees, and
   DeepLIFT's rescale rule averaged over reference rows (DeepSHAP, what shap.DeepExplainer does
   for Dense/ReLU networks) for the Keras MLP;
2. contributions to a margin (log-odds, softmax logits) are carried to probabilities where the
   ensemble combines probabilities (DeepLIFT rescale through the sigmoid; integrated gradients
   through the softmax), keeping them exactly additive;
3. one-hot parts and missing-value indicators are folded back into the column they come from
   (SHAP values are additive over a partition of the features);
4. the bases' contributions are combined exactly as the ensemble combines the bases (the stacking
   meta-learner's weights, the voting weights, ensemble selection's weights).

So for every row, `base_value + values.sum() == output`, where `output` is the model's own raw
output: log-odds of the positive class (binary, except soft voting and a lone decision tree, which
output a probability), the probability of the predicted class (multiclass) or the predicted value
(regression). docs/design/explanations.md has the measurements behind these choices.

Model-agnostic explainers (Kernel/Permutation SHAP) would need thousands of ensemble evaluations
per row; this costs about one prediction per row and is exact for these model classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from ml.core.config import n_threads
from ml.estimators.nets import dense_layers
from ml.estimators.preprocessing import FeatureSet, source_column

#: Rows explained per chunk (bounds memory: phi is rows x features x classes per base).
CHUNK_ROWS = 8_192
#: Reference rows of the Keras DeepLIFT (DeepSHAP) explanation.
KERAS_REFERENCES = 10
#: Steps of the integrated-gradients quadrature through the softmax.
SOFTMAX_STEPS = 32


@dataclass
class Explanation:
    """SHAP values of n rows over the model's input columns.

    `values[i].sum() + base_value[i] == output[i]` for every row i (up to float32 noise of the
    xgboost and Keras parts). `explained_class` is the class code each multiclass row explains
    (its predicted class), else None.
    """

    values: np.ndarray  # (n, n_columns)
    columns: list[str]
    base_value: np.ndarray  # (n,)
    output: np.ndarray  # (n,)
    output_space: str  # "value" | "log-odds" | "probability"
    explained_class: np.ndarray | None = None  # (n,) positions into the model's classes_

    def __post_init__(self) -> None:
        assert self.values.shape == (len(self.output), len(self.columns))

    def subset(self, rows: np.ndarray) -> Explanation:
        """The explanation of some of its rows (positions)."""
        classes = self.explained_class
        return Explanation(
            self.values[rows],
            self.columns,
            self.base_value[rows],
            self.output[rows],
            self.output_space,
            None if classes is None else classes[rows],
        )


# ---------------------------------------------------------------------------------------------
# small helpers


def _unwrap(estimator: BaseEstimator) -> BaseEstimator:
    """The estimator inside a FrozenEstimator (ensembles wrap their fitted bases in one)."""
    if type(estimator).__name__ == "FrozenEstimator":
        return estimator.estimator
    return estimator


def _sigmoid(m: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-m))


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def link_rescale(
    phi: np.ndarray, margin: np.ndarray, base: np.ndarray, steps: int = SOFTMAX_STEPS
) -> tuple[np.ndarray, np.ndarray]:
    """Carry margin contributions `phi` (n, d, K) to probabilities; returns (phi_p, base_p).

    K == 1 (binary): DeepLIFT's rescale rule through the sigmoid (what shap's interventional
    `model_output="probability"` does per reference). K > 1: integrated gradients of the softmax
    along base -> margin; the tiny quadrature residual is spread in proportion to |phi| so that
    `phi_p.sum(1) == softmax(margin) - softmax(base)` exactly.
    """
    if margin.shape[1] == 1:
        p, p0 = _sigmoid(margin), _sigmoid(base)
        dm = margin - base
        small = np.abs(dm) < 1e-9
        scale = np.where(small, p * (1 - p), (p - p0) / np.where(small, 1.0, dm))
        return phi * scale[:, None, :], p0
    k = margin.shape[1]
    dm = margin - base
    grad = np.zeros((len(margin), k, k))
    eye = np.eye(k)
    for t in (np.arange(steps) + 0.5) / steps:  # midpoint rule
        q = _softmax(base + t * dm)
        grad += q[:, :, None] * eye[None] - q[:, :, None] * q[:, None, :]
    grad /= steps  # grad[n, c, j] = mean over the path of d p_c / d logit_j
    phi_p = np.einsum("ndj,ncj->ndc", phi, grad)
    p0 = _softmax(base[None])[0]
    residual = (_softmax(margin) - p0) - phi_p.sum(1)
    weight = np.abs(phi_p)
    total = weight.sum(1, keepdims=True)
    total[total == 0] = 1.0
    return phi_p + residual[:, None, :] * weight / total, p0


# ---------------------------------------------------------------------------------------------
# one base model, in its transformed space Z
# Each returns phi (n, d, K), base (K,), output (n, K) in the model's native space, and a kind:
# "margin" (log-odds / softmax logits), "probability" or "value".


def _explain_linear(model, Z: np.ndarray, zbar: np.ndarray):
    W = np.atleast_2d(np.asarray(model.coef_, dtype=float))  # (K, d)
    b = np.atleast_1d(np.asarray(model.intercept_, dtype=float))
    phi = (Z - zbar)[:, :, None] * W.T[None]  # exact interventional SHAP of a linear model
    return phi, zbar @ W.T + b, Z @ W.T + b


def _explain_xgboost(model, Z: np.ndarray):
    booster = model.get_booster()
    kwargs = {}
    best = getattr(model, "best_iteration", None)
    if best is not None:
        kwargs["iteration_range"] = (0, best + 1)
    matrix = xgb.DMatrix(Z.astype(np.float32), nthread=n_threads())
    contribs = booster.predict(matrix, pred_contribs=True, **kwargs)  # (n,d+1) or (n,K,d+1)
    if contribs.ndim == 2:
        contribs = contribs[:, None, :]
    contribs = contribs.astype(float).transpose(0, 2, 1)  # (n, d+1, K)
    phi, bias = contribs[:, :-1, :], contribs[:, -1, :]
    return phi, bias[0], bias + phi.sum(1)


def _explain_lightgbm(model, Z: np.ndarray):
    contribs = model.booster_.predict(Z, pred_contrib=True, num_threads=n_threads())
    contribs = np.asarray(contribs, dtype=float)
    n, d = len(Z), Z.shape[1]
    contribs = contribs.reshape(n, -1, d + 1).transpose(0, 2, 1)  # (n, d+1, K): class by class
    phi, bias = contribs[:, :-1, :], contribs[:, -1, :]
    return phi, bias[0], bias + phi.sum(1)


def _explain_decision_tree(model, Z: np.ndarray):
    import shap  # 1-2 s to import, for the one model kind that needs it

    explainer = shap.TreeExplainer(model)  # path-dependent TreeSHAP: exact, output = value/proba
    values = np.asarray(explainer.shap_values(Z, check_additivity=False), dtype=float)
    if values.ndim == 2:
        values = values[:, :, None]
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    return values, base, base + values.sum(1)


def _explain_keras(model, Z: np.ndarray, references: np.ndarray):
    """DeepLIFT rescale rule averaged over reference rows (DeepSHAP) on the last layer's
    pre-activation (logit / standardised value). Sum of phi = output(x) - mean output(refs)."""
    layers = dense_layers(model.model_)
    hidden, (w_out, b_out, _) = layers[:-1], layers[-1]

    def forward(A: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        pre = []
        for W, b, _ in hidden:
            h = A @ W + b
            pre.append(h)
            A = np.maximum(h, 0.0)
        return pre, A @ w_out + b_out

    ref_pre, ref_out = forward(references)  # (R, h) per layer, (R, K)
    x_pre, out = forward(Z)
    multipliers = []
    for h_x, h_r in zip(x_pre, ref_pre, strict=True):
        dh = h_x[:, None, :] - h_r[None, :, :]  # (n, R, h)
        da = np.maximum(h_x, 0.0)[:, None, :] - np.maximum(h_r, 0.0)[None, :, :]
        small = np.abs(dh) < 1e-7
        multipliers.append(
            np.where(small, (h_x[:, None, :] > 0) * 1.0, da / np.where(small, 1, dh))
        )
    dz = Z[:, None, :] - references[None, :, :]  # (n, R, d)
    phi = np.zeros((len(Z), Z.shape[1], w_out.shape[1]))
    for k in range(w_out.shape[1]):
        if hidden:
            g = np.broadcast_to(w_out[:, k], multipliers[-1].shape)
            for (W, _, _), m in zip(reversed(hidden), reversed(multipliers), strict=True):
                g = (g * m) @ W.T
        else:
            g = np.broadcast_to(w_out[:, k], dz.shape)
        phi[:, :, k] = (g * dz).mean(1)
    base = ref_out.mean(0)
    if not hasattr(model, "classes_"):  # regressor: the network predicts standardised values
        scale, mean = float(model.y_scale_), float(model.y_mean_)
        return phi * scale, base * scale + mean, out * scale + mean
    return phi, base, out


def _explain_estimator(model, Z: np.ndarray, zbar: np.ndarray, references: np.ndarray):
    name = type(model).__name__
    classifier = hasattr(model, "classes_")
    if name in ("Ridge", "LinearRegression", "LogisticRegression", "Lasso", "ElasticNet"):
        phi, base, out = _explain_linear(model, Z, zbar)
        kind = "margin" if classifier else "value"
    elif name.startswith("XGB"):
        phi, base, out = _explain_xgboost(model, Z)
        kind = "margin" if classifier else "value"
    elif name.startswith("LGBM"):
        phi, base, out = _explain_lightgbm(model, Z)
        kind = "margin" if classifier else "value"
    elif name.startswith("DecisionTree"):
        phi, base, out = _explain_decision_tree(model, Z)
        kind = "probability" if classifier else "value"
        if classifier and len(model.classes_) == 2:  # keep the positive class only
            phi, base, out = phi[:, :, 1:], base[1:], out[:, 1:]
    elif name.startswith("KerasMLP"):
        phi, base, out = _explain_keras(model, Z, references)
        kind = "margin" if classifier else "value"
    else:
        raise TypeError(f"no exact explainer for {name}")
    return phi, base, out, kind


# ---------------------------------------------------------------------------------------------
# pipelines and ensembles


def _feature_set(prep: ColumnTransformer) -> FeatureSet:
    numeric: list[str] = []
    categorical: list[str] = []
    for name, _, columns in prep.transformers_:
        if name == "num":
            numeric.extend(columns)
        elif name in ("cat", "te"):  # one-hot, or target-encoded
            categorical.extend(columns)
    return FeatureSet(tuple(numeric), tuple(categorical), {})


def fold_matrix(prep: ColumnTransformer, columns: list[str]) -> np.ndarray:
    """(transformed features x `columns`) 0/1 matrix mapping each transformed feature to the
    relation column it comes from (`cat__grade_E` -> `grade`, `num__missingindicator_x` -> `x`)."""
    features = _feature_set(prep)
    names = prep.get_feature_names_out()
    fold = np.zeros((len(names), len(columns)))
    position = {c: j for j, c in enumerate(columns)}
    for i, name in enumerate(names):
        source = source_column(str(name), features)
        if source not in position:
            raise ValueError(f"transformed feature {name!r} comes from no input column")
        fold[i, position[source]] = 1.0
    return fold


class _Base:
    """One base pipeline, ready to explain chunks of rows in source-column space."""

    def __init__(self, pipeline: Pipeline, columns: list[str], reference: pd.DataFrame, seed: int):
        self.prep, self.model = pipeline[:-1], pipeline[-1]
        self.fold = fold_matrix(pipeline[0], columns)
        z_ref = self._transform(reference)
        self.zbar = z_ref.mean(0)
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(z_ref), min(KERAS_REFERENCES, len(z_ref)), replace=False)
        self.references = z_ref[np.sort(pick)]

    def _transform(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.prep.transform(X), dtype=float)

    def explain(self, Z: np.ndarray, space: str):
        """phi (n, columns, K), base (K,), output (n, K) and the output's kind, of the rows
        `Z` (the pipeline's preprocessing applied: `_transform`).

        space="native": the model's own output; "probability": classifiers' class probabilities
        (binary: the positive class only), as soft voting and stacking combine them.
        """
        phi, base, out, kind = _explain_estimator(
            self.model, np.asarray(Z, dtype=float), self.zbar, self.references
        )
        if space == "probability" and kind == "margin":
            phi, base = link_rescale(phi, out, base)
            out = _sigmoid(out) if out.shape[1] == 1 else _softmax(out)
            kind = "probability"
        return np.einsum("ndk,dc->nck", phi, self.fold), base, out, kind


def _bases(model: BaseEstimator) -> list[Pipeline]:
    if isinstance(model, Pipeline):
        return [model]
    return [_unwrap(e) for e in model.estimators_]


def _check_explainable(model: BaseEstimator) -> None:
    if isinstance(model, Pipeline):
        return
    kind = type(model).__name__
    if not kind.startswith(("Voting", "Stacking")):
        raise TypeError(f"cannot explain a {kind}")
    if kind.startswith("Stacking") and getattr(model, "passthrough", False):
        raise TypeError("cannot explain stacking with passthrough=True")
    if kind.startswith("Voting") and getattr(model, "voting", "soft") == "hard":
        raise TypeError("cannot explain hard voting")


def _combine(model: BaseEstimator, parts: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Combine the bases' explanations the way the ensemble combines their outputs."""
    kind = type(model).__name__
    if kind.startswith("Voting"):
        weights = np.ones(len(parts)) if model.weights is None else np.asarray(model.weights, float)
        weights = weights / weights.sum()
        phi = sum(w * p[0] for w, p in zip(weights, parts, strict=True))
        base = sum(w * p[1] for w, p in zip(weights, parts, strict=True))
        out = sum(w * p[2] for w, p in zip(weights, parts, strict=True))
        return phi, base, out, parts[0][3]
    meta = _unwrap(model.final_estimator_)
    W = np.atleast_2d(np.asarray(meta.coef_, dtype=float))  # (K_out, sum of the bases' K)
    c = np.atleast_1d(np.asarray(meta.intercept_, dtype=float))
    phi = np.einsum("ncj,kj->nck", np.concatenate([p[0] for p in parts], axis=2), W)
    base = c + W @ np.concatenate([p[1] for p in parts])
    out = c + np.concatenate([p[2] for p in parts], axis=1) @ W.T
    return phi, base, out, "margin" if hasattr(model, "classes_") else "value"


class Explainer:
    """`explain` with the per-model work done once: every base pipeline's background (its
    transformed reference mean and DeepLIFT references) is computed at construction, so
    explaining a few rows at a time (an HTTP request) costs only their own evaluation."""

    def __init__(
        self, model: BaseEstimator, columns: list[str], reference: pd.DataFrame, *, seed: int = 0
    ):
        _check_explainable(model)
        self.model = model
        self.columns = [str(c) for c in columns]
        self.bases = [_Base(p, self.columns, reference, seed) for p in _bases(model)]
        self.single = isinstance(model, Pipeline)

    def explain(self, X: pd.DataFrame, *, chunk_rows: int = CHUNK_ROWS) -> Explanation:
        """SHAP values of the model frame `X` (the columns given at construction, in order)."""

        def matrices(start: int, stop: int) -> list[np.ndarray]:
            part = X.iloc[start:stop]
            return [b._transform(part) for b in self.bases]

        return self._explain(len(X), matrices, chunk_rows)

    def explain_matrices(
        self, matrices: list[np.ndarray], *, chunk_rows: int = CHUNK_ROWS
    ) -> Explanation:
        """SHAP values of rows already preprocessed: `matrices[i]` is what the i-th base
        pipeline's preprocessing makes of them (the fast path of `ml.serving.fastpath` builds
        them once for scoring and explaining)."""
        if len(matrices) != len(self.bases):
            raise ValueError(f"{len(matrices)} matrices for {len(self.bases)} base pipelines")
        return self._explain(
            len(matrices[0]) if matrices else 0,
            lambda start, stop: [m[start:stop] for m in matrices],
            chunk_rows,
        )

    def _explain(self, n: int, matrices, chunk_rows: int) -> Explanation:
        space = "native" if self.single else "probability"
        chunks = []
        for start in range(0, n, chunk_rows):
            parts = matrices(start, start + chunk_rows)
            explained = [b.explain(Z, space) for b, Z in zip(self.bases, parts, strict=True)]
            phi, base, out, kind = explained[0] if self.single else _combine(self.model, explained)
            chunks.append(_select_output(phi, base, out, kind))
        columns = list(self.columns)
        if not chunks:
            empty = np.zeros(0)
            return Explanation(np.zeros((0, len(columns))), columns, empty, empty, "value")
        values = np.concatenate([c[0] for c in chunks])
        base = np.concatenate([c[1] for c in chunks])
        output = np.concatenate([c[2] for c in chunks])
        space_name = chunks[0][3]
        classes = None if chunks[0][4] is None else np.concatenate([c[4] for c in chunks])
        return Explanation(values, columns, base, output, space_name, classes)


def explain(
    model: BaseEstimator,
    X: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    seed: int = 0,
    chunk_rows: int = CHUNK_ROWS,
) -> Explanation:
    """SHAP values of `model` (a fitted Pipeline / Voting* / Stacking* of Pipelines) on the model
    frame `X`, named by X's columns. `reference` (a sample of training rows, same columns) is the
    background of the linear and Keras parts; trees use their own training distribution."""
    return Explainer(model, list(X.columns), reference, seed=seed).explain(X, chunk_rows=chunk_rows)


def _select_output(phi: np.ndarray, base: np.ndarray, out: np.ndarray, kind: str):
    """One explained output per row: the only one, or (multiclass) the predicted class's
    probability (margins are carried through the softmax, which makes them comparable)."""
    n = len(out)
    if out.shape[1] == 1:
        space = {"margin": "log-odds", "probability": "probability", "value": "value"}[kind]
        return phi[:, :, 0], np.full(n, base[0]), out[:, 0], space, None
    if kind == "margin":
        phi, base = link_rescale(phi, out, base)
        out = _softmax(out)
    predicted = out.argmax(axis=1)
    rows = np.arange(n)
    return phi[rows, :, predicted], base[predicted], out[rows, predicted], "probability", predicted
