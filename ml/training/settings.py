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
        "lightgbm": {"num_leaves": [7, 31], "min_child_samples": [20, 60]},
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
        "lightgbm": {"n_estimators": [200], "num_leaves": [15, 31]},
        "keras": {
            "units": [32],
            "layers": [1, 2],
            "dropout": [0.0],
            "learning_rate": [3e-3],
            "l2": [0.0],
        },
    },
}

#: Seconds of hyperparameter search per task (`ml.train --time-budget`; the default of the CLI
#: without --fast). The searched candidates share it (BUDGET_SHARES); the Keras net keeps its
#: KerasTuner trials and the ensembles need no search. 0 (or --fast): the grids above instead.
#: Sized so that a table of ~50k rows x 30 columns trains in about two minutes on 2 cores (the
#: simulated customer tasks, ~50k rows x 20 columns, took 124 s and 230 s with 40).
TIME_BUDGET = 20.0
BUDGET_SHARES = {"linear": 0.1, "tree": 0.1, "xgboost": 0.4, "lightgbm": 0.4}
#: At most this many trials per candidate, and a search stops after PATIENCE trials in a row
#: without improvement.
SEARCH_TRIALS = 30
SEARCH_PATIENCE = 10
#: Distributions of the budgeted search (ml.training.search): (kind, low, high) with kind
#: int, int_log, float or log. Keys are the estimator's parameters, as in SEARCH_SPACES.
SEARCH_DISTRIBUTIONS: dict[str, dict[str, tuple]] = {
    "linear": {"alpha": ("log", 1e-2, 1e3), "C": ("log", 1e-3, 10.0)},
    "tree": {"max_depth": ("int", 2, 14), "min_samples_leaf": ("int_log", 2, 300)},
    "xgboost": {
        "n_estimators": ("int_log", 100, 600),
        "learning_rate": ("log", 0.02, 0.3),
        "max_depth": ("int", 2, 8),
        "min_child_weight": ("log", 0.5, 30.0),
        "subsample": ("float", 0.5, 1.0),
        "colsample_bytree": ("float", 0.4, 1.0),
        "reg_lambda": ("log", 0.1, 30.0),
    },
    "lightgbm": {
        "n_estimators": ("int_log", 100, 500),
        "learning_rate": ("log", 0.02, 0.2),
        "max_depth": ("int", 3, 7),
        "num_leaves": ("int_log", 4, 48),
        "min_child_samples": ("int_log", 5, 200),
        "subsample": ("float", 0.5, 1.0),
        "colsample_bytree": ("float", 0.3, 1.0),
        "reg_lambda": ("log", 1e-3, 30.0),
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
