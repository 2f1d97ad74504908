"""Why a model decides what it decides: exact additive SHAP values of the project's models.

`shap.explain` computes them (each base model with the explainer that is exact for it, combined
with the ensemble's own weights); `tables` turns them into the warehouse tables ml.train writes.
"""
