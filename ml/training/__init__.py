"""Training: read a task, tune, cross-validate and ensemble the candidates, save the champion.

`data` (read and resolve a task) -> `experiment` (train one task: `zoo`, `tuning`, `ensemble`,
`evaluate`, `oracle`; `distributed`: the champion's xgboost refitted on every row of a sampled
relation on Spark) -> `records` (the `ml.*` table rows and the model bundles) -> `run` (a whole
`ml.train` run, written in one transaction); `settings` holds the search spaces and the row cap.
"""
