"""The benchmark (`python -m scripts.bench`, `make bench`): the warehouse at growing sizes.

`process` (timed subprocesses, CPU and memory) -> `simulate` -> `dbt_build` (dbt's own timings)
and `replay` (the same compiled SQL in DuckDB alone), paired by `dbt_vs_duckdb` -> `training`
(with its worker `train_worker`) -> `scoring` (with its worker `score_worker`) -> `step_worker`
(the steps that open the warehouse: in-process on DuckDB, in a worker on Spark) -> `size` (every
step of one size, on either engine) -> `run` (every size, the options) -> `summary` (headline
numbers, targets) and `comparison` (Spark beside DuckDB) -> `markdown`, `plot`, `reports`
(bench.md, bench.png, bench.json). Beside them, `models` (with `models_baselines`,
`models_project`, `models_report`) is `python -m scripts.benchmark_models`: the project against
plain baselines on the same split of one CSV.

This is the top feature layer: it may import every other `ml` package, and only
`scripts.bench` and `scripts.benchmark_models` import it. Nothing is imported here, so a worker starts lean.
"""
