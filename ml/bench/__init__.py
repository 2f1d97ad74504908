"""The benchmark (`python -m scripts.bench`, `make bench`): the warehouse at growing sizes.

`process` (timed subprocesses, CPU and memory) -> `simulate` -> `dbt_build` (dbt's own timings)
and `replay` (the same compiled SQL in DuckDB alone), paired by `dbt_vs_duckdb` -> `training`
(with its worker `train_worker`) -> `scoring` (with its worker `score_worker`) -> `step_worker`
(the steps that open the warehouse: in-process on DuckDB, in a worker on Spark) -> `size` (every
step of one size, on either engine) -> `run` (every size, the options) -> `summary` (headline
numbers, targets) and `comparison` (Spark beside DuckDB) -> `markdown`, `plot`, `reports`
(bench.md, bench.png, bench.json).

This is the top feature layer: it may import every other `ml` package, and only
`scripts.bench` imports it. Nothing is imported here, so a worker starts lean.
"""
