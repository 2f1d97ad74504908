"""Day-two monitoring: the reference profile of each trained model (`profile`), the drift and
realised-performance marts dbt computes from it, and what `python -m ml.monitor` reads
(`status`)."""
