"""A Keras multilayer perceptron as a scikit-learn estimator (regressor and classifier).

The estimators follow scikit-learn's conventions (hyperparameters in `__init__`, `fit` returns
self, learned attributes end in `_`), so they work inside Pipeline, GridSearchCV, cross-validation,
VotingRegressor/Classifier and StackingRegressor/Classifier, and they pickle (the Keras model is
stored as its native `.keras` archive bytes inside the pickle).

Training is seeded (`keras.utils.set_random_seed`) with TensorFlow's op determinism on, and uses
early stopping on a stratified validation split carved from the training data.

Keras and TensorFlow are imported inside the functions that run a network: they take seconds to
import, and every process that unpickles a model without a net (or only lists its parameters)
would pay for them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import check_is_fitted, validate_data

from ml.core.config import tf_threads

#: Rows per step of the network's forward pass when it predicts (bounded memory).
PREDICT_ROWS = 65_536


def dense_layers(network) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(weights, bias, activation name) of each Dense layer of `network`, in float64; refuses
    any layer but Dense, Dropout and the input, and hidden activations other than ReLU."""
    import keras  # the network is loaded, so TensorFlow is already imported

    allowed = (keras.layers.Dense, keras.layers.Dropout, keras.layers.InputLayer)
    unsupported = [layer.name for layer in network.layers if not isinstance(layer, allowed)]
    if unsupported:
        raise TypeError(f"Keras layers {unsupported}: only Dense and Dropout are supported")
    layers = []
    for layer in network.layers:
        if isinstance(layer, keras.layers.Dense):
            weights, bias = layer.get_weights()
            layers.append((weights.astype(float), bias.astype(float), layer.activation.__name__))
    if any(activation != "relu" for _, _, activation in layers[:-1]):
        raise TypeError("a Keras MLP whose hidden layers are not ReLU")
    if layers[-1][2] not in ("sigmoid", "softmax", "linear"):
        raise TypeError(f"a Keras MLP whose output activation is {layers[-1][2]}")
    return layers


def forward(layers: list[tuple[np.ndarray, np.ndarray, str]], X: np.ndarray) -> np.ndarray:
    """The network's output for the rows of X, in float64 (Dropout is off when predicting)."""
    A = np.asarray(X, dtype=np.float64)
    for weights, bias, _ in layers[:-1]:
        A = np.maximum(A @ weights + bias, 0.0)
    weights, bias, activation = layers[-1]
    Z = A @ weights + bias
    if activation == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * Z))  # the logistic function, without overflow
    if activation == "softmax":
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)
    return Z


_TF_READY = False


def configure_tensorflow(threads: int | None = None) -> None:
    """Set TensorFlow's thread pools and op determinism once per process, before any op runs."""
    global _TF_READY
    if _TF_READY:
        return
    import tensorflow as tf  # TensorFlow (seconds to import) only where a net runs: see below

    threads = threads or tf_threads()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the runtime is already initialised: keep its settings
        pass
    tf.config.experimental.enable_op_determinism()
    tf.get_logger().setLevel("ERROR")  # retracing notices are not the user's concern
    _TF_READY = True


def build_network(
    n_inputs: int,
    n_outputs: int,
    output_activation: str | None,
    loss: str,
    units: int = 64,
    layers: int = 2,
    dropout: float = 0.1,
    l2: float = 0.0,
    learning_rate: float = 1e-3,
):
    """A compiled MLP: `layers` dense ReLU layers of `units` (halving), dropout and L2."""
    import keras

    reg = keras.regularizers.L2(l2) if l2 else None
    inputs = keras.Input(shape=(n_inputs,))
    x = inputs
    for i in range(layers):
        x = keras.layers.Dense(max(units // (2**i), 8), activation="relu", kernel_regularizer=reg)(
            x
        )
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(n_outputs, activation=output_activation)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    return model


class _KerasMLP(BaseEstimator):
    """Shared parameters and fit/predict/pickling of the Keras estimators.

    `class_weight` ("balanced", a dict or None) weighs the classes of a classifier; a regressor
    accepts only None (one signature for both keeps scikit-learn's parameter handling simple).
    """

    def __init__(
        self,
        units: int = 64,
        layers: int = 2,
        dropout: float = 0.1,
        l2: float = 0.0,
        learning_rate: float = 1e-3,
        batch_size: int = 256,
        epochs: int = 60,
        patience: int = 6,
        validation_fraction: float = 0.1,
        class_weight: str | dict | None = None,
        random_state: int = 0,
        verbose: int = 0,
    ) -> None:
        # the network's shape, then how it trains, then what it weighs and how it reports
        self.units, self.layers, self.dropout, self.l2 = units, layers, dropout, l2
        self.learning_rate, self.batch_size, self.epochs = learning_rate, batch_size, epochs
        self.patience, self.validation_fraction = patience, validation_fraction
        self.class_weight, self.random_state, self.verbose = class_weight, random_state, verbose

    def _head(self) -> tuple[int, str | None, str]:
        raise NotImplementedError

    def _fit_network(self, X, y, stratify=None, class_weight=None):
        import keras

        configure_tensorflow()
        self.__dict__.pop("_layers", None)  # the weights read by the previous fit
        keras.utils.set_random_seed(int(self.random_state))
        n_out, activation, loss = self._head()
        shape = ("units", "layers", "dropout", "l2", "learning_rate")
        self.model_ = build_network(
            X.shape[1], n_out, activation, loss, **{k: getattr(self, k) for k in shape}
        )
        callbacks, extra = [], {}
        if self.validation_fraction and self.patience and len(X) >= 50:
            try:
                train_idx, val_idx = train_test_split(
                    np.arange(len(X)),
                    test_size=self.validation_fraction,
                    random_state=self.random_state,
                    stratify=stratify,
                )
            except ValueError:  # a class too small to stratify
                train_idx, val_idx = train_test_split(
                    np.arange(len(X)),
                    test_size=self.validation_fraction,
                    random_state=self.random_state,
                )
            extra["validation_data"] = (X[val_idx], y[val_idx])
            X, y = X[train_idx], y[train_idx]
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=self.patience, restore_best_weights=True
                )
            )
        history = self.model_.fit(
            X,
            y,
            epochs=self.epochs,
            batch_size=self.batch_size,
            callbacks=callbacks,
            class_weight=class_weight,
            verbose=self.verbose,
            shuffle=True,
            **extra,
        )
        self.n_epochs_ = len(history.history["loss"])
        return self

    def _raw_predict(self, X) -> np.ndarray:
        """The network's output, computed by `forward` in float64 from its weights rather than
        by TensorFlow: TensorFlow's float32 kernels sum in an order set by the shape of the call
        and by where a row sits in it (the same row came out 6e-8 apart in a 50-row and a
        21,000-row call), so a server scoring a few rows and `ml.predict` scoring the table
        would disagree in the last float32 bits; in float64 they agree to about 1e-16."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float32)
        layers = self.__dict__.get("_layers")
        if layers is None:  # read once from the network (not pickled: the network is)
            layers = self.__dict__["_layers"] = dense_layers(self.model_)
        out = np.empty((len(X), self._head()[0]), np.float64)
        for start in range(0, len(X), PREDICT_ROWS):
            out[start : start + PREDICT_ROWS] = forward(layers, X[start : start + PREDICT_ROWS])
        return out

    # Pickling: the Keras model travels as the bytes of its native .keras archive.
    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        state.pop("_layers", None)  # read again from the network after loading
        model = state.pop("model_", None)
        if model is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "model.keras"
                model.save(path)
                state["_keras_bytes"] = path.read_bytes()
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        blob = state.pop("_keras_bytes", None)
        super().__setstate__(state)
        if blob is not None:
            import keras

            configure_tensorflow()
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "model.keras"
                path.write_bytes(blob)
                self.model_ = keras.models.load_model(path, compile=False, safe_mode=True)


class KerasMLPRegressor(RegressorMixin, _KerasMLP):
    """MLP regressor (mean squared error, linear output)."""

    def _head(self) -> tuple[int, str | None, str]:
        return 1, None, "mse"

    def fit(self, X, y):
        """Fit the network on X (numeric matrix) and y (numbers)."""
        if self.class_weight is not None:
            raise ValueError("class_weight applies to classifiers only")
        X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=True)
        y = np.asarray(y, dtype=np.float32)
        # train on a standardised target: faster, scale-free learning rates
        self.y_mean_ = float(y.mean())
        self.y_scale_ = float(y.std()) or 1.0
        return self._fit_network(X, (y - self.y_mean_) / self.y_scale_)

    def predict(self, X) -> np.ndarray:
        """Predicted values."""
        return self._raw_predict(X).ravel() * self.y_scale_ + self.y_mean_


class KerasMLPClassifier(ClassifierMixin, _KerasMLP):
    """MLP classifier (sigmoid for two classes, softmax otherwise), optional class weights."""

    def _head(self) -> tuple[int, str | None, str]:
        if len(self.classes_) == 2:
            return 1, "sigmoid", "binary_crossentropy"
        return len(self.classes_), "softmax", "sparse_categorical_crossentropy"

    def fit(self, X, y):
        """Fit the network on X (numeric matrix) and y (class labels)."""
        X, y = validate_data(self, X, y, dtype=np.float32)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError("the target has a single class")
        y_enc = encoder.transform(y).astype("int32")
        weights = None
        if self.class_weight is not None:
            if isinstance(self.class_weight, dict):
                w = np.array([self.class_weight.get(c, 1.0) for c in self.classes_])
            else:
                w = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
            weights = {i: float(v) for i, v in enumerate(w)}
        return self._fit_network(X, y_enc, stratify=y_enc, class_weight=weights)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in `classes_` order."""
        p = self._raw_predict(X).astype(np.float64)
        if p.shape[1] == 1:
            p = np.hstack([1.0 - p, p])
        return p

    def predict(self, X) -> np.ndarray:
        """The most probable class."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
