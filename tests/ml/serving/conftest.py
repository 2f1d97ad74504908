"""The Spark fixtures every Spark test of a process shares (tests/spark_fixtures.py)."""

from tests.spark_fixtures import spark_features, spark_lakehouse  # noqa: F401 - fixtures
