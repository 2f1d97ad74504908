"""The Python side of the predictive analytics warehouse (layers: docs/architecture.md).

    from ml import load_model
    load_model("loan_repayment").predict(df)

Modules directly under `ml/` are commands (`python -m ml.train`, `ml.predict`, `ml.segment`);
the subpackages are the features they call (ingestion, quality, training, serving, explanation,
segmentation, reports, bench) over `ml.core` (settings, errors, the warehouse interface).
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
    # on first use: `import ml.core.config` should not pay for pandas, scikit-learn and the
    # model bundle's dependencies
    if name == "load_model":
        from ml.serving.model import load_model

        return load_model
    raise AttributeError(f"module 'ml' has no attribute {name!r}")
