"""The Python side of the predictive analytics warehouse: warehouse I/O and models.

from ml import load_model
load_model("loan_repayment").predict(df)
"""

from __future__ import annotations

import os
from typing import Any

# Before TensorFlow is first imported (it may be, by unpickling a model): no C++ log noise on
# stderr, which must carry one clear line on errors, and no oneDNN custom ops, whose results vary
# with the machine's instruction set (reproducibility).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__all__ = ["load_model"]


def __getattr__(name: str) -> Any:
    # imported lazily: `import ml.config` should not pay for TensorFlow and xgboost
    if name == "load_model":
        from ml.predict import load_model

        return load_model
    raise AttributeError(f"module 'ml' has no attribute {name!r}")
