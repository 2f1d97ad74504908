"""Fairness: each trained model's metrics by group of the sensitive attributes (age group, gender,
region) on its held-out rows, and the gaps between groups, as fairlearn defines them
(`metrics`); where a task's rows find those attributes in the warehouse (`attributes`)."""
