"""Training settings: the candidates, their search spaces, and how long each step may work."""

from __future__ import annotations

#: Hyperparameter grids (scikit-learn / xgboost: GridSearchCV; keras: KerasTuner search space).
#: Keys are the estimator's parameters. `fast` is the small space used by `--fast` and the tests.
SEARCH_SPACES: dict[str, dict[str, dict[str, list]]] = {
    "full": {
        # `alpha` applies to Ridge (regression), `C` to LogisticRegression (classification)
        "linear": {"alpha": [0.3, 3.0, 30.0], "C": [0.03, 0.3, 3.0]},
        "tree": {"max_depth": [4, 6, 8, 10], "min_samples_leaf": [10, 50]},
        "xgboost": {
            "n_estimators": [300],
            "learning_rate": [0.08],
            "max_depth": [3, 5],
            "min_child_weight": [1.0, 8.0],
        },
        "keras": {
            "units": [32, 64, 128],
            "layers": [1, 2, 3],
            "dropout": [0.0, 0.1, 0.2],
            "learning_rate": [1e-3, 3e-3],
            "l2": [0.0, 1e-4],
        },
    },
    "fast": {
        "linear": {"alpha": [1.0, 10.0], "C": [0.1, 1.0]},
        "tree": {"max_depth": [4, 8], "min_samples_leaf": [20]},
        "xgboost": {
            "n_estimators": [150],
            "learning_rate": [0.1],
            "max_depth": [3, 4],
            "min_child_weight": [1.0],
        },
        "keras": {
            "units": [32],
            "layers": [1, 2],
            "dropout": [0.0],
            "learning_rate": [3e-3],
            "l2": [0.0],
        },
    },
}

#: Rows of a task's relation training reads at most (`ml.train --max-rows`): beyond it, a seeded
#: sample of that many rows (`Warehouse.sample_frame`) is what the candidates are tuned,
#: cross-validated, evaluated and refitted on; the champion then scores every row of the relation
#: where it lies (`ml.serving.batch.score_table`). `ml.model_runs` records both counts.
TRAIN_MAX_ROWS = 1_000_000

#: KerasTuner trials (full / fast) and the rows used for tuning (a stratified sample of train).
KERAS_TRIALS = {"full": 4, "fast": 2}
TUNING_MAX_ROWS = {"full": 10_000, "fast": 2_000}
#: Keras training length (epochs with early stopping on a validation split).
KERAS_FIT = {
    "full": {"epochs": 50, "patience": 4, "batch_size": 512},
    "fast": {"epochs": 15, "patience": 3, "batch_size": 256},
}
#: K of the K-fold cross-validation of every candidate (`--fast`: fewer folds).
CV_FOLDS = {"full": 5, "fast": 3}


#: SHAP explanations of each champion (ml.explanation): features kept per scored row in
#: ml.prediction_explanations, rows explained per task (beyond it a seeded sample is explained and
#: ml.feature_importance is computed on that sample), the background rows of the linear and
#: Keras parts (a sample of the training rows), and the explained rows whose every feature is kept
#: in ml.shap_sample for the reports (a seeded sample).
EXPLAIN_TOP_K = 5
EXPLAIN_MAX_ROWS = 250_000
EXPLAIN_REFERENCE_ROWS = 2_000
EXPLAIN_SAMPLE_ROWS = 1_000
