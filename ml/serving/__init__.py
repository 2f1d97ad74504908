"""Serving: a saved model scores rows, with no training code loaded.

- `bundle`: the saved model (pipeline, input contract, output layout), hash-checked on load;
- `prepare`: the one preparation step from rows to the model frame, by the input contract;
- `output`: the prediction columns every scoring path produces;
- `model`: `TrainedModel` and `load_model(task)` (the champion of the task's latest run);
- `batch`: `score_table`, warehouse table to warehouse table in bounded memory, on the fast path
  of `fastpath` / `matrices` (and the compiled xgboost trees of `trees`) where it applies, or on
  the engine's workers (Spark), to which `shipping` sends the hash-checked model;
- `destinations`: where `ml.predict` may write.
"""
