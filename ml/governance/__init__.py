"""Governance: which model of each task is deployed, promotion of challengers on evidence and
gates, rollback (`ml.deployments`, `ml.promotion_decisions`).

- `evidence`: the paired comparison of two models on the same rows (DeLong, paired bootstrap);
- `deployments`: the deployment history and the deploy step shared by promote and rollback;
- `promotion`: a challenger's evaluation rows, the gates and the decision.
"""
